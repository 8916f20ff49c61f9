"""Verdicts between schedules, and where the next paired seeds go.

Pure functions of per-seed records (the ``per_seed`` mappings of the metrics files) and
params, so the report, the ``compare`` stage and the tests share one definition.

* **Failed runs are counted, not averaged.** ``failure_reason`` applies the rule in
  ``params.yaml`` (``failure:``). A failed run enters a paired comparison at chance
  accuracy, so the pairing holds; accuracy summaries cover the runs that learned.
* **Verdicts** against the leader (the best mean): *better*/*worse* when Holm's
  correction over the pairs of the look leaves the paired t-test significant,
  *equivalent* when TOST within ±``margin`` is, *inconclusive* otherwise, with the n that
  would decide it. Two identical configs are *same config*, not a test.
* **Repeated looks** each test at ``alpha / planned_looks`` (Bonferroni over the looks the
  cap allows), so the family-wise error over all looks and pairs stays at ``alpha``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from lrsched.config import CompareConfig, FailureConfig
from lrsched.core.stats import (
    CHANCE_ACC,
    PairTest,
    holm,
    mean_ci,
    n_needed,
    pair_test,
    wilson,
)

Record = Mapping[str, Any]
Table = Mapping[str, Mapping[int, Record]]  # schedule -> seed -> per-seed record
VERDICTS = ("better", "worse", "equivalent", "inconclusive", "same config")


def failure_reason(record: Record, rule: FailureConfig) -> str:
    """Why a run counts as failed under ``rule``, or "" when it learned."""
    if record.get("diverged") or record.get("test_acc") is None:
        return "diverged"
    curve = record.get("train_acc_curve") or []
    if len(curve) >= rule.by_epoch and curve[rule.by_epoch - 1] < rule.chance_below:
        return f"at chance after epoch {rule.by_epoch} (train acc {curve[rule.by_epoch - 1]:.3f})"
    if float(record["test_acc"]) < rule.chance_below:
        return f"at chance at the end (test acc {float(record['test_acc']):.4f})"
    return ""


def paired_value(record: Record, rule: FailureConfig) -> float:
    """The accuracy a run contributes to a paired comparison: chance when it failed."""
    return CHANCE_ACC if failure_reason(record, rule) else float(record["test_acc"])


@dataclass(frozen=True)
class Summary:
    """One schedule's runs: failures k/n with a Wilson interval, accuracy over the runs that learned."""

    n: int
    failed: int
    failure_ci: tuple[float, float]
    median: float | None
    low: float | None           # range of the runs that learned
    high: float | None
    mean: float | None          # mean and its CI only when no run failed
    mean_ci: tuple[float, float] | None
    reasons: dict[int, str] = field(default_factory=dict)


def summarize_runs(runs: Mapping[int, Record], rule: FailureConfig) -> Summary:
    reasons = {seed: failure_reason(r, rule) for seed, r in runs.items()}
    learned = [float(runs[s]["test_acc"]) for s in sorted(runs) if not reasons[s]]
    failed = sum(bool(r) for r in reasons.values())
    n = len(runs)
    mean = ci = None
    if learned and not failed:
        iv = mean_ci(learned)
        mean = iv.mean
        if iv.low is not None and iv.high is not None:
            ci = (max(iv.low, 0.0), min(iv.high, 1.0))
    return Summary(n, failed, wilson(failed, n) if n else (0.0, 1.0),
                   statistics.median(learned) if learned else None,
                   min(learned) if learned else None, max(learned) if learned else None, mean, ci,
                   {s: r for s, r in reasons.items() if r})


def paired_columns(table: Table, seeds: Sequence[int], rule: FailureConfig) -> list[list[float]]:
    """One column per schedule of paired values (failures at chance) on ``seeds``, for omnibus tests."""
    return [[paired_value(runs[s], rule) for s in seeds] for runs in table.values()]


def planned_looks(cc: CompareConfig) -> int:
    """Looks the cap allows: the first seeds, then one per batch up to ``max_seeds``."""
    return 1 + math.ceil((cc.max_seeds - cc.first_seeds) / cc.batch)


@dataclass(frozen=True)
class Verdict:
    """One schedule against the leader, on the seeds both ran."""

    name: str
    leader: str
    verdict: str
    n: int
    delta: float | None = None           # mean paired Δ = name - leader
    ci: tuple[float, float] | None = None  # at 1 - alpha/m (Bonferroni over the m pairs of the look)
    p_adj: float | None = None           # Holm-adjusted p of the paired t-test
    p_equiv_adj: float | None = None     # Holm-adjusted p of TOST within ±margin
    n_needed: int | None = None          # inconclusive: paired seeds that would decide it
    seeds: tuple[int, ...] = ()

    @property
    def decided(self) -> bool:
        return self.verdict in ("better", "worse", "equivalent")

    def as_record(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        out["seeds"] = list(self.seeds)
        return out


@dataclass(frozen=True)
class Look:
    leader: str
    verdicts: list[Verdict]
    alpha: float        # the level each test of this look is held to
    level: float        # the CIs' confidence level

    def contending(self) -> list[str]:
        """The leader and every schedule not yet decided against it."""
        return [self.leader, *(v.name for v in self.verdicts if v.verdict == "inconclusive")]


def leader_of(table: Table, rule: FailureConfig) -> str:
    """The best mean paired value (failures at chance) over each schedule's own seeds."""
    def score(name: str) -> float:
        values = [paired_value(r, rule) for r in table[name].values()]
        return math.fsum(values) / len(values) if values else -1.0

    return max(sorted(table), key=score)  # max keeps the first of equals: ties go to the first name


def judge(table: Table, rule: FailureConfig, margin: float, alpha: float, power: float,
          configs: Mapping[str, Any] | None = None, leader: str | None = None) -> Look:
    """Every schedule of ``table`` against the leader, Holm-corrected over the pairs, at ``alpha``."""
    configs = configs or {}
    leader = leader or leader_of(table, rule)
    tests: dict[str, tuple[PairTest, tuple[int, ...]]] = {}
    verdicts: dict[str, Verdict] = {}
    for name in table:
        if name == leader:
            continue
        seeds = tuple(sorted(set(table[name]) & set(table[leader])))
        if name in configs and configs.get(name) == configs.get(leader):
            verdicts[name] = Verdict(name, leader, "same config", len(seeds), 0.0, (0.0, 0.0), seeds=seeds)
        elif len(seeds) < 2:
            verdicts[name] = Verdict(name, leader, "inconclusive", len(seeds), seeds=seeds)
        else:
            a = [paired_value(table[name][s], rule) for s in seeds]
            b = [paired_value(table[leader][s], rule) for s in seeds]
            tests[name] = (pair_test(a, b, margin), seeds)
    names = list(tests)
    m = max(len(names), 1)
    level = 1 - alpha / m
    p_diff = dict(zip(names, holm([tests[n][0].p_diff for n in names])))
    p_equiv = dict(zip(names, holm([tests[n][0].p_equiv for n in names])))
    for name in names:
        test, seeds = tests[name]
        failed_a = any(failure_reason(table[name][s], rule) for s in seeds)
        failed_b = any(failure_reason(table[leader][s], rule) for s in seeds)
        if p_diff[name] < alpha:
            verdict, needed = ("better" if test.mean > 0 else "worse"), None
        elif p_equiv[name] < alpha and failed_a == failed_b:  # failures are never equivalent to none
            verdict, needed = "equivalent", None
        else:
            verdict, needed = "inconclusive", n_needed(test, alpha / m, power, margin)
        verdicts[name] = Verdict(name, leader, verdict, test.n, test.mean, test.ci(level), p_diff[name],
                                 p_equiv[name], needed, seeds)
    ordered = [verdicts[n] for n in table if n in verdicts]
    return Look(leader, ordered, alpha, level)


def look(table: Table, rule: FailureConfig, cc: CompareConfig, configs: Mapping[str, Any] | None = None) -> Look:
    """One look of the sequential comparison: each test at ``alpha / planned_looks``."""
    return judge(table, rule, cc.margin, cc.alpha / planned_looks(cc), cc.power, configs)


def restrict(table: Table, seeds: Sequence[int]) -> dict[str, dict[int, Record]]:
    """``table`` with only ``seeds`` (e.g. the first seeds, to show what the extra seeds bought)."""
    keep = set(seeds)
    return {name: {s: r for s, r in runs.items() if s in keep} for name, runs in table.items()}


def next_seeds(table: Table, rule: FailureConfig, cc: CompareConfig,
               configs: Mapping[str, Any] | None = None) -> dict[str, list[int]]:
    """The seeds each schedule trains next; empty when every pair is decided or the cap is reached.

    Every schedule first gets seeds ``0..first_seeds-1``. After that, each look gives the
    schedules still contending (the leader and all undecided against it) the next ``batch``
    seeds, up to ``max_seeds``. A pure function of params and results: the same everywhere.
    """
    first = {name: [s for s in range(cc.first_seeds) if s not in runs] for name, runs in table.items()}
    if any(first.values()):
        return {name: seeds for name, seeds in first.items() if seeds}
    current = look(table, rule, cc, configs)
    contending = current.contending()
    if len(contending) < 2:
        return {}
    top = max(len(table[n]) for n in contending)
    if top >= cc.max_seeds:
        return {}
    target = min(top + cc.batch, cc.max_seeds)
    plan = {name: [s for s in range(target) if s not in table[name]] for name in contending}
    return {name: seeds for name, seeds in plan.items() if seeds}


def as_table(per_schedule: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[int, Record]]:
    """``{name: {"per_seed": {"0": record}}}`` (the metrics files' layout) -> schedule -> seed -> record."""
    return {name: {int(seed): rec for seed, rec in m.get("per_seed", {}).items()} for name, m in per_schedule.items()}


def decisions_document(table: Table, rule: FailureConfig, cc: CompareConfig, configs: Mapping[str, Any],
                       baseline: tuple[str, str] | None = None) -> dict[str, Any]:
    """``reports/decisions.json``: the final look's pairs, what the first seeds alone decided, and
    one pre-specified pair (``baseline``: e.g. schedule-free SGD against tuned constant-LR SGD)."""
    final = look(table, rule, cc, configs)
    first = look(restrict(table, range(cc.first_seeds)), rule, cc, configs)
    doc: dict[str, Any] = {
        "leader": final.leader,
        "alpha": cc.alpha, "looks_planned": planned_looks(cc), "alpha_per_look": final.alpha,
        "ci_level": final.level, "margin": cc.margin,
        "correction": "Holm over the pairs of a look; Bonferroni over the planned looks",
        "seeds": {name: sorted(runs) for name, runs in table.items()},
        "pairs": [v.as_record() for v in final.verdicts],
        "decided": sum(v.decided for v in final.verdicts),
        "decided_first_seeds_only": sum(v.decided for v in first.verdicts),
        "compared": len(final.verdicts),
    }
    if baseline and all(name in table for name in baseline):
        a, b = baseline
        pair = judge({a: table[a], b: table[b]}, rule, cc.margin, final.alpha, cc.power, configs, leader=b)
        doc["baseline_pair"] = pair.verdicts[0].as_record()
    return doc
