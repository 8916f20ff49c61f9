"""The whole `dvc repro` on generated data in a temporary copy of the project (two schedules prove the wiring)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import default_raw, env, project_copy, run

pytestmark = pytest.mark.slow

SCHEDULES = ["constant", "cosine"]


def ran(proc) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


def every_stage() -> set[str]:
    return {"download", "plot", *(f"{stage}@{s}" for s in SCHEDULES for stage in ("train", "tune"))}


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
    params["schedules"]["cosine"]["base_lr"] = 0.25
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(run(["dvc", "repro"], proj, e)) == {"train@cosine", "tune@cosine", "plot"}

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

    exp_run = run(["dvc", "exp", "run", "-S", "train.epochs=1"], proj, e)
    assert {f"train@{s}" for s in SCHEDULES} <= ran(exp_run)
    assert len(json.loads((proj / "history" / "cosine.json").read_text())) == 1
