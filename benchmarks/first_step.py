"""Time from ``facemix-train`` starting to its first training step, for the default run on a data root that earlier
runs already scanned and cached (the usual case: every run after the first).

Usage: python benchmarks/first_step.py [--work DIR] [--repeats 3] [-- extra overrides]

Prints the import time of ``facemix.train`` alone (``python -c 'import facemix.train'``), of ``torch`` alone (the
floor every PyTorch program pays), where the imports of a run go by top-level package (``-X importtime`` of
``facemix.training.fit``, self times summed per package), and, per repeat, the
launch-to-first-step time of ``python -m facemix.train`` (default model and data, one short epoch) as read from
``summary.json``'s ``first_train_step_at``. The first run on a fresh ``--work`` draws the demo, scans it, builds
the image cache and runs the speed probe; it is reported separately as the cold start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2"]


def import_seconds(module: str = "facemix.train") -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, env=ENV, check=True)
    return time.time() - start


def imports_by_package(module: str = "facemix.training.fit") -> dict[str, float]:
    """Seconds of import work per top-level package (``-X importtime`` self times: each module counted once)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=REPO,
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    totals: dict[str, float] = {}
    for line in err.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            package = parts[2].strip().split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(parts[0]) / 1e6
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def first_step_seconds(work: Path, name: str, extra: list[str]) -> float:
    run_dir = work / "runs" / f"{time.time_ns()}-{name}"
    start = time.time()
    subprocess.run(
        [sys.executable, "-m", "facemix.train", f"paths.data_dir={work / 'data'}", f"hydra.run.dir={run_dir}"]
        + ["trainer.enable_progress_bar=false", *SHORT, *extra],
        cwd=REPO,
        env=ENV,
        check=True,
        capture_output=True,
    )
    return json.loads((run_dir / "summary.json").read_text())["first_train_step_at"] - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="first_step_"))
    imports = [import_seconds() for _ in range(args.repeats)]
    torch_alone = [import_seconds("torch") for _ in range(args.repeats)]
    packages = imports_by_package()
    cold = first_step_seconds(work, "cold", args.overrides)
    warm = [first_step_seconds(work, f"warm{i}", args.overrides) for i in range(args.repeats)]
    print(f"import facemix.train: {statistics.median(imports):.2f} s (median of {args.repeats})")
    print(f"import torch alone: {statistics.median(torch_alone):.2f} s (median of {args.repeats})")
    top = ", ".join(f"{name} {sec:.2f}" for name, sec in list(packages.items())[:12])
    print(f"import work of facemix.training.fit by package ({sum(packages.values()):.2f} s in all): {top}")
    print(f"cold start (draw demo, scan, cache, probe): {cold:.1f} s to the first step")
    print(f"warm start: {statistics.median(warm):.2f} s to the first step (median; {[round(w, 2) for w in warm]})")


if __name__ == "__main__":
    main()
