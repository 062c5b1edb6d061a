"""Errors users act on. Each message is one paragraph: what is wrong, where (file / config key), and the fix."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

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
def user_errors_exit(code: int = 2) -> Iterator[None]:
    """Turn a mistake in the user's input into its one-paragraph message and exit ``code``; no traceback."""
    try:
        yield
    except Exception as exc:
        user_error = find_user_error(exc)
        if user_error is None:
            raise
        log.error("%s", user_error)
        raise SystemExit(code) from exc
