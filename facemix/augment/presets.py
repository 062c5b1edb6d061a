"""Albumentations pipelines built from config (``conf/augment/*.yaml``: named ops, each a ``_target_``).

Resize comes first (area interpolation), so every later op works on the small training-size image instead of a
600 px original: augmenting after the resize is what keeps the loader ahead of the model on a small CPU. Pipelines
end in a uint8 C x H x W tensor; the model normalises the batch (``ClassifierModule.forward``), so workers skip a
per-image float conversion and ship a quarter of the bytes to the main process and the GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2
from hydra.utils import instantiate

from facemix.errors import FacemixConfigError, library_reason

INTERPOLATIONS = {  # timm's names (a model's pretrained config) -> OpenCV flags
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
    "lanczos": cv2.INTER_LANCZOS4,
}


_IGNORED_ARGUMENT = ("are not valid for transform", "automatically adjusted")


def build_ops(ops: Mapping[str, Any] | None, key: str = "augment") -> list[A.BasicTransform]:
    """Albumentations transforms from a config mapping ``{name: {_target_: albumentations.X, **args}}`` in its
    order; a ``null`` entry is an op switched off (``augment.affine=null``). ``key`` names the mapping in errors."""
    built = []
    for name, spec in (ops or {}).items():
        if spec is None:
            continue
        if not isinstance(spec, Mapping) or "_target_" not in spec:
            raise FacemixConfigError(
                f"{key}.{name} is {spec!r}; each op is a mapping with a _target_ (an Albumentations transform) and its "
                f"arguments, e.g. {key}.{name}={{_target_: albumentations.HorizontalFlip, p: 0.5}}, or null to skip it."
            )
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                op = instantiate(spec, _convert_="all")
            # Albumentations only warns about an argument it does not know (a typo would do nothing) or a range
            # it "adjusted" (the run would not do what the config says): both are errors here
            ignored = [str(w.message) for w in caught if any(s in str(w.message) for s in _IGNORED_ARGUMENT)]
            if ignored:
                raise ValueError(ignored[0])
        except Exception as exc:  # the transform's own complaint (bad argument name or range)
            raise FacemixConfigError(
                f"{key}.{name} ({spec['_target_']}) cannot be built: {library_reason(exc)}. Fix its arguments in "
                "the override or in your copy of the augment config (the Albumentations docs list each transform's "
                "arguments)."
            ) from exc
        if not isinstance(op, A.BasicTransform | A.BaseCompose):
            raise FacemixConfigError(
                f"{key}.{name}: {spec['_target_']} is not an Albumentations transform (got {type(op).__name__})."
            )
        built.append(op)
    return built


def interpolation_flag(name: str) -> int:
    if name not in INTERPOLATIONS:
        raise FacemixConfigError(f"model.interpolation is '{name}'; choose one of {sorted(INTERPOLATIONS)} (or null).")
    return INTERPOLATIONS[name]


def resize(image: np.ndarray, size: int, interpolation: str = "area") -> np.ndarray:
    """``size x size`` (aspect ratio not kept, as the studies' loaders did); the one resize of every pipeline."""
    if image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=interpolation_flag(interpolation))


def _resize(image_size: int, interpolation: str) -> A.BasicTransform:
    return A.Resize(image_size, image_size, interpolation=interpolation_flag(interpolation))


def train_transform(
    ops: Mapping[str, Any] | None, image_size: int, seed: int | None = None, interpolation: str = "area"
) -> A.Compose:
    """The resize, then the configured ops (``augment`` in the run config), then a uint8 tensor.

    ``seed``: Albumentations draws from its own generator, not the global ones ``seed_everything`` sets, so a
    reproducible run seeds it here (and each loader worker reseeds it, see ``facemix.data.dataset``)."""
    return A.Compose([_resize(image_size, interpolation), *build_ops(ops), ToTensorV2()], seed=seed)


def eval_transform(image_size: int, interpolation: str = "area") -> A.Compose:
    return A.Compose([_resize(image_size, interpolation), ToTensorV2()])
