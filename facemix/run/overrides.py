"""Command-line overrides read the way Hydra reads them: the one parser of ``key=value`` in facemix.

The preflight (before Hydra runs), run names, logger params, the printed config and ``facemix-compare`` all need to
know which key an override sets and what was written for it. Hydra's own ``OverridesParser`` decides the key, the
kind (``+`` add, ``++`` force-add, ``~`` delete) and whether it is a sweep; the value is kept as the user wrote it
(``data.split={train: 0.9, val: 0.1}`` stays readable in a run name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import HydraException

from facemix.errors import FacemixConfigError


@dataclass(frozen=True)
class Override:
    key: str  # config key or group: ``data.batch_size``, ``model``, ``hydra/launcher``
    value: str | None  # as written (None for ``~key``)
    text: str  # the whole argument
    kind: str  # change | add | force_add | delete
    sweep: bool = False  # ``a=1,2`` or ``range(...)``
    parsed: object = None  # the value as Hydra reads it (quotes removed, null -> None); None for a sweep

    @property
    def parsed_text(self) -> str | None:
        """The parsed value as text (what a path or ``ckpt_path`` means), None for null / delete / a sweep."""
        return None if self.parsed is None else str(self.parsed)

    @property
    def is_group(self) -> bool:
        """``augment=keras`` picks an option of a config group; ``seed=1``, ``data.root=/x`` set values."""
        return "." not in self.key and self.key != "seed"


# overrides that say where a run reads and writes or how it reports, not what it is: left out of run names, logger
# params and the columns of facemix-compare
PLACE_KEYS = ("hydra.", "paths.", "ckpt_path", "data.root", "data.num_workers", "trainer.enable_progress_bar", "tags")


def is_place(key: str) -> bool:
    return key.startswith(PLACE_KEYS)


_KINDS = {
    OverrideType.CHANGE: "change",
    OverrideType.ADD: "add",
    OverrideType.FORCE_ADD: "force_add",
    OverrideType.DEL: "delete",
}
_QUOTING = (
    "Quote a value that holds spaces, '=', brackets, parentheses, quotes, '~' or non-ASCII letters: "
    "\"data.root='/data/Face Mask Dataset (1)'\" (outer quotes for the shell, inner ones for Hydra; a quote "
    "inside is written \\'). A folder name with ${...} must be renamed: Hydra reads it as an interpolation."
)


def parse_overrides(args: Iterable[str], strict: bool = True) -> list[Override]:
    """Each argument as Hydra parses it. ``strict=False`` (reading a run's saved overrides back) keeps an argument
    Hydra cannot parse as a plain ``key=value`` split instead of failing."""
    parser = OverridesParser.create()
    parsed = []
    for text in args:
        try:
            (override,) = parser.parse_overrides([text])
        except HydraException as exc:
            if strict:
                raise FacemixConfigError(f"The override {text!r} cannot be read: {exc}. {_QUOTING}") from None
            key, sep, value = text.lstrip("+~").partition("=")
            parsed.append(Override(key.strip(), value if sep else None, text, "change", parsed=value or None))
            continue
        _, sep, value = text.partition("=")
        parsed.append(
            Override(
                key=override.key_or_group,
                value=value if sep else None,
                text=text,
                kind=_KINDS[override.type],
                sweep=override.is_sweep_override(),
                parsed=None if override.is_sweep_override() or not sep else override.value(),
            )
        )
    return parsed


def by_key(overrides: Iterable[Override]) -> dict[str, Override]:
    """The last override of each key (Hydra applies them in order, so the last one wins)."""
    return {o.key: o for o in overrides}


def hydra_quoted(text: str) -> str:
    """A single-quoted Hydra string: quotes escaped, backslashes doubled only before a quote or at the end."""
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text) + "'"


def paths_as_override(argv: Sequence[str]) -> list[str]:
    """``facemix-compare A B key=value`` -> ``runs=['A','B'] key=value``: plain paths are the runs to compare."""
    paths = [a for a in argv if "=" not in a and not a.startswith("-")]
    if not paths:
        return list(argv)
    quoted = ",".join(hydra_quoted(a) for a in paths)
    return [f"runs=[{quoted}]", *(a for a in argv if a not in paths)]
