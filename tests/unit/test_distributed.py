"""The context that lets Lightning's DDP launcher re-run exactly one job, also inside a multirun."""

from __future__ import annotations

import os
import sys

from facemix.run.distributed import LAUNCHER_ENV, one_job_for_ddp


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
