"""Classifier heads and the backbone + head wrapper every built-in returns."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn


class MLPHead(nn.Sequential):
    """Flatten -> [Linear -> ReLU -> Dropout] per hidden width -> Linear (the Keras studies' Dense stack)."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (), dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        if dropout > 0 and not hidden:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class ConvHead(nn.Sequential):
    """Conv 3x3 -> ReLU -> MaxPool 2x2 -> Flatten -> Dropout -> [Dense -> ReLU] -> Dense, on a feature *map*.

    The head of the MobileNetV2 study that kept spatial features. 'same' padding and a ceil-mode pool, so the head
    also fits the 2x2 maps of small training images (Keras' 'valid' 3x3 would need >= 3x3).
    """

    def __init__(
        self,
        in_channels: int,
        map_size: tuple[int, int],
        num_classes: int,
        channels: int = 128,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.2,
    ) -> None:
        pooled = ((map_size[0] + 1) // 2) * ((map_size[1] + 1) // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Flatten(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = channels * pooled
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class BackboneClassifier(nn.Module):
    """``head(backbone(x))``. A frozen backbone also stays in eval mode, so its batch-norm statistics stay put."""

    def __init__(self, backbone: nn.Module, head: nn.Module, freeze_backbone: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def train(self, mode: bool = True) -> BackboneClassifier:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self


@torch.no_grad()
def feature_shape(backbone: nn.Module, image_size: int, channels: int = 3) -> tuple[int, ...]:
    """Shape of what ``backbone`` emits for one image, found by a dry run (works for any backbone)."""
    was_training = backbone.training
    backbone.eval()
    out = backbone(torch.zeros(1, channels, image_size, image_size))
    backbone.train(was_training)
    return tuple(out.shape[1:])


def feature_size(backbone: nn.Module, image_size: int, channels: int = 3) -> int:
    """Number of features ``backbone`` emits for one image (flattened)."""
    return math.prod(feature_shape(backbone, image_size, channels))
