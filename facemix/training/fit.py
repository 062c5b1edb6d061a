"""One training run: check where it writes, fit, evaluate the best checkpoint once, write the summary.

``train(cfg)`` is what ``facemix-train`` calls inside Hydra and what a notebook or test calls with a composed
config; it returns ``cfg.optimized_metric`` for Hydra's sweepers. The report is one pass of the best checkpoint over
the report split on global rank 0, from the split training already serves (decoded-image cache): exact, with no
distributed-sampler padding, and no test stage in the Trainer.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from facemix.config.schema import validate_config
from facemix.errors import FacemixConfigError
from facemix.evaluation.calibrate import calibrate_checkpoint
from facemix.evaluation.evaluate import evaluate_module
from facemix.evaluation.report import Evaluation, ReportOptions
from facemix.evaluation.sets import EvaluationSet
from facemix.models.checkpoints import average_checkpoints, checkpoint_epoch, load_checkpoint, load_module
from facemix.reports.dataset_card import render_card_figures
from facemix.reports.pages import write_run_page
from facemix.run.distributed import is_rank_zero, one_job_for_ddp
from facemix.run.quiet import quiet_libraries
from facemix.run.resume import requeued_resume, resume_checkpoint, slurm_restarts
from facemix.run.rundir import RunDir, one_writer
from facemix.training.build import build_datamodule, build_module, build_trainer, preprocessing_of, probe_plan
from facemix.training.callbacks import DataWaitMonitor
from facemix.training.checkpoint_io import remove_partials
from facemix.training.loggers import log_run_end, log_run_start, run_params
from facemix.training.lr_find import find_learning_rate
from facemix.training.speed import log_speed, speed_settings

log = logging.getLogger("facemix.train")


def _guard_run_dir(run: RunDir, resuming: bool) -> None:
    """Never overwrite an earlier run's results (a resumed run writes into its own dir on purpose; DDP ranks > 0
    join rank 0's dir). The preflight refuses such a dir before Hydra writes; this catches what reaches a job
    another way (a sweep, a notebook calling ``train``)."""
    held = [m for m in run.markers() if m != RunDir.HYDRA]
    if not resuming and is_rank_zero() and held:
        raise FileExistsError(
            f"{run.path} already holds a run ({', '.join(held)}). Start a new run dir (the default hydra.run.dir "
            "is unique per start) or resume it with ckpt_path=<its run dir>."
        )


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


def train(cfg: DictConfig) -> float | None:
    """Fit, evaluate the best checkpoint, write the report; return ``cfg.optimized_metric`` (for sweepers)."""
    run = RunDir(cfg.paths.output_dir)
    quiet_libraries(bool(cfg.get("verbose")))
    validate_config(cfg)
    resume_from = resume_checkpoint(cfg.get("ckpt_path"), run.path) or requeued_resume(run)
    _guard_run_dir(run, resuming=resume_from is not None or slurm_restarts() > 0)  # a requeued job: its own dir
    if resume_from:
        _check_resumed_architecture(resume_from, cfg)
    with one_writer(run) if is_rank_zero() else nullcontext(), one_job_for_ddp(run.path):
        if is_rank_zero():
            remove_partials(run.checkpoints)  # what a killed save left behind
        return fit_and_report(cfg, run, resume_from)


def hydra_runtime() -> tuple[dict, list[str]]:
    """Group choices and command-line overrides of this job ({} and [] outside Hydra, e.g. in a notebook)."""
    if not HydraConfig.initialized():
        return {}, []
    hydra_cfg = HydraConfig.get()
    return dict(hydra_cfg.runtime.choices), list(hydra_cfg.overrides.task)


def fit_and_report(cfg: DictConfig, run: RunDir, resume_from: str | None) -> float | None:
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)
    prep = preprocessing_of(cfg)
    datamodule = build_datamodule(cfg, prep)
    classes = datamodule.resolve_classes()
    plan = probe_plan(cfg, datamodule)
    speed = speed_settings(
        cfg.trainer, cfg.model, prep.image_size, cfg.data.batch_size, len(classes), cfg.paths.get("tuning_cache"), plan
    )
    log_speed(speed)
    module = build_module(cfg, prep, classes, speed)
    trainer = build_trainer(cfg, speed)
    tags = [str(t) for t in cfg.get("tags") or []]
    params = run_params(*hydra_runtime(), cfg.seed, tags)
    if is_rank_zero():
        log_run_start(trainer.loggers, params, tags)
    lr_found = None if resume_from else find_learning_rate(cfg, trainer, module, datamodule, run)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        if resume_from:  # only now, with the new training done: a failed continuation leaves the run as it was
            run.archive_reports()
        render_card_figures(run.card_json, run.card_figure, run.label_conflicts_figure)
        reported = report_best(cfg, run, trainer, module, datamodule)
        report = report_metrics(reported.evaluation, classes)
        metrics.update(report)
        for logger in trainer.loggers:
            logger.log_metrics(report, step=trainer.global_step)
        summary = summary_of(cfg, trainer, module, speed, reported, metrics, started)
        summary |= {"preprocessing": prep.as_dict(), "lr_find": lr_found}
        run.write_summary(summary)
        write_run_page(run)
        run.clear_failure()
        final = {"val_f1_best": summary["val_f1_best"], **{k.replace("/", "_"): v for k, v in report.items()}}
        final.pop("test_loss")
        log_run_end(trainer.loggers, params, {k: v for k, v in final.items() if v is not None}, run.report_files())
        log.info("run dir: %s", run.path.resolve())
    return optimized_value(cfg.get("optimized_metric"), trainer, metrics)


def _best_checkpoint(trainer: pl.Trainer) -> str:
    return trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""


@dataclass(frozen=True)
class Reported:
    """What the run reports: the evaluation of which checkpoint, calibrated how, averaged from which."""

    evaluation: Evaluation
    checkpoint: str  # "" when the report is of the weights in memory (debug=fdr writes no checkpoint)
    calibration: dict | None = None
    averaged_from: list[str] | None = None


def _average_best(trainer: pl.Trainer, run: RunDir, k: int) -> tuple[str, list[str]]:
    """``average_top_k=k``: the mean of the k best checkpoints the checkpoint callback kept (fewer if it kept
    fewer), as a checkpoint of its own."""
    callback = trainer.checkpoint_callback
    scores = {path: float(score) for path, score in callback.best_k_models.items()}
    ranked = sorted(scores, key=scores.__getitem__, reverse=callback.mode == "max")[:k]
    if len(ranked) < k:
        log.warning("average_top_k=%d: only %d checkpoints were kept; averaging those", k, len(ranked))
    averaged = average_checkpoints(ranked, run.averaged_checkpoint(k))
    log.info("reporting the mean of the %d best checkpoints: %s", len(ranked), averaged)
    return str(averaged), ranked


def report_best(cfg: DictConfig, run: RunDir, trainer, module, datamodule) -> Reported:
    """One pass of the best checkpoint (or the mean of the best k) over the report split, from the dataset training
    serves (cached pixels); ``calibrate=true`` fits its temperature on val first. debug=fdr (fast_dev_run) writes
    no checkpoint: the report is of the weights in memory."""
    best, averaged_from = _best_checkpoint(trainer), None
    if best and (cfg.get("average_top_k") or 0) >= 2:
        best, averaged_from = _average_best(trainer, run, int(cfg.average_top_k))
    calibrated = None
    if best and cfg.get("calibrate"):
        calibrated = calibrate_checkpoint(best, "val", num_workers=cfg.data.num_workers)
    split = datamodule.report_split
    served = datamodule.datasets[split]
    data = EvaluationSet(served.samples, served, split)
    options = ReportOptions.from_config(cfg.report, num_workers=cfg.data.num_workers)
    evaluated = load_module(best) if best else module
    return Reported(evaluate_module(evaluated, data, run.report, options, run), best, calibrated, averaged_from)


def report_metrics(evaluation: Evaluation, classes) -> dict[str, float]:
    """The report's figures under the names the module logs for train / val, so all three share a chart."""
    report = evaluation.report
    return {
        "test/loss": evaluation.loss,
        "test/acc": float(report["accuracy"]),
        "test/f1_macro": float(report["macro avg"]["f1-score"]),
        **{f"test/f1_{c}": float(report[c]["f1-score"]) for c in classes},
    }


def _best_score(trainer: pl.Trainer) -> float | None:
    score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    return float(score) if score is not None else None


def summary_of(cfg, trainer, module, speed, reported: Reported, metrics, started) -> dict:
    """``summary.json``: what the run was, how it went and what its report says, for people and facemix-compare."""
    best = reported.checkpoint
    wait = next((c for c in trainer.callbacks if isinstance(c, DataWaitMonitor)), None)
    return {
        "run_name": cfg.get("run_name"),
        "tags": [str(t) for t in cfg.get("tags") or []],
        "best_checkpoint": best,  # the one reported: with average_top_k, the averaged checkpoint
        "averaged_from": reported.averaged_from,
        "class_names": list(module.class_names),
        "report_split": reported.evaluation.split,
        "best_epoch": checkpoint_epoch(best) if best else None,
        "val_f1_best": _best_score(trainer),
        "parameters": sum(p.numel() for p in module.parameters()),
        "speed_settings": {name: {"value": c.value, "reason": c.reason} for name, c in speed.items()},
        "wall_time_s": round(time.perf_counter() - started, 1),
        # when the first training step began (unix time): with the launch time, the time to first step
        "first_train_step_at": wait.first_step_at if wait else None,
        "data_wait_fraction": metrics.get("perf/data_wait_fraction"),  # last epoch's: is the loader keeping up?
        "train_images_per_s": metrics.get("perf/train_images_per_s"),
        "metrics": metrics,
        "calibration": reported.calibration,
        "test_report": reported.evaluation.report,
    }


def optimized_value(name: str | None, trainer: pl.Trainer, metrics: dict[str, float]) -> float | None:
    """The checkpointed (best) epoch's value when the sweep optimises what checkpointing monitors, else the last."""
    if not name:
        return None
    checkpoint, best = trainer.checkpoint_callback, _best_score(trainer)
    if checkpoint is not None and checkpoint.monitor == name and best is not None:
        return best
    return metrics.get(name)
