"""Run independent trainings (seeds, tuning trials) in parallel single-thread processes.

One thread per process keeps CPU numbers portable (see :mod:`lrsched.pinning`);
several processes use the cores instead. Each job's result depends only on its
own inputs, so the outcome is the same with 1 or N workers, in any order.

Processes are started with ``spawn`` (no inherited torch state or locks); each
loads the data once. Ctrl-C or SIGTERM ends every worker: each one's tracked
run ends KILLED, and the stage exits 130/143 with old outputs intact.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any, Callable, Iterable, TypeVar

from tqdm.auto import tqdm

from lrsched.errors import Terminated
from lrsched.signals import install_signal_handlers

T = TypeVar("T")
R = TypeVar("R")

_state: dict[str, Any] = {}  # per worker process: what the initializer loaded (the data)


def worker_count(requested: int, jobs: int) -> int:
    """``requested`` 0 means one per core; never more processes than jobs."""
    n = requested or os.cpu_count() or 1
    return max(1, min(n, jobs))


def _init(setup: Callable[..., Any], args: tuple) -> None:
    install_signal_handlers()
    _state["context"] = setup(*args)


def _call(job: tuple[Callable[[Any, Any], R], Any]) -> R:
    fn, arg = job
    try:
        return fn(_state["context"], arg)
    except (KeyboardInterrupt, Terminated):
        # the run's tracker already ended it KILLED on the way out; leave quietly
        os._exit(130)


class Workers:
    """``workers`` processes (or this one, when 1), each with ``setup(*setup_args)`` run once.

    ``map(fn, items)`` returns ``[fn(context, item) for item in items]`` in order.
    ``fn`` and ``setup`` must be module-level functions (picklable), and so must
    items and results. Use as a context manager: leaving it ends the processes;
    an exception or signal terminates them (each tracked run then ends KILLED).
    """

    def __init__(self, workers: int, setup: Callable[..., Any], setup_args: tuple = ()):
        self.n, self.setup, self.setup_args = workers, setup, setup_args
        self._pool: Any = None
        self._context: Any = None

    def __enter__(self) -> "Workers":
        if self.n > 1:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(self.n, initializer=_init, initargs=(self.setup, self.setup_args))
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self._pool is None:
            return
        if kind is None:
            self._pool.close()
        else:
            self._pool.terminate()  # SIGTERM to every worker: their runs end KILLED
        self._pool.join()

    def map(self, fn: Callable[[Any, T], R], items: Iterable[T], desc: str = "") -> list[R]:
        """With several workers, ``desc`` labels one progress bar over the jobs (per-epoch bars
        of parallel workers would overwrite each other)."""
        items = list(items)
        if self._pool is None:
            if self._context is None:
                self._context = self.setup(*self.setup_args)
            return [fn(self._context, item) for item in items]
        jobs = self._pool.imap(_call, [(fn, item) for item in items], chunksize=1)
        return list(tqdm(jobs, total=len(items), desc=desc, unit="run", disable=None if desc else True,
                         leave=False))


def run_all(fn: Callable[[Any, T], R], items: Iterable[T], workers: int,
            setup: Callable[..., Any], setup_args: tuple = (), desc: str = "") -> list[R]:
    """One batch of jobs on ``worker_count(workers, len(items))`` fresh workers."""
    items = list(items)
    with Workers(worker_count(workers, len(items)), setup, setup_args) as pool:
        return pool.map(fn, items, desc)
