"""Optuna tuning: search-space errors, a small study end to end, pruning, resume, PostgreSQL workers."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT
from helpers import assert_config_error, env, project_copy, stage
from lrsched.config import load_config


@pytest.mark.parametrize(("override", "message"), [
    ("tune.space.cosine.gamma={type: float, low: 0.1, high: 0.9}", "tune.space.cosine.gamma: 'cosine' has no hyperparameter 'gamma'"),
    ("tune.space.cosine.base_lr={type: float, low: 0.5, high: 0.1}", r"tune.space.cosine.base_lr: low \(0.5\) must be smaller than high"),
    ("tune.space.cosine.base_lr={type: float, low: 0.0, high: 0.1, log: true}", "tune.space.cosine.base_lr.low: must be > 0 when log"),
    ("tune.space.cosine.base_lr={type: normal, low: 0.1, high: 0.2}", "tune.space.cosine.base_lr.type: must be float, int or categorical"),
    ("tune.space.cosine.base_lr={type: float, low: 0.1, hi: 0.2}", "tune.space.cosine.base_lr.hi: unknown key"),
    ("tune.space.cosine.base_lr={type: categorical, choices: []}", "tune.space.cosine.base_lr.choices: must be a non-empty list"),
    ("tune.space.nope={lr: {type: float, low: 0.1, high: 0.2}}", "tune.space.nope: no schedule named 'nope'"),
])
def test_search_space_errors_name_the_key(override: str, message: str) -> None:
    assert_config_error(override, message)


def test_changed_space_starts_a_new_study() -> None:
    from lrsched.tuning import study_name

    cfg = load_config(ROOT / "params.yaml")
    wider = load_config(ROOT / "params.yaml", ["tune.space.cosine.base_lr.high=2.0"])
    assert study_name(cfg, "cosine") != study_name(wider, "cosine")
    assert study_name(cfg, "cosine").startswith("cosine-")
    assert study_name(cfg, "linear") == study_name(wider, "linear")


# --- in-process studies on toy data ------------------------------------------------------------

@pytest.fixture()
def toy_cfg(tmp_path: Path, toy_root: Path):
    from lrsched.study import load_datasets

    cfg = load_config(ROOT / "params.yaml", [
        f"data.root={toy_root}", "train.epochs=4", "train.batch_size=64", "tune.epochs=3", "tune.val_size=100",
        f"tune.storage={tmp_path}/optuna.db", "tracking.enabled=false",
    ])
    return cfg, load_datasets(cfg)


def test_pruning_stops_poor_trials(toy_cfg) -> None:
    from optuna.trial import TrialState

    from lrsched.study import NullTracker
    from lrsched.tuning import run_worker

    cfg, data = toy_cfg
    cfg = replace(cfg, tune=replace(cfg.tune, n_trials=10, pruner="median",
                                    space={"constant": {"lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True}}}))
    study = run_worker(cfg, "constant", data, NullTracker(), nested=False)
    states = [t.state for t in study.trials]
    assert len(states) == 10 and TrialState.PRUNED in states and TrialState.COMPLETE in states
    for t in study.trials:
        if t.state == TrialState.PRUNED:  # stopped early: fewer reported epochs than tune.epochs
            assert len(t.intermediate_values) < 3
            assert t.params["lr"] < study.best_params["lr"]


def test_resume_adds_trials_to_the_same_study(toy_cfg) -> None:
    from lrsched.study import NullTracker
    from lrsched.tuning import run_worker

    cfg, data = toy_cfg
    first = run_worker(cfg, "cosine", data, NullTracker(), nested=False, n_trials=2)
    first_params = [t.params for t in first.trials]
    assert len(first_params) == 2
    again = run_worker(cfg, "cosine", data, NullTracker(), nested=False, n_trials=2)
    assert len(again.trials) == 2  # already done: nothing added
    resumed = run_worker(cfg, "cosine", data, NullTracker(), nested=False, n_trials=4)
    assert resumed.study_name == first.study_name
    assert [t.number for t in resumed.trials] == [0, 1, 2, 3]
    assert [t.params for t in resumed.trials[:2]] == first_params


def test_diverging_trial_fails_with_its_reason_and_the_study_goes_on(toy_cfg) -> None:
    from optuna.trial import TrialState

    from lrsched.study import NullTracker
    from lrsched.tuning import run_worker

    cfg, data = toy_cfg
    cfg = replace(cfg, tune=replace(cfg.tune, n_trials=3, pruner="none",
                                    space={"constant": {"lr": {"type": "categorical", "choices": [1e9, 0.1]}}}))
    study = run_worker(cfg, "constant", data, NullTracker(), nested=False)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(study.trials) == 3 and failed and all(t.params["lr"] == 1e9 for t in failed)
    assert all("non-finite training loss" in t.user_attrs["fail_reason"] for t in failed)


# --- the stage end to end -------------------------------------------------------------------------

@pytest.mark.slow
def test_three_trial_study_writes_outputs_and_mlflow_runs(tmp_path: Path, toy_files) -> None:
    proj = project_copy(tmp_path / "proj", toy_files, tune={"n_trials": 3, "epochs": 2, "val_size": 100})
    e = env(tmp_path)
    stage("download", cwd=proj, environ=e)
    stage("tune", "--schedule", "cosine", cwd=proj, environ=e)
    tuned = json.loads((proj / "tuned" / "cosine.json").read_text())
    assert tuned["trials"] == 3 and tuned["complete"] + tuned["pruned"] + tuned["failed"] == 3
    assert set(tuned["best_params"]) == {"base_lr", "final_lr"} and 0 <= tuned["best_value"] <= 1
    metrics = json.loads((proj / "metrics" / "tuned" / "cosine.json").read_text())
    assert metrics["params"] == tuned["best_params"] and 0 <= metrics["test_acc"] <= 1
    assert {p.name for p in (proj / "plots" / "tune" / "cosine").iterdir()} >= {"history.png", "slice.png"}

    from mlflow.tracking import MlflowClient

    c = MlflowClient(e["MLFLOW_TRACKING_URI"])
    runs = c.search_runs([c.get_experiment_by_name("lrsched").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    parent = by_name["cosine-study"]
    trials = [r for r in runs if r.data.tags.get("lrsched.role") == "trial"]
    assert len(trials) == 3 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    assert all(len(c.get_metric_history(r.info.run_id, "val_acc")) >= 1 for r in trials)
    assert by_name["cosine-tuned"].data.tags["lrsched.tuned"] == "true"
    assert by_name["cosine-tuned"].data.params["schedule.base_lr"] == str(tuned["best_params"]["base_lr"])
    assert {a.path for a in c.list_artifacts(parent.info.run_id)} >= {"history.png", "slice.png"}

    # a second run of the same command resumes: nothing more to do, same study
    stage("tune", "--schedule", "cosine", cwd=proj, environ=e)
    assert json.loads((proj / "tuned" / "cosine.json").read_text())["trials"] == 3


def test_unreachable_storage_is_a_clear_error(tmp_path: Path, toy_files) -> None:
    proj = project_copy(tmp_path / "proj", toy_files, tracking={"enabled": False})
    proc = stage("tune", "--schedule", "cosine", "--storage", "postgresql://u:p@127.0.0.1:9/none", cwd=proj,
                 environ=env(tmp_path), check=False)
    assert proc.returncode == 2 and "tune.storage=postgresql://u:p@127.0.0.1:9/none: cannot open" in proc.stderr


# --- PostgreSQL, several workers ----------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture()
def postgres():
    """A throw-away PostgreSQL cluster on 127.0.0.1 in a temp dir."""
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="lrsched-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    from test_tracking import free_port

    port = free_port()
    subprocess.run([*as_user, str(pg / "initdb"), "-D", str(base / "db"), "-U", "lrsched", "-A", "trust"],
                   check=True, capture_output=True)
    server = subprocess.Popen([*as_user, str(pg / "postgres"), "-D", str(base / "db"), "-h", "127.0.0.1",
                               "-p", str(port), "-k", str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql://lrsched@127.0.0.1:{port}/postgres"
    import sqlalchemy

    deadline = time.time() + 60
    while True:
        try:
            sqlalchemy.create_engine(url).connect().close()
            break
        except sqlalchemy.exc.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(base, ignore_errors=True)


def _load(url: str, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=url)


@pytest.mark.slow
def test_two_workers_share_one_postgres_study_and_survive_a_killed_worker(tmp_path: Path, toy_files,
                                                                          postgres: str) -> None:
    from optuna.trial import TrialState

    from lrsched.tuning import study_name

    proj = project_copy(tmp_path / "proj", toy_files, tracking={"enabled": False},
                        tune={"n_trials": 8, "epochs": 12, "val_size": 100, "pruner": "none", "storage": postgres})
    e = env(tmp_path)
    stage("download", cwd=proj, environ=e)
    name = study_name(load_config(proj / "params.yaml"), "linear")
    cmd = [sys.executable, "stages/tune.py", "--schedule", "linear", "--worker"]
    started = time.time()
    workers = [subprocess.Popen(cmd, cwd=proj, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    # kill one worker in the middle of a trial, once both have trials running
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            trials = _load(postgres, name).trials
        except KeyError:
            trials = []
        if sum(t.state == TrialState.RUNNING for t in trials) == 2 and \
                sum(t.state == TrialState.COMPLETE for t in trials) >= 2:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("workers never ran two trials at once")
    workers[0].send_signal(signal.SIGKILL)
    _, err = workers[1].communicate(timeout=400)
    assert workers[1].returncode == 0, err[-2000:]
    elapsed = time.time() - started

    trials = _load(postgres, name).trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))  # no duplicate trial numbers
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in trials)
    stale = [t for t in trials if t.state == TrialState.FAIL and "fail_reason" not in t.user_attrs]
    surplus = [t for t in trials if t.user_attrs.get("fail_reason", "").startswith("surplus")]
    assert len(stale) == 1  # the killed worker's trial, failed through heartbeats, not left RUNNING
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == stale[0].number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE and retried[0].params == stale[0].params
    assert len(trials) - len(stale) - len(surplus) == 8  # the requested total ran
    print(f"postgres: {len(trials)} trials ({len(stale)} stale and retried, {len(surplus)} surplus), "
          f"2 workers (1 killed), {elapsed:.0f}s")


@pytest.mark.slow
def test_workers_flag_runs_local_processes_on_one_study(tmp_path: Path, toy_files, postgres: str) -> None:
    proj = project_copy(tmp_path / "proj", toy_files, tracking={"enabled": False},
                        tune={"n_trials": 6, "epochs": 2, "val_size": 100, "pruner": "none"})
    e = env(tmp_path)
    stage("download", cwd=proj, environ=e)
    stage("tune", "--schedule", "cosine", "--workers", "2", "--storage", postgres, cwd=proj, environ=e)
    tuned = json.loads((proj / "tuned" / "cosine.json").read_text())
    assert tuned["trials"] == 6 and tuned["complete"] == 6  # surplus trials of racing workers excluded
    assert tuned["surplus"] <= 1
    assert "lrsched@" not in tuned["storage"]  # credentials are not written to outputs
