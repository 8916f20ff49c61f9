"""Train one schedule over the paired seeds: one tracked run per seed, seeds in parallel processes.

The library function behind ``stages/train.py``, the tuned retrain of
``stages/tune.py`` and the MLflow ``main`` entry point.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from lrsched.callbacks import Tracker
from lrsched.config import Config, flatten
from lrsched.data import Split, check_split, data_checksum, load_split, raw_dir
from lrsched.device import resolve_device
from lrsched.errors import ConfigError
from lrsched.parallel import run_all, worker_count
from lrsched.pinning import configure_torch, environment
from lrsched.plots import plot_lr_curves, plot_training_curves
from lrsched.registry import ScheduleSpec, build_plan
from lrsched.schedules import Plan
from lrsched.results import SeedResult
from lrsched.trainer import FitOptions, fit

log = logging.getLogger(__name__)


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
    """Pin this process's threads, then put both splits on the training device."""
    configure_torch(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    train = load_split(cfg.data.root, train=True, limit=cfg.data.limit_train).to(device)
    test = load_split(cfg.data.root, train=False, limit=cfg.data.limit_test).to(device)
    log.debug("data: %d train / %d test images on %s", len(train), len(test), device)
    return Datasets(train, test, device)


def check_inputs(cfg: Config, val_size: bool = False) -> None:
    """What a worker's setup would fail on, checked once here before any worker starts:
    the device, the data files, and (for tuning, ``val_size``) the validation split's size."""
    resolve_device(cfg.train.device)
    n_train = check_split(cfg.data.root, train=True)
    check_split(cfg.data.root, train=False)
    n_train = min(n_train, cfg.data.limit_train or n_train)
    if val_size and not 0 < cfg.tune.val_size < n_train:
        raise ConfigError(f"tune.val_size: must be between 1 and {n_train - 1} (the training images"
                          f"{' after data.limit_train' if cfg.data.limit_train else ''}), got {cfg.tune.val_size}")


def fit_options(cfg: Config, spec: ScheduleSpec, progress: bool = True, desc: str = "") -> FitOptions:
    t = cfg.train
    return FitOptions(epochs=t.epochs, batch_size=t.batch_size,
                      momentum=t.momentum if spec.momentum is None else spec.momentum,
                      weight_decay=t.weight_decay if spec.weight_decay is None else spec.weight_decay,
                      eval_batch_size=t.eval_batch_size, channels_last=t.channels_last, progress=progress,
                      desc=desc)


def plan_for(spec: ScheduleSpec, n_train: int, batch_size: int) -> Plan:
    return build_plan(spec, steps_per_epoch=math.ceil(n_train / batch_size))


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
