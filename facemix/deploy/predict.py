"""``facemix-predict``: classify your own pictures with a checkpoint.

Preprocessing (image size, normalisation) and class names come from the checkpoint. A file that cannot be read gets
one line and does not stop the rest; the exit code is non-zero only when nothing could be predicted.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.table import Table
from torch.utils.data import Dataset

from facemix.augment.presets import eval_transform
from facemix.data.images import load_rgb
from facemix.data.sources import IMAGE_EXTENSIONS
from facemix.errors import FacemixConfigError
from facemix.evaluation.ensemble import FoldEnsemble, load_classifier
from facemix.evaluation.inference import predict as predict_dataset
from facemix.models.explain import grad_cam, overlay
from facemix.reports.plots import to_uint8_image
from facemix.run.quiet import quiet_libraries
from facemix.run.rundir import PredictionFiles

log = logging.getLogger("facemix.predict")
DECODE_ERRORS = (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError, cv2.error)


@dataclass(frozen=True)
class PredictOptions:
    """``conf/predict.yaml``'s keys besides the checkpoint and the inputs."""

    top_k: int
    batch_size: int
    num_workers: int
    cam: bool
    cam_layer: str | None
    tta: str = "none"

    @classmethod
    def from_config(cls, cfg: DictConfig) -> PredictOptions:
        return cls(cfg.top_k, cfg.batch_size, cfg.num_workers, cfg.cam, cfg.get("cam_layer"), cfg.tta)


def _walk(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted; symlinked folders are not followed (a link to a parent folder would
    make the walk endless: ``glob('**')`` follows them)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return found


def _glob(pattern: str) -> list[Path]:
    """``glob`` semantics (``*``, ``?``, ``[..]``, ``**`` for any depth, zero included) over ``_walk``."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), len(parts))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    rest = "/".join(parts[fixed:])
    if not base.is_dir():
        return []
    shapes = {rest, rest.replace("**/", "")}
    return [p for p in _walk(base) if any(fnmatch.fnmatch(p.relative_to(base).as_posix(), s) for s in shapes)]


def resolve_inputs(inputs: str | Sequence[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files to predict from files, folders (recursive) and globs; plus (path, reason) for what is passed over."""
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for item in items:
        path = Path(str(item)).expanduser()
        if path.is_dir():
            for p in _walk(path):
                (files.append(p) if p.suffix.lower() in IMAGE_EXTENSIONS else skipped.append((p, "not an image")))
        elif path.is_file():
            files.append(path)
        else:
            matches = _glob(str(path))
            if not matches:
                skipped.append((path, "no such file, folder or glob match"))
            files += matches
    return files, skipped


class FileImages(Dataset):
    """Image files as the one prediction loop reads them: ``(pixels, 0, index)``; a file that cannot be decoded
    yields black pixels and target -1 (its reason is found again afterwards, so workers never ship exceptions)."""

    def __init__(self, files: Sequence[Path], transform) -> None:
        self.files = list(files)
        self.transform = transform
        self.targets = [0] * len(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def decode(self, index: int) -> torch.Tensor:
        return self.transform(image=load_rgb(self.files[index]))["image"]

    def __getitem__(self, index: int):
        try:
            return self.decode(index), 0, index
        except DECODE_ERRORS:
            size = int(self.transform.transforms[0].height)
            return torch.zeros(3, size, size, dtype=torch.uint8), -1, index


def _decode_problem(images: FileImages, index: int) -> str:
    try:
        images.decode(index)
    except DECODE_ERRORS as exc:
        return f"unreadable: {type(exc).__name__}: {exc}"
    return "unreadable"


def _top_rows(files, probs: np.ndarray, names: Sequence[str], top_k: int) -> list[dict]:
    k = max(1, min(top_k, len(names)))
    rows = []
    for path, p in zip(files, probs, strict=True):
        order = np.argsort(-p)[:k]
        rows.append(
            {
                "file": str(path),
                "top": [{"class": names[i], "probability": float(p[i])} for i in order],
                "probabilities": {n: float(v) for n, v in zip(names, p, strict=True)},
            }
        )
    return rows


def _cam_overlays(module, images: FileImages, indices: Sequence[int], probs, batch_size: int, cam_layer) -> list:
    overlays = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        batch = torch.stack([images.decode(i) for i in chunk])
        heat = grad_cam(module, batch, probs[start : start + len(chunk)].argmax(axis=1).tolist(), cam_layer)
        overlays += [overlay(to_uint8_image(x), h) for x, h in zip(batch, heat, strict=True)]
    return overlays


def predict(ckpt: str | Path, inputs: str | Sequence[str], options: PredictOptions) -> dict:
    """Top-k classes per readable input (decoded in ``num_workers`` loader processes, batched); ``cam``: also a
    Grad-CAM overlay per input (of its predicted class). ``ckpt``: a checkpoint, or a cross-validation dir (its
    fold ensemble)."""
    module = load_classifier(ckpt)
    names = module.class_names
    transform = eval_transform(module.hparams.image_size, module.hparams.get("interpolation", "area"))
    files, skipped = resolve_inputs(inputs)
    images = FileImages(files, transform)
    predictions = predict_dataset(module, images, options.batch_size, options.num_workers, options.tta)
    decoded = predictions.targets >= 0
    skipped += [(files[i], _decode_problem(images, i)) for i in np.flatnonzero(~decoded)]
    kept = np.flatnonzero(decoded)
    probs = predictions.probabilities[kept]
    result = {
        "class_names": names,
        "predictions": _top_rows([files[i] for i in kept], probs, names, options.top_k),
        "skipped": [(str(p), why) for p, why in skipped],
    }
    if options.cam and isinstance(module, FoldEnsemble):
        log.warning("cam=true: a fold ensemble has no one feature map to explain; no Grad-CAM overlays written")
    elif options.cam:  # pictures, written by write_predictions (not JSON)
        result["cam_overlays"] = _cam_overlays(
            module, images, kept.tolist(), probs, options.batch_size, options.cam_layer
        )
    return result


def write_predictions(result: dict, out_dir: Path) -> None:
    files = PredictionFiles(out_dir)
    files.path.mkdir(parents=True, exist_ok=True)
    overlays = result.get("cam_overlays")
    plain = {k: v for k, v in result.items() if k != "cam_overlays"}
    files.json.write_text(json.dumps(plain, indent=2))
    if overlays is not None:
        files.cam.mkdir(exist_ok=True)
        for k, (row, picture) in enumerate(zip(result["predictions"], overlays, strict=True)):
            name = f"{k:05d}_{Path(row['file']).stem}_{row['top'][0]['class']}.png"
            cv2.imwrite(str(files.cam / name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    with open(files.table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "predicted", "probability", *(f"prob_{n}" for n in result["class_names"])])
        for row in result["predictions"]:
            top = row["top"][0]
            writer.writerow(
                [
                    row["file"],
                    top["class"],
                    f"{top['probability']:.6f}",
                    *(f"{row['probabilities'][n]:.6f}" for n in result["class_names"]),
                ]
            )


def print_predictions(result: dict, console: Console | None = None) -> None:
    console = console or Console(width=140)
    table = Table(title="facemix predictions")
    table.add_column("file", overflow="fold")
    k = len(result["predictions"][0]["top"]) if result["predictions"] else 1
    for i in range(k):
        table.add_column(f"top {i + 1}")
    for row in result["predictions"]:
        table.add_row(row["file"], *(f"{t['class']} {t['probability']:.3f}" for t in row["top"]))
    console.print(table)
    for path, why in result["skipped"]:
        console.print(f"[yellow]skipped[/yellow] {path}: {why}")


def predict_from_config(cfg: DictConfig) -> dict:
    """What ``facemix-predict`` does with its composed config: predict, print, write; an error when nothing could
    be predicted (every input unreadable or missing)."""
    quiet_libraries()
    inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
    result = predict(cfg.ckpt, inputs, PredictOptions.from_config(cfg))
    print_predictions(result)
    out_dir = Path(cfg.paths.output_dir)
    write_predictions(result, out_dir)
    print(f"{len(result['predictions'])} predicted, {len(result['skipped'])} skipped; written to {out_dir}")
    if not result["predictions"]:
        raise FacemixConfigError(f"nothing could be predicted from inputs={cfg.inputs}; see the lines above.")
    return result
