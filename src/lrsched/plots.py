"""Figures: LR curves, the article's training-curves figure, test accuracy across schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI or servers
import matplotlib.pyplot as plt  # noqa: E402

from lrsched.io import atomic_path  # noqa: E402
from lrsched.registry import AnySchedule, lr_curve  # noqa: E402
from lrsched.schedules import Plateau  # noqa: E402

POINTS_PER_EPOCH = 20


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_lr_curves(schedules: Mapping[str, AnySchedule], intervals: Mapping[str, str], epochs: int,
                   path: str | Path, title: str = "Learning rate schedules") -> None:
    """Every schedule's LR vs epoch, computed from the schedules alone (no training).

    ``interval: epoch`` schedules are drawn as steps (the LR is held through each
    epoch); ``interval: step`` ones as smooth curves.
    """
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for name, schedule in schedules.items():
        label = name + (" (metric-driven: shown without plateaus)" if isinstance(schedule, Plateau) else "")
        if intervals.get(name) == "step":
            ts, lrs = lr_curve(schedule, epochs, POINTS_PER_EPOCH)
            ax.plot(ts + [epochs], lrs + [schedule(epochs)], label=label)
        else:
            ts, lrs = lr_curve(schedule, epochs)
            ax.step(ts + [epochs], lrs + [lrs[-1]], where="post", label=label)
    ax.set(xlabel="epoch", ylabel="learning rate", title=title, xlim=(0, epochs))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    _save(fig, path)


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
    _save(fig, path)


def plot_metric(histories: Mapping[str, Sequence[Mapping[str, float]]], key: str, path: str | Path,
                title: str) -> None:
    """One metric of every schedule vs epoch on one figure."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    colors = {name: f"C{i % 10}" for i, name in enumerate(histories)}  # same colours as plot_lr_curves
    for name, history in sorted(histories.items(), key=lambda kv: -kv[1][-1][key] if kv[1] else 0):
        if history:  # legend sorted best first, with the final value
            ax.plot([h["epoch"] for h in history], [h[key] for h in history], marker="o", ms=3,
                    color=colors[name], label=f"{name} ({history[-1][key]:.3f})")
    ax.set(xlabel="epoch", ylabel=key.replace("_", " "), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
