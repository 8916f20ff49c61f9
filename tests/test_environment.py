"""The environment is the locked one: every package requirements.lock pins here is installed at that version."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK = ROOT / "requirements.lock"
# The versions that decide results (the list) and the one the report's tests need.
DECISIVE = {"torch", "numpy", "optuna", "scipy", "schedulefree", "mlflow", "statsmodels"}


def locked(text: str) -> dict[str, str]:
    """name -> version of every pin whose marker holds on this machine.

    A pin is ``name==version`` with an optional ``; marker`` and a trailing ``\\``;
    its ``--hash`` lines and the ``#`` comments are indented or start with ``#``.
    """
    pins = {}
    for line in text.splitlines():
        if not line or line[0] in " #-":
            continue
        req = Requirement(line.rstrip(" \\"))
        if req.marker is None or req.marker.evaluate():
            (spec,) = req.specifier
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def mismatches(pins: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """name -> (locked, installed) for every pin not installed at its version (None: not installed)."""
    wrong = {}
    for name, version in pins.items():
        try:
            have: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or Version(have) != Version(version):
            wrong[name] = (version, have)
    return wrong


def test_installed_versions_match_the_lock() -> None:
    pins = locked(LOCK.read_text())
    assert DECISIVE | {"pytest", "pytest-xdist"} <= set(pins)
    assert mismatches(pins) == {}, "installed versions differ from requirements.lock (locked, installed); `make setup`"


def test_a_version_that_differs_from_the_lock_is_reported() -> None:
    numpy = metadata.version("numpy")
    text = (f"numpy=={numpy} \\\n    --hash=sha256:00\n    # via torch\n"
            "scipy==0.0.1 \\\n    --hash=sha256:00\n"
            "no-such-package-lrsched==1.0\n"
            "pywin32==312 ; sys_platform == 'never'\n")
    pins = locked(text)
    assert pins == {"numpy": numpy, "scipy": "0.0.1", "no-such-package-lrsched": "1.0"}  # the marker's pin skipped
    assert mismatches(pins) == {"scipy": ("0.0.1", metadata.version("scipy")), "no-such-package-lrsched": ("1.0", None)}


def test_every_decisive_version_is_locked_with_hashes() -> None:
    text = LOCK.read_text()
    for name in DECISIVE:
        block = text.split(f"\n{name}==", 1)[1].split("\n    # via", 1)[0]
        assert "--hash=sha256:" in block, name


def test_a_changed_lock_reinstalls(tmp_path: Path) -> None:
    """`make setup` re-installs when requirements.lock is newer than the venv's stamp, and only then."""
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    stamp = tmp_path / ".venv" / ".lrsched-installed"
    stamp.parent.mkdir()
    stamp.touch()
    later = stamp.stat().st_mtime + 10
    up_to_date = ["make", "-q", "--no-print-directory", ".venv/.lrsched-installed"]
    assert subprocess.run(up_to_date, cwd=tmp_path).returncode == 0
    os.utime(tmp_path / "requirements.lock", (later, later))
    assert subprocess.run(up_to_date, cwd=tmp_path).returncode == 1
    plan = subprocess.run(["make", "-n", ".venv/.lrsched-installed"], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout
    assert "pip install --require-hashes -r requirements.lock" in plan
    assert "pip install --no-deps -e '.[dev]'" in plan
