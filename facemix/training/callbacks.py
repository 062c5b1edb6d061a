"""Lightning callbacks facemix adds to runs: the augmentation preview, the loader's data wait, the studies'
accuracy stop, and the class weights of the train split."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_info

from facemix.reports.plots import augmentation_grid, figure_to_array, save_image
from facemix.run.rundir import RunDir


class AugmentationPreview(pl.Callback):
    """Shows what the model sees: a grid of augmented train images per class, in TensorBoard and the run dir."""

    def __init__(self, per_class: int = 8) -> None:
        self.per_class = per_class

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.datamodule is None:
            return
        dataset = trainer.datamodule.datasets["train"]
        fig = augmentation_grid(dataset, pl_module.class_names, self.per_class, seed=trainer.current_epoch)
        pixels = figure_to_array(fig)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("augment/preview", pixels, 0, dataformats="HWC")
        save_image(pixels, RunDir(trainer.default_root_dir).augment_preview)


class DataWaitMonitor(pl.Callback):
    """How much of training is spent waiting for the next batch: the loader starving the model.

    Lightning fetches a batch right before ``on_train_batch_start``, so the gap between one batch's end and the next
    one's start is the wait; start to end is the step. Logs ``perf/data_wait_fraction`` = wait / (wait + step) and
    ``perf/train_images_per_s`` per epoch (the first batch of an epoch, which pays for worker start-up, is left out).
    """

    def __init__(self) -> None:
        self.first_step_at: float | None = None  # wall-clock time of this process's first training step
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
        if self.first_step_at is None:
            self.first_step_at = time.time()
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


class AccuracyThresholdStop(EarlyStopping):
    """Stops training once train accuracy > ``train_acc`` AND val accuracy > ``val_acc`` (the MobileNetV2 study's
    Keras callback): good enough on both, so further epochs only risk over-fitting. Runs beside early stopping.

    An ``EarlyStopping`` so Lightning calls it after the module has logged the epoch's train metrics (it orders
    early-stopping and checkpoint callbacks last); validation has run by then, so both numbers are this epoch's.
    """

    def __init__(self, train_acc: float = 0.96, val_acc: float = 0.94) -> None:
        super().__init__(monitor="val/acc", mode="max", strict=False, check_on_train_epoch_end=True)
        self.train_acc = train_acc
        self.val_acc = val_acc

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass  # decided at the end of the training epoch, with both accuracies

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        train, val = metrics.get("train/acc"), metrics.get("val/acc")
        if train is None or val is None or trainer.sanity_checking:
            return
        if float(train) > self.train_acc and float(val) > self.val_acc:
            trainer.should_stop = True
            self.stopped_epoch = trainer.current_epoch
            rank_zero_info(
                f"AccuracyThresholdStop: train acc {float(train):.3f} > {self.train_acc} and val acc "
                f"{float(val):.3f} > {self.val_acc} at epoch {trainer.current_epoch}; stopping."
            )


def inverse_frequency(counts: Sequence[int]) -> list[float]:
    """``loss.class_weights=auto``: each class weighted by the inverse of its train count, the weights averaging 1
    (a class without images counts as one, so its weight stays finite)."""
    total = sum(counts)
    return [total / (len(counts) * max(1, n)) for n in counts]


class ClassWeightsFromTrainSplit(pl.Callback):
    """Hands the module the class weights of the train split once the datamodule has read it (every rank reads the
    same manifest, so DDP ranks agree); a resumed run's checkpoint restores the same weights afterwards."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            pl_module.set_class_weights(inverse_frequency(trainer.datamodule.train_class_counts()))
