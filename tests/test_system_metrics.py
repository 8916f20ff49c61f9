"""System metrics: sampled in a thread, logged afterwards from the caller's thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types

import pytest

from lrsched.tracking import system_metrics as sm


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, float], int, int | None, str]] = []

    def log_metrics(self, metrics: dict[str, float], step: int = 0, timestamp_ms: int | None = None) -> None:
        self.calls.append((metrics, step, timestamp_ms, threading.current_thread().name))


def test_sampler_reads_the_machine_meanwhile_and_logs_from_the_calling_thread(monkeypatch) -> None:
    monkeypatch.setattr(sm, "_gpu_handles", lambda: [])
    began_ms = time.time() * 1000
    # one core kept busy by another process (a spinning thread here would hold the GIL the sampler needs)
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 0.5\nwhile time.time() < end: pass"])
    try:
        with sm.SystemSampler(interval_s=0.05) as sampler:
            spinner.wait(timeout=30)
            assert len(sampler.samples) >= 3  # taken while the block runs, not only at its end
    finally:
        spinner.kill()
        spinner.wait()
    time.sleep(0.3)  # logged later than taken: the timestamps must still be the sampling times
    times = [s.seconds for s in sampler.samples]
    assert times == sorted(times) and times[-1] >= 0.4
    values = sampler.samples[-1].values
    assert set(values) == {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
                           "system/system_memory_usage_percentage"}  # no GPU: no GPU keys
    assert 0 <= values["system/cpu_utilization_percentage"] <= 100
    # every full interval saw the busy core, the first too (psutil's first reading in a thread is 0.0)
    busy = [s.values["system/cpu_utilization_percentage"] for s in sampler.samples[:-1]]
    assert min(busy) > 100 / (os.cpu_count() or 1) / 3, busy
    assert values["system/system_memory_usage_megabytes"] > 0
    logger = Recorder()
    assert sm.log_system_metrics(logger, sampler) == len(sampler.samples)
    assert {name for *_, name in logger.calls} == {threading.current_thread().name}
    assert [step for _, step, _, _ in logger.calls] == [int(t) for t in times]
    stamps = [stamp for _, _, stamp, _ in logger.calls]
    assert stamps == [s.timestamp_ms for s in sampler.samples]
    # each stamp is its sample's wall-clock time, spread over the block as the samples were, not the logging moment
    assert all(abs((stamp - stamps[0]) - 1000 * (t - times[0])) < 100 for stamp, t in zip(stamps, times))
    assert began_ms <= stamps[0] and stamps[-1] - stamps[0] >= 300 and stamps[-1] <= time.time() * 1000 - 300


def test_gpu_figures_come_from_nvml(monkeypatch) -> None:
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 2, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=40 + h),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=(h + 1) * 2**30))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    values = sm.sample(sm._gpu_handles())
    assert values["system/gpu_0_utilization_percentage"] == 40.0
    assert values["system/gpu_1_utilization_percentage"] == 41.0
    assert values["system/gpu_1_memory_usage_megabytes"] == 2048.0


def test_no_nvml_means_no_gpu_figures(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails, as without nvidia-ml-py
    assert sm._gpu_handles() == []


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        sm.SystemSampler(interval_s=0)


def test_installed_nvml_without_a_gpu_gives_no_gpu_figures() -> None:
    pytest.importorskip("pynvml")  # nvidia-ml-py is a dependency; NVML itself comes with a GPU driver
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: see test_gpu_figures_on_a_real_gpu")
    gpus = sm._gpu_handles()  # NVML's "library not found" is caught, not raised
    assert gpus == []
    assert not any(key.startswith("system/gpu_") for key in sm.sample(gpus))


def test_gpu_figures_on_a_real_gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    values = sm.sample(sm._gpu_handles())
    assert 0 <= values["system/gpu_0_utilization_percentage"] <= 100
    assert values["system/gpu_0_memory_usage_megabytes"] > 0
