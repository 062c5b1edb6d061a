"""Resume after SIGTERM (what SLURM sends before a time-out) exactly as the README shows it, and same seed -> same
results."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import REPO, run_train, tensorboard_scalars, tiny_overrides

# a non-default model and size (tiny_overrides: 32 px), epochs long enough to stop one in the middle
SLOW_EPOCHS = [
    "model=mobilenetv2",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=1.0",
    "data.samples_per_epoch=480",
]


def _wait_for_loadable(path, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before it could be killed"
        if path.exists():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # still being written
                pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_process_group_signal_records_interrupted_and_the_readme_resume_finishes_the_same_run(
    data_dir, tmp_path, sig, code
):
    """The signal goes to the whole process group, loader workers included (what Ctrl-C in a terminal and SLURM's
    SIGTERM do): the run still stops at the next batch with its interrupt record and the shell's exit code."""
    run_dir = tmp_path / "run"
    overrides = [*tiny_overrides(data_dir, run_dir), *SLOW_EPOCHS]
    overrides = [o for o in overrides if not o.startswith("data.num_workers")] + ["data.num_workers=2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "facemix.train", *overrides],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        first = _wait_for_loadable(run_dir / "checkpoints" / "last.ckpt", proc)
        time.sleep(0.5)  # into the next epoch (3 epochs of 60 steps: well before the end)
        assert proc.poll() is None
        os.killpg(proc.pid, sig)
        assert proc.wait(timeout=60) == code  # 128 + the signal, as a shell reports it; never 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert first["epoch"] == 0 and not (run_dir / "summary.json").exists()
    record = json.loads((run_dir / "failed.json").read_text())
    assert record["status"] == "interrupted" and record["error"] == sig.name
    assert record["completed_epochs"] in (1, 2) and record["resume_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert f"ckpt_path={run_dir}" in record["message"]
    config_before = (run_dir / ".hydra" / "config.yaml").read_bytes()
    if sig == signal.SIGINT:  # the resume below is the same for both signals: once is enough
        return

    result = run_train(f"ckpt_path={run_dir}")  # verbatim README: the run's model, size and data are replayed
    assert "Restored all states from the checkpoint" in result.stdout + result.stderr

    assert not (run_dir / "failed.json").exists()  # finished now: no stale failure record
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_checkpoint"].startswith(str(run_dir))
    assert summary["preprocessing"]["image_size"] == 32
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["hyper_parameters"]["name"] == "mobilenetv2"
    assert last["global_step"] == 3 * 480 // 8  # all three epochs' steps done (480 draws per epoch, batch 8)
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == config_before  # first start's config kept
    assert len(list((run_dir / ".hydra").glob("resumed-*/config.yaml"))) == 1

    with open(run_dir / "csv" / "metrics.csv") as fh:
        val_epochs = [int(r["epoch"]) for r in csv.DictReader(fh) if r.get("val/loss")]
    assert val_epochs == [0, 1, 2]  # the epochs before the stop kept, none repeated
    scalars = tensorboard_scalars(run_dir, with_steps=True)
    for tag in ("val/loss", "train/loss", "val/f1_macro"):
        steps = [step for step, _ in scalars[tag]]
        assert len(steps) == 3 and steps == sorted(set(steps)), (tag, steps)


def test_same_seed_same_test_metrics(data_dir, tmp_path):
    def run(name):
        run_dir = tmp_path / name
        run_train("model=simple_cnn", "trainer.deterministic=true", *tiny_overrides(data_dir, run_dir))
        summary = json.loads((run_dir / "summary.json").read_text())
        return {k: v for k, v in summary["metrics"].items() if k.startswith(("test/", "val/", "train/"))}

    first, second = run("a"), run("b")
    assert first == second and "test/f1_macro" in first
