"""Figures: LR curves, the article's training-curves figure, test accuracy across schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI or servers
import matplotlib.pyplot as plt  # noqa: E402

from lrsched.io import atomic_path  # noqa: E402
from lrsched.registry import lr_curve  # noqa: E402
from lrsched.schedules import Plan  # noqa: E402

POINTS_PER_EPOCH = 20


def _save(fig: plt.Figure, path: str | Path) -> None:
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
        if plan.optimizer != "sgd":
            label += f" ({plan.optimizer})"
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


def _num(value: object) -> float:
    """A history value as a float; None (a diverged epoch) becomes NaN, a gap in the line."""
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def plot_metric_band(histories: Mapping[str, Sequence[Mapping[str, float]]], key: str, path: str | Path,
                     title: str) -> None:
    """One metric of every schedule vs epoch: the mean over seeds and a shaded ±std band.

    The band comes from ``f"{key}_std"`` in each record; records without it draw the line alone.
    """
    fig, ax = plt.subplots(figsize=(8, 4.8))
    colors = {name: f"C{i % 10}" for i, name in enumerate(histories)}  # same colours as plot_lr_curves

    def final(item: tuple[str, Sequence[Mapping[str, float]]]) -> float:
        value = _num(item[1][-1].get(key)) if item[1] else float("nan")
        return -value if value == value else float("inf")  # best first, NaN last

    for name, history in sorted(histories.items(), key=final):
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        mean = [_num(h.get(key)) for h in history]
        ax.plot(epochs, mean, marker="o", ms=3, color=colors[name], label=f"{name} ({mean[-1]:.3f})")
        if all(f"{key}_std" in h for h in history):
            std = [_num(h[f"{key}_std"]) for h in history]
            ax.fill_between(epochs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=colors[name], alpha=0.15, linewidth=0)
    ax.set(xlabel="epoch", ylabel=key.replace("_", " ") + " (mean ± std over seeds)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def _summary(m: Mapping) -> tuple[float | None, float | None, float | None, list[float]]:
    """(mean, lower error, upper error, per-seed accuracies) of one metrics file's test accuracy."""
    per = [float(r["test_acc"]) for r in m.get("per_seed", {}).values()
           if not r.get("diverged") and r.get("test_acc") is not None]
    s = m.get("test_acc")
    if not isinstance(s, Mapping):  # no summary in the file: compute it from the seeds
        if not per:
            return None, None, None, per
        from lrsched.stats import mean_ci
        s = mean_ci(per).as_dict()
    mean = float(s["mean"])
    if s.get("ci95_low") is not None and s.get("ci95_high") is not None:
        return mean, mean - float(s["ci95_low"]), float(s["ci95_high"]) - mean, per
    std = s.get("std")  # CI missing (n = 1, or an older file): std, if any
    return mean, std, std, per


def plot_final_accuracy(metrics: Mapping[str, Mapping], tuned: Mapping[str, Mapping] | None, path: str | Path,
                        title: str = "Final test accuracy (mean, 95% CI, seeds as dots)") -> None:
    """Default vs tuned final test accuracy per schedule: mean, 95% CI bar, one dot per seed.

    Schedules that did not learn would squash the rest against 1.0, so the axis
    covers the learned results; anything off that range is written as text.
    """
    from lrsched.report import learned  # one definition of "did not learn"
    from lrsched.stats import LEARNED_MIN

    tuned = tuned or {}

    def order(name: str) -> float:
        mean = _summary(metrics[name])[0]
        return mean if mean is not None and learned(metrics[name]) else float("-inf")

    names = sorted(metrics, key=order)  # best at the top of a horizontal chart
    groups = [(metrics, "default", "C0", 0.17), (tuned, "tuned", "C1", -0.17)]

    # x range from learned runs only (means, CI ends and seed dots)
    xs: list[float] = []
    for source, *_ in groups:
        for name in names:
            m = source.get(name)
            if m and learned(m):
                mean, lo, hi, per = _summary(m)
                if mean is not None:
                    xs += [mean - (lo or 0.0), mean + (hi or 0.0), *per]
    if xs:
        span = max(max(xs) - min(xs), 0.01)
        x0, x1 = max(min(xs) - 0.15 * span, 0.0), min(max(xs) + 0.15 * span, 1.0)
    else:
        x0, x1 = 0.0, 1.0

    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.55 * max(len(names), 1)))
    for source, label, color, offset in groups:
        shown = False
        for y, name in enumerate(names):
            m = source.get(name)
            if not m:
                continue
            mean, lo, hi, per = _summary(m)
            yy = y + offset
            dots = [v for v in per if x0 <= v <= x1]
            ax.scatter(dots, [yy] * len(dots), s=9, color=color, alpha=0.45, zorder=2)
            if learned(m) and mean is not None and x0 <= mean <= x1:
                err = None if lo is None else [[lo], [hi]]
                ax.errorbar([mean], [yy], xerr=err, fmt="o", ms=5, color=color, capsize=3, zorder=3,
                            label=None if shown else label)
                shown = True
            else:  # did not learn: its mean mixes failed and good seeds, so say it instead of plotting it
                n = len(m.get("per_seed", {}))
                bad = n - len(per) + sum(v < LEARNED_MIN for v in per)  # diverged + ended near chance
                text = "all seeds diverged" if not per else f"mean {mean:.3f}, {bad} of {n} seeds failed"
                ax.annotate(f"{label} did not learn: {text}", (x0, yy), xytext=(4, 3),  # above its dots
                            textcoords="offset points", va="bottom", fontsize=7, color=color)
        if not shown and any(source.get(n) for n in names):  # keep the legend entry for text-only groups
            ax.errorbar([], [], fmt="o", color=color, label=label)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([n if learned(metrics[n]) else f"{n} (did not learn)" for n in names])
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlim(x0, x1)
    ax.set(xlabel="final test accuracy", title=title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


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
    _save(fig, path)
