"""Lightning callbacks facemix adds to every run."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger

from facemix.reports.plots import augmentation_grid, figure_to_array, save_figure


class AugmentationPreview(pl.Callback):
    """Shows what the model sees: a grid of augmented train images per class, in TensorBoard and the run dir."""

    def __init__(self, per_class: int = 8, filename: str = "augment_preview.png") -> None:
        self.per_class = per_class
        self.filename = filename

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.datamodule is None:
            return
        dataset = trainer.datamodule.datasets["train"]
        fig = augmentation_grid(dataset, pl_module.class_names, self.per_class, seed=trainer.current_epoch)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("augment/preview", figure_to_array(fig), 0, dataformats="HWC")
        save_figure(fig, Path(trainer.default_root_dir) / self.filename)
