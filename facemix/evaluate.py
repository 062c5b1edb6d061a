"""``python -m facemix.evaluate ckpt=PATH [split=test]``: reports, figures and per-image predictions for one split.

Runs on ONE process over the whole split (no distributed sampler padding), reads the split from the run's own
manifest (a report never re-splits data) and the preprocessing from the checkpoint (never re-typed by the user).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from facemix.augment.presets import eval_transform
from facemix.checkpoints import load_module, run_dir_of
from facemix.config import CONFIG_PATH
from facemix.data.dataset import ManifestDataset
from facemix.data.manifest import Sample, read_manifest
from facemix.errors import FacemixConfigError, user_errors_exit
from facemix.reports.classification import classification_report, write_report
from facemix.reports.plots import (
    confusion_matrix_figure,
    curves_figure,
    gallery_figure,
    plt,
    save_figure,
    to_uint8_image,
)
from facemix.reports.runs import fresh_dir

log = logging.getLogger("facemix.evaluate")


@torch.inference_mode()
def predict_probabilities(module, dataset, batch_size: int = 64, num_workers: int = 0) -> np.ndarray:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    probs = [module(x.to(module.device)).float().softmax(dim=1).cpu() for x, _, _ in loader]
    return torch.cat(probs).numpy() if probs else np.zeros((0, module.hparams.num_classes))


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


def _log_to_tensorboard(run_dir: Path, split: str, figures: dict[str, plt.Figure]) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir / "tensorboard")) as writer:  # figures only: the scalars are in the report
        for name, fig in figures.items():
            writer.add_figure(f"eval_{split}/{name}", fig, close=False)


def evaluate_checkpoint(
    ckpt: str | Path,
    split: str = "test",
    output_dir: str | Path | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    gallery_size: int = 24,
    tensorboard: bool = True,
) -> dict:
    """Evaluate ``ckpt`` on ``split`` of its run's manifest; write every artefact into the output dir."""
    module = load_module(ckpt)
    run_dir = run_dir_of(ckpt)
    out = output_dir if output_dir is not None else run_dir / "evaluation" / f"{split}-{Path(ckpt).stem}"
    return evaluate_module(
        module, run_dir, split, out, batch_size, num_workers, gallery_size, tensorboard, fresh=output_dir is None
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
) -> dict:
    """Evaluate a trained ``ClassifierModule`` on ``split`` of ``run_dir``'s manifest, with the preprocessing it
    was trained with (its hparams); ``fresh``: write into a new ``output_dir[-N]`` instead of ``output_dir``."""
    run_dir = Path(run_dir)
    manifest = run_dir / "manifest.csv"
    if not manifest.exists():
        raise FacemixConfigError(f"{manifest} is missing: the checkpoint must sit in a facemix run dir's checkpoints/.")
    samples = [s for s in read_manifest(manifest) if s.split == split]
    if not samples:
        raise FacemixConfigError(f"split={split} has no images in {manifest}; choose one of train, val, test.")
    class_names = module.class_names
    hparams = module.hparams
    transform = eval_transform(hparams.image_size, hparams.get("interpolation", "area"))
    dataset = ManifestDataset(samples, {c: i for i, c in enumerate(class_names)}, transform)
    probs = predict_probabilities(module.eval(), dataset, batch_size, num_workers)
    y_true, y_pred = np.asarray(dataset.targets), probs.argmax(axis=1)
    out = _output_dir(output_dir, fresh)
    return write_evaluation(
        out, run_dir, split, samples, dataset, probs, y_true, y_pred, class_names, gallery_size, tensorboard
    )


def write_evaluation(
    out, run_dir, split, samples, dataset, probs, y_true, y_pred, class_names, gallery_size=24, tensorboard=True
) -> dict:
    report = classification_report(y_true, y_pred, class_names)
    text = write_report(report, class_names, out)
    with open(out / "predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source", "true", "predicted", *(f"prob_{c}" for c in class_names)])
        for s, t, p, pr in zip(samples, y_true, y_pred, probs, strict=True):
            writer.writerow([s.path, s.source, class_names[t], class_names[p], *(f"{v:.6f}" for v in pr)])
    breakdown = per_source_breakdown(samples, y_true, y_pred, class_names)
    (out / "per_source.json").write_text(json.dumps(breakdown, indent=2))
    (out / "per_source.md").write_text(_per_source_markdown(breakdown))

    figures = {"confusion_matrix": confusion_matrix_figure(report["confusion_matrix"], class_names)}
    history = read_history(run_dir)
    if history:
        figures["curves"] = curves_figure(history)
    order = sorted(range(len(samples)), key=lambda i: (y_true[i] == y_pred[i], -probs[i].max()))[:gallery_size]
    figures["gallery"] = gallery_figure(
        [to_uint8_image(dataset[i][0]) for i in order],
        [f"pred {class_names[y_pred[i]]} {probs[i].max():.2f}\ntrue {class_names[y_true[i]]}" for i in order],
        [bool(y_true[i] == y_pred[i]) for i in order],
    )
    if tensorboard:
        _log_to_tensorboard(run_dir, split, figures)
    for name, fig in figures.items():
        save_figure(fig, out / f"{name}.png")
    print(f"\nClassification report ({split} split, {len(samples)} images):\n{text}")
    print(f"Per source:\n{_per_source_markdown(breakdown)}")
    log.info("evaluation written to %s", out)
    return {"output_dir": str(out), "report": report, "per_source": breakdown}


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        evaluate_checkpoint(
            cfg.ckpt, cfg.split, cfg.get("output_dir"), cfg.batch_size, cfg.num_workers, cfg.gallery_size
        )


if __name__ == "__main__":
    main()
