"""What resumes and DDP re-launches rely on, without training: the one reader of ``ckpt_path`` and the context that
lets Lightning's launcher re-run a job."""

from __future__ import annotations

import os
import sys

import pytest

from facemix.config import resume_checkpoint
from facemix.distributed import LAUNCHER_ENV, one_job_for_ddp
from facemix.errors import FacemixConfigError


def test_resume_checkpoint_reads_every_form_of_ckpt_path(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(b"x")
    best = run / "checkpoints" / "epoch_003.ckpt"
    best.write_bytes(b"x")
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


def test_one_job_for_ddp_restores_argv_and_launcher_env(tmp_path, monkeypatch):
    for key in LAUNCHER_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MASTER_PORT", "1234")
    argv = list(sys.argv)
    with one_job_for_ddp(tmp_path):
        os.environ["LOCAL_RANK"] = "0"  # what Lightning's launcher sets for the job's processes
        os.environ["MASTER_PORT"] = "5555"
        sys.argv.append("model=x")
    assert sys.argv == argv
    assert "LOCAL_RANK" not in os.environ and os.environ["MASTER_PORT"] == "1234"  # the next job starts clean
