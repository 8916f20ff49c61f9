"""MLflow tracking: a real server, run status on success/failure/interrupt, fail-fast, opt-out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import (
    ROOT,
    env,
    free_port,
    project_copy,
    run,
    stage,
    stage_in_process,
    stop_group,
    with_data,
)

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture()
def mlflow_server(tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env(tmp_path), start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
                time.sleep(0.5)
        else:
            raise AssertionError("mlflow server did not start:\n" + (tmp_path / "server.log").read_text()[-2000:])
        yield uri
    finally:  # the server and its workers (one process group) never outlive the test
        stop_group(proc)
        log.close()


@pytest.fixture()
def proj(tmp_path: Path, toy_files) -> Path:
    return with_data(project_copy(tmp_path / "proj", toy_files))


@pytest.fixture()
def sqlite_tracker(tmp_path: Path, monkeypatch):
    """A tracker on a fresh SQLite store in ``tmp_path``, run from there (MLflow's default
    artifact root is ./mlruns)."""
    from lrsched.tracking.tracker import MlflowTracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    return MlflowTracker.open("lrsched")


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def only_run(uri: str):
    c = client_for(uri)
    runs = [r for r in c.search_runs([c.get_experiment_by_name("lrsched").experiment_id])
            if r.data.tags.get("lrsched.kind") != "system"]  # the stage's machine use is a run of its own
    assert len(runs) == 1
    return c, runs[0]


def test_training_against_a_real_mlflow_server(proj: Path, tmp_path: Path, mlflow_server: str) -> None:
    stage("train", "--schedule", "cosine_warmup", "--epochs", "3", cwd=proj,
          environ=env(tmp_path, MLFLOW_TRACKING_URI=mlflow_server))
    c, r = only_run(mlflow_server)
    assert r.info.status == "FINISHED" and r.info.run_name == "cosine_warmup"
    p = r.data.params
    assert (p["schedule.type"], p["schedule.base_lr"], p["schedule.warmup"], p["schedule.interval"]) == \
        ("cosine", "0.2", "3.0", "step")
    assert p["train.epochs"] == "3" and p["train.batch_size"] == "256" and p["seed"] == "0"
    test_acc = c.get_metric_history(r.info.run_id, "test_acc")
    assert sorted(m.step for m in test_acc) == [1, 2, 3]
    lrs = sorted(c.get_metric_history(r.info.run_id, "lr"), key=lambda m: m.step)
    assert [m.step for m in lrs] == [1, 2, 3] and lrs[0].value < lrs[2].value  # warming up
    per_step = c.get_metric_history(r.info.run_id, "lr_step")
    assert len(per_step) == 3 * 3 and min(m.value for m in per_step) == 0.0  # 600 images / 256 = 3 steps
    tags = r.data.tags
    assert tags["lrsched.schedule"] == "cosine_warmup" and tags["lrsched.stage"] == "train@cosine_warmup"
    assert len(tags["lrsched.data_md5"]) == 32 and "lrsched.study" in tags
    names = {a.path for a in c.list_artifacts(r.info.run_id)}
    assert {"lr_curve.png", "training_curves.png", "history.json", "config.yaml", "model.pt"} <= names
    png = Path(c.download_artifacts(r.info.run_id, "training_curves.png", str(tmp_path)))
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert p["schedule.optimizer"] == "sgd"
    # what it trained and was scored on, in the runs table's Datasets column
    inputs = {(d.dataset.name, d.dataset.digest, d.tags[0].value) for d in r.inputs.dataset_inputs}
    assert inputs == {("fashion-mnist-train", tags["lrsched.data_md5"], "training"),
                      ("fashion-mnist-test", tags["lrsched.data_md5"], "evaluation")}
    # the trained model as a logged model with a signature, linked to the run
    models = c.search_logged_models([r.info.experiment_id])
    assert [m.source_run_id for m in models] == [r.info.run_id]
    exp = c.get_experiment(r.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


def test_unreachable_server_fails_before_training(proj: Path, monkeypatch) -> None:
    from lrsched.training import runs

    monkeypatch.setattr(runs, "load_datasets", lambda cfg: pytest.fail("loaded data despite no server"))
    proc = stage_in_process("train", "--schedule", "cosine", cwd=proj,
                            environ={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    assert proc.returncode == 2 and "unreachable" in proc.stderr and "mlflow server" in proc.stderr
    assert not (proj / "metrics").exists()


def test_invalid_store_uri_fails_fast(proj: Path) -> None:
    proc = stage_in_process("train", "--schedule", "cosine", cwd=proj,
                            environ={"MLFLOW_TRACKING_URI": "nosuchscheme://x"})
    assert proc.returncode == 2 and "MLFLOW_TRACKING_URI=nosuchscheme://x" in proc.stderr


def test_exception_ends_the_run_failed_with_the_error(tmp_path: Path, monkeypatch) -> None:
    from lrsched.tracking.tracker import MlflowTracker

    uri = f"sqlite:///{tmp_path}/t.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = MlflowTracker.open("lrsched", {})
    with pytest.raises(RuntimeError):
        with tracker.run("cosine", {"a": 1}, {}):
            raise RuntimeError("out of memory in epoch 3")
    _, r = only_run(uri)
    assert r.info.status == "FAILED"
    assert r.data.tags["lrsched.error"] == "RuntimeError: out of memory in epoch 3"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_run_ends_killed_and_keeps_old_outputs(proj: Path, tmp_path: Path, sig, code) -> None:
    uri = f"sqlite:///{tmp_path}/k.db"
    e = env(tmp_path, MLFLOW_TRACKING_URI=uri)
    (proj / "metrics").mkdir()
    before = '{"test_acc": {"mean": 0.5}, "note": "an earlier run\'s result"}\n'
    (proj / "metrics" / "constant.json").write_text(before)
    c = client_for(uri)
    c.search_experiments()  # the store exists before the stage starts: only one process migrates it
    # started with SIGINT ignored, as a background job of a non-interactive shell (or a CI job) is
    proc = subprocess.Popen([sys.executable, "stages/train.py", "--schedule", "constant", "--epochs", "100000",
                             "--out", "."],  # into the study's places, as dvc.yaml names them
                            cwd=proj, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            time.sleep(0.5)
            exp = c.get_experiment_by_name("lrsched")  # the stage creates it
            running = [r for r in c.search_runs([exp.experiment_id]) if r.info.status == "RUNNING"] if exp else []
            if running and c.get_metric_history(running[0].info.run_id, "test_acc"):
                break  # mid-training: at least one epoch logged
        else:
            proc.kill()
            raise AssertionError("training run never started: " + proc.communicate()[1][-2000:])
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:  # never left training, whatever failed above
        proc.kill()
        proc.wait()
    assert proc.returncode == code, stderr[-2000:]
    assert c.get_run(running[0].info.run_id).info.status == "KILLED"
    assert (proj / "metrics" / "constant.json").read_text() == before


def test_diverged_run_is_recorded_as_such(proj: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/d.db"
    stage("train", "--schedule", "constant", "--epochs", "2", "--set", "schedules.constant.lr=1e6", "--out", ".", cwd=proj,
          environ=env(tmp_path, MLFLOW_TRACKING_URI=uri))
    metrics = json.loads((proj / "metrics" / "constant.json").read_text())
    assert metrics["diverged"] == 1 and "test_acc" not in metrics
    _, r = only_run(uri)
    assert r.info.status == "FAILED" and r.data.tags["lrsched.diverged"] == "true"
    assert "non-finite training loss" in r.data.tags["lrsched.error"]


def test_tracking_disabled_never_imports_mlflow(proj: Path, tmp_path: Path) -> None:
    code = ("import runpy, sys\n"
            "sys.argv = ['stages/train.py', '--schedule', 'constant', '--epochs', '1',"
            " '--set', 'tracking.enabled=false', '--out', '.']\n"
            "try:\n    runpy.run_path('stages/train.py', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "print('MLFLOW_IMPORTED' if 'mlflow' in sys.modules else 'MLFLOW_NOT_IMPORTED')\n")
    e = env(tmp_path, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")  # would fail if contacted
    proc = run([sys.executable, "-c", code], proj, e)
    assert "MLFLOW_NOT_IMPORTED" in proc.stdout
    assert (proj / "metrics" / "constant.json").is_file()


def test_mlflow_run_entry_point_logs_one_run_with_overrides_and_leaves_the_study(proj: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/p.db"
    study = {f"{folder}/cosine.{ext}": f"the study's {folder}\n" for folder, ext in
             (("metrics", "json"), ("history", "json"), ("models", "pt"))}
    for path, text in study.items():  # what `dvc repro` left
        (proj / path).parent.mkdir(parents=True, exist_ok=True)
        (proj / path).write_text(text)
    run([str(BIN / "mlflow"), "run", ".", "--env-manager", "local", "--experiment-name", "lrsched",
         "-P", "schedule=cosine", "-P", "epochs=2", "-P", "set=schedules.cosine.base_lr=0.3;schedules.cosine.T=4"],
        proj, env(tmp_path, MLFLOW_TRACKING_URI=uri))
    c, r = only_run(uri)
    assert r.info.status == "FINISHED" and r.info.run_name == "cosine"
    assert (r.data.params["schedule.base_lr"], r.data.params["schedule.T"], r.data.params["train.epochs"]) == \
        ("0.3", "4", "2")
    assert len(c.get_metric_history(r.info.run_id, "test_acc")) == 2
    # the study is untouched: nothing new, nothing changed; the run's files are in its scratch folder
    assert {str(p.relative_to(proj)): p.read_text() for folder in ("metrics", "history", "models")
            for p in (proj / folder).rglob("*") if p.is_file()} == study
    scratch = list((proj / "runs").iterdir())
    assert [p.name for p in scratch] == [f"mlflow-{r.info.run_id}"]  # named after the run that logged it
    written = json.loads((scratch[0] / "metrics" / "cosine.json").read_text())
    assert written["seeds"] == [0] and len(json.loads((scratch[0] / "history" / "cosine.json").read_text())) == 2
    assert (scratch[0] / "models" / "cosine.pt").is_file()


def test_runs_of_killed_processes_are_marked_killed_on_the_next_start(tmp_path: Path, monkeypatch) -> None:
    import socket

    from lrsched.tracking.tracker import MlflowTracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    first = MlflowTracker.open("lrsched")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is gone, as after SIGKILL or the OOM killer
    host = socket.gethostname()
    c = first.client
    orphan = c.create_run(first.experiment_id, tags={"lrsched.host": host, "lrsched.pid": str(dead.pid)})
    live = c.create_run(first.experiment_id, tags={"lrsched.host": host, "lrsched.pid": str(os.getpid())})
    elsewhere = c.create_run(first.experiment_id, tags={"lrsched.host": "another-host", "lrsched.pid": "1"})

    MlflowTracker.open("lrsched")  # the next stage starts
    assert c.get_run(orphan.info.run_id).info.status == "KILLED"
    assert f"process {dead.pid} on {host} ended" in c.get_run(orphan.info.run_id).data.tags["lrsched.killed_reason"]
    assert c.get_run(live.info.run_id).info.status == "RUNNING"       # its process is this test
    assert c.get_run(elsewhere.info.run_id).info.status == "RUNNING"  # not ours to judge


def test_registered_model_loads_back_and_classifies(sqlite_tracker, toy_root: Path) -> None:
    import mlflow.pytorch
    import torch

    from lrsched.data import load_split
    from lrsched.tracking.tracker import REGISTERED_MODEL
    from lrsched.training.model import lenet

    tracker = sqlite_tracker
    torch.manual_seed(3)
    model = lenet().eval()
    images = load_split(toy_root, train=False).x[:5]
    with tracker.run("cosine", {}, {}) as logger:
        uri = logger.log_model(model, images[:2])
    assert tracker.register_model(uri, alias="cosine") == f"models:/{REGISTERED_MODEL}@cosine"
    loaded = mlflow.pytorch.load_model(f"models:/{REGISTERED_MODEL}@cosine")
    with torch.no_grad():
        assert torch.equal(loaded(images).argmax(1), model(images).argmax(1))
        assert loaded(images).shape == (5, 10)
    assert tracker.ui_url().endswith(f"/#/experiments/{tracker.experiment_id}?workflowType=machine_learning")


def test_a_metric_keeps_the_time_it_was_taken(sqlite_tracker) -> None:
    """System samples are logged after the stage: MLflow must plot them at their own times."""
    from mlflow.tracking import MlflowClient

    tracker = sqlite_tracker
    taken_ms = 1_764_000_000_000
    with tracker.run("train@cosine-system", {}, {}) as logger:
        logger.log_metrics({"system/cpu_utilization_percentage": 97.0}, step=10, timestamp_ms=taken_ms)
        logger.log_metrics({"system/cpu_utilization_percentage": 50.0}, step=20)
        run_id = logger.run_id
    history = MlflowClient().get_metric_history(run_id, "system/cpu_utilization_percentage")
    assert [(m.step, m.value) for m in history] == [(10, 97.0), (20, 50.0)]
    assert history[0].timestamp == taken_ms and history[1].timestamp > taken_ms  # the second: stamped now


def test_a_channels_last_model_is_logged_without_warnings_and_loads_back_bit_for_bit(sqlite_tracker) -> None:
    import warnings

    import mlflow.pytorch
    import torch

    from lrsched.training.model import lenet

    tracker = sqlite_tracker
    torch.manual_seed(3)
    model = lenet().to(memory_format=torch.channels_last).eval()  # as the trainer leaves it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tracker.run("cosine", {}, {}) as logger:
            uri = logger.log_model(model, torch.rand(2, 1, 28, 28))
    assert not [w for w in caught if "complete tensor" in str(w.message)]  # torch's archive writer
    loaded = mlflow.pytorch.load_model(uri).state_dict()
    assert list(loaded) == list(model.state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)  # the caller's model is untouched


def test_stages_starting_together_on_a_fresh_store_both_work(tmp_path: Path) -> None:
    """MLflow's schema migration of a new SQLite store races between processes: a file lock serialises it."""
    code = "from lrsched.tracking.tracker import MlflowTracker; MlflowTracker.open('lrsched')"
    e = env(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/fresh.db")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=e, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    try:
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(err[-800:] for err in errors)
    c = client_for(e["MLFLOW_TRACKING_URI"])
    assert [x.name for x in c.search_experiments()].count("lrsched") == 1


@pytest.mark.parametrize("where", ["local store", "server"])
def test_a_dataset_logged_by_two_seeds_at_once_is_retried_not_fatal(tmp_path: Path, monkeypatch, where) -> None:
    """Seeds in parallel processes insert the same dataset row at once: MLflow's loser hits the unique key."""
    from mlflow.exceptions import MlflowException, RestException
    from sqlalchemy.exc import IntegrityError

    from lrsched.tracking.tracker import MlflowTracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    tracker = MlflowTracker.open("lrsched")
    real = tracker.client.log_inputs
    calls = []

    def racing(run_id, datasets):
        calls.append(run_id)
        if len(calls) == 1:  # the other seed's process inserted the row first (MLflow wraps the driver's error)
            if where == "server":  # a tracking server reports the database's error in its message only
                raise RestException({"error_code": "INTERNAL_ERROR",
                                     "message": "(pymysql.err.IntegrityError) (1062, \"Duplicate entry 'fmnist' for key\")"})
            violation = IntegrityError("INSERT INTO datasets ...", {}, Exception("UNIQUE constraint failed"))
            raise MlflowException(violation) from violation
        return real(run_id, datasets)

    monkeypatch.setattr(tracker.client, "log_inputs", racing)
    with tracker.run("cosine", {}, {}) as logger:
        assert logger.client is tracker.client  # the run writes through the patched client
        logger.log_dataset("fashion-mnist-train", "abc123", "data/FashionMNIST/raw", "training")
        run_id = logger.run_id
    inputs = tracker.client.get_run(run_id).inputs.dataset_inputs
    assert len(calls) == 2 and [(d.dataset.name, d.dataset.digest) for d in inputs] == [("fashion-mnist-train", "abc123")]



@pytest.fixture()
def stage_signals():
    """A stage's SIGINT/SIGTERM handlers in this process; the previous ones restored afterwards."""
    from lrsched.core.signals import install_signal_handlers

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    install_signal_handlers()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_ctrl_c_at_random_moments_of_store_writes_always_ends_the_run_killed(tmp_path: Path, monkeypatch,
                                                                              stage_signals) -> None:
    """Ctrl-C lands at random points of a run's metric writes to SQLite: each write finishes first, so
    the run's own KILLED update never finds the store locked (without that, 1 of ~15 interrupts did)."""
    import random
    import threading

    from lrsched.tracking.tracker import MlflowTracker

    uri = f"sqlite:///{tmp_path}/w.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = MlflowTracker.open("lrsched")
    rng, run_ids = random.Random(0), []
    for i in range(40):
        timer = threading.Timer(rng.uniform(0.0005, 0.03), os.kill, (os.getpid(), signal.SIGINT))
        try:
            with tracker.run(f"run{i}", {}, {}) as logger:
                run_ids.append(logger.run_id)
                timer.start()
                for epoch in range(5):
                    logger.log_metrics({f"m{k}": 1.0 for k in range(100)}, step=epoch)
                timer.join()  # the signal acts by here at the latest, inside the run
        except KeyboardInterrupt:
            pass
        finally:  # never a SIGINT after the handlers are restored
            timer.cancel()
            timer.join()
    runs = client_for(uri).search_runs([tracker.experiment_id], max_results=100)
    assert len(run_ids) == 40 and {r.info.status for r in runs} == {"KILLED"}


def test_a_second_signal_during_a_runs_teardown_still_ends_it_killed(tmp_path: Path, monkeypatch,
                                                                     stage_signals) -> None:
    """Ctrl-C, then SIGTERM (a pool's terminate) while the run sends its last metrics: the run still ends KILLED."""
    from lrsched.core.errors import Terminated
    from lrsched.tracking.tracker import MlflowTracker

    uri = f"sqlite:///{tmp_path}/t.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracker = MlflowTracker.open("lrsched")
    real = tracker.client._client.log_batch

    def terminated_meanwhile(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    with pytest.raises(Terminated):
        with tracker.run("constant", {}, {}) as logger:
            run_id = logger.run_id
            logger.on_step(0, 0.0, 0.1)  # pending until the run's teardown sends it
            monkeypatch.setattr(tracker.client._client, "log_batch", terminated_meanwhile)
            raise KeyboardInterrupt
    run = client_for(uri).get_run(run_id)
    assert run.info.status == "KILLED" and run.data.metrics == {"lr_step": 0.1}


def test_the_stages_system_run_hangs_under_the_run_mlflow_run_made_and_never_takes_it(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    """Under `mlflow run`, the stage's system metrics are a child run; the stage's own run still
    adopts the run MLflow made, however the two are ordered."""
    from lrsched.cli import system_metrics
    from lrsched.config import load_config
    from lrsched.tracking.tracker import MlflowTracker

    uri = f"sqlite:///{tmp_path}/t.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    c = client_for(uri)
    made = c.create_run(c.create_experiment("lrsched")).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", made)
    tracker = MlflowTracker.open("lrsched", {})
    cfg = load_config(ROOT / "params.yaml", [])
    with system_metrics(cfg, tracker, "train@cosine"):
        pass
    with tracker.run("cosine", {"a": 1}, {}):
        pass
    runs = {r.info.run_name: r for r in c.search_runs([c.get_experiment_by_name("lrsched").experiment_id])}
    assert set(runs) == {"train@cosine-system", "cosine"}
    assert runs["cosine"].info.run_id == made
    assert runs["train@cosine-system"].data.tags["mlflow.parentRunId"] == made


def test_the_system_run_spans_its_stage(sqlite_tracker) -> None:
    """Logged after the stage, the system run still starts when the stage's block began: the runs
    table's Created and Duration are the stage's, not the fraction of a second of logging."""
    import time

    from lrsched.cli import system_metrics
    from lrsched.config import load_config

    tracker = sqlite_tracker
    cfg = load_config(ROOT / "params.yaml", [])
    before_ms = int(time.time() * 1000)
    with system_metrics(cfg, tracker, "train@cosine"):
        time.sleep(1.2)
    (run,) = tracker.client.search_runs([tracker.experiment_id])
    assert run.info.run_name == "train@cosine-system"
    assert before_ms <= run.info.start_time <= before_ms + 1000
    assert run.info.end_time - run.info.start_time >= 1200


def test_system_metrics_that_cannot_be_logged_never_cost_the_stage_its_results(caplog) -> None:
    from lrsched.cli import system_metrics
    from lrsched.config import load_config

    class Unreachable:
        def run(self, *args, **kwargs):
            raise ConnectionError("http://user:hunter2@tracking.example:5000 refused the connection")

    cfg = load_config(ROOT / "params.yaml", [])
    finished = []
    with system_metrics(cfg, Unreachable(), "compare"):
        finished.append(True)
    assert finished == [True]
    assert "system metrics of compare not logged (ConnectionError" in caplog.text
    assert "hunter2" not in caplog.text
