"""Every DVC stage lists, as deps, every lrsched module its script can import (so narrow deps can
never leave a result silently stale)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

SRC = ROOT / "src"


def imported_modules(path: Path) -> set[str]:
    """The lrsched modules ``path`` imports anywhere in its body (local imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "lrsched"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lrsched":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if (SRC / node.module.replace(".", "/") / f"{a.name}.py").is_file()}
    return found


def module_file(name: str) -> Path:
    base = SRC / name.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def closure(script: Path) -> set[Path]:
    """Every lrsched source file reachable from ``script`` by imports (the package __init__ too)."""
    todo, seen = list(imported_modules(script)) + ["lrsched"], set()
    while todo:
        path = module_file(todo.pop())
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        todo += imported_modules(path)
    return seen


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_depends_on_every_lrsched_module_it_imports(name: str) -> None:
    stage = STAGES[name].get("do", STAGES[name])
    script = ROOT / stage["cmd"].split()[1]
    deps = [ROOT / d for d in stage["deps"] if "${" not in d]
    needed = closure(script)
    assert len(needed) >= 3  # the package, the cli and what the stage does: the walk found the imports
    uncovered = sorted(str(p.relative_to(ROOT)) for p in needed if not any(p == d or d in p.parents for d in deps))
    assert not uncovered, f"{name} imports {uncovered} but dvc.yaml does not list them as deps"
    assert script in deps


def test_the_walk_sees_a_local_import() -> None:
    # plot.py imports lrsched.reporting.budget at module level, and the tracker only inside a function of cli.py
    assert module_file("lrsched.tracking.tracker") in closure(ROOT / "stages" / "plot.py")
