"""``facemix-train [overrides]`` (or ``python -m facemix.train``): one training run, ``facemix.training.fit.train``.

The door: the command line is checked (and a resume replayed) before Hydra writes anything, Hydra composes the config
and makes the run dir, and the run goes through the error funnel that leaves ``failed.json`` on a failure.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH, register_resolvers
from facemix.config.preflight import prepare_train_command
from facemix.config.printing import print_config_tree
from facemix.run.distributed import is_rank_zero
from facemix.run.failures import record_failure, user_errors_exit
from facemix.run.rundir import RunDir
from facemix.training.fit import hydra_runtime, train

register_resolvers()  # at import: the run dir depends on ckpt_path, also in a launcher's job process


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    if is_rank_zero():
        print_config_tree(cfg, *hydra_runtime(), verbose=bool(cfg.get("verbose")))
    # in a sweep a failed job is recorded and raised as an exception, so Hydra runs the remaining jobs
    with record_failure(RunDir(cfg.paths.output_dir), write=is_rank_zero()), user_errors_exit(exit=not in_sweep):
        return train(cfg)


def main() -> float | None:
    """The console script."""
    with user_errors_exit():
        sys.argv = prepare_train_command(sys.argv)
    return _hydra_main()


if __name__ == "__main__":
    main()
