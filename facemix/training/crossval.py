"""The cross-validation driver: ``facemix-train cv=5fold`` runs the K folds as Hydra multirun jobs; this Hydra callback
assembles their report when the last one has finished (on the machine that launched them, also with the SLURM
launcher), so one command gives K ordinary run dirs and one CV report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from facemix.errors import FacemixConfigError
from facemix.evaluation.crossval import assemble_all
from facemix.evaluation.report import ReportOptions

log = logging.getLogger("facemix.crossval")


class AssembleCrossValidation(Callback):
    """``hydra.callbacks.cross_validation`` in ``conf/cv/kfold.yaml``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        options = ReportOptions.from_config(config.report, num_workers=0)
        try:
            written = assemble_all([sweep], sweep / "cv", options)
        except FacemixConfigError as exc:  # a fold failed: its run dir says why; the others stay as they are
            log.error("the cross-validation report was not assembled: %s", exc)
            return
        for path in written:
            log.info("cross-validation report: %s", path)
