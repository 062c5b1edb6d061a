"""The data pipeline's default settings, read from the shipped ``conf/data/unbalanced.yaml`` so they are written
once: a notebook building a ``DataSpec`` from its sources alone, or calling ``build_manifest`` / ``duplicate_groups``
directly, gets the same split, duplicate thresholds and balancing as ``facemix-train``."""

from __future__ import annotations

import functools
from typing import Any

# the settings with a default; what the data is (sources, classes, demo) has none outside a config
SETTINGS = ("split", "keep_source_splits", "balance", "offline", "strict", "duplicates", "harmonize", "verify")


@functools.cache
def packaged_settings() -> dict[str, Any]:
    """``SETTINGS`` as the shipped YAML writes them (values that interpolate other config, such as cache paths, are
    left out: they need a composed config)."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    node = OmegaConf.create(files("facemix.conf").joinpath("data", "unbalanced.yaml").read_text())
    raw = OmegaConf.to_container(node, resolve=False)

    def literal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: literal(v) for k, v in value.items() if not (isinstance(v, str) and "${" in v)}
        return value

    return {key: literal(raw[key]) for key in SETTINGS}


def duplicate_setting(name: str, given: Any = None) -> Any:
    """``given``, or the shipped ``data.duplicates.<name>`` when it is None."""
    return packaged_settings()["duplicates"][name] if given is None else given
