"""``facemix-export ckpt=PATH format=onnx|torchscript`` (or ``python -m facemix.export``): a deployable,
parity-checked model with its preprocessing, ``facemix.deploy.export``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH
from facemix.config.schema import validate_config
from facemix.deploy.export import export
from facemix.run.failures import user_errors_exit


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="export")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        export(cfg.ckpt, cfg.format, cfg.get("output_dir"), cfg.atol)


if __name__ == "__main__":
    main()
