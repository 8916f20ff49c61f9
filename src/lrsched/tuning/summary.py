"""What a finished study says: trial counts, compute spent, the best params, Optuna's plots."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

import optuna
from lrsched.core.errors import LrschedError
from lrsched.core.io import atomic_path
from lrsched.core.urls import mask_password
from lrsched.tuning.driver import FAIL_REASON, IMAGE_EPOCHS, SURPLUS

log = logging.getLogger(__name__)


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
