"""System metrics once per stage: CPU, memory and (with ``nvidia-ml-py``) GPU utilisation.

One sampler per stage, in the stage's own process, never in the training workers:
each worker would report the whole machine again. The sampler's thread only
*reads* (psutil, NVML) into memory; the samples are logged afterwards from the
main thread, through the stage's tracking logger (``log_system_metrics``), each
stamped with the wall-clock time it was taken (MLflow's System metrics tab plots
against that time; stamped at logging, a 38-minute stage looked 2 seconds long), i.e.
through the interrupt-safe MLflow client. A thread must not write through that
client itself: its interrupt deferral installs signal handlers, which only the
main thread may do, and a second writer is what reopened SQLite's lock defect.

``mlflow.start_run(log_system_metrics=True)`` does not fit: runs are created with
``MlflowClient``, and MLflow's monitor would log from its own thread, per run.

Every stage wraps its work in ``lrsched.cli.system_metrics``, which logs the samples
as one MLflow run, ``<stage>-system`` (tag ``lrsched.kind: system``). GPU figures come
from NVML (``nvidia-ml-py``, a dependency); without a GPU driver there are none.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

INTERVAL_S = 10.0  # MLflow's own system-metrics default


class MetricsLogger(Protocol):
    def log_metrics(self, metrics: dict[str, float], step: int = 0, timestamp_ms: int | None = None) -> None: ...


def _gpu_handles() -> list[Any]:
    """NVML handles of every GPU; none without nvidia-ml-py or a driver (then no GPU metrics)."""
    try:
        import pynvml  # the nvidia-ml-py package
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - NVML's errors (no driver, no device) all mean: no GPU figures
        return []


def sample(gpus: list[Any] | None = None) -> dict[str, float]:
    """One reading of the machine, under MLflow's ``system/`` metric names."""
    import psutil

    mem = psutil.virtual_memory()
    out = {
        "system/cpu_utilization_percentage": psutil.cpu_percent(interval=None),  # since the previous call
        "system/system_memory_usage_megabytes": (mem.total - mem.available) / 2**20,
        "system/system_memory_usage_percentage": mem.percent,
    }
    if gpus:
        import pynvml

        for i, handle in enumerate(gpus):
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            out[f"system/gpu_{i}_utilization_percentage"] = float(util.gpu)
            out[f"system/gpu_{i}_memory_usage_megabytes"] = memory.used / 2**20
    return out


@dataclass(frozen=True)
class Sample:
    seconds: float  # since the stage began (monotonic clock): the metric's step
    timestamp_ms: int  # wall-clock time it was taken: the metric's timestamp
    values: dict[str, float]


def _take(t0: float, gpus: list[Any]) -> Sample:
    return Sample(time.monotonic() - t0, int(time.time() * 1000), sample(gpus))


@dataclass
class SystemSampler:
    """Samples the machine every ``interval_s`` seconds while the ``with`` block runs (and once at its end)."""

    interval_s: float = INTERVAL_S
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {self.interval_s}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gpus: list[Any] = []
        self._t0 = 0.0
        self.started_ms = 0  # wall-clock time the block began: the system run's start

    def __enter__(self) -> "SystemSampler":
        self._gpus = _gpu_handles()
        self.started_ms = int(time.time() * 1000)
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="lrsched-system-metrics", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import psutil

        # psutil (>= 7) keeps the previous CPU reading per thread, and a thread's first reading is
        # a meaningless 0.0: start the counter here, in the thread that reads it
        psutil.cpu_percent(interval=None)
        while not self._stop.wait(self.interval_s):
            self.samples.append(_take(self._t0, self._gpus))
        self.samples.append(_take(self._t0, self._gpus))  # the block's end: a stage shorter than one interval

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def log_system_metrics(logger: MetricsLogger, sampler: SystemSampler) -> int:
    """Log every sample from the calling (main) thread: step = whole seconds since the stage began,
    timestamp = when it was taken."""
    for s in sampler.samples:
        logger.log_metrics(s.values, step=int(s.seconds), timestamp_ms=s.timestamp_ms)
    return len(sampler.samples)
