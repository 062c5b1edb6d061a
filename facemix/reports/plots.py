"""Pictures users judge a run by."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from facemix.augment.presets import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402


def to_uint8_image(tensor: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """A normalised C x H x W tensor back to an H x W x 3 uint8 picture."""
    img = tensor.detach().cpu().float() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    return (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


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
