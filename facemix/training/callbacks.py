"""Lightning callbacks facemix adds to runs: the augmentation preview, the loader's data wait, the studies'
accuracy stop, the class weights of the train split, and an exponential moving average of the weights."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, WeightAveraging
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


class InterruptAtNextBatch(pl.Callback):
    """Ctrl-C (SIGINT) stops the run at the next batch, as Lightning does for SIGTERM. Python raises
    KeyboardInterrupt wherever the main thread is, and one raised inside a finalizer (a loader iterator or a tensor
    being collected) is printed and dropped: a process-group Ctrl-C was once lost that way and the run trained on to
    exit 0. The handler only records the signal; the next batch (or epoch end) raises KeyboardInterrupt where
    Lightning's graceful shutdown expects it; a second Ctrl-C raises at once. Main thread only (signal handlers
    cannot be set elsewhere); the previous handler comes back at teardown, and a signal that arrived after the last
    batch is delivered to it then."""

    def __init__(self) -> None:
        self.received = False
        self._raised = False
        self._previous = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received = True

    def _stop_if_asked(self, *args) -> None:
        if self.received and not self._raised:
            self._raised = True
            raise KeyboardInterrupt

    on_train_batch_start = on_validation_batch_start = on_train_epoch_end = on_validation_epoch_end = _stop_if_asked

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous is None:
            return
        current = signal.getsignal(signal.SIGINT)
        if current == self._on_signal:  # Lightning sets SIG_IGN while it shuts down: leave that alone
            signal.signal(signal.SIGINT, self._previous)
            if self.received and not self._raised:
                os.kill(os.getpid(), signal.SIGINT)
        self._previous = None


class ClassWeightsFromTrainSplit(pl.Callback):
    """Hands the module the class weights of the train split once the datamodule has read it (every rank reads the
    same manifest, so DDP ranks agree); a resumed run's checkpoint restores the same weights afterwards."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            pl_module.set_class_weights(inverse_frequency(trainer.datamodule.train_class_counts()))


def warmup_ema(decay: float, power: float = 0.75):
    """timm's ``ModelEmaV3`` decay warm-up as torch's ``multi_avg_fn``: after ``n`` averaged steps the decay is
    ``min(decay, 1 - (1 + n) ** -power)``, so a run of a few hundred steps forgets its random start (with a fixed
    0.999, 73 % of the initial weights are still in the average after 310 steps; with the warm-up, 3e-6)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        d = min(decay, 1.0 - (1.0 + float(n_averaged)) ** -power)  # one sync per step, not per tensor
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - d)
        else:  # integer buffers (batch-norm step counts): the current value
            torch._foreach_copy_(averaged, current)

    return update


@torch.no_grad()
def recompute_batch_norm(module: pl.LightningModule, batches: Iterable, max_images: int) -> int:
    """Batch-norm statistics recomputed for the weights the module holds now (torch's ``swa_utils.update_bn``):
    averaged weights with averaged running statistics do not match (the statistics of step n were measured with the
    weights of step n), and on short runs the mismatch made a from-scratch MobileNetV2 predict one class (muffin /
    chihuahua, 48 steps: val macro F1 0.44 with the averaged statistics, 0.72 recomputed). Each layer's statistic
    becomes the plain mean over the batches (momentum None); returns how many images were seen."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    norms = [m for m in norms if m.track_running_stats]
    if not norms:
        return 0
    state = [(m, m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    seen = 0
    for batch in batches:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        module.logits(x.to(module.device))
        seen += len(x)
        if seen >= max_images:
            break
    for m, momentum, training in state:
        m.momentum = momentum
        m.train(training)
    return seen


class EMA(WeightAveraging):
    """Exponential moving average of the weights (Lightning's ``WeightAveraging``, timm's warm-up): validation,
    the checkpoints' ``state_dict`` and so the report, export and calibration use the averaged weights; a resume
    continues training from the raw ones (``current_model_state``). Before each validation the averaged weights get
    batch-norm statistics of their own, from up to ``batch_norm_images`` train images without augmentation
    (``recompute_batch_norm``; 0 keeps the averaged statistics)."""

    def __init__(
        self,
        decay: float = 0.998,
        power: float = 0.75,
        start_step: int = 0,
        use_buffers: bool = True,
        batch_norm_images: int = 1024,
    ):
        super().__init__(use_buffers=use_buffers, multi_avg_fn=warmup_ema(decay, power))
        self.start_step = start_step
        self.batch_norm_images = batch_norm_images

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and step_idx >= self.start_step

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_epoch_start(trainer, pl_module)  # the module holds the averaged weights now
        if self._average_model is None or trainer.sanity_checking or self.batch_norm_images <= 0:
            return
        datamodule = getattr(trainer, "datamodule", None)
        loader = (
            datamodule.calibration_loader(self.batch_norm_images) if hasattr(datamodule, "calibration_loader") else None
        )
        recompute_batch_norm(pl_module, loader or trainer.train_dataloader, self.batch_norm_images)


PROGRESS_LOGGER = "facemix.progress"  # the epoch lines: always in train.log; on a terminal the progress bar shows


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class _NotOnTerminals(logging.Filter):
    """Keeps the epoch lines off a console that shows the live progress bar (they still reach train.log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != PROGRESS_LOGGER


class EpochLog(pl.Callback):
    """One line per epoch (and every ``every_n_steps`` steps of a long epoch) in train.log and, when the output is
    not a terminal (a SLURM job, ``| tee``, ``> file``), on the console: what Keras prints per epoch, so a log tells
    a slow run from a hung one. Global rank 0 only.

    ``epoch 3/12 · train loss 0.512 acc 0.801 · val loss 0.430 acc 0.842 F1 0.811 (best) · lr 1.0e-04 · 212 img/s ·
    wait 3% · 1m05s, ETA 9m45s``. Lightning calls a callback's epoch end before the module logs its epoch metrics,
    so an epoch's line is written when the next epoch starts (or training ends)."""

    def __init__(self, every_n_steps: int = 200) -> None:
        self.every_n_steps = every_n_steps
        self._started = 0.0
        self._epoch_started = 0.0
        self._pending: int | None = None
        self._best: float | None = None
        self._first_epoch: int | None = None
        self.lines = logging.getLogger(PROGRESS_LOGGER)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.progress_bar_callback is None:
            return
        for handler in logging.getLogger().handlers:
            stream = getattr(handler, "stream", None)
            if not isinstance(handler, logging.FileHandler) and stream is not None and stream.isatty():
                handler.addFilter(_NotOnTerminals())

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush(trainer)
        self._epoch_started = time.perf_counter()
        self._pending = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._flush(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        total = trainer.num_training_batches
        step = batch_idx + 1
        if not trainer.is_global_zero or not self.every_n_steps or total <= 2 * self.every_n_steps:
            return
        if step % self.every_n_steps == 0 and step < total:
            spent = time.perf_counter() - self._epoch_started
            loss = trainer.callback_metrics.get("loss")
            self.lines.info(
                "epoch %d/%s · step %d/%d · loss %s · epoch ETA %s",
                trainer.current_epoch + 1, trainer.max_epochs, step, total,
                f"{float(loss):.3f}" if loss is not None else "-", _duration(spent / step * (total - step)),
            )  # fmt: skip

    def _flush(self, trainer: pl.Trainer) -> None:
        if self._pending is None or not trainer.is_global_zero:
            return
        epoch, self._pending = self._pending, None
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        f1 = m.get("val/f1_macro")
        best = f1 is not None and (self._best is None or f1 > self._best)
        self._best = f1 if best else self._best
        elapsed = time.perf_counter() - self._started
        if self._first_epoch is None:  # a resumed run starts at its next epoch: the ETA counts from there
            self._first_epoch = epoch
        done = epoch + 1 - self._first_epoch
        left = (trainer.max_epochs - epoch - 1) if trainer.max_epochs and trainer.max_epochs > 0 else 0
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        parts = [
            f"epoch {epoch + 1}/{trainer.max_epochs}",
            _metrics("train", m),
            _metrics("val", m) + (" (best)" if best else ""),
            f"lr {lr:.1e}" if lr is not None else "",
            f"{m['perf/train_images_per_s']:.0f} img/s" if "perf/train_images_per_s" in m else "",
            f"wait {m['perf/data_wait_fraction']:.0%}" if "perf/data_wait_fraction" in m else "",
            f"{_duration(elapsed)}, ETA {_duration(elapsed / max(1, done) * left)}",
        ]
        self.lines.info(" · ".join(p for p in parts if p))


def _metrics(stage: str, m: dict[str, float]) -> str:
    shown = [(name, m.get(f"{stage}/{key}")) for name, key in (("loss", "loss"), ("acc", "acc"), ("F1", "f1_macro"))]
    values = " ".join(f"{name} {value:.3f}" for name, value in shown if value is not None)
    return f"{stage} {values}" if values else ""


class ModelSummaryLine(pl.Callback):
    """One line instead of Lightning's model table: network, parameters (trainable / frozen), size, input."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        params = list(pl_module.parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        megabytes = sum(p.numel() * p.element_size() for p in params) / 2**20
        hp = pl_module.hparams
        logging.getLogger("facemix.train").info(
            "model %s: %s parameters (%s trainable), %.1f MB; %d classes at %s px, precision %s",
            hp.get("name"), f"{total:,}", f"{trainable:,}", megabytes, hp.get("num_classes"), hp.get("image_size"),
            trainer.precision,
        )  # fmt: skip


class ProbeCheck(pl.Callback):
    """The speed probe's promise, checked against the run's first epoch: a probe times a few steps of a warm network
    on a shared machine, so a noisy reading can promise a setting far faster than it trains. When the first epoch's
    step-only rate (images per second of training step, the loader's waits left out) falls below ``tolerance`` of
    the promise, the run says so and drops the cached choice, so the next run on this machine probes again."""

    def __init__(self, promise, tolerance: float = 0.5) -> None:
        self.promise = promise
        self.tolerance = tolerance
        self.checked = False

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        monitor = next((c for c in trainer.callbacks if isinstance(c, DataWaitMonitor)), None)
        if self.checked or monitor is None or monitor.step <= 0 or not trainer.is_global_zero:
            return
        self.checked = True
        trained = monitor.images / monitor.step
        if trained >= self.tolerance * self.promise.images_per_s:
            return
        from facemix.training.speed import ProbeCache

        logging.getLogger("facemix.train").warning(
            "the speed probe promised %.0f img/s for %s, the first epoch trained at %.0f img/s (training steps "
            "alone): the probe's reading was noise or the machine got busier; its cached choice is dropped and the "
            "next run here probes again (tune.reprobe=true forces it).",
            self.promise.images_per_s, self.promise.setting, trained,
        )  # fmt: skip
        ProbeCache(self.promise.cache_path).drop(self.promise.key)
