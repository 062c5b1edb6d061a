"""``python -m facemix.evaluate ckpt=PATH [split=test]``: reports, figures and per-image predictions for one split.

Runs on ONE process over the whole split (no distributed sampler padding), reads the split from the run's own
manifest (a report never re-splits data) and the preprocessing from the checkpoint (never re-typed by the user).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from facemix.augment.presets import eval_transform
from facemix.checkpoints import load_module, run_dir_of, store_temperature
from facemix.config import CONFIG_PATH
from facemix.data.dataset import ManifestDataset
from facemix.data.health import ScanCache
from facemix.data.manifest import Sample, build_manifest, read_manifest, specs_from_config, write_manifest
from facemix.data.sources import source_labels
from facemix.errors import FacemixConfigError, user_errors_exit
from facemix.models.calibration import fit_temperature, nll
from facemix.models.explain import grad_cam, overlay
from facemix.reports.classification import classification_report, write_report
from facemix.reports.plots import (
    confusion_matrix_figure,
    curves_figure,
    figure_to_array,
    gallery_figure,
    reliability_figure,
    save_image,
    to_uint8_image,
)
from facemix.reports.runs import fresh_dir
from facemix.reports.uncertainty import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, bootstrap_intervals, calibration
from facemix.validation import validate_config

log = logging.getLogger("facemix.evaluate")


@torch.inference_mode()
def predict_probabilities(module, dataset, batch_size: int = 64, num_workers: int = 0) -> np.ndarray:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    probs = [module(x.to(module.device)).float().softmax(dim=1).cpu() for x, _, _ in loader]
    return torch.cat(probs).numpy() if probs else np.zeros((0, module.hparams.num_classes))


@torch.inference_mode()
def predict_logits(module, dataset, batch_size: int = 64, num_workers: int = 0) -> np.ndarray:
    """Raw logits (before the module's temperature), for fitting a new one."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    logits = [(module(x.to(module.device)) * module.temperature).float().cpu() for x, _, _ in loader]
    return torch.cat(logits).numpy() if logits else np.zeros((0, module.hparams.num_classes))


def calibrate_checkpoint(ckpt: str | Path, split: str = "val", batch_size: int = 64, num_workers: int = 0) -> dict:
    """Fit the softmax temperature of ``ckpt`` on ``split`` of its run's manifest and store it in the checkpoint,
    so evaluate, predict and export all use it. Returns T with the split's NLL and ECE before and after."""
    module = load_module(ckpt)
    samples = _split_samples(run_dir_of(ckpt), split)
    dataset = _eval_dataset(module, samples)
    logits, targets = predict_logits(module.eval(), dataset, batch_size, num_workers), np.asarray(dataset.targets)
    t = fit_temperature(logits, targets)
    logits_t = torch.as_tensor(logits).double()
    details = {
        "temperature": t,
        "images": len(targets),
        "nll_before": nll(logits_t, torch.as_tensor(targets), 1.0),
        "nll_after": nll(logits_t, torch.as_tensor(targets), t),
        "ece_before": calibration(torch.softmax(logits_t, 1).numpy(), targets)["ece"],
        "ece_after": calibration(torch.softmax(logits_t / t, 1).numpy(), targets)["ece"],
    }
    store_temperature(ckpt, t, details)
    log.info(
        "calibrated %s on %d %s images: temperature %.3f, NLL %.3f -> %.3f, ECE %.3f -> %.3f",
        Path(ckpt).name,
        len(targets),
        split,
        t,
        details["nll_before"],
        details["nll_after"],
        details["ece_before"],
        details["ece_after"],
    )
    return details


def _split_samples(run_dir: Path, split: str) -> list[Sample]:
    manifest = run_dir / "manifest.csv"
    if not manifest.exists():
        raise FacemixConfigError(f"{manifest} is missing: the checkpoint must sit in a facemix run dir's checkpoints/.")
    samples = [s for s in read_manifest(manifest) if s.split == split]
    if not samples:
        raise FacemixConfigError(f"split={split} has no images in {manifest}; choose one of train, val, test.")
    return samples


def read_history(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch scalars from the run's CSV log: tag -> [(epoch, value)]."""
    path = run_dir / "csv" / "metrics.csv"
    history: dict[str, list[tuple[int, float]]] = {}
    if not path.exists():
        return history
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            for tag, value in row.items():
                if tag not in ("epoch", "step") and value not in ("", None) and row.get("epoch"):
                    history.setdefault(tag, []).append((int(row["epoch"]), float(value)))
    return history


def per_source_breakdown(samples: Sequence[Sample], y_true, y_pred, class_names: Sequence[str]) -> dict:
    """Accuracy and macro F1 per source, and per (source, class): exposes a model that only works on one source."""
    out: dict = {}
    for source in sorted({s.source for s in samples}):
        idx = np.array([i for i, s in enumerate(samples) if s.source == source])
        t, p = y_true[idx], y_pred[idx]
        present = sorted(set(t.tolist()) | set(p.tolist()))
        report = classification_report(t, p, class_names)
        out[source] = {
            "images": int(len(idx)),
            "accuracy": report["accuracy"],
            "macro_f1": float(np.mean([report[class_names[k]]["f1-score"] for k in present])),
            "classes": {
                class_names[k]: {m: report[class_names[k]][m] for m in ("precision", "recall", "f1-score", "support")}
                for k in sorted(set(t.tolist()))
            },
        }
    return out


def _per_source_markdown(breakdown: dict) -> str:
    lines = ["| source | class | images | accuracy / recall | macro F1 / F1 |", "| --- | --- | --- | --- | --- |"]
    for source, b in breakdown.items():
        lines.append(f"| {source} | all | {b['images']} | {b['accuracy']:.3f} | {b['macro_f1']:.3f} |")
        for name, c in b["classes"].items():
            lines.append(f"| {source} | {name} | {c['support']} | {c['recall']:.3f} | {c['f1-score']:.3f} |")
    return "\n".join(lines) + "\n"


def _output_dir(requested: str | Path, fresh: bool) -> Path:
    if fresh:
        return fresh_dir(Path(requested))
    out = Path(requested)
    if (out / "classification_report.json").exists():
        raise FileExistsError(f"{out} already holds an evaluation; choose another output_dir (or leave it unset).")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _log_to_tensorboard(run_dir: Path, split: str, pictures: dict[str, np.ndarray]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir / "tensorboard")) as writer:  # figures only: the scalars are in the report
        for name, pixels in pictures.items():
            writer.add_image(f"eval_{split}/{name}", pixels, 0, dataformats="HWC")


def _eval_dataset(module, samples: Sequence[Sample]) -> ManifestDataset:
    """The samples as the module was trained to see them at evaluation (its size and interpolation)."""
    transform = eval_transform(module.hparams.image_size, module.hparams.get("interpolation", "area"))
    return ManifestDataset(samples, {c: i for i, c in enumerate(module.class_names)}, transform)


def _evaluate_samples(
    module, samples, run_dir: Path, split: str, out: Path, batch_size: int, num_workers: int, dataset=None, **report
) -> dict:
    """Predict ``samples`` with ``module`` and write the whole report set into ``out``. ``dataset``: the samples as
    training already serves them (decoded-image cache, eval transform), so the report costs one pass over the
    split and no decoding; by default they are decoded from their files."""
    dataset = dataset if dataset is not None else _eval_dataset(module, samples)
    probs = predict_probabilities(module.eval(), dataset, batch_size, num_workers)
    y_true = np.asarray(dataset.targets)
    evaluation = write_evaluation(
        out,
        run_dir,
        split,
        samples,
        dataset,
        probs,
        y_true,
        probs.argmax(axis=1),
        module.class_names,
        module=module,
        **report,
    )
    true_probs = probs[np.arange(len(y_true)), y_true]  # mean NLL of the true class: the test/loss figure
    evaluation["loss"] = float(-np.log(np.clip(true_probs, 1e-12, None)).mean()) if len(y_true) else float("nan")
    return evaluation


def evaluate_checkpoint(
    ckpt: str | Path,
    split: str = "test",
    output_dir: str | Path | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    gallery_size: int = 24,
    tensorboard: bool = True,
    resamples: int = DEFAULT_RESAMPLES,
    cam: bool = True,
    cam_layer: str | None = None,
    dataset=None,
) -> dict:
    """Evaluate ``ckpt`` on ``split`` of its run's manifest; write every artefact into the output dir."""
    module = load_module(ckpt)
    run_dir = run_dir_of(ckpt)
    out = output_dir if output_dir is not None else run_dir / "evaluation" / f"{split}-{Path(ckpt).stem}"
    return evaluate_module(
        module,
        run_dir,
        split,
        out,
        batch_size,
        num_workers,
        gallery_size,
        tensorboard,
        fresh=output_dir is None,
        resamples=resamples,
        cam=cam,
        cam_layer=cam_layer,
        dataset=dataset,
    )


def evaluate_module(
    module,
    run_dir: str | Path,
    split: str = "test",
    output_dir: str | Path | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    gallery_size: int = 24,
    tensorboard: bool = True,
    fresh: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    cam: bool = True,
    cam_layer: str | None = None,
    dataset=None,
) -> dict:
    """Evaluate a trained ``ClassifierModule`` on ``split`` of ``run_dir``'s manifest, with the preprocessing it
    was trained with (its hparams); ``fresh``: write into a new ``output_dir[-N]`` instead of ``output_dir``;
    ``dataset``: that split as training serves it (cached pixels), instead of decoding the files again."""
    run_dir = Path(run_dir)
    # a served dataset carries its rows (the manifest's, in order): no second read, predictions stay aligned
    samples = dataset.samples if dataset is not None else _split_samples(run_dir, split)
    out = _output_dir(output_dir, fresh)
    return _evaluate_samples(
        module,
        samples,
        run_dir,
        split,
        out,
        batch_size,
        num_workers,
        gallery_size=gallery_size,
        tensorboard=tensorboard,
        resamples=resamples,
        cam=cam,
        cam_layer=cam_layer,
        dataset=dataset,
    )


def write_evaluation(
    out,
    run_dir,
    split,
    samples,
    dataset,
    probs,
    y_true,
    y_pred,
    class_names,
    gallery_size=24,
    tensorboard=True,
    resamples=DEFAULT_RESAMPLES,
    module=None,
    cam: bool = True,
    cam_layer: str | None = None,
) -> dict:
    """Every report artefact of one evaluation; with ``module``, also Grad-CAM maps of the gallery images."""
    report = classification_report(y_true, y_pred, class_names)
    if resamples > 0:  # seeded: the same predictions always get the same intervals
        report["intervals"] = bootstrap_intervals(y_true, y_pred, class_names, resamples, DEFAULT_CONFIDENCE, seed=0)
        report["bootstrap"] = {"resamples": resamples, "confidence": DEFAULT_CONFIDENCE, "method": "percentile"}
    report["calibration"] = calibration(probs, y_true)
    text = write_report(report, class_names, out)
    with open(out / "predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source", "true", "predicted", *(f"prob_{c}" for c in class_names)])
        for s, t, p, pr in zip(samples, y_true, y_pred, probs, strict=True):
            writer.writerow([s.path, s.source, class_names[t], class_names[p], *(f"{v:.6f}" for v in pr)])
    breakdown = per_source_breakdown(samples, y_true, y_pred, class_names)
    (out / "per_source.json").write_text(json.dumps(breakdown, indent=2))
    (out / "per_source.md").write_text(_per_source_markdown(breakdown))

    figures = {
        "confusion_matrix": confusion_matrix_figure(report["confusion_matrix"], class_names),
        "reliability": reliability_figure(report["calibration"]),
    }
    history = read_history(run_dir)
    if history:
        figures["curves"] = curves_figure(history)
    order = sorted(range(len(samples)), key=lambda i: (y_true[i] == y_pred[i], -probs[i].max()))[:gallery_size]
    pictures = [to_uint8_image(dataset[i][0]) for i in order]
    titles = [f"pred {class_names[y_pred[i]]} {probs[i].max():.2f}\ntrue {class_names[y_true[i]]}" for i in order]
    correct = [bool(y_true[i] == y_pred[i]) for i in order]
    figures["gallery"] = gallery_figure(pictures, titles, correct)
    if module is not None and cam and order:  # the same images, mistakes first: where the evidence sat
        batch = torch.stack([dataset[i][0] for i in order])
        heat = grad_cam(module, batch, [int(y_pred[i]) for i in order], cam_layer)
        figures["gradcam"] = gallery_figure(
            [overlay(p, h) for p, h in zip(pictures, heat, strict=True)], titles, correct
        )
    rendered = {name: figure_to_array(fig) for name, fig in figures.items()}  # each drawn once
    if tensorboard:
        _log_to_tensorboard(run_dir, split, rendered)
    for name, pixels in rendered.items():
        save_image(pixels, out / f"{name}.png")
    print(f"\nClassification report ({split} split, {len(samples)} images):\n{text}")
    print(f"Per source:\n{_per_source_markdown(breakdown)}")
    log.info("evaluation written to %s", out)
    return {"output_dir": str(out), "report": report, "per_source": breakdown}


def external_samples(sources: dict, class_names: Sequence[str], scan_cache: str | Path | None) -> list[Sample]:
    """The images of another labelled tree, mapped into the checkpoint's classes (split ``external``).

    Every class folder must map to one of the checkpoint's classes: a folder the model was never trained on has no
    right answer, so it is an error that lists each such folder and the label_map that would fix it."""
    specs = specs_from_config(sources)
    unknown = {
        spec.name: sorted(set(source_labels(spec)) - set(class_names))
        for spec in specs
        if spec.label_map is None and set(source_labels(spec)) - set(class_names)
    }
    if unknown:
        listing = "; ".join(f"data.sources.{name}: {folders}" for name, folders in unknown.items())
        example = ", ".join(f"{folder}: {class_names[0]}" for folder in next(iter(unknown.values()))[:2])
        raise FacemixConfigError(
            f"the external test set has class folders the checkpoint does not know ({listing}); its classes are "
            f"{list(class_names)}. Map each folder into them, e.g. "
            f"data.sources.{next(iter(unknown))}.label_map='{{{example}}}' (folders left out of a label_map are "
            "skipped)."
        )
    built = build_manifest(
        specs, class_names, ScanCache(scan_cache), drop_label_conflicts=False, require_all_classes=False
    )
    for source, folders in built.scan.unmapped_labels.items():
        log.info("source %s: folders %s are not in its label_map and were left out", source, folders)
    if built.bad_files:
        log.warning(
            "skipped %d unreadable images, e.g. %s",
            len(built.bad_files),
            "; ".join(f"{p} ({why})" for p, why in built.bad_files[:3]),
        )
    if not built.samples:
        raise FacemixConfigError(
            f"the external test set under {[str(s.root) for s in specs]} has no readable images in the classes "
            f"{list(class_names)}. Check data.root and the label_map."
        )
    return [replace(s, split="external") for s in built.samples]


def evaluate_external(
    ckpt: str | Path,
    data: DictConfig,
    output_dir: str | Path | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    gallery_size: int = 24,
    resamples: int = DEFAULT_RESAMPLES,
    cam: bool = True,
    cam_layer: str | None = None,
) -> dict:
    """Evaluate ``ckpt`` on a labelled tree nobody trained on (``data=folder data.root=...``): the full report set
    plus the external manifest, in a new folder (default ``<run>/evaluation/external-<tree>-<checkpoint>``)."""
    module = load_module(ckpt)
    run_dir = run_dir_of(ckpt)
    sources = OmegaConf.to_container(data.sources, resolve=True)
    samples = external_samples(sources, module.class_names, data.get("scan_cache"))
    tree = Path(str(data.get("root") or next(iter(sources.values()))["root"])).name or "tree"
    requested = output_dir or run_dir / "evaluation" / f"external-{tree}-{Path(ckpt).stem}"
    out = _output_dir(requested, fresh=output_dir is None)
    write_manifest(samples, out / "manifest.csv")
    return _evaluate_samples(
        module,
        samples,
        run_dir,
        "external",
        out,
        batch_size,
        num_workers,
        gallery_size=gallery_size,
        resamples=resamples,
        cam=cam,
        cam_layer=cam_layer,
    )


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        if cfg.get("data") is not None:
            evaluate_external(
                cfg.ckpt,
                cfg.data,
                cfg.get("output_dir"),
                cfg.batch_size,
                cfg.num_workers,
                cfg.gallery_size,
                cfg.bootstrap_resamples,
                cfg.cam,
                cfg.get("cam_layer"),
            )
            return
        evaluate_checkpoint(
            cfg.ckpt,
            cfg.split,
            cfg.get("output_dir"),
            cfg.batch_size,
            cfg.num_workers,
            cfg.gallery_size,
            resamples=cfg.bootstrap_resamples,
            cam=cfg.cam,
            cam_layer=cfg.get("cam_layer"),
        )


if __name__ == "__main__":
    main()
