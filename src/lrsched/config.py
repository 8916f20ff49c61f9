"""params.yaml -> typed, validated configuration.

``params.yaml`` is the single source of configuration. Every section is loaded
into a frozen dataclass; an unknown key is an error naming the key, never
silently ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from lrsched.core.errors import ConfigError
from lrsched.schedules.registry import ScheduleSpec, parse_spec
from lrsched.schedules.search_space import check_spaces


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats: PyYAML alone reads ``1e-3`` as a string; DVC (ruamel) reads a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789"),
)


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


OFFICIAL_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class DataConfig:
    root: str = "data"                      # torchvision layout: <root>/FashionMNIST/raw/
    sources: tuple[str, ...] = (DEBIAN_DIR, OFFICIAL_MIRROR)
    checksums: dict[str, str] | None = None  # md5 of the decompressed files; None = FashionMNIST's
    limit_train: int = 0                     # 0 = all; >0 keeps the first N (quick experiments)
    limit_test: int = 0


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    seeds: tuple[int, ...] = (0, 1, 2, 3)  # paired: seed s gives every schedule the same init and data order
    device: str = "auto"          # auto | cpu | cuda | cuda:N | mps
    threads: int = 1              # CPU threads per training process; 1 makes CPU numbers portable
    workers: int = 4              # training processes at once (seeds, tuning trials); 0 = one per core
    momentum: float = 0.0
    weight_decay: float = 0.0
    eval_batch_size: int = 2048
    channels_last: bool = True

    def optimizer_settings(self, spec: ScheduleSpec) -> dict[str, float]:
        """Momentum and weight decay of a run: the schedule's own where it sets them, else these."""
        return {"momentum": self.momentum if spec.momentum is None else spec.momentum,
                "weight_decay": self.weight_decay if spec.weight_decay is None else spec.weight_decay}


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = True
    experiment: str = "lrsched"


@dataclass(frozen=True)
class TuneConfig:
    n_trials: int = 10             # per schedule, in total across all workers (the same for every schedule)
    # trials asked together and told in order: the study is the same for any train.workers
    batch: int = 4
    pruner: str = "median"         # median | hyperband | none (median is deterministic with workers)
    sampler_seed: int = 0
    storage: str = "optuna/optuna.db"  # a SQLite file path, or any SQLAlchemy URL (postgresql://...)
    val_size: int = 10000
    split_seed: int = 0
    trial_seed: int = 1000         # init and data order of every trial: never an evaluation seed
    # optimizer settings every SGD trial trains with (the same for every schedule: a fair comparison)
    fixed: dict[str, Any] = field(default_factory=dict)
    # schedule -> hyperparameter -> distribution; a schedule without an entry gets one derived from
    # its type (lrsched.schedules.search_space.derived_space)
    space: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class FailureConfig:
    """What counts as a failed run, fixed before the study: counted, never averaged."""

    chance_below: float = 0.2      # accuracy under this is "at chance" (10 classes: chance is 0.1)
    by_epoch: int = 3              # still at chance (training accuracy) after this epoch: failed


@dataclass(frozen=True)
class CompareConfig:
    """The sequential, paired comparison of the tuned schedules (stage ``compare``)."""

    first_seeds: int = 3           # evaluation seeds 0..first_seeds-1 for every tuned schedule
    batch: int = 2                 # seeds added per look to each schedule still contending
    max_seeds: int = 7             # the cap: evaluation seeds are 0..max_seeds-1
    alpha: float = 0.05            # family-wise error over the pairs (Holm) and the looks (Bonferroni)
    margin: float = 0.005          # equivalence margin for TOST, in accuracy (0.005 = 0.5 points)
    power: float = 0.8             # for the "n needed" of an inconclusive pair


@dataclass(frozen=True)
class LrFindConfig:
    """The LR range test (Smith 2017): one short run with the LR raised exponentially."""

    start_lr: float = 1e-3
    end_lr: float = 10.0
    max_epochs: float = 1.0        # at most this much of an epoch
    smoothing: float = 0.9         # EMA of the loss (debiased); ~10 batches
    diverge_factor: float = 2.0    # stop when a batch's loss exceeds this times the smoothed minimum
    momentum: float = 0.0          # the article's plain SGD
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Config:
    data: DataConfig
    train: TrainConfig
    schedules: dict[str, ScheduleSpec]
    tracking: TrackingConfig
    tune: TuneConfig
    raw: dict[str, Any]  # the resolved mapping, for logging
    lr_find: LrFindConfig = LrFindConfig()
    failure: FailureConfig = FailureConfig()
    compare: CompareConfig = CompareConfig()


def _section(cls: type, where: str, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{where}.{key}: unknown key; valid: {', '.join(fields)}")
        default = fields[key].default if fields[key].default is not dataclasses.MISSING else fields[key].default_factory()
        kwargs[key] = _coerce(f"{where}.{key}", value, default)
    return cls(**kwargs)


def _coerce(where: str, value: Any, default: Any) -> Any:
    """Check ``value`` has the type of the field's default (None-able fields take anything sane)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number, got {value!r}")
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string, got {value!r}")
    elif isinstance(default, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: must be a list, got {value!r}")
        value = tuple(value)
    return value


def _check_train(t: TrainConfig) -> None:
    for key in ("epochs", "batch_size", "eval_batch_size"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key}: must be >= 1, got {getattr(t, key)}")
    if not t.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in t.seeds):
        raise ConfigError(f"train.seeds: must be a non-empty list of integers, got {list(t.seeds)!r}")
    if len(set(t.seeds)) != len(t.seeds):
        raise ConfigError(f"train.seeds: contains duplicates: {list(t.seeds)!r}")
    if t.threads < 0 or t.workers < 0 or t.momentum < 0 or t.weight_decay < 0:
        raise ConfigError("train.threads, train.workers, train.momentum and train.weight_decay must be >= 0")
    if not (t.device in ("auto", "cpu", "cuda", "mps") or t.device.startswith("cuda:")):
        raise ConfigError(f"train.device: must be auto, cpu, cuda, cuda:N or mps, got {t.device!r}")


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a copy of ``raw``."""
    raw = copy.deepcopy(raw)
    # `a=1;b=2` in one string: MLproject passes all overrides as one parameter
    items = [part.strip() for item in overrides for part in item.split(";") if part.strip()]
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. schedules.cosine.base_lr=0.3")
        try:
            value = yaml_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc.problem})") from None
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
        node[parts[-1]] = value
    return raw


def read_params(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run from the project root or pass --params PATH")
    try:
        raw = yaml_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: malformed YAML{at}: {getattr(exc, 'problem', exc)}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a YAML mapping of sections (data, train, schedules, ...)")
    return raw


SECTIONS = ("data", "train", "schedules", "tracking", "tune", "lr_find", "failure", "compare")


def parse_config(raw: dict[str, Any]) -> Config:
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(f"{key}: unknown section in params.yaml; valid: {', '.join(SECTIONS)}")
    data = _section(DataConfig, "data", raw.get("data"))
    for key in ("limit_train", "limit_test"):
        if getattr(data, key) < 0:
            raise ConfigError(f"data.{key}: must be >= 0 (0 = all images), got {getattr(data, key)}")
    train = _section(TrainConfig, "train", raw.get("train"))
    _check_train(train)
    scheds = raw.get("schedules")
    if not isinstance(scheds, dict) or not scheds:
        raise ConfigError("schedules: must be a non-empty mapping of name -> {type: ..., hyperparameters}")
    specs = {str(name): parse_spec(str(name), value) for name, value in scheds.items()}
    tracking = _section(TrackingConfig, "tracking", raw.get("tracking"))
    tune = _section(TuneConfig, "tune", raw.get("tune"))
    _check_tune(tune)
    check_spaces(tune.space, tune.fixed, specs)
    lr_find = _section(LrFindConfig, "lr_find", raw.get("lr_find"))
    _check_lr_find(lr_find)
    failure = _section(FailureConfig, "failure", raw.get("failure"))
    compare = _section(CompareConfig, "compare", raw.get("compare"))
    _check_failure(failure)
    _check_compare(compare, tune)
    return Config(data, train, specs, tracking, tune, raw, lr_find, failure, compare)


PRUNERS = ("median", "hyperband", "none")


def _check_tune(tune: TuneConfig) -> None:
    if tune.n_trials < 1:
        raise ConfigError(f"tune.n_trials: must be >= 1, got {tune.n_trials}")
    if tune.batch < 1:
        raise ConfigError(f"tune.batch: must be >= 1 (trials asked together), got {tune.batch}")
    if tune.pruner not in PRUNERS:
        raise ConfigError(f"tune.pruner: must be one of {', '.join(PRUNERS)}, got {tune.pruner!r}")
    if tune.val_size < 1:
        raise ConfigError(f"tune.val_size: must be >= 1, got {tune.val_size}")
    for key, value in tune.fixed.items():
        if key not in ("momentum", "weight_decay") or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"tune.fixed.{key}: only momentum and weight_decay (numbers) can be fixed, got {value!r}")


def _check_failure(f: FailureConfig) -> None:
    if not 0.1 < f.chance_below < 1:
        raise ConfigError(f"failure.chance_below: must be in (0.1, 1) (chance is 0.1), got {f.chance_below}")
    if f.by_epoch < 1:  # above train.epochs it never applies (short test runs): allowed
        raise ConfigError(f"failure.by_epoch: must be >= 1, got {f.by_epoch}")


def _check_compare(c: CompareConfig, tune: TuneConfig) -> None:
    if c.first_seeds < 2:
        raise ConfigError(f"compare.first_seeds: must be >= 2 (a paired test needs two seeds), got {c.first_seeds}")
    if c.batch < 1:
        raise ConfigError(f"compare.batch: must be >= 1, got {c.batch}")
    if c.max_seeds < c.first_seeds:
        raise ConfigError(f"compare.max_seeds: must be >= compare.first_seeds ({c.first_seeds}), got {c.max_seeds}")
    if not 0 < c.alpha < 0.5 or not 0 < c.power < 1:
        raise ConfigError(f"compare: need 0 < alpha < 0.5 and 0 < power < 1, got alpha={c.alpha}, power={c.power}")
    if not 0 < c.margin < 0.1:
        raise ConfigError(f"compare.margin: must be in (0, 0.1) (accuracy, 0.005 = half a point), got {c.margin}")
    if 0 <= tune.trial_seed < c.max_seeds:
        raise ConfigError(f"tune.trial_seed: {tune.trial_seed} is an evaluation seed (0..{c.max_seeds - 1}); "
                          f"use one >= compare.max_seeds, e.g. 1000, so tuning never sees what is compared")


def _check_lr_find(c: LrFindConfig) -> None:
    if not 0 < c.start_lr < c.end_lr:
        raise ConfigError(f"lr_find: need 0 < start_lr < end_lr, got start_lr={c.start_lr}, end_lr={c.end_lr}")
    if not 0 < c.max_epochs <= 1:
        raise ConfigError(f"lr_find.max_epochs: must be in (0, 1] (a range test is short), got {c.max_epochs}")
    if not 0 <= c.smoothing < 1:
        raise ConfigError(f"lr_find.smoothing: must be in [0, 1), got {c.smoothing}")
    if c.diverge_factor <= 1:
        raise ConfigError(f"lr_find.diverge_factor: must be > 1, got {c.diverge_factor}")
    if not 0 <= c.momentum < 1 or c.weight_decay < 0:
        raise ConfigError("lr_find.momentum must be in [0, 1) and lr_find.weight_decay >= 0")


def load_config(path: str | Path = "params.yaml", overrides: Iterable[str] = ()) -> Config:
    return parse_config(apply_overrides(read_params(path), overrides))


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}`` (lists kept as values)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
