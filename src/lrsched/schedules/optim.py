"""The optimizer a plan names: an object that builds the torch optimizer and switches its modes.

Schedule-free SGD (Defazio et al. 2024, the ``schedulefree`` package) trains one
iterate and evaluates another, the running average: it must be put in train mode
before training steps and in eval mode before every evaluation and before its
weights are saved. Plain SGD has no modes; the switches are no-ops for it.
The registry turns params.yaml's ``optimizer:`` name into one of these, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterable, Protocol

import torch


class Optimizer(Protocol):
    """What the trainer asks of a plan's optimizer (frozen and picklable, like the plan)."""

    replaces_schedule: ClassVar[bool]  # given a constant LR once (its own warmup) rather than schedule(t)

    def build(self, params: Iterable[torch.nn.Parameter], momentum: float,
              weight_decay: float) -> torch.optim.Optimizer: ...

    def lr_to_set(self, scheduled: float) -> float:
        """The LR to write into the optimizer when the schedule gives ``scheduled``."""

    def train_mode(self, opt: torch.optim.Optimizer) -> None:
        """Before training steps."""

    def eval_mode(self, opt: torch.optim.Optimizer) -> None:
        """Before evaluating or saving."""


@dataclass(frozen=True)
class SGD:
    """``torch.optim.SGD``, given the schedule's LR at every update; it has no modes."""

    replaces_schedule: ClassVar[bool] = False

    def build(self, params: Iterable[torch.nn.Parameter], momentum: float,
              weight_decay: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=0.0, momentum=momentum, weight_decay=weight_decay)

    def lr_to_set(self, scheduled: float) -> float:
        return scheduled

    def train_mode(self, opt: torch.optim.Optimizer) -> None:
        pass

    def eval_mode(self, opt: torch.optim.Optimizer) -> None:
        pass


@dataclass(frozen=True)
class ScheduleFreeSGD:
    """``schedulefree.SGDScheduleFree``: the constant ``lr``, ramped up over ``warmup_steps`` by itself."""

    lr: float
    warmup_steps: int = 0
    replaces_schedule: ClassVar[bool] = True

    def build(self, params: Iterable[torch.nn.Parameter], momentum: float,
              weight_decay: float) -> torch.optim.Optimizer:
        import schedulefree  # only schedule-free runs need it

        # foreach=False: the per-tensor loop gives the same numbers on every CPU (no fused kernels)
        return schedulefree.SGDScheduleFree(params, lr=self.lr, momentum=momentum, weight_decay=weight_decay,
                                            warmup_steps=self.warmup_steps, foreach=False)

    def lr_to_set(self, scheduled: float) -> float:
        return self.lr

    def train_mode(self, opt: torch.optim.Optimizer) -> None:
        """Moves the weights to its training iterate."""
        opt.train()

    def eval_mode(self, opt: torch.optim.Optimizer) -> None:
        """Moves the weights to its average (what is evaluated and saved)."""
        opt.eval()


def make_optimizer(params: Iterable[torch.nn.Parameter], optimizer: Optimizer, momentum: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """The torch optimizer that ``optimizer`` (a plan's) builds, over ``params``."""
    return optimizer.build(params, momentum, weight_decay)
