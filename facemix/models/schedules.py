"""Learning-rate schedules as config (``conf/scheduler/*.yaml``, ``_partial_: true``).

Every schedule has one signature, ``(optimizer, total_steps) -> Lightning scheduler dict`` (``constant``: None), so
the module wires any of them the same way: epoch-wise ones (plateau) say so, step-wise ones (cosine, one-cycle) are
sized from ``trainer.estimated_stepping_batches`` (epochs x batches, accumulation and devices included).
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR, ReduceLROnPlateau


def constant(optimizer: Optimizer, total_steps: int) -> None:
    """No schedule: the configured rate throughout."""
    return None


def plateau(
    optimizer: Optimizer, total_steps: int, factor: float = 0.5, patience: int = 2, monitor: str = "val/loss"
) -> dict:
    """The studies' schedule: multiply the rate by ``factor`` after ``patience`` validations without a lower
    ``monitor``. ``strict=False``: with validation switched off (trainer.limit_val_batches=0) the step is skipped
    with a warning instead of stopping the run."""
    scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)
    return {"scheduler": scheduler, "monitor": monitor, "interval": "epoch", "strict": False}


def cosine_with_warmup(
    optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05, min_lr_ratio: float = 0.01
) -> dict:
    """Linear warm-up over the first ``warmup_fraction`` of the steps (Adam's early updates on a new head are
    noisy), then a half cosine down to ``min_lr_ratio`` x the configured rate, stepped every batch."""
    total = max(int(total_steps), 1)
    warmup = min(round(warmup_fraction * total), total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}


def one_cycle(
    optimizer: Optimizer,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1.0e4,
) -> dict:
    """Smith's one-cycle policy peaking at the configured rate (torch's ``OneCycleLR``, also cycling Adam's beta1
    / SGD's momentum), stepped every batch."""
    peak = [group["lr"] for group in optimizer.param_groups]
    scheduler = OneCycleLR(
        optimizer,
        max_lr=peak,
        total_steps=max(int(total_steps), 2),
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    return {"scheduler": scheduler, "interval": "step"}


def steps_for(trainer) -> int:
    """Optimizer steps the run will take; ``max_time``-only runs have no count, so a one-epoch cycle is assumed."""
    steps = trainer.estimated_stepping_batches
    if steps is None or not math.isfinite(steps):
        steps = trainer.num_training_batches if math.isfinite(trainer.num_training_batches) else 1000
    return int(steps)
