"""Run independent trainings (seeds, tuning trials) in parallel single-thread processes.

One thread per process keeps CPU numbers portable (see :mod:`lrsched.pinning`);
several processes use the cores instead. Each job's result depends only on its
own inputs, so the outcome is the same with 1 or N workers, in any order.

Processes are started with ``spawn`` (no inherited torch state or locks); each
loads the data once. A small supervisor (one pipe per worker, not
``multiprocessing.Pool``) knows which job each worker holds, so nothing can hang
the stage: an error in a worker's setup or job, or a worker killed by any
signal, ends the stage within seconds with one line naming the job and the
signal. The other workers are then stopped (their tracked runs end KILLED), and
the runs of a dead worker are ended by the parent. Ctrl-C or SIGTERM ends every
worker the same way, and the stage exits 130/143 with old outputs intact.
Workers never outlive the stage's process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, TypeVar

from tqdm import std as tqdm_std
from tqdm.auto import tqdm

from lrsched.core.errors import LrschedError, Terminated
from lrsched.core.signals import install_signal_handlers

T = TypeVar("T")
R = TypeVar("R")

STOP_GRACE_S = 15  # a stopped worker ends its run KILLED within this, or is killed outright
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class WorkerError(LrschedError):
    """A worker process failed in a way its job could not report itself."""


class WorkerDied(WorkerError):
    """A worker process ended (killed by a signal, or exited) while the stage still needed it."""

    pid: int = 0


def worker_count(requested: int, jobs: int) -> int:
    """``requested`` 0 means one per core; never more processes than jobs."""
    n = requested or os.cpu_count() or 1
    return max(1, min(n, jobs))


def job_label(item: Any) -> str:
    """How errors name a job: its ``label`` (e.g. "seed 1", "trial 3"), else its type."""
    return str(getattr(item, "label", "") or type(item).__name__)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (classes with custom ``__init__`` often don't), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return WorkerError(f"{type(exc).__name__}: {exc}".replace("\n", " "))


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker (its run then ends KILLED) when the stage's process is gone, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except Exception:  # no libc prctl: the thread below still notices within a second
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker(conn: Any, setup: Callable[..., Any], setup_args: tuple, parent: int) -> None:
    """A worker's whole life: set up once, then run jobs until told to stop. Never prints a traceback:
    it leaves by ``os._exit``, so a signal cannot hit interpreter shutdown's cleanup either."""
    code = 0
    try:
        # the parent started us with SIGINT/SIGTERM blocked: one that came during start-up acts here
        install_signal_handlers()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        _die_with_parent(parent)
        # tqdm's default lock holds a multiprocessing semaphore, which os._exit would leave to the
        # resource tracker ("leaked semaphore objects" at the stage's end); each worker draws its
        # bars alone, so a thread lock does the same job
        tqdm_std.tqdm.set_lock(threading.RLock())
        try:
            context = setup(*setup_args)
        except Exception as exc:
            conn.send(("setup", None, _portable(exc), ""))
            code = 1
            return
        while True:
            try:
                message = conn.recv()
            except EOFError:  # the parent is gone
                return
            if message is None:
                return
            index, fn, item = message
            try:
                reply: tuple = ("ok", index, fn(context, item))
            except Exception as exc:
                reply = ("error", index, _portable(exc), traceback.format_exc())
            try:
                conn.send(reply)
            except Exception as exc:  # an unpicklable result
                conn.send(("error", index, WorkerError(f"its result cannot be sent back ({exc})"), ""))
    except (KeyboardInterrupt, Terminated):
        code = 130  # the run's tracker already ended it KILLED on the way out; leave quietly
    except (BrokenPipeError, ConnectionResetError):  # the parent is gone
        code = 1
    finally:
        # Ignore Ctrl-C/SIGTERM from here on. A signal already caught by the C handler still raises,
        # once, at the next Python call: nested, so that up to two (SIGINT, then the parent's SIGTERM)
        # are absorbed before the exit.
        try:
            try:
                _ignore_stop_signals()
            except BaseException:
                _ignore_stop_signals()
        except BaseException:
            _ignore_stop_signals()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _ignore_stop_signals() -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class RemoteTraceback(Exception):
    """Where a worker's exception was raised, shown as the cause of the one the parent re-raises."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class _Slot:
    """One worker process, its pipe, and the job it holds (an index into the items, or None)."""

    def __init__(self, process: Any, conn: Any):
        self.process, self.conn, self.job = process, conn, None
        self.open = True


class Workers:
    """``workers`` processes (or this one, when 1), each with ``setup(*setup_args)`` run once.

    ``map(fn, items)`` returns ``[fn(context, item) for item in items]`` in order.
    ``fn`` and ``setup`` must be module-level functions (picklable), and so must
    items and results. Use as a context manager: leaving it ends the processes;
    an exception or signal terminates them (each tracked run then ends KILLED).
    ``on_death(pid, status, reason)`` is called after the processes are gone for each
    worker that did not exit cleanly: it ends the runs such a process left RUNNING.
    """

    def __init__(self, workers: int, setup: Callable[..., Any], setup_args: tuple = (),
                 on_death: Callable[[int, str, str], Any] | None = None):
        self.n, self.setup, self.setup_args, self.on_death = workers, setup, setup_args, on_death
        self._slots: list[_Slot] | None = None
        self._context: Any = None
        self._dead: dict[int, str] = {}  # pid -> why the parent ends its runs (the worker that died)

    def __enter__(self) -> "Workers":
        if self.n > 1:
            self._slots = []
            ctx = multiprocessing.get_context("spawn")
            try:
                for _ in range(self.n):
                    parent_end, child_end = ctx.Pipe()
                    process = ctx.Process(target=_worker, args=(child_end, self.setup, self.setup_args, os.getpid()),
                                          daemon=True)
                    # blocked while it starts: a Ctrl-C cannot hit the child's interpreter start-up (a traceback)
                    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
                    try:
                        process.start()
                    finally:
                        signal.pthread_sigmask(signal.SIG_SETMASK, old)
                    child_end.close()
                    self._slots.append(_Slot(process, parent_end))
            except BaseException:
                self._stop()
                raise
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self._slots is not None:
            self._stop(graceful=kind is None)

    def _stop(self, graceful: bool = False) -> None:
        """End every worker (SIGTERM unless done; SIGKILL after the grace), then the runs they left."""
        slots, self._slots = self._slots or [], None
        if graceful:
            for slot in slots:
                try:
                    slot.conn.send(None)
                except OSError:
                    pass
        else:
            for slot in slots:
                if slot.process.is_alive():
                    slot.process.terminate()  # SIGTERM: its run ends KILLED
        deadline = time.monotonic() + STOP_GRACE_S
        for slot in slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
        for slot in slots:
            pid, code = slot.process.pid, slot.process.exitcode
            if self.on_death is None or code == 0:
                continue
            if pid in self._dead:
                status, reason = "FAILED", self._dead[pid]
            else:
                status, reason = "KILLED", f"worker process {pid} was stopped ({_exit_reason(code)})"
            try:
                self.on_death(pid, status, reason)
            except Exception:  # the error already reported matters more; the next stage reaps the rest
                pass

    def map(self, fn: Callable[[Any, T], R], items: Iterable[T], desc: str = "") -> list[R]:
        """With several workers, ``desc`` labels one progress bar over the jobs (per-epoch bars
        of parallel workers would overwrite each other)."""
        items = list(items)
        if self._slots is None:
            if self._context is None:
                self._context = self.setup(*self.setup_args)
            return [fn(self._context, item) for item in items]
        results: list[Any] = [None] * len(items)
        todo, done = deque(range(len(items))), 0
        with tqdm(total=len(items), desc=desc, unit="run", disable=None if desc else True, leave=False) as bar:
            while done < len(items):
                for slot in self._slots:
                    if slot.open and slot.job is None and todo:
                        slot.job = todo.popleft()
                        try:
                            slot.conn.send((slot.job, fn, items[slot.job]))
                        except OSError:  # it died (or failed its setup): its pipe says which below
                            pass
                busy = [s for s in self._slots if s.open]
                if not busy:
                    raise WorkerError("no worker process is left to run the jobs")
                ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy])
                for slot in busy:
                    if slot.conn in ready or (slot.process.sentinel in ready and slot.conn.poll()):
                        try:
                            reply = slot.conn.recv()
                        except (EOFError, OSError):
                            self._died(slot, items)
                        else:
                            done += self._receive(slot, reply, items, results, bar)
                    elif slot.process.sentinel in ready:
                        self._died(slot, items)
        return results

    def _receive(self, slot: _Slot, reply: tuple, items: list, results: list, bar: Any) -> int:
        kind = reply[0]
        if kind == "ok":
            results[reply[1]] = reply[2]
            slot.job = None
            bar.update(1)
            return 1
        exc = reply[2]
        if kind == "error" and isinstance(exc, WorkerError):
            raise WorkerError(f"{job_label(items[reply[1]])}: the job failed: {exc}")
        if kind == "error" and not isinstance(exc, LrschedError) and reply[3]:
            raise exc from RemoteTraceback(f"\n\"\"\"\n{reply[3]}\"\"\"")
        raise exc  # a setup error (bad device, data) or the job's own error, as the serial path raises it

    def _died(self, slot: _Slot, items: list) -> None:
        slot.open = False
        slot.process.join(5)
        pid, reason = slot.process.pid, _exit_reason(slot.process.exitcode)
        what = f"worker for {job_label(items[slot.job])}" if slot.job is not None else "a worker (between jobs)"
        hint = (" (killed outright: out of memory? lower train.workers)" if reason == "SIGKILL" else "")
        self._dead[pid] = f"{what} (process {pid}) died ({reason}){hint}"
        err = WorkerDied(f"{what} died ({reason}){hint}; stopped the other workers, "
                         "its run is marked FAILED; previous outputs left intact")
        err.pid = pid
        raise err


def run_all(fn: Callable[[Any, T], R], items: Iterable[T], workers: int,
            setup: Callable[..., Any], setup_args: tuple = (), desc: str = "",
            on_death: Callable[[int, str, str], Any] | None = None) -> list[R]:
    """One batch of jobs on ``worker_count(workers, len(items))`` fresh workers."""
    items = list(items)
    with Workers(worker_count(workers, len(items)), setup, setup_args, on_death) as pool:
        return pool.map(fn, items, desc)
