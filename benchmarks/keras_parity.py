"""facemix against the studies' own Keras pipeline, side by side: training images/s on the same 600 real images.

Usage:
    python benchmarks/keras_parity.py [--keras-python KVENV/bin/python] [--rounds 2] [--work DIR]
        [--rows vgg16:64,mobilenetv2:64,mobilenetv2:128] [--variants auto,fp32]

The Keras side is ``../shared/anchors/keras_studies/bench.py`` (ImageDataGenerator + the studies' networks, batch
32, 3 warm-up + 10 timed steps), run with a TensorFlow venv kept outside the project (see that folder's README);
without ``--keras-python`` only facemix is timed. The facemix side is the real command, per variant:

    python -m facemix.train data=folder data.root=<600 images> "data.split={train: 0.9, val: 0.1, test: 0.0}"
        model=<m> data.image_size=<S> augment=keras trainer.max_epochs=2   (VGG16: model.options.batch_norm=false)

reading ``train_images_per_s`` (the last epoch, first batch excluded) from its ``summary.json``. Variants: ``auto``
(facemix's defaults: precision / channels_last / compile chosen for this machine) and ``fp32`` (the defaults before
they were automatic: 32-true, channels_last only for MobileNetV2). Each round runs Keras, then every facemix variant,
for one row after another, so drift of a shared machine hits all sides alike; ratios are per round, never across.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHOR = REPO.parent / "shared" / "anchors" / "keras_studies"
VARIANTS = {
    "auto": [],
    "fp32": ["trainer.precision=32-true", "model.compile=false"],  # + the old per-model channels_last, below
}
OLD_CHANNELS_LAST = {"vgg16": "false", "mobilenetv2": "true"}


def keras_rate(python: str, model: str, size: int, data: Path) -> float:
    out = subprocess.run(
        [python, str(ANCHOR / "bench.py"), model, str(size), "gen", "3", "10"],
        cwd=data.parent,
        env={**os.environ, "KERAS_ANCHOR_DATA": str(data)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    return float(json.loads(line.split(" ", 1)[1])["img_per_s"])


def facemix_rate(model: str, size: int, data: Path, variant: str, work: Path, tag: str) -> tuple[float, dict]:
    run_dir = work / "runs" / f"{time.time_ns()}-{tag}"  # a new run dir per run: facemix refuses a used one
    overrides = [
        "data=folder",
        f"data.root={data}",
        "data.split={train: 0.9, val: 0.1, test: 0.0}",
        f"model={model}",
        f"data.image_size={size}",
        "augment=keras",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        f"paths.data_dir={work / 'data'}",
        f"hydra.run.dir={run_dir}",
        *(["model.options.batch_norm=false"] if model == "vgg16" else []),
        *VARIANTS[variant],
        *([f"model.channels_last={OLD_CHANNELS_LAST[model]}"] if variant == "fp32" else []),
    ]
    subprocess.run(
        [sys.executable, "-m", "facemix.train", *overrides],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"},
        capture_output=True,
        check=True,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    settings = {k: v["value"] for k, v in summary.get("speed_settings", {}).items()}
    return float(summary["train_images_per_s"]), settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-python", default=None, help="python of a venv with tensorflow-cpu (outside the repo)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", default="vgg16:64,mobilenetv2:64,mobilenetv2:128")
    parser.add_argument("--variants", default="auto,fp32")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="keras_parity_"))
    data = work / "kdata" / "train"
    if not data.is_dir():
        subprocess.run([str(ANCHOR / "make_data.sh"), str(data.parent)], check=True, capture_output=True)
    variants = args.variants.split(",")
    rows = [(m, int(s)) for m, s in (r.split(":") for r in args.rows.split(","))]
    print(f"600 images from {data}, batch 32, augment=keras; train images/s; {args.rounds} rounds; work {work}")
    head = ["model, size", "round", "Keras"] + [f"facemix {v}" for v in variants]
    head += [f"{v} / Keras" for v in variants] if args.keras_python else []
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    chosen = {}
    for r in range(1, args.rounds + 1):
        for model, size in rows:
            keras = keras_rate(args.keras_python, model, size, data) if args.keras_python else None
            rates = {}
            for v in variants:
                rates[v], settings = facemix_rate(model, size, data, v, work, f"{model}-{size}-{v}-r{r}")
                if v == "auto":
                    chosen[(model, size)] = settings
            cells = [f"{model} {size} px", str(r), f"{keras:.1f}" if keras else "-"]
            cells += [f"{rates[v]:.1f}" for v in variants]
            cells += [f"{rates[v] / keras:.2f}x" for v in variants] if keras else []
            print("| " + " | ".join(cells) + " |", flush=True)
    for (model, size), settings in chosen.items():
        print(f"auto picked for {model} {size} px: {settings}")


if __name__ == "__main__":
    main()
