"""Validation of ``tune:`` and its per-schedule search spaces (no Optuna import)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lrsched.core.errors import ConfigError
from lrsched.schedules.registry import OPTIMIZER_KEYS, ScheduleSpec

# `high: lr_find` takes a float's upper bound from the LR range test (metrics/lr_find.json):
# the LR at which its loss diverged.
LR_FIND = "lr_find"
KINDS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}, "categorical": {"choices"}}


def tunable_keys(spec: ScheduleSpec) -> set[str]:
    return set(spec.params) | {"warmup", "warmup_begin_lr", *OPTIMIZER_KEYS}


def check_param(where: str, dist: Any) -> None:
    if not isinstance(dist, dict) or "type" not in dist:
        raise ConfigError(f"{where}: must be a mapping with 'type' (float, int or categorical)")
    kind = dist["type"]
    if kind not in KINDS:
        raise ConfigError(f"{where}.type: must be float, int or categorical, got {kind!r}")
    for key in dist:
        if key != "type" and key not in KINDS[kind]:
            raise ConfigError(f"{where}.{key}: unknown key for a {kind} parameter; valid: {', '.join(sorted(KINDS[kind]))}")
    if kind == "categorical":
        if not isinstance(dist.get("choices"), list) or not dist["choices"]:
            raise ConfigError(f"{where}.choices: must be a non-empty list")
        return
    if dist.get("high") == LR_FIND:
        if kind != "float":
            raise ConfigError(f"{where}.high: 'lr_find' is a float bound; make the parameter a float")
        dist = {**dist, "high": float("inf")}  # checked again once the range test has given the number
    for key in ("low", "high"):
        v = dist.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{where}.{key}: must be a number, got {v!r}")
        if kind == "int" and not isinstance(v, int):
            raise ConfigError(f"{where}.{key}: must be an integer for an int parameter, got {v!r}")
    if dist["low"] >= dist["high"]:
        raise ConfigError(f"{where}: low ({dist['low']}) must be smaller than high ({dist['high']})")
    if dist.get("log") and dist["low"] <= 0:
        raise ConfigError(f"{where}.low: must be > 0 when log: true, got {dist['low']}")


# What a space derived from a schedule's type searches: its peak LR (log; 0.005-0.5 is an effective
# LR of 0.05-5 with momentum 0.9, from too slow to diverging) and weight decay. Momentum is not
# searched: tune.fixed sets it for every schedule.
WEIGHT_DECAY = {"type": "float", "low": 0.0, "high": 0.002}


def derived_space(spec: "ScheduleSpec") -> dict[str, dict[str, Any]]:
    """The minimal fair space for ``spec``'s type: its peak LR and weight decay."""
    peak = next((k for k in ("lr", "base_lr", "max_lr") if k in spec.params), None)
    if peak is None:
        raise ConfigError(f"tune.space.{spec.name}: missing, and type {spec.type!r} has no lr/base_lr/max_lr to "
                          f"derive one from; add tune.space.{spec.name} to params.yaml")
    low, high = (0.1, 10.0) if spec.optimizer_class.replaces_schedule else (0.005, 0.5)  # schedule-free: larger
    return {peak: {"type": "float", "low": low, "high": high, "log": True}, "weight_decay": dict(WEIGHT_DECAY)}


def _inline(space: dict[str, dict[str, Any]]) -> str:
    """A space as one line of flow YAML, for an error message the user can paste."""
    def value(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)

    items = ", ".join(f"{k}: {{{', '.join(f'{dk}: {value(dv)}' for dk, dv in d.items())}}}" for k, d in space.items())
    return "{" + items + "}"


def check_spaces(space: Any, fixed: dict[str, Any], specs: dict[str, ScheduleSpec]) -> None:
    """``tune.space``: one valid space per schedule, none for a schedule that does not exist."""
    if not isinstance(space, dict):
        raise ConfigError("tune.space: must be a mapping of schedule name -> {hyperparameter: distribution}")
    # Every schedule is tuned (one budget for all): a schedule without a space is an error that
    # hands over the space derived from its type, ready to paste.
    for name, spec in specs.items():
        if name not in space:
            raise ConfigError(f"tune.space.{name}: missing (every schedule is tuned); add e.g. "
                              f"`{name}: {_inline(derived_space(spec))}` under tune.space in params.yaml")
    for name, params in space.items():
        where = f"tune.space.{name}"
        if name not in specs:
            raise ConfigError(f"{where}: no schedule named {name!r} in schedules; valid: {', '.join(specs)}")
        if not isinstance(params, dict) or not params:
            raise ConfigError(f"{where}: must map hyperparameters to distributions")
        for key in set(params) & set(fixed):
            raise ConfigError(f"{where}.{key}: also in tune.fixed; search it or fix it, not both")
        for key, dist in params.items():
            if key not in tunable_keys(specs[name]):
                raise ConfigError(f"{where}.{key}: {name!r} has no hyperparameter {key!r}; "
                                  f"valid: {', '.join(sorted(tunable_keys(specs[name])))}")
            check_param(f"{where}.{key}", dist)


def space_digest(space: dict[str, Any]) -> str:
    """Short stable hash: a changed search space starts a new study instead of mixing results."""
    return hashlib.sha256(json.dumps(space, sort_keys=True).encode()).hexdigest()[:8]


def uses_lr_find(space: dict[str, dict[str, dict[str, Any]]]) -> bool:
    return any(d.get("high") == LR_FIND for params in space.values() for d in params.values())


def resolve_lr_find(space: dict[str, dict[str, dict[str, Any]]], divergence_lr: float) -> dict[str, Any]:
    """``space`` with every ``high: lr_find`` replaced by the range test's divergence LR."""
    resolved = {name: {key: {**d, "high": divergence_lr} if d.get("high") == LR_FIND else d
                       for key, d in params.items()} for name, params in space.items()}
    for name, params in resolved.items():
        for key, dist in params.items():
            check_param(f"tune.space.{name}.{key} (high: lr_find = {divergence_lr:.4g})", dist)
    return resolved
