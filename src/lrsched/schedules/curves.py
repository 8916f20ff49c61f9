"""Learning-rate schedules as pure functions of training time.

Time ``t`` is always measured in epochs (a float). A schedule is a frozen,
picklable dataclass; calling it never changes it, so plotting a schedule before
training cannot alter what is trained (the article's third defect).

Warmup and multi-phase schedules are built by composition rather than by a flag
repeated in every class: ``Phases`` runs schedules one after another, and the one
warmup formula, ``Ramp``, is its first phase in ``Warmup`` (any schedule) and ``wsd``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

from lrsched.schedules.optim import SGD, Optimizer


class Schedule:
    """A pure map from time in epochs to a learning rate.

    ``metric_driven`` schedules (``Plateau``) also read the losses of the epochs
    finished so far; every other schedule ignores them.
    """

    metric_driven: ClassVar[bool] = False

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    lr: float

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return self.lr


@dataclass(frozen=True)
class SquareRoot(Schedule):
    """lr * (t + 1) ** -1/2 (d2l's SquareRootScheduler)."""

    lr: float

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return self.lr * (t + 1.0) ** -0.5


@dataclass(frozen=True)
class Factor(Schedule):
    """Geometric decay floored at ``min_lr`` (the article's ``stop_factor_lr``)."""

    base_lr: float
    factor: float
    min_lr: float = 0.0

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return max(self.min_lr, self.base_lr * self.factor**t)


@dataclass(frozen=True)
class Exponential(Schedule):
    base_lr: float
    gamma: float

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return self.base_lr * self.gamma**t


@dataclass(frozen=True)
class MultiFactor(Schedule):
    """Piecewise constant: multiplied by ``gamma`` at each milestone (PyTorch MultiStepLR)."""

    base_lr: float
    milestones: tuple[float, ...]
    gamma: float = 0.1

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return self.base_lr * self.gamma ** bisect_right(self.milestones, t)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half-cosine from ``base_lr`` at t=0 to ``final_lr`` at t=T, then flat."""

    base_lr: float
    final_lr: float
    T: float

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        if t >= self.T:
            return self.final_lr
        return self.final_lr + (self.base_lr - self.final_lr) * (1 + math.cos(math.pi * t / self.T)) / 2


@dataclass(frozen=True)
class Polynomial(Schedule):
    """``final + (base - final) * (1 - t/T) ** power`` until T, then ``final_lr`` (power 1: linear decay)."""

    base_lr: float
    T: float
    final_lr: float = 0.0
    power: float = 1.0

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        frac = min(t / self.T, 1.0)
        return self.final_lr + (self.base_lr - self.final_lr) * (1.0 - frac) ** self.power


@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """``base_lr * sqrt(offset / (t + offset))``: the decay half of Noam's schedule."""

    base_lr: float
    offset: float

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return self.base_lr * math.sqrt(self.offset / (t + self.offset))


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """SGDR: cosine cycles of length T_0, T_0*T_mult, ... each restarting at base_lr."""

    base_lr: float
    T_0: float
    final_lr: float = 0.0
    T_mult: float = 1.0

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        start, length = 0.0, self.T_0
        while t >= start + length:  # cycles grow geometrically, so this loop is short
            start, length = start + length, length * self.T_mult
        return Cosine(self.base_lr, self.final_lr, length)(t - start)


@dataclass(frozen=True)
class Rex(Schedule):
    """REX (Chen et al., MLSys 2022): ``final + (base - final) * (1 - p) / (1 - p/2)``, ``p = t/T``.

    The paper's profile; some libraries ship a different "rex" curve.
    """

    base_lr: float
    T: float
    final_lr: float = 0.0

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        p = min(t / self.T, 1.0)
        return self.final_lr + (self.base_lr - self.final_lr) * (1.0 - p) / (1.0 - p / 2.0)


@dataclass(frozen=True)
class Ramp(Schedule):
    """Linear from ``start_lr`` at t=0 to ``end_lr`` at t=``epochs``: the one warmup formula."""

    start_lr: float
    end_lr: float
    epochs: float

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return self.start_lr + (self.end_lr - self.start_lr) * t / self.epochs


@dataclass(frozen=True)
class Phases(Schedule):
    """Consecutive phases, each a schedule over its own local time (fastai's combine_scheds).

    Phase ``i + 1`` starts at ``boundaries[i]`` (epochs since t=0) and is given ``t - boundaries[i]``.
    """

    boundaries: tuple[float, ...]
    phases: tuple[Schedule, ...]

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        start = 0.0
        for boundary, phase in zip(self.boundaries, self.phases):
            if t < boundary:
                return phase(t - start)
            start = boundary
        return self.phases[-1](t - start)


def Warmup(inner: Schedule, epochs: float, start_lr: float = 0.0) -> Phases:  # noqa: N802 - reads as a type
    """A ``Ramp`` from ``start_lr`` to ``inner(0)`` over ``epochs``, then ``inner`` shifted by ``epochs``."""
    return Phases((epochs,), (Ramp(start_lr, inner(0.0), epochs), inner))


# WSD cooldown shapes: the fraction of (base - final) left at progress p in [0, 1] of the cooldown.
COOLDOWNS: dict[str, Callable[[float], float]] = {
    "linear": lambda p: 1.0 - p,
    "cosine": lambda p: (1.0 + math.cos(math.pi * p)) / 2.0,
    "1-sqrt": lambda p: 1.0 - math.sqrt(p),  # Hägele et al. 2024
}


@dataclass(frozen=True)
class Cooldown(Schedule):
    """From ``base_lr`` to ``final_lr`` over ``length``, shaped by ``shape`` (see ``COOLDOWNS``), then flat."""

    base_lr: float
    final_lr: float
    length: float
    shape: str = "1-sqrt"

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        p = min(t / self.length, 1.0)
        return self.final_lr + (self.base_lr - self.final_lr) * COOLDOWNS[self.shape](p)


def wsd(base_lr: float, T: float, cooldown: float = 0.2, final_lr: float = 0.0, shape: str = "1-sqrt",
        warmup: float = 0.0, warmup_begin_lr: float = 0.0) -> Phases:
    """Warmup-stable-decay: a ``Ramp`` to ``base_lr`` over ``warmup``, hold, then a ``Cooldown`` to ``final_lr``.

    The cooldown takes the last ``cooldown`` fraction of the run ``T`` (warmup included);
    after ``T`` the LR stays at ``final_lr``.
    """
    start = T * (1.0 - cooldown)
    if warmup > start:  # "key: problem" (the registry names the schedule)
        raise ValueError(f"warmup: must end before the cooldown starts at T * (1 - cooldown) = {start:g}, "
                         f"got {warmup}")
    return Phases((warmup, start), (Ramp(warmup_begin_lr, base_lr, warmup), Constant(base_lr),
                                    Cooldown(base_lr, final_lr, T - start, shape)))


@dataclass(frozen=True)
class StepWarmup(Schedule):
    """``lr * min((k + 1) / steps, 1)`` at optimizer step ``k = t * steps_per_epoch``.

    Not a warmup of ours: the curve schedule-free SGD applies inside its optimizer (``warmup_steps``),
    in its own formula (per step, from ``lr / steps``), so that the LR plotted and logged is the one applied.
    """

    lr: float
    warmup_steps: int
    steps_per_epoch: int

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        if not self.warmup_steps:
            return self.lr
        k = int(math.floor(t * self.steps_per_epoch + 1e-9))
        return self.lr * min((k + 1) / self.warmup_steps, 1.0)


@dataclass(frozen=True)
class Plateau(Schedule):
    """Reduce-on-plateau: metric-driven, so its LR depends on the losses seen so far.

    ``lr(t, losses)`` replays the rule over ``losses`` (one value per finished
    epoch, before ``t``); it stays a pure function. The rule matches PyTorch's
    ``ReduceLROnPlateau`` in ``min`` mode with a relative threshold.
    """

    base_lr: float
    factor: float = 0.1
    patience: int = 2
    threshold: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0
    metric_driven: ClassVar[bool] = True

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        lr, best, bad, cool = self.base_lr, math.inf, 0, 0
        for loss in losses[: int(math.floor(t))]:
            if loss < best * (1 - self.threshold):
                best, bad = loss, 0
            else:
                bad += 1
            if cool > 0:
                cool, bad = cool - 1, 0
            if bad > self.patience:
                lr, cool, bad = max(lr * self.factor, self.min_lr), self.cooldown, 0
        return lr


@dataclass(frozen=True)
class Reversed(Schedule):
    """``inner`` run backwards over [0, length]: turns a decay into a ramp."""

    inner: Schedule
    length: float

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        return self.inner(max(self.length - t, 0.0))


def one_cycle(max_lr: float, T: float, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> Phases:
    """Smith's 1cycle as two cosine phases: up to ``max_lr``, then far below the start."""
    initial = max_lr / div_factor
    up = pct_start * T
    return Phases(
        boundaries=(up,),
        phases=(Reversed(Cosine(max_lr, initial, up), up), Cosine(max_lr, initial / final_div_factor, T - up)),
    )


@dataclass(frozen=True)
class Plan:
    """A schedule with everything that decides how it reaches the optimizer: one contract.

    ``interval`` says when the trainer asks for a new LR (each epoch or each step) and
    ``optimizer`` which optimizer applies it (see ``lrsched.optim``). ``SGD`` is given
    ``schedule(t)``. ``ScheduleFreeSGD`` replaces the schedule: it is given its constant ``lr``
    once and ramps it up over its ``warmup_steps`` itself, so ``schedule`` is then only the
    curve the weights see.
    """

    schedule: Schedule
    interval: str = "epoch"
    optimizer: Optimizer = SGD()

    @classmethod
    def of(cls, plan: Plan | Schedule) -> Plan:
        """``plan`` itself, or a bare schedule as a plan: per epoch, with SGD."""
        return plan if isinstance(plan, Plan) else cls(plan)

    @property
    def metric_driven(self) -> bool:
        return self.schedule.metric_driven

    @property
    def per_step(self) -> bool:
        return self.interval == "step"

    def __call__(self, t: float, losses: Sequence[float] = ()) -> float:
        """The LR the weights see at time ``t`` (plotted and logged)."""
        return self.schedule(t, losses)

    def rates(self, t: float, losses: Sequence[float] = ()) -> tuple[float, float]:
        """The LR the weights see at time ``t`` and the LR to write into the optimizer, from one evaluation."""
        seen = self.schedule(t, losses)
        return seen, self.optimizer.lr_to_set(seen)
