"""Time from ``facemix-train`` starting to its first training step, for the default run on a data root that earlier
runs already scanned and cached (the usual case: every run after the first).

Usage: python benchmarks/first_step.py [--work DIR] [--repeats 3] [-- extra overrides]

Prints the import time of ``facemix.train`` alone (``python -c 'import facemix.train'``) and, per repeat, the
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


def import_seconds() -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", "import facemix.train"], cwd=REPO, env=ENV, check=True)
    return time.time() - start


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
    cold = first_step_seconds(work, "cold", args.overrides)
    warm = [first_step_seconds(work, f"warm{i}", args.overrides) for i in range(args.repeats)]
    print(f"import facemix.train: {statistics.median(imports):.2f} s (median of {args.repeats})")
    print(f"cold start (draw demo, scan, cache, probe): {cold:.1f} s to the first step")
    print(f"warm start: {statistics.median(warm):.2f} s to the first step (median; {[round(w, 2) for w in warm]})")


if __name__ == "__main__":
    main()
