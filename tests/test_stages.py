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
    stage("train", "--schedule", "constant", "--epochs", "1", "--out", ".", cwd=with_data(proj), environ=env(tmp_path))
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


@pytest.mark.slow
def test_a_run_by_hand_with_other_params_never_writes_into_the_study(proj: Path, tmp_path: Path) -> None:
    with_data(proj)
    stage("train", "--schedule", "constant", "--epochs", "1", cwd=proj, environ=env(tmp_path))
    assert not [p for folder in ("metrics", "history", "models") for p in (proj / folder).glob("*")]
    (scratch,) = (proj / "runs").iterdir()
    assert scratch.name.startswith("train-constant-")
    assert json.loads((scratch / "metrics" / "constant.json").read_text())["seeds"] == [0]
    assert len(json.loads((scratch / "history" / "constant.json").read_text())) == 1  # --epochs 1
    assert (scratch / "models" / "constant.pt").is_file()
    stage("train", "--schedule", "constant", "--epochs", "1", "--out", "mine", "--metrics", "m.json", cwd=proj,
          environ=env(tmp_path))  # a named folder, and a named path wins over it
    assert (proj / "m.json").is_file() and (proj / "mine" / "history" / "constant.json").is_file()
    assert not (proj / "mine" / "metrics").exists() and not (proj / "metrics").exists()


@pytest.mark.parametrize(("argv", "study"), [
    ([], True),
    (["--set", ""], True),                                  # `mlflow run`'s empty default
    (["--set", "schedules.cosine.T=5"], False),
    (["--set", " ; "], True),
    (["--epochs", "1"], False),
    (["--seed", "0"], False),                               # even the study's own seed: a shortcut was given
    (["--workers", "2"], False),
    (["--params", "other.yaml"], False),
])
def test_only_the_study_params_write_into_the_study(argv: list[str], study: bool) -> None:
    from lrsched.cli import add_shortcuts, base_parser, output_path

    parser = base_parser("t")
    add_shortcuts(parser, "epochs", "seed", "workers")
    args = parser.parse_args(argv)
    first = output_path(args, "train-x", None, "metrics/x.json")
    if study:
        assert first == Path("metrics/x.json")
    else:
        assert first.parts[0] == "runs" and first.parts[1].startswith("train-x-") and first.parts[2:] == ("metrics", "x.json")
    assert output_path(args, "train-x", None, "history/x.json") == first.parent.parent / "history/x.json"  # one folder
    assert output_path(args, "train-x", "named.json", "metrics/x.json") == Path("named.json")
