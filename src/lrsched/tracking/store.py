"""Where the runs go, and a check before any training that the store can be used."""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from typing import Iterator

from lrsched.core.errors import LrschedError
from lrsched.core.io import file_lock, project_root
from lrsched.core.urls import mask_password
from lrsched.tracking.client import UninterruptedClient


class TrackingError(LrschedError):
    """The tracking server/store cannot be used."""


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


EXPERIMENT_KIND = "custom_model_development"  # MLflow's "model training" experiments (not GenAI)


def experiment_id(uri: str, name: str) -> str:
    """The id of experiment ``name`` in the store at ``uri``, created (as a model-training experiment) if new."""
    client = UninterruptedClient(uri)
    with store_lock(uri):
        exp = client.get_experiment_by_name(name)
        found = exp.experiment_id if exp else client.create_experiment(name, artifact_location=artifact_location())
        if not exp or exp.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND:
            client.set_experiment_tag(found, "mlflow.experimentKind", EXPERIMENT_KIND)
    return found
