"""The LR range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks").

One short run from the seed's initial LeNet: the LR grows exponentially from
``start_lr`` each step, for at most ``max_epochs`` of an epoch, and the run stops
once one batch's loss blows up to ``diverge_factor`` times the smoothed loss's
minimum (the raw loss: a net that blows up here often falls back to chance-level
loss within a few steps, which an average would hide). The
suggested LR is the LR at the smoothed loss's minimum divided by 10 (fastai's
"minimum" rule); the divergence LR is where the loss blew up: an upper bound for
a search space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from lrsched.config import LrFindConfig
from lrsched.data import Split, steps_per_epoch
from lrsched.training.trainer import epoch_order, init_model, sgd_step

METHOD = "min_loss/10: the LR at the smoothed loss's minimum, divided by 10 (Smith 2017; fastai 'minimum')"


@dataclass(frozen=True)
class RangeTest:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    divergence: float | None  # None: the loss never blew up before end_lr

    def summary(self) -> dict[str, Any]:
        return {"suggested_lr": self.suggestion, "divergence_lr": self.divergence, "method": METHOD,
                "min_loss_lr": self.suggestion * 10, "steps": len(self.lrs),
                "last_lr": self.lrs[-1], "upper_bound_lr": self.upper_bound()}

    def records(self) -> list[dict[str, Any]]:
        """One record per step (a DVC plot of loss against LR); non-finite losses become null."""
        finite = lambda v: v if math.isfinite(v) else None  # noqa: E731 - JSON has no inf/NaN
        return [{"step": k, "lr": lr, "loss": finite(loss), "smoothed_loss": finite(smooth)}
                for k, (lr, loss, smooth) in enumerate(zip(self.lrs, self.losses, self.smoothed))]

    def upper_bound(self) -> float:
        """The largest LR worth searching: where the loss diverged, else the last LR tried."""
        return self.divergence if self.divergence is not None else self.lrs[-1]


def range_test(train: Split, seed: int, batch_size: int, cfg: LrFindConfig, progress: bool = True) -> RangeTest:
    device = train.x.device
    model = init_model(seed).to(device)  # the same start as every schedule's run with this seed
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.start_lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    order = epoch_order(torch.Generator().manual_seed(seed), len(train)).to(device)
    steps = max(2, math.floor(cfg.max_epochs * steps_per_epoch(len(train), batch_size)))
    growth = (cfg.end_lr / cfg.start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, divergence = 0.0, math.inf, None
    for k in tqdm(range(steps), desc="lr_find", disable=None if progress else True, leave=False, unit="step"):
        lr = cfg.start_lr * growth**k
        for group in opt.param_groups:
            group["lr"] = lr
        idx = order[k * batch_size:(k + 1) * batch_size]
        _, loss = sgd_step(model, opt, train.x[idx], train.y[idx])
        value = loss.item()  # one sync per step is fine for a run this short
        avg = cfg.smoothing * avg + (1 - cfg.smoothing) * value
        smooth = avg / (1 - cfg.smoothing ** (k + 1))  # debiased, as in fastai
        lrs.append(lr)
        losses.append(value)
        smoothed.append(smooth)
        if not math.isfinite(value) or value > cfg.diverge_factor * best:
            divergence = lr
            break
        best = min(best, smooth)
    finite = [(s, lr) for s, lr in zip(smoothed, lrs) if math.isfinite(s)]
    suggestion = min(finite)[1] / 10
    return RangeTest(lrs, losses, smoothed, suggestion, divergence)
