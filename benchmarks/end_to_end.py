"""End to end against the step alone: how much of the training step's speed a real ``facemix-train`` run keeps.

Usage:
    python benchmarks/end_to_end.py [--rounds 2] [--rows default,mobilenetv2:64,mobilenetv2:128] [--work DIR]
        [--seconds 8] [--profile]

Per round and row, one after the other (so a shared machine's drift hits both alike):

- **end to end**: the real command on the 0.1-scale demo (the default run's data), 2 epochs of ``--batches``
  batches, reading
  ``train_images_per_s`` of the last epoch (its first batch left out) and ``data_wait_fraction`` from
  ``summary.json``, and the speed settings the run chose;
- **step alone**: in this process, the same network (``conf/model/<name>.yaml`` at the run's image size) trained by a
  plain PyTorch loop (fused Adam, cross-entropy) on one synthetic batch of the run's batch size, with the run's
  chosen precision and memory format, for about ``--seconds``: no loader, no Lightning, no metrics.

``--profile`` adds one run per row under Lightning's SimpleProfiler and prints where the end-to-end step goes (waiting
for the loader, the training step, backward, the optimizer, callbacks and logging), per image.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from train_step import build_module, plain_loop

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
DEFAULT_MODEL, DEFAULT_SIZE = "vgg16", 64  # conf/train.yaml's model and conf/data/balanced.yaml's image size
PROFILE_ROWS = re.compile(r"^\|\s*(.+?)\s*\|\s*([0-9.e+-]+)\s*\|\s*(\d+)\s*\|\s*([0-9.e+-]+)\s*\|", re.M)


def run_overrides(row: str) -> tuple[str, int, list[str]]:
    if row == "default":
        return DEFAULT_MODEL, DEFAULT_SIZE, []
    model, size = row.split(":")
    return model, int(size), [f"model={model}", f"data.image_size={size}"]


def end_to_end(row: str, work: Path, tag: str, batches: int, profile: bool = False) -> tuple[dict, Path]:
    _, _, extra = run_overrides(row)
    run_dir = work / "runs" / f"{time.time_ns()}-{tag}"
    overrides = [f"paths.data_dir={work / 'data'}", f"hydra.run.dir={run_dir}", "trainer.max_epochs=2"]
    overrides += [f"trainer.limit_train_batches={batches}", "trainer.limit_val_batches=4"]
    overrides += ["trainer.enable_progress_bar=false", *extra]
    if profile:
        overrides += ["+trainer.profiler._target_=pytorch_lightning.profilers.SimpleProfiler"]
        overrides += [f"+trainer.profiler.dirpath={run_dir}", "+trainer.profiler.filename=profile"]
    subprocess.run(
        [sys.executable, "-m", "facemix.train", *overrides], cwd=REPO, env=ENV, check=True, capture_output=True
    )
    return json.loads((run_dir / "summary.json").read_text()), run_dir


def step_alone(row: str, summary: dict, batch: int, seconds: float) -> float:
    model, size, _ = run_overrides(row)
    settings = {k: v["value"] for k, v in summary["speed_settings"].items()}
    bf16 = str(settings.get("precision", "32-true")).startswith("bf16")
    channels_last = bool(settings.get("channels_last", False))
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 3, (batch,))
    rate = plain_loop(build_module(model, size, False).net, x, y, 2, channels_last=channels_last, bf16=bf16)
    steps = max(3, round(rate * seconds / batch))
    return plain_loop(build_module(model, size, False).net, x, y, steps, channels_last=channels_last, bf16=bf16)


def profile_breakdown(run_dir: Path) -> list[tuple[str, float, int]]:
    """The profiler's rows for the training loop: (action, ms per training batch, calls)."""
    text = next(run_dir.glob("*profile*.txt")).read_text()
    keep = ("train_dataloader_next", "training_step", "backward", "optimizer_step", "run_training_batch")
    keep += ("on_train_batch_end", "on_train_batch_start", "on_before_optimizer_step", "zero_grad")
    found = [(action, int(calls), float(total)) for action, _mean, calls, total in PROFILE_ROWS.findall(text)]
    batches = next(calls for action, calls, _ in found if action == "run_training_batch")
    rows = []
    for action, calls, total in found:
        if any(k in action for k in keep) and "validation" not in action and total / batches >= 2e-4:
            rows.append((action, 1000 * total / batches, calls))
    return sorted(rows, key=lambda r: -r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", default="default,mobilenetv2:64,mobilenetv2:128")
    parser.add_argument("--seconds", type=float, default=8, help="about this long per step-alone timing")
    parser.add_argument("--batches", type=int, default=12, help="training batches per epoch (the demo has 25)")
    parser.add_argument("--profile", action="store_true", help="one more run per row under the SimpleProfiler")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="end_to_end_")).resolve()
    rows = args.rows.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; demo 0.1; work {work}")
    print("| row | round | end to end img/s | step alone img/s | end to end / step | data wait | settings |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    ratios: dict[str, list[float]] = {row: [] for row in rows}
    for r in range(1, args.rounds + 1):
        for row in rows:
            summary, run_dir = end_to_end(row, work, f"{row.replace(':', '-')}-r{r}", args.batches)
            batch = int(OmegaConf.load(run_dir / ".hydra" / "config.yaml").data.batch_size)
            alone = step_alone(row, summary, batch, args.seconds)
            e2e = float(summary["train_images_per_s"])
            ratios[row].append(e2e / alone)
            settings = {k: v["value"] for k, v in summary["speed_settings"].items()}
            wait = summary.get("data_wait_fraction") or 0.0
            cells = [row, str(r), f"{e2e:.1f}", f"{alone:.1f}", f"{e2e / alone:.0%}", f"{wait:.1%}", str(settings)]
            print("| " + " | ".join(cells) + " |", flush=True)
    for row, values in ratios.items():
        print(f"{row}: end to end / step alone, worst {min(values):.0%}, median {statistics.median(values):.0%}")
    if args.profile:
        for row in rows:
            summary, run_dir = end_to_end(row, work, f"{row.replace(':', '-')}-profile", args.batches, profile=True)
            print(f"\n{row} under SimpleProfiler: {summary['train_images_per_s']:.1f} img/s; run dir {run_dir}")
            for action, ms, calls in profile_breakdown(run_dir):
                print(f"  {action}: {ms:.2f} ms per training batch ({calls} calls)")


if __name__ == "__main__":
    main()
