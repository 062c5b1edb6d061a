"""The plug-in model zoo: ``facemix.models.create(name, num_classes, pretrained=..., **kw)``."""

from facemix.models.registry import REGISTRY, create, list_models, register

arch = REGISTRY.arch
__all__ = ["REGISTRY", "arch", "create", "list_models", "register"]
