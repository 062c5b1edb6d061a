"""``facemix-demo [scale=0.1] [seed=0] [root=...]`` (or ``python -m facemix.demo``): draw the built-in demo faces,
``facemix.data.demo.write_demo`` (training draws them on first use by itself)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from facemix.config.compose import CONFIG_PATH
from facemix.config.schema import validate_config
from facemix.data.demo import demo_plan, write_demo
from facemix.run.failures import user_errors_exit


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="demo")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        root = write_demo(cfg.root, float(cfg.scale), int(cfg.seed))
        print(f"demo data set: {root} ({len(demo_plan(float(cfg.scale)))} images)")


if __name__ == "__main__":
    main()
