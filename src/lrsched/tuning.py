"""Optuna: tune one schedule's hyperparameters. The only module of lrsched that imports optuna.

* The objective is validation accuracy on a seeded split of the training set,
  after the real ``train.epochs`` (no compressed proxy); the test set is never
  used while tuning. Every trial starts from ``tune.trial_seed``'s initial weights
  and data order, a seed the final comparison never uses, and trains with
  ``tune.fixed`` (momentum 0.9 for every schedule: the optimizer is not a confound). The median pruner stops a trial after an epoch whose
  accuracy is below the median of completed trials at that epoch.
* The first trial is the schedule's own configuration from params.yaml (where
  it lies in the space), so the study's best is never a guess below it.
* Trials run ``train.workers`` at a time as single-thread processes, in
  synchronous batches: each batch is asked for, trained, then told in trial
  order, and the median pruner only compares with completed trials. The whole
  study is therefore the same, trial for trial, on every run and any number of
  workers; the retrain of the best params on the paired seeds follows.
* Storage: a SQLite file under the project by default, or any SQLAlchemy URL
  (PostgreSQL) for workers on many machines (``--worker``: Optuna's own
  asynchronous loop, with heartbeats so no trial stays RUNNING forever; such
  studies are not reproducible trial for trial).
* The study name carries a digest of everything a trial's result depends on (the
  space, settings, the training code and the library versions), so a changed space,
  setting or trainer starts a new study instead of resuming a stale one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import inspect
import logging
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from lrsched.callbacks import Callback, Tracker
from lrsched.config import Config
from lrsched.data import Split, train_val_split
from lrsched.errors import ConfigError, LrschedError
from lrsched.io import project_root
from lrsched.parallel import Workers, worker_count
from lrsched.registry import parse_spec
from lrsched.results import RUN_EQUIVALENT
from lrsched.runs import check_inputs, fit_options, load_datasets, plan_for
from lrsched.search_space import space_digest
from lrsched.trainer import fit
from lrsched.urls import mask_password

log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, mpl plots
# Batches use ask/tell; their trials write heartbeats from the worker (see _heartbeat).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
optuna.logging.set_verbosity(optuna.logging.WARNING)
HEARTBEAT_S = 5     # a live trial writes a heartbeat this often
GRACE_S = 20        # a trial silent this long is failed (and retried once) by another worker
FAIL_REASON = "fail_reason"  # user attr of trials *we* failed (diverged, invalid combination)
SURPLUS = "surplus: the study already had its trials when this one started"
DEAD_AFTER = 2      # epochs after which a trial still at chance accuracy is stopped
OBJECTIVE = "val_acc"
IMAGE_EPOCHS = "image_epochs"  # user attr: training images x epochs a trial ran


class StorageError(LrschedError):
    """The Optuna storage URL is invalid or unreachable."""


def storage_url(storage: str) -> str:
    """A bare path means a SQLite file in the project (created with its folder); URLs pass through."""
    if "://" in storage:
        return storage
    path = project_root() / storage
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_storage(storage: str, attempts: int = 3) -> RDBStorage:
    url = storage_url(storage)
    try:
        return _rdb_storage(url)
    except Exception as exc:
        # two workers creating a new database's tables at once: the loser sees "already exists"
        if attempts > 1 and any(w in str(exc) for w in ("already exists", "duplicate", "UniqueViolation")):
            time.sleep(1.0)
            return open_storage(storage, attempts - 1)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"tune.storage={mask_password(storage)}: cannot open the Optuna storage "
                           f"({mask_password(first)[:200]}); "
                           "fix the URL (e.g. postgresql://user:pass@host/db) or use a local file path") from None


def _rdb_storage(url: str) -> RDBStorage:
    return RDBStorage(
        url,
        engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else
        {"connect_args": {"timeout": 60}},  # several local workers: wait on the file lock, don't fail
        heartbeat_interval=HEARTBEAT_S,
        grace_period=GRACE_S,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
    )


# What a trial's numbers depend on besides params: the libraries that compute and sample them...
RESULT_LIBRARIES = ("torch", "numpy", "optuna", "scipy", "schedulefree")


def code_digest() -> str:
    """...and the training code: a digest of the modules a trial runs through."""
    from lrsched import data, model, optim, registry, schedules, torch_adapter, trainer

    text = "".join(inspect.getsource(m) for m in (data, model, optim, registry, schedules, torch_adapter, trainer))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def library_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in RESULT_LIBRARIES}


def study_name(cfg: Config, schedule: str) -> str:
    """``<schedule>-<digest>`` of the space and of everything else a trial's score depends on.

    ``n_trials`` is left out (raising it resumes the study), and so is the storage.
    """
    t = cfg.train
    settings = {
        "space": cfg.tune.space[schedule],
        "schedule": cfg.schedules[schedule].as_dict(),
        "train": {"epochs": t.epochs, "batch_size": t.batch_size, "momentum": t.momentum,
                  "weight_decay": t.weight_decay, "channels_last": t.channels_last},
        "tune": {"pruner": cfg.tune.pruner, "sampler_seed": cfg.tune.sampler_seed, "val_size": cfg.tune.val_size,
                 "split_seed": cfg.tune.split_seed, "trial_seed": cfg.tune.trial_seed, "fixed": cfg.tune.fixed},
        "data": {"limit_train": cfg.data.limit_train},
        "code": code_digest(),
        "libraries": library_versions(),
    }
    return f"{schedule}-{space_digest(settings)}"


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        # only COMPLETE trials are compared with, which keeps batches deterministic
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def open_study(cfg: Config, schedule: str) -> optuna.Study:
    """The schedule's study in ``tune.storage`` (created if new): opened once per process."""
    return load_study(cfg, schedule, open_storage(cfg.tune.storage))


def load_study(cfg: Config, schedule: str, storage: RDBStorage) -> optuna.Study:
    if schedule not in cfg.tune.space:
        raise ConfigError(f"--schedule {schedule!r}: no search space; add tune.space.{schedule} to params.yaml "
                          f"(tunable: {', '.join(cfg.tune.space)})")
    study = optuna.create_study(
        study_name=study_name(cfg, schedule), storage=storage, load_if_exists=True, direction="maximize",
        # multivariate: the best LR depends on weight decay; constant liar: a batch's trials differ
        sampler=optuna.samplers.TPESampler(seed=cfg.tune.sampler_seed, n_startup_trials=4, multivariate=True,
                                           constant_liar=True),
        pruner=make_pruner(cfg.tune.pruner),
    )
    if study.metric_names is None:
        study.set_metric_names([OBJECTIVE])  # optuna-dashboard shows "val_acc", not "Objective 0"
    return study


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, dist in space.items():
        if dist["type"] == "categorical":
            values[key] = trial.suggest_categorical(key, dist["choices"])
        elif dist["type"] == "int":
            values[key] = trial.suggest_int(key, dist["low"], dist["high"], step=dist.get("step", 1),
                                            log=dist.get("log", False))
        else:
            values[key] = trial.suggest_float(key, dist["low"], dist["high"], step=dist.get("step"),
                                              log=dist.get("log", False))
    return values


def default_params(cfg: Config, schedule: str) -> dict[str, Any]:
    """The schedule's params.yaml values for the keys of its space that lie inside it."""
    spec = cfg.schedules[schedule]
    current = {**spec.as_dict(), "warmup": spec.warmup, "warmup_begin_lr": spec.warmup_begin_lr,
               "momentum": cfg.train.momentum if spec.momentum is None else spec.momentum,
               "weight_decay": cfg.train.weight_decay if spec.weight_decay is None else spec.weight_decay}
    out = {}
    for key, dist in cfg.tune.space[schedule].items():
        value = current.get(key)
        if value is None:
            continue
        if dist["type"] == "categorical":
            inside = value in dist["choices"]
        else:
            inside = dist["low"] <= value <= dist["high"]
        if inside:
            out[key] = value
    return out


class _Pruning(Callback):
    def __init__(self, trial: optuna.Trial, epochs: int, chance_below: float):
        self.trial, self.epochs, self.chance_below = trial, epochs, chance_below

    epochs_run = 0  # epochs finished: what a pruned trial cost

    def on_epoch_end(self, record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        self.epochs_run = epoch
        self.trial.report(record["val_acc"], epoch)
        if DEAD_AFTER <= epoch < self.epochs and record["val_acc"] < self.chance_below:
            # a net at chance this late has dead ReLUs and never recovers: stop even before the
            # pruner has its startup trials, instead of training it to the end
            raise optuna.TrialPruned(f"did not learn: val_acc {record['val_acc']:.4f} after epoch {epoch}")
        if epoch < self.epochs and self.trial.should_prune():  # a trial that has run every epoch is complete
            raise optuna.TrialPruned(f"pruned after epoch {int(record['epoch'])}: val_acc {record['val_acc']:.4f}")


@contextlib.contextmanager
def _heartbeat(storage: RDBStorage, trial_id: int) -> Iterator[None]:
    """Tell other workers this trial is alive, so only a dead process's trial goes stale."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial_id)
            stop.wait(HEARTBEAT_S)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class Outcome:
    """How one trial ended, handed back from a worker process."""

    state: str                 # COMPLETE | PRUNED | FAIL
    value: float | None = None
    message: str = ""
    image_epochs: int = 0      # what the trial trained (the study's compute budget counts it)


@dataclass
class TrialData:
    """A worker's split of the training set and its connection to the study."""

    train: Split
    val: Split
    cfg: Config
    study: optuna.Study | None = None
    storage: RDBStorage | None = None


def trial_data(cfg: Config) -> TrialData:
    data = load_datasets(cfg)
    train, val = train_val_split(data.train, cfg.tune.val_size, cfg.tune.split_seed)
    return TrialData(train, val, cfg)


def with_params(cfg: Config, schedule: str, params: dict[str, Any]) -> Config:
    """``cfg`` with ``tune.fixed`` and ``params`` merged into ``schedules.<schedule>`` (validated)."""
    raw = {**cfg.schedules[schedule].as_dict(), **cfg.tune.fixed, **params}
    return replace(cfg, schedules={**cfg.schedules, schedule: parse_spec(schedule, raw)})


def train_trial(data: TrialData, schedule: str, trial: optuna.Trial, params: dict[str, Any], tracker: Tracker,
                parent: str | None) -> Outcome:
    """Train one trial's params for the real ``train.epochs``; pruned, diverged and invalid end it early."""
    cfg = data.cfg
    try:
        spec = with_params(cfg, schedule, params).schedules[schedule]
    except ConfigError as exc:  # e.g. a sampled warmup >= T
        return Outcome("FAIL", message=str(exc))
    run_params = {**{f"schedule.{k}": v for k, v in {**cfg.tune.fixed, **params}.items()}, "trial": trial.number,
                  "seed": cfg.tune.trial_seed}
    tags = {"lrsched.schedule": schedule, "lrsched.role": "trial", "optuna.trial": str(trial.number)}
    pruning = _Pruning(trial, cfg.train.epochs, cfg.failure.chance_below)
    with tracker.run(f"{schedule}-trial-{trial.number}", run_params, tags, parent=parent) as logger:
        try:
            result = fit(plan_for(spec, len(data.train), cfg.train.batch_size), data.train, {"val": data.val},
                         cfg.tune.trial_seed, fit_options(cfg, spec, progress=False), callbacks=[logger, pruning])
        except optuna.TrialPruned as exc:
            logger.mark_pruned(str(exc))
            return Outcome("PRUNED", message=str(exc), image_epochs=len(data.train) * pruning.epochs_run)
        if result.diverged:
            logger.mark_diverged(result.message)
            return Outcome("FAIL", message=result.message, image_epochs=len(data.train) * (len(result.history) + 1))
    return Outcome("COMPLETE", value=result.final["val_acc"], image_epochs=len(data.train) * len(result.history))


@dataclass(frozen=True)
class TrialJob:
    """One asked trial, sent to a worker process."""

    schedule: str
    study_name: str
    trial_id: int
    params: dict[str, Any]
    tracker: Tracker
    parent: str | None
    number: int = -1

    @property
    def label(self) -> str:  # how a worker's error names this job
        return f"trial {self.number}"


def run_trial(data: TrialData, job: TrialJob) -> Outcome:
    """Worker side of a batch: report epochs to the shared storage, return how the trial ended."""
    if data.storage is None:
        data.storage = open_storage(data.cfg.tune.storage)
    if data.study is None or data.study.study_name != job.study_name:
        data.study = optuna.load_study(study_name=job.study_name, storage=data.storage,
                                       pruner=make_pruner(data.cfg.tune.pruner))
    trial = optuna.Trial(data.study, job.trial_id)
    with _heartbeat(data.storage, job.trial_id):
        return train_trial(data, job.schedule, trial, job.params, job.tracker, job.parent)


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Trials that use up the budget: all but those failed for a dead worker (they are retried)
    and the surplus ones that concurrent workers started after the budget was full."""
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON, SURPLUS) == SURPLUS)


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    trial.set_user_attr(IMAGE_EPOCHS, outcome.image_epochs)
    if outcome.state == "COMPLETE":
        study.tell(trial, outcome.value)
    elif outcome.state == "PRUNED":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_user_attr(FAIL_REASON, outcome.message)
        study.tell(trial, state=TrialState.FAIL)
    frozen = study.get_trials(deepcopy=False)[trial.number]
    log.info("%s trial %d: %s %s %s", study.study_name, trial.number, frozen.state.name,
             "" if frozen.value is None else f"val_acc={frozen.value:.4f}", outcome.message[:120])


def run_study(cfg: Config, schedule: str, tracker: Tracker, parent: str | None = None,
              n_trials: int | None = None, study: optuna.Study | None = None) -> optuna.Study:
    """Run the study until it holds ``n_trials`` counted trials, ``train.workers`` trials per batch.

    Resumes a stored study; the first trial of a new one is the params.yaml configuration.
    """
    n_trials = n_trials or cfg.tune.n_trials
    study = study or open_study(cfg, schedule)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(default_params(cfg, schedule), user_attrs={"lrsched.default": True})
    check_inputs(cfg, val_size=True)  # a bad device, data file or split size: one line, before any worker
    workers = worker_count(cfg.train.workers, n_trials)
    with Workers(workers, trial_data, (cfg,), on_death=getattr(tracker, "end_runs_of", None)) as pool:
        return _run_batches(study, cfg, schedule, tracker, parent, n_trials, pool)


def _run_batches(study: optuna.Study, cfg: Config, schedule: str, tracker: Tracker, parent: str | None,
                 n_trials: int, pool: Workers) -> optuna.Study:
    while True:
        fail_stale_trials(study)  # a dead process's trial -> FAIL, and a WAITING retry is enqueued
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        left = n_trials - sum(counted(t) for t in trials if t.state != TrialState.WAITING)
        if left <= 0:
            if not running:
                return study
            time.sleep(HEARTBEAT_S)  # another worker's trial, or a dead one about to go stale
            continue
        batch = [study.ask() for _ in range(min(pool.n, left))]
        params = [suggest(trial, cfg.tune.space[schedule]) for trial in batch]
        jobs = [TrialJob(schedule, study.study_name, t._trial_id, p, tracker, parent, t.number)  # noqa: SLF001
                for t, p in zip(batch, params)]
        try:
            outcomes = pool.map(run_trial, jobs)
        except BaseException:
            for trial in batch:  # interrupted, or a worker died: these trials did not finish
                with contextlib.suppress(Exception):
                    study.tell(trial, state=TrialState.FAIL)
                    # not counted (no fail_reason); a rerun tries the same params first (the params.yaml one too)
                    study.enqueue_trial(trial.params, user_attrs=trial.user_attrs)
            raise
        for trial, outcome in zip(batch, outcomes):
            _tell(study, trial, outcome)


def run_worker(cfg: Config, schedule: str, tracker: Tracker, n_trials: int | None = None,
               study: optuna.Study | None = None) -> optuna.Study:
    """An extra worker for a study run elsewhere (``--worker``): Optuna's asynchronous loop.

    The budget is for the whole study, so N workers (processes or machines)
    running this together share it; trials started after it is full stop at once.
    """
    n_trials = n_trials or cfg.tune.n_trials
    study = study or open_study(cfg, schedule)
    data = trial_data(cfg)

    def objective(trial: optuna.Trial) -> float:
        # Workers that check the budget at the same moment may each start a trial; trial
        # numbers are unique and ordered, so the first n_trials counted ones run, the rest stop.
        earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and counted(t)]
        if len(earlier) >= n_trials:
            trial.set_user_attr(FAIL_REASON, SURPLUS)
            raise SurplusTrial(SURPLUS)
        outcome = train_trial(data, schedule, trial, suggest(trial, cfg.tune.space[schedule]), tracker, None)
        trial.set_user_attr(IMAGE_EPOCHS, outcome.image_epochs)
        if outcome.state == "PRUNED":
            raise optuna.TrialPruned(outcome.message)
        if outcome.state == "FAIL":
            trial.set_user_attr(FAIL_REASON, outcome.message)
            raise FailedTrial(outcome.message)
        return outcome.value

    while True:
        fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if waiting or sum(map(counted, trials)) < n_trials:
            study.optimize(objective, n_trials=1, catch=(LrschedError,))
            last = study.get_trials(deepcopy=False)[-1]
            log.info("%s trial %d: %s %s", schedule, last.number, last.state.name,
                     "" if last.value is None else f"val_acc={last.value:.4f}")
        elif any(t.state == TrialState.RUNNING for t in trials):
            time.sleep(HEARTBEAT_S)
        else:
            return study


class FailedTrial(LrschedError):
    """A trial diverged or its params were invalid: failed with its reason, the study goes on."""


class SurplusTrial(LrschedError):
    """A trial started after the study's budget was full: failed at once, not counted."""


@dataclass
class TuneOutcome:
    study: optuna.Study
    summary: dict[str, Any]
    params: dict[str, Any]   # the best trial's params with tune.fixed: what the compare stage trains


def tune_schedule(cfg: Config, name: str, tracker: Tracker, plots: Path,
                  study: optuna.Study | None = None) -> TuneOutcome:
    """Tune ``name`` and plot the study into ``plots``; the test set is not touched here.

    The best params are evaluated later, on the paired evaluation seeds, by the compare stage.
    In MLflow: a parent run ``<name>-study`` with one nested run per trial.
    """
    study = study or open_study(cfg, name)  # fails fast: bad URL, no space for this schedule
    settings = {f"tune.{k}": v for k, v in vars(cfg.tune).items() if k not in ("space", "fixed")}
    settings.update({f"space.{k}": v for k, v in cfg.tune.space[name].items()})
    settings.update({f"fixed.{k}": v for k, v in cfg.tune.fixed.items()})
    with tracker.run(f"{name}-study", settings, {"lrsched.role": "study"}) as parent:
        log.info("tuning %s: study %s, %d trials, %d at a time", name, study_name(cfg, name), cfg.tune.n_trials,
                 worker_count(cfg.train.workers, cfg.tune.n_trials))
        study = run_study(cfg, name, tracker, parent.run_id, study=study)
        params = {**cfg.tune.fixed, **best_params(study)}
        summary = {**summarize_study(study, cfg.tune.storage), "params": params}
        log.info("%s: best val_acc %.4f with %s", name, summary["best_value"], params)
        plot_study(study, plots)
        parent.log_artifacts(plots)
        parent.log_metrics({"best_val_acc": summary["best_value"], "trials": summary["trials"],
                            "pruned": summary["pruned"], "failed": summary["failed"],
                            "run_equivalents": summary["image_epochs"] / RUN_EQUIVALENT})
    return TuneOutcome(study, summary, params)


def summarize_study(study: optuna.Study, storage: str) -> dict[str, Any]:
    everything = study.get_trials(deepcopy=False)
    trials = [t for t in everything if t.user_attrs.get(FAIL_REASON) != SURPLUS]
    count = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    out: dict[str, Any] = {
        "study": study.study_name,
        "storage": mask_password(storage),
        "trials": len(trials),
        "complete": count[TrialState.COMPLETE],
        "pruned": count[TrialState.PRUNED],
        "failed": count[TrialState.FAIL],
        "surplus": len(everything) - len(trials),  # started by a racing worker, stopped at once
        "image_epochs": sum(int(t.user_attrs.get(IMAGE_EPOCHS, 0)) for t in everything),
    }
    if count[TrialState.COMPLETE]:
        best = study.best_trial
        out.update(best_value=best.value, best_trial=best.number, best_params=best.params)
    return out


def plot_study(study: optuna.Study, folder: Path) -> list[Path]:
    """Optuna's own matplotlib plots: optimization history, parameter importances, slices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis

    from lrsched.io import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    plots = {"history": vis.plot_optimization_history, "slice": vis.plot_slice}
    if len(complete) >= 2 and len(study.best_params) >= 1:
        plots["importances"] = vis.plot_param_importances
    for name, fn in plots.items():
        try:
            ax = fn(study)
        except (ValueError, RuntimeError) as exc:  # e.g. too few trials for importances
            log.warning("%s plot skipped: %s", name, exc)
            continue
        fig = ax.flatten()[0].figure if hasattr(ax, "flatten") else ax.figure
        fig.set_size_inches(max(fig.get_size_inches()[0], 7), 4.5)
        fig.suptitle(f"{study.study_name}: {name}", y=1.02)
        with atomic_path(folder / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        made.append(folder / f"{name}.png")
    return made


def best_params(study: optuna.Study) -> dict[str, Any]:
    try:
        return dict(study.best_params)
    except ValueError:
        raise LrschedError(f"study {study.study_name}: no trial completed (all pruned or failed); "
                           "widen tune.space or raise tune.n_trials") from None
