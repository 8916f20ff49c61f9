"""One registry from a ``schedules.<name>`` entry of params.yaml to a schedule.

Every type's keys are checked here, once: unknown keys, missing keys, negative
learning rates, warmup that does not fit in ``T`` and unsorted milestones fail
with a message naming the key.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from lrsched.core.errors import ConfigError
from lrsched.schedules import curves as S
from lrsched.schedules.optim import SGD, Optimizer, ScheduleFreeSGD
from lrsched.schedules.torch_adapter import build_torch_schedule, torch_scheduler_names

INTERVALS = ("epoch", "step")
# Keys every schedule accepts; the rest belong to its type. `momentum` and `weight_decay` are the
# SGD settings this schedule trains with (default: train.momentum / train.weight_decay), so a
# tuning space can search them together with the schedule.
OPTIMIZER_KEYS = ("momentum", "weight_decay")
COMMON_KEYS = {"type", "interval", "warmup", "warmup_begin_lr", "optimizer", *OPTIMIZER_KEYS}
WARMUP_KEYS = ("warmup", "warmup_begin_lr")
# `optimizer:` in params.yaml: the name each optimizer is spelt with there (and in tracking).
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "schedule_free_sgd": ScheduleFreeSGD}
SCHEDULE_FREE_MOMENTUM = 0.9  # schedulefree's default; it needs 0 < momentum < 1


def _noam(base_lr: float, warmup: float, warmup_begin_lr: float = 0.0) -> S.Schedule:
    """Linear warmup to ``base_lr`` then inverse-square-root decay (Vaswani et al.)."""
    return S.Warmup(S.InverseSqrt(base_lr, offset=warmup), warmup, warmup_begin_lr)


def _linear(base_lr: float, final_lr: float, T: float) -> S.Polynomial:
    """Straight line from ``base_lr`` at t=0 to ``final_lr`` at t=T, then flat."""
    return S.Polynomial(base_lr, T, final_lr, power=1.0)


def _multi_factor(base_lr: float, milestones: list[float], gamma: float = 0.1) -> S.MultiFactor:
    return S.MultiFactor(base_lr, tuple(milestones), gamma)


TYPES: dict[str, Callable[..., S.Schedule]] = {
    "constant": S.Constant,
    "square_root": S.SquareRoot,
    "factor": S.Factor,
    "exponential": S.Exponential,
    "multi_factor": _multi_factor,
    "cosine": S.Cosine,
    "linear": _linear,
    "polynomial": S.Polynomial,
    "noam": _noam,
    "one_cycle": S.one_cycle,
    "cosine_restarts": S.CosineRestarts,
    "plateau": S.Plateau,
    "wsd": S.wsd,
    "rex": S.Rex,
}


def optimizer_name(optimizer: Optimizer) -> str:
    """The params.yaml name of ``optimizer`` (as the figures label it)."""
    return next(name for name, cls in OPTIMIZERS.items() if type(optimizer) is cls)


@dataclass(frozen=True)
class ScheduleSpec:
    """A validated ``schedules.<name>`` entry."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    interval: str = "epoch"
    warmup: float = 0.0
    warmup_begin_lr: float = 0.0
    momentum: float | None = None       # None: train.momentum
    weight_decay: float | None = None   # None: train.weight_decay
    optimizer: str = "sgd"

    @property
    def is_torch(self) -> bool:
        return self.type not in TYPES

    @property
    def optimizer_class(self) -> type[Optimizer]:
        return OPTIMIZERS[self.optimizer]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, **self.params, "interval": self.interval,
                               "optimizer": self.optimizer}
        if self.optimizer_class.replaces_schedule:
            del out["interval"]  # implied (its warmup is per step); parse_spec rejects it
        if self.warmup:
            out.update(warmup=self.warmup, warmup_begin_lr=self.warmup_begin_lr)
        for key in OPTIMIZER_KEYS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def valid_types() -> str:
    return ", ".join(sorted(TYPES)) + ", or a torch.optim.lr_scheduler class such as " + \
        ", ".join(torch_scheduler_names()[:4])


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    return float(value)


def parse_spec(name: str, raw: Any) -> ScheduleSpec:
    """Check one ``schedules.<name>`` mapping and return its spec (builds it once to validate)."""
    where = f"schedules.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with a 'type' and its hyperparameters, got {raw!r}")
    raw = dict(raw)
    type_ = raw.pop("type", name)
    if not isinstance(type_, str) or (type_ not in TYPES and type_ not in torch_scheduler_names()):
        raise ConfigError(f"{where}.type: unknown schedule type {type_!r}; valid: {valid_types()}")
    explicit_interval = "interval" in raw
    interval = raw.pop("interval", "epoch")
    if interval not in INTERVALS:
        raise ConfigError(f"{where}.interval: must be 'epoch' or 'step', got {interval!r}")
    warmup = _number(f"{where}.warmup", raw.pop("warmup", 0.0))
    begin = _number(f"{where}.warmup_begin_lr", raw.pop("warmup_begin_lr", 0.0))
    if warmup < 0 or begin < 0:
        raise ConfigError(f"{where}: warmup and warmup_begin_lr must be >= 0")
    if type_ in TYPES and "warmup" in inspect.signature(TYPES[type_]).parameters:
        # A type that takes `warmup` shapes its own (noam's offset is its warmup; wsd's T and cooldown
        # include it): its parameters, not the generic Warmup of _build_schedule.
        raw.update((key, value) for key, value in zip(WARMUP_KEYS, (warmup, begin)) if value)
        warmup, begin = 0.0, 0.0
    optimizer = {}
    for key in OPTIMIZER_KEYS:
        if key in raw:
            optimizer[key] = _number(f"{where}.{key}", raw.pop(key))
            if optimizer[key] < 0:
                raise ConfigError(f"{where}.{key}: must be >= 0, got {optimizer[key]}")
    if optimizer.get("momentum", 0.0) >= 1:
        raise ConfigError(f"{where}.momentum: must be < 1, got {optimizer['momentum']}")
    optimizer_name = raw.pop("optimizer", "sgd")
    if optimizer_name not in OPTIMIZERS:
        raise ConfigError(f"{where}.optimizer: must be one of {', '.join(OPTIMIZERS)}, got {optimizer_name!r}")
    if optimizer_name == "schedule_free_sgd":
        interval = _check_schedule_free(where, type_, explicit_interval, optimizer)
    if type_ == "plateau" and interval == "step":
        raise ConfigError(f"{where}.interval: 'plateau' changes its LR once per epoch, from the epoch's loss; "
                          "remove 'interval: step'")
    spec = ScheduleSpec(name, type_, raw, interval, warmup, begin, **optimizer, optimizer=optimizer_name)
    build_plan(spec, steps_per_epoch=1)  # fail now, not mid-pipeline
    return spec


def _check_schedule_free(where: str, type_: str, explicit_interval: bool, optimizer: dict[str, float]) -> str:
    """Schedule-free SGD replaces the schedule: a constant LR, warmed up per step by the optimizer."""
    if type_ != "constant":
        raise ConfigError(f"{where}.type: schedule_free_sgd replaces the schedule; use type: constant "
                          f"(with an optional warmup), got {type_!r}")
    if explicit_interval:
        raise ConfigError(f"{where}.interval: schedule_free_sgd warms up per step inside the optimizer; "
                          "remove 'interval'")
    momentum = optimizer.setdefault("momentum", SCHEDULE_FREE_MOMENTUM)
    if not 0 < momentum < 1:
        raise ConfigError(f"{where}.momentum: schedule_free_sgd needs 0 < momentum < 1 (it averages with it), "
                          f"got {momentum}; use e.g. 0.9")
    return "step"


# Value rules, one per key of each type: a key name means one thing within a type only
# (wsd's `cooldown` is a fraction of T, plateau's is a count of epochs, as in PyTorch).
Rule = Callable[[str, Any], None]  # (where, value): raises ConfigError naming `where`


def _peak_lr(where: str, value: Any) -> None:
    if _number(where, value) <= 0:
        raise ConfigError(f"{where}: learning rate must be > 0, got {value!r}")


def _lr(where: str, value: Any) -> None:
    if _number(where, value) < 0:
        raise ConfigError(f"{where}: learning rate must be >= 0, got {value!r}")


def _positive(where: str, value: Any) -> None:
    if _number(where, value) <= 0:
        raise ConfigError(f"{where}: must be > 0, got {value!r}")


def _non_negative(where: str, value: Any) -> None:
    if _number(where, value) < 0:
        raise ConfigError(f"{where}: must be >= 0, got {value!r}")


def _real(where: str, value: Any) -> None:
    _number(where, value)


def _epochs(where: str, value: Any) -> None:
    v = _number(where, value)
    if v < 0 or not v.is_integer():
        raise ConfigError(f"{where}: a whole number of epochs >= 0, got {value!r}")


def _open_fraction(where: str, value: Any) -> None:
    if not 0 < _number(where, value) < 1:
        raise ConfigError(f"{where}: must be between 0 and 1, got {value!r}")


def _cooldown_fraction(where: str, value: Any) -> None:
    if not 0 < _number(where, value) <= 1:
        raise ConfigError(f"{where}: the fraction of T spent cooling down, in (0, 1]; got {value!r}")


def _shape(where: str, value: Any) -> None:
    if value not in S.COOLDOWNS:
        raise ConfigError(f"{where}: must be one of {', '.join(S.COOLDOWNS)}, got {value!r}")


def _milestones(where: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: must be a non-empty list of epochs, got {value!r}")
    ms = [_number(where, v) for v in value]
    if any(b <= a for a, b in zip(ms, ms[1:])) or ms[0] <= 0:
        raise ConfigError(f"{where}: must be positive and strictly increasing, got {value!r}")


# Every key of every type in TYPES (tests check that the keys match the factories' signatures).
RULES: dict[str, dict[str, Rule]] = {
    "constant": {"lr": _peak_lr},
    "square_root": {"lr": _peak_lr},
    "factor": {"base_lr": _peak_lr, "factor": _positive, "min_lr": _lr},
    "exponential": {"base_lr": _peak_lr, "gamma": _positive},
    "multi_factor": {"base_lr": _peak_lr, "milestones": _milestones, "gamma": _positive},
    "cosine": {"base_lr": _peak_lr, "final_lr": _lr, "T": _positive},
    "linear": {"base_lr": _peak_lr, "final_lr": _lr, "T": _positive},
    "polynomial": {"base_lr": _peak_lr, "T": _positive, "final_lr": _lr, "power": _positive},
    "noam": {"base_lr": _peak_lr, "warmup": _non_negative, "warmup_begin_lr": _lr},
    "one_cycle": {"max_lr": _peak_lr, "T": _positive, "pct_start": _open_fraction, "div_factor": _positive,
                  "final_div_factor": _positive},
    "cosine_restarts": {"base_lr": _peak_lr, "T_0": _positive, "final_lr": _lr, "T_mult": _positive},
    # PyTorch's ReduceLROnPlateau: patience and cooldown count epochs
    "plateau": {"base_lr": _peak_lr, "factor": _positive, "patience": _epochs, "threshold": _real,
                "cooldown": _epochs, "min_lr": _lr},
    "wsd": {"base_lr": _peak_lr, "T": _positive, "cooldown": _cooldown_fraction, "final_lr": _lr, "shape": _shape,
            "warmup": _non_negative, "warmup_begin_lr": _lr},
    "rex": {"base_lr": _peak_lr, "T": _positive, "final_lr": _lr},
}


def _check_values(where: str, type_: str, params: dict[str, Any]) -> None:
    rules = RULES[type_]
    for key, value in params.items():
        rules[key](f"{where}.{key}", value)


def build_plan(spec: ScheduleSpec, steps_per_epoch: int) -> S.Plan:
    """Turn a spec into its plan: the schedule of time in epochs, its interval and optimizer.

    ``steps_per_epoch`` matters for torch classes with ``interval: step`` (their
    arguments count optimizer steps) and for schedule-free SGD's warmup in steps.
    """
    schedule = _build_schedule(spec, steps_per_epoch)
    if not spec.optimizer_class.replaces_schedule:
        return S.Plan(schedule, spec.interval, SGD())
    if spec.warmup_begin_lr:
        raise ConfigError(f"schedules.{spec.name}.warmup_begin_lr: schedule_free_sgd warms up from lr/steps "
                          "by itself; remove it")
    # the constant it is given, warmed up per step by the optimizer; `schedule` above only validated the spec
    optimizer = ScheduleFreeSGD(float(spec.params["lr"]), round(spec.warmup * steps_per_epoch))
    return S.Plan(S.StepWarmup(optimizer.lr, optimizer.warmup_steps, steps_per_epoch), spec.interval, optimizer)


def _build_schedule(spec: ScheduleSpec, steps_per_epoch: int) -> S.Schedule:
    where = f"schedules.{spec.name}"
    if spec.is_torch:
        units = steps_per_epoch if spec.interval == "step" else 1
        inner: S.Schedule = build_torch_schedule(spec.name, spec.type, spec.params, units)
    else:
        factory = TYPES[spec.type]
        sig = inspect.signature(factory)
        for key in spec.params:
            if key not in sig.parameters:
                valid = sorted(set(sig.parameters) | COMMON_KEYS - {"type"})
                raise ConfigError(f"{where}.{key}: unknown key for type {spec.type!r}; valid: {', '.join(valid)}")
        for p in sig.parameters.values():
            if p.default is inspect.Parameter.empty and p.name not in spec.params:
                raise ConfigError(f"{where}: missing {p.name!r} for type {spec.type!r}; add it")
        _check_values(where, spec.type, spec.params)
        kwargs = dict(spec.params)
        if spec.warmup and "T" in kwargs:
            if spec.warmup >= kwargs["T"]:
                raise ConfigError(f"{where}.warmup: must be smaller than T ({kwargs['T']}), got {spec.warmup}")
            kwargs["T"] = kwargs["T"] - spec.warmup  # T is the total length, warmup included
        try:
            inner = factory(**kwargs)
        except ValueError as exc:  # a schedule's own rule between its keys, as "key: problem"
            raise ConfigError(f"{where}.{exc}") from None
    if spec.warmup:
        if inner.metric_driven:
            raise ConfigError(f"{where}.warmup: not supported for the metric-driven 'plateau' type; remove it")
        return S.Warmup(inner, spec.warmup, spec.warmup_begin_lr)
    return inner


def lr_curve(schedule: S.Schedule | S.Plan, epochs: int, points_per_epoch: int = 1) -> tuple[list[float], list[float]]:
    """Sample a schedule without training (``Plateau`` is shown as if the loss always improved)."""
    ts = [i / points_per_epoch for i in range(epochs * points_per_epoch)]
    return ts, [schedule(t) for t in ts]
