"""Where Optuna studies live: a SQLite file under the project, or any SQLAlchemy URL."""

from __future__ import annotations

import time

from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from lrsched.core.dberrors import is_duplicate
from lrsched.core.errors import LrschedError
from lrsched.core.io import project_root
from lrsched.core.urls import mask_password

HEARTBEAT_S = 5     # a live trial writes a heartbeat this often
GRACE_S = 20        # a trial silent this long is failed (and retried once) by another worker


class StorageError(LrschedError):
    """The Optuna storage URL is invalid or unreachable."""


def storage_url(storage: str) -> str:
    """A bare path means a SQLite file in the project (created with its folder); URLs pass through."""
    if "://" in storage:
        return storage
    path = project_root() / storage
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_storage(storage: str, attempts: int = 3) -> RDBStorage:
    url = storage_url(storage)
    try:
        return _rdb_storage(url)
    except Exception as exc:
        # two workers creating a new database's tables at once: the loser's insert or CREATE fails
        if attempts > 1 and is_duplicate(exc):
            time.sleep(1.0)
            return open_storage(storage, attempts - 1)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"tune.storage={mask_password(storage)}: cannot open the Optuna storage "
                           f"({mask_password(first)[:200]}); "
                           "fix the URL (e.g. postgresql://user:pass@host/db) or use a local file path") from None


def _rdb_storage(url: str) -> RDBStorage:
    return RDBStorage(
        url,
        engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else
        {"connect_args": {"timeout": 60}},  # several local workers: wait on the file lock, don't fail
        heartbeat_interval=HEARTBEAT_S,
        grace_period=GRACE_S,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
    )
