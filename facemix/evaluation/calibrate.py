"""Fitting a checkpoint's softmax temperature on its run's validation split (``calibrate=true``)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from facemix.evaluation.inference import predict
from facemix.evaluation.metrics import calibration
from facemix.evaluation.sets import split_set
from facemix.models.calibration import fit_temperature, nll
from facemix.models.checkpoints import load_module, store_temperature
from facemix.run.rundir import RunDir

log = logging.getLogger("facemix.evaluate")


def calibrate_checkpoint(ckpt: str | Path, split: str = "val", batch_size: int = 64, num_workers: int = 0) -> dict:
    """Fit the softmax temperature of ``ckpt`` on ``split`` of its run's manifest and store it in the checkpoint,
    so evaluate, predict and export all use it. Returns T with the split's NLL and ECE before and after."""
    module = load_module(ckpt)
    data = split_set(module, RunDir.of_checkpoint(ckpt), split)
    logits, targets = predict(module, data.dataset, batch_size, num_workers).logits, data.targets
    t = fit_temperature(logits, targets)
    logits_t = torch.as_tensor(logits).double()
    details = {
        "temperature": t,
        "images": len(targets),
        "nll_before": nll(logits_t, torch.as_tensor(targets), 1.0),
        "nll_after": nll(logits_t, torch.as_tensor(targets), t),
        "ece_before": calibration(torch.softmax(logits_t, 1).numpy(), targets)["ece"],
        "ece_after": calibration(torch.softmax(logits_t / t, 1).numpy(), targets)["ece"],
    }
    store_temperature(ckpt, t, details)
    log.info(
        "calibrated %s on %d %s images: temperature %.3f, NLL %.3f -> %.3f, ECE %.3f -> %.3f",
        Path(ckpt).name,
        len(targets),
        split,
        t,
        details["nll_before"],
        details["nll_after"],
        details["ece_before"],
        details["ece_after"],
    )
    return details
