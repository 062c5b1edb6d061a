"""Errors users act on. Each message is one paragraph: what is wrong, where (file / config key), and the fix."""


class FacemixConfigError(ValueError):
    """A configuration or data-layout mistake that must stop a run before any training step."""
