"""Grad-CAM: the default target layer of each model, and heat that sits where the evidence is."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from facemix.errors import FacemixConfigError
from facemix.models.explain import default_cam_layer, grad_cam, overlay
from facemix.models.module import ClassifierModule


@pytest.mark.parametrize(
    ("name", "options", "size", "layer"),
    [
        ("vgg16", {"batch_norm": True}, 64, "net.backbone.42"),  # last ReLU of the last conv block (4 x 4)
        ("vgg16", {"batch_norm": False}, 64, "net.backbone.29"),
        ("mobilenetv2", None, 128, "net.backbone.bn2"),  # timm MobileNetV2 has no `features`; bn2 is 4 x 4
        ("mobilenetv2", None, 64, "net.backbone.blocks.5.0.bn1"),  # bn2 is 2 x 2: the last 4 x 4 map
        ("timm", {"timm_name": "resnet18"}, 128, "net.backbone.layer4"),
    ],
)
def test_default_layer_is_the_last_usable_feature_map_before_pooling(name, options, size, layer):
    module = ClassifierModule(name, 3, ["real", "fake", "masked"], size, options=options)
    assert default_cam_layer(module, size) == layer


class BrightnessNet(nn.Module):
    """Class 0's logit is the mean brightness of a feature map: its evidence is wherever the image is bright."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, padding=1)
        nn.init.constant_(self.features.weight, 1 / 27)
        nn.init.zeros_(self.features.bias)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.pool(torch.relu(self.features(x.float() / 255))).flatten(1).mean(1, keepdim=True)
        return torch.cat([m, -m], dim=1)


def test_heat_sits_on_the_evidence_even_under_inference_mode_and_frozen_weights():
    net = BrightnessNet()
    for p in net.parameters():
        p.requires_grad_(False)
    images = torch.full((2, 3, 32, 32), 10, dtype=torch.uint8)
    images[0, :, :8, :8] = 250  # top-left patch
    images[1, :, 20:, 20:] = 250  # bottom-right patch
    with torch.inference_mode():
        heat = grad_cam(net, images, [0, 0], "features")
    assert heat.shape == (2, 32, 32) and heat.min() >= 0 and heat.max() <= 1
    assert all(c < 8 for c in np.unravel_index(heat[0].argmax(), heat[0].shape))
    assert heat[0, :6, :6].mean() > 3 * heat[0, 16:, 16:].mean()
    assert heat[1, 22:, 22:].mean() > 3 * heat[1, :12, :12].mean()
    assert not any(p.requires_grad for p in net.parameters())  # restored
    assert overlay(images[0].permute(1, 2, 0).numpy(), heat[0]).dtype == np.uint8


def test_a_wrong_layer_name_is_one_clear_error():
    with pytest.raises(FacemixConfigError, match="cam_layer=nope is not a module"):
        grad_cam(BrightnessNet(), torch.zeros(1, 3, 16, 16, dtype=torch.uint8), [0], "nope")
