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

import logging
import os
from datetime import datetime
from pathlib import Path

from facemix.errors import FacemixConfigError
from facemix.models.checkpoints import checkpoint_epoch, load_checkpoint
from facemix.run.rundir import RunDir

log = logging.getLogger("facemix.train")
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
        return str(newest_loadable(RunDir(path), ckpt_path))
    if not path.exists():
        raise FacemixConfigError(
            f"ckpt_path={ckpt_path} does not exist. Resume with the run dir (ckpt_path=outputs/<date>/<run>) or a "
            ".ckpt inside its checkpoints/ folder; nothing was written."
        )
    return str(path)


def _loads(path: Path) -> str | None:
    """None when the checkpoint opens; else why not (memory-mapped: the weights are not read)."""
    try:
        load_checkpoint(path, mmap=True, verify=False)
    except FacemixConfigError as exc:
        return str(exc).split(". ")[0]
    return None


def newest_loadable(run: RunDir, ckpt_path: str | None = None) -> Path:
    """The run's ``last.ckpt``, or when that is missing or damaged (a machine lost mid-write, a copy cut short) the
    newest of its other checkpoints that opens, with a log line saying so."""
    last = run.last_checkpoint
    reason = _loads(last) if last.is_file() else None
    if last.is_file() and reason is None:
        return last
    problem = f"does not load ({reason})" if last.is_file() else "does not exist"
    others = sorted(
        (p for p in run.checkpoints.glob("*.ckpt") if p != last),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
        reverse=True,
    ) if run.checkpoints.is_dir() else []  # fmt: skip
    for candidate in others:
        if _loads(candidate) is None:
            log.warning("%s %s; resuming from %s, the newest checkpoint that loads", last, problem, candidate)
            return candidate
    raise FacemixConfigError(
        f"ckpt_path={ckpt_path}: {last} {problem}, so there is nothing to resume (no other checkpoint of the run "
        "loads either: it stopped before its first epoch ended, or this is not a run dir). Start a new run, or pass "
        "a .ckpt file."
    )


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


def slurm_restarts() -> int:
    """How often SLURM requeued this job (``SLURM_RESTART_COUNT``; 0 outside SLURM or on the first start)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)


def requeued_resume(run: RunDir) -> str | None:
    """A job SLURM requeued after a preemption or time-out starts again with its first command line, into its own
    job dir: it continues from the newest checkpoint there that loads (Lightning's mid-epoch ``hpc_ckpt_*.ckpt``
    when its SIGUSR1 handler wrote one after the last epoch's checkpoint) instead of refusing a dir that holds a
    run. None for any other start, and for a job requeued before its first checkpoint (a fresh start there)."""
    if slurm_restarts() < 1 or not run.path.is_dir():
        return None
    try:
        checkpoint = newest_loadable(run)
    except FacemixConfigError:
        checkpoint = None
    hpc = [p for p in run.path.glob("hpc_ckpt_*.ckpt") if _loads(p) is None]
    newest = max([*hpc, *([checkpoint] if checkpoint else [])], key=lambda p: p.stat().st_mtime_ns, default=None)
    if newest is not None:
        log.info("SLURM requeued this job (restart %d): resuming %s", slurm_restarts(), newest)
    return None if newest is None else str(newest)
