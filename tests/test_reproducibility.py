"""Portable numbers: the pins are in force where training runs, and per-seed results repeat exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import env, project_copy, stage, with_data
from lrsched.pinning import PINS

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
    code = "import lrsched.pinning as p, torch; print(p.environment()['pinned'], torch.get_num_threads())"
    e = {k: v for k, v in os.environ.items() if k not in PINS}
    e.update(LRSCHED_PIN="0", OMP_NUM_THREADS="2")  # the user's own thread count stands (pinned: 1)
    out = subprocess.run([sys.executable, "-c", "import lrsched; " + code], env=e, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "2"]
