"""The objects of a run, built from its config: preprocessing, datamodule, module, loggers, callbacks, trainer.

Everything here is ``instantiate`` of a ``_target_`` config plus the few values only known at run time (the model's
input size and statistics, the class names the data found, the speed settings chosen for this machine), so a sweep
or a test changes behaviour by overriding config, never by editing code. ``facemix-scan`` and ``facemix-preview``
build their datamodule here too, so they see exactly what training would.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from facemix import models
from facemix.models.preprocessing import Preprocessing, resolve_preprocessing
from facemix.models.pretrained import uses_pretrained_weights
from facemix.training.callbacks import ClassWeightsFromTrainSplit, InterruptAtNextBatch, ProbeCheck
from facemix.training.speed import Choice, ProbePlan, multi_process


def instantiate_all(group: DictConfig | None) -> list:
    """Every ``_target_`` entry of a group (``callbacks``, ``logger``); ``null`` entries are switched off."""
    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def preprocessing_of(cfg: DictConfig) -> Preprocessing:
    """The input size, interpolation and statistics of the configured model (explicit config values win)."""
    model = cfg.model
    options = OmegaConf.to_container(model.get("options") or {}, resolve=True)
    return resolve_preprocessing(
        models.arch(model.name, **options),
        uses_pretrained_weights(model.get("pretrained")),
        image_size=cfg.data.get("image_size"),
        mean=model.get("input_mean"),
        std=model.get("input_std"),
        interpolation=model.get("interpolation"),
    )


def build_datamodule(cfg: DictConfig, prep: Preprocessing, **kwargs) -> pl.LightningDataModule:
    """The data config's ``FaceMixDataModule`` for this run's dir, at the model's input size."""
    # not recursive: the augment / offline-recipe ops stay configs, built per process by facemix.augment
    return instantiate(
        cfg.data,
        _recursive_=False,
        _convert_="all",
        run_dir=cfg.paths.output_dir,
        image_size=prep.image_size,
        interpolation=prep.interpolation,
        **kwargs,
    )


def build_module(cfg: DictConfig, prep: Preprocessing, classes: Sequence[str], speed: dict[str, Choice]):
    """The model config's ``ClassifierModule`` with what the data and the machine decided."""
    return instantiate(
        cfg.model,
        _recursive_=False,  # model.optimizer / .scheduler stay configs; the module builds them in configure_optimizers
        channels_last=speed["channels_last"].value,
        compile=speed["compile"].value,
        _convert_="all",  # plain containers in hparams, so checkpoints load with torch.load(weights_only=True)
        num_classes=len(classes),
        class_names=list(classes),
        image_size=prep.image_size,
        input_mean=list(prep.mean),
        input_std=list(prep.std),
        interpolation=prep.interpolation,
        class_weights=cfg.loss.class_weights,
        label_smoothing=cfg.loss.label_smoothing,
    )


def build_trainer(cfg: DictConfig, speed: dict[str, Choice]) -> pl.Trainer:
    """The trainer config's ``Trainer`` with the run's callbacks and loggers (and the class weights of the train
    split handed to the module when ``loss.class_weights=auto``)."""
    callbacks = instantiate_all(cfg.get("callbacks"))
    if cfg.loss.class_weights == "auto":
        callbacks.append(ClassWeightsFromTrainSplit())
    if getattr(speed, "promise", None) is not None:  # the probe's promise, checked in the first epoch
        callbacks.append(ProbeCheck(speed.promise))
    callbacks.append(InterruptAtNextBatch())
    loggers = instantiate_all(cfg.get("logger"))
    return instantiate(cfg.trainer, precision=speed["precision"].value, callbacks=callbacks, logger=loggers or False)


def _train_steps(cfg: DictConfig, datamodule) -> int | None:
    """Training steps the run will take (its train loader's length, the batch limit, the epochs); the data is
    prepared for it, which training would do first anyway. None when there is no epoch limit."""
    epochs = cfg.trainer.get("max_epochs")
    if not isinstance(epochs, int) or epochs < 1:
        return None
    datamodule.prepare_data()
    datamodule.setup("fit")
    batches = len(datamodule.train_dataloader())
    limit = cfg.trainer.get("limit_train_batches", 1.0)
    batches = min(batches, limit) if isinstance(limit, int) else int(batches * float(limit))
    return max(1, batches) * epochs


def probe_plan(cfg: DictConfig, datamodule) -> ProbePlan:
    """What the speed probe may spend: nothing on a debug run; a share of the run's steps otherwise (a run of a few
    batches cannot pay for one); everything again with ``tune.reprobe=true``."""
    reprobe = bool((cfg.get("tune") or {}).get("reprobe", False))
    if cfg.get("task_name") == "debug" or cfg.trainer.get("fast_dev_run") or cfg.trainer.get("overfit_batches"):
        return ProbePlan(reprobe=reprobe, skip="a debug run")
    if multi_process(cfg.trainer):  # the ranks never probe: no need to count
        return ProbePlan(reprobe=reprobe)
    return ProbePlan(_train_steps(cfg, datamodule), reprobe)
