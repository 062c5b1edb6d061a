"""What an evaluation scores: a split of a run's own manifest, or an external labelled tree, served the way the
checkpoint was trained to see images at evaluation (its size and interpolation, no augmentation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facemix.augment.presets import eval_transform
from facemix.data.dataset import ManifestDataset
from facemix.data.manifest import Sample, read_manifest
from facemix.errors import FacemixConfigError
from facemix.evaluation.external import external_samples
from facemix.run.rundir import RunDir


@dataclass(frozen=True)
class EvaluationSet:
    """Manifest rows, the dataset serving them (same order), and the split's name."""

    samples: Sequence[Sample]
    dataset: Any  # a ManifestDataset over ``samples`` (training hands in the one it serves, cache included)
    split: str

    @property
    def targets(self) -> np.ndarray:
        return np.asarray(self.dataset.targets)


def eval_dataset(module, samples: Sequence[Sample]) -> ManifestDataset:
    """The samples decoded from their files, as the module was trained to see them at evaluation."""
    transform = eval_transform(module.hparams.image_size, module.hparams.get("interpolation", "area"))
    return ManifestDataset(samples, {c: i for i, c in enumerate(module.class_names)}, transform)


def split_samples_of(run: RunDir, split: str) -> list[Sample]:
    if not run.manifest.exists():
        raise FacemixConfigError(
            f"{run.manifest} is missing: the checkpoint must sit in a facemix run dir's checkpoints/."
        )
    samples = [s for s in read_manifest(run.manifest) if s.split == split]
    if not samples:
        raise FacemixConfigError(f"split={split} has no images in {run.manifest}; choose one of train, val, test.")
    return samples


def split_set(module, run: RunDir, split: str) -> EvaluationSet:
    """``split`` of the run's manifest (a report never re-splits data)."""
    samples = split_samples_of(run, split)
    return EvaluationSet(samples, eval_dataset(module, samples), split)


def external_set(module, sources: Mapping[str, Any], scan_cache: str | None) -> EvaluationSet:
    samples = external_samples(sources, module.class_names, scan_cache)
    return EvaluationSet(samples, eval_dataset(module, samples), "external")
