"""Helpers shared by the tests: image writers and the real entry points, in this process or a fresh one."""

import os
import subprocess
import sys
import zlib
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
    """Random-noise pictures per class folder, the same in every process (crc32, not the salted ``hash``)."""
    for label, n in counts.items():
        for i in range(n):
            write_image(root / label / f"{i:03d}.png", seed=seed * 100003 + zlib.crc32(label.encode()) % 997 * 1009 + i)
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


def run_train(
    *overrides: str, check: bool = True, timeout: int = 300, fresh_process: bool = False
) -> subprocess.CompletedProcess:
    """The real entry point (``facemix-train``'s ``main``), as a user runs it: in this process by default (the
    same code path, without paying ~5 s of imports per run), or in a fresh one where the process itself is under
    test (DDP re-launch, signals, forked loader workers, a launcher plugin)."""
    if fresh_process:
        result = subprocess.run(
            [sys.executable, "-m", "facemix.train", *overrides],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    else:
        result = run_entry_in_process("facemix.train", list(overrides))
    if check and result.returncode != 0:
        raise AssertionError(f"train failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return result


def run_entry_in_process(module: str, args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in this process: argv, working dir, environment and logging handlers are
    restored afterwards; stdout and stderr are captured together (both fields hold all of it)."""
    import contextlib
    import importlib
    import io
    import logging

    from hydra.core.global_hydra import GlobalHydra

    entry = importlib.import_module(module)
    saved = (sys.argv[:], os.getcwd(), dict(os.environ), logging.root.handlers[:], logging.root.level)
    output = io.StringIO()
    # libraries that log through their own console handler (Lightning's) bound it to the stream of their import
    # (imported above, so their handlers exist by now)
    consoles = [
        h
        for lg in [logging.root, *logging.Logger.manager.loggerDict.values()]
        for h in getattr(lg, "handlers", [])
        if type(h) is logging.StreamHandler
    ]
    streams = [h.stream for h in consoles]
    code: int = 0
    try:
        os.chdir(cwd)
        sys.argv = [module, *args]
        # no handler from pytest or an earlier run: messages go where a user's would (the console, then Hydra's)
        logging.root.handlers = []
        for handler in consoles:
            handler.setStream(output)
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                entry.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        argv, cwd_before, env, handlers, level = saved
        for handler, stream in zip(consoles, streams, strict=True):
            handler.setStream(stream)
        for handler in logging.root.handlers:  # Hydra's job logging: file and console handlers of this run
            if handler not in handlers:
                handler.close()
        logging.root.handlers, logging.root.level = handlers, level
        sys.argv = argv
        os.chdir(cwd_before)
        os.environ.clear()
        os.environ.update(env)
        GlobalHydra.instance().clear()
    text = output.getvalue()
    return subprocess.CompletedProcess([module, *args], code, text, text)


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


def read_picture(path: Path) -> np.ndarray:
    """A PNG / JPEG as H x W x 3 RGB, failing clearly when it is not a picture."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable picture"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def assert_drawn(path: Path, min_side: int = 80) -> np.ndarray:
    """The figure exists, has a sensible size and is not blank (some ink on a white page, some variation)."""
    image = read_picture(path)
    assert min(image.shape[:2]) >= min_side, f"{path}: {image.shape[:2]} is too small for a figure"
    ink = (image.min(axis=2) < 200).mean()
    assert ink > 0.01 and image.std() > 10, f"{path} looks blank (ink {ink:.3f}, std {image.std():.1f})"
    return image


def count_tiles(path: Path, cell: int = 96) -> int:
    """Pictures in an image grid (``facemix.reports.plots.image_grid``: ``cell`` x ``cell`` tiles on white): blobs of
    non-white pixels about one cell in area, after an opening that removes the label text."""
    image = read_picture(path)
    mask = (image.min(axis=2) < 245).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((15, 15), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return int(((areas > 0.6 * cell * cell) & (areas < 1.3 * cell * cell)).sum())


def scores_from_predictions(path: Path) -> dict[str, float]:
    """Accuracy and macro F1 recomputed from a report's ``predictions.csv`` by plain counting, independently of
    facemix's metrics code (F1 = 2 TP / (2 TP + FP + FN) per class; a class nobody has or predicts scores 0)."""
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    classes = [c.removeprefix("prob_") for c in rows[0] if c.startswith("prob_")]
    f1 = []
    for c in classes:
        tp = sum(r["true"] == c and r["predicted"] == c for r in rows)
        fp = sum(r["true"] != c and r["predicted"] == c for r in rows)
        fn = sum(r["true"] == c and r["predicted"] != c for r in rows)
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": sum(r["true"] == r["predicted"] for r in rows) / len(rows), "macro_f1": sum(f1) / len(f1)}
