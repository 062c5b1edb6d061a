"""The errors users act on, and how a message names what went wrong. Each message is one paragraph: what is wrong,
where (file / config key), and the fix.

Every layer raises these (pixels, data, models, runs), so this module imports nothing of facemix; the funnel that
turns them into exit codes and ``failed.json`` is ``facemix.run.failures``."""

from __future__ import annotations

import difflib
import errno
from collections.abc import Sequence


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


def _file_system(path: str | None) -> str:
    """`` (the file system at /mnt/x, 12 MB free)`` for a path, or ``""`` when it cannot be told."""
    import os

    if not path:
        return ""
    try:
        folder = os.path.abspath(path)
        while not os.path.ismount(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        stat = os.statvfs(folder)
        return f" (the file system at {folder}, {stat.f_bavail * stat.f_frsize / 2**20:.1f} MB free)"
    except OSError:
        return ""


def _os_user_error(exc: OSError) -> FacemixConfigError | None:
    code = exc.errno
    if code is None and "requested and" in str(exc) and "written" in str(exc):
        code = errno.ENOSPC  # numpy's short write (tofile / np.save) on a full disk: no errno of its own
    advice = _USER_OS_ERRORS.get(code)
    if advice is None:
        return None
    where = exc.filename or "a file"
    place = _file_system(exc.filename) if code == errno.ENOSPC else ""
    return FacemixConfigError(f"{where}: {exc.strerror or exc}{place}. {advice[0].upper()}{advice[1:]}.")


def library_reason(exc: BaseException, limit: int = 400) -> str:
    """A library's own complaint in one line: the innermost cause (Hydra's instantiate wraps what a target raised),
    without pydantic's "For further information" links, for quoting inside a facemix message."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("For further"))[:limit].rstrip(".")


def _from_worker(exc: BaseException) -> BaseException:
    """A user error raised in a DataLoader worker arrives re-raised with the worker's whole traceback as its text
    ("Caught FacemixConfigError in DataLoader worker process 0. Original Traceback ..."): keep its own message."""
    text = str(exc)
    if "Original Traceback" not in text:
        return exc
    last = [line for line in text.splitlines() if line.strip()][-1]
    return type(exc)(last.split(": ", 1)[1] if ": " in last else last)


def find_user_error(exc: BaseException) -> BaseException | None:
    """The user-facing error behind ``exc``, looking through wrappers (Hydra's instantiate wraps what it raises,
    a DataLoader re-raises what its workers did)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, USER_ERRORS):
            return _from_worker(exc)
        if isinstance(exc, OSError) and (os_error := _os_user_error(exc)) is not None:
            return os_error
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def nearest_key(key: str, known: Sequence[str], cutoff: float = 0.7) -> str | None:
    """The known key a mistyped ``key`` most likely meant (``data.batchsize`` -> ``data.batch_size``), or None."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None
