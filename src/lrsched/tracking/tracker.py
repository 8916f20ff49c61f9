"""The tracker: creates a stage's runs in one experiment, each ending with the status that matches what happened."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any, Iterator

import mlflow
from mlflow.entities import Param, RunStatus

from lrsched.core.errors import Terminated
from lrsched.core.urls import mask_password
from lrsched.tracking import orphans
from lrsched.tracking.client import UninterruptedClient
from lrsched.tracking.logger import MlflowRunLogger, param_value
from lrsched.tracking.store import check_tracking_uri, experiment_id

REGISTERED_MODEL = "lrsched-lenet"  # one registered model; an alias per schedule points at its tuned model


class MlflowTracker:
    """Runs in one experiment of one store. ``MlflowTracker.open`` checks the store and connects;
    the constructor itself does no I/O.

    Picklable: a worker process gets its own client to the same store.
    """

    def __init__(self, uri: str, experiment: str, experiment_id: str, base_tags: dict[str, str] | None = None):
        self.uri, self.experiment, self.experiment_id = uri, experiment, experiment_id
        self.client = UninterruptedClient(uri)
        mlflow.set_tracking_uri(uri)
        self.base_tags = {k: mask_password(str(v)) for k, v in (base_tags or {}).items()}
        if os.environ.get("DVC_EXP_NAME"):  # `dvc exp run` (queued or not): go from `dvc exp show` to the runs
            self.base_tags["lrsched.dvc_exp"] = os.environ["DVC_EXP_NAME"]
        # Under `mlflow run`, MLflow made a run for us: log into it rather than beside it.
        self._adopt = os.environ.get("MLFLOW_RUN_ID") or None
        # Under `mlflow run . -e pipeline`, that run becomes the parent of every stage's runs.
        self._outer_parent = os.environ.get("LRSCHED_PARENT_RUN_ID") or None
        self.stage_pid = os.getpid()  # kept when pickled: a worker's runs name the stage that started it

    @classmethod
    def open(cls, experiment: str, base_tags: dict[str, str] | None = None) -> "MlflowTracker":
        """Check the store (one line and exit 2 when it cannot be used), find or create the
        experiment, and end the runs that dead processes left RUNNING."""
        uri = check_tracking_uri()
        tracker = cls(uri, experiment, experiment_id(uri, experiment), base_tags)
        tracker.end_orphaned_runs()
        return tracker

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
        return orphans.end_orphaned_runs(self.client, self.experiment_id)

    def end_runs_of(self, pid: int, status: str, reason: str) -> list[str]:
        """The ``on_death`` hook of the worker pool: end a dead worker's runs as ``status``."""
        return orphans.end_runs_of(self.client, self.experiment_id, pid, status, reason)

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
            parent: str | None = None, adopt: bool = True, start_time_ms: int | None = None
            ) -> Iterator[MlflowRunLogger]:
        """One tracked run. ``adopt=False``: never the run `mlflow run` made (a side run, such as
        the stage's system metrics, hangs under it instead). ``start_time_ms``: when what the run
        records began, if earlier than now (the system run, logged after its stage)."""
        all_tags = {**self.base_tags, **{k: mask_password(str(v)) for k, v in tags.items()},
                    "lrsched.host": socket.gethostname(), "lrsched.pid": str(os.getpid()),
                    "lrsched.stage_pid": str(getattr(self, "stage_pid", os.getpid()))}
        hang_under = parent or self._outer_parent or (None if adopt else self._adopt)
        if hang_under:
            all_tags["mlflow.parentRunId"] = hang_under
        run_id: str | None = None
        logger: MlflowRunLogger | None = None
        status = RunStatus.to_string(RunStatus.FINISHED)
        try:
            # created inside the try: a Ctrl-C that arrives while the run is being created ends it KILLED
            with self.client.uninterrupted():
                if adopt and self._adopt and not parent:
                    run_id, self._adopt = self._adopt, None
                    self.client.set_tag(run_id, "mlflow.runName", name)
                    for key, value in all_tags.items():
                        self.client.set_tag(run_id, key, value)
                    # later runs of this stage become children of the run `mlflow run` created
                    self._outer_parent = self._outer_parent or run_id
                else:
                    run_id = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags,
                                                    start_time=start_time_ms).info.run_id
                logger = MlflowRunLogger(self.client, run_id)
            items = [Param(k, param_value(v)) for k, v in params.items()]
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
