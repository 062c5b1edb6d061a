"""``python -m facemix.predict ckpt=PATH inputs=FILE|DIR|GLOB [top_k=3]``: classify your own pictures.

Preprocessing (image size, normalisation) and class names come from the checkpoint. A file that cannot be read gets
one line and does not stop the rest; the exit code is non-zero only when nothing could be predicted.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.table import Table

from facemix.augment.presets import eval_transform
from facemix.checkpoints import load_module
from facemix.config import CONFIG_PATH
from facemix.data.images import load_rgb
from facemix.data.sources import IMAGE_EXTENSIONS
from facemix.errors import FacemixConfigError, user_errors_exit
from facemix.models.explain import grad_cam, overlay
from facemix.reports.plots import to_uint8_image
from facemix.validation import validate_config

log = logging.getLogger("facemix.predict")
DECODE_ERRORS = (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


def resolve_inputs(inputs: str | Sequence[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files to predict from files, folders (recursive) and globs; plus (path, reason) for what is passed over."""
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for item in items:
        path = Path(str(item)).expanduser()
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and not p.name.startswith("."):
                    (files.append(p) if p.suffix.lower() in IMAGE_EXTENSIONS else skipped.append((p, "not an image")))
        elif path.is_file():
            files.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True) if Path(m).is_file())
            if not matches:
                skipped.append((path, "no such file, folder or glob match"))
            files += matches
    return files, skipped


def predict(
    ckpt: str | Path,
    inputs: str | Sequence[str],
    top_k: int = 3,
    batch_size: int = 32,
    cam: bool = False,
    cam_layer: str | None = None,
) -> dict:
    """Top-k classes per readable input; ``cam``: also a Grad-CAM overlay per input (of its predicted class)."""
    module = load_module(ckpt)
    names = module.class_names
    transform = eval_transform(module.hparams.image_size, module.hparams.get("interpolation", "area"))
    files, skipped = resolve_inputs(inputs)
    done: list[Path] = []
    probs: list[np.ndarray] = []
    batch: list[torch.Tensor] = []

    overlays: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            images = torch.stack(batch)
            with torch.inference_mode():
                p = module(images).float().softmax(dim=1).numpy()
            probs.extend(p)
            if cam:
                heat = grad_cam(module, images, p.argmax(axis=1).tolist(), cam_layer)
                overlays.extend(overlay(to_uint8_image(x), h) for x, h in zip(images, heat, strict=True))
            batch.clear()

    for path in files:
        try:
            batch.append(transform(image=load_rgb(path))["image"])
        except DECODE_ERRORS as exc:
            skipped.append((path, f"unreadable: {type(exc).__name__}: {exc}"))
            continue
        done.append(path)
        if len(batch) == batch_size:
            flush()
    flush()
    k = max(1, min(top_k, len(names)))
    rows = []
    for path, p in zip(done, probs, strict=True):
        order = np.argsort(-p)[:k]
        rows.append(
            {
                "file": str(path),
                "top": [{"class": names[i], "probability": float(p[i])} for i in order],
                "probabilities": {n: float(v) for n, v in zip(names, p, strict=True)},
            }
        )
    result = {"class_names": names, "predictions": rows, "skipped": [(str(p), why) for p, why in skipped]}
    if cam:
        result["cam_overlays"] = overlays  # pictures, written by write_predictions (not JSON)
    return result


def write_predictions(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    overlays = result.get("cam_overlays")
    plain = {k: v for k, v in result.items() if k != "cam_overlays"}
    (out_dir / "predictions.json").write_text(json.dumps(plain, indent=2))
    if overlays is not None:
        import cv2

        (out_dir / "cam").mkdir(exist_ok=True)
        for k, (row, picture) in enumerate(zip(result["predictions"], overlays, strict=True)):
            name = f"{k:05d}_{Path(row['file']).stem}_{row['top'][0]['class']}.png"
            cv2.imwrite(str(out_dir / "cam" / name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    with open(out_dir / "predictions.csv", "w", newline="") as fh:
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


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        validate_config(cfg)
        inputs = list(cfg.inputs) if isinstance(cfg.inputs, ListConfig) else str(cfg.inputs)
        result = predict(cfg.ckpt, inputs, cfg.top_k, cfg.batch_size, cfg.cam, cfg.get("cam_layer"))
        print_predictions(result)
        out_dir = Path(cfg.paths.output_dir)
        write_predictions(result, out_dir)
        print(f"{len(result['predictions'])} predicted, {len(result['skipped'])} skipped; written to {out_dir}")
        if not result["predictions"]:
            raise FacemixConfigError(f"nothing could be predicted from inputs={cfg.inputs}; see the lines above.")


if __name__ == "__main__":
    main()
