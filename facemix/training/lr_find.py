"""``tune.lr_find=true``: Lightning's learning-rate finder before the run, its plot in the run dir.

Lightning's ``Tuner.lr_find`` looks for an attribute named ``lr``; facemix's rate lives at ``model.optimizer.lr``
(a ``_partial_`` optimizer config), so the module exposes it as an ``lr`` property and the finder sets it there, and
``configure_optimizers`` (which the real fit runs again) builds every parameter group from it. The finder's short
sweep of rising rates runs on a copy of the training state that it restores afterwards (weights, optimizer, loops),
with the run's callbacks and loggers switched off, so the run itself starts as if it had not happened.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from omegaconf import DictConfig

from facemix.errors import FacemixConfigError
from facemix.reports.plots import save_figure
from facemix.run.rundir import RunDir

log = logging.getLogger("facemix.train")


def find_learning_rate(cfg: DictConfig, trainer: pl.Trainer, module, datamodule, run: RunDir) -> dict | None:
    """Run the finder when ``tune.lr_find`` asks for it; use its suggestion when ``tune.lr_find_apply``."""
    tune = cfg.get("tune") or {}
    if not tune.get("lr_find"):
        return None
    if trainer.world_size > 1:
        raise FacemixConfigError(
            "tune.lr_find=true runs on one process: find the rate with trainer.devices=1, then train the DDP run with "
            "model.optimizer.lr=<the suggestion>."
        )
    from pytorch_lightning.tuner import Tuner

    configured, apply = module.lr, bool(tune.get("lr_find_apply", True))
    steps = int(tune.get("lr_find_steps", 100))
    finder = Tuner(trainer).lr_find(
        module, datamodule=datamodule, attr_name="lr", update_attr=apply, num_training=steps
    )
    if finder is None:  # fast_dev_run: nothing to sweep
        return None
    suggestion = finder.suggestion()
    save_figure(finder.plot(suggest=suggestion is not None), run.lr_find_figure)
    applied = apply and suggestion is not None
    log.info(
        "learning-rate finder: suggestion %s (configured %.3g); %s; plot: %s",
        f"{suggestion:.3g}" if suggestion is not None else "none (too few steps: the run's epochs end the sweep)",
        configured,
        "training with it" if applied else "training with the configured rate",
        run.lr_find_figure,
    )
    return {"configured": configured, "suggestion": suggestion, "applied": applied}
