"""Train one schedule over the paired seeds: one tracked run per seed, seeds in parallel processes.

The library function behind ``stages/train.py``, the tuned retrain of
``stages/tune.py`` and the MLflow ``main`` entry point.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from lrsched.config import Config, flatten
from lrsched.core.callbacks import Tracker
from lrsched.core.parallel import run_all, worker_count
from lrsched.core.pinning import environment
from lrsched.data import data_checksum, raw_dir
from lrsched.schedules.curves import Plan
from lrsched.schedules.registry import ScheduleSpec
from lrsched.training.figures import plot_lr_curves, plot_training_curves
from lrsched.training.results import SeedResult
from lrsched.training.setup import (
    Datasets,
    check_inputs,
    fit_options,
    get_schedule_spec,
    load_datasets,
    plan_for,
)
from lrsched.training.trainer import fit

log = logging.getLogger(__name__)


def run_params(cfg: Config, spec: ScheduleSpec, seed: int) -> dict[str, Any]:
    """Every resolved setting of one run, flattened for tracking."""
    resolved = {
        "schedule": {"name": spec.name, **spec.as_dict()},
        "train": {k: v for k, v in vars(cfg.train).items() if k != "seeds"},
        "data": {k: v for k, v in vars(cfg.data).items() if k != "checksums"},
        "seed": seed,
    }
    return flatten(resolved)


def run_environment(device: torch.device) -> dict[str, Any]:
    """The pins, threads, versions and device a result is computed with (this process's own)."""
    return {**environment(), "device": str(device)}


def write_run_artifacts(folder: Path, spec: ScheduleSpec, plan: Plan, result: SeedResult,
                        params: dict[str, Any], epochs: int, title: str) -> None:
    """The files one tracked run keeps: its LR curve, training curves, history, config, weights."""
    plot_lr_curves({spec.name: plan}, epochs, folder / "lr_curve.png",
                   title=f"{title}: learning rate")
    if result.history:
        plot_training_curves(result.history, folder / "training_curves.png", title)
    (folder / "history.json").write_text(json.dumps(result.history, indent=1))
    (folder / "config.yaml").write_text(yaml.safe_dump(params, sort_keys=True))
    torch.save(result.state_dict, folder / "model.pt")


@dataclass(frozen=True)
class SeedJob:
    """One (schedule, seed) training: everything a worker process needs, picklable."""

    cfg: Config
    name: str
    seed: int
    tracker: Tracker
    tags: dict[str, str]
    run_name: str
    parent: str | None
    progress: bool

    @property
    def label(self) -> str:  # how a worker's error names this job
        return f"{self.name} seed {self.seed}"


def train_seed(data: Datasets, job: SeedJob) -> SeedResult:
    """Train ``job.name`` with one seed as one tracked run."""
    cfg, name, seed = job.cfg, job.name, job.seed
    spec = get_schedule_spec(cfg, name)
    plan = plan_for(spec, len(data.train), cfg.train.batch_size)
    params = run_params(cfg, spec, seed)
    env = run_environment(data.device)
    tags = {**job.tags, **{f"lrsched.env.{k}": str(v) for k, v in env.items()}, "lrsched.schedule": name,
            "lrsched.seed": str(seed)}
    desc = f"{name} seed {seed} "
    with job.tracker.run(job.run_name, params, tags, parent=job.parent) as logger:
        fitted = fit(plan, data.train, {"test": data.test}, seed,
                     fit_options(cfg, spec, progress=job.progress, desc=desc), callbacks=[logger])
        result = SeedResult.from_fit(seed, fitted, env)
        result.image_epochs = len(data.train) * (len(fitted.history) + int(fitted.diverged))  # a diverged epoch cost too
        digest, raw = tags.get("lrsched.data_md5", ""), str(raw_dir(cfg.data.root))
        for split, context, limit in (("train", "training", cfg.data.limit_train),
                                      ("test", "evaluation", cfg.data.limit_test)):
            logger.log_dataset(f"fashion-mnist-{split}" + (f"[:{limit}]" if limit else ""), digest, raw, context)
        if result.diverged:
            log.error("%s (seed %d): %s", name, seed, result.message)
            logger.mark_diverged(result.message)
        else:
            result.model_uri = logger.log_model(fitted.model, data.test.x[:2].cpu())
        with tempfile.TemporaryDirectory() as tmp:
            write_run_artifacts(Path(tmp), spec, plan, result, params, cfg.train.epochs, f"{name} (seed {seed})")
            logger.log_artifacts(Path(tmp))
    if not result.diverged:
        log.info("%s seed %d: test_acc %.4f in %.1fs", name, seed, result.final["test_acc"], result.seconds)
    return result


def train_schedule(cfg: Config, name: str, tracker: Tracker, tags: dict[str, str], progress: bool = True,
                   run_name: str | None = None, parent: str | None = None) -> list[SeedResult]:
    """Train ``name`` once per seed in ``train.seeds``, ``train.workers`` processes at a time."""
    get_schedule_spec(cfg, name)
    check_inputs(cfg)
    tags = {"lrsched.data_md5": data_checksum(cfg.data.root), **tags}
    parallel = worker_count(cfg.train.workers, len(cfg.train.seeds)) > 1
    jobs = [SeedJob(cfg, name, seed, tracker, tags, run_name or name, parent, progress and not parallel)
            for seed in cfg.train.seeds]
    return run_all(train_seed, jobs, cfg.train.workers, setup=load_datasets, setup_args=(cfg,),
                   desc=f"{run_name or name}: seeds" if progress else "",
                   on_death=getattr(tracker, "end_runs_of", None))  # the runs of a worker that died
