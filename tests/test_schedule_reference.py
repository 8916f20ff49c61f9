"""Every schedule type gives, bit for bit, the LRs of the code before warmup was written once.

The classes below are frozen copies of the composition code as it was (commit 4711f00):
``Warmup``, ``Phases`` (by lengths), ``WSD`` with its own warmup, schedule-free's
``StepWarmup`` and the registry's rules that sent noam's and wsd's ``warmup`` to the type
(with the generic warmup shortening ``T`` for every other type). The leaf schedules
(``Constant``, ``Cosine``, ...) were not changed and are the package's own. Values are
compared with ``==`` over a dense grid of t: float operation order matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pytest
import yaml
from helpers import ROOT

from lrsched.schedules import curves as S
from lrsched.schedules.optim import SGD, ScheduleFreeSGD
from lrsched.schedules.registry import TYPES, build_plan, parse_spec
from lrsched.schedules.torch_adapter import build_torch_schedule

# --- the reference: the old composition, frozen ----------------------------------------------------

@dataclass(frozen=True)
class OldWarmup(S.Schedule):
    inner: S.Schedule
    epochs: float
    start_lr: float = 0.0

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        if t < self.epochs:
            return self.start_lr + (self.inner(0.0) - self.start_lr) * t / self.epochs
        return self.inner(t - self.epochs)


@dataclass(frozen=True)
class OldPhases(S.Schedule):
    lengths: tuple[float, ...]
    phases: tuple[S.Schedule, ...]

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        start = 0.0
        for length, phase in zip(self.lengths[:-1], self.phases[:-1]):
            if t < start + length:
                return phase(t - start)
            start += length
        return self.phases[-1](t - start)


OLD_COOLDOWNS: dict[str, Callable[[float], float]] = {
    "linear": lambda p: 1.0 - p,
    "cosine": lambda p: (1.0 + math.cos(math.pi * p)) / 2.0,
    "1-sqrt": lambda p: 1.0 - math.sqrt(p),
}


@dataclass(frozen=True)
class OldWSD(S.Schedule):
    base_lr: float
    T: float
    cooldown: float = 0.2
    final_lr: float = 0.0
    shape: str = "1-sqrt"
    warmup: float = 0.0
    warmup_begin_lr: float = 0.0

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        if t < self.warmup:
            return self.warmup_begin_lr + (self.base_lr - self.warmup_begin_lr) * t / self.warmup
        start = self.T * (1.0 - self.cooldown)
        if t < start:
            return self.base_lr
        p = min((t - start) / (self.T - start), 1.0)
        return self.final_lr + (self.base_lr - self.final_lr) * OLD_COOLDOWNS[self.shape](p)


@dataclass(frozen=True)
class OldStepWarmup(S.Schedule):
    lr: float
    warmup_steps: int
    steps_per_epoch: int

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        if not self.warmup_steps:
            return self.lr
        k = int(math.floor(t * self.steps_per_epoch + 1e-9))
        return self.lr * min((k + 1) / self.warmup_steps, 1.0)


def old_one_cycle(max_lr: float, T: float, pct_start: float = 0.3, div_factor: float = 25.0,
                  final_div_factor: float = 1e4) -> OldPhases:
    initial = max_lr / div_factor
    up = pct_start * T
    return OldPhases(lengths=(up, T - up), phases=(S.Reversed(S.Cosine(max_lr, initial, up), up),
                                                   S.Cosine(max_lr, initial / final_div_factor, T - up)))


def reference(raw: dict[str, Any], steps_per_epoch: int) -> tuple[S.Schedule, float | None]:
    """The old registry's schedule for ``raw`` and the LR it wrote into the optimizer (None: the schedule's)."""
    params = dict(raw)
    type_ = params.pop("type")
    interval = params.pop("interval", "epoch")
    warmup, begin = params.pop("warmup", 0.0), params.pop("warmup_begin_lr", 0.0)
    for key in ("momentum", "weight_decay"):
        params.pop(key, None)
    if params.pop("optimizer", "sgd") == "schedule_free_sgd":
        lr = float(params["lr"])
        return OldStepWarmup(lr, round(warmup * steps_per_epoch), steps_per_epoch), lr
    if type_ == "wsd":
        return OldWSD(**params, warmup=warmup, warmup_begin_lr=begin), None
    if type_ == "noam":
        return OldWarmup(S.InverseSqrt(params["base_lr"], offset=warmup), warmup, 0.0), None
    if type_ not in TYPES:
        inner = build_torch_schedule("s", type_, params, steps_per_epoch if interval == "step" else 1)
    else:
        if warmup and "T" in params:
            params["T"] = params["T"] - warmup
        inner = old_one_cycle(**params) if type_ == "one_cycle" else TYPES[type_](**params)
    return (OldWarmup(inner, warmup, begin) if warmup else inner), None


# --- the specs: params.yaml's schedules, and every type with and without warmup ---------------------

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())["schedules"]
SPECS: dict[str, dict[str, Any]] = {f"params.yaml:{name}": raw for name, raw in DEFAULTS.items()}
SPECS.update({
    "constant": {"type": "constant", "lr": 0.3},
    "constant_warmup": {"type": "constant", "lr": 0.3, "warmup": 0.7, "warmup_begin_lr": 0.01},
    "square_root_warmup": {"type": "square_root", "lr": 0.1, "warmup": 2},
    "factor_warmup": {"type": "factor", "base_lr": 0.6, "factor": 0.8, "min_lr": 0.01, "warmup": 1.3},
    "exponential_warmup": {"type": "exponential", "base_lr": 0.4, "gamma": 0.7, "warmup": 0.3,
                           "warmup_begin_lr": 0.05},
    "multi_factor_warmup": {"type": "multi_factor", "base_lr": 0.5, "milestones": [3, 8], "gamma": 0.5,
                            "warmup": 1},
    "cosine": {"type": "cosine", "base_lr": 0.2, "final_lr": 0.02, "T": 10},
    "cosine_warmup": {"type": "cosine", "base_lr": 0.17, "final_lr": 0.003, "T": 9.3, "warmup": 1.1,
                      "warmup_begin_lr": 0.013, "interval": "step"},
    "linear_warmup": {"type": "linear", "base_lr": 0.3, "final_lr": 0.01, "T": 10, "warmup": 0.3},
    "polynomial_warmup": {"type": "polynomial", "base_lr": 0.4, "T": 10, "power": 2.0, "warmup": 2.7},
    "noam": {"type": "noam", "base_lr": 0.4, "warmup": 2},
    "noam_short": {"type": "noam", "base_lr": 0.37, "warmup": 0.3, "interval": "step"},
    "one_cycle": {"type": "one_cycle", "max_lr": 0.31, "T": 7.7, "pct_start": 0.37},
    "one_cycle_warmup": {"type": "one_cycle", "max_lr": 0.5, "T": 10, "warmup": 1.5},
    "cosine_restarts_warmup": {"type": "cosine_restarts", "base_lr": 0.3, "T_0": 2, "T_mult": 2, "warmup": 0.5},
    "rex_warmup": {"type": "rex", "base_lr": 0.4, "final_lr": 0.04, "T": 10, "warmup": 1.9},
    "plateau": {"type": "plateau", "base_lr": 0.1, "factor": 0.5, "patience": 1, "cooldown": 1},
    "torch_warmup": {"type": "StepLR", "base_lr": 0.3, "step_size": 2, "gamma": 0.5, "warmup": 1},
    "torch_step_warmup": {"type": "ExponentialLR", "base_lr": 0.3, "gamma": 0.97, "interval": "step",
                          "warmup": 0.5},
    "schedule_free": {"type": "constant", "lr": 2.0, "warmup": 0.5, "optimizer": "schedule_free_sgd"},
    "schedule_free_odd": {"type": "constant", "lr": 1.3, "warmup": 0.33, "optimizer": "schedule_free_sgd"},
    "schedule_free_no_warmup": {"type": "constant", "lr": 0.7, "optimizer": "schedule_free_sgd"},
})
# wsd: no warmup, warmup from 0 and from a begin LR, odd T and cooldowns, a warmup ending where the
# cooldown starts, and a cooldown over the whole run; every shape
for shape in ("linear", "cosine", "1-sqrt"):
    for i, (warmup, begin, cooldown, T, final) in enumerate([
            (0, 0, 0.2, 10, 0.0), (1, 0, 0.2, 10, 0.0), (1.3, 0.02, 0.17, 9.7, 0.011), (0.37, 0, 0.33, 7.1, 0.003),
            (1.9, 0.1, 0.8, 10, 0.0), (5.0, 0, 0.5, 10, 0.0), (0, 0, 1.0, 3.3, 0.01)]):
        spec = {"type": "wsd", "base_lr": 0.3, "T": T, "cooldown": cooldown, "final_lr": final, "shape": shape,
                "interval": "step", **({"warmup": warmup} if warmup else {}),
                **({"warmup_begin_lr": begin} if begin else {})}
        SPECS[f"wsd_{shape}_{i}"] = spec

EPOCHS = 13
LOSSES = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]


def grid(steps_per_epoch: int) -> list[float]:
    """Every optimizer step's t, a finer grid, and the whole epochs as ints (as the trainer passes them)."""
    return sorted({i / steps_per_epoch for i in range(EPOCHS * steps_per_epoch)}
                  | {i / 256 for i in range((EPOCHS + 2) * 256)}) + list(range(EPOCHS + 2))


def test_every_type_of_the_registry_is_covered() -> None:
    assert set(TYPES) <= {raw["type"] for raw in SPECS.values()}
    assert {"warmup", "warmup_begin_lr"} <= {k for raw in SPECS.values() for k in raw}


@pytest.mark.parametrize("steps_per_epoch", [10, 469])
@pytest.mark.parametrize("name", list(SPECS))
def test_values_are_bit_identical_to_the_old_composition(name: str, steps_per_epoch: int) -> None:
    raw = SPECS[name]
    plan = build_plan(parse_spec(name, raw), steps_per_epoch)
    old, optimizer_lr = reference(raw, steps_per_epoch)
    ts = grid(steps_per_epoch)
    got = [plan.rates(t, LOSSES) for t in ts]
    expected = [(old(t, LOSSES), old(t, LOSSES) if optimizer_lr is None else optimizer_lr) for t in ts]
    assert got == expected  # exactly: ==, not approx
    assert [plan(t, LOSSES) for t in ts] == [e for e, _ in expected]


def test_the_optimizer_is_an_object_on_the_plan() -> None:
    sgd = build_plan(parse_spec("c", SPECS["cosine"]), 10)
    free = build_plan(parse_spec("sf", SPECS["schedule_free"]), 10)
    assert sgd.optimizer == SGD() and not sgd.optimizer.replaces_schedule
    assert free.optimizer == ScheduleFreeSGD(lr=2.0, warmup_steps=5) and free.optimizer.replaces_schedule
    assert S.Plan.of(S.Constant(0.1)) == S.Plan(S.Constant(0.1), "epoch", SGD())
    assert S.Plan.of(free) is free
