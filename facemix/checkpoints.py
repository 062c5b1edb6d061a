"""Loading checkpoints without executing anything they contain.

A checkpoint is a pickle; a pickle can run arbitrary code. facemix writes checkpoints that hold only tensors and
plain containers, and loads them with ``torch.load(weights_only=True)``, which refuses anything else.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from facemix.errors import FacemixConfigError


class UnsafeCheckpointError(FacemixConfigError):
    """The file needs arbitrary pickled objects to load; facemix refuses to execute them."""


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FacemixConfigError(f"ckpt={path} is not a file. Pass a .ckpt from a run dir's checkpoints/ folder.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise UnsafeCheckpointError(
            f"{path} cannot be loaded as weights only: it holds pickled objects that would run code when loaded "
            f"({str(exc).splitlines()[-1][:200]}). facemix refuses to execute it. Use a checkpoint written by "
            "facemix.train, or re-save a trusted one as a plain state dict."
        ) from exc


def load_module(path: str | Path):
    """Rebuild the ``ClassifierModule`` a checkpoint was trained as (eval mode, CPU), weights restored."""
    from facemix.models.module import ClassifierModule, with_temperature

    ckpt = load_checkpoint(path)
    if "hyper_parameters" not in ckpt or "state_dict" not in ckpt:
        raise FacemixConfigError(f"{path} is not a facemix training checkpoint (no hyper_parameters / state_dict).")
    hparams = {**ckpt["hyper_parameters"], "pretrained": False}  # the weights come from the checkpoint
    module = ClassifierModule(**hparams)
    module.load_state_dict(with_temperature(ckpt["state_dict"]))
    return module.eval()


def run_dir_of(ckpt: str | Path) -> Path:
    """``<run>/checkpoints/x.ckpt`` -> ``<run>``."""
    ckpt = Path(ckpt).resolve()
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def store_temperature(path: str | Path, temperature: float, details: dict) -> None:
    """Write a fitted softmax temperature into the checkpoint (replaced atomically: a reader sees old or new)."""
    import os

    path = Path(path)
    ckpt = load_checkpoint(path)
    ckpt["state_dict"]["temperature"] = torch.tensor(float(temperature))
    ckpt["facemix_calibration"] = {k: float(v) for k, v in details.items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
