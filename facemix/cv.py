"""``facemix-cv <sweep dir or fold run dirs> [output_dir=...]`` (or ``python -m facemix.cv``): assemble the
cross-validation report of finished fold runs (``facemix-train cv=5fold`` does it by itself when its folds end),
``facemix.evaluation.crossval``."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH
from facemix.config.schema import validate_config
from facemix.evaluation.crossval import assemble_all
from facemix.evaluation.report import ReportOptions
from facemix.run.failures import user_errors_exit
from facemix.run.overrides import paths_as_override


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="crossval")
def _hydra_main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        runs = [str(cfg.runs)] if isinstance(cfg.runs, str) else [str(r) for r in cfg.runs]
        options = ReportOptions.from_config(cfg, num_workers=cfg.num_workers)
        assemble_all(runs, Path(cfg.output_dir or cfg.paths.output_dir), options)


def main() -> None:
    """The console script: plain paths on the command line are the runs to assemble."""
    sys.argv = [sys.argv[0], *paths_as_override(sys.argv[1:])]
    _hydra_main()


if __name__ == "__main__":
    main()
