"""``facemix-preview [data=...] [augment=...]`` (or ``python -m facemix.preview``): a PNG grid of augmented train
images per class, exactly as training would feed them, ``facemix.training.inspect.preview``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH, register_resolvers
from facemix.config.schema import validate_config
from facemix.run.failures import user_errors_exit
from facemix.training.inspect import preview

register_resolvers()  # the train config's run dir depends on ckpt_path


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="preview")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        preview(cfg)


if __name__ == "__main__":
    main()
