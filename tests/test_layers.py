"""The package layers in pyproject.toml hold (import-linter), and an upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")


def lint(project: Path) -> subprocess.CompletedProcess:
    # the project's own src first: the copy is what is checked, not the installed package
    environ = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run([str(LINT), "--no-cache"], cwd=project, env=environ, capture_output=True, text=True,
                          timeout=120)


def test_the_package_keeps_its_layers() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lrsched layers KEPT" in done.stdout


def test_an_upward_import_breaks_the_build(tmp_path: Path) -> None:
    """training may not import tuning (a floor above it): the contract fails and names the import."""
    copy = tmp_path / "proj"
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    trainer = copy / "src" / "lrsched" / "training" / "trainer.py"
    trainer.write_text(trainer.read_text() + "\n\ndef _upward():\n    from lrsched.tuning import study  # noqa\n")
    done = lint(copy)
    assert done.returncode == 1
    assert "lrsched layers BROKEN" in done.stdout
    assert "lrsched.training.trainer -> lrsched.tuning.study" in done.stdout
