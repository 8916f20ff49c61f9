"""MLflow tracking: the only module of lrsched that imports mlflow.

One run per trained (schedule, seed); metrics with ``step = epoch``; run status
always ends FINISHED, FAILED (error recorded) or KILLED (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import mlflow
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from lrsched.callbacks import RunLogger
from lrsched.errors import LrschedError, Terminated
from lrsched.urls import mask_password

PARAM_MAX = 6000  # MLflow's limit on one param value


class TrackingError(LrschedError):
    """The tracking server/store cannot be used."""


def check_tracking_uri(uri: str | None = None) -> str:
    """Fail fast, before any training, when the tracking store is unreachable or invalid."""
    uri = uri or mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TrackingError(f"MLFLOW_TRACKING_URI={mask_password(uri)}: unreachable "
                                f"({mask_password(str(getattr(exc, 'reason', exc)))}); "
                                "start the server (`mlflow server`) or unset MLFLOW_TRACKING_URI for the local store")
        return uri
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # mlflow raises many types for a bad store URI
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"MLFLOW_TRACKING_URI={mask_password(uri)}: cannot open the tracking store "
                            f"({mask_password(first)[:200]}); "
                            "fix the URI or unset MLFLOW_TRACKING_URI for the local sqlite:///mlflow.db") from None
    return uri


def git_commit(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def study_id() -> str:
    """A tag shared by the runs of one ``dvc repro`` (or one command when run alone).

    ``LRSCHED_STUDY`` wins; otherwise the nearest ancestor ``dvc`` process (pid and
    start time) identifies the repro that launched this stage.
    """
    if os.environ.get("LRSCHED_STUDY"):
        return os.environ["LRSCHED_STUDY"]
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            argv = proc.cmdline()
            # `dvc repro`, or `python -m dvc repro` / `python .../bin/dvc repro`
            if any(os.path.basename(arg) == "dvc" for arg in argv[:3]):
                started = proc.create_time()
                digest = hashlib.md5(f"{socket.gethostname()}-{proc.pid}-{started}".encode()).hexdigest()[:6]
                return f"repro-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{digest}"
            proc = proc.parent()
    except Exception:  # a process vanished or is not ours to read: fall back to one id per command
        pass
    return "run-" + time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"


def _param_value(value: Any) -> str:
    return mask_password(str(value))[:PARAM_MAX]


class MlflowRunLogger(RunLogger):
    """Streams a run's per-epoch and per-step metrics to MLflow."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id
        self._pending: list[Metric] = []
        self.status: str | None = None  # set when the run must not end FINISHED

    def on_step(self, step: int, t: float, lr: float) -> None:
        self._pending.append(Metric("lr_step", lr, int(time.time() * 1000), step))

    def on_epoch_end(self, record: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        step = int(record["epoch"])
        for key, value in record.items():
            if key == "epoch":
                continue
            name = "epoch_seconds" if key == "seconds" else key
            self._pending.append(Metric(name, float(value), now, step))
        self.flush()

    def flush(self) -> None:
        for start in range(0, len(self._pending), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=self._pending[start:start + 1000])
        self._pending = []

    def log_artifacts(self, folder: Path) -> None:
        self.flush()
        self.client.log_artifacts(self.run_id, str(folder))

    def mark_pruned(self, message: str) -> None:
        # MLflow has no "pruned" status: KILLED (stopped early, not an error) plus a tag
        self.flush()
        self.client.set_tag(self.run_id, "lrsched.trial_state", "PRUNED")
        self.client.set_tag(self.run_id, "lrsched.pruned", message[:5000])
        self.status = RunStatus.to_string(RunStatus.KILLED)

    def mark_diverged(self, message: str) -> None:
        self.flush()
        self.client.set_tag(self.run_id, "lrsched.diverged", "true")
        self.client.set_tag(self.run_id, "lrsched.error", message[:5000])
        self.status = RunStatus.to_string(RunStatus.FAILED)

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, mask_password(str(value)))

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        self.flush()


class MlflowTracker:
    """Creates runs in one experiment; each run's final status always matches what happened.

    Picklable: a worker process gets its own client to the same store.
    """

    def __init__(self, experiment: str, base_tags: dict[str, str] | None = None):
        self.experiment = experiment
        self.uri = check_tracking_uri()
        self.base_tags = {k: mask_password(str(v)) for k, v in (base_tags or {}).items()}
        # Under `mlflow run`, MLflow made a run for us: log into it rather than beside it.
        self._adopt = os.environ.get("MLFLOW_RUN_ID") or None
        # Under `mlflow run . -e pipeline`, that run becomes the parent of every stage's runs.
        self._outer_parent = os.environ.get("LRSCHED_PARENT_RUN_ID") or None
        self._connect()

    def _connect(self) -> None:
        self.client = MlflowClient(self.uri)
        mlflow.set_tracking_uri(self.uri)
        exp = self.client.get_experiment_by_name(self.experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "client"}
        # Runs made in other processes hang under the run `mlflow run` made; only this one adopts it.
        state["_outer_parent"] = self._outer_parent or self._adopt
        state["_adopt"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client = MlflowClient(self.uri)
        mlflow.set_tracking_uri(self.uri)

    @contextlib.contextmanager
    def run(self, name: str, params: dict[str, Any], tags: dict[str, str],
            parent: str | None = None) -> Iterator[MlflowRunLogger]:
        all_tags = {**self.base_tags, **{k: mask_password(str(v)) for k, v in tags.items()},
                    "lrsched.host": socket.gethostname(), "lrsched.pid": str(os.getpid())}
        if parent or self._outer_parent:
            all_tags["mlflow.parentRunId"] = parent or self._outer_parent
        if self._adopt and not parent:
            run_id, self._adopt = self._adopt, None
            self.client.set_tag(run_id, "mlflow.runName", name)
            for key, value in all_tags.items():
                self.client.set_tag(run_id, key, value)
            # later runs of this stage become children of the run `mlflow run` created
            self._outer_parent = self._outer_parent or run_id
        else:
            run_id = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id
        logger = MlflowRunLogger(self.client, run_id)
        status = RunStatus.to_string(RunStatus.FINISHED)
        try:
            items = [Param(k, _param_value(v)) for k, v in params.items()]
            for start in range(0, len(items), 100):
                self.client.log_batch(run_id, params=items[start:start + 100])
            yield logger
            status = logger.status or status
        except (KeyboardInterrupt, Terminated):
            status = RunStatus.to_string(RunStatus.KILLED)
            raise
        except BaseException as exc:
            status = RunStatus.to_string(RunStatus.FAILED)
            with contextlib.suppress(Exception):
                self.client.set_tag(run_id, "lrsched.error", mask_password(f"{type(exc).__name__}: {exc}")[:5000])
            raise
        finally:
            with contextlib.suppress(Exception):
                logger.flush()
            self.client.set_terminated(run_id, status)
