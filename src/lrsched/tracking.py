"""MLflow tracking: the only module of lrsched that imports mlflow.

One run per trained (schedule, seed); metrics with ``step = epoch``; run status
always ends FINISHED, FAILED (error recorded) or KILLED (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
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
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lrsched.callbacks import RunLogger
from lrsched.errors import LrschedError, Terminated
from lrsched.io import file_lock, project_root
from lrsched.signals import signals_deferred
from lrsched.urls import mask_password

PARAM_MAX = 6000  # MLflow's limit on one param value


class TrackingError(LrschedError):
    """The tracking server/store cannot be used."""


EXPERIMENT_KIND = "custom_model_development"  # MLflow's "model training" experiments (not GenAI)
REGISTERED_MODEL = "lrsched-lenet"  # one registered model; an alias per schedule points at its tuned model


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the project's own ``mlflow.db`` (also from a queued experiment)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def artifact_location() -> str | None:
    """Where a new experiment keeps its artifacts: the project's ``mlruns/`` beside its own store
    (never a queued experiment's temp copy); a named store or server decides for itself (None)."""
    return None if os.environ.get("MLFLOW_TRACKING_URI") else (project_root() / "mlruns").as_uri()


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise a SQLite store's first use: MLflow's schema migration races between processes."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    with file_lock(uri[len("sqlite:///"):] + ".lock"):
        yield


DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy stores besides sqlite


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


def _connect_timeout(uri: str, seconds: int) -> dict[str, int]:
    """A bounded wait for the first connection, not the OS's minutes for a host that drops packets.

    Each driver names it its own way; drivers not listed here get their own default."""
    from sqlalchemy.engine import make_url

    driver = make_url(uri).get_driver_name()
    if driver in ("psycopg", "psycopg2", "mysqldb", "pymysql"):
        return {"connect_timeout": seconds}
    return {"timeout": seconds} if driver == "pg8000" else {}


def check_tracking_uri(uri: str | None = None) -> str:
    """Fail fast, before any training, when the tracking store is unreachable or invalid."""
    uri = uri or tracking_uri()
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
        if uri.split("://")[0].split("+")[0] in DATABASE_SCHEMES:
            # one plain connection first: MLflow's own engine retries an unreachable database for ~100 s
            import sqlalchemy

            engine = sqlalchemy.create_engine(uri, connect_args=_connect_timeout(uri, seconds=5))
            try:
                engine.connect().close()
            finally:
                engine.dispose()
        with store_lock(uri):
            UninterruptedClient(uri).search_experiments(max_results=1)  # may create or migrate the store
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


def _alive(pid: int, since_ms: int) -> bool:
    """A live process with that pid that started before ``since_ms`` (not a zombie, not a reused pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        # a zombie is dead: a stage's workers, orphaned by its SIGKILL, may wait unreaped under init
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() * 1000 <= since_ms + 1000
    except psutil.Error:
        return False


def _is_unique_violation(exc: BaseException) -> bool:
    """A database's unique-key error, which MLflow wraps (a local store) or reports in its message (a server)."""
    from sqlalchemy.exc import IntegrityError

    if any(text in str(exc) for text in ("UNIQUE constraint", "duplicate key", "Duplicate entry")):
        return True
    while exc is not None:
        if isinstance(exc, IntegrityError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _param_value(value: Any) -> str:
    return mask_password(str(value))[:PARAM_MAX]


class MlflowRunLogger(RunLogger):
    """Streams a run's per-epoch and per-step metrics to MLflow."""

    def __init__(self, client: UninterruptedClient, run_id: str):
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
        while self._pending:
            batch = self._pending[:1000]  # MLflow's batch limit
            with self.client.uninterrupted():  # sent and forgotten together: an interrupt never re-sends
                self.client.log_batch(self.run_id, metrics=batch)
                del self._pending[:len(batch)]

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

    def log_dataset(self, name: str, digest: str, source: str, context: str) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=name, digest=digest, source_type="local", source=json.dumps({"uri": source}))
        inputs = [DatasetInput(dataset, [InputTag("mlflow.data.context", context)])]
        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, inputs)
                return
            except MlflowException as exc:
                # Seeds in parallel processes create the same dataset row at once (MLflow checks, then
                # inserts): the loser hits the unique constraint; on retry the row exists and is reused.
                if attempt == 2 or not _is_unique_violation(exc):
                    raise
                time.sleep(0.2 * (attempt + 1))

    def log_model(self, model: Any, example: Any) -> str | None:
        """The model as an MLflow logged model (signature, input example), shown on the run's page."""
        import mlflow.pytorch
        import torch
        from mlflow.models import infer_signature

        self.flush()
        model = copy.deepcopy(model).to("cpu").eval()
        with torch.no_grad():
            signature = infer_signature(example.numpy(), model(example).numpy())
        with self.client.uninterrupted(), mlflow.start_run(run_id=self.run_id):  # log_model needs an active run
            info = mlflow.pytorch.log_model(
                model, name="model", signature=signature, input_example=example.numpy(),
                # pinned here: inferring requirements would import-scan the environment (seconds per run)
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
        return info.model_uri

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
        if os.environ.get("DVC_EXP_NAME"):  # `dvc exp run` (queued or not): go from `dvc exp show` to the runs
            self.base_tags["lrsched.dvc_exp"] = os.environ["DVC_EXP_NAME"]
        # Under `mlflow run`, MLflow made a run for us: log into it rather than beside it.
        self._adopt = os.environ.get("MLFLOW_RUN_ID") or None
        # Under `mlflow run . -e pipeline`, that run becomes the parent of every stage's runs.
        self._outer_parent = os.environ.get("LRSCHED_PARENT_RUN_ID") or None
        self.stage_pid = os.getpid()  # kept when pickled: a worker's runs name the stage that started it
        self._connect()
        self.end_orphaned_runs()

    def _connect(self) -> None:
        self.client = UninterruptedClient(self.uri)
        mlflow.set_tracking_uri(self.uri)
        with store_lock(self.uri):
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp:
                self.experiment_id = exp.experiment_id
            else:
                self.experiment_id = self.client.create_experiment(self.experiment,
                                                                   artifact_location=artifact_location())
            if not exp or exp.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND:
                self.client.set_experiment_tag(self.experiment_id, "mlflow.experimentKind", EXPERIMENT_KIND)

    def register_model(self, model_uri: str, alias: str) -> str | None:
        """A new version of ``REGISTERED_MODEL`` from ``model_uri``; ``@alias`` now points at it."""
        with self.client.uninterrupted():
            version = mlflow.register_model(model_uri, REGISTERED_MODEL, await_registration_for=60).version
        self.client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
        return f"models:/{REGISTERED_MODEL}@{alias}"

    def ui_url(self, base: str = "http://127.0.0.1:5000") -> str:
        """The experiment's runs in `mlflow ui`, opened on the model-training view (not GenAI's)."""
        return f"{base}/#/experiments/{self.experiment_id}?workflowType=machine_learning"

    def end_orphaned_runs(self) -> list[str]:
        """Mark KILLED this host's RUNNING runs whose process is gone (SIGKILL, OOM killer, CI timeout).

        Such a process could not end its run itself. A worker's run is also orphaned when the
        stage that started the worker is gone. Runs of live processes, and of other hosts
        (which this one cannot see), are left alone.
        """
        host, ended = socket.gethostname(), []
        running = self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
        for run in running:
            tags = run.data.tags
            if tags.get("lrsched.host") != host or not tags.get("lrsched.pid", "").isdigit():
                continue
            pids = [int(tags["lrsched.pid"])]
            if tags.get("lrsched.stage_pid", "").isdigit():
                pids.append(int(tags["lrsched.stage_pid"]))
            gone = next((pid for pid in pids if not _alive(pid, run.info.start_time)), None)
            if gone is not None:
                self._end_run(run.info.run_id, RunStatus.to_string(RunStatus.KILLED),
                              f"process {gone} on {host} ended without closing the run "
                              "(killed outright: SIGKILL, out of memory or a timeout)")
                ended.append(run.info.run_id)
        return ended

    def end_runs_of(self, pid: int, status: str, reason: str) -> list[str]:
        """End the RUNNING runs that process ``pid`` of this host created (a worker that died) as ``status``."""
        host = socket.gethostname()
        query = (f"attributes.status = 'RUNNING' and tags.`lrsched.pid` = '{int(pid)}' "
                 f"and tags.`lrsched.host` = '{host}'")
        runs = self.client.search_runs([self.experiment_id], query, max_results=1000)
        for run in runs:
            self._end_run(run.info.run_id, status, reason)
        return [run.info.run_id for run in runs]

    def _end_run(self, run_id: str, status: str, reason: str) -> None:
        with self.client.uninterrupted():
            self.client.set_tag(run_id, "lrsched.killed_reason", reason[:5000])
            if status == RunStatus.to_string(RunStatus.FAILED):
                self.client.set_tag(run_id, "lrsched.error", reason[:5000])
            self.client.set_terminated(run_id, status)

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "client"}
        # Runs made in other processes hang under the run `mlflow run` made; only this one adopts it.
        state["_outer_parent"] = self._outer_parent or self._adopt
        state["_adopt"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client = UninterruptedClient(self.uri)
        mlflow.set_tracking_uri(self.uri)

    @contextlib.contextmanager
    def run(self, name: str, params: dict[str, Any], tags: dict[str, str],
            parent: str | None = None) -> Iterator[MlflowRunLogger]:
        all_tags = {**self.base_tags, **{k: mask_password(str(v)) for k, v in tags.items()},
                    "lrsched.host": socket.gethostname(), "lrsched.pid": str(os.getpid()),
                    "lrsched.stage_pid": str(getattr(self, "stage_pid", os.getpid()))}
        if parent or self._outer_parent:
            all_tags["mlflow.parentRunId"] = parent or self._outer_parent
        run_id: str | None = None
        logger: MlflowRunLogger | None = None
        status = RunStatus.to_string(RunStatus.FINISHED)
        try:
            # created inside the try: a Ctrl-C that arrives while the run is being created ends it KILLED
            with self.client.uninterrupted():
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
            if run_id is not None:
                with contextlib.suppress(Exception):
                    self.client.set_tag(run_id, "lrsched.error",
                                        mask_password(f"{type(exc).__name__}: {exc}")[:5000])
            raise
        finally:  # one block: a second Ctrl-C (or the pool's SIGTERM after it) cannot skip the status
            if run_id is not None:
                with self.client.uninterrupted():
                    with contextlib.suppress(Exception):
                        if logger is not None:
                            logger.flush()
                    self.client.set_terminated(run_id, status)
