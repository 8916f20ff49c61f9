"""A study's identity, sampler and pruner, and how a trial's params are drawn from a space.

The study name carries a digest of everything a trial's result depends on (the space,
the settings, the training code and the library versions), so a changed space, setting
or trainer starts a new study instead of resuming a stale one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import warnings
from typing import Any

from optuna.storages import RDBStorage

import optuna
from lrsched.config import Config
from lrsched.core.errors import ConfigError
from lrsched.schedules.search_space import space_digest
from lrsched.tuning.storage import open_storage

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, mpl plots
optuna.logging.set_verbosity(optuna.logging.WARNING)
OBJECTIVE = "val_acc"

# What a trial's numbers depend on besides params: the libraries that compute and sample them...
RESULT_LIBRARIES = ("torch", "numpy", "optuna", "scipy", "schedulefree")
# ...and the code a trial runs through (module names under lrsched)
TRIAL_CODE = ("data", "schedules.curves", "schedules.optim", "schedules.registry", "schedules.torch_adapter",
              "training.model", "training.trainer", "training.setup")


def code_digest() -> str:
    text = "".join(inspect.getsource(importlib.import_module(f"lrsched.{name}")) for name in TRIAL_CODE)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def library_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in RESULT_LIBRARIES}


def study_name(cfg: Config, schedule: str) -> str:
    """``<schedule>-<digest>`` of the space and of everything else a trial's score depends on.

    ``n_trials`` is left out (raising it resumes the study), and so are the storage and
    the number of worker processes (a batch's size is ``tune.batch``, whatever runs it).
    """
    t = cfg.train
    settings = {
        "space": cfg.tune.space[schedule],
        "schedule": cfg.schedules[schedule].as_dict(),
        "train": {"epochs": t.epochs, "batch_size": t.batch_size, "momentum": t.momentum,
                  "weight_decay": t.weight_decay, "channels_last": t.channels_last},
        "tune": {"pruner": cfg.tune.pruner, "sampler_seed": cfg.tune.sampler_seed, "val_size": cfg.tune.val_size,
                 "split_seed": cfg.tune.split_seed, "trial_seed": cfg.tune.trial_seed, "fixed": cfg.tune.fixed,
                 "batch": cfg.tune.batch},
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
               **cfg.train.optimizer_settings(spec)}
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
