"""facemix against timm's own ``train.py``, side by side: training images/s on the same images, alternating.

Usage:
    python benchmarks/timm_parity.py --timm-train PATH/train.py [--rounds 2] [--sizes 64,128]
        [--datasets thumbs,demo] [--timm-settings bf16,fp32] [--work DIR]

``--timm-train`` is ``train.py`` from a checkout of timm's repository (github.com/huggingface/pytorch-image-models),
fetched like any reference and run with the ``timm`` package of this venv; it is never a dependency of facemix.
Two data sets, each one ``train/{masked,real,fake}`` tree that both sides read:

- ``thumbs``: the 600 real photos of ``../shared/data`` (the studies' three-class merge, <= 128 px; decoding is cheap);
- ``demo``: facemix's demo at scale 0.1 at its native sizes (600 px real / fake JPEGs and ~150 px mask PNGs, as the
  Kaggle sets ship them), linked into the same three classes.

timm side, per setting (``bf16``: ``--amp --amp-dtype bfloat16``; ``fp32``), always ``--channels-last``:

    python train.py --data-dir <tree> --train-split train --val-split validation --model mobilenetv2_100
        --num-classes 3 --img-size <S> -b 32 --workers 2 --device cpu --epochs 2 --log-interval 1

its default augmentation, its loader decoding every image every epoch (on a CPU without bf16 units, where bf16 is
emulated, ``--timm-settings fp32`` leaves the bf16 runs out); the rate is read from its per-batch log lines
of the last epoch, first batch left out (``32 * (n - 1) / sum of the update times``), the definition of facemix's
``train_images_per_s``. facemix side: its default run (``augment=keras``, the speed settings chosen for this machine)
through ``keras_parity.facemix_rate`` (2 epochs, the last one read). Each round runs every side for one (data set,
size) after another, so a shared machine's drift hits all alike; ratios are per round, never across rounds.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from keras_parity import ANCHOR, REPO, facemix_rate

TIMM_SETTINGS = {"bf16": ["--amp", "--amp-dtype", "bfloat16"], "fp32": []}
BATCH_LINE = re.compile(r"Train: (\d+) \[\s*(\d+)/(\d+).*?Time: ([0-9.]+)s,")
VAL_PER_CLASS = 8  # timm's train.py evaluates after every epoch; a small validation split keeps that short


def thumbs_tree(work: Path) -> Path:
    """The studies' 600-image merge (``make_data.sh`` of the Keras anchor) under ``<work>/thumbs``."""
    tree = work / "thumbs"
    if not (tree / "train").is_dir():
        subprocess.run([str(ANCHOR / "make_data.sh"), str(tree)], check=True, capture_output=True)
    return tree


def demo_tree(work: Path) -> Path:
    """The 0.1-scale demo drawn by facemix, its images linked (not copied) into ``<work>/demo/train/<class>``."""
    from facemix.data.demo import write_demo

    tree = work / "demo"
    if (tree / "train").is_dir():
        return tree
    drawn = write_demo(work / "demo_drawn", scale=0.1, seed=0, progress=False)
    folders = {
        "masked": [drawn / "face_mask" / split / "WithMask" for split in ("Train", "Validation", "Test")],
        "real": [drawn / "face_mask" / split / "WithoutMask" for split in ("Train", "Validation", "Test")]
        + [drawn / "real_and_fake_face" / "training_real"],
        "fake": [drawn / "real_and_fake_face" / "training_fake"],
    }
    for label, sources in folders.items():
        out = tree / "train" / label
        out.mkdir(parents=True)
        for i, source in enumerate(sources):
            for image in sorted(source.iterdir()):
                (out / f"{i}_{image.name}").symlink_to(image)
    return tree


def add_validation_split(tree: Path) -> None:
    """timm's ``--val-split validation``: a few links per class (never read by the facemix side)."""
    val = tree / "validation"
    if val.is_dir():
        return
    for folder in sorted((tree / "train").iterdir()):
        (val / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:VAL_PER_CLASS]:
            (val / folder.name / image.name).symlink_to(image.resolve())


def last_epoch_rate(log: str, batch: int) -> float:
    """Images/s of the last epoch in timm's per-batch log, its first batch (worker start-up) left out."""
    rows = [(int(e), int(i), float(t)) for e, i, _, t in BATCH_LINE.findall(log)]
    if not rows:
        raise RuntimeError(f"no 'Train:' lines in timm's output:\n{log[-3000:]}")
    last = max(e for e, _, _ in rows)
    times = [t for e, i, t in rows if e == last and i > 0]
    return batch * len(times) / sum(times)


def timm_rate(train_py: Path, tree: Path, size: int, setting: str, work: Path, tag: str) -> float:
    command = [sys.executable, str(train_py), "--data-dir", str(tree), "--train-split", "train"]
    command += ["--val-split", "validation", "--model", "mobilenetv2_100", "--num-classes", "3"]
    command += ["--img-size", str(size), "-b", "32", "--workers", "2", "--device", "cpu", "--epochs", "2"]
    command += ["--log-interval", "1", "--channels-last", "--output", str(work / "timm_out"), "--experiment", tag]
    command += TIMM_SETTINGS[setting]
    out = subprocess.run(
        command,
        cwd=work,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"timm's train.py failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return last_epoch_rate(out.stdout + out.stderr, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm-train", required=True, help="train.py of a timm repository checkout")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--datasets", default="thumbs,demo")
    parser.add_argument("--timm-settings", default="bf16,fp32", help="timm sides to run: bf16 and / or fp32")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    settings_run = args.timm_settings.split(",")
    work = Path(args.work or tempfile.mkdtemp(prefix="timm_parity_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    train_py = Path(args.timm_train).resolve()
    trees = {"thumbs": thumbs_tree, "demo": demo_tree}
    datasets = {name: trees[name](work) for name in args.datasets.split(",")}
    for tree in datasets.values():
        add_validation_split(tree)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"timm {train_py} vs facemix {REPO}; MobileNetV2, 3 classes, batch 32, 2 workers; train images/s")
    head = ["data", "size", "round", "timm bf16 + CL", "timm fp32 + CL", "facemix", "facemix / timm's best"]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head), flush=True)
    for r in range(1, args.rounds + 1):
        for name, tree in datasets.items():
            for size in sizes:
                tag = f"{name}-{size}-r{r}"
                timm = {s: timm_rate(train_py, tree, size, s, work, f"{tag}-{s}") for s in settings_run}
                ours, settings = facemix_rate("mobilenetv2", size, tree / "train", "auto", work, tag)
                best = max(timm.values())
                sides = [f"{timm[s]:.1f}" if s in timm else "-" for s in TIMM_SETTINGS]
                cells = [name, f"{size} px", str(r), *sides, f"{ours:.1f}"]
                print("| " + " | ".join([*cells, f"{ours / best:.2f}x"]) + f" |  facemix chose {settings}", flush=True)


if __name__ == "__main__":
    main()
