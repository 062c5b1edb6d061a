"""The report set of one evaluation: classification report (with bootstrap intervals and calibration error),
per-image predictions, per-source breakdown, confusion matrix, reliability diagram, curves, gallery and Grad-CAM.

``write_report_set`` takes what was predicted (``EvaluationSet`` + ``Predictions``) and writes every file into one
``ReportFiles`` folder; it computes metrics through ``facemix.evaluation.metrics`` and draws through
``facemix.reports``, so the training report, ``facemix-evaluate`` and the cross-validation report share it.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facemix.evaluation.inference import Predictions
from facemix.evaluation.metrics import (
    DEFAULT_CONFIDENCE,
    bootstrap_intervals,
    calibration,
    classification_report,
    mean_nll,
    per_source_breakdown,
)
from facemix.evaluation.sets import EvaluationSet
from facemix.models.explain import grad_cam, overlay
from facemix.reports.classification import write_report
from facemix.reports.plots import (
    confusion_matrix_figure,
    curves_figure,
    figure_to_array,
    gallery_figure,
    reliability_figure,
    save_image,
    to_uint8_image,
)
from facemix.run.records import read_history
from facemix.run.rundir import ReportFiles, RunDir

log = logging.getLogger("facemix.evaluate")


@dataclass(frozen=True)
class ReportOptions:
    """How a report is made (``conf/report/default.yaml``: training's ``report.*``, facemix-evaluate's keys)."""

    batch_size: int
    gallery_size: int
    cam: bool
    cam_layer: str | None
    bootstrap_resamples: int
    tta: str = "none"  # test-time augmentation: none | flip | crops (facemix.evaluation.inference.views)
    num_workers: int = 0
    tensorboard: bool = True  # the figures also into the run's TensorBoard log

    @classmethod
    def from_config(cls, node: Mapping[str, Any], **overrides: Any) -> ReportOptions:
        keys = ("batch_size", "gallery_size", "cam", "cam_layer", "bootstrap_resamples", "tta")
        return cls(**{k: node[k] for k in keys}, **overrides)


@dataclass(frozen=True)
class Evaluation:
    """What a report says, returned to the caller (training folds it into summary.json)."""

    files: ReportFiles
    split: str
    report: dict
    per_source: dict
    loss: float  # mean NLL of the true class (what the module logs as val/loss)


def _write_predictions(files: ReportFiles, samples, y_true, y_pred, probs, class_names) -> None:
    with open(files.predictions, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source", "true", "predicted", *(f"prob_{c}" for c in class_names)])
        for s, t, p, pr in zip(samples, y_true, y_pred, probs, strict=True):
            writer.writerow([s.path, s.source, class_names[t], class_names[p], *(f"{v:.6f}" for v in pr)])


def _ci(interval) -> str:
    return f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""


def per_source_markdown(breakdown: dict) -> str:
    """The per-source table; a source's macro F1 is over the classes that source has (named in its row)."""
    lines = [
        "| source | class | images | accuracy / recall | macro F1 / F1 (over the source's own classes) | 95% CI |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for source, b in breakdown.items():
        own = ", ".join(b["classes_present"])
        lines.append(
            f"| {source} | all ({own}) | {b['images']} | {b['accuracy']:.3f} | {b['macro_f1']:.3f} | "
            f"{_ci(b.get('macro_f1_interval'))} |"
        )
        for name, c in b["classes"].items():
            lines.append(
                f"| {source} | {name} | {c['support']} | {c['recall']:.3f} | {c['f1-score']:.3f} | "
                f"{_ci(c.get('f1_interval'))} |"
            )
    return "\n".join(lines) + "\n"


def full_report(y_true, y_pred, probs, class_names: Sequence[str], resamples: int) -> dict:
    """The classification report with its bootstrap intervals (seeded: the same predictions always get the same
    intervals) and calibration error."""
    report = classification_report(y_true, y_pred, class_names)
    if resamples > 0:
        report["intervals"] = bootstrap_intervals(y_true, y_pred, class_names, resamples, DEFAULT_CONFIDENCE, seed=0)
        report["bootstrap"] = {"resamples": resamples, "confidence": DEFAULT_CONFIDENCE, "method": "percentile"}
    report["calibration"] = calibration(probs, y_true)
    return report


def _figures(data: EvaluationSet, probs, y_pred, class_names, options: ReportOptions, module, run) -> dict:
    """Every figure of the report as pixels, each drawn once (the PNG and TensorBoard get the same ones)."""
    y_true = data.targets
    report_cm = classification_report(y_true, y_pred, class_names)["confusion_matrix"]
    figures = {
        "confusion_matrix": confusion_matrix_figure(report_cm, class_names),
        "reliability": reliability_figure(calibration(probs, y_true)),
    }
    history = read_history(run) if run is not None else {}
    if history:
        figures["curves"] = curves_figure(history)
    order = sorted(range(len(y_true)), key=lambda i: (y_true[i] == y_pred[i], -probs[i].max()))[: options.gallery_size]
    pictures = [to_uint8_image(data.dataset[i][0]) for i in order]
    titles = [f"pred {class_names[y_pred[i]]} {probs[i].max():.2f}\ntrue {class_names[y_true[i]]}" for i in order]
    correct = [bool(y_true[i] == y_pred[i]) for i in order]
    figures["gallery"] = gallery_figure(pictures, titles, correct)
    if module is not None and options.cam and order:  # the same images, mistakes first: where the evidence sat
        batch = torch.stack([data.dataset[i][0] for i in order])
        heat = grad_cam(module, batch, [int(y_pred[i]) for i in order], options.cam_layer)
        overlays = [overlay(p, h) for p, h in zip(pictures, heat, strict=True)]
        figures["gradcam"] = gallery_figure(overlays, titles, correct)
    return {name: figure_to_array(fig) for name, fig in figures.items()}


def _log_to_tensorboard(run: RunDir, split: str, pictures: dict[str, np.ndarray]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run.tensorboard)) as writer:  # figures only: the scalars are in the report
        for name, pixels in pictures.items():
            writer.add_image(f"eval_{split}/{name}", pixels, 0, dataformats="HWC")


def write_report_set(
    files: ReportFiles,
    data: EvaluationSet,
    predictions: Predictions,
    class_names: Sequence[str],
    options: ReportOptions,
    module=None,
    run: RunDir | None = None,
) -> Evaluation:
    """Write the whole report set of ``predictions`` on ``data`` into ``files``; with ``module``, also Grad-CAM maps
    of the gallery images; with ``run``, its curves (and the figures into its TensorBoard log)."""
    probs = predictions.probabilities
    y_true, y_pred = data.targets, probs.argmax(axis=1)
    report = full_report(y_true, y_pred, probs, class_names, options.bootstrap_resamples)
    text = write_report(report, class_names, files.classification_text, files.classification_json)
    _write_predictions(files, data.samples, y_true, y_pred, probs, class_names)
    breakdown = per_source_breakdown(
        [s.source for s in data.samples], y_true, y_pred, class_names, options.bootstrap_resamples
    )
    files.per_source_json.write_text(json.dumps(breakdown, indent=2))
    files.per_source_markdown.write_text(per_source_markdown(breakdown))
    rendered = _figures(data, probs, y_pred, class_names, options, module, run)
    if options.tensorboard and run is not None:
        _log_to_tensorboard(run, data.split, rendered)
    for name, pixels in rendered.items():
        save_image(pixels, files.figure(name))
    print(f"\nClassification report ({data.split} split, {len(data.samples)} images):\n{text}")
    print(f"Per source:\n{per_source_markdown(breakdown)}")
    log.info("evaluation written to %s", files.path)
    return Evaluation(files, data.split, report, breakdown, mean_nll(probs, y_true))
