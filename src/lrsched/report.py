"""reports/summary.md: schedules ranked by final test accuracy, with paired-seed statistics.

Each metrics file holds a summary over the seeds that did not diverge and the
per-seed results (``per_seed``, keyed by seed number as a string). Summary cells
come from the file; every comparison is paired by seed key, because the seed
moves accuracy more than most schedules do (see ``lrsched.stats``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from lrsched.stats import LEARNED_MIN, TEST_NAME, PairedDiff, mean_ci, paired_diff

Metrics = Mapping[str, Any]
TABLE_START = "<!-- table:start -->"
TABLE_END = "<!-- table:end -->"
NONE = "—"
HEAD = ["rank", "schedule", "config", "test acc (mean ± 95% CI)", "std", "Δ vs best [95% CI]", "tie?",
        "tuned test acc (mean ± 95% CI)", "Δ tuned − default [95% CI]", "tuned params"]


# ---- reading one metrics file ------------------------------------------------------------

def _seed_key(key: str) -> tuple[int, str]:
    return (int(key), key) if key.lstrip("-").isdigit() else (1 << 30, key)


def _seeds(m: Metrics) -> list[str]:
    return sorted(m.get("per_seed", {}), key=_seed_key)


def _accs(m: Metrics) -> dict[str, float]:
    """Seed key -> final test accuracy, for the seeds that did not diverge."""
    return {s: float(r["test_acc"]) for s, r in m.get("per_seed", {}).items()
            if not r.get("diverged") and r.get("test_acc") is not None}


def _failed(m: Metrics) -> tuple[list[str], list[str]]:
    """(diverged seeds, seeds that ended under LEARNED_MIN)."""
    per_seed = m.get("per_seed", {})
    diverged = [s for s in _seeds(m) if per_seed[s].get("diverged") or per_seed[s].get("test_acc") is None]
    low = [s for s, acc in _accs(m).items() if acc < LEARNED_MIN]
    return diverged, sorted(low, key=_seed_key)


def learned(m: Metrics) -> bool:
    """False when any seed diverged or ended near chance: its mean would mix two regimes."""
    diverged, low = _failed(m)
    return bool(_accs(m)) and not diverged and not low


def _interval(m: Metrics) -> dict[str, Any] | None:
    """The file's test_acc summary, or one computed from per_seed when the file lacks it."""
    summary = m.get("test_acc")
    if isinstance(summary, Mapping):
        return dict(summary)
    accs = list(_accs(m).values())
    return mean_ci(accs).as_dict() if accs else None


def _mean(m: Metrics) -> float:
    iv = _interval(m)
    return float(iv["mean"]) if iv else float("-inf")


def _pair(a: Metrics, b: Metrics) -> PairedDiff | None:
    """Paired difference a - b over the seeds both finished (matched by seed key)."""
    acc_a, acc_b = _accs(a), _accs(b)
    common = sorted(set(acc_a) & set(acc_b), key=_seed_key)
    if not common:
        return None
    return paired_diff([acc_a[s] for s in common], [acc_b[s] for s in common])


# ---- cell formatting ---------------------------------------------------------------------

def _acc_cell(iv: Mapping[str, Any] | None) -> str:
    if not iv:
        return NONE
    if iv.get("ci95_low") is None or iv.get("ci95_high") is None:
        return f"{iv['mean']:.4f} ± n/a"
    half = (iv["ci95_high"] - iv["ci95_low"]) / 2
    return f"{iv['mean']:.4f} ± {half:.4f}"


def _std_cell(iv: Mapping[str, Any] | None) -> str:
    if not iv:
        return NONE
    return "n/a" if iv.get("std") is None else f"{iv['std']:.4f}"


def _diff_cell(d: PairedDiff) -> str:
    if d.low is None or d.high is None:
        return f"{d.mean:+.4f} [n/a]"
    return f"{d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}]"


def _p(d: PairedDiff) -> str:
    return f"p = {d.p_value:.2g}" if d.p_value is not None else ""


def _params(t: Metrics) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in t.get("params", {}).items()) or NONE


def _failure_text(m: Metrics) -> str:
    """E.g. '1 of 3 seeds diverged, 2 ended at chance (seed 0: diverged, seed 1: 0.1000, ...)'."""
    diverged, low = _failed(m)
    n = len(_seeds(m))
    parts = []
    if diverged:
        parts.append(f"{len(diverged)} of {n} seeds diverged")
    if low:
        parts.append(f"{len(low)}{'' if diverged else f' of {n}'} seeds ended at chance (< {LEARNED_MIN:.2f})")
    accs = _accs(m)
    per = ", ".join(f"seed {s}: {accs[s]:.4f}" if s in accs else f"seed {s}: diverged" for s in _seeds(m))
    return f"{', '.join(parts) or 'no seed finished'} ({per})"


def _ranked(metrics: Mapping[str, Metrics]) -> tuple[list[str], list[str]]:
    """(learned schedules best first, the rest in input order)."""
    ok = [n for n in metrics if learned(metrics[n])]
    return sorted(ok, key=lambda n: -_mean(metrics[n])), [n for n in metrics if n not in ok]


# ---- the table ---------------------------------------------------------------------------

def _tuned_cells(m: Metrics, t: Metrics | None) -> list[str]:
    if not t:
        return [NONE, NONE, NONE]
    if not learned(t):
        diverged, low = _failed(t)
        return [f"did not learn ({len(diverged) + len(low)}/{len(_seeds(t))} seeds)", NONE, _params(t)]
    d = _pair(t, m)
    if d is None:
        delta = NONE
    elif d.p_value is None:
        delta = f"{_diff_cell(d)} n={d.n}"
    else:
        verdict = ("better" if d.mean > 0 else "worse") if d.significant else "tie"
        delta = f"{_diff_cell(d)} {verdict} ({_p(d)})"
    return [_acc_cell(_interval(t)), delta, _params(t)]


def results_table(metrics: Mapping[str, Metrics], descriptions: Mapping[str, str],
                  tuned: Mapping[str, Metrics] | None = None) -> str:
    """The ranked table and the 'Best' lines (what the README shows)."""
    tuned = tuned or {}
    order, failed = _ranked(metrics)
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    best = order[0] if order else None
    tied: list[str] = []
    undecided = False
    for rank, name in enumerate(order, 1):
        m = metrics[name]
        iv = _interval(m)
        if name == best:
            delta, tie = NONE, "best"
        else:
            d = _pair(m, metrics[best])
            if d is None:
                delta, tie = NONE, "no common seeds"
                undecided = True
            elif d.p_value is None:
                delta, tie = _diff_cell(d), f"n={d.n}"
                undecided = True
            else:
                delta = _diff_cell(d)
                tie = f"{'worse' if d.significant else 'tied'} ({_p(d)})"
                if not d.significant:
                    tied.append(name)
        row = [str(rank), name, descriptions.get(name, ""), _acc_cell(iv), _std_cell(iv), delta, tie,
               *_tuned_cells(m, tuned.get(name))]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if best is None:
        lines.append("No schedule learned on every seed; nothing to rank.")
    else:
        if undecided:
            verdict = "Too few paired seeds to test which schedules are tied with it."
        elif tied:
            verdict = f"Statistically tied with it: {', '.join(tied)}."
        else:
            verdict = "No other schedule is tied with it."
        lines.append(f"Best: {best} (mean {_mean(metrics[best]):.4f}). {verdict}")
    good_tuned = [n for n, t in tuned.items() if learned(t)]
    if good_tuned:
        top = max(good_tuned, key=lambda n: _mean(tuned[n]))
        lines.append("")
        lines.append(f"Best tuned: {top} at mean {_mean(tuned[top]):.4f} with params {_params(tuned[top])}.")
    if failed:  # never drop a schedule silently from the README
        lines.append("")
        lines.append(f"Not ranked (did not learn on every seed): {', '.join(failed)}.")
    return "\n".join(lines) + "\n"


def _seed_lists(metrics: Mapping[str, Metrics]) -> list[list[str]]:
    return [_seeds(m) for m in metrics.values()]


def _method(metrics: Mapping[str, Metrics]) -> list[str]:
    lists = _seed_lists(metrics)
    union = sorted({s for lst in lists for s in lst}, key=_seed_key)
    n = len(union)
    same = all(lst == lists[0] for lst in lists) if lists else True
    text = (f"Final-epoch test accuracy over {n} paired seed{'s' if n != 1 else ''} ({', '.join(union)}): "
            "seed s gives every schedule the same initial weights and data order. "
            "Means carry a 95% confidence interval (Student t, n−1 df); "
            f"each schedule is compared with the best once by a {TEST_NAME}, "
            "and so is each tuned schedule with its default. No multiple-comparison correction is applied, "
            "and the best is picked on the same data, so its lead is if anything overstated.")
    if not same:
        text += " Not every schedule ran the same seeds; each comparison uses the seeds both ran."
    lines = [text]
    if max((len(lst) for lst in lists), default=0) < 2:
        lines += ["", "**One seed cannot rank schedules**: with n = 1 there is no CI and no test "
                      "(cells read n/a / n=1); the order below may be seed noise. Run more seeds."]
    return lines


def _per_seed_table(metrics: Mapping[str, Metrics], tuned: Mapping[str, Metrics], names: Sequence[str]) -> list[str]:
    cols = sorted({s for m in [*metrics.values(), *tuned.values()] for s in _seeds(m)}, key=_seed_key)
    lines = ["| schedule | " + " | ".join(f"seed {s}" for s in cols) + " |", "|---|" + "---|" * len(cols)]

    def row(label: str, m: Metrics) -> str:
        accs, per = _accs(m), m.get("per_seed", {})
        cells = [f"{accs[s]:.4f}" if s in accs else ("diverged" if s in per else NONE) for s in cols]
        return f"| {label} | " + " | ".join(cells) + " |"

    for name in names:
        lines.append(row(name, metrics[name]))
        if name in tuned:
            lines.append(row(f"{name} (tuned)", tuned[name]))
    return lines


def summary_markdown(metrics: Mapping[str, Metrics], descriptions: Mapping[str, str],
                     tuned: Mapping[str, Metrics] | None = None) -> str:
    """The whole report; the results table sits between TABLE_START/TABLE_END for the README."""
    tuned = tuned or {}
    order, failed = _ranked(metrics)
    lines = ["# Learning-rate schedules on FashionMNIST (LeNet)", "", *_method(metrics), "",
             TABLE_START, results_table(metrics, descriptions, tuned).rstrip("\n"), TABLE_END]
    if failed:
        lines += ["", "## Did not learn", ""]
        for name in failed:
            m = metrics[name]
            desc = f" ({descriptions[name]})" if descriptions.get(name) else ""
            line = (f"- **{name}**{desc}: {_failure_text(m)}. Its peak LR is probably too high for this net; "
                    "lower it.")
            t = tuned.get(name)
            if t and learned(t):
                line += f" Tuned: {_acc_cell(_interval(t))} with {_params(t)}."
            elif t:
                line += " Tuned: did not learn either."
            lines.append(line)
    lines += ["", "## Per-seed final test accuracy", "", *_per_seed_table(metrics, tuned, [*order, *failed])]
    return "\n".join(lines) + "\n"
