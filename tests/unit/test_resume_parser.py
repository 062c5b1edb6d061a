"""``ckpt_path`` read once (``facemix.run.resume``): the run-dir resolver, the preflight, the job and the
interrupt record agree on every form of it."""

from __future__ import annotations

import pytest
import torch

from facemix.config.preflight import CommandLine, refuse_existing_run_dir, replay_for_resume
from facemix.errors import FacemixConfigError
from facemix.run.resume import hydra_subdir, requeued_resume, resume_checkpoint, resume_point, resumes, run_dir_for
from facemix.run.rundir import RunDir


@pytest.mark.parametrize("ckpt_path", [None, "null", "None", "none", "NULL", "", "  "])
def test_every_way_of_saying_no_checkpoint_starts_a_new_run(ckpt_path, tmp_path):
    """``facemix-train ckpt_path=None`` used to resume "the run" in the current directory (config and preflight
    read None differently); every spelling now means a new run, in every reader."""
    assert not resumes(ckpt_path)
    assert run_dir_for(ckpt_path, "outputs/new") == "outputs/new"
    assert hydra_subdir(ckpt_path) == RunDir.HYDRA
    assert resume_checkpoint(ckpt_path, str(tmp_path)) is None
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    text = f"ckpt_path={ckpt_path}" if ckpt_path is not None else "ckpt_path=null"
    line = CommandLine.parse(["train", text.strip() if ckpt_path != "  " else "ckpt_path=''"])
    assert replay_for_resume(line) == line  # nothing replayed
    with pytest.raises(FacemixConfigError, match="already holds files"):  # a new run: the guard applies
        refuse_existing_run_dir(CommandLine.parse(["train", line.overrides[0], f"hydra.run.dir={tmp_path / 'mine'}"]))


def test_a_run_dir_or_checkpoint_resumes_in_its_own_dir(tmp_path):
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    run.last_checkpoint.write_bytes(b"x")  # damaged: resume_point must still not fail
    assert resumes(str(run.path)) and run_dir_for(str(run.path), "outputs/new") == str(run.path.resolve())
    assert run_dir_for(str(run.last_checkpoint), "outputs/new") == str(run.path.resolve())
    assert hydra_subdir(str(run.path)).startswith(f"{RunDir.HYDRA}/resumed-")
    assert resume_point(RunDir(tmp_path / "nothing")) == (None, None)
    assert resume_point(run) == (str(run.last_checkpoint), None)  # unreadable: the record must not fail


def test_resume_checkpoint_reads_every_form_of_ckpt_path(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    last = run / "checkpoints" / "last.ckpt"
    best = run / "checkpoints" / "epoch_003.ckpt"
    for path in (last, best):  # real (tiny) checkpoints: a run dir resumes from one that loads
        torch.save({"state_dict": {}, "epoch": 3}, path)
    assert resume_checkpoint(None, None) is None and resume_checkpoint("null", str(run)) is None
    assert resume_checkpoint(str(run), None) == str(last)  # a run dir: its last.ckpt
    assert resume_checkpoint("last", str(run)) == str(last)  # `last` with hydra.run.dir
    assert resume_checkpoint(str(best), None) == str(best)  # a file as is


@pytest.mark.parametrize(
    ("make", "ckpt", "expect"),
    [
        (None, "last", "ckpt_path=last resumes the run named by hydra.run.dir"),
        ("run", "{run}", "checkpoints/last.ckpt does not exist, so there is nothing to resume"),
        (None, "{tmp}/nowhere", "does not exist. Resume with the run dir"),
    ],
)
def test_resume_checkpoint_names_what_is_missing(tmp_path, make, ckpt, expect):
    if make:
        (tmp_path / make).mkdir()
    with pytest.raises(FacemixConfigError, match=expect):
        resume_checkpoint(ckpt.format(run=tmp_path / "run", tmp=tmp_path), None)


def test_a_damaged_last_checkpoint_falls_back_to_the_newest_one_that_loads(tmp_path):
    """A kill or a cut copy can leave last.ckpt truncated: the resume takes the newest checkpoint that opens."""
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": 2}, run.checkpoints / "epoch_002.ckpt")
    torch.save({"state_dict": {}, "epoch": 4}, run.checkpoints / "epoch_004.ckpt")
    data = (run.checkpoints / "epoch_004.ckpt").read_bytes()
    run.last_checkpoint.write_bytes(data[: len(data) // 2])  # truncated
    assert resume_checkpoint(str(run.path), None) == str(run.checkpoints / "epoch_004.ckpt")
    run.last_checkpoint.unlink()
    assert resume_checkpoint(str(run.path), None) == str(run.checkpoints / "epoch_004.ckpt")  # missing: the same


def test_a_requeued_slurm_job_continues_from_its_newest_checkpoint(checkpoint, monkeypatch):
    """SLURM requeues a preempted job with its first command line: it must continue in its own dir from the newest
    checkpoint that loads (Lightning's mid-epoch ``hpc_ckpt`` when newer), not refuse the dir or start over."""
    import os

    run = RunDir(checkpoint.parent.parent)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert requeued_resume(run) is None  # a first start is never a resume
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert requeued_resume(run) == str(checkpoint)
    hpc = run.path / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(checkpoint.read_bytes())
    os.utime(checkpoint, ns=(1, 1))  # the epoch checkpoint older than Lightning's requeue checkpoint
    assert requeued_resume(run) == str(hpc)
    hpc.write_bytes(b"cut short")
    assert requeued_resume(run) == str(checkpoint)  # the damaged one is passed over
    empty = RunDir(run.path.parent / "requeued-early")
    empty.path.mkdir()
    assert requeued_resume(empty) is None  # requeued before its first checkpoint: a fresh start in its dir
