"""Pictures users judge a run by."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def to_uint8_image(tensor: torch.Tensor) -> np.ndarray:
    """A loader's C x H x W uint8 tensor as an H x W x 3 picture (loaders yield pixels; models normalise)."""
    return tensor.detach().cpu().permute(1, 2, 0).numpy()


def augmentation_grid(dataset, class_names: Sequence[str], per_class: int = 8, seed: int = 0) -> plt.Figure:
    """One row per class of ``per_class`` train images exactly as the model receives them (augmented)."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(class_names), per_class, figsize=(1.6 * per_class, 1.8 * len(class_names)), squeeze=False
    )
    targets = np.asarray(dataset.targets)
    for row, name in enumerate(class_names):
        candidates = np.flatnonzero(targets == row)
        picks = rng.choice(candidates, min(per_class, len(candidates)), replace=False) if len(candidates) else []
        for col in range(per_class):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(picks):
                ax.imshow(to_uint8_image(dataset[int(picks[col])][0]))
        axes[row, 0].set_title(f"{name} ({len(candidates)})", loc="left", fontsize=10)
    fig.tight_layout()
    return fig


def figure_to_array(fig: plt.Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> plt.Figure:
    """Counts, and the row-normalised matrix (recall on the diagonal), side by side."""
    counts = np.asarray(confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(class_names)
    fig, axes = plt.subplots(1, 2, figsize=(4.2 + 2.2 * k, 1.6 + 1.1 * k))
    for ax, data, title, fmt in (
        (axes[0], counts, "counts", "{:.0f}"),
        (axes[1], normalised, "row-normalised", "{:.2f}"),
    ):
        ax.imshow(data, cmap="Blues", vmin=0, vmax=data.max() or 1)
        ax.set_xticks(range(k), class_names, rotation=30, ha="right")
        ax.set_yticks(range(k), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        for i in range(k):
            for j in range(k):
                dark = data[i, j] > 0.6 * (data.max() or 1)
                ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center", color="white" if dark else "black")
    fig.tight_layout()
    return fig


def curves_figure(history: dict[str, list[tuple[int, float]]]) -> plt.Figure:
    """Accuracy and loss per epoch, train vs val (``history`` maps a tag to (epoch, value) pairs)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("acc", "loss"), strict=True):
        for stage, style in (("train", "-o"), ("val", "-s")):
            points = history.get(f"{stage}/{metric}", [])
            if points:
                ax.plot(*zip(*points, strict=True), style, label=stage, markersize=4)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title("accuracy" if metric == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def gallery_figure(images: Sequence[np.ndarray], titles: Sequence[str], correct: Sequence[bool], columns: int = 6):
    """Prediction gallery: green title when right, red when wrong (callers put the mistakes first)."""
    n = max(1, len(images))
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title, ok in zip(axes.flat, images, titles, correct, strict=False):
        ax.imshow(image)
        ax.set_title(title, fontsize=8, color="green" if ok else "red")
    fig.tight_layout()
    return fig


def reliability_figure(calibration: dict) -> plt.Figure:
    """Reliability diagram: accuracy against confidence per bin (the diagonal is perfect calibration), bar width
    the bin, the share of images per bin underneath."""
    bins = calibration["bins"]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    total = max(1, sum(b["images"] for b in bins))
    fig, (ax, share) = plt.subplots(2, 1, figsize=(4.5, 5), height_ratios=[3, 1], sharex=True)
    ax.bar(centres, [b["accuracy"] if b["images"] else 0 for b in bins], width * 0.95, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability (ECE {calibration['ece']:.3f})", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    share.bar(centres, [b["images"] / total for b in bins], width * 0.95, color="grey")
    share.set_xlim(0, 1)
    share.set_xlabel("confidence of the predicted class")
    share.set_ylabel("share")
    fig.tight_layout()
    return fig
