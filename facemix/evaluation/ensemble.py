"""The fold models of a cross-validation as one classifier: the mean of their probabilities (nnU-Net's way).

``load_classifier(path)`` is what evaluate, predict and export call with their ``ckpt``: a checkpoint file gives its
``ClassifierModule``, a cross-validation dir (``cv_summary.json``) gives a ``FoldEnsemble`` of every fold's best
checkpoint. The ensemble looks like a module to the one prediction loop (``logits``, ``temperature``, ``hparams``,
``class_names``): its "logits" are the log of the averaged probabilities, so its softmax is exactly that average.
"""

from __future__ import annotations

from pathlib import Path

import torch

from facemix.errors import FacemixConfigError
from facemix.models.checkpoints import load_module
from facemix.run.rundir import CrossValidationDir, RunDir


class FoldEnsemble(torch.nn.Module):
    """Members that share classes and preprocessing; each keeps its own calibration temperature."""

    def __init__(self, members: list) -> None:
        super().__init__()
        first = members[0]
        keys = ("class_names", "image_size", "interpolation", "input_mean", "input_std")
        differ = [k for k in keys if any(list_or(m.hparams.get(k)) != list_or(first.hparams.get(k)) for m in members)]
        if differ:
            raise FacemixConfigError(
                f"the fold models differ in {', '.join(differ)}; an ensemble needs one input and one label space. "
                "Assemble the CV of one variant (facemix-cv) again."
            )
        self.members = torch.nn.ModuleList(members)
        self.hparams = first.hparams
        self.register_buffer("temperature", torch.ones(()))

    @property
    def class_names(self) -> list[str]:
        return list(self.hparams.class_names)

    @property
    def device(self) -> torch.device:
        return self.temperature.device

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).float().softmax(dim=1) for m in self.members]).mean(dim=0)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.probabilities(x).clamp_min(1e-12).log()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


def list_or(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def load_classifier(path: str | Path):
    """A checkpoint's module, or the fold ensemble of a cross-validation dir."""
    path = Path(path)
    cv = CrossValidationDir(path)
    if path.is_dir() and cv.summary.is_file():
        return load_ensemble(cv)
    return load_module(path)


def load_ensemble(cv: CrossValidationDir) -> FoldEnsemble:
    """Every fold's best checkpoint, as its run's summary names it."""
    checkpoints = []
    for fold, path in enumerate(cv.read_summary()["fold_runs"]):
        run = RunDir(path)
        if not run.is_finished():
            raise FacemixConfigError(f"{cv.path}: fold {fold}'s run {run.path} is gone; the ensemble needs it.")
        checkpoints.append(run.read_summary()["best_checkpoint"])
    return FoldEnsemble([load_module(c) for c in checkpoints]).eval()
