"""The package's shape: layers that import only downwards, no import cycles,
the lab outside the runtime, and exactly the dependencies the runtime imports."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "edge_collab"

# Lowest first. A module may import its own layer and those below it.
LAYERS = [
    (
        "edge_collab.errors",
        "edge_collab.paths",
        "edge_collab.journal",
        "edge_collab.plotting",
        "edge_collab.thinking",
        "edge_collab.hashing",
    ),
    ("edge_collab.settings",),
    ("edge_collab.backends",),
    (
        "edge_collab.verifiers",
        "edge_collab.engine.pieces",
        "edge_collab.engine.stats",
        "edge_collab.engine.sampling",
        "edge_collab.engine.answer",
        "edge_collab.engine.writer",
        "edge_collab.engine.budget",
        "edge_collab.engine.probe_policy",
        "edge_collab.engine.result",
    ),
    ("edge_collab.engine",),
    ("edge_collab.remote",),
    ("edge_collab.presets",),
    ("edge_collab.pair", "edge_collab.__init__"),
    ("edge_collab.evaluation", "edge_collab.server"),
    ("edge_collab.cli",),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPOSITORY).with_suffix("").parts
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, index = -1, -1
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), number
    assert index >= 0, f"{module} belongs to no layer"
    return index


def imports_of(path: Path) -> set[str]:
    """Every edge_collab module `path` imports, anywhere in the file."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "edge_collab":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "edge_collab"}
    return {name if name in modules else name + ".__init__" for name in found}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}


def test_every_import_points_down_or_sideways():
    wrong = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, module, target]))
            if state.get(target) is None:
                visit(target, [*trail, module])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_the_runtime_never_imports_the_lab():
    for path in PACKAGE.rglob("*.py"):
        assert "edge_collab_lab" not in path.read_text(encoding="utf-8"), path


# The import name of each distribution the runtime depends on.
IMPORT_NAMES = {"llama-cpp-python": "llama_cpp", "sse-starlette": "sse_starlette"}


def test_the_runtime_declares_exactly_what_it_imports():
    imported: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"edge_collab"}
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[\[<>=!~ ]", spec)[0] for spec in project["dependencies"]}
    assert third_party == {IMPORT_NAMES.get(name, name) for name in declared}
