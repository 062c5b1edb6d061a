"""Loading checkpoints without executing anything they contain.

A checkpoint is a pickle; a pickle can run arbitrary code. facemix writes checkpoints that hold only tensors and
plain containers, and loads them with ``torch.load(weights_only=True)``, which refuses anything else.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from facemix.errors import FacemixConfigError


class UnsafeCheckpointError(FacemixConfigError):
    """The file needs arbitrary pickled objects to load; facemix refuses to execute them."""


class BadCheckpointError(FacemixConfigError):
    """The file is not a readable facemix checkpoint: not a checkpoint at all, truncated, or corrupt."""


_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"  # torch.save's legacy (pre-1.6) format is a bare pickle
_ADVICE = "Pass a .ckpt from a run dir's checkpoints/ folder (ckpt_path=<run dir> picks its last.ckpt)."


def _why_unloadable(path: Path, exc: BaseException) -> FacemixConfigError:
    """Tell apart the four ways a checkpoint fails to load; the first three are checked on the bytes, so a damaged
    file is never called unsafe (torch reports both as an unpickling error)."""
    with path.open("rb") as f:
        head = f.read(4)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    reason = next((line for line in lines if "unsupported" in line.lower()), lines[-1])[:200]
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(_PICKLE_MAGIC):
        return BadCheckpointError(
            f"{path} is not a checkpoint: it is not a file written by torch.save (it starts with {head!r}). {_ADVICE}"
        )
    if head.startswith(_ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            return BadCheckpointError(
                f"{path} is truncated: the checkpoint archive ends before its index ({path.stat().st_size} bytes), "
                f"as when a copy or a save was cut off. Copy it again, or resume from the run's other checkpoint "
                f"(last.ckpt or an epoch_*.ckpt). {_ADVICE}"
            )
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as zip_exc:
            damaged = f"({zip_exc})"
        if damaged is not None:
            return BadCheckpointError(
                f"{path} is corrupt: its member {damaged} fails its checksum (bytes changed on disk or in a copy). "
                f"Copy it again from where it was written, or use another checkpoint of the run. {_ADVICE}"
            )
    if "weights only load failed" in str(exc).lower() and "unsupported" in str(exc).lower():
        return UnsafeCheckpointError(
            f"{path} cannot be loaded as weights only: it holds pickled objects that would run code when loaded "
            f"({reason}). facemix refuses to execute it. Use a checkpoint written by facemix.train, or re-save a "
            "trusted one as a plain state dict."
        )
    return BadCheckpointError(f"{path} could not be read as a checkpoint ({reason}); it may be damaged. {_ADVICE}")


def load_checkpoint(path: str | Path, mmap: bool = False, verify: bool = True) -> dict:
    """A checkpoint's contents, loaded without running pickled code; every failure is one of four user messages
    (not a checkpoint, truncated, corrupt, unsafe), each naming the file.

    ``verify`` checks every member's CRC first (about 1 s per GB): torch itself never looks at them, so flipped
    bytes in the weights would otherwise load silently as wrong weights."""
    path = Path(path)
    if not path.is_file():
        raise FacemixConfigError(f"ckpt={path} is not a file. {_ADVICE}")
    try:
        if verify and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
            if damaged is not None:
                raise zipfile.BadZipFile(f"bad CRC in {damaged}")
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        raise _why_unloadable(path, exc) from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        kind = "a state dict of weights" if isinstance(ckpt, dict) else f"a {type(ckpt).__name__}"
        raise BadCheckpointError(
            f"{path} is not a training checkpoint: it holds {kind}, without the state_dict / hyper_parameters that "
            f"facemix.train saves. A weights file can start a new run as model.pretrained={path}. {_ADVICE}"
        )
    return ckpt


def load_module(path: str | Path):
    """Rebuild the ``ClassifierModule`` a checkpoint was trained as (eval mode, CPU), weights restored."""
    from facemix.models.module import ClassifierModule, with_temperature

    ckpt = load_checkpoint(path)
    if "hyper_parameters" not in ckpt:
        raise BadCheckpointError(f"{path} is not a facemix training checkpoint (no hyper_parameters). {_ADVICE}")
    hparams = {**upgraded_hparams(ckpt["hyper_parameters"]), "pretrained": False}  # weights: the checkpoint's
    module = ClassifierModule(**hparams)
    try:
        module.load_state_dict(with_temperature(ckpt["state_dict"]))
    except RuntimeError as exc:
        first_mismatch = [line.strip() for line in str(exc).splitlines() if line.strip()][-1][:200]
        raise BadCheckpointError(
            f"{path} says it is a '{hparams.get('name')}' model with {hparams.get('num_classes')} classes, but its "
            f"weights do not fit that network ({first_mismatch}). "
            "The file was edited or mixed from two runs; use a checkpoint as facemix.train wrote it."
        ) from exc
    return module.eval()


def upgraded_hparams(hparams: dict) -> dict:
    """Checkpoints of facemix 0.2 and earlier (before optimisers were config) kept Adam / plateau settings as flat
    keys; they become the equivalent ``optimizer`` / ``scheduler`` configs, so those checkpoints still load."""
    from facemix.models.module import DEFAULT_OPTIMIZER, DEFAULT_SCHEDULER

    renames = {"lr": "lr", "weight_decay": "weight_decay", "plateau_factor": "factor", "plateau_patience": "patience"}
    if not any(k in hparams for k in renames):
        return hparams
    moved = {new: hparams[old] for old, new in renames.items() if old in hparams}
    upgraded = {k: v for k, v in hparams.items() if k not in renames}
    upgraded.setdefault(
        "optimizer", {**DEFAULT_OPTIMIZER, **{k: moved[k] for k in ("lr", "weight_decay") if k in moved}}
    )
    upgraded.setdefault(
        "scheduler", {**DEFAULT_SCHEDULER, **{k: moved[k] for k in ("factor", "patience") if k in moved}}
    )
    return upgraded


def checkpoint_epoch(path: str | Path) -> int:
    """The epoch a checkpoint was saved in (0-based), memory-mapped: one integer, not the weights beside it."""
    return int(load_checkpoint(path, mmap=True, verify=False)["epoch"])


def architecture_of(ckpt: dict) -> str:
    """``simple_cnn, 3 classes, 64 px`` — how a checkpoint's network is named in messages."""
    hp = ckpt.get("hyper_parameters") or {}
    return f"{hp.get('name', '?')}, {hp.get('num_classes', '?')} classes, {hp.get('image_size', '?')} px"


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


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """timm's ``avg_checkpoints.py`` idea: the mean of several checkpoints' weights (float tensors in float64, then
    back to their dtype; integer buffers such as batch-norm step counts from the first), written as a checkpoint
    like the first one, atomically."""
    import os

    loaded = [load_checkpoint(p) for p in paths]
    first = loaded[0]
    averaged = {}
    for key, value in first["state_dict"].items():
        if value.is_floating_point():
            total = sum(c["state_dict"][key].double() for c in loaded)
            averaged[key] = (total / len(loaded)).to(value.dtype)
        else:
            averaged[key] = value
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    torch.save({**first, "state_dict": averaged, "facemix_averaged_from": [str(p) for p in paths]}, tmp)
    os.replace(tmp, out)
    return out
