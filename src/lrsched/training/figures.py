"""Figures of one run or one plan: LR curves, the article's training-curves figure, the range test.

Drawn by the training stages into each MLflow run (and reused by the plot stage for the
study-wide LR figure); the study-wide comparisons are in ``lrsched.reporting.plots``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI or servers
import matplotlib.pyplot as plt  # noqa: E402

from lrsched.core.io import atomic_path  # noqa: E402
from lrsched.schedules.curves import Plan  # noqa: E402
from lrsched.schedules.registry import lr_curve, optimizer_name  # noqa: E402

POINTS_PER_EPOCH = 20


def save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_lr_curves(plans: Mapping[str, Plan], epochs: int, path: str | Path,
                   title: str = "Learning rate schedules") -> None:
    """Every schedule's LR vs epoch, computed from the plans alone (no training).

    ``interval: epoch`` schedules are drawn as steps (the LR is held through each
    epoch); ``interval: step`` ones as smooth curves.
    """
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, plan in plans.items():
        label = name + (" (metric-driven: shown without plateaus)" if plan.metric_driven else "")
        if plan.optimizer.replaces_schedule:
            label += f" ({optimizer_name(plan.optimizer)})"
        if plan.per_step:
            ts, lrs = lr_curve(plan, epochs, POINTS_PER_EPOCH)
            ax.plot(ts + [epochs], lrs + [plan(epochs)], label=label)
        else:
            ts, lrs = lr_curve(plan, epochs)
            ax.step(ts + [epochs], lrs + [lrs[-1]], where="post", label=label)
    ax.set(xlabel="epoch", ylabel="learning rate", title=title, xlim=(0, epochs))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    save(fig, path)


def plot_training_curves(history: Sequence[Mapping[str, float]], path: str | Path, title: str) -> None:
    """The article's figure: train loss, train acc and test acc vs epoch."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(epochs, [h["train_loss"] for h in history], "-", label="train loss")
    ax.plot(epochs, [h["train_acc"] for h in history], "--", label="train acc")
    for key, style in (("test_acc", "-."), ("val_acc", ":")):
        if history and key in history[0]:
            ax.plot(epochs, [h[key] for h in history], style, label=key.replace("_", " "))
    ax.set(xlabel="epoch", ylabel="loss / accuracy", title=title)
    if epochs:
        ax.set_xlim(min(epochs) - 0.1, max(epochs) + 0.1)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right")
    save(fig, path)


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float], suggestion: float,
                 divergence: float | None, path: str | Path) -> None:
    """The LR range test: loss against LR (log axis), the suggestion and the divergence point marked."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(lrs, losses, color="0.75", lw=0.8, label="loss per batch")
    ax.plot(lrs, smoothed, color="C0", lw=2, label="smoothed loss")
    ax.axvline(suggestion, color="C2", ls="--", label=f"suggested lr {suggestion:.3g} (min/10)")
    if divergence is not None:
        ax.axvline(divergence, color="C3", ls="--", label=f"diverged at lr {divergence:.3g}")
    finite = [v for v in smoothed if v == v and v != float("inf")]
    if finite:  # keep the interesting range: from below the minimum to a bit above the start
        ax.set_ylim(min(finite) * 0.9, max(smoothed[0], min(finite)) * 1.6)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss", title="LR range test (one run, seed 0)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    save(fig, path)
