"""The plug-in model zoo: ``facemix.models.create(name, num_classes, pretrained=..., **kw)``."""

from facemix.models.registry import REGISTRY, create, list_models, register

__all__ = ["REGISTRY", "create", "list_models", "register"]
