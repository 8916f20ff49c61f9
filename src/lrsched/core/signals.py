"""Ctrl-C and SIGTERM: how a stage (or a worker process) stops, and the writes they must not cut.

SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises :class:`Terminated`, so a
run ends KILLED and old outputs stay. Inside :func:`signals_deferred` they wait
for the block to end: a tracking store's write finishes (and frees its SQLite
lock) before the stage's own "run KILLED" write needs it.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any, Iterator

from lrsched.core.errors import Terminated

_pending: list[int] | None = None  # while a deferring block runs: the signals that arrived in it


def _raise_for(signum: int) -> None:
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def _on_signal(signum: int, frame: Any) -> None:
    if _pending is not None:
        _pending.append(signum)
        return
    _raise_for(signum)


def install_signal_handlers() -> None:
    """SIGTERM ends a run like Ctrl-C; SIGINT works even if the parent started us with it ignored."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM that arrive in the block act when it ends (at once if it was already ending).

    Database drivers roll a transaction back only on ``Exception``; an interrupt raised
    mid-write would leave the transaction, and SQLite's file lock, held.
    """
    global _pending
    if _pending is not None:  # nested: the outer block delivers
        yield
        return
    _pending = []
    try:
        yield
    finally:
        arrived, _pending = _pending, None
        if arrived:
            _raise_for(arrived[0])
