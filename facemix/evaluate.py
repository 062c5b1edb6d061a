"""``facemix-evaluate ckpt=PATH [split=test | data=folder data.root=...]`` (or ``python -m facemix.evaluate``): the
report set of a checkpoint on a split of its run or on an external labelled tree, ``facemix.evaluation.evaluate``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH
from facemix.config.schema import validate_config
from facemix.evaluation.evaluate import evaluate_from_config
from facemix.run.failures import user_errors_exit


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        evaluate_from_config(cfg)


if __name__ == "__main__":
    main()
