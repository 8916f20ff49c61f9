"""The whole `dvc repro` on generated data in a temporary copy of the project (two schedules prove the wiring)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import default_raw, env, project_copy, run

pytestmark = pytest.mark.slow

SCHEDULES = ["linear", "schedule_free"]  # linear's space takes its bound from lr_find


def ran(proc) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


def every_stage() -> set[str]:
    return {"download", "lr_find", "plot", *(f"{stage}@{s}" for s in SCHEDULES for stage in ("train", "tune"))}


def two_schedule_copy(dest: Path, toy_files) -> Path:
    raw = default_raw()
    proj = project_copy(dest, toy_files, train={"seeds": [0, 1], "workers": 2, "epochs": 3, "batch_size": 32},
                        tune={"n_trials": 2, "val_size": 100,
                              "space": {s: raw["tune"]["space"][s] for s in SCHEDULES}})
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["schedules"] = {s: raw["schedules"][s] for s in SCHEDULES}
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return proj


def report_rows(proj: Path) -> list[list[str]]:
    report = (proj / "reports" / "summary.md").read_text()
    return [[c.strip() for c in line.split("|")[1:-1]] for line in report.splitlines() if re.match(r"\| \d+ \|", line)]


def test_dvc_repro_end_to_end_and_from_a_fresh_clone(tmp_path: Path, toy_files) -> None:
    proj = two_schedule_copy(tmp_path / "proj", toy_files)
    e = env(tmp_path)
    run(["git", "init", "-q"], proj, e)
    run(["dvc", "init", "-q"], proj, e)

    first = run(["dvc", "repro"], proj, e)
    assert ran(first) == every_stage()
    for name in SCHEDULES:
        metrics = json.loads((proj / "metrics" / f"{name}.json").read_text())
        assert metrics["n"] == 2 and sorted(metrics["per_seed"]) == ["0", "1"]
        assert metrics["test_acc"]["mean"] == pytest.approx(
            sum(metrics["per_seed"][s]["test_acc"] for s in ("0", "1")) / 2)
        assert metrics["environment"]["threads"] == 1
        history = json.loads((proj / "history" / f"{name}.json").read_text())
        assert len(history) == 3 and "test_acc_std" in history[0]
        assert (proj / "plots" / "curves" / f"{name}.png").stat().st_size > 10_000
        tuned = json.loads((proj / "metrics" / "tuned" / f"{name}.json").read_text())
        assert sorted(tuned["per_seed"]) == ["0", "1"]  # the tuned retrain uses the same paired seeds
    for png in ("lr_curves.png", "test_acc.png", "final_acc.png"):
        assert (proj / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = report_rows(proj)
    assert sorted(r[1] for r in rows) == SCHEDULES  # both learn the toy data: both ranked
    means = [float(r[3].split()[0]) for r in rows]
    assert means == sorted(means, reverse=True)
    for row in rows:  # tuned columns filled from this run's tune stages
        tuned = json.loads((proj / "metrics" / "tuned" / f"{row[1]}.json").read_text())
        assert row[7].startswith(f"{tuned['test_acc']['mean']:.4f}")

    # MLflow: one FINISHED run per (schedule, seed) and a study per schedule, all from this repro
    from mlflow.tracking import MlflowClient

    client = MlflowClient(e["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("lrsched")
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags["lrsched.stage"].startswith("train@")]
    assert sorted((r.info.run_name, r.data.tags["lrsched.seed"]) for r in runs) == \
        [(s, seed) for s in SCHEDULES for seed in ("0", "1")]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["lrsched.env.pinned"] for r in runs} == {"True"}
    every = client.search_runs([exp.experiment_id])
    assert {r.info.run_name for r in every} >= {f"{s}-study" for s in SCHEDULES}
    assert len({r.data.tags["lrsched.study"] for r in every}) == 1  # one repro, one study tag

    assert ran(run(["dvc", "repro"], proj, e)) == set()  # second repro: nothing to do

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["schedules"]["linear"]["base_lr"] = 0.25
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(run(["dvc", "repro"], proj, e)) == {"train@linear", "tune@linear", "plot"}

    shown = run(["dvc", "metrics", "show"], proj, e).stdout
    assert all(f"metrics/{name}.json" in shown for name in SCHEDULES)

    # A fresh clone has the committed results but no DVC cache: every stage, tuning included,
    # reruns there, so its report, MLflow store and Optuna storage are its own.
    run(["git", "add", "-A"], proj, e)
    run(["git", "commit", "-qm", "study"], proj, e)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(proj), str(clone)], tmp_path, e)
    e2 = env(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/clone-mlflow.db")
    assert ran(run(["dvc", "repro"], clone, e2)) == every_stage()
    assert (clone / "optuna" / "optuna.db").is_file()
    studies = MlflowClient(e2["MLFLOW_TRACKING_URI"]).search_runs(
        [MlflowClient(e2["MLFLOW_TRACKING_URI"]).get_experiment_by_name("lrsched").experiment_id],
        "tags.`lrsched.role` = 'study'")
    assert sorted(r.info.run_name for r in studies) == [f"{s}-study" for s in SCHEDULES]
    # same code, params and seeds: the clone's per-seed numbers are the committed ones, exactly
    for name in SCHEDULES:
        committed = json.loads((proj / "metrics" / f"{name}.json").read_text())["per_seed"]
        rerun = json.loads((clone / "metrics" / f"{name}.json").read_text())["per_seed"]
        strip = lambda d: {s: {k: v for k, v in r.items() if k != "seconds"} for s, r in d.items()}  # noqa: E731
        assert strip(rerun) == strip(committed)

    queued_experiments_track_into_the_project(proj, tmp_path)


def queued_experiments_track_into_the_project(proj: Path, tmp_path: Path) -> None:
    """`dvc exp run --queue` runs each experiment in a temporary copy that DVC deletes afterwards:
    its MLflow runs and Optuna studies must land in the project's own stores all the same."""
    import time

    e = env(tmp_path)
    del e["MLFLOW_TRACKING_URI"]  # the project's default store: mlflow.db beside dvc.yaml
    for n, override in enumerate(("schedules.linear.base_lr=0.2", "schedules.schedule_free.lr=0.5")):
        run(["dvc", "exp", "run", "--queue", "-n", f"exp{n}", "-S", override], proj, e)
    try:
        run(["dvc", "queue", "start", "-j", "2"], proj, e)
        deadline = time.time() + 600
        while time.time() < deadline:
            status = run(["dvc", "queue", "status"], proj, e).stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(3)
        assert status.count("Success") == 2, status
    finally:
        run(["dvc", "queue", "stop", "--kill"], proj, e, check=False)
    assert {"exp0", "exp1"} <= set(run(["dvc", "exp", "ls", "--name-only"], proj, e).stdout.split())

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lrsched")
    runs = client.search_runs([exp.experiment_id], "tags.`lrsched.dvc_exp` != ''")
    by_exp = {name: {r.data.tags["lrsched.stage"] for r in runs if r.data.tags["lrsched.dvc_exp"] == name}
              for name in ("exp0", "exp1")}
    assert by_exp["exp0"] >= {"train@linear", "tune@linear"}
    assert by_exp["exp1"] >= {"train@schedule_free", "tune@schedule_free"}
    assert all(r.info.status == "FINISHED" for r in runs if r.data.tags.get("lrsched.role") != "trial")
    # artifacts are in the project too (the temporary copies are gone)
    assert all(Path(r.info.artifact_uri.removeprefix("file://")).is_relative_to(proj) for r in runs)

    import optuna

    studies = optuna.get_all_study_names(f"sqlite:///{proj / 'optuna' / 'optuna.db'}")
    assert len([s for s in studies if s.startswith("linear-")]) == 3  # the two repros' and exp0's
    assert len([s for s in studies if s.startswith("schedule_free-")]) == 2  # the repro's and exp1's
