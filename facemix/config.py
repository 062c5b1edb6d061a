"""Where the configs live, and the resolvers the run layout needs before Hydra picks a run dir.

The configs ship inside the package (``facemix.conf``, mapped from the repository's top-level ``conf/`` at build
time), so every entry point finds them from any working directory, installed from a wheel or editable.

A resumed run must write into the run dir it started in, and Hydra fixes the run dir before any facemix code runs;
so ``hydra.run.dir`` asks ``facemix.run_dir`` (the checkpoint's run when ``ckpt_path`` names one) and the saved
``.hydra`` config of the first start is kept (``facemix.hydra_subdir``). All meanings of ``ckpt_path`` live here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from facemix.checkpoints import run_dir_of
from facemix.errors import FacemixConfigError

CONFIG_PATH = "pkg://facemix.conf"
RESUME_LATEST = "last"
# overrides that say where a run reads and writes, not what it is: left out of run names
PLACE_KEYS = ("hydra.", "paths.", "ckpt_path", "data.root", "data.num_workers", "trainer.enable_progress_bar", "tags")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")  # what Hydra's override grammar takes unquoted (ckpt_path=<run dir>)


def compose_config(overrides: Sequence[str] = (), name: str = "train") -> DictConfig:
    """The packaged config as ``facemix-<name> <overrides>`` would compose it, without a run (no run dir, no
    ``hydra:`` values): for the preflight, tests, notebooks and benchmarks. Inside a running Hydra app it composes
    with that app's search path."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(name, overrides=list(overrides))
    with initialize_config_module(CONFIG_PATH.removeprefix("pkg://"), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def augment_ops(name: str) -> dict:
    """The ops of a shipped ``conf/augment/<name>.yaml`` (its defaults included) as plain data, for code outside a
    run (``facemix.augment.presets.train_transform(augment_ops("light"), 64)``)."""
    return OmegaConf.to_container(compose_config([f"augment={name}"]).augment, resolve=True)


def _resumes(ckpt_path: str | None) -> bool:
    return ckpt_path not in (None, "", "null")


def run_dir(ckpt_path: str | None, default: str) -> str:
    """``default`` for a new run (and for ``ckpt_path=last``, which resumes the run dir given as hydra.run.dir);
    the run dir of ``ckpt_path`` (a run dir or a checkpoint inside one) otherwise."""
    if not _resumes(ckpt_path) or ckpt_path == RESUME_LATEST:
        return default
    path = Path(str(ckpt_path)).expanduser()
    return str(path.resolve() if path.is_dir() else run_dir_of(path))


def resume_checkpoint(ckpt_path: str | None, run_dir: str | Path | None) -> str | None:
    """The checkpoint to resume from: ``last`` (with ``run_dir``, the run given as hydra.run.dir) or a run dir ->
    that run's ``checkpoints/last.ckpt``; a file as is; None for a new run. Used before Hydra starts (preflight)
    and inside the job, so both read ``ckpt_path`` the same way."""
    if not _resumes(ckpt_path):
        return None
    if ckpt_path == RESUME_LATEST and not run_dir:
        raise FacemixConfigError(
            "ckpt_path=last resumes the run named by hydra.run.dir, but no hydra.run.dir was given. Use "
            "ckpt_path=<run dir> (or ckpt_path=last hydra.run.dir=<run dir>)."
        )
    path = Path(str(run_dir if ckpt_path == RESUME_LATEST else ckpt_path)).expanduser()
    if path.is_dir():
        last = path / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise FacemixConfigError(
                f"ckpt_path={ckpt_path}: {last} does not exist, so there is nothing to resume (the run stopped "
                "before its first epoch ended, or this is not a run dir). Start a new run, or pass a .ckpt file."
            )
        return str(last)
    if not path.exists():
        raise FacemixConfigError(
            f"ckpt_path={ckpt_path} does not exist. Resume with the run dir (ckpt_path=outputs/<date>/<run>) or a "
            ".ckpt inside its checkpoints/ folder; nothing was written."
        )
    return str(path)


def hydra_subdir(ckpt_path: str | None) -> str:
    """``.hydra`` for a new run; a new ``.hydra/resumed-<time>`` for each resume, so the first start's config stays."""
    return f".hydra/resumed-{datetime.now():%Y-%m-%d_%H-%M-%S}" if _resumes(ckpt_path) else ".hydra"


def run_name(task_name: str, model: str, data: str | None, overrides: Sequence[str] = ()) -> str:
    """What a run is, readable in a folder listing and in TensorBoard's run selector: the task (when it is not the
    plain ``train``), model and data, then every other override that changes the run (``vgg16-balanced-seed1``).
    Overrides that only say where files live are left out; the caller keeps the time for uniqueness. Only characters
    that Hydra's override grammar takes unquoted, so ``ckpt_path=<run dir>`` needs no quotes."""
    parts = [task_name] if task_name not in ("train", "") else []
    parts += [str(model), str(data or "")]
    for override in overrides:
        key, sep, value = str(override).lstrip("+~").partition("=")
        if not sep or key.startswith(PLACE_KEYS) or key in ("model", "data", "model.name", "experiment"):
            continue
        leaf = key.rsplit(".", 1)[-1]
        if "." not in key and key != "seed" and value.lower() not in ("true", "false"):  # a group: augment=keras
            parts.append(value)
        else:  # seed=1 -> seed1, trainer.max_epochs=3 -> max_epochs3, calibrate=true -> calibrate_true
            parts.append(f"{leaf}{value}" if value[:1].isdigit() or value[:1] in "-." else f"{leaf}_{value}")
    name = "-".join(re.sub("_+", "_", _UNSAFE.sub("_", p)).strip("_.")[:40] for p in parts if p)
    return name[:100] or "run"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("facemix.run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver("facemix.hydra_subdir", hydra_subdir, replace=True)
    OmegaConf.register_new_resolver("facemix.run_name", run_name, replace=True)
