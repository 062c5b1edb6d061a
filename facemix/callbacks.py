"""Lightning callbacks facemix adds to every run."""

from __future__ import annotations

import time
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


class DataWaitMonitor(pl.Callback):
    """How much of training is spent waiting for the next batch: the loader starving the model.

    Lightning fetches a batch right before ``on_train_batch_start``, so the gap between one batch's end and the next
    one's start is the wait; start to end is the step. Logs ``perf/data_wait_fraction`` = wait / (wait + step) and
    ``perf/train_images_per_s`` per epoch (the first batch of an epoch, which pays for worker start-up, is left out).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.wait = self.step = 0.0
        self.images = 0
        self._last_end: float | None = None
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._start = time.perf_counter()
        if self._last_end is not None:
            self.wait += self._start - self._last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        end = time.perf_counter()
        if self._last_end is not None:
            self.step += end - self._start
            self.images += len(batch[1])
        self._last_end = end

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        total = self.wait + self.step
        if total > 0:
            pl_module.log("perf/data_wait_fraction", self.wait / total)
            pl_module.log("perf/train_images_per_s", self.images / total)
