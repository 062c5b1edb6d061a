"""Grad-CAM: where in the picture the evidence for a class sits (torchcam's ``GradCAM`` does the hooks and maths).

This is the visual half of the shortcut probe: a model that reads borders, JPEG blocks or background instead of
faces and masks shows it here. Grad-CAM needs gradients, so it runs outside ``torch.inference_mode`` with every
parameter temporarily trainable (a frozen backbone would otherwise give no gradient at the target layer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from facemix.errors import FacemixConfigError

# pooling shrinks the feature map (the CAM belongs before it); dropout and identity only hand it on
_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_PASS_THROUGH = (nn.Dropout, nn.Dropout2d, nn.Identity)


MIN_CAM_SIDE = 4  # a 2 x 2 map upsampled to the picture says "left or right", not "mask or border"


def feature_layers(module: nn.Module, image_size: int, min_side: int = 2) -> list[str]:
    """Names of the modules that output a spatial feature map (N x C x H x W, H and W >= 2), in execution order,
    leaving out pooling / dropout / identity and containers that only hand on such an output; only maps of at least
    ``min_side`` per side."""
    names = {m: n for n, m in module.named_modules()}
    pooled: list[torch.Tensor] = []  # the tensors themselves, not ids: a freed tensor's id is reused
    found: list[str] = []

    def hook(m: nn.Module, _inputs, out) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            return
        if isinstance(m, _POOLING):
            pooled.append(out)
            return
        if isinstance(m, _PASS_THROUGH) or min(out.shape[-2:]) < min_side or any(out is p for p in pooled):
            return
        if names[m]:
            found.append(names[m])

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(1, 3, image_size, image_size, dtype=torch.uint8))
    finally:
        for h in handles:
            h.remove()
    return found


def default_cam_layer(module: nn.Module, image_size: int) -> str:
    """The last feature map before global pooling: VGG16's last conv block (its last ReLU, before the final max
    pool), timm MobileNetV2's ``bn2`` (after ``conv_head``), any timm CNN's last stage; at small inputs, where that
    map is under MIN_CAM_SIDE per side (MobileNetV2 at 64 px: 2 x 2), the last one that is not."""
    layers = feature_layers(module, image_size, MIN_CAM_SIDE) or feature_layers(module, image_size)
    if not layers:
        raise FacemixConfigError(
            f"no layer of {type(module).__name__} outputs a spatial feature map at {image_size} px, so Grad-CAM has "
            "nothing to show; set cam_layer=<module name> (e.g. net.backbone.layer4) or cam=false."
        )
    return layers[-1]


@contextmanager
def _gradients_on(module: nn.Module) -> Iterator[None]:
    frozen = [p for p in module.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for p in frozen:
            p.requires_grad_(False)


def grad_cam(module: nn.Module, images: torch.Tensor, classes: Sequence[int], layer: str | None = None) -> np.ndarray:
    """Heat maps in [0, 1] at the images' size (N x H x W) for ``classes[i]`` of image ``i``; ``images`` are the
    uint8 batches the loaders yield (the module normalises)."""
    from torchcam.methods import GradCAM

    size = int(images.shape[-1])
    layer = layer or default_cam_layer(module, size)
    if layer not in dict(module.named_modules()):
        raise FacemixConfigError(
            f"cam_layer={layer} is not a module of this model; feature-map layers are "
            f"{feature_layers(module, size)[-5:]} (last five)."
        )
    module.eval()
    images = images.to(next(module.parameters()).device)
    with _gradients_on(module), GradCAM(module, target_layer=layer, input_shape=(3, size, size)) as extractor:
        scores = module(images.clone())
        maps = extractor(class_idx=[int(c) for c in classes], scores=scores)[0]
        module.zero_grad(set_to_none=True)
    maps = maps.detach().float().reshape(len(images), 1, *maps.shape[-2:])
    maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return maps.clamp(0, 1).cpu().numpy()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """An H x W x 3 uint8 picture with the heat map laid over it (jet colours, as in the Grad-CAM paper)."""
    import matplotlib

    colours = matplotlib.colormaps["jet"](heat)[..., :3] * 255
    return np.clip((1 - alpha) * image + alpha * colours, 0, 255).astype(np.uint8)
