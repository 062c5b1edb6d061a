"""``facemix-preview [data=...] [augment=...]``: a PNG grid of augmented train images per class.

Composes the same config as training, so what it shows is exactly what ``facemix.train`` would feed the model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from facemix.config import CONFIG_PATH, register_resolvers
from facemix.errors import user_errors_exit
from facemix.reports.plots import augmentation_grid, save_figure
from facemix.train import build_datamodule, preprocessing_of
from facemix.validation import validate_config

log = logging.getLogger("facemix.preview")


def preview(cfg: DictConfig) -> Path:
    datamodule = build_datamodule(cfg, preprocessing_of(cfg))
    datamodule.prepare_data()
    datamodule.setup("fit")
    fig = augmentation_grid(datamodule.datasets["train"], datamodule.class_names, cfg.get("per_class", 8), cfg.seed)
    path = save_figure(fig, Path(cfg.paths.output_dir) / "augment_preview.png")
    ops = ", ".join(name for name, op in cfg.augment.items() if op is not None) or "no ops"
    print(f"augmentation preview ({ops}; {datamodule.image_size} px): {path}")
    return path


register_resolvers()  # the train config's run dir depends on ckpt_path


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="preview")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        preview(cfg)


if __name__ == "__main__":
    main()
