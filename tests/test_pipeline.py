"""The whole `dvc repro` on generated data in a temporary copy of the project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from helpers import env, project_copy, run

pytestmark = pytest.mark.slow

SCHEDULES = ["constant", "square_root", "factor", "multi_factor", "cosine", "cosine_warmup", "linear"]


def ran(proc) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


def test_dvc_repro_end_to_end(tmp_path: Path, toy_files) -> None:
    proj = project_copy(tmp_path / "proj", toy_files, tune={"n_trials": 2, "epochs": 1, "val_size": 100})
    e = env(tmp_path)
    run(["git", "init", "-q"], proj, e)
    run(["dvc", "init", "-q"], proj, e)

    first = run(["dvc", "repro"], proj, e)
    assert ran(first) == {"download", "plot", *(f"{stage}@{s}" for s in SCHEDULES for stage in ("train", "tune"))}
    for name in SCHEDULES:
        metrics = json.loads((proj / "metrics" / f"{name}.json").read_text())
        assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["seeds"] == 1
        assert len(json.loads((proj / "history" / f"{name}.json").read_text())) == 2
        assert (proj / "models" / f"{name}.pt").stat().st_size > 200_000
        assert (proj / "plots" / "curves" / f"{name}.png").stat().st_size > 10_000
    for png in ("lr_curves.png", "test_acc.png"):
        assert (proj / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (proj / "reports" / "summary.md").read_text()
    rows = [line for line in report.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(SCHEDULES)
    accs = [float(r.split("|")[4]) for r in rows]
    assert accs == sorted(accs, reverse=True)
    assert "tuned test acc" in report and all(r.count("|") == 12 for r in rows)  # default vs tuned columns
    for name in SCHEDULES:
        assert json.loads((proj / "tuned" / f"{name}.json").read_text())["trials"] == 2
        assert "test_acc" in json.loads((proj / "metrics" / "tuned" / f"{name}.json").read_text())

    # MLflow: one FINISHED run per schedule, all tagged with the same study
    from mlflow.tracking import MlflowClient

    client = MlflowClient(e["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("lrsched")
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags["lrsched.stage"].startswith("train@")]
    assert sorted(r.info.run_name for r in runs) == sorted(SCHEDULES)
    assert {r.info.status for r in runs} == {"FINISHED"}
    every = client.search_runs([exp.experiment_id])
    assert len({r.data.tags["lrsched.study"] for r in every}) == 1  # one repro, one study tag

    assert ran(run(["dvc", "repro"], proj, e)) == set()  # second repro: nothing to do

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["schedules"]["cosine"]["base_lr"] = 0.25
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(run(["dvc", "repro"], proj, e)) == {"train@cosine", "tune@cosine", "plot"}
    runs = client.search_runs([exp.experiment_id], "tags.`lrsched.stage` = 'train@cosine'",
                              order_by=["attributes.start_time DESC"])
    assert runs[0].info.run_name == "cosine" and runs[0].data.params["schedule.base_lr"] == "0.25"
    assert runs[0].data.tags["lrsched.study"] != runs[-1].data.tags["lrsched.study"]

    shown = run(["dvc", "metrics", "show"], proj, e).stdout
    assert all(f"metrics/{name}.json" in shown for name in SCHEDULES)

    run(["git", "add", "-A"], proj, e)
    run(["git", "commit", "-qm", "study"], proj, e)
    exp_run = run(["dvc", "exp", "run", "-S", "train.epochs=1"], proj, e)
    assert {f"train@{s}" for s in SCHEDULES} <= ran(exp_run)
    assert len(json.loads((proj / "history" / "cosine.json").read_text())) == 1
