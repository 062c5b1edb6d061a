"""Where the configs live, composing them outside a run, and the resolvers the run layout needs before Hydra picks
a run dir.

The configs ship inside the package (``facemix.conf``, mapped from the repository's top-level ``conf/`` at build
time), so every entry point finds them from any working directory, installed from a wheel or editable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from facemix.run.overrides import is_place, parse_overrides
from facemix.run.resume import hydra_subdir, run_dir_for
from facemix.run.rundir import RunDir

CONFIG_PATH = "pkg://facemix.conf"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")  # what Hydra's override grammar takes unquoted (ckpt_path=<run dir>)
_NAMED_ALREADY = ("model", "data", "model.name", "experiment")  # the run name starts with model and data


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


def run_name(task_name: str, model: str, data: str | None, overrides: Sequence[str] = ()) -> str:
    """What a run is, readable in a folder listing and in TensorBoard's run selector: the task (when it is not the
    plain ``train``), model and data, then every other override that changes the run (``vgg16-balanced-seed1``).
    Overrides that only say where files live are left out; the caller keeps the time for uniqueness. Only characters
    that Hydra's override grammar takes unquoted, so ``ckpt_path=<run dir>`` needs no quotes."""
    parts = [task_name] if task_name not in ("train", "") else []
    parts += [str(model), str(data or "")]
    for override in parse_overrides([str(o) for o in overrides], strict=False):
        value = override.value
        if value is None or is_place(override.key) or override.key in _NAMED_ALREADY:
            continue
        leaf = override.key.rsplit(".", 1)[-1]
        if override.is_group and value.lower() not in ("true", "false"):  # a group: augment=keras
            parts.append(value)
        else:  # seed=1 -> seed1, trainer.max_epochs=3 -> max_epochs3, calibrate=true -> calibrate_true
            parts.append(f"{leaf}{value}" if value[:1].isdigit() or value[:1] in "-." else f"{leaf}_{value}")
    name = "-".join(re.sub("_+", "_", _UNSAFE.sub("_", p)).strip("_.")[:40] for p in parts if p)
    return name[:100] or "run"


def run_path(name: str, *, _root_: DictConfig) -> str:
    """``${facemix.run_path:checkpoints}``: a place in this run's dir, named by ``RunDir`` (so config files never
    spell a run dir's file names)."""
    # str(): before a run (``--cfg all --resolve``) Hydra's output dir is still None, and prints as such
    return str(getattr(RunDir(str(_root_.paths.output_dir)), name))


def run_stem(name: str) -> str:
    """``${facemix.run_stem:last_checkpoint}``: the stem of a ``RunDir`` file (what ModelCheckpoint's filename is)."""
    return Path(getattr(RunDir("."), name)).stem


def register_resolvers() -> None:
    """Before ``@hydra.main`` composes: the run dir depends on ``ckpt_path``."""
    OmegaConf.register_new_resolver("facemix.run_dir", run_dir_for, replace=True)
    OmegaConf.register_new_resolver("facemix.hydra_subdir", hydra_subdir, replace=True)
    OmegaConf.register_new_resolver("facemix.run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("facemix.run_path", run_path, replace=True)
    OmegaConf.register_new_resolver("facemix.run_stem", run_stem, replace=True)
