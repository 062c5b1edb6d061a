"""The composed config, printed at the start of a run: what you chose, and the sections you changed.

Hydra saves the whole config in ``.hydra/config.yaml``; on screen a user wants to check the few things that differ
from the defaults before minutes of training start (``verbose=true`` prints everything).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from facemix.run.overrides import parse_overrides

HIDDEN_SECTIONS = ("hydra", "paths")


def default_choices() -> dict[str, str | None]:
    """The group options ``train.yaml``'s defaults list picks when nothing is overridden."""
    from importlib.resources import files

    import yaml

    defaults = yaml.safe_load(files("facemix.conf").joinpath("train.yaml").read_text())["defaults"]
    choices: dict[str, str | None] = {}
    for entry in defaults:
        if isinstance(entry, dict):
            for group, option in entry.items():
                choices[group.removeprefix("optional ")] = option
    return choices


def changed_sections(choices: Mapping[str, str | None], overrides: Sequence[str]) -> list[str]:
    """Top-level config sections whose group option differs from the default or that an override touches."""
    defaults = default_choices()
    sections = {g.split("/")[0] for g, c in choices.items() if "/" not in g or g.startswith("data/")}
    sections = {s for s in sections if s in defaults and choices.get(s) != defaults.get(s)}
    for override in parse_overrides([str(o) for o in overrides], strict=False):
        sections.add(override.key.split(".")[0].split("/")[0])
    if choices.get("experiment") or choices.get("debug"):  # they may set keys anywhere
        sections |= {"data", "model", "trainer", "augment"}
    return sorted(s for s in sections if s not in HIDDEN_SECTIONS)


def print_config_tree(
    cfg: DictConfig, choices: Mapping[str, str | None], overrides: Sequence[str], verbose: bool = False
) -> None:
    from rich import print as rich_print
    from rich.syntax import Syntax
    from rich.tree import Tree

    defaults = default_choices()
    tree = Tree("[bold]facemix config[/bold] (whole config: .hydra/config.yaml in the run dir)")
    picked = tree.add("config groups")
    for group in sorted(g for g in choices if not g.startswith("hydra")):
        mark = "" if choices[group] == defaults.get(group, choices[group]) else "  [yellow](changed)[/yellow]"
        picked.add(f"{group}: {choices[group]}{mark}")
    sections = [k for k in cfg if k not in HIDDEN_SECTIONS] if verbose else changed_sections(choices, overrides)
    for section in sections:
        if section not in cfg:
            continue
        node = cfg[section]
        text = OmegaConf.to_yaml(node, resolve=False) if isinstance(node, DictConfig) else f"{node}\n"
        tree.add(section).add(Syntax(text.rstrip(), "yaml", theme="ansi_dark"))
    rich_print(tree)
