"""Every module of the local engine imports on its own, and no ``macie_pipeline`` modules import each other in a cycle.

The import graph is read from the source with ``ast``, so it has every import statement: at module
level, inside functions, and under ``if TYPE_CHECKING:`` (a cycle hidden from the interpreter is
still a cycle in the design).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import macie_pipeline

PACKAGE = "macie_pipeline"
PACKAGE_DIR = Path(macie_pipeline.__file__).resolve().parent


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package (packages by their ``__init__``)."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported_base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from X import ...`` statement reads from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if _is_package(path) else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its source.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _imported_base(module, path, node)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` when the graph has none (depth-first search)."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return [*visiting[visiting.index(node):], node]
        if node in done:
            return []
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return []


LOCAL_MODULES = sorted(m for m in module_files() if m.startswith(f"{PACKAGE}.local") and not m.endswith(".__main__"))


@pytest.mark.parametrize("module", LOCAL_MODULES)
def test_every_local_module_imports(module):
    assert importlib.import_module(module).__name__ == module


def test_no_import_cycle_among_the_package_modules():
    graph = import_graph()
    assert find_cycle(graph) == []


def test_the_graph_sees_relative_function_level_and_type_checking_imports():
    graph = import_graph()
    assert f"{PACKAGE}.local.deploy" in graph[f"{PACKAGE}.local.engine"]  # from .deploy import ...
    assert f"{PACKAGE}.contract" in graph[f"{PACKAGE}.local.deploy"]  # from ..contract import ...
    assert f"{PACKAGE}.local.patches" in graph[f"{PACKAGE}.local.engine"]  # from . import patches
    assert f"{PACKAGE}.local.cli" in graph[f"{PACKAGE}.local.__main__"]


def test_a_type_checking_import_back_is_reported_as_a_cycle(tmp_path):
    source = tmp_path / "review_server.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import LocalPipeline\n")
    known = {"p.engine", "p.review_server"}
    graph = {"p.engine": {"p.review_server"}, "p.review_server": imports_of("p.review_server", source, known)}
    assert find_cycle(graph) == ["p.engine", "p.review_server", "p.engine"]
