"""Train one model under one schedule.

The data lives on the device as one tensor; each epoch shuffles an index, so
there is no DataLoader, PIL or per-sample work in the hot loop. Running loss
and accuracy are accumulated on the device and read back only when the
progress bar is refreshed and at the end of the epoch, so the loop is not
throttled by host syncs (which matters on a GPU). The forward is
``lrsched.model.forward``: the article's LeNet, bit for bit, with less work.
Init and data order come from CPU generators on every device, so a seed means
the same start and the same batches on a GPU too.

Tracking and tuning hook in through callbacks; this module knows neither.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lrsched.core.callbacks import Callback
from lrsched.core.pinning import configure_cuda
from lrsched.data import Split, steps_per_epoch
from lrsched.schedules.curves import Plan, Schedule
from lrsched.schedules.optim import make_optimizer
from lrsched.training.model import forward, lenet

REFRESH_EVERY = 25  # steps between divergence checks and progress-bar refreshes (each one is a host sync)


@dataclass(frozen=True)
class FitOptions:
    epochs: int = 10
    batch_size: int = 256
    momentum: float = 0.0
    weight_decay: float = 0.0
    eval_batch_size: int = 2048
    channels_last: bool = True
    progress: bool = True
    desc: str = ""


@dataclass
class FitResult:
    history: list[dict[str, float]]
    model: nn.Module
    diverged: bool = False
    message: str = ""
    seconds: float = 0.0
    final: dict[str, float] = field(default_factory=dict)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int, channels_last: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``split``, in large batches."""
    model.eval()
    loss = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device, dtype=torch.long)
    for start in range(0, len(split), batch_size):
        x = split.x[start:start + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = split.y[start:start + batch_size]
        logits = forward(model, x)
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    n = len(split)
    return loss.item() / n, correct.item() / n


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def init_model(seed: int) -> nn.Module:
    """The initial LeNet of ``seed``: every schedule trained with this seed starts from it."""
    torch.manual_seed(seed)
    return lenet()


def epoch_order(generator: torch.Generator, n: int) -> torch.Tensor:
    """The next epoch's shuffled sample order; the generator is seeded by the run's seed alone."""
    return torch.randperm(n, generator=generator)


def fit(plan: Plan | Schedule, train: Split, evals: dict[str, Split], seed: int, opts: FitOptions,
        callbacks: Sequence[Callback] = ()) -> FitResult:
    """Train a fresh LeNet; ``evals`` maps a name (``test``, ``val``) to a split scored each epoch.

    Epoch ``e`` trains at ``plan(e)`` from its first batch (``interval: epoch``),
    or at ``plan(e + i / steps)`` before batch ``i`` (``interval: step``); a bare
    schedule trains per epoch with SGD.
    A non-finite loss stops training and is reported as diverged, not as a result.
    """
    plan = Plan.of(plan)
    device = train.x.device
    if device.type == "cuda":
        configure_cuda()  # deterministic kernels (resolve_device did it already for stages)
    # Paired seeds: init and data order depend on the seed only, never on the schedule;
    # both come from CPU generators, then move to the device.
    model = init_model(seed).to(device)
    fmt = torch.channels_last if opts.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    train = Split(train.x.contiguous(memory_format=fmt), train.y)
    opt = make_optimizer(model.parameters(), plan.optimizer, opts.momentum, opts.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []  # per finished epoch, for metric-driven schedules
    history: list[dict[str, float]] = []
    start_all = time.perf_counter()

    for epoch in range(opts.epochs):
        t0 = time.perf_counter()
        model.train()
        plan.optimizer.train_mode(opt)
        sums = _train_epoch(model, opt, plan, train, epoch_order(gen, len(train)).to(device), epoch, losses, opts,
                            callbacks)
        plan.optimizer.eval_mode(opt)  # evaluate (and finally save) schedule-free SGD's averaged weights
        train_loss = sums.loss / sums.seen
        if not math.isfinite(train_loss):
            message = (f"diverged: non-finite training loss in epoch {epoch} at lr={sums.last_lr:.4g}; "
                       "lower the schedule's learning rate")
            return FitResult(history, model, diverged=True, message=message,
                             seconds=time.perf_counter() - start_all)
        record: dict[str, float] = {
            "epoch": epoch + 1,  # epochs completed: metrics are measured at the end of the epoch
            # the sample-weighted mean LR of the epoch: equals lr(e) with interval: epoch
            "lr": sums.lr / sums.seen,
            "train_loss": train_loss,
            "train_acc": sums.correct / sums.seen,
        }
        for name, split in evals.items():
            eval_loss, eval_acc = evaluate(model, split, opts.eval_batch_size, opts.channels_last)
            record[f"{name}_acc"] = eval_acc
            record[f"{name}_loss"] = eval_loss
        record["seconds"] = time.perf_counter() - t0
        losses.append(record.get("val_loss", train_loss))
        history.append(record)
        for cb in callbacks:
            cb.on_epoch_end(record)
    return FitResult(history, model, seconds=time.perf_counter() - start_all,
                     final=dict(history[-1]) if history else {})


def sgd_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
             y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One update on one batch (forward, cross-entropy, backward, step); the logits and the loss."""
    logits = forward(model, x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return logits, loss


@dataclass
class EpochSums:
    """One epoch's training totals, weighted by batch size."""

    lr: float
    loss: float
    correct: int
    seen: int
    last_lr: float


def _train_epoch(model: nn.Module, opt: torch.optim.Optimizer, plan: Plan, train: Split, perm: torch.Tensor,
                 epoch: int, losses: Sequence[float], opts: FitOptions, callbacks: Sequence[Callback]) -> EpochSums:
    """Epoch ``epoch`` over ``perm``; a non-finite running loss ends it early (the caller reports it)."""
    steps = steps_per_epoch(len(train), opts.batch_size)
    lr, lr_to_set = plan.rates(epoch, losses)
    _set_lr(opt, lr_to_set)
    lr_sum = 0.0
    loss_sum = torch.zeros((), device=train.x.device)
    correct = torch.zeros((), device=train.x.device, dtype=torch.long)
    seen = 0
    # disable=None shows the bar only on a terminal, so DVC/CI logs stay readable
    bar = tqdm(total=steps, desc=f"{opts.desc}epoch {epoch + 1}/{opts.epochs}",
               disable=None if opts.progress else True, leave=False, unit="batch", dynamic_ncols=True)
    for i in range(steps):
        if plan.per_step:
            t = epoch + i / steps
            lr, lr_to_set = plan.rates(t)
            _set_lr(opt, lr_to_set)
            for cb in callbacks:
                cb.on_step(epoch * steps + i, t, lr)
        idx = perm[i * opts.batch_size:(i + 1) * opts.batch_size]
        y = train.y[idx]
        logits, loss = sgd_step(model, opt, train.x[idx], y)
        lr_sum += lr * len(idx)
        with torch.no_grad():
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == y).sum()
        seen += len(idx)
        if (i + 1) % REFRESH_EVERY == 0 or i + 1 == steps:
            # checked with or without a bar (DVC and CI have none): a diverged epoch stops here
            running = loss_sum.item() / seen
            if not bar.disable:
                bar.set_postfix(loss=f"{running:.3f}", acc=f"{correct.item() / seen:.3f}", lr=f"{lr:.4g}",
                                refresh=False)
                bar.update((i + 1) - bar.n)
            if not math.isfinite(running):
                break
    bar.close()
    return EpochSums(lr_sum, loss_sum.item(), int(correct.item()), seen, lr)
