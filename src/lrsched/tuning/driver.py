"""The one trial loop: ask a batch, train it on worker processes, tell the outcomes; until the budget is spent.

* The stage runs batches of ``tune.batch`` trials on ``train.workers`` processes: each
  batch is asked for, trained, then told in trial order, and the median pruner only
  compares with completed trials. The study is therefore the same, trial for trial, on
  every run and with any number of processes.
* ``--worker`` runs the same loop one trial at a time in its own process, beside other
  workers (processes or machines) on a shared storage; such studies are not
  reproducible trial for trial. Heartbeats fail a dead worker's trial, and its params
  are asked again.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from typing import Callable

from optuna.storages import fail_stale_trials
from optuna.trial import TrialState

import optuna
from lrsched.config import Config
from lrsched.core.callbacks import Tracker
from lrsched.core.parallel import Workers, worker_count
from lrsched.training.setup import check_inputs
from lrsched.tuning.storage import HEARTBEAT_S, open_storage
from lrsched.tuning.study import default_params, open_study, suggest
from lrsched.tuning.trials import Outcome, TrialJob, heartbeat, run_trial, trial_data, trial_id

log = logging.getLogger(__name__)
# Batches use ask/tell; the process that asks a batch writes its trials' heartbeats (_loop).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
FAIL_REASON = "fail_reason"  # user attr of trials *we* failed (diverged, invalid combination)
SURPLUS = "surplus: the study already had its trials when this one started"
IMAGE_EPOCHS = "image_epochs"  # user attr: training images x epochs a trial ran


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Trials that use up the budget: all but those failed for a dead worker (they are retried)
    and the surplus ones that concurrent workers started after the budget was full."""
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON, SURPLUS) == SURPLUS)


def tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """The one place an outcome becomes a trial state."""
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
    """Run the study until it holds ``n_trials`` counted trials, ``tune.batch`` trials per batch.

    Resumes a stored study; the first trial of a new one is the params.yaml configuration.
    """
    n_trials = n_trials or cfg.tune.n_trials
    study = study or open_study(cfg, schedule)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(default_params(cfg, schedule), user_attrs={"lrsched.default": True})
    return _drive(cfg, schedule, tracker, parent, n_trials, study, cfg.tune.batch,
                  worker_count(cfg.train.workers, min(cfg.tune.batch, n_trials)))


def run_worker(cfg: Config, schedule: str, tracker: Tracker, n_trials: int | None = None,
               study: optuna.Study | None = None) -> optuna.Study:
    """An extra worker for a study run elsewhere (``--worker``): one trial at a time, in this process.

    The budget is for the whole study, so N workers running this together share it;
    trials started after it is full stop at once, uncounted.
    """
    return _drive(cfg, schedule, tracker, None, n_trials or cfg.tune.n_trials, study or open_study(cfg, schedule),
                  batch=1, processes=1)


def _drive(cfg: Config, schedule: str, tracker: Tracker, parent: str | None, n_trials: int,
           study: optuna.Study, batch: int, processes: int) -> optuna.Study:
    check_inputs(cfg, val_size=True)  # a bad device, data file or split size: one line, before any worker
    with Workers(processes, trial_data, (cfg,), on_death=getattr(tracker, "end_runs_of", None)) as pool:
        def train(jobs: list[TrialJob]) -> list[Outcome]:
            return pool.map(run_trial, jobs)

        return _loop(study, cfg, schedule, tracker, parent, n_trials, batch, train)


def _loop(study: optuna.Study, cfg: Config, schedule: str, tracker: Tracker, parent: str | None, n_trials: int,
          batch_size: int, train: Callable[[list[TrialJob]], list[Outcome]]) -> optuna.Study:
    storage = open_storage(cfg.tune.storage)  # for heartbeats: the study's own storage is private
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
        batch = [study.ask() for _ in range(min(batch_size, left))]
        batch = [trial for trial in batch if not _surplus(study, trial, n_trials)]
        jobs = [TrialJob(schedule, study.study_name, t.number, suggest(t, cfg.tune.space[schedule]), tracker, parent)
                for t in batch]
        # This process beats for every asked trial until it is told: a batch larger than the
        # process count waits its turn, and a finished trial waits for its batch, without going stale.
        with heartbeat(storage, [trial_id(storage, study.study_name, t.number) for t in batch]):
            try:
                outcomes = train(jobs)
            except BaseException:
                for trial in batch:  # interrupted, or a worker died: these trials did not finish
                    with contextlib.suppress(Exception):
                        study.tell(trial, state=TrialState.FAIL)
                        # not counted (no fail_reason); a rerun tries the same params first (the params.yaml one too)
                        study.enqueue_trial(trial.params, user_attrs=trial.user_attrs)
                raise
            for trial, outcome in zip(batch, outcomes):
                tell(study, trial, outcome)


def _surplus(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Workers that check the budget at the same moment may each start a trial; trial numbers
    are unique and ordered, so the first ``n_trials`` counted ones run and a later one stops here."""
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and counted(t)]
    if len(earlier) < n_trials:
        return False
    trial.set_user_attr(FAIL_REASON, SURPLUS)
    study.tell(trial, state=TrialState.FAIL)
    return True
