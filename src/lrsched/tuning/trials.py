"""One trial, trained in a worker process: its data, its pruning, and how it ended.

Every trial starts from ``tune.trial_seed``'s initial weights and data order (a seed the
final comparison never uses), trains for the real ``train.epochs`` with ``tune.fixed``,
and is scored by validation accuracy on a seeded split of the training set; the test
set is never used while tuning.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from optuna.storages import RDBStorage

import optuna
from lrsched.config import Config
from lrsched.core.callbacks import Callback, Tracker
from lrsched.core.errors import ConfigError
from lrsched.data import Split, train_val_split
from lrsched.training.setup import fit_options, load_datasets, plan_for, with_params
from lrsched.training.trainer import fit
from lrsched.tuning.storage import HEARTBEAT_S, open_storage
from lrsched.tuning.study import make_pruner

DEAD_AFTER = 2      # epochs after which a trial still at chance accuracy is stopped


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
            raise optuna.TrialPruned(f"pruned after epoch {epoch}: val_acc {record['val_acc']:.4f}")


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


@contextlib.contextmanager
def heartbeat(storage: RDBStorage, trial_ids: list[int]) -> Iterator[None]:
    """Tell other workers these trials are alive, so only a dead process's trial goes stale."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            for trial_id in trial_ids:
                storage.record_heartbeat(trial_id)
            stop.wait(HEARTBEAT_S)

    thread = threading.Thread(target=beat, name="trial-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def trial_id(storage: RDBStorage, study_name: str, number: int) -> int:
    """A trial's storage id from its study and number (the public route to it)."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)


@dataclass(frozen=True)
class TrialJob:
    """One asked trial, sent to a worker process."""

    schedule: str
    study_name: str
    number: int
    params: dict[str, Any]
    tracker: Tracker
    parent: str | None

    @property
    def label(self) -> str:  # how a worker's error names this job
        return f"trial {self.number}"


def run_trial(data: TrialData, job: TrialJob) -> Outcome:
    """Worker side: the asked trial, reporting its epochs to the shared storage."""
    if data.storage is None:
        data.storage = open_storage(data.cfg.tune.storage)
    if data.study is None or data.study.study_name != job.study_name:
        data.study = optuna.load_study(study_name=job.study_name, storage=data.storage,
                                       pruner=make_pruner(data.cfg.tune.pruner))
    # no heartbeat here: the process that asked the trial beats for it until it is told (driver._loop)
    this = trial_id(data.storage, job.study_name, job.number)
    return train_trial(data, job.schedule, optuna.Trial(data.study, this), job.params, job.tracker, job.parent)
