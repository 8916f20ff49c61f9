"""From the study's config to what training needs: the data on its device, a plan, fit options.

Below both ``runs`` (the paired seeds) and ``tuning`` (trials): each configures a run the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import torch

from lrsched.config import Config
from lrsched.core.device import resolve_device
from lrsched.core.errors import ConfigError
from lrsched.core.heap import keep_freed_memory
from lrsched.core.pinning import configure_torch
from lrsched.data import Split, check_split, load_split, steps_per_epoch
from lrsched.schedules.curves import Plan
from lrsched.schedules.registry import ScheduleSpec, build_plan, parse_spec
from lrsched.training.trainer import FitOptions

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
    """Set this process up to train (its threads, its heap), then put both splits on the training device."""
    configure_torch(cfg.train.threads)
    keep_freed_memory()
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
    return FitOptions(epochs=t.epochs, batch_size=t.batch_size, **t.optimizer_settings(spec),
                      eval_batch_size=t.eval_batch_size, channels_last=t.channels_last, progress=progress,
                      desc=desc)


def plan_for(spec: ScheduleSpec, n_train: int, batch_size: int) -> Plan:
    return build_plan(spec, steps_per_epoch=steps_per_epoch(n_train, batch_size))


def with_params(cfg: Config, schedule: str, params: dict[str, Any]) -> Config:
    """``cfg`` with ``tune.fixed`` and ``params`` merged into ``schedules.<schedule>`` (validated)."""
    raw = {**cfg.schedules[schedule].as_dict(), **cfg.tune.fixed, **params}
    return replace(cfg, schedules={**cfg.schedules, schedule: parse_spec(schedule, raw)})
