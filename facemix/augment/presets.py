"""Albumentations pipelines, by preset name.

Resize comes first (area interpolation), so every later op works on the small training-size image instead of a
600 px original: augmenting after the resize is what keeps the loader ahead of the model on a small CPU. Pipelines
end in a uint8 C x H x W tensor; the model normalises the batch (``ClassifierModule.forward``), so workers skip a
per-image float conversion and ship a quarter of the bytes to the main process and the GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from facemix.errors import FacemixConfigError

INTERPOLATIONS = {  # timm's names (a model's pretrained config) -> OpenCV flags
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
    "lanczos": cv2.INTER_LANCZOS4,
}


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


def _keras() -> list[A.BasicTransform]:
    """The ImageDataGenerator settings the source studies used: rotation 20, shifts 0.2, zoom 0.2, flip,
    brightness 0.8-1.2 (Keras' rescale is the model's own normalisation)."""
    return [
        A.Affine(
            rotate=(-20, 20), translate_percent=(-0.2, 0.2), scale=(0.8, 1.2), border_mode=cv2.BORDER_REFLECT_101, p=1.0
        ),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=(0.8, 1.2), contrast=0, saturation=0, hue=0, p=1.0),
    ]


def _strong() -> list[A.BasicTransform]:
    return [
        *_light(),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.3, hue=0.05, p=0.7),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.GaussNoise(std_range=(0.02, 0.08))], p=0.4),
        A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.2), hole_width_range=(0.1, 0.2), p=0.4),
    ]


PRESETS: dict[str, Callable[[], list[A.BasicTransform]]] = {
    "none": _none,
    "light": _light,
    "keras": _keras,
    "strong": _strong,
}


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


def train_transform(preset: str, image_size: int, seed: int | None = None, interpolation: str = "area") -> A.Compose:
    """``seed``: Albumentations draws from its own generator, not the global ones ``seed_everything`` sets, so a
    reproducible run seeds it here (and each loader worker reseeds it, see ``facemix.data.dataset``)."""
    if preset not in PRESETS:
        raise FacemixConfigError(f"augment.preset is '{preset}'; choose one of {sorted(PRESETS)}.")
    return A.Compose([_resize(image_size, interpolation), *PRESETS[preset](), ToTensorV2()], seed=seed)


def eval_transform(image_size: int, interpolation: str = "area") -> A.Compose:
    return A.Compose([_resize(image_size, interpolation), ToTensorV2()])
