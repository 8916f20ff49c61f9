"""The tune stage's work: one schedule's study under a parent MLflow run, then its summary and plots.

The best params are evaluated later, on the paired evaluation seeds, by the compare stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from lrsched.config import Config
from lrsched.core.callbacks import Tracker
from lrsched.core.parallel import worker_count
from lrsched.training.results import RUN_EQUIVALENT
from lrsched.tuning.driver import run_study
from lrsched.tuning.study import open_study, study_name
from lrsched.tuning.summary import best_params, plot_study, summarize_study

log = logging.getLogger(__name__)


@dataclass
class TuneOutcome:
    study: optuna.Study
    summary: dict[str, Any]
    params: dict[str, Any]   # the best trial's params with tune.fixed: what the compare stage trains


def tune_schedule(cfg: Config, name: str, tracker: Tracker, plots: Path,
                  study: optuna.Study | None = None) -> TuneOutcome:
    """Tune ``name`` and plot the study into ``plots``; the test set is not touched here.

    In MLflow: a parent run ``<name>-study`` with one nested run per trial.
    """
    study = study or open_study(cfg, name)  # fails fast: bad URL, no space for this schedule
    settings = {f"tune.{k}": v for k, v in vars(cfg.tune).items() if k not in ("space", "fixed")}
    settings.update({f"space.{k}": v for k, v in cfg.tune.space[name].items()})
    settings.update({f"fixed.{k}": v for k, v in cfg.tune.fixed.items()})
    with tracker.run(f"{name}-study", settings, {"lrsched.role": "study"}) as parent:
        log.info("tuning %s: study %s, %d trials, batches of %d on %d processes", name, study_name(cfg, name),
                 cfg.tune.n_trials, cfg.tune.batch, worker_count(cfg.train.workers, cfg.tune.batch))
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
