"""Any ``torch.optim.lr_scheduler`` class as a pure schedule.

The torch scheduler is simulated on a throw-away one-parameter optimizer, so its
curve can be plotted without training and asked for at any time, in any order.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import torch

from lrsched.core.errors import ConfigError
from lrsched.schedules.curves import Schedule

# Classes that need callables or other schedulers, which params.yaml cannot express,
# or that are metric-driven (use the `plateau` type instead).
_UNSUPPORTED = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler", "ReduceLROnPlateau"}
_MANAGED_ARGS = {"self", "optimizer", "last_epoch", "verbose"}


def torch_scheduler_names() -> list[str]:
    sched = torch.optim.lr_scheduler
    return sorted(
        name for name, obj in vars(sched).items()
        if inspect.isclass(obj) and issubclass(obj, sched.LRScheduler)
        and obj is not sched.LRScheduler and not name.startswith("_") and name not in _UNSUPPORTED
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class TorchSchedule(Schedule):
    """``cls_name`` from ``torch.optim.lr_scheduler`` stepped ``units_per_epoch`` times per epoch."""

    cls_name: str
    base_lr: float
    kwargs: tuple[tuple[str, Any], ...]
    units_per_epoch: float = 1.0

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        n = int(math.floor(t * self.units_per_epoch + 1e-9))
        length = 1 << max(n, 1).bit_length()  # simulate in power-of-two chunks: O(total) not O(n^2)
        return _simulate(self.cls_name, self.base_lr, self.kwargs, length)[n]


@lru_cache(maxsize=128)
def _simulate(cls_name: str, base_lr: float, kwargs: tuple[tuple[str, Any], ...], length: int) -> tuple[float, ...]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base_lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = getattr(torch.optim.lr_scheduler, cls_name)(opt, **dict(kwargs))
        lrs = [float(opt.param_groups[0]["lr"])]
        # OneCycleLR's last step is total_steps - 1; torch still computes a step total_steps, off the end of
        # its last phase (it equals step total_steps - 2), and raises after that. The schedule is over: hold.
        end = getattr(sched, "total_steps", None) or length
        while len(lrs) < min(length, end):
            opt.step()
            try:
                sched.step()
            except ValueError:  # another class's end of schedule: hold its last LR
                break
            lrs.append(float(opt.param_groups[0]["lr"]))
        lrs.extend([lrs[-1]] * (length - len(lrs)))
    return tuple(lrs)


def build_torch_schedule(name: str, cls_name: str, params: dict[str, Any], units_per_epoch: float) -> TorchSchedule:
    """Validate ``params`` against the class signature and build the adapter."""
    where = f"schedules.{name}"
    if cls_name not in torch_scheduler_names():
        raise ConfigError(f"{where}.type: {cls_name!r} is not a usable torch.optim.lr_scheduler class; "
                          f"choose one of {', '.join(torch_scheduler_names())}")
    params = dict(params)
    if "base_lr" not in params:
        raise ConfigError(f"{where}: missing 'base_lr' (the optimizer's initial LR for {cls_name}); add it")
    base_lr = params.pop("base_lr")
    if isinstance(base_lr, bool) or not isinstance(base_lr, (int, float)) or base_lr <= 0:
        raise ConfigError(f"{where}.base_lr: must be a positive number, got {base_lr!r}")
    sig = inspect.signature(getattr(torch.optim.lr_scheduler, cls_name).__init__)
    allowed = {p for p in sig.parameters if p not in _MANAGED_ARGS}
    for key in params:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown argument for {cls_name}; valid: {', '.join(sorted(allowed))}")
    for p in sig.parameters.values():
        if p.name in allowed and p.default is inspect.Parameter.empty and p.name not in params:
            raise ConfigError(f"{where}: missing required argument {p.name!r} for {cls_name}; add it")
    schedule = TorchSchedule(cls_name, float(base_lr), tuple(sorted((k, _freeze(v)) for k, v in params.items())),
                             units_per_epoch)
    try:
        schedule(0.0)
    except Exception as exc:  # torch's own validation, e.g. a non-positive gamma
        raise ConfigError(f"{where}: {cls_name} rejected its arguments: {exc}") from None
    return schedule
