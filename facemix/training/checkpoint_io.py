"""Checkpoints replaced atomically in their own folder, so a kill at any moment leaves the previous one intact.

Lightning's ``TorchCheckpointIO`` saves through fsspec's local transaction: the bytes go to a temporary file in
``$TMPDIR`` and are then *moved* over ``last.ckpt``; when the run dir is on another file system (a cluster's shared
disk, a tmpfs) the move is a copy, and a kill during it left ``last.ckpt`` at 0 bytes (5 of 5 kills aimed there)
and the temporary file behind. Here the temporary file sits beside the target, is flushed to disk, and
``os.replace`` swaps it in: a reader (and a resume) sees the old checkpoint or the new one, never a part.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

PARTIAL = ".partial-"  # what a half-written checkpoint is named while it is written (removed by a resume)


def partial_name(target: Path) -> Path:
    return target.with_name(f".{target.name}{PARTIAL}{os.getpid()}")


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options}")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = partial_name(target)
        try:
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except (OSError, RuntimeError) as exc:  # name the checkpoint: a write to a file object carries no file name
            os_error = _os_error_in(exc)
            if os_error is None:
                raise
            raise OSError(os_error.errno, os_error.strerror or str(os_error), str(target)) from exc
        finally:
            tmp.unlink(missing_ok=True)


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (torch's zip writer turns a failed write into a RuntimeError about positions)."""
    while exc is not None:
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def remove_partials(folder: Path) -> list[Path]:
    """Delete what killed saves left in ``folder`` (their processes are gone); returns what was removed."""
    removed = [p for p in Path(folder).glob(f".*{PARTIAL}*") if p.is_file()]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed
