"""Albumentations pipelines, by preset name.

Resize comes first (area interpolation), so every later op works on the small training-size image instead of a
600 px original: augmenting after the resize is what keeps the loader ahead of the model on a small CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from facemix.errors import FacemixConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _none() -> list[A.BasicTransform]:
    return []


def _light() -> list[A.BasicTransform]:
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(
            scale=(0.9, 1.1),
            translate_percent=(-0.06, 0.06),
            rotate=(-10, 10),
            border_mode=cv2.BORDER_REFLECT_101,
            p=0.7,
        ),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
    ]


PRESETS: dict[str, Callable[[], list[A.BasicTransform]]] = {"none": _none, "light": _light}


def _resize(image_size: int) -> A.BasicTransform:
    return A.Resize(image_size, image_size, interpolation=cv2.INTER_AREA)


def _finish(mean: Sequence[float], std: Sequence[float]) -> list[A.BasicTransform]:
    return [A.Normalize(mean=tuple(mean), std=tuple(std)), ToTensorV2()]


def train_transform(
    preset: str, image_size: int, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> A.Compose:
    if preset not in PRESETS:
        raise FacemixConfigError(f"augment.preset is '{preset}'; choose one of {sorted(PRESETS)}.")
    return A.Compose([_resize(image_size), *PRESETS[preset](), *_finish(mean, std)])


def eval_transform(
    image_size: int, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> A.Compose:
    return A.Compose([_resize(image_size), *_finish(mean, std)])
