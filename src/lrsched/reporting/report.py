"""reports/summary.md: the tuned schedules ranked against each other with their verdicts, then the
article's defaults as its reproduction, per-seed numbers and the compute budget.

Everything is read from the stages' files (``reports/decisions.json`` holds the verdicts
of the compare stage); the article's defaults are judged here by the same rules
(``lrsched.decisions``), in one look.
"""

from __future__ import annotations

from typing import Any, Mapping

from lrsched.analysis.decisions import (
    Summary,
    Verdict,
    as_table,
    failure_reason,
    judge,
    paired_columns,
    summarize_runs,
)
from lrsched.config import CompareConfig, FailureConfig
from lrsched.core.stats import format_p, friedman

Metrics = Mapping[str, Any]
TABLE_START = "<!-- table:start -->"
TABLE_END = "<!-- table:end -->"
NONE = "—"
HEAD = ["rank", "schedule", "seeds", "failed (95% Wilson)", "test acc: median [range]", "mean ± 95% CI",
        "Δ vs leader [corrected CI]", "adj. p", "verdict", "tuned params"]
DEFAULT_HEAD = ["schedule", "config (optimizer)", "seeds", "failed", "test acc: median [range]", "mean ± 95% CI",
                "Δ vs best default [corrected CI]", "adj. p", "verdict"]


def _f(x: float | None, spec: str = ".4f") -> str:
    return NONE if x is None else format(x, spec)


def _median_cell(s: Summary) -> str:
    if s.median is None:
        return "no run learned"
    return f"{s.median:.4f} [{s.low:.4f}, {s.high:.4f}]"


def _mean_cell(s: Summary) -> str:
    if s.mean is None:
        return "— (failures: see median)" if s.failed else NONE
    if s.mean_ci is None:
        return f"{s.mean:.4f} (n=1)"
    return f"{s.mean:.4f} [{s.mean_ci[0]:.4f}, {s.mean_ci[1]:.4f}]"


def _failed_cell(s: Summary) -> str:
    return f"{s.failed}/{s.n} [{s.failure_ci[0]:.2f}, {s.failure_ci[1]:.2f}]"


def _delta_cell(v: Verdict | None) -> str:
    if v is None:
        return "leader"
    if v.delta is None:
        return f"n={v.n}"
    if v.verdict == "same config":
        return "+0.0000 (same config)"
    return f"{v.delta:+.4f} [{v.ci[0]:+.4f}, {v.ci[1]:+.4f}]" if v.ci else f"{v.delta:+.4f}"


def _verdict_cell(v: Verdict | None) -> str:
    if v is None:
        return "leader"
    if v.verdict == "inconclusive":
        need = f"{v.n_needed} needed" if v.n_needed else "no n decides it"
        return f"inconclusive (n={v.n}; {need})"
    return v.verdict


def _p_cell(v: Verdict | None) -> str:
    return NONE if v is None or v.p_adj is None else format_p(v.p_adj).removeprefix("p = ").removeprefix("p ")


def _params(p: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()) or NONE


def _verdict(record: Mapping[str, Any]) -> Verdict:
    return Verdict(**{**record, "ci": tuple(record["ci"]) if record.get("ci") else None,
                      "seeds": tuple(record.get("seeds", ()))})


def tuned_table(compare: Metrics, decisions: Metrics, rule: FailureConfig) -> list[str]:
    """The headline: tuned schedules, leader first, then by mean paired Δ against it."""
    table = as_table(compare["schedules"])
    verdicts = {r["name"]: _verdict(r) for r in decisions["pairs"]}
    leader = decisions["leader"]
    order = [leader, *sorted(verdicts, key=lambda n: -(verdicts[n].delta if verdicts[n].delta is not None else -1))]
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for rank, name in enumerate(order, 1):
        s = summarize_runs(table[name], rule)
        v = verdicts.get(name)
        row = [str(rank), name, str(s.n), _failed_cell(s), _median_cell(s), _mean_cell(s), _delta_cell(v),
               _p_cell(v),
               _verdict_cell(v), _params(compare["schedules"][name]["params"])]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def headline_text(compare: Metrics, decisions: Metrics, cc: CompareConfig, rule: FailureConfig) -> list[str]:
    counts: dict[str, int] = {}
    for r in decisions["pairs"]:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    parts = ", ".join(f"{k} {counts[k]}" for k in ("worse", "better", "equivalent", "inconclusive", "same config")
                      if counts.get(k))
    lines = [f"Leader: **{decisions['leader']}**. Against it: {parts}.",
             "",
             f"Decided: **{decisions['decided']} of {decisions['compared']}** comparisons with the leader after "
             f"the sequential allocation, against {decisions['decided_first_seeds_only']} of "
             f"{decisions['compared']} with the first {cc.first_seeds} seeds alone (same correction)."]
    base = decisions.get("baseline_pair")
    if base:
        v = _verdict(base)
        lines += ["", f"Schedule-free SGD against tuned constant-LR SGD (the \"no schedule\" baseline, both with "
                      f"momentum 0.9): Δ = {_delta_cell(v)}, {format_p(v.p_adj)}, **{_verdict_cell(v)}** "
                      f"(n = {v.n})."]
    table = as_table(compare["schedules"])
    shared = sorted(set.intersection(*(set(r) for r in table.values()))) if table else []
    if len(table) >= 3 and len(shared) >= 2:
        columns = paired_columns(table, shared, rule)
        stat, p = friedman(columns)
        lines += ["", f"Omnibus: Friedman's test over the {len(shared)} seeds every tuned schedule shares "
                      f"({', '.join(map(str, shared))}; failed runs at chance): χ² = {stat:.2f}, {format_p(p)}."]
    return lines


def defaults_table(metrics: Mapping[str, Metrics], descriptions: Mapping[str, str], rule: FailureConfig,
                   cc: CompareConfig) -> list[str]:
    """The article's defaults, judged in one look against the best default (Holm over the pairs)."""
    table = as_table(metrics)
    look = judge(table, rule, cc.margin, cc.alpha, cc.power)
    verdicts = {v.name: v for v in look.verdicts}
    order = [look.leader, *sorted(verdicts, key=lambda n: -(verdicts[n].delta if verdicts[n].delta is not None
                                                             else -1))]
    lines = ["| " + " | ".join(DEFAULT_HEAD) + " |", "|" + "---|" * len(DEFAULT_HEAD)]
    for name in order:
        s = summarize_runs(table[name], rule)
        v = verdicts.get(name)
        row = [name, descriptions.get(name, ""), str(s.n), _failed_cell(s), _median_cell(s), _mean_cell(s),
               "best default" if v is None else _delta_cell(v),
               _p_cell(v),
               "best default" if v is None else _verdict_cell(v)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _per_seed_table(table: Mapping[str, Mapping[int, Metrics]], rule: FailureConfig) -> list[str]:
    cols = sorted({s for runs in table.values() for s in runs})
    lines = ["| schedule | " + " | ".join(f"seed {s}" for s in cols) + " |", "|---|" + "---|" * len(cols)]
    for name, runs in table.items():
        cells = []
        for s in cols:
            r = runs.get(s)
            if r is None:
                cells.append(NONE)
            elif failure_reason(r, rule):
                cells.append("diverged" if r.get("diverged") else f"{float(r['test_acc']):.4f} (failed)")
            else:
                cells.append(f"{float(r['test_acc']):.4f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def how_to_read(cc: CompareConfig, rule: FailureConfig, looks: int, alpha_look: float) -> list[str]:
    return [
        "**How to read it.** Every schedule was tuned on the same budget (same trials, pruner and fidelity; "
        "momentum 0.9 for all; weight decay searched) on a seed the comparison never uses. Its best config was "
        f"then trained on paired evaluation seeds: seed *s* gives every schedule the same initial weights and "
        f"data order. Each schedule is compared with the **leader** (the best mean) seed by seed. "
        f"*worse*/*better*: the paired t-test is significant after Holm's correction over the pairs; "
        f"*equivalent*: the difference is inside ±{cc.margin} (TOST, same correction); *inconclusive*: "
        f"neither yet, with the n seeds that would decide it at the observed spread. Each look tests at "
        f"α = {cc.alpha}/{looks} = {alpha_look:.4g} (Bonferroni over the {looks} looks the cap allows), so "
        "adding seeds cannot inflate the error rate. Intervals are at that level too, Bonferroni-corrected "
        "over the pairs: Holm's test is less strict than Bonferroni for all but the smallest p-value, so a "
        "*worse* or *better* verdict can come with an interval that just reaches 0. "
        f"A run **failed** if it diverged or its accuracy was under {rule.chance_below} after epoch "
        f"{rule.by_epoch} or at the end; failures are counted (k/n with a Wilson interval), enter paired "
        "tests at chance accuracy, and are left out of the median and range. A mean is shown only when "
        "nothing failed. A verdict is about **one tuned config per schedule**: tuning is itself random, "
        "and another study could pick another config.",
    ]


def summary_markdown(metrics: Mapping[str, Metrics], descriptions: Mapping[str, str], compare: Metrics,
                     decisions: Metrics, rule: FailureConfig, cc: CompareConfig,
                     budget: Mapping[str, Any] | None = None) -> str:
    """The whole report; the headline sits between TABLE_START/TABLE_END for the README."""
    lines = ["# Learning-rate schedules on FashionMNIST (LeNet)", "",
             *how_to_read(cc, rule, decisions["looks_planned"], decisions["alpha_per_look"]), "",
             TABLE_START, "### Tuned schedules, ranked against the leader", "",
             *tuned_table(compare, decisions, rule), "", *headline_text(compare, decisions, cc, rule), TABLE_END,
             "", "## The article's defaults (its reproduction)", "",
             "Plain SGD without momentum, as in the article, except schedule-free SGD, whose default has "
             f"momentum 0.9. Judged in one look against the best default (Holm, α = {cc.alpha}).", "",
             *defaults_table(metrics, descriptions, rule, cc), "",
             "## Per-seed final test accuracy", "", "Tuned configs, evaluation seeds:", "",
             *_per_seed_table(as_table(compare["schedules"]), rule), "", "Defaults:", "",
             *_per_seed_table(as_table(metrics), rule)]
    if budget:
        lines += ["", "## Compute", "", "| kind | run-equivalents |", "|---|---|",
                  *(f"| {k} | {v:.1f} |" for k, v in budget["run_equivalents"].items()),
                  "", "One run-equivalent is 600,000 image-epochs: one default 10-epoch run of one seed "
                  "(pruned trials count what they trained)."]
    return "\n".join(lines) + "\n"
