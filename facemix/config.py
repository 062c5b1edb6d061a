"""Config resolvers the run layout needs before Hydra picks a run dir.

A resumed run must write into the run dir it started in, and Hydra fixes the run dir before any facemix code runs;
so ``hydra.run.dir`` asks ``facemix.run_dir`` (the checkpoint's run when ``ckpt_path`` names one) and the saved
``.hydra`` config of the first start is kept (``facemix.hydra_subdir``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from facemix.checkpoints import run_dir_of

RESUME_LATEST = "last"


def _resumes(ckpt_path: str | None) -> bool:
    return ckpt_path not in (None, "", "null")


def run_dir(ckpt_path: str | None, default: str) -> str:
    """``default`` for a new run (and for ``ckpt_path=last``, which resumes the run dir given as hydra.run.dir);
    the run dir of ``ckpt_path`` (a run dir or a checkpoint inside one) otherwise."""
    if not _resumes(ckpt_path) or ckpt_path == RESUME_LATEST:
        return default
    path = Path(str(ckpt_path)).expanduser()
    return str(path.resolve() if path.is_dir() else run_dir_of(path))


def hydra_subdir(ckpt_path: str | None) -> str:
    """``.hydra`` for a new run; a new ``.hydra/resumed-<time>`` for each resume, so the first start's config stays."""
    return f".hydra/resumed-{datetime.now():%Y-%m-%d_%H-%M-%S}" if _resumes(ckpt_path) else ".hydra"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("facemix.run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver("facemix.hydra_subdir", hydra_subdir, replace=True)
