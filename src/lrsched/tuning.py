"""Optuna: tune one schedule's hyperparameters. The only module of lrsched that imports optuna.

* The objective is validation accuracy on a seeded split of the training set;
  the test set is never used while tuning.
* Each trial trains ``tune.epochs`` epochs with the schedule's whole shape
  compressed into them (``TimeScaled``), so a 10-epoch cosine is seen to its
  end, not just its first few epochs.
* Storage: a SQLite file under the project by default (several local worker
  processes share it), or any SQLAlchemy URL such as PostgreSQL for workers on
  many machines. Heartbeats let a live worker fail a dead worker's trial and
  retry it, so no trial stays RUNNING forever.
* The study name carries a digest of the search space, so a changed space
  starts a new study instead of mixing results.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from lrsched.config import Config
from lrsched.data import Split, train_val_split
from lrsched.errors import ConfigError, LrschedError
from lrsched.registry import parse_spec
from lrsched.schedules import Schedule
from lrsched.search_space import space_digest
from lrsched.study import Datasets, Tracker, fit_options, schedule_for
from lrsched.trainer import Callback, fit

log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, mpl plots
HEARTBEAT_S = 5     # a live trial writes a heartbeat this often
GRACE_S = 20        # a trial silent this long is failed (and retried once) by another worker
FAIL_REASON = "fail_reason"  # user attr of trials *we* failed (diverged, invalid combination)
SURPLUS = "surplus: the study already had its trials when this one started"


class StorageError(LrschedError):
    """The Optuna storage URL is invalid or unreachable."""


@dataclass(frozen=True)
class TimeScaled(Schedule):
    """``inner`` with time stretched by ``factor``: a long schedule's whole shape in fewer epochs."""

    inner: Any
    factor: float

    def __call__(self, t: float) -> float:
        return self.inner(t * self.factor)


def storage_url(storage: str) -> str:
    """A bare path means a SQLite file (created with its folder); URLs pass through."""
    if "://" in storage:
        return storage
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(storage).resolve()}"


def open_storage(storage: str) -> RDBStorage:
    url = storage_url(storage)
    try:
        return RDBStorage(
            url,
            engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else
            {"connect_args": {"timeout": 60}},  # several local workers: wait on the file lock, don't fail
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    except Exception as exc:  # sqlalchemy raises many kinds for a bad or unreachable URL
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"tune.storage={storage}: cannot open the Optuna storage ({first[:200]}); "
                           "fix the URL (e.g. postgresql://user:pass@host/db) or use a local file path") from None


def study_name(cfg: Config, schedule: str) -> str:
    return f"{schedule}-{space_digest(cfg.tune.space[schedule])}"


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def load_study(cfg: Config, schedule: str, storage: RDBStorage) -> optuna.Study:
    if schedule not in cfg.tune.space:
        raise ConfigError(f"--schedule {schedule!r}: no search space; add tune.space.{schedule} to params.yaml "
                          f"(tunable: {', '.join(cfg.tune.space)})")
    return optuna.create_study(
        study_name=study_name(cfg, schedule), storage=storage, load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.tune.sampler_seed, n_startup_trials=4),
        pruner=make_pruner(cfg.tune.pruner),
    )


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


def with_params(cfg: Config, schedule: str, params: dict[str, Any]) -> Config:
    """``cfg`` with ``params`` merged into ``schedules.<schedule>`` (validated like params.yaml)."""
    raw = {**cfg.schedules[schedule].as_dict(), **params}
    return replace(cfg, schedules={**cfg.schedules, schedule: parse_spec(schedule, raw)})


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Trials that use up the budget: all but those failed for a dead worker (they are retried)
    and the surplus ones that concurrent workers started after the budget was full."""
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON, SURPLUS) == SURPLUS)


class _Pruning(Callback):
    def __init__(self, trial: optuna.Trial):
        self.trial = trial

    def on_epoch_end(self, record: dict[str, float]) -> None:
        self.trial.report(record["val_acc"], int(record["epoch"]))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {int(record['epoch'])}: val_acc {record['val_acc']:.4f}")


def make_objective(cfg: Config, schedule: str, train: Split, val: Split, tracker: Tracker,
                   nested: bool, n_trials: int) -> Callable[[optuna.Trial], float]:
    epochs = cfg.tune.epochs

    def objective(trial: optuna.Trial) -> float:
        # Workers that check the budget at the same moment may each start a trial; trial
        # numbers are unique and ordered, so the first n_trials counted ones run, the rest stop.
        earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number and counted(t)]
        if len(earlier) >= n_trials:
            trial.set_user_attr(FAIL_REASON, SURPLUS)
            raise SurplusTrial(SURPLUS)
        params = suggest(trial, cfg.tune.space[schedule])
        try:
            spec = with_params(cfg, schedule, params).schedules[schedule]
        except ConfigError as exc:  # e.g. a sampled warmup >= T
            trial.set_user_attr(FAIL_REASON, str(exc))
            raise
        # The schedule's whole train.epochs-long shape, compressed into this trial's epochs, per step.
        scaled = TimeScaled(schedule_for(spec, len(train), cfg.train.batch_size), cfg.train.epochs / epochs)
        spec = replace(spec, interval="step")
        run_params = {**{f"schedule.{k}": v for k, v in params.items()}, "trial": trial.number, "epochs": epochs}
        tags = {"lrsched.schedule": schedule, "lrsched.role": "trial", "optuna.trial": str(trial.number)}
        pruned: optuna.TrialPruned | None = None
        with tracker.run(f"{schedule}-trial-{trial.number}", run_params, tags, nested=nested) as logger:
            try:
                result = fit(scaled, train, {"val": val}, cfg.train.seeds[0],
                             fit_options(cfg, spec, epochs=epochs, progress=False),
                             callbacks=[logger, _Pruning(trial)])
            except optuna.TrialPruned as exc:
                pruned = exc
                logger.mark_pruned(str(exc))
            else:
                if result.diverged:
                    logger.mark_diverged(result.message)
        if pruned is not None:
            raise pruned
        if result.diverged:
            trial.set_user_attr(FAIL_REASON, result.message)
            raise DivergedTrial(result.message)
        return result.final["val_acc"]

    return objective


class DivergedTrial(LrschedError):
    """A trial's loss went non-finite: failed with its reason, the study goes on."""


class SurplusTrial(LrschedError):
    """A trial started after the study's budget was full: failed at once, not counted."""


def run_worker(cfg: Config, schedule: str, data: Datasets, tracker: Tracker, nested: bool,
               n_trials: int | None = None) -> optuna.Study:
    """Run trials until the study holds ``n_trials`` counted trials and none is left running.

    The budget is for the whole study, so re-running resumes it, and N workers
    (processes or machines) running this together share the budget.
    """
    n_trials = n_trials or cfg.tune.n_trials
    storage = open_storage(cfg.tune.storage)
    study = load_study(cfg, schedule, storage)
    train, val = train_val_split(data.train, cfg.tune.val_size, cfg.tune.split_seed)
    objective = make_objective(cfg, schedule, train, val, tracker, nested, n_trials)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while True:
        fail_stale_trials(study)  # a dead worker's trial -> FAIL, and a WAITING retry is enqueued
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if waiting or sum(map(counted, trials)) < n_trials:
            study.optimize(objective, n_trials=1, catch=(LrschedError,))
            last = study.get_trials(deepcopy=False)[-1]
            log.info("%s trial %d: %s %s", schedule, last.number, last.state.name,
                     "" if last.value is None else f"val_acc={last.value:.4f}")
        elif any(t.state == TrialState.RUNNING for t in trials):
            time.sleep(HEARTBEAT_S)  # another worker's trial, or a dead one about to go stale
        else:
            return study


def summarize_study(study: optuna.Study, storage: str) -> dict[str, Any]:
    everything = study.get_trials(deepcopy=False)
    trials = [t for t in everything if t.user_attrs.get(FAIL_REASON) != SURPLUS]
    count = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    out: dict[str, Any] = {
        "study": study.study_name,
        "storage": storage if "://" not in storage or "@" not in storage else storage.split("@")[-1],
        "trials": len(trials),
        "complete": count[TrialState.COMPLETE],
        "pruned": count[TrialState.PRUNED],
        "failed": count[TrialState.FAIL],
        "surplus": len(everything) - len(trials),  # started by a racing worker, stopped at once
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
