"""Atomic writes: a reader (or a crash) never sees a half-written output."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path, fix: str = "") -> Any:
    """A JSON file a stage reads: missing or corrupt -> one DataError naming the file and ``fix``."""
    from lrsched.core.errors import DataError

    hint = f"; {fix}" if fix else ""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing{hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}){hint}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a JSON file{hint}") from None


def project_root() -> Path:
    """The project the stores belong to, however a stage was started.

    ``dvc exp run --queue`` runs each experiment in a temporary copy under
    ``.dvc/tmp/exps/`` and sets ``DVC_ROOT`` to the real project: relative
    store paths (mlflow.db, mlruns/, optuna/optuna.db) are resolved there, not
    in the copy that DVC deletes afterwards.
    """
    return Path(os.environ.get("DVC_ROOT") or ".").resolve()


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive lock between processes on this machine (``fcntl``), held for the block."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
