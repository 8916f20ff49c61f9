"""Figures: LR curves, the article's training-curves figure, test accuracy across schedules."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI or servers
import matplotlib.pyplot as plt  # noqa: E402

from lrsched.io import atomic_path  # noqa: E402
from lrsched.registry import lr_curve, optimizer_name  # noqa: E402
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


def plot_final_accuracy(default: Mapping[str, Mapping[int, Mapping]], tuned: Mapping[str, Mapping[int, Mapping]],
                        failed: Callable[[Mapping], bool], path: str | Path, title: str) -> None:
    """Every run's final test accuracy, default and tuned, one row per schedule; the median as a bar.

    Failed runs (``failed``) are not placed on the axis, which covers the runs that learned:
    they are counted in the row's label instead.
    """
    names = sorted(set(default) | set(tuned), key=lambda n: _median_of(tuned.get(n) or default.get(n), failed))
    groups = [(default, "default (article)", "C0", 0.17), (tuned, "tuned", "C1", -0.17)]
    learned = [float(r["test_acc"]) for g, *_ in groups for runs in g.values() for r in runs.values() if not failed(r)]
    span = (max(learned) - min(learned)) if learned else 1.0
    x0, x1 = (max(min(learned) - 0.1 * span - 0.002, 0.0), min(max(learned) + 0.1 * span + 0.002, 1.0)) \
        if learned else (0.0, 1.0)
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.55 * max(len(names), 1)))
    labels = []
    for y, name in enumerate(names):
        notes = []
        for source, label, color, offset in groups:
            runs = source.get(name, {})
            ok = [float(r["test_acc"]) for r in runs.values() if not failed(r)]
            ax.scatter(ok, [y + offset] * len(ok), s=10, color=color, alpha=0.5, zorder=2,
                       label=label if y == 0 else None)
            if ok:
                med = statistics.median(ok)
                ax.plot([med, med], [y + offset - 0.13, y + offset + 0.13], color=color, lw=2.5, zorder=3)
            bad = len(runs) - len(ok)
            if bad:
                notes.append(f"{label.split()[0]} {bad}/{len(runs)} failed")
        labels.append(name + (f"\n({'; '.join(notes)})" if notes else ""))
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlim(x0, x1)
    ax.set(xlabel="final test accuracy (dots: seeds; bar: median of the runs that learned)", title=title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def _median_of(runs: Mapping[int, Mapping] | None, failed: Callable[[Mapping], bool]) -> float:
    ok = [float(r["test_acc"]) for r in (runs or {}).values() if not failed(r)]
    return statistics.median(ok) if ok else float("-inf")


VERDICT_COLORS = {"worse": "C3", "better": "C2", "equivalent": "C0", "inconclusive": "0.5", "same config": "0.5"}


def plot_forest(decisions: Mapping, path: str | Path) -> None:
    """Paired Δ against the leader with the corrected CIs, coloured by verdict, the margin shaded."""
    pairs = sorted([p for p in decisions["pairs"] if p.get("delta") is not None], key=lambda p: p["delta"])
    margin = decisions["margin"]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * max(len(pairs), 1)))
    ax.axvspan(-margin, margin, color="C0", alpha=0.12, label=f"equivalence margin ±{margin}")
    ax.axvline(0, color="k", lw=0.8)
    shown = set()
    for y, p in enumerate(pairs):
        color = VERDICT_COLORS.get(p["verdict"], "0.5")
        lo, hi = p["ci"] if p.get("ci") else (p["delta"], p["delta"])
        ax.errorbar([p["delta"]], [y], xerr=[[p["delta"] - lo], [hi - p["delta"]]], fmt="o", color=color,
                    capsize=3, label=None if p["verdict"] in shown else p["verdict"])
        shown.add(p["verdict"])
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels([f"{p['name']} (n={p['n']})" for p in pairs], fontsize=8)
    ax.set_ylim(-0.7, len(pairs) - 0.3)
    level = decisions.get("ci_level", 0.95)
    ax.set(xlabel=f"paired Δ test accuracy vs leader {decisions['leader']} ({level:.2%} CI, corrected)",
           title=f"Tuned schedules against the leader, {decisions['leader']}")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
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
