"""The model registry: ``create(name, num_classes, ...)`` and ``list_models()``, like timm's.

Builders register with ``@register("name")``; third-party packages add theirs through the entry-point group
``facemix.models`` (``name = "package.module:builder"``), discovered the first time the registry is asked.
Any timm model name that facemix does not register itself is built by the generic ``timm`` builder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points

import torch.nn as nn

from facemix.errors import FacemixConfigError

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "facemix.models"
Builder = Callable[..., nn.Module]
ArchOf = Callable[..., "str | None"]  # builder options -> the timm architecture whose pretrained config applies


class ModelRegistry:
    def __init__(self, entry_point_group: str = ENTRY_POINT_GROUP) -> None:
        self.entry_point_group = entry_point_group
        self._builders: dict[str, Builder] = {}
        self._archs: dict[str, ArchOf] = {}
        self._discovered = False

    def register(self, name: str, arch: ArchOf | None = None) -> Callable[[Builder], Builder]:
        """``arch(**options)`` names the timm architecture a builder wraps, so its input statistics apply; a builder
        without one (or a plug-in) gets ImageNet's."""

        def decorator(builder: Builder) -> Builder:
            if name in self._builders and self._builders[name] is not builder:
                raise ValueError(f"model '{name}' is registered twice ({self._builders[name]} and {builder})")
            self._builders[name] = builder
            if arch is not None:
                self._archs[name] = arch
            return builder

        return decorator

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        import facemix.models.builtins  # noqa: F401  (registers the built-ins)

        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._builders:
                log.warning(
                    "entry point %s (%s) is shadowed by the model of that name already registered", ep.name, ep.value
                )
                continue
            try:
                self._builders[ep.name] = ep.load()
            except Exception as exc:  # a broken plug-in must not take the zoo down with it
                log.warning("could not load model plug-in %s = %s: %s", ep.name, ep.value, exc)

    def list_models(self) -> list[str]:
        self._discover()
        return sorted(self._builders)

    def get(self, name: str) -> Builder:
        self._discover()
        if name in self._builders:
            return self._builders[name]
        import timm

        if timm.is_model(name):
            generic = self._builders["timm"]
            return lambda **kw: generic(timm_name=name, **kw)
        raise FacemixConfigError(
            f"model.name '{name}' is not a registered model. Available: {', '.join(self.list_models())}; "
            "or any timm model name (see timm.list_models()). Pick one with model=<name> or model.name=<name>."
        )

    def arch(self, name: str, **options) -> str | None:
        """The timm architecture behind model ``name`` built with ``options`` (None: not a timm backbone)."""
        self.get(name)  # a clear error for unknown names
        if name in self._archs:
            return self._archs[name](**options)
        return None if name in self._builders else name  # a plain timm name is its own architecture

    def create(self, name: str, num_classes: int, pretrained: bool | str = False, **kwargs) -> nn.Module:
        return self.get(name)(num_classes=num_classes, pretrained=pretrained, **kwargs)


REGISTRY = ModelRegistry()
register = REGISTRY.register
create = REGISTRY.create
list_models = REGISTRY.list_models
