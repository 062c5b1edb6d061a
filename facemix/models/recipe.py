"""The training-recipe parts the LightningModule applies itself: MixUp / CutMix on the batch, and the fine-tuning
schedule (a frozen warm-up, then discriminative learning rates).

Why fixed parameter groups and dropped gradients instead of Lightning's ``BackboneFinetuning``: that callback adds
the backbone's parameter group when it unfreezes, which the scheduler built in ``configure_optimizers`` never saw
(torch 2.14's schedulers raise on the mismatch) and which DDP never registered for gradient all-reduce
(Lightning-AI/pytorch-lightning#20340: replicas drift apart silently). Here both groups exist from the first step,
every parameter keeps ``requires_grad`` (DDP reduces all of them), and during the warm-up the backbone's gradients
are dropped after the backward pass (``grad = None``), so no optimizer moves it, weight decay included; batch-norm
statistics still adapt, as in fastai's ``fine_tune``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from facemix.errors import FacemixConfigError


class BatchMixer:
    """MixUp (Zhang et al., 2018) and / or CutMix (Yun et al., 2019) on a normalised float batch, with probability
    ``prob``; returns the batch and its soft targets (one-hot rows when not mixed). torchvision v2's transforms, so
    odd batch sizes are fine (timm's ``Mixup`` asserts an even batch)."""

    def __init__(self, num_classes: int, mixup_alpha: float = 0.2, cutmix_alpha: float = 0.0, prob: float = 1.0):
        kinds = ((mixup_alpha, v2.MixUp), (cutmix_alpha, v2.CutMix))
        made = [op(alpha=alpha, num_classes=num_classes) for alpha, op in kinds if alpha > 0]
        if not made:
            raise FacemixConfigError("model.mixup: set mixup_alpha or cutmix_alpha above 0 (or model.mixup=null).")
        self.mix = made[0] if len(made) == 1 else v2.RandomChoice(made)
        self.num_classes, self.prob = num_classes, prob

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not x.is_floating_point():
            raise ValueError("BatchMixer mixes normalised float batches")
        if float(torch.rand(())) >= self.prob:
            return x, F.one_hot(y, self.num_classes).to(x.dtype)
        mixed, soft = self.mix(x, y)
        return mixed, soft.to(x.dtype)


def finetune_groups(net: torch.nn.Module, lr: float, finetune: Mapping[str, Any] | None) -> list[dict]:
    """The optimizer's parameter groups: one (all trainable parameters) without a fine-tuning schedule; else the
    head at ``lr`` and the backbone at ``lr / lr_mult`` (fastai's ``slice(lr / lr_mult, lr)`` for two groups)."""
    trainable = [p for p in net.parameters() if p.requires_grad]
    if not finetune:
        return [{"params": trainable}]
    backbone, head = _parts(net)
    mult = float(finetune.get("lr_mult", 10.0))
    return [
        {"params": [p for p in head.parameters() if p.requires_grad], "lr": lr, "name": "head"},
        {"params": [p for p in backbone.parameters() if p.requires_grad], "lr": lr / mult, "name": "backbone"},
    ]


def _parts(net: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    backbone, head = getattr(net, "backbone", None), getattr(net, "head", None)
    if backbone is None or head is None:
        raise FacemixConfigError(
            f"model.finetune needs a network with a .backbone and a .head (facemix's built-ins and model=timm have "
            f"them); {type(net).__name__} has not. Set model.finetune=null."
        )
    return backbone, head


def freeze_warmup(net: torch.nn.Module, epoch: int, finetune: Mapping[str, Any] | None) -> bool:
    """During the first ``freeze_epochs`` epochs, drop the backbone's gradients so no optimizer step moves it.
    Returns whether it was frozen."""
    if not finetune or epoch >= int(finetune.get("freeze_epochs", 1)):
        return False
    backbone, _ = _parts(net)
    for p in backbone.parameters():
        p.grad = None
    return True
