"""The one LightningModule: any registry model, cross-entropy, an optimizer and schedule from config, per-class
metrics."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from facemix.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD, SCRATCH_INTERPOLATION
from facemix.models.recipe import BatchMixer, finetune_groups, freeze_warmup
from facemix.models.registry import create
from facemix.models.schedules import steps_for

STAGES = ("train", "val")  # training has no test stage: the report is one pass of facemix.evaluation
# conf/optimizer/adam.yaml and conf/scheduler/plateau.yaml: what a module built without a config trains with
DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3, "weight_decay": 0.0}
DEFAULT_SCHEDULER = {"_target_": "facemix.models.schedules.plateau", "_partial_": True, "factor": 0.5, "patience": 2}


def _stage_metrics(num_classes: int) -> MetricCollection:
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
            "f1_per_class": MulticlassF1Score(num_classes, average="none"),
        }
    )


def _fused_kwargs(build: functools.partial, params: Sequence[torch.nn.Parameter]) -> dict:
    """``fused=True`` where torch offers it for these parameters' device (8x faster Adam step on VGG16's CPU),
    unless the optimizer config sets ``fused`` itself."""
    if "fused" in build.keywords or "fused" not in inspect.signature(build.func).parameters or not params:
        return {}
    device = params[0].device.type
    supported = {"cuda", "cpu", "mps", "xpu"} if torch.__version__ >= "2.4" else {"cuda"}
    return {"fused": True} if device in supported and all(p.is_floating_point() for p in params) else {}


def normalize_pixels(x: torch.Tensor, pixel_mean: torch.Tensor, pixel_std: torch.Tensor) -> torch.Tensor:
    """uint8 RGB images (what the loaders yield) -> normalised floats (mean / std given in pixel units); float input
    is taken as already normalised. Done on the whole batch where it lives (GPU), not per image in loader workers."""
    if x.is_floating_point():
        return x
    return (x.float() - pixel_mean) / pixel_std


class ClassifierModule(pl.LightningModule):
    """Trains ``facemix.models.create(name, ...)``; hyper-parameters are saved so a checkpoint rebuilds itself.

    ``optimizer`` / ``scheduler`` are ``_partial_`` configs (plain mappings, so checkpoints stay loadable with
    ``weights_only=True``), instantiated in ``configure_optimizers``; null: the defaults of the shipped configs
    (Adam 1e-3, plateau).
    """

    def __init__(
        self,
        name: str,
        num_classes: int,
        class_names: Sequence[str],
        image_size: int,
        pretrained: bool | str = False,
        freeze_backbone: bool = False,
        options: Mapping[str, Any] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        channels_last: bool = False,
        class_weights: str | Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        compile: bool = False,
        input_mean: Sequence[float] = IMAGENET_MEAN,
        input_std: Sequence[float] = IMAGENET_STD,
        interpolation: str = SCRATCH_INTERPOLATION,
        finetune: Mapping[str, Any] | None = None,
        mixup: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(channels_last, bool) or not isinstance(compile, bool):
            raise ValueError("channels_last and compile must be true / false here; facemix.tuning resolves 'auto'")
        class_names = list(class_names)
        optimizer = dict(DEFAULT_OPTIMIZER if optimizer is None else optimizer)
        scheduler = dict(DEFAULT_SCHEDULER if scheduler is None else scheduler)
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        # facemix logs its own run params (facemix.loggers.run_params); these go into checkpoints only
        self.save_hyperparameters(logger=False)
        self.net = create(
            name,
            num_classes,
            pretrained=pretrained,
            image_size=image_size,
            freeze_backbone=freeze_backbone,
            **dict(options or {}),
        )
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if compile:  # in place: parameter names, and so checkpoints, stay those of the eager model
            self.net.compile()
        if isinstance(class_weights, str) and class_weights != "auto":
            raise ValueError(f"loss.class_weights is '{class_weights}'; use auto, {num_classes} numbers or null")
        if class_weights is not None and not isinstance(class_weights, str):
            class_weights = [float(w) for w in class_weights]
            if len(class_weights) != num_classes:
                raise ValueError(f"loss.class_weights has {len(class_weights)} values for {num_classes} classes")
        weights = torch.tensor(class_weights) if isinstance(class_weights, list) else torch.ones(num_classes)
        # "auto": handed in from the train split's counts before fitting (set_class_weights), saved in checkpoints
        self.register_buffer("loss_weights", weights.float())
        # softmax temperature (1: none); calibrate=true fits it on the val split after training and stores it here
        self.register_buffer("temperature", torch.ones(()))
        # uint8 pixels -> normalised floats, on the batch's device (not saved: they come from the hparams)
        self.register_buffer("pixel_mean", 255 * torch.tensor(input_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", 255 * torch.tensor(input_std).view(1, -1, 1, 1), persistent=False)
        self.metrics = torch.nn.ModuleDict({f"{s}_metrics": _stage_metrics(num_classes) for s in STAGES})
        # MixUp / CutMix of the train batches (model.mixup); the fine-tuning schedule (model.finetune)
        self.mixer = BatchMixer(num_classes, **dict(mixup)) if mixup else None
        finetune_groups(self.net, 1.0, finetune)  # a network without backbone / head is refused here, not at fit

    @property
    def class_names(self) -> list[str]:
        return list(self.hparams.class_names)

    @property
    def lr(self) -> float:
        """The learning rate (``model.optimizer.lr``), under the name Lightning's learning-rate finder looks for."""
        return float(self.hparams.optimizer["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        self.hparams.optimizer["lr"] = float(value)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_pixels(x, self.pixel_mean, self.pixel_std)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network's raw logits (before the calibration temperature) of a uint8 or normalised batch."""
        x = self.normalize(x)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x) / self.temperature

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        with_temperature(checkpoint["state_dict"])

    def set_class_weights(self, weights: Sequence[float]) -> None:
        """The training loss's weight per class, in class order: for ``loss.class_weights=auto`` the training
        package computes them from the train split and hands them in before the first step."""
        if len(weights) != self.hparams.num_classes:
            raise ValueError(f"{len(weights)} class weights for {self.hparams.num_classes} classes")
        self.loss_weights.copy_(torch.as_tensor(list(weights), dtype=torch.float32))

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y, _ = batch
        target = y
        if stage == "train" and self.mixer is not None:  # soft targets; train metrics count the larger share
            x, target = self.mixer(self.normalize(x), y)
            y = target.argmax(dim=1)
        logits = self(x)
        if stage == "train":  # weights and smoothing shape training; val losses stay comparable
            smoothing = self.hparams.label_smoothing
            loss = F.cross_entropy(logits, target, weight=self.loss_weights, label_smoothing=smoothing)
        else:
            loss = F.cross_entropy(logits, y)
        self.metrics[f"{stage}_metrics"].update(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=stage != "train")
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log("loss", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def _log_epoch_metrics(self, stage: str) -> None:
        collection = self.metrics[f"{stage}_metrics"]
        values = collection.compute()
        self.log(f"{stage}/acc", values["acc"], prog_bar=stage == "val")
        self.log(f"{stage}/f1_macro", values["f1_macro"], prog_bar=stage == "val")
        for name, f1 in zip(self.class_names, values["f1_per_class"], strict=True):
            self.log(f"{stage}/f1_{name}", f1)
        collection.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_after_backward(self) -> None:
        freeze_warmup(self.net, self.current_epoch, self.hparams.get("finetune"))

    def configure_optimizers(self):
        groups = finetune_groups(self.net, self.lr, self.hparams.get("finetune"))
        params = [p for g in groups for p in g["params"]]
        build_optimizer = instantiate(self.hparams.optimizer, _convert_="all")
        optimizer = build_optimizer(groups, **_fused_kwargs(build_optimizer, params))
        schedule = instantiate(self.hparams.scheduler, _convert_="all")(optimizer, total_steps=steps_for(self.trainer))
        return {"optimizer": optimizer, "lr_scheduler": schedule} if schedule else optimizer


def with_temperature(state_dict: dict) -> dict:
    """Checkpoints written before calibration existed have no temperature: they are uncalibrated (1)."""
    state_dict.setdefault("temperature", torch.ones(()))
    return state_dict
