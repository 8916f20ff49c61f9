"""Portable numbers: the pins are in force where training runs, and per-seed results repeat exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import env, project_copy, stage, with_data

from lrsched.core.pinning import PINS

pytestmark = pytest.mark.slow


def per_seed(proj: Path, name: str) -> dict:
    metrics = json.loads((proj / "metrics" / f"{name}.json").read_text())
    return {s: {k: v for k, v in r.items() if k != "seconds"} for s, r in metrics["per_seed"].items()}


def test_pinned_seeds_are_bit_identical_across_runs_and_worker_counts(tmp_path: Path, toy_files) -> None:
    proj = project_copy(tmp_path / "proj", toy_files, tracking={"enabled": False},
                        train={"seeds": [0, 1, 2], "epochs": 3, "batch_size": 32})
    e = env(tmp_path)
    for key in PINS:  # a user's own settings must not leak in: the stage pins them itself
        e[key] = "1" if "THREADS" in key else "AVX512_CORE"
    with_data(proj)
    stage("train", "--schedule", "linear", "--workers", "3", "--out", ".", cwd=proj, environ=e)
    seen = json.loads((proj / "metrics" / "linear.json").read_text())["environment"]  # from the worker processes
    assert seen["pinned"] is True and seen["threads"] == 1
    assert seen["cpu_capability"] == "AVX2"  # ATen's kernels, even on an AVX-512 machine
    assert {k: seen[f"env.{k}"] for k in PINS} == PINS
    parallel = per_seed(proj, "linear")
    stage("train", "--schedule", "linear", "--workers", "1", "--out", ".", cwd=proj, environ=e)
    assert per_seed(proj, "linear") == parallel  # every float, to the last bit
    assert len({r["train_loss"] for r in parallel.values()}) == 3  # the seeds really differ


def test_opting_out_is_recorded(tmp_path: Path) -> None:
    code = "import lrsched.core.pinning as p, torch; print(p.environment()['pinned'], torch.get_num_threads())"
    e = {k: v for k, v in os.environ.items() if k not in PINS}
    e.update(LRSCHED_PIN="0", OMP_NUM_THREADS="2")  # the user's own thread count stands (pinned: 1)
    out = subprocess.run([sys.executable, "-c", "import lrsched; " + code], env=e, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "2"]


@pytest.fixture()
def restore_torch_flags():
    import torch

    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1], saved[2]
    if saved[3] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[3]


def test_cublas_workspace_is_pinned_before_torch_starts_unless_opted_out() -> None:
    code = "import os, lrsched, torch; print(os.environ.get('CUBLAS_WORKSPACE_CONFIG', 'unset'))"
    e = {k: v for k, v in os.environ.items() if k not in PINS and k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True).stdout
    assert out.split() == [":4096:8"]
    e["LRSCHED_PIN"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["unset"]


def test_choosing_cuda_switches_on_deterministic_kernels(monkeypatch, restore_torch_flags) -> None:
    """What a CUDA run trains with, checked on any machine (torch's flags are plain settings)."""
    import torch

    from lrsched.core.device import resolve_device

    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert resolve_device("cpu").type == "cpu"
    assert not torch.are_deterministic_algorithms_enabled()  # a CPU run is left as it was
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda").type == "cuda"
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_environment_records_the_versions_and_the_gpu_settings(monkeypatch, restore_torch_flags) -> None:
    from importlib.metadata import version

    import torch

    from lrsched.core import pinning

    env = pinning.environment()
    for name in ("numpy", "optuna", "scipy", "schedulefree", "mlflow"):
        assert env[name] == version(name)
    assert env["torch"] == torch.__version__
    if not torch.cuda.is_initialized():
        assert "gpu" not in env  # a CPU run records no GPU
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Test GPU 80GB")
        monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    pinning.configure_cuda()
    env = pinning.environment()
    assert env["gpu"] and env["deterministic_algorithms"] is True
    assert env["cudnn_deterministic"] is True and env["cudnn_benchmark"] is False
    assert env["env.CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert env["cuda"] == (torch.version.cuda or "") and env["cudnn"]
