"""The error funnel every command runs in: a user's mistake becomes its one paragraph and exit 2, a signal becomes
an interrupt record and the shell's exit code, anything else keeps its traceback; a training run that did not
finish leaves ``failed.json`` saying why (what ``facemix-compare`` lists)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from facemix.errors import find_user_error
from facemix.run.resume import resume_point
from facemix.run.rundir import RunDir

log = logging.getLogger("facemix")
INTERRUPT_EXIT = {"SIGTERM": 143, "SIGINT": 130}  # 128 + signal number, what shells and SLURM expect


def interrupt_signal(exc: BaseException) -> str | None:
    """``SIGTERM`` / ``SIGINT`` when ``exc`` is how Lightning (or Python) ends a run stopped by a signal, else None.

    Lightning raises its ``SIGTERMException`` (a SystemExit with code 0) at the next batch after SIGTERM, and turns
    Ctrl-C into ``sys.exit(1)`` raised while handling the KeyboardInterrupt."""
    if type(exc).__name__ == "SIGTERMException":
        return "SIGTERM"
    if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
        return "SIGINT"
    # a loader worker that got the process group's signal before the main process stopped (facemix's own workers
    # ignore it; a user's or a library's may not)
    if isinstance(exc, RuntimeError) and "DataLoader worker" in str(exc):
        for name, words in (("SIGTERM", "killed by signal: Terminated"), ("SIGINT", "killed by signal: Interrupt")):
            if words in str(exc):
                return name
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


def interrupt_record(run: RunDir, signal_name: str) -> dict:
    """What an interrupted run leaves: the signal, the epochs done and the command that continues it."""
    resume_from, epochs = resume_point(run)
    record = {"status": "interrupted", "error": signal_name, "completed_epochs": epochs, "resume_from": resume_from}
    if resume_from:
        record["message"] = (
            f"stopped by {signal_name} after {epochs} finished epoch(s); resume with: "
            f"facemix-train ckpt_path={run.path.resolve()}"
        )
    else:
        record["message"] = f"stopped by {signal_name} before the first epoch finished; nothing to resume, start anew"
    return record


@contextmanager
def record_failure(run: RunDir, write: bool = True) -> Iterator[None]:
    """On any error, leave ``failed.json`` in the run dir (status failed or interrupted, the error, and for an
    interrupt the checkpoint to resume from), so ``facemix-compare`` lists the run and says why; an interrupted run
    exits 143 (SIGTERM) / 130 (Ctrl-C) as a shell would, never 0. A finished run is never marked."""
    try:
        yield
    except BaseException as exc:
        signal_name = interrupt_signal(exc)
        cause = exc.__cause__ if isinstance(exc, SystemExit) and exc.__cause__ else exc
        user_error = find_user_error(cause)
        if user_error is None and not signal_name and not isinstance(exc, SystemExit):
            log.exception("run failed")  # the traceback also goes to the run's log file
        if write and run.path.is_dir() and not run.is_finished():
            if signal_name:
                record = interrupt_record(run, signal_name)
            else:
                shown = user_error or cause
                record = {"status": "failed", "error": type(shown).__name__, "message": str(shown)[:4000]}
            try:
                run.write_failure(record)
            except OSError as write_error:  # a full or read-only disk: say so once, keep the original error
                log.error("could not write %s (%s); the run failed with: %s", run.failure_record, write_error, record)
            if signal_name:
                log.warning("%s", record["message"])
        if signal_name:
            raise SystemExit(INTERRUPT_EXIT[signal_name]) from exc
        raise
