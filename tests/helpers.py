"""Running stage scripts and DVC in a temporary copy of the project."""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT, write_source

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for test servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_raw() -> dict[str, Any]:
    """The project's params.yaml as a mapping, to derive bad variants from."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def assert_config_error(override: str, message: str) -> None:
    """``override`` applied to the default params fails with a one-line error matching ``message``."""
    import pytest

    from lrsched.config import apply_overrides, parse_config
    from lrsched.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as info:
        parse_config(apply_overrides(default_raw(), [override]))
    assert "\n" not in str(info.value)


# params.yaml's spaces with numeric bounds (`high: lr_find` -> 1.0): tuning tests need no range test.
TOY_SPACE = {name: {key: {**dist, "high": 1.0} if dist.get("high") == "lr_find" else dist
                    for key, dist in space.items()}
             for name, space in default_raw()["tune"]["space"].items()}
TOY_SPACE_OVERRIDE = "tune.space=" + json.dumps(TOY_SPACE)


def project_copy(dest: Path, toy_files: dict[str, bytes], **sections: dict[str, Any]) -> Path:
    """Copy the project (code, pipeline, params) and point its data at generated files."""
    dest.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", "MLproject", "python_env.yaml"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, dest / name)
    for folder in ("stages", "src"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    md5s = write_source(dest.parent / f"{dest.name}-source", toy_files)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["data"].update(sources=[str(dest.parent / f"{dest.name}-source")], checksums=md5s)
    params["train"].update(epochs=2, seeds=[0], workers=1)  # quick; tests that pair seeds ask for more
    params["tune"]["space"] = TOY_SPACE
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def with_data(proj: Path) -> Path:
    """What the download stage leaves, done in-process (the stage itself has tests of its own)."""
    from lrsched.config import load_config
    from lrsched.data import download

    cfg = load_config(proj / "params.yaml")
    download(proj / cfg.data.root, cfg.data.sources, cfg.data.checksums)
    return proj


def env(tmp: Path, **extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.update(PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}", MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db",
             MLFLOW_DISABLE_TELEMETRY="true", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
             GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    e.update(extra)
    return e


def communicate_or_kill(child: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """``child.communicate``; on a timeout or Ctrl-C, kill its session (all it started) and re-raise."""
    try:
        return child.communicate(timeout=timeout)
    except BaseException:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise


def run(cmd: list[str], cwd: Path, environ: dict[str, str], check: bool = True,
        timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``cmd``; on a timeout or Ctrl-C, kill it with everything it started (DVC's stages too)."""
    child = subprocess.Popen(cmd, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    out, err = communicate_or_kill(child, timeout)
    proc = subprocess.CompletedProcess(cmd, child.returncode, out, err)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """End a server started with ``start_new_session=True`` and everything it forked; SIGKILL if it lingers."""
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stage(script: str, *args: str, cwd: Path, environ: dict[str, str], check: bool = True):
    return run([sys.executable, f"stages/{script}.py", *args], cwd, environ, check)


@dataclass
class Exited:
    """How a stage's ``main()`` ended when run in this process."""

    returncode: int
    stdout: str
    stderr: str


def stage_in_process(script: str, *args: str, cwd: Path, environ: dict[str, str] | None = None) -> Exited:
    """Run ``stages/<script>.py`` as ``__main__`` here: no interpreter to start.

    For error paths that stop before training (a run would set MLflow's global tracking URI).
    ``environ`` is added to this process's environment. The working directory, environment,
    argv, signal handlers and the root logger are restored afterwards.
    """
    import logging

    import optuna  # noqa: F401 - its log handler binds sys.stderr when first imported: not to our capture

    root = logging.getLogger()
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    saved_logging = (list(root.handlers), root.level)
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    try:
        os.environ.update(environ or {})
        os.chdir(cwd)
        sys.argv = [f"stages/{script}.py", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(f"stages/{script}.py", run_name="__main__")
            except SystemExit as exc:
                code = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        root.handlers[:], root.level = saved_logging
    returncode = 0 if code is None else code if isinstance(code, int) else 1
    return Exited(returncode, out.getvalue(), err.getvalue())
