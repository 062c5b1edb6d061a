"""What a network expects at its input: size, interpolation, mean and std.

Pretrained weights were trained on images resized and normalised one particular way (timm records it in each
model's ``pretrained_cfg``: ImageNet statistics for most, 0.5 / 0.5 for others, 0 / 1 for some); feeding them
anything else quietly costs accuracy. So the backbone's own statistics are the default, from scratch too, and the
user's explicit values win. The resolved values travel in the checkpoint, so evaluate, predict, export and the
plots use exactly what training used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCRATCH_IMAGE_SIZE = 64  # from scratch on a CPU: small and fast (the studies' own choice)
SCRATCH_INTERPOLATION = "area"  # the best down-sampler for large photos when no weights prescribe one


@dataclass(frozen=True)
class Preprocessing:
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str

    def as_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}


def timm_data_config(arch: str | None) -> dict:
    """timm's data config (``input_size``, ``interpolation``, ``mean``, ``std``) for a timm architecture name
    (``name`` or ``name.tag``), read from its pretrained config without building the model."""
    if not arch:
        return {}
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    pretrained_cfg = get_pretrained_cfg(arch)
    if pretrained_cfg is None:
        return {}
    return resolve_data_config(pretrained_cfg=pretrained_cfg.to_dict())


def resolve_preprocessing(
    arch: str | None,
    pretrained: bool,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    interpolation: str | None = None,
) -> Preprocessing:
    """Explicit values win; then the backbone's pretrained config (its input size and interpolation only when
    pretrained weights are used); then facemix's from-scratch defaults (64 px, area, ImageNet statistics)."""
    cfg = timm_data_config(arch)
    if image_size is None:
        image_size = int(cfg["input_size"][-1]) if pretrained and cfg else SCRATCH_IMAGE_SIZE
    if interpolation is None:
        interpolation = str(cfg.get("interpolation", SCRATCH_INTERPOLATION)) if pretrained else SCRATCH_INTERPOLATION
    return Preprocessing(
        image_size=int(image_size),
        mean=tuple(float(v) for v in (mean if mean is not None else cfg.get("mean", IMAGENET_MEAN))),
        std=tuple(float(v) for v in (std if std is not None else cfg.get("std", IMAGENET_STD))),
        interpolation=interpolation,
    )
