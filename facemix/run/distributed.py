"""Making Lightning's DDP re-launch land in the run's own dir, also inside a Hydra multirun.

Lightning starts ranks 1..n-1 by re-running the command line with ``hydra.run.dir=<run.dir>``. Under ``-m`` that
command line is the whole sweep (every rank would start its own sweep into new dirs), and ``run.dir`` is not the
job's dir. Around one job we therefore present Lightning with this job's own overrides and its output dir, and
afterwards remove what the launcher left in ``os.environ`` (with ``LOCAL_RANK`` set, the next job's Trainer would
think its ranks already exist and wait for them forever).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, read_write
from pytorch_lightning.utilities import rank_zero_only

LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def is_rank_zero() -> bool:
    """Global rank 0 of this job, also before the Trainer exists (Lightning sets the rank from the env at import)."""
    return rank_zero_only.rank == 0


def _set_run_dir(hydra_cfg: DictConfig, run_dir: str) -> None:
    with read_write(hydra_cfg.hydra):  # Hydra keeps its own node read-only
        hydra_cfg.hydra.run.dir = run_dir


@contextmanager
def one_job_for_ddp(output_dir: Path) -> Iterator[None]:
    """Lets Lightning's DDP launcher re-run exactly this job into ``output_dir``; cleans up after it."""
    env_before = {k: os.environ.get(k) for k in LAUNCHER_ENV}
    argv_before = list(sys.argv)
    hydra = HydraConfig.instance().cfg if HydraConfig.initialized() else None
    run_dir_before = hydra.hydra.run.dir if hydra is not None else None
    if hydra is not None:
        sys.argv = [sys.argv[0], *HydraConfig.get().overrides.task]  # this job's overrides, never the sweep's
        _set_run_dir(hydra, str(Path(output_dir).resolve()))
    try:
        yield
    finally:
        sys.argv = argv_before
        if hydra is not None:
            _set_run_dir(hydra, run_dir_before)
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()  # the next job of a sweep builds its own group
