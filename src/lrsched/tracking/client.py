"""An ``MlflowClient`` that a signal cannot cut in the middle of a SQLite write."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from mlflow.tracking import MlflowClient

from lrsched.core.signals import signals_deferred


class UninterruptedClient:
    """An ``MlflowClient`` whose every call to a SQLite store ends before Ctrl-C/SIGTERM act.

    A SQLite write cut in half can keep its transaction, and the file's lock, open: the run's
    own KILLED status then cannot be written ("database is locked"; measured). Servers and
    other databases stay interruptible: their writes are transactions the server rolls back
    when the connection drops, and their retries can take minutes.
    """

    def __init__(self, uri: str):
        self._client = MlflowClient(uri)
        self._defer = uri.startswith("sqlite:")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy/pickle probe before __init__ ran: no recursion into _client
            raise AttributeError(name)
        attr = getattr(self._client, name)
        if not (self._defer and callable(attr)):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            with signals_deferred():
                return attr(*args, **kwargs)
        return call

    def uninterrupted(self) -> contextlib.AbstractContextManager[None]:
        """For writes made outside this client (MLflow's fluent API) to the same store."""
        return signals_deferred() if self._defer else contextlib.nullcontext()
