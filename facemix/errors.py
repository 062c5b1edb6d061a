"""Errors users act on. Each message is one paragraph: what is wrong, where (file / config key), and the fix."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("facemix")


class FacemixConfigError(ValueError):
    """A configuration or data-layout mistake that must stop a run before any training step."""


class PretrainedWeightsUnavailable(RuntimeError):
    """Hub weights were asked for where the hub cannot be reached and nothing is cached."""


USER_ERRORS = (FacemixConfigError, PretrainedWeightsUnavailable, FileExistsError)
# file-system refusals that are the user's to fix (a read-only or full disk, a path too long), not facemix bugs
_USER_OS_ERRORS = {
    errno.EACCES: "facemix may not write or read there: give a folder you own (paths.root_dir / FACEMIX_ROOT, "
    "hydra.run.dir, paths.data_dir) or change its permissions",
    errno.EPERM: "the operation is not permitted there: give a folder you own",
    errno.EROFS: "that file system is read-only: point paths.root_dir (or FACEMIX_ROOT) / paths.data_dir at a "
    "writable folder",
    errno.ENOSPC: "the disk is full: free space or point paths.data_dir / paths.log_dir at another disk",
    errno.ENAMETOOLONG: "the path is longer than the file system allows: use a shorter hydra.run.dir / paths.* or "
    "fewer overrides in the run name",
}
_INTERRUPT_EXIT = {"SIGTERM": 143, "SIGINT": 130}  # 128 + signal number, what shells and SLURM expect


def _os_user_error(exc: OSError) -> FacemixConfigError | None:
    advice = _USER_OS_ERRORS.get(exc.errno)
    if advice is None:
        return None
    where = exc.filename or "a file"
    return FacemixConfigError(f"{where}: {exc.strerror or exc}. {advice[0].upper()}{advice[1:]}.")


def library_reason(exc: BaseException, limit: int = 400) -> str:
    """A library's own complaint in one line: the innermost cause (Hydra's instantiate wraps what a target raised),
    without pydantic's "For further information" links, for quoting inside a facemix message."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("For further"))[:limit].rstrip(".")


def find_user_error(exc: BaseException) -> BaseException | None:
    """The user-facing error behind ``exc``, looking through wrappers (Hydra's instantiate wraps what it raises)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, USER_ERRORS):
            return exc
        if isinstance(exc, OSError) and (os_error := _os_user_error(exc)) is not None:
            return os_error
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def interrupt_signal(exc: BaseException) -> str | None:
    """``SIGTERM`` / ``SIGINT`` when ``exc`` is how Lightning (or Python) ends a run stopped by a signal, else None.

    Lightning raises its ``SIGTERMException`` (a SystemExit with code 0) at the next batch after SIGTERM, and turns
    Ctrl-C into ``sys.exit(1)`` raised while handling the KeyboardInterrupt."""
    if type(exc).__name__ == "SIGTERMException":
        return "SIGTERM"
    if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
        return "SIGINT"
    return None


@contextmanager
def user_errors_exit(code: int = 2, exit: bool = True) -> Iterator[None]:
    """Turn a mistake in the user's input into its one-paragraph message and exit ``code``; no traceback.

    ``exit=False`` (a job inside a sweep) logs the message and re-raises the error itself, so the sweeper records
    this job as failed and goes on with the others. Anything else keeps its traceback, with where to report it.
    """
    try:
        yield
    except Exception as exc:
        user_error = find_user_error(exc)
        if user_error is None:
            log.error(
                "Unexpected error (%s): a bug in facemix or a library it uses, not a mistake in your input. Please "
                "report it on facemix's issue tracker with the traceback below and the run's .hydra/config.yaml.",
                type(exc).__name__,
            )
            raise
        log.error("%s", user_error)
        if not exit:
            raise user_error from None
        raise SystemExit(code) from exc


ResumePoint = Callable[[Path], tuple[str | None, int | None]]  # run dir -> (checkpoint, finished epochs)


def _interrupt_record(run_dir: Path, signal_name: str, resume_point: ResumePoint | None) -> dict:
    resume_from, epochs = resume_point(run_dir) if resume_point else (None, None)
    record = {
        "status": "interrupted",
        "error": signal_name,
        "completed_epochs": epochs,
        "resume_from": resume_from,
    }
    if resume_from:
        record["message"] = (
            f"stopped by {signal_name} after {epochs} finished epoch(s); resume with: "
            f"facemix-train ckpt_path={run_dir.resolve()}"
        )
    else:
        record["message"] = f"stopped by {signal_name} before the first epoch finished; nothing to resume, start anew"
    return record


@contextmanager
def record_failure(run_dir: Path, write: bool = True, resume_point: ResumePoint | None = None) -> Iterator[None]:
    """On any error, leave ``failed.json`` in the run dir (status failed or interrupted, the error, and for an
    interrupt the checkpoint to resume from, as ``resume_point`` finds it), so ``facemix.compare`` lists the run and
    says why; an interrupted run exits 143 (SIGTERM) / 130 (Ctrl-C) as a shell would, never 0."""
    try:
        yield
    except BaseException as exc:
        signal_name = interrupt_signal(exc)
        cause = exc.__cause__ if isinstance(exc, SystemExit) and exc.__cause__ else exc
        user_error = find_user_error(cause)
        if user_error is None and not signal_name and not isinstance(exc, SystemExit):
            log.exception("run failed")  # the traceback also goes to the run's log file
        if write and run_dir.is_dir() and not (run_dir / "summary.json").exists():  # never mark a finished run
            if signal_name:
                record = _interrupt_record(run_dir, signal_name, resume_point)
            else:
                shown = user_error or cause
                record = {"status": "failed", "error": type(shown).__name__, "message": str(shown)[:4000]}
            (run_dir / "failed.json").write_text(json.dumps(record, indent=2))
            if signal_name:
                log.warning("%s", record["message"])
        if signal_name:
            raise SystemExit(_INTERRUPT_EXIT[signal_name]) from exc
        raise
