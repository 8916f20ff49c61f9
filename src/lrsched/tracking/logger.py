"""One MLflow run's logger: metrics per step and epoch, tags, datasets, the model and artifacts."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunStatus
from mlflow.exceptions import MlflowException, RestException

from lrsched.core.callbacks import RunLogger
from lrsched.core.dberrors import is_duplicate
from lrsched.core.urls import mask_password
from lrsched.tracking.client import UninterruptedClient

PARAM_MAX = 6000  # MLflow's limit on one param value
# A tracking server reports its database's unique-key error only as text in the response
SERVER_DUPLICATE_TEXTS = ("UNIQUE constraint", "duplicate key", "Duplicate entry")


def already_exists(exc: BaseException) -> bool:
    """Another process created the same row first: by type for a local store, by text from a server."""
    if isinstance(exc, RestException):
        return any(text in str(exc) for text in SERVER_DUPLICATE_TEXTS)
    return is_duplicate(exc)


def param_value(value: Any) -> str:
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
                if attempt == 2 or not already_exists(exc):
                    raise
                time.sleep(0.2 * (attempt + 1))

    def log_model(self, model: Any, example: Any) -> str | None:
        """The model as an MLflow logged model (signature, input example), shown on the run's page."""
        import mlflow.pytorch
        import torch
        from mlflow.models import infer_signature

        self.flush()
        # on the CPU, in the default layout: torch's archive writer warns about channels_last
        # weights ("No complete tensor found"), and a user's load gets a plain model
        model = copy.deepcopy(model).to("cpu").to(memory_format=torch.contiguous_format).eval()
        with torch.no_grad():
            signature = infer_signature(example.numpy(), model(example).numpy())
        with self.client.uninterrupted(), mlflow.start_run(run_id=self.run_id):  # log_model needs an active run
            info = mlflow.pytorch.log_model(
                model, name="model", signature=signature, input_example=example.numpy(),
                # pinned here: inferring requirements would import-scan the environment (seconds per run)
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
        return info.model_uri

    def log_metrics(self, metrics: dict[str, float], step: int = 0, timestamp_ms: int | None = None) -> None:
        stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        self._pending.extend(Metric(k, float(v), stamp, step) for k, v in metrics.items())
        self.flush()
