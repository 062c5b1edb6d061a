"""``facemix-scan [data=...]`` (or ``python -m facemix.scan``): check every configured source before a single
training step; the dataset card and manifest in a new run dir, ``facemix.training.inspect.scan``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH, register_resolvers
from facemix.config.schema import validate_config
from facemix.run.failures import user_errors_exit
from facemix.training.inspect import scan

register_resolvers()  # the train config's run dir depends on ckpt_path


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="scan")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        scan(cfg)


if __name__ == "__main__":
    main()
