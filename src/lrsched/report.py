"""reports/summary.md: every schedule, sorted by final test accuracy."""

from __future__ import annotations

from typing import Any, Mapping


def _pm(m: Mapping[str, Any], key: str) -> str:
    if key not in m:
        return "—"
    if m.get("seeds", 1) > 1:
        return f"{m[key]:.4f} ± {m.get(key + '_std', 0.0):.4f}"
    return f"{m[key]:.4f}"


def summary_markdown(metrics: Mapping[str, Mapping[str, Any]], descriptions: Mapping[str, str],
                     tuned: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A markdown table; ``tuned`` adds the tuned-vs-default columns when tuning ran."""
    tuned = tuned or {}
    order = sorted(metrics, key=lambda n: -metrics[n].get("test_acc", -1.0))
    seeds = max((m.get("seeds", 1) for m in metrics.values()), default=1)
    head = ["rank", "schedule", "config", "test acc", "best test acc", "train acc", "train loss", "s/run"]
    if tuned:
        head += ["tuned test acc", "Δ tuned − default", "tuned params"]
    lines = [
        "# Learning-rate schedules on FashionMNIST (LeNet)",
        "",
        f"Final-epoch metrics{' as mean ± std over ' + str(seeds) + ' seeds' if seeds > 1 else ''}, "
        "sorted by final test accuracy.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for rank, name in enumerate(order, 1):
        m = metrics[name]
        if m.get("diverged") and "test_acc" not in m:
            row = [str(rank), name, descriptions.get(name, ""), "diverged", "—", "—", "—", "—"]
        else:
            row = [str(rank), name, descriptions.get(name, ""), _pm(m, "test_acc"), _pm(m, "best_test_acc"),
                   _pm(m, "train_acc"), _pm(m, "train_loss"), f"{m.get('seconds', 0):.0f}"]
        if tuned:
            t = tuned.get(name)
            if t and "test_acc" in t and "test_acc" in m:
                params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in t.get("params", {}).items())
                row += [_pm(t, "test_acc"), f"{t['test_acc'] - m['test_acc']:+.4f}", params]
            else:
                row += ["—", "—", "not tuned"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
