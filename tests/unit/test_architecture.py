"""The import graph follows the data flow and the folder list says where each job lives: every module belongs to a
layer, layers only import layers before them, the commands are doors nothing imports, no function grows into a
room (over 60 lines or 8 parameters), and no run-dir file name is spelled outside ``facemix.run.rundir``."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "facemix"
# a layer may import itself and any layer listed before it, never one after it
LAYERS = [
    "facemix.errors",  # the exception types every layer raises
    "facemix.augment",  # pixel transforms
    "facemix.models",  # networks, the LightningModule, the one checkpoint loader
    "facemix.run",  # a run dir's layout, resume, overrides, the error funnel, DDP plumbing
    "facemix.data",  # sources -> manifest -> split -> balance -> cache -> loaders
    "facemix.reports",  # figures and tables of what others computed
    "facemix.config",  # composing, checking and printing configs; the preflight
    "facemix.evaluation",  # the one prediction loop, metrics, report sets, comparisons
    "facemix.deploy",  # predict your own files, export
    "facemix.training",  # building a run from config, fitting, callbacks, loggers, speed settings
]
DOORS = ["train", "evaluate", "predict", "export", "compare", "cv", "scan", "preview", "demo"]
TOP_LEVEL = {"__init__", "errors", *DOORS}
MAX_LINES, MAX_PARAMETERS = 60, 8
# constructors of objects Hydra builds from config take one argument per config key
CONFIG_BUILT = {("models/module.py", "__init__"), ("data/datamodule.py", "__init__")}


def _node(module: str) -> str:
    """facemix.data.cache -> facemix.data (a package); facemix.train -> facemix.train (a top-level module)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _modules(root: Path):
    for path in sorted(root.rglob("*.py")):
        if "conf" in path.relative_to(root).parts:
            continue
        yield path, ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Edges between packages / top-level modules, from every import statement (including those inside
    functions: a deferred import is still a dependency)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path, module in _modules(root):
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


def test_every_module_belongs_to_a_layer_or_is_a_door():
    unplaced = [
        module
        for _, module in _modules(PACKAGE)
        if _node(module) not in LAYERS and module.removeprefix("facemix.") not in TOP_LEVEL and module != "facemix"
    ]
    assert unplaced == []
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL, "the top of the package holds the commands (doors) and the error types only"


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


def test_doors_are_thin_and_nothing_imports_them():
    graph = import_graph()
    doors = {f"facemix.{d}" for d in DOORS}
    importers = [f"{src} imports {dst}" for src, dsts in graph.items() for dst in dsts if dst in doors]
    assert importers == []
    fat = {d: n for d in DOORS if (n := len((PACKAGE / f"{d}.py").read_text().splitlines())) > 60}
    assert fat == {}


def test_pixels_and_networks_know_no_pipeline():
    """``augment`` is pixel transforms (its only facemix import: the error type); ``models`` knows no data,
    augmentation or reports (normalisation lives in the model, built from numbers it is given)."""
    graph = import_graph()
    assert graph.get("facemix.augment", set()) <= {"facemix.errors"}
    assert graph.get("facemix.models", set()) <= {"facemix.errors"}


def _functions(root: Path):
    for path, _ in _modules(root):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(root).as_posix(), node


def test_no_function_is_a_room():
    too_big = []
    for where, node in _functions(PACKAGE):
        a = node.args
        params = len(a.posonlyargs + a.args + a.kwonlyargs) - (1 if a.args and a.args[0].arg in ("self", "cls") else 0)
        lines = node.end_lineno - node.lineno + 1
        registered = any(
            isinstance(d, ast.Call) and getattr(d.func, "id", "") == "register" for d in node.decorator_list
        )
        if (where, node.name) in CONFIG_BUILT or registered:  # model builders: one argument per model.options key
            continue
        if lines > MAX_LINES or params > MAX_PARAMETERS:
            too_big.append(f"{where}:{node.lineno} {node.name} ({lines} lines, {params} parameters)")
    assert too_big == []


_NAMES = ("summary.json", "failed.json", "last.ckpt", "manifest.csv", "metrics.csv", "train.log", "checkpoints",
          "classification_report.json", "predictions.csv", "dataset_card.json")  # fmt: skip
RUN_DIR_NAMES = re.compile("[\"'](" + "|".join(re.escape(n) for n in _NAMES) + ")[\"']")


def test_only_the_run_dir_object_spells_run_dir_file_names():
    spelled = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path, module in _modules(PACKAGE)
        if module != "facemix.run.rundir"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if RUN_DIR_NAMES.search(line) and not line.lstrip().startswith("#")
    ]
    assert spelled == []


def test_the_checker_finds_a_cycle_a_room_and_a_spelled_name(tmp_path):
    """The guards themselves: a planted two-package cycle and a layer inversion are found, a 61-line function and
    a run-dir file name outside RunDir too."""
    pkg = tmp_path / "facemix"
    body = "def long():\n" + "    x = 1\n" * 60 + "    return 'summary.json'\n"
    files = {"data/a.py": "from facemix.models import b\n", "models/b.py": "import facemix.data.a\n", "run/c.py": body}
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    graph = import_graph(pkg)
    assert cycles(graph) == [["facemix.data", "facemix.models"]]
    assert "facemix.models" in graph["facemix.data"]
    (where, node), *_ = [(w, n) for w, n in _functions(pkg)]
    assert where == "run/c.py" and node.end_lineno - node.lineno + 1 > MAX_LINES
    assert RUN_DIR_NAMES.search(body)
