"""Files that many jobs share under one data root: built once under a file lock, published atomically.

A sweep on a cluster starts many jobs at once on one ``paths.data_dir``: the demo set, the scan cache, the decoded
image cache, the offline-balancing cache and harmonised copies must each be built by exactly one of them while the
others wait and then reuse it. Every builder writes into a private temporary name and publishes with a rename, so
a reader sees either nothing or the whole artefact. The locks are ``flock`` locks (the ``filelock`` package): the
kernel releases them when the holder dies, so a killed builder never blocks the next job, which finds no published
artefact and builds it again.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)


@contextmanager
def exclusive(lock_path: str | Path, what: str) -> Iterator[None]:
    """Hold the lock for building ``what``; says so in the log when another job holds it and we wait."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another job to finish building %s (lock %s)", what, lock_path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def build_once(is_built: Callable[[], bool], build: Callable[[], None], lock_path: str | Path, what: str) -> bool:
    """Run ``build`` unless the artefact is already published (checked again under the lock, since another job may
    have built it while we waited). Returns whether this call built it. ``build`` must publish atomically."""
    if is_built():
        return False
    with exclusive(lock_path, what):
        if is_built():
            log.info("reusing %s, built by another job", what)
            return False
        log.info("building %s", what)
        build()
        return True


def private_name(path: Path, suffix: str = ".partial") -> Path:
    """A temporary sibling of ``path`` that no other process uses: ``<name>.partial-<pid>-<random>``."""
    return path.with_name(f"{path.name}{suffix}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_leftovers(path: Path, suffix: str = ".partial") -> None:
    """Delete temporaries a killed builder left beside ``path``; call it holding the lock."""
    for leftover in path.parent.glob(f"{path.name}{suffix}-*"):
        if leftover.is_dir():
            for _ in range(5):  # a dying builder's helpers may still add a file while we delete
                shutil.rmtree(leftover, ignore_errors=True)
                if not leftover.exists():
                    break
                time.sleep(0.2)
        else:
            leftover.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = private_name(path, ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
