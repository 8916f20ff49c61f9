"""The optimizer a plan names, and the train/eval switch that schedule-free SGD needs.

Schedule-free SGD (Defazio et al. 2024, the ``schedulefree`` package) trains one
iterate and evaluates another, the running average: it must be put in train mode
before training steps and in eval mode before every evaluation and before its
weights are saved. Plain SGD has no modes; the switches are no-ops for it.
"""

from __future__ import annotations

from typing import Iterable

import torch

from lrsched.schedules.curves import Plan


def make_optimizer(params: Iterable[torch.nn.Parameter], plan: Plan, momentum: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    if plan.optimizer == "schedule_free_sgd":
        import schedulefree  # only schedule-free runs need it

        # foreach=False: the per-tensor loop gives the same numbers on every CPU (no fused kernels)
        return schedulefree.SGDScheduleFree(params, lr=plan.optimizer_lr, momentum=momentum,
                                            weight_decay=weight_decay, warmup_steps=plan.warmup_steps,
                                            foreach=False)
    return torch.optim.SGD(params, lr=0.0, momentum=momentum, weight_decay=weight_decay)


def train_mode(opt: torch.optim.Optimizer) -> None:
    """Before training steps: schedule-free SGD moves the weights to its training iterate."""
    if hasattr(opt, "train"):
        opt.train()


def eval_mode(opt: torch.optim.Optimizer) -> None:
    """Before evaluating or saving: schedule-free SGD moves the weights to its average."""
    if hasattr(opt, "eval"):
        opt.eval()
