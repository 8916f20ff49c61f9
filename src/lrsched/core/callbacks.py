"""The interfaces training reports through: trainer callbacks and run trackers.

Tracking (MLflow) and tuning (Optuna) depend on these small interfaces, not on
each other or on the orchestration that trains schedules over seeds.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ContextManager, Iterator, Protocol


class Callback:
    """Hooks called by :func:`lrsched.trainer.fit`; override what you need."""

    def on_step(self, step: int, t: float, lr: float) -> None:
        """Before each optimizer step with ``interval: step`` (``t`` in epochs)."""

    def on_epoch_end(self, record: dict[str, float]) -> None:
        """After each epoch's evaluation; may raise to stop training (e.g. Optuna pruning)."""


class RunLogger(Callback):
    """What a tracker hands back for one run: the trainer's callbacks plus run-level records."""

    run_id: str | None = None

    def log_metrics(self, metrics: dict[str, float], step: int = 0, timestamp_ms: int | None = None) -> None:
        """Record run-level figures (e.g. a study's best value), stamped now or at ``timestamp_ms``."""

    def set_tags(self, tags: dict[str, str]) -> None:
        """Add tags to the run."""

    def mark_pruned(self, message: str) -> None:
        """Record that the run (an Optuna trial) was stopped early by the pruner."""

    def log_artifacts(self, folder: Path) -> None:
        """Upload every file in ``folder``."""

    def mark_diverged(self, message: str) -> None:
        """Record that the run diverged (it is not a result)."""

    def log_dataset(self, name: str, digest: str, source: str, context: str) -> None:
        """Record what the run trained or was evaluated on (``context``: training, validation, test)."""

    def log_model(self, model: Any, example: Any) -> str | None:
        """Log the trained model with its signature; returns its URI, or None when not tracked."""
        return None


class Tracker(Protocol):
    """Creates one tracked run per training; picklable, so worker processes can use it."""

    def run(self, name: str, params: dict[str, Any], tags: dict[str, str],
            parent: str | None = None) -> ContextManager[RunLogger]: ...

    def register_model(self, model_uri: str, alias: str) -> str | None:
        """Register a logged model under the project's registered model, as ``@alias``."""

    def end_runs_of(self, pid: int, status: str, reason: str) -> Any:
        """End, as ``status`` with ``reason``, the runs a dead worker process ``pid`` left RUNNING."""


class NullTracker:
    """Tracking switched off: nothing is imported or contacted."""

    @contextlib.contextmanager
    def run(self, name: str, params: dict[str, Any], tags: dict[str, str],
            parent: str | None = None) -> Iterator[RunLogger]:
        yield RunLogger()

    def register_model(self, model_uri: str, alias: str) -> str | None:
        return None

    def end_runs_of(self, pid: int, status: str, reason: str) -> list[str]:
        return []
