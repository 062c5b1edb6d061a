"""Loggers as their users read them, and what facemix records in every logger at the start and end of a run.

- TensorBoard laid out like Keras' callback: ``train/loss`` and ``val/loss`` become the tag ``loss`` in the sub-runs
  ``train`` and ``val``, so both curves share one chart; the run's params and final metrics fill the HParams tab.
- A CSV logger that a resumed run appends to (Lightning's deletes ``metrics.csv`` when it starts).
- Every logger gets the same run params (group choices, overrides, seed, tags) at the start, and the report files
  at the end where it stores files (MLflow, wandb).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

from facemix.run.overrides import is_place, parse_overrides

log = logging.getLogger(__name__)
SPLIT_RUNS = ("train", "val", "test")


def split_run_tag(key: str) -> tuple[str, str]:
    """``train/loss`` -> (``train``, ``loss``); per-epoch training diagnostics join the ``train`` sub-run; anything
    else stays in the run's root (``("", key)``)."""
    head, _, tail = key.partition("/")
    if head in SPLIT_RUNS and tail:
        return head, tail
    if head == "perf":
        return "train", key
    if key.startswith("lr-"):  # LearningRateMonitor: lr-<optimizer>, lr-<optimizer>/<param group name>
        optimizer, _, group = key.partition("/")
        return "train", (f"lr/{group}" if group else "lr") if optimizer.count("-") == 1 else key
    return "", key


class SplitTensorBoardLogger(TensorBoardLogger):
    """``TensorBoardLogger`` writing each split into its own sub-run with one tag per metric (as Keras does), and no
    ``epoch`` card. Images and the HParams data stay in the run's root dir."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._split_writers: dict[str, Any] = {}

    def _writer(self, split: str):
        if not split:
            return self.experiment
        if split not in self._split_writers:
            from torch.utils.tensorboard import SummaryWriter

            self._split_writers[split] = SummaryWriter(log_dir=os.path.join(self.log_dir, split))
        return self._split_writers[split]

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            if key == "epoch":  # Lightning adds it to every record; the x axis already says it
                continue
            split, tag = split_run_tag(key)
            self._writer(split).add_scalar(tag, value.item() if isinstance(value, Tensor) else value, step)

    @rank_zero_only
    def save(self) -> None:
        super().save()
        for writer in self._split_writers.values():
            writer.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        for writer in self._split_writers.values():
            writer.close()
        self._split_writers.clear()


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:  # the parent deletes metrics.csv here
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                self.metrics_keys = sorted(next(csv.reader(fh), []))


class ResumableCSVLogger(CSVLogger):
    """``pytorch_lightning.loggers.CSVLogger`` that appends to the run's existing ``metrics.csv``."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


RUN_GROUPS = (
    "data",
    "data/sources",
    "augment",
    "model",
    "optimizer",
    "scheduler",
    "regularization",
    "trainer",
    "experiment",
    "debug",
)


def run_params(choices: Mapping[str, Any], overrides: Sequence[str], seed: int, tags: Sequence[str]) -> dict:
    """What distinguishes a run from its neighbours: the config groups that shape it, the keys set on the command
    line (not where files live), seed and tags. Small on purpose: it becomes the columns of TensorBoard's HParams
    table and MLflow's params."""
    params: dict[str, Any] = {f"choice/{g}": str(choices[g]) for g in RUN_GROUPS if choices.get(g) is not None}
    for override in parse_overrides([str(o) for o in overrides], strict=False):
        if override.value is not None and "." in override.key and not is_place(override.key):
            params[f"override/{override.key}"] = override.value
    params["seed"] = int(seed)
    params["tags"] = ",".join(tags)
    return params


def log_run_start(loggers: Iterable[Logger], params: Mapping[str, Any], tags: Sequence[str]) -> None:
    """The run params in every logger, and the tags where a logger has its own notion of them."""
    for logger in loggers:
        logger.log_hyperparams(dict(params))
        if isinstance(logger, MLFlowLogger) and tags:
            for tag in tags:
                logger.experiment.set_tag(logger.run_id, tag, "true")
        if isinstance(logger, WandbLogger) and tags:
            logger.experiment.tags = tuple(tags)


def log_run_end(
    loggers: Iterable[Logger], params: Mapping[str, Any], final: Mapping[str, float], files: Iterable[Path]
) -> None:
    """Final metrics into TensorBoard's HParams tab; report files into the loggers that keep files."""
    files = [f for f in files if Path(f).is_file()]
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(dict(params), metrics={f"hparams/{k}": v for k, v in final.items()})
        elif isinstance(logger, MLFlowLogger):
            for path in files:
                logger.experiment.log_artifact(logger.run_id, str(path))
        elif isinstance(logger, WandbLogger):
            for path in files:
                logger.experiment.save(str(path), base_path=str(Path(path).parent), policy="now")
        logger.save()
