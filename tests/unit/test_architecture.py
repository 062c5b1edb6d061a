"""The import graph follows the data flow: no cycle between facemix's packages and top-level modules, and the
pipeline's layers only import layers before them (sources -> manifest -> ... -> reports)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "facemix"
# a layer may import itself and any layer listed before it, never one after it
LAYERS = ["facemix.errors", "facemix.augment", "facemix.data", "facemix.models", "facemix.reports"]


def _node(module: str) -> str:
    """facemix.data.cache -> facemix.data (a package); facemix.train -> facemix.train (a top-level module)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Edges between packages / top-level modules, from every import statement (including those inside
    functions: a deferred import is still a dependency)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("facemix.") and _node(target) != _node(module):
                    graph[_node(module)].add(_node(target))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by depth-first search, each once (rotated to start at its smallest node)."""
    found: set[tuple[str, ...]] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt in path:
                cycle = path[path.index(nxt) :]
                start = cycle.index(min(cycle))
                found.add(tuple(cycle[start:] + cycle[:start]))
            elif len(path) < 12:
                visit(nxt, [*path, nxt])

    for node in list(graph):
        visit(node, [node])
    return sorted(list(c) for c in found)


def test_no_import_cycle_between_packages_or_modules():
    assert cycles(import_graph()) == []


def test_layers_import_only_earlier_layers():
    graph = import_graph()
    backwards = [
        f"{src} imports {dst}"
        for src in LAYERS
        for dst in graph.get(src, ())
        if dst in LAYERS and LAYERS.index(dst) > LAYERS.index(src)
    ]
    assert backwards == []


def test_pixels_and_networks_know_no_pipeline():
    """``augment`` is pixel transforms (its only facemix import: the error type); ``models`` knows no data or
    augmentation (normalisation lives in the model, built from numbers it is given)."""
    graph = import_graph()
    assert graph.get("facemix.augment", set()) <= {"facemix.errors"}
    assert not graph.get("facemix.models", set()) & {"facemix.data", "facemix.augment", "facemix.reports"}


def test_the_checker_finds_a_cycle(tmp_path):
    """The guard itself: a planted two-package cycle and a layer inversion are found."""
    pkg = tmp_path / "facemix"
    for name, body in {"data/a.py": "from facemix.models import b\n", "models/b.py": "import facemix.data.a\n"}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    graph = import_graph(pkg)
    assert cycles(graph) == [["facemix.data", "facemix.models"]]
    assert "facemix.models" in graph["facemix.data"]
