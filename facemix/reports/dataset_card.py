"""The dataset card's figures: images per class / split stacked by source, and the label-conflict strips."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facemix.data.images import load_rgb
from facemix.reports.plots import image_grid, plt, save_figure


def render_card_figures(card_json: str | Path, counts_png: str | Path, conflicts_png: str | Path) -> list[Path]:
    """Draw the counts chart (and the label-conflict strips where copies carried different classes) from the card
    JSON the data pipeline wrote; nothing when there is no card."""
    if not Path(card_json).is_file():
        return []
    card = json.loads(Path(card_json).read_text())
    written = [Path(counts_png)]
    _counts_chart(card, written[0])
    if card["label_conflicts_dropped"]:
        written.append(Path(conflicts_png))
        _conflict_strips(card["label_conflicts_dropped"], written[-1])
    return written


def _readable(file: str) -> np.ndarray | None:
    try:
        return load_rgb(file)
    except (OSError, ValueError):
        return None


def _conflict_strips(groups: Sequence[Sequence[str]], path: Path, max_groups: int = 12) -> None:
    """One row per group of copies that carry different classes, the pictures side by side (folder / file name
    above each): a user can tell an edit of one photo from two different photos that only looked alike."""
    shown = [list(g)[:6] for g in groups[:max_groups]]
    fig = image_grid(
        [[_readable(f) for f in group] for group in shown],
        [[f"{Path(f).parent.name}/{Path(f).name}"[-22:] for f in group] for group in shown],
        row_titles=[f"group {i + 1} of {len(groups)}: copies with different classes" for i in range(len(shown))],
        label_lines=1,
    )
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
