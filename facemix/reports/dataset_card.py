"""The dataset card's figures: images per class / split stacked by source, and the label-conflict strips."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facemix.data.images import load_rgb
from facemix.reports.plots import plt, save_figure


def render_card_figures(run_dir: str | Path) -> list[Path]:
    """Draw ``dataset_card.png`` (and ``label_conflicts.png`` where copies carried different classes) from the
    ``dataset_card.json`` the data pipeline wrote in ``run_dir``; nothing when there is no card."""
    run_dir = Path(run_dir)
    source = run_dir / "dataset_card.json"
    if not source.is_file():
        return []
    card = json.loads(source.read_text())
    written = [run_dir / "dataset_card.png"]
    _counts_chart(card, written[0])
    if card["label_conflicts_dropped"]:
        written.append(run_dir / "label_conflicts.png")
        _conflict_strips(card["label_conflicts_dropped"], written[-1])
    return written


def _conflict_strips(groups: Sequence[Sequence[str]], path: Path, max_groups: int = 12, thumb: int = 96) -> None:
    """One row per group of copies that carry different classes, the pictures side by side (folder / file name
    as title): a user can tell an edit of one photo from two different photos that only looked alike."""
    shown = [list(g)[:6] for g in groups[:max_groups]]
    columns = max(len(g) for g in shown)
    fig, axes = plt.subplots(len(shown), columns, figsize=(1.9 * columns, 2.1 * len(shown)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, group in enumerate(shown):
        for col, file in enumerate(group):
            try:
                image = load_rgb(file)
            except (OSError, ValueError):
                continue
            axes[row, col].imshow(image)
            axes[row, col].set_title(f"{Path(file).parent.name}/{Path(file).name}"[-28:], fontsize=7)
    fig.suptitle("label conflicts: copies with different classes (dropped unless label_conflicts=keep)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def _counts_chart(card: dict, path: Path) -> None:
    counts = card["counts"]["by_class_split_source"]
    keys = sorted({k.rsplit("/", 1)[0] for k in counts})  # class/split
    sources = sorted({k.rsplit("/", 1)[1] for k in counts})
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(keys)), 4))
    bottom = np.zeros(len(keys))
    for src in sources:
        values = np.array([counts.get(f"{k}/{src}", 0) for k in keys])
        ax.bar(keys, values, bottom=bottom, label=src)
        bottom += values
    ax.set_ylabel("images")
    ax.set_title("images per class / split, stacked by source")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
