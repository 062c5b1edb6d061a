"""Test-time augmentation: the views of a uint8 batch whose logits the prediction loop averages
(``facemix.evaluation.inference.predict(..., tta=...)``): the batch, its mirror, a central zoom and its mirror."""

from __future__ import annotations

import torch

TTA_VIEWS = ("none", "flip", "crops")  # test-time augmentation: the views whose logits are averaged


def _zoom(x: torch.Tensor, share: float = 0.875) -> torch.Tensor:
    """The central ``share`` of a uint8 batch, resized back to its size (a crop the network sees as a zoom)."""
    size = x.shape[-1]
    margin = round(size * (1 - share) / 2)
    crop = x[..., margin : size - margin, margin : size - margin].float()
    return torch.nn.functional.interpolate(crop, size=x.shape[-2:], mode="bilinear", antialias=True).round().to(x.dtype)


def views(x: torch.Tensor, tta: str) -> list[torch.Tensor]:
    """The batch as each TTA view: itself; + its mirror (``flip``); + a central zoom and its mirror (``crops``)."""
    if tta not in TTA_VIEWS:
        raise ValueError(f"tta={tta}: choose one of {', '.join(TTA_VIEWS)}")
    out = [x]
    if tta in ("flip", "crops"):
        out.append(x.flip(-1))
    if tta == "crops":
        zoomed = _zoom(x)
        out += [zoomed, zoomed.flip(-1)]
    return out
