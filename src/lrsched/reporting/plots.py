"""Study-wide figures: test accuracy of every schedule, final accuracy per run, the forest plot."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt

from lrsched.training.figures import save


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
    save(fig, path)


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
    save(fig, path)


def _median_of(runs: Mapping[int, Mapping] | None, failed: Callable[[Mapping], bool]) -> float:
    ok = [float(r["test_acc"]) for r in (runs or {}).values() if not failed(r)]
    return statistics.median(ok) if ok else float("-inf")


VERDICT_COLORS = {"worse": "C3", "better": "C2", "equivalent": "C0", "inconclusive": "0.5", "same config": "0.5"}


def _forest_range(pairs: Sequence[Mapping], margin: float) -> tuple[float, float]:
    """The x range that shows every Δ and the typical CIs: a CI far wider than the rest (a pair with a
    failed run) is drawn clipped at the edge, with its bound written there, instead of squashing the others."""
    widths = [p["ci"][1] - p["ci"][0] for p in pairs if p.get("ci")]
    typical = statistics.median(widths) if widths else 0.0
    ends = [-margin, margin, *(p["delta"] for p in pairs)]
    ends += [end for p in pairs if p.get("ci") and p["ci"][1] - p["ci"][0] <= 5 * typical for end in p["ci"]]
    lo, hi = min(ends), max(ends)
    pad = 0.08 * (hi - lo)
    return lo - pad, hi + pad


def plot_forest(decisions: Mapping, path: str | Path) -> None:
    """Paired Δ against the leader with the corrected CIs, coloured by verdict, the margin shaded."""
    pairs = sorted([p for p in decisions["pairs"] if p.get("delta") is not None], key=lambda p: p["delta"])
    margin = decisions["margin"]
    left, right = _forest_range(pairs, margin)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * max(len(pairs), 1)))
    ax.axvspan(-margin, margin, color="C0", alpha=0.12, label=f"equivalence margin ±{margin}")
    ax.axvline(0, color="k", lw=0.8)
    shown = set()
    for y, p in enumerate(pairs):
        color = VERDICT_COLORS.get(p["verdict"], "0.5")
        lo, hi = p["ci"] if p.get("ci") else (p["delta"], p["delta"])
        shown_lo, shown_hi = max(lo, left), min(hi, right)
        ax.errorbar([p["delta"]], [y], xerr=[[p["delta"] - shown_lo], [shown_hi - p["delta"]]], fmt="o", color=color,
                    capsize=3, label=None if p["verdict"] in shown else p["verdict"])
        for bound, edge, align, arrow in ((lo, left, "left", "◀ "), (hi, right, "right", " ▶")):
            if bound != (shown_lo if align == "left" else shown_hi):  # clipped: say where the CI really ends
                text = f"{arrow.strip()} {bound:+.3f}" if align == "left" else f"{bound:+.3f} {arrow.strip()}"
                ax.annotate(text, (edge, y), xytext=(0, 5), textcoords="offset points", ha=align, fontsize=7,
                            color=color)
        shown.add(p["verdict"])
    ax.set_xlim(left, right)
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels([f"{p['name']} (n={p['n']})" for p in pairs], fontsize=8)
    ax.set_ylim(-0.7, len(pairs) - 0.3)
    level = decisions.get("ci_level", 0.95)
    ax.set(xlabel=f"paired Δ test accuracy vs leader {decisions['leader']} ({level:.2%} CI, corrected)",
           title=f"Tuned schedules against the leader, {decisions['leader']}")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")  # the top rows sit near 0: the leader's closest rivals
    save(fig, path)
