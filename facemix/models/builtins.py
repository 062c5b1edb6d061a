"""Built-in models. Each builder takes (num_classes, pretrained, image_size, **options) and returns a module."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn

from facemix.errors import FacemixConfigError
from facemix.models.heads import BackboneClassifier, ConvHead, MLPHead, feature_shape, feature_size
from facemix.models.pretrained import Pretrained, create_timm
from facemix.models.registry import register


def _check_size(name: str, image_size: int, minimum: int) -> None:
    if image_size < minimum:
        raise FacemixConfigError(
            f"data.image_size={image_size} is too small for model '{name}' (it down-samples by {minimum}); "
            f"use data.image_size >= {minimum}."
        )


@register("vgg16", arch=lambda batch_norm=False, **_: "vgg16_bn" if batch_norm else "vgg16")
def vgg16(
    num_classes: int,
    pretrained: Pretrained = False,
    image_size: int = 64,
    hidden: Sequence[int] = (256, 256),
    dropout: float = 0.5,
    freeze_backbone: bool = False,
    batch_norm: bool = False,
) -> nn.Module:
    """VGG16's convolutional base + the studies' Flatten -> 256 -> 256 head.

    timm's own ``vgg16`` adds a 7x7 conv 'pre-logits' 4096 wide, which is 3-4x slower on a CPU and not what the
    studies trained; we keep only ``features``. ``batch_norm`` takes timm's ``vgg16_bn`` base instead: from
    scratch, plain VGG16 learns the easy classes but not a small, subtle minority in a few epochs.
    """
    _check_size("vgg16", image_size, 32)
    backbone = create_timm("vgg16_bn" if batch_norm else "vgg16", pretrained).features
    head = MLPHead(feature_size(backbone, image_size), num_classes, hidden, dropout)
    return BackboneClassifier(backbone, head, freeze_backbone)


def _pooled_timm(timm_name: str, num_classes: int, pretrained: Pretrained, hidden, dropout, freeze_backbone):
    backbone = create_timm(timm_name, pretrained, num_classes=0)  # num_classes=0: pooled features, no classifier
    head = MLPHead(backbone.num_features, num_classes, hidden, dropout)
    return BackboneClassifier(backbone, head, freeze_backbone)


@register("mobilenetv2", arch=lambda **_: "mobilenetv2_100")
def mobilenetv2(
    num_classes: int,
    pretrained: Pretrained = False,
    image_size: int = 64,
    hidden: Sequence[int] = (),
    dropout: float = 0.2,
    freeze_backbone: bool = False,
    conv_head: int = 0,
) -> nn.Module:
    """timm ``mobilenetv2_100`` with a new head: global pool -> MLP, or (``conv_head`` = channels > 0) the feature
    map -> :class:`ConvHead` (Conv -> MaxPool -> Flatten -> Dropout -> Dense ``hidden`` -> Dense)."""
    _check_size("mobilenetv2", image_size, 32)
    if not conv_head:
        return _pooled_timm("mobilenetv2_100", num_classes, pretrained, hidden, dropout, freeze_backbone)
    backbone = create_timm("mobilenetv2_100", pretrained, num_classes=0, global_pool="")  # keeps the C x H x W map
    channels, height, width = feature_shape(backbone, image_size)
    head = ConvHead(channels, (height, width), num_classes, conv_head, hidden, dropout)
    return BackboneClassifier(backbone, head, freeze_backbone)


@register("timm", arch=lambda timm_name="resnet18", **_: timm_name)
def timm_model(
    num_classes: int,
    timm_name: str = "resnet18",
    pretrained: Pretrained = False,
    image_size: int = 64,
    hidden: Sequence[int] = (),
    dropout: float = 0.0,
    freeze_backbone: bool = False,
) -> nn.Module:
    """Any timm model (``timm_name``), pooled, with a new head."""
    return _pooled_timm(timm_name, num_classes, pretrained, hidden, dropout, freeze_backbone)


@register("simple_cnn")
def simple_cnn(
    num_classes: int,
    pretrained: Pretrained = False,
    image_size: int = 64,
    channels: Sequence[int] = (32,),
    batch_norm: bool = False,
    hidden: Sequence[int] = (256,),
    dropout: float = 0.0,
    freeze_backbone: bool = False,
    pool: bool = True,
    conv_dropout: float = 0.0,
) -> nn.Module:
    """The studies' small CNNs: [Conv 3x3 -> (BN) -> ReLU -> (MaxPool 2x2) -> (Dropout)] per width -> Flatten ->
    Dense ``hidden`` -> Dense. ``pool=false`` is the muffin/chihuahua baseline's Conv -> Flatten (many weights)."""
    if pretrained not in (False, None, "false"):
        raise FacemixConfigError("model 'simple_cnn' has no pretrained weights; set model.pretrained=false.")
    _check_size("simple_cnn", image_size, 2 ** len(channels) if pool else 1)
    layers: list[nn.Module] = []
    in_ch = 3
    for ch in channels:
        layers.append(nn.Conv2d(in_ch, ch, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(ch))
        layers.append(nn.ReLU(inplace=True))
        if pool:
            layers.append(nn.MaxPool2d(2))
        if conv_dropout > 0:
            layers.append(nn.Dropout(conv_dropout))
        in_ch = ch
    backbone = nn.Sequential(*layers)
    head = MLPHead(feature_size(backbone, image_size), num_classes, hidden, dropout)
    return BackboneClassifier(backbone, head, freeze_backbone)
