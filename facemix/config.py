"""Config resolvers the run layout needs before Hydra picks a run dir.

A resumed run must write into the run dir it started in, and Hydra fixes the run dir before any facemix code runs;
so ``hydra.run.dir`` asks ``facemix.run_dir`` (the checkpoint's run when ``ckpt_path`` names one) and the saved
``.hydra`` config of the first start is kept (``facemix.hydra_subdir``). All meanings of ``ckpt_path`` live here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from facemix.checkpoints import run_dir_of
from facemix.errors import FacemixConfigError

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


def resume_checkpoint(ckpt_path: str | None, output_dir: Path) -> str | None:
    """The checkpoint to resume from: ``last`` or a run dir -> that run's ``checkpoints/last.ckpt``; a file as is."""
    if not _resumes(ckpt_path):
        return None
    if ckpt_path == RESUME_LATEST or Path(ckpt_path).is_dir():
        run = output_dir if ckpt_path == RESUME_LATEST else Path(ckpt_path)
        last = run / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise FacemixConfigError(
                f"ckpt_path={ckpt_path}: {last} does not exist. Resume a run that saved a checkpoint: "
                "ckpt_path=<its run dir>, ckpt_path=<a .ckpt file>, or ckpt_path=last hydra.run.dir=<its run dir>."
            )
        return str(last)
    if not Path(ckpt_path).is_file():
        raise FacemixConfigError(f"ckpt_path={ckpt_path} is not a file or run dir; pass a run's .ckpt or its dir.")
    return str(ckpt_path)


def hydra_subdir(ckpt_path: str | None) -> str:
    """``.hydra`` for a new run; a new ``.hydra/resumed-<time>`` for each resume, so the first start's config stays."""
    return f".hydra/resumed-{datetime.now():%Y-%m-%d_%H-%M-%S}" if _resumes(ckpt_path) else ".hydra"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("facemix.run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver("facemix.hydra_subdir", hydra_subdir, replace=True)
