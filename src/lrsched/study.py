"""Train one schedule (once per seed) and report through a tracker.

This is the library function behind ``stages/train.py`` and the MLflow
``main`` entry point: it knows the config, the data and the trainer, and
hands each run to a :class:`Tracker` (MLflow, or nothing).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Iterator, Protocol

import torch
import yaml

from lrsched.config import Config, flatten
from lrsched.data import Split, load_split
from lrsched.device import resolve_device
from lrsched.errors import ConfigError
from lrsched.plots import plot_lr_curves, plot_training_curves
from lrsched.registry import AnySchedule, ScheduleSpec, build_schedule
from lrsched.trainer import Callback, FitOptions, FitResult, fit

log = logging.getLogger(__name__)


class RunLogger(Callback):
    """What a tracker hands back for one run: the trainer's callbacks plus artifact upload."""

    run_id: str | None = None

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Record run-level figures (e.g. a study's best value)."""

    def mark_pruned(self, message: str) -> None:
        """Record that the run (an Optuna trial) was stopped early by the pruner."""

    def log_artifacts(self, folder: Path) -> None:
        """Upload every file in ``folder``."""

    def mark_diverged(self, message: str) -> None:
        """Record that the run diverged (it is not a result)."""


class Tracker(Protocol):
    def run(self, name: str, params: dict[str, Any], tags: dict[str, str],
            nested: bool = False) -> ContextManager[RunLogger]: ...


class NullTracker:
    """Tracking switched off: nothing is imported or contacted."""

    @contextlib.contextmanager
    def run(self, name: str, params: dict[str, Any], tags: dict[str, str],
            nested: bool = False) -> Iterator[RunLogger]:
        yield RunLogger()


def get_schedule_spec(cfg: Config, name: str) -> ScheduleSpec:
    if name not in cfg.schedules:
        raise ConfigError(f"--schedule {name!r}: not in params.yaml schedules; valid: {', '.join(cfg.schedules)}")
    return cfg.schedules[name]


@dataclass
class Datasets:
    train: Split
    test: Split
    device: torch.device


def load_datasets(cfg: Config) -> Datasets:
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    train = load_split(cfg.data.root, train=True, limit=cfg.data.limit_train).to(device)
    test = load_split(cfg.data.root, train=False, limit=cfg.data.limit_test).to(device)
    log.info("data: %d train / %d test images on %s", len(train), len(test), device)
    return Datasets(train, test, device)


def fit_options(cfg: Config, spec: ScheduleSpec, epochs: int | None = None, progress: bool = True,
                desc: str = "") -> FitOptions:
    t = cfg.train
    return FitOptions(epochs=epochs or t.epochs, batch_size=t.batch_size, interval=spec.interval,
                      momentum=t.momentum, weight_decay=t.weight_decay, eval_batch_size=t.eval_batch_size,
                      channels_last=t.channels_last, progress=progress, desc=desc)


def schedule_for(spec: ScheduleSpec, n_train: int, batch_size: int) -> AnySchedule:
    return build_schedule(spec, steps_per_epoch=math.ceil(n_train / batch_size))


def run_params(cfg: Config, spec: ScheduleSpec, seed: int) -> dict[str, Any]:
    """Every resolved setting of one run, flattened for tracking."""
    resolved = {
        "schedule": {"name": spec.name, **spec.as_dict()},
        "train": {k: v for k, v in vars(cfg.train).items() if k != "seeds"},
        "data": {k: v for k, v in vars(cfg.data).items() if k != "checksums"},
        "seed": seed,
    }
    return flatten(resolved)


def write_run_artifacts(folder: Path, spec: ScheduleSpec, schedule: AnySchedule, result: FitResult,
                        params: dict[str, Any], epochs: int, title: str) -> None:
    """The files one tracked run keeps: its LR curve, training curves, history, config, weights."""
    plot_lr_curves({spec.name: schedule}, {spec.name: spec.interval}, epochs, folder / "lr_curve.png",
                   title=f"{title}: learning rate")
    if result.history:
        plot_training_curves(result.history, folder / "training_curves.png", title)
    (folder / "history.json").write_text(json.dumps(result.history, indent=1))
    (folder / "config.yaml").write_text(yaml.safe_dump(params, sort_keys=True))
    torch.save(result.model.state_dict(), folder / "model.pt")


def train_schedule(cfg: Config, name: str, tracker: Tracker, tags: dict[str, str], data: Datasets,
                   progress: bool = True, run_name: str | None = None, nested: bool = False) -> list[FitResult]:
    """Train ``name`` once per seed in ``train.seeds``; one tracked run each."""
    spec = get_schedule_spec(cfg, name)
    schedule = schedule_for(spec, len(data.train), cfg.train.batch_size)
    results = []
    for seed in cfg.train.seeds:
        desc = f"{name} seed {seed} " if len(cfg.train.seeds) > 1 else f"{name} "
        params = run_params(cfg, spec, seed)
        run_tags = {**tags, "lrsched.schedule": name, "lrsched.seed": str(seed)}
        with tracker.run(run_name or name, params, run_tags, nested=nested) as logger:
            result = fit(schedule, data.train, {"test": data.test}, seed,
                         fit_options(cfg, spec, progress=progress, desc=desc), callbacks=[logger])
            if result.diverged:
                log.error("%s (seed %d): %s", name, seed, result.message)
                logger.mark_diverged(result.message)
            with tempfile.TemporaryDirectory() as tmp:
                write_run_artifacts(Path(tmp), spec, schedule, result, params, cfg.train.epochs,
                                    f"{name} (seed {seed})")
                logger.log_artifacts(Path(tmp))
        if not result.diverged:
            log.info("%s seed %d: test_acc %.4f in %.1fs", name, seed, result.final["test_acc"], result.seconds)
        results.append(result)
    return results
