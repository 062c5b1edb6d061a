"""``facemix-train [overrides]`` (or ``python -m facemix.train``): command line checked -> config -> datamodule, model,
trainer -> fit -> one evaluation pass of the best checkpoint -> report.

Thin on purpose: everything it wires is built from ``_target_`` configs, so a sweep or a test changes behaviour
by overriding config, never by editing this file.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from facemix import models
from facemix.callbacks import DataWaitMonitor
from facemix.checkpoints import load_checkpoint, resume_point
from facemix.config import CONFIG_PATH, register_resolvers, resume_checkpoint
from facemix.config_tree import print_config_tree
from facemix.distributed import is_rank_zero, one_job_for_ddp
from facemix.errors import FacemixConfigError, record_failure, user_errors_exit
from facemix.evaluate import calibrate_checkpoint, evaluate_checkpoint, evaluate_module
from facemix.loggers import log_run_end, log_run_start, run_params
from facemix.models.preprocessing import Preprocessing, resolve_preprocessing
from facemix.models.pretrained import uses_pretrained_weights
from facemix.preflight import RUN_MARKERS, prepare_train_command
from facemix.reports.dataset_card import render_card_figures
from facemix.tuning import speed_settings
from facemix.validation import validate_config

log = logging.getLogger("facemix.train")
register_resolvers()  # before @hydra.main composes: the run dir depends on ckpt_path
REPORT_FILES = (
    "summary.json",
    "classification_report.txt",
    "classification_report.json",
    "confusion_matrix.png",
    "curves.png",
    "gallery.png",
    "per_source.md",
    "dataset_card.md",
    "dataset_card.png",
    "augment_preview.png",
)


def _instantiate_all(group: DictConfig | None) -> list:
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
    # not recursive: the augment / offline-recipe ops stay configs, built per process by facemix.augment
    return instantiate(
        cfg.data,
        _recursive_=False,
        _convert_="all",
        image_size=prep.image_size,
        interpolation=prep.interpolation,
        **kwargs,
    )


def _guard_run_dir(output_dir: Path, resuming: bool) -> None:
    """Never overwrite an earlier run's results (a resumed run writes into its own dir on purpose; DDP ranks > 0
    join rank 0's dir). ``preflight`` refuses such a dir before Hydra writes; this catches what reaches a job
    another way (a sweep, a notebook calling ``train``)."""
    held = [m for m in RUN_MARKERS if m != ".hydra" and (output_dir / m).exists()]
    if not resuming and is_rank_zero() and held:
        raise FileExistsError(
            f"{output_dir} already holds a run ({', '.join(held)}). Start a new run dir (the default hydra.run.dir "
            "is unique per start) or resume it with ckpt_path=<its run dir>."
        )


# a resumed run keeps its log and the description of the data it started with
KEPT_ON_RESUME = ("train.log", "manifest.csv", "dataset_card.md", "dataset_card.png", "dataset_card.json")


def _keep_earlier_reports(output_dir: Path) -> None:
    """Training a finished run further writes new reports: the earlier ones move to ``earlier/<time>/`` first, so
    nothing a user has is overwritten."""
    if not (output_dir / "summary.json").exists():
        return
    archive = output_dir / "earlier" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    archive.mkdir(parents=True)
    for path in output_dir.iterdir():
        if path.is_file() and path.name not in KEPT_ON_RESUME:
            path.rename(archive / path.name)
    log.info("the run had finished; its earlier reports moved to %s", archive)


def _check_resumed_architecture(resume_from: str, cfg: DictConfig) -> None:
    """A checkpoint of another network than the config builds: one paragraph naming both (instead of Lightning's
    state-dict size mismatch at the first step)."""
    hparams = load_checkpoint(resume_from, mmap=True, verify=False).get("hyper_parameters") or {}
    wanted = {"name": cfg.model.name, "num_classes": len(cfg.data.classes) if cfg.data.get("classes") else None}
    differs = [k for k, v in wanted.items() if v is not None and hparams.get(k) not in (None, v)]
    if differs:
        raise FacemixConfigError(
            f"ckpt_path={resume_from} holds a {hparams.get('name')} network for {hparams.get('num_classes')} classes "
            f"({hparams.get('class_names')}), but this config builds {cfg.model.name} for "
            f"{wanted['num_classes'] or '?'} classes. Resume with the run's own config (ckpt_path=<its run dir> "
            "replays it), or start a new run without ckpt_path."
        )


def _epoch_of(ckpt: str) -> int | None:
    # memory-mapped: reads the one integer, not the hundreds of MB of weights and optimizer state beside it
    return int(load_checkpoint(ckpt, mmap=True, verify=False)["epoch"]) if ckpt else None


def _best_score(trainer: pl.Trainer) -> float | None:
    score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    return float(score) if score is not None else None


def _hydra_runtime() -> tuple[dict, list[str]]:
    """Group choices and command-line overrides of this job ({} and [] outside Hydra, e.g. in a notebook)."""
    if not HydraConfig.initialized():
        return {}, []
    hydra_cfg = HydraConfig.get()
    return dict(hydra_cfg.runtime.choices), list(hydra_cfg.overrides.task)


def train(cfg: DictConfig) -> float | None:
    """Fit, evaluate the best checkpoint, write the report; return ``cfg.optimized_metric`` (for sweepers)."""
    output_dir = Path(cfg.paths.output_dir)
    validate_config(cfg)
    resume_from = resume_checkpoint(cfg.get("ckpt_path"), output_dir)
    _guard_run_dir(output_dir, resuming=resume_from is not None)
    if resume_from:
        _check_resumed_architecture(resume_from, cfg)
        if is_rank_zero():
            _keep_earlier_reports(output_dir)
    with one_job_for_ddp(output_dir):
        return _fit_test_report(cfg, output_dir, resume_from)


def _fit_test_report(cfg: DictConfig, output_dir: Path, resume_from: str | None) -> float | None:
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)

    prep = preprocessing_of(cfg)
    datamodule = build_datamodule(cfg, prep)
    classes = datamodule.resolve_classes()
    speed = speed_settings(
        cfg.trainer, cfg.model, prep.image_size, cfg.data.batch_size, len(classes), cfg.paths.get("tuning_cache")
    )
    for name, choice in speed.items():
        log.info("%s=%s: %s", name, choice.value, choice.reason)
    model = instantiate(
        cfg.model,
        _recursive_=False,  # model.optimizer / .scheduler stay configs; the module builds them in configure_optimizers
        channels_last=speed["channels_last"].value,
        compile=speed["compile"].value,
        _convert_="all",  # plain containers in hparams, so checkpoints load with torch.load(weights_only=True)
        num_classes=len(classes),
        class_names=classes,
        image_size=prep.image_size,
        input_mean=list(prep.mean),
        input_std=list(prep.std),
        interpolation=prep.interpolation,
        class_weights=cfg.loss.class_weights,
        label_smoothing=cfg.loss.label_smoothing,
    )
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        precision=speed["precision"].value,
        callbacks=_instantiate_all(cfg.get("callbacks")),
        logger=loggers or False,
    )
    choices, overrides = _hydra_runtime()
    tags = [str(t) for t in cfg.get("tags") or []]
    params = run_params(choices, overrides, cfg.seed, tags)
    if is_rank_zero():
        log_run_start(trainer.loggers, params, tags)

    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    report_split = datamodule.report_split

    if trainer.is_global_zero:  # one process over the whole split: exact, no sampler padding
        render_card_figures(output_dir)  # the data pipeline wrote the card's facts; the report draws them
        # One pass over the report split, from the decoded-image cache: the test/ metrics are the report's.
        # debug=fdr (fast_dev_run) writes no checkpoint: the report is of the weights in memory.
        calibrated = None
        if best and cfg.get("calibrate"):
            calibrated = calibrate_checkpoint(best, "val", num_workers=cfg.data.num_workers)
        served = datamodule.datasets[report_split]
        if best:
            evaluation = evaluate_checkpoint(
                best, report_split, output_dir, num_workers=cfg.data.num_workers, dataset=served
            )
        else:
            evaluation = evaluate_module(
                model, output_dir, report_split, output_dir, num_workers=cfg.data.num_workers, dataset=served
            )
        report = evaluation["report"]
        test_metrics = _test_metrics(report, evaluation["loss"], classes)
        metrics.update(test_metrics)
        for logger in trainer.loggers:
            logger.log_metrics(test_metrics, step=trainer.global_step)
        summary = {
            "run_name": cfg.get("run_name"),
            "tags": tags,
            "best_checkpoint": best,
            "class_names": list(classes),
            "report_split": report_split,
            "best_epoch": _epoch_of(best),
            "val_f1_best": _best_score(trainer),
            "parameters": sum(p.numel() for p in model.parameters()),
            "preprocessing": prep.as_dict(),
            "speed_settings": {name: {"value": c.value, "reason": c.reason} for name, c in speed.items()},
            "wall_time_s": round(time.perf_counter() - started, 1),
            # when the first training step began (unix time): with the launch time, the time to first step
            "first_train_step_at": _first_step_at(trainer),
            "data_wait_fraction": metrics.get("perf/data_wait_fraction"),  # last epoch's: is the loader keeping up?
            "train_images_per_s": metrics.get("perf/train_images_per_s"),
            "metrics": metrics,
            "calibration": calibrated,
            "test_report": report,
        }
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        _clear_failure_record(output_dir)
        final = {
            "val_f1_best": summary["val_f1_best"],
            "test_acc": report["accuracy"],
            "test_f1_macro": report["macro avg"]["f1-score"],
            **{f"test_f1_{c}": report[c]["f1-score"] for c in classes},
        }
        log_run_end(
            trainer.loggers,
            params,
            {k: v for k, v in final.items() if v is not None},
            [output_dir / name for name in REPORT_FILES],
        )
        log.info("run dir: %s", output_dir.resolve())
    return _optimized_value(cfg.get("optimized_metric"), trainer, metrics)


def _first_step_at(trainer: pl.Trainer) -> float | None:
    return next((c.first_step_at for c in trainer.callbacks if isinstance(c, DataWaitMonitor)), None)


def _test_metrics(report: dict, loss: float, classes) -> dict[str, float]:
    """The report's figures under the names the module logs for train / val, so all three share a chart."""
    return {
        "test/loss": loss,
        "test/acc": float(report["accuracy"]),
        "test/f1_macro": float(report["macro avg"]["f1-score"]),
        **{f"test/f1_{c}": float(report[c]["f1-score"]) for c in classes},
    }


def _clear_failure_record(output_dir: Path) -> None:
    """A resumed run that finishes is finished: the record of its interruption goes (into the log, not lost)."""
    failed = output_dir / "failed.json"
    if failed.exists():
        log.info(
            "run finished after an earlier stop; removing its record: %s", " ".join(failed.read_text().split())[:500]
        )
        failed.unlink()


def _optimized_value(name: str | None, trainer: pl.Trainer, metrics: dict[str, float]) -> float | None:
    """The checkpointed (best) epoch's value when the sweep optimises what checkpointing monitors, else the last."""
    if not name:
        return None
    checkpoint, best = trainer.checkpoint_callback, _best_score(trainer)
    if checkpoint is not None and checkpoint.monitor == name and best is not None:
        return best
    return metrics.get(name)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    if is_rank_zero():
        choices, overrides = _hydra_runtime()
        print_config_tree(cfg, choices, overrides, verbose=bool(cfg.get("verbose")))
    # in a sweep a failed job is recorded and raised as an exception, so Hydra runs the remaining jobs
    failure_record = record_failure(Path(cfg.paths.output_dir), write=is_rank_zero(), resume_point=resume_point)
    with failure_record, user_errors_exit(exit=not in_sweep):
        return train(cfg)


def main() -> float | None:
    """The console script: the command line is checked (and a resume replayed) before Hydra writes anything."""
    with user_errors_exit():
        sys.argv = prepare_train_command(sys.argv)
    return _hydra_main()


if __name__ == "__main__":
    main()
