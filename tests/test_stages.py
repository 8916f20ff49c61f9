"""Stage scripts on bad input: one-line error naming the problem, non-zero exit, no partial output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import env, project_copy, stage, stage_in_process, with_data


@pytest.fixture()
def proj(tmp_path: Path, toy_files) -> Path:
    return project_copy(tmp_path / "proj", toy_files, tracking={"enabled": False})


def error_line(proc) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_unknown_schedule_name(proj: Path) -> None:
    proc = stage_in_process("train", "--schedule", "cosinus", cwd=proj)
    assert proc.returncode == 2
    assert "--schedule 'cosinus': not in params.yaml schedules; valid: constant" in error_line(proc)
    assert not (proj / "metrics").exists()


@pytest.mark.slow
def test_malformed_params_leave_outputs_intact(proj: Path, tmp_path: Path) -> None:
    stage("train", "--schedule", "constant", "--epochs", "1", cwd=with_data(proj), environ=env(tmp_path))
    before = (proj / "metrics" / "constant.json").read_text()
    params = proj / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 2", "epochs: [2"))
    proc = stage_in_process("train", "--schedule", "constant", cwd=proj)
    assert proc.returncode == 2 and "malformed YAML at line" in error_line(proc)
    assert (proj / "metrics" / "constant.json").read_text() == before
    assert json.loads(before)["seeds"] == [0]


def test_bad_hyperparameter_from_the_command_line(proj: Path) -> None:
    proc = stage_in_process("train", "--schedule", "cosine", "--set", "schedules.cosine.warmup=10", cwd=proj)
    assert proc.returncode == 2
    assert "schedules.cosine.warmup: must be smaller than T (10)" in error_line(proc)


def test_download_with_no_working_source(proj: Path, tmp_path: Path) -> None:
    proc = stage_in_process("download", "--set", f"data.sources=[{tmp_path}/none]", cwd=proj)
    assert proc.returncode == 2
    line = error_line(proc)
    assert f"{tmp_path}/none" in line and "apt-get install dataset-fashion-mnist" in line
    assert not (proj / "data" / "FashionMNIST" / "raw").exists()


def test_train_before_download_says_what_to_run(proj: Path) -> None:
    proc = stage_in_process("train", "--schedule", "constant", cwd=proj)
    assert proc.returncode == 2 and "run `dvc repro download`" in error_line(proc)
