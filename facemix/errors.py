"""Errors users act on. Each message is one paragraph: what is wrong, where (file / config key), and the fix."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("facemix")


class FacemixConfigError(ValueError):
    """A configuration or data-layout mistake that must stop a run before any training step."""


class PretrainedWeightsUnavailable(RuntimeError):
    """Hub weights were asked for where the hub cannot be reached and nothing is cached."""


USER_ERRORS = (FacemixConfigError, PretrainedWeightsUnavailable, FileExistsError)


def find_user_error(exc: BaseException) -> BaseException | None:
    """The user-facing error behind ``exc``, looking through wrappers (Hydra's instantiate wraps what it raises)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, USER_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def user_errors_exit(code: int = 2, exit: bool = True) -> Iterator[None]:
    """Turn a mistake in the user's input into its one-paragraph message and exit ``code``; no traceback.

    ``exit=False`` (a job inside a sweep) logs the message and re-raises the error itself, so the sweeper records
    this job as failed and goes on with the others.
    """
    try:
        yield
    except Exception as exc:
        user_error = find_user_error(exc)
        if user_error is None:
            raise
        log.error("%s", user_error)
        if not exit:
            raise user_error from None
        raise SystemExit(code) from exc


@contextmanager
def record_failure(run_dir: Path, write: bool = True) -> Iterator[None]:
    """On any error, leave ``failed.json`` (error type and message) in the run dir, so ``facemix.compare`` lists the
    run as failed and says why; an unexpected error's traceback also goes to the run's log."""
    try:
        yield
    except BaseException as exc:
        cause = exc.__cause__ if isinstance(exc, SystemExit) and exc.__cause__ else exc
        user_error = find_user_error(cause)
        if user_error is None and not isinstance(exc, (SystemExit, KeyboardInterrupt)):
            log.exception("run failed")
        if write and run_dir.is_dir() and not (run_dir / "summary.json").exists():  # never mark a finished run
            shown = user_error or cause
            (run_dir / "failed.json").write_text(
                json.dumps({"error": type(shown).__name__, "message": str(shown)[:4000]}, indent=2)
            )
        raise
