"""Pretrained weights for timm backbones: off, from the hub, or from a local file.

Why the checks: on a machine without network timm's hub client retries for ~48 s before failing, and the error
does not say that a local file would do. We decide in well under a second and say so.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch.nn as nn

from facemix.errors import FacemixConfigError, PretrainedWeightsUnavailable

Pretrained = bool | str | None
FALSE_WORDS = {"", "false", "no", "0", "none", "null"}
TRUE_WORDS = {"true", "yes", "1", "hub"}


def _offline_advice(model_name: str) -> str:
    return (
        f"Pretrained weights for timm model '{model_name}' cannot be fetched: the Hugging Face hub is not reachable "
        "from this machine and the weights are not in the local cache. Download them where you have network "
        "(e.g. timm.create_model(name, pretrained=True) then save model.state_dict()), copy the file here and pass "
        "model.pretrained=/path/to/weights.safetensors (or .pth), or train from scratch with model.pretrained=false."
    )


def hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _weights_cached(model_name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        cfg = timm.models.get_pretrained_cfg(model_name)
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if not hub_id:
            return False
        return any(
            isinstance(try_to_load_from_cache(hub_id, f), str) for f in ("model.safetensors", "pytorch_model.bin")
        )
    except Exception:
        return False


def uses_pretrained_weights(pretrained: Pretrained) -> bool:
    """Whether ``model.pretrained`` asks for weights at all (hub or file)."""
    if pretrained is None or pretrained is False:
        return False
    return not (isinstance(pretrained, str) and pretrained.lower() in FALSE_WORDS)


def timm_weights_kwargs(model_name: str, pretrained: Pretrained) -> dict:
    """``timm.create_model`` keyword arguments for ``pretrained`` = false | true | a local weights file."""
    if pretrained is None or pretrained is False:
        return {"pretrained": False}
    if pretrained is True or (isinstance(pretrained, str) and pretrained.lower() in TRUE_WORDS):
        if not hub_reachable() and not _weights_cached(model_name):
            raise PretrainedWeightsUnavailable(_offline_advice(model_name))
        return {"pretrained": True}
    if isinstance(pretrained, str) and pretrained.lower() in FALSE_WORDS:
        return {"pretrained": False}
    path = Path(str(pretrained)).expanduser()
    if not path.is_file():
        raise FacemixConfigError(
            f"model.pretrained is '{pretrained}', which is neither true/false nor an existing weights file. "
            "Give the path of a .safetensors / .pth state dict for this timm model, or true / false."
        )
    return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path.resolve())}}


def create_timm(model_name: str, pretrained: Pretrained = False, **kwargs) -> nn.Module:
    """``timm.create_model`` with facemix's pretrained semantics and a clear error when the hub fails."""
    weights = timm_weights_kwargs(model_name, pretrained)
    try:
        return timm.create_model(model_name, **weights, **kwargs)
    except Exception as exc:  # a file that is not weights fails in pickle, safetensors or load_state_dict
        if "pretrained_cfg_overlay" in weights:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
            raise FacemixConfigError(
                f"model.pretrained file {weights['pretrained_cfg_overlay']['file']} could not be loaded into timm "
                f"model '{model_name}' ({type(exc).__name__}: {reason}). It must be a .safetensors / .pth state dict "
                "saved from that same architecture; pass another file, or model.pretrained=false."
            ) from exc
        if weights.get("pretrained") and isinstance(exc, (OSError, RuntimeError, ValueError)):
            raise PretrainedWeightsUnavailable(_offline_advice(model_name)) from exc
        raise
