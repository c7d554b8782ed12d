"""Tests use the rollout engine through its public seams only: no test imports a name starting
with ``_`` from ``deployments.engine`` (any module of it) or ``deployments.services.deploys``,
nor reaches one through a module it imported from there."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ENGINE_MODULES = ("deployments.engine", "deployments.services.deploys")


def _is_engine(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in ENGINE_MODULES)


def _is_module(dotted: str) -> bool:
    path = TESTS.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def private_uses(tree: ast.AST) -> list[str]:
    """Every private engine name ``tree`` imports or reads off an imported engine module."""
    found: list[str] = []
    modules: set[str] = set()  # local names bound to an engine module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if _is_engine(dotted) and _is_module(dotted):
                    modules.add(alias.asname or alias.name)
                elif _is_engine(node.module) and alias.name.startswith("_"):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_engine(alias.name) and alias.asname:
                    modules.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_test_uses_a_private_name_of_the_engine():
    offences = [
        f"{path.relative_to(TESTS.parent)} {use}"
        for path in sorted(TESTS.rglob("*.py"))
        for use in private_uses(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert offences == []


def test_the_scan_sees_private_imports_and_attributes():
    source = (
        "from deployments.engine.claim import _queued_before, acquire\n"
        "from deployments.services.deploys import _name\n"
        "from deployments.services import deploys as engine_entry\n"
        "from deployments.engine import steps\n"
        "engine_entry._name('x')\n"
        "steps._machine_health(None, [])\n"
        "steps.STEPS\n"
        "from deployments.services.gates import _private_elsewhere\n"
    )
    assert private_uses(ast.parse(source)) == [
        "line 1: from deployments.engine.claim import _queued_before",
        "line 2: from deployments.services.deploys import _name",
        "line 5: engine_entry._name",
        "line 6: steps._machine_health",
    ]
