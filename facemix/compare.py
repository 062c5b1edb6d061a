"""``facemix-compare RUN_OR_SWEEP_DIR [...]`` (or ``runs=[...]``; ``python -m facemix.compare``): one table across
runs with seed spreads and paired differences, ``facemix.evaluation.compare``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH
from facemix.config.schema import validate_config
from facemix.evaluation.compare import compare
from facemix.run.failures import user_errors_exit
from facemix.run.overrides import paths_as_override


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="compare")
def _hydra_main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        runs = [str(cfg.runs)] if isinstance(cfg.runs, str) else [str(r) for r in cfg.runs]
        compare(runs, cfg.output_dir)


def main() -> None:
    """The console script: plain paths on the command line are the runs to compare."""
    sys.argv = [sys.argv[0], *paths_as_override(sys.argv[1:])]
    _hydra_main()


if __name__ == "__main__":
    main()
