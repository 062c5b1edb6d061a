"""``facemix-predict ckpt=PATH inputs=FILE|DIR|GLOB [top_k=3]`` (or ``python -m facemix.predict``): classify your
own pictures, ``facemix.deploy.predict``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH
from facemix.config.schema import validate_config
from facemix.deploy.predict import predict_from_config
from facemix.run.failures import user_errors_exit


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        predict_from_config(cfg)


if __name__ == "__main__":
    main()
