"""What ``ckpt_path`` means: the one reader of it, used by the run-dir resolver, the preflight, the training job and
the interrupt record, so all of them agree on whether a command line starts a new run or continues one.

- ``null``, ``None``, ``none`` or empty: a new run;
- a run dir: that run, from its ``checkpoints/last.ckpt``;
- a checkpoint file: that checkpoint (a run dir's own or any other);
- ``last``: the run given as ``hydra.run.dir``.
A resumed run writes into the run dir it started in (Hydra fixes the run dir before any facemix code runs, so
``hydra.run.dir`` asks ``run_dir_for``), and keeps the first start's ``.hydra`` config (``hydra_subdir``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from facemix.errors import FacemixConfigError
from facemix.models.checkpoints import checkpoint_epoch
from facemix.run.rundir import RunDir

RESUME_LATEST = "last"
NEW_RUN_WORDS = ("", "null", "none")  # what a user types for "no checkpoint" (Hydra reads None as a string)


def resumes(ckpt_path: object) -> bool:
    """Whether ``ckpt_path`` continues a run (anything but null / None / none / empty)."""
    return ckpt_path is not None and str(ckpt_path).strip().lower() not in NEW_RUN_WORDS


def run_dir_for(ckpt_path: str | None, default: str) -> str:
    """``default`` for a new run (and for ``ckpt_path=last``, which resumes the run dir given as hydra.run.dir);
    the run dir of ``ckpt_path`` (a run dir or a checkpoint inside one) otherwise."""
    if not resumes(ckpt_path) or ckpt_path == RESUME_LATEST:
        return default
    path = Path(str(ckpt_path)).expanduser()
    return str(path.resolve() if path.is_dir() else RunDir.of_checkpoint(path).path)


def hydra_subdir(ckpt_path: str | None) -> str:
    """``.hydra`` for a new run; a new ``.hydra/resumed-<time>`` for each resume, so the first start's config stays."""
    if resumes(ckpt_path):
        return f"{RunDir.HYDRA}/resumed-{datetime.now():%Y-%m-%d_%H-%M-%S}"
    return RunDir.HYDRA


def resume_checkpoint(ckpt_path: str | None, run_dir: str | Path | None) -> str | None:
    """The checkpoint to resume from: ``last`` (with ``run_dir``, the run given as hydra.run.dir) or a run dir ->
    that run's ``checkpoints/last.ckpt``; a file as is; None for a new run."""
    if not resumes(ckpt_path):
        return None
    if ckpt_path == RESUME_LATEST and not run_dir:
        raise FacemixConfigError(
            "ckpt_path=last resumes the run named by hydra.run.dir, but no hydra.run.dir was given. Use "
            "ckpt_path=<run dir> (or ckpt_path=last hydra.run.dir=<run dir>)."
        )
    path = Path(str(run_dir if ckpt_path == RESUME_LATEST else ckpt_path)).expanduser()
    if path.is_dir():
        last = RunDir(path).last_checkpoint
        if not last.is_file():
            raise FacemixConfigError(
                f"ckpt_path={ckpt_path}: {last} does not exist, so there is nothing to resume (the run stopped "
                "before its first epoch ended, or this is not a run dir). Start a new run, or pass a .ckpt file."
            )
        return str(last)
    if not path.exists():
        raise FacemixConfigError(
            f"ckpt_path={ckpt_path} does not exist. Resume with the run dir (ckpt_path=outputs/<date>/<run>) or a "
            ".ckpt inside its checkpoints/ folder; nothing was written."
        )
    return str(path)


def resume_point(run: RunDir) -> tuple[str | None, int | None]:
    """``(<run>/checkpoints/last.ckpt, finished epochs)`` for an interrupt record; the epochs are None when the file
    cannot be read (a record of the interrupt must not fail on a half-written checkpoint)."""
    last = run.last_checkpoint
    if not last.is_file():
        return None, None
    try:
        return str(last), checkpoint_epoch(last) + 1
    except Exception:
        return str(last), None
