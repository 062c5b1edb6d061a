"""Helpers shared by the tests: image writers and the real train entry point in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TINY_DEMO_SCALE = 0.02  # 277 images: every class reaches every split


def write_image(path: Path, size=(40, 48), colour=None, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    if colour is not None:
        img[:] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def make_imagefolder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    for label, n in counts.items():
        for i in range(n):
            write_image(root / label / f"{i:03d}.png", seed=seed * 100003 + hash(label) % 997 * 1009 + i)
    return root


def tiny_overrides(data_dir: Path, run_dir: Path) -> list[str]:
    return [
        f"paths.data_dir={data_dir}",
        f"data.demo.scale={TINY_DEMO_SCALE}",
        f"hydra.run.dir={run_dir}",
        "data.image_size=32",
        "data.batch_size=8",
        "data.num_workers=0",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        "trainer.enable_progress_bar=false",
    ]


def tiny_sweep_overrides(data_dir: Path, sweep_dir: Path) -> list[str]:
    """``tiny_overrides`` for ``-m``: the jobs land in ``sweep_dir/<job number>``."""
    return [
        f"hydra.sweep.dir={sweep_dir}" if o.startswith("hydra.run.dir=") else o
        for o in tiny_overrides(data_dir, sweep_dir)
    ]


def run_train(*overrides: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    """The real entry point, in a fresh process, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "facemix.train", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"train failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def job_dir(sweep: Path, number: int) -> Path:
    """A multirun job's dir: ``<sweep>/<number>_<run name>``."""
    (found,) = sweep.glob(f"{number}_*")
    return found


def tensorboard_scalars(run_dir: Path, with_steps: bool = False) -> dict[str, list]:
    """Every scalar of a run's TensorBoard logs as ``<sub-run>/<tag>`` (``train/loss``, ``val/acc``; root tags as
    they are), read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list] = {}
    root = run_dir / "tensorboard"
    for sub in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        acc = EventAccumulator(str(sub))
        acc.Reload()
        prefix = "" if sub == root else f"{sub.name}/"
        for tag in acc.Tags()["scalars"]:
            events = acc.Scalars(tag)
            out[prefix + tag] = [(e.step, e.value) if with_steps else e.value for e in events]
    return out
