"""No import cycles between the project's modules.

An AST scan of every module of the apps and of ``hotdash/``, counting every import statement
wherever it stands: at module level, inside a function (a function-local import that breaks a
cycle at run time is still a cycle in the design) or under ``TYPE_CHECKING``. import-linter's
contracts (pyproject.toml) check the direction between layers; this test also sees a cycle
between two modules of the same layer.

``python -m tests.foundation.test_import_cycles`` prints every cycle with the imports that close it.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("approvals", "deployments", "hotdash")


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    local: bool  # inside a function or method

    def __str__(self) -> str:
        where = "local" if self.local else "module level"
        return f"{self.source}:{self.line} -> {self.target} ({where})"


def project_modules() -> dict[str, Path]:
    """Every module of PACKAGES by dotted name (a package by its own name)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module that importing ``name`` runs: the longest known prefix."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(source: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = source.split(".")
                    drop = child.level - 1 if is_package else child.level
                    anchor = anchor[: len(anchor) - drop]
                    base = ".".join(anchor + ([base] if base else []))
                # ``from package import module`` imports the submodule.
                names = [f"{base}.{alias.name}" for alias in child.names] or [base]
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != source:
                    found.append(Import(source, target, child.lineno, local))
            visit(child, inner)

    visit(tree, local=False)
    return list(dict.fromkeys(found))


def import_graph() -> dict[str, list[Import]]:
    modules = project_modules()
    return {name: _imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph.get(node, []):
            if edge.target not in index:
                connect(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


def describe(graph: dict[str, list[Import]], component: list[str]) -> str:
    members = set(component)
    edges = [str(e) for m in component for e in graph[m] if e.target in members]
    return "cycle among " + ", ".join(component) + ":\n  " + "\n  ".join(edges)


def test_the_scan_sees_local_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (package / "b.py").write_text("from .a import f\n")
    modules = {"pkg": package / "__init__.py", "pkg.a": package / "a.py", "pkg.b": package / "b.py"}
    graph = {name: _imports_of(name, path, modules) for name, path in modules.items()}

    assert [str(e) for e in graph["pkg"]] == ["pkg:1 -> pkg.a (module level)"]
    assert [str(e) for e in graph["pkg.a"]] == ["pkg.a:2 -> pkg.b (local)"]
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_cycles_between_project_modules():
    graph = import_graph()
    assert len(graph) > 50, "the scan found too few modules"
    found = cycles(graph)
    assert not found, "\n".join(describe(graph, component) for component in found)


if __name__ == "__main__":
    graph = import_graph()
    for component in cycles(graph):
        print(describe(graph, component))
