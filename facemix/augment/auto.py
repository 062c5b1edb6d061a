"""Automatic augmentation policies (RandAugment, TrivialAugment, AugMix) as Albumentations ops.

Albumentations 2.0 has none of these; torchvision.transforms.v2 has all three. They sit in the same pipeline as every
other op (``augment.<name>: {_target_: facemix.augment.auto.RandAugment, ...}``): each wraps the torchvision policy
in an ``ImageOnlyTransform`` that hands it the H x W x 3 uint8 picture as a C x H x W uint8 tensor (the policies'
fast path) and takes the result back, per image, in the loader workers. Drawn per call, so every image gets its own
ops (on a batch tensor torchvision would give the whole batch the same ones). They draw from torch's generator,
which Lightning seeds per loader worker (``seed_everything(workers=True)``), so a run stays reproducible.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import numpy as np
import torch
from torchvision.transforms import v2


class _TorchvisionPolicy(A.ImageOnlyTransform):
    """Base: ``policy`` is a torchvision v2 transform taking a uint8 C x H x W tensor."""

    def __init__(self, policy: v2.Transform, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.policy = policy

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        grey = img.ndim == 2
        pixels = torch.from_numpy(np.ascontiguousarray(img[..., None] if grey else img)).permute(2, 0, 1)
        out = self.policy(pixels).permute(1, 2, 0).numpy()
        return out[..., 0] if grey else np.ascontiguousarray(out)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("p",)


class RandAugment(_TorchvisionPolicy):
    """``num_ops`` ops of 14 per image at ``magnitude`` (of ``num_magnitude_bins``), torchvision's defaults."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31, p: float = 1.0) -> None:
        super().__init__(v2.RandAugment(num_ops, magnitude, num_magnitude_bins), p)
        self.num_ops, self.magnitude, self.num_magnitude_bins = num_ops, magnitude, num_magnitude_bins

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("num_ops", "magnitude", "num_magnitude_bins", "p")


class TrivialAugment(_TorchvisionPolicy):
    """One op per image at a random magnitude (TrivialAugmentWide: no hyper-parameters to tune)."""

    def __init__(self, num_magnitude_bins: int = 31, p: float = 1.0) -> None:
        super().__init__(v2.TrivialAugmentWide(num_magnitude_bins), p)
        self.num_magnitude_bins = num_magnitude_bins

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("num_magnitude_bins", "p")


class AugMix(_TorchvisionPolicy):
    """``mixture_width`` chains of ops mixed with the original (Hendrycks et al., 2020)."""

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1, p: float = 1.0) -> None:
        super().__init__(v2.AugMix(severity, mixture_width, chain_depth), p)
        self.severity, self.mixture_width, self.chain_depth = severity, mixture_width, chain_depth

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("severity", "mixture_width", "chain_depth", "p")
