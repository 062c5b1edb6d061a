"""The one prediction loop: a trained module over a dataset, batch by batch, in eval mode.

Training's report, ``facemix-evaluate``, calibration, ``facemix-predict`` and cross-validation all predict through
``predict``, so they see the same numbers for the same images; test-time augmentation (``tta=flip|crops``) is a
property of that loop, so each of them offers it. It keeps the raw logits (before the calibration
temperature): calibration fits a new temperature on them, everything else reads ``probabilities``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from facemix.augment.tta import views

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Predictions:
    logits: np.ndarray  # [images, classes], raw (before the temperature)
    temperature: float  # the module's calibration temperature (1: uncalibrated)
    targets: np.ndarray  # what the dataset gave as each item's target (its class; -1: the item could not be read)

    @property
    def probabilities(self) -> np.ndarray:
        scaled = torch.as_tensor(self.logits, dtype=torch.float64) / self.temperature
        return scaled.softmax(dim=1).numpy()

    def __len__(self) -> int:
        return len(self.logits)


@torch.inference_mode()
def predict(module, dataset: Dataset, batch_size: int = 64, num_workers: int = 0, tta: str = "none") -> Predictions:
    """Raw logits of every item of ``dataset`` (``(image, target, index)`` items, uint8 images), in order; with
    ``tta``, the mean of the views' logits (timm's way; costs one forward pass per view)."""
    module.eval()
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    logits, targets = [], []
    started = time.perf_counter()
    for x, y, _ in loader:
        x = x.to(module.device)
        logits.append(torch.stack([module.logits(v).float() for v in views(x, tta)]).mean(dim=0).cpu())
        targets.append(torch.as_tensor(y))
    seconds, count = time.perf_counter() - started, sum(len(t) for t in targets)
    log.info("predicted %d images in %.1f s (%.0f images/s, tta=%s)", count, seconds, count / max(seconds, 1e-9), tta)
    if not logits:
        return Predictions(np.zeros((0, int(module.hparams.num_classes)), np.float32), 1.0, np.zeros(0, np.int64))
    return Predictions(torch.cat(logits).numpy(), float(module.temperature), torch.cat(targets).numpy())
