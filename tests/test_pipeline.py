"""The whole `dvc repro` on generated data in a temporary copy of the project.

Two schedules prove the wiring: both are trained and tuned (`linear`'s space takes its bound from
the range test), then the compare stage evaluates both tuned configs on paired seeds, and a change
to `schedule_free` reruns only what depends on it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from helpers import default_raw, env, project_copy, run

pytestmark = pytest.mark.slow

SCHEDULES = ["linear", "schedule_free"]
EVERY_STAGE = {"download", "lr_find", "compare", "plot", *(f"train@{s}" for s in SCHEDULES),
               *(f"tune@{s}" for s in SCHEDULES)}


def ran(proc) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


TRACER = """
import os, sys
script = next((a for a in sys.orig_argv if a.endswith(".py") and "stages" in a), None)
if script:  # a stage's own process; its worker processes inherit the name
    os.environ["LRSCHED_TRACE_SCRIPT"] = os.path.relpath(script) if os.path.isabs(script) else script
if os.environ.get("LRSCHED_TRACE_SCRIPT"):
    def _trace(event, args, _log=os.environ["LRSCHED_IMPORT_LOG"], _script=os.environ["LRSCHED_TRACE_SCRIPT"]):
        if event == "import" and args[0].split(".")[0] == "lrsched":
            with open(_log, "a") as f:
                f.write(f"{_script} {args[0]}\\n")
    sys.addaudithook(_trace)
"""


def import_trace(tmp: Path, log: Path, environ: dict[str, str]) -> dict[str, str]:
    """``environ`` in which every Python process logs the lrsched modules it imports, by stage script."""
    folder = tmp / "tracer"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(TRACER)
    path = os.pathsep.join(p for p in (str(folder), environ.get("PYTHONPATH")) if p)
    return {**environ, "PYTHONPATH": path, "LRSCHED_IMPORT_LOG": str(log)}


def assert_deps_cover_imports(proj: Path, log: Path) -> None:
    """What the stages imported at run time (sys.modules, workers included) lies within their dvc.yaml deps."""
    stages = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]
    deps_of = {}
    for stage in stages.values():
        stage = stage.get("do", stage)
        deps_of[stage["cmd"].split()[1]] = [d for d in stage["deps"] if "${" not in d]
    loaded: dict[str, set[str]] = {}
    for line in log.read_text().splitlines():
        script, module = line.split()
        loaded.setdefault(script, set()).add(module)
    assert set(loaded) == set(deps_of), "every stage script ran and was traced"
    assert "lrsched.tuning.trials" in loaded["stages/tune.py"]  # imported by the trial workers
    for script, modules in loaded.items():
        for module in modules:
            base = proj / "src" / module.replace(".", "/")
            path = (base / "__init__.py" if base.is_dir() else base.with_suffix(".py")).relative_to(proj)
            assert any(path == Path(d) or Path(d) in path.parents for d in deps_of[script]), \
                f"{script} imported {module} at run time, but its stage does not list {path} as a dep"


def two_schedule_copy(dest: Path, toy_files) -> Path:
    raw = default_raw()
    # two paired seeds, trained one after the other in the stage's own process (worker processes
    # are tested elsewhere; here they would only add interpreter start-ups)
    proj = project_copy(dest, toy_files, train={"seeds": [0, 1], "workers": 1, "epochs": 2, "batch_size": 32},
                        tune={"n_trials": 2, "val_size": 100, "space": {s: raw["tune"]["space"][s] for s in SCHEDULES}},
                        compare={"first_seeds": 2, "max_seeds": 2})
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

    imports = tmp_path / "imports.log"  # every lrsched module each stage's processes load (workers too)
    first = run(["dvc", "repro"], proj, import_trace(tmp_path, imports, e))
    assert ran(first) == EVERY_STAGE
    assert_deps_cover_imports(proj, imports)
    for name in SCHEDULES:
        metrics = json.loads((proj / "metrics" / f"{name}.json").read_text())
        assert metrics["n"] == 2 and sorted(metrics["per_seed"]) == ["0", "1"]
        assert metrics["test_acc"]["mean"] == pytest.approx(
            sum(metrics["per_seed"][s]["test_acc"] for s in ("0", "1")) / 2)
        assert metrics["environment"]["threads"] == 1
        history = json.loads((proj / "history" / f"{name}.json").read_text())
        assert len(history) == 2 and "test_acc_std" in history[0]
        assert (proj / "plots" / "curves" / f"{name}.png").stat().st_size > 10_000
    compared = json.loads((proj / "metrics" / "compare.json").read_text())["schedules"]
    for name in SCHEDULES:  # every schedule tuned, then evaluated on the paired evaluation seeds
        study = json.loads((proj / "tuned" / f"{name}.json").read_text())
        assert study["trials"] == 2 and compared[name]["params"] == study["params"]
        assert sorted(compared[name]["per_seed"]) == ["0", "1"]
    for png in ("lr_curves.png", "test_acc.png", "final_acc.png", "forest.png"):
        assert (proj / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    decisions = json.loads((proj / "reports" / "decisions.json").read_text())
    ranked = report_rows(proj)
    assert [r[1] for r in ranked][0] == decisions["leader"] and sorted(r[1] for r in ranked) == SCHEDULES
    assert ranked[0][8] == "leader" and ranked[1][8].split()[0] in ("better", "worse", "equivalent", "inconclusive")
    spent = json.loads((proj / "reports" / "budget.json").read_text())["run_equivalents"]
    assert spent["tuning trials"] > 0 and spent["extra seeds"] == 0  # one look: max_seeds = first_seeds
    assert spent["total"] == pytest.approx(sum(v for k, v in spent.items() if k != "total"))

    # MLflow: one FINISHED run per (schedule, seed) and the study, all tagged with this one repro
    from mlflow.tracking import MlflowClient

    client = MlflowClient(e["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("lrsched")
    everything = client.search_runs([exp.experiment_id])
    # the machine's use, sampled once per stage (not per worker): one system run per long stage
    system = [r for r in everything if r.data.tags.get("lrsched.kind") == "system"]
    assert sorted(r.info.run_name for r in system) == sorted(
        ["compare-system", *(f"{kind}@{s}-system" for kind in ("train", "tune") for s in SCHEDULES)])
    assert all("system/cpu_utilization_percentage" in r.data.metrics for r in system)
    every = [r for r in everything if r.info.run_id not in {r.info.run_id for r in system}]
    runs = [r for r in every if r.data.tags["lrsched.stage"].startswith("train@")]
    assert sorted((r.info.run_name, r.data.tags["lrsched.seed"]) for r in runs) == \
        [(s, seed) for s in SCHEDULES for seed in ("0", "1")]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["lrsched.env.pinned"] for r in runs} == {"True"}
    assert {"linear-study", "schedule_free-study"} <= {r.info.run_name for r in every}
    evaluations = [r for r in every if r.data.tags["lrsched.stage"] == "compare"]
    assert sorted((r.info.run_name, r.data.tags["lrsched.seed"]) for r in evaluations) == \
        [(f"{s}-tuned", seed) for s in SCHEDULES for seed in ("0", "1")]  # every seed is a run
    assert len({r.data.tags["lrsched.study"] for r in every}) == 1  # one repro, one study tag

    assert ran(run(["dvc", "repro"], proj, e)) == set()  # second repro: nothing to do

    # train.workers changes how many processes train at once, not any number: nothing is stale
    workers = yaml.safe_load((proj / "params.yaml").read_text())
    workers["train"]["workers"] = 3
    (proj / "params.yaml").write_text(yaml.safe_dump(workers, sort_keys=False))
    assert json.loads(run(["dvc", "status", "--json"], proj, e).stdout) == {}
    workers["train"]["workers"] = 1
    (proj / "params.yaml").write_text(yaml.safe_dump(workers, sort_keys=False))

    # an edit to the report's code stales only the stage that reports, no training or tuning
    report = proj / "src" / "lrsched" / "reporting" / "report.py"
    original = report.read_text()
    report.write_text(original + "\n# an edit\n")
    assert set(json.loads(run(["dvc", "status", "--json"], proj, e).stdout)) == {"plot"}
    report.write_text(original)

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["schedules"]["schedule_free"]["lr"] = 0.8
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran(run(["dvc", "repro"], proj, e)) == {"train@schedule_free", "tune@schedule_free", "compare", "plot"}

    shown = run(["dvc", "metrics", "show"], proj, e).stdout
    assert all(f"metrics/{name}.json" in shown for name in SCHEDULES)
    # the combined chart: one line per schedule, from the top-level `plots:` definition
    combined = json.loads(run(["dvc", "plots", "show", "--json", "test_acc_by_schedule"], proj, e).stdout)
    points = combined["data"]["test_acc_by_schedule"][0]["content"]["data"]["values"]
    assert sorted((p["filename"], p["epoch"]) for p in points) == \
        [(f"{s}.json", epoch) for s in SCHEDULES for epoch in (1.0, 2.0)]

    # A fresh clone has the committed results but no DVC cache: every stage, tuning included, must
    # run there (its report, MLflow store and Optuna storage are its own), and it does.
    run(["git", "add", "-A"], proj, e)
    run(["git", "commit", "-qm", "study"], proj, e)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(proj), str(clone)], tmp_path, e)
    e2 = env(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/clone-mlflow.db")
    status = json.loads(run(["dvc", "status", "--json"], clone, e2).stdout)
    assert set(status) == EVERY_STAGE
    missing = {path for changes in status.values() for change in changes if isinstance(change, dict)
               for path, state in change.get("changed deps", {}).items() if state == "deleted"}
    assert missing == {"data/FashionMNIST/raw"}  # only the download's output: every code, param and result is in git
    assert ran(run(["dvc", "repro", "train@schedule_free"], clone, e2)) == {"download", "train@schedule_free"}
    # same code, params and seeds: the clone's per-seed numbers are the committed ones, exactly
    committed = json.loads((proj / "metrics" / "schedule_free.json").read_text())["per_seed"]
    rerun = json.loads((clone / "metrics" / "schedule_free.json").read_text())["per_seed"]
    strip = lambda d: {s: {k: v for k, v in r.items() if k != "seconds"} for s, r in d.items()}  # noqa: E731
    assert strip(rerun) == strip(committed)



def queue_workers(proj: Path) -> list:
    """This project's `dvc exp queue-worker` processes (detached: not our children)."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        if "queue-worker" in (p.info["cmdline"] or []) and Path(p.info["cwd"] or "/").is_relative_to(proj):
            found.append(p)
    return found


def test_queued_experiments_track_into_the_project(tmp_path: Path, toy_files) -> None:
    """`dvc exp run --queue` runs each experiment in a temporary copy that DVC deletes afterwards:
    its MLflow runs must land in the project's own store all the same (Optuna's storage is found
    the same way: tests/test_tuning.py::test_stores_resolve_in_the_project_under_a_queued_experiment)."""
    import time

    import psutil

    proj = project_copy(tmp_path / "proj", toy_files, train={"seeds": [0, 1], "workers": 1, "batch_size": 32})
    e = env(tmp_path)
    del e["MLFLOW_TRACKING_URI"]  # the project's default store: mlflow.db beside dvc.yaml
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        run(cmd, proj, e)
    for n, override in enumerate(("schedules.schedule_free.lr=0.5", "schedules.schedule_free.warmup=0.5")):
        run(["dvc", "exp", "run", "--queue", "-n", f"exp{n}", "-S", override, "train@schedule_free"], proj, e)
    started = time.time()
    try:
        run(["dvc", "queue", "start", "-j", "2"], proj, e)
        # the workers stop themselves once the queue is empty: wait for that (cheaper than polling DVC)
        deadline = time.time() + 600
        while time.time() < deadline and (queue_workers(proj) or time.time() - started < 10):
            time.sleep(1)
        status = run(["dvc", "queue", "status"], proj, e).stdout
        assert status.count("Success") == 2, status
    finally:
        run(["dvc", "queue", "stop", "--kill"], proj, e, check=False)
        for worker in queue_workers(proj):  # never left running, whatever failed above
            worker.kill()
        psutil.wait_procs(queue_workers(proj), timeout=10)
    print(f"dvc queue start -j 2: both experiments done in {time.time() - started:.0f}s")
    assert {"exp0", "exp1"} <= set(run(["dvc", "exp", "ls", "--name-only"], proj, e).stdout.split())

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lrsched")
    tagged = client.search_runs([exp.experiment_id], "tags.`lrsched.dvc_exp` != ''")
    runs = [r for r in tagged if r.data.tags.get("lrsched.kind") != "system"]
    assert len(tagged) - len(runs) == 2  # each experiment's stage logged its machine use once
    by_exp = {name: {r.data.tags["lrsched.stage"] for r in runs if r.data.tags["lrsched.dvc_exp"] == name}
              for name in ("exp0", "exp1")}
    print("runs in the project's mlflow.db by experiment:", by_exp)
    assert by_exp == {"exp0": {"train@schedule_free"}, "exp1": {"train@schedule_free"}}
    lrs = {(r.data.tags["lrsched.dvc_exp"], r.data.params["schedule.lr"], r.data.params["schedule.warmup"])
           for r in runs}
    assert lrs == {("exp0", "0.5", "1.0"), ("exp1", "1.0", "0.5")}  # each its own change to the committed params
    assert all(r.info.status == "FINISHED" for r in runs) and len(runs) == 4  # 2 experiments x 2 seeds
    # artifacts are in the project too (the temporary copies are gone)
    assert all(Path(r.info.artifact_uri.removeprefix("file://")).is_relative_to(proj) for r in runs)
