"""A CSV logger that a resumed run appends to.

Lightning's CSV writer deletes an existing ``metrics.csv`` when it starts, so resuming a run (``ckpt_path=...``)
would throw away the epochs logged before the interruption. This writer keeps them: it starts from the existing
header and appends, widening the header when new metrics appear.
"""

from __future__ import annotations

import csv

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


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
