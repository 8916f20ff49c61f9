"""Verdicts, failure counting and the seed allocation, on synthetic per-seed tables (no training)."""

from __future__ import annotations

import math
import random

import pytest

from lrsched.analysis.decisions import (
    decisions_document,
    failure_reason,
    judge,
    look,
    next_seeds,
    planned_looks,
    summarize_runs,
)
from lrsched.config import CompareConfig, FailureConfig
from lrsched.core.stats import SD_FLOOR, format_p, holm, pair_test, wilson

RULE = FailureConfig(chance_below=0.2, by_epoch=3)
CC = CompareConfig(first_seeds=3, batch=2, max_seeds=9, alpha=0.05, margin=0.005, power=0.8)


def rec(acc: float, curve: list[float] | None = None) -> dict:
    return {"test_acc": round(acc, 4), "train_acc_curve": curve or [0.6] * 10, "image_epochs": 600_000}


def simulate(means: dict[str, float], noise: float, cc: CompareConfig = CC) -> tuple[dict, list[dict]]:
    """Run the allocation to its end; a seed's accuracy = mean + a shared seed effect + the pair's noise."""
    table: dict[str, dict[int, dict]] = {name: {} for name in means}
    plans = []
    while plan := next_seeds(table, RULE, cc):
        plans.append(plan)
        for name, seeds in plan.items():
            for s in seeds:
                own = random.Random(f"{name}/{s}").gauss(0, noise)
                table[name][s] = rec(means[name] + random.Random(s).gauss(0, 0.005) + own)
    return table, plans


# ---- hand-worked values -----------------------------------------------------------------------

def test_holm_matches_the_hand_computation() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_paired_t_and_tost_match_the_closed_form_for_two_degrees_of_freedom() -> None:
    # differences 0.001, 0.002, 0.003: mean 0.002, sd 0.001, se 0.001/sqrt(3); with 2 df the
    # t distribution's tail is 0.5 (1 - t / sqrt(t^2 + 2))
    test = pair_test([0.901, 0.902, 0.903], [0.9, 0.9, 0.9], margin=0.005)
    se = 0.001 / math.sqrt(3)
    tail = lambda t: 0.5 * (1 - t / math.sqrt(t * t + 2))  # noqa: E731
    assert test.mean == pytest.approx(0.002) and test.sd == pytest.approx(0.001)
    assert test.p_diff == pytest.approx(2 * tail(0.002 / se), rel=1e-6)  # 0.0742
    assert test.p_equiv == pytest.approx(tail((0.005 - 0.002) / se), rel=1e-6)  # the upper bound's 0.0176


def test_wilson_interval_of_no_failures_in_three_runs() -> None:
    z2 = 1.959963984540054 ** 2
    low, high = wilson(0, 3)
    assert low == 0.0 and high == pytest.approx(z2 / (3 + z2))  # 0.5615: three clean runs prove little


def test_each_look_tests_at_alpha_over_the_looks_the_cap_allows() -> None:
    assert planned_looks(CC) == 4  # seeds 3, 5, 7, 9
    assert planned_looks(CompareConfig(first_seeds=3, batch=2, max_seeds=10)) == 5  # 3, 5, 7, 9, 10
    table = {"a": {s: rec(0.9) for s in range(3)}, "b": {s: rec(0.89) for s in range(3)}}
    assert look(table, RULE, CC).alpha == pytest.approx(0.05 / 4)


def test_a_constant_shift_gets_a_finite_p_value_above_zero() -> None:
    test = pair_test([0.9011, 0.8911, 0.8811], [0.9001, 0.8901, 0.8801], margin=0.005)
    assert test.sd == SD_FLOOR and 0 < test.p_diff < 1e-3
    assert format_p(test.p_diff) == "p < 0.0001" or format_p(test.p_diff).startswith("p = ")
    assert format_p(0.0) == "p < 0.0001"


# ---- failures ------------------------------------------------------------------------------------

def test_a_run_at_chance_after_epoch_k_is_failed_even_if_it_recovers() -> None:
    late = rec(0.767, curve=[0.1] * 7 + [0.5, 0.7, 0.75])  # the article's multi_factor seed 0
    assert failure_reason(late, RULE).startswith("at chance after epoch 3")
    assert failure_reason({"diverged": True}, RULE) == "diverged"
    assert failure_reason(rec(0.15), RULE).startswith("at chance at the end")
    assert failure_reason(rec(0.88), RULE) == ""


def test_failures_are_counted_not_averaged_and_intervals_stay_in_bounds() -> None:
    runs = {0: rec(0.1, [0.1] * 10), 1: {"diverged": True}, 2: rec(0.885)}
    s = summarize_runs(runs, RULE)
    assert (s.n, s.failed) == (3, 2)
    assert s.median == 0.885 and s.mean is None and s.mean_ci is None  # no mean while anything failed
    assert 0.0 <= s.failure_ci[0] < 2 / 3 < s.failure_ci[1] <= 1.0
    near_one = summarize_runs({0: rec(0.999), 1: rec(0.9999), 2: rec(0.99)}, RULE)
    assert near_one.mean_ci is not None and near_one.mean_ci[1] <= 1.0


def test_a_failed_run_enters_the_pair_at_chance_and_is_never_equivalent() -> None:
    good = {s: rec(0.90 + 0.0001 * s) for s in range(9)}
    one_failed = {**{s: rec(0.90 + 0.0001 * s) for s in range(9)}, 4: rec(0.15)}
    verdict = judge({"good": good, "flaky": one_failed}, RULE, CC.margin, 0.05, CC.power, leader="good").verdicts[0]
    assert verdict.delta == pytest.approx((0.1 - 0.9004) / 9)
    assert verdict.verdict != "equivalent"


def test_identical_configs_are_labelled_same_config_not_tested() -> None:
    table = {"rex": {s: rec(0.89) for s in range(3)}, "rex_default": {s: rec(0.89) for s in range(3)}}
    configs = {"rex": {"base_lr": 0.3}, "rex_default": {"base_lr": 0.3}}
    v = judge(table, RULE, CC.margin, 0.05, CC.power, configs, leader="rex").verdicts[0]
    assert v.verdict == "same config" and v.p_adj is None


# ---- the allocation --------------------------------------------------------------------------

def test_a_clear_winner_stops_at_the_first_look() -> None:
    table, plans = simulate({"winner": 0.90, "b": 0.85, "c": 0.84}, noise=0.002)
    assert len(plans) == 1 and all(len(runs) == 3 for runs in table.values())
    assert [v.verdict for v in look(table, RULE, CC).verdicts] == ["worse", "worse"]


def test_two_equal_schedules_are_declared_equivalent() -> None:
    table, plans = simulate({"a": 0.90, "b": 0.9002}, noise=0.0008)
    v = look(table, RULE, CC).verdicts[0]
    assert v.verdict == "equivalent" and abs(v.delta) < CC.margin


def test_a_noisy_pair_reaches_the_cap_inconclusive_with_the_n_that_would_decide_it() -> None:
    table, plans = simulate({"a": 0.90, "b": 0.897}, noise=0.008)
    assert all(len(runs) == CC.max_seeds for runs in table.values()) and len(plans) == planned_looks(CC)
    v = look(table, RULE, CC).verdicts[0]
    assert v.verdict == "inconclusive" and v.n == 9 and v.n_needed is not None and v.n_needed > 9


def test_seeds_go_only_to_the_contending_schedules() -> None:
    table, plans = simulate({"a": 0.90, "near": 0.899, "far": 0.80}, noise=0.006)
    assert sorted(table["far"]) == [0, 1, 2]  # decided worse at the first look: no more seeds
    assert len(table["near"]) > 3 and sorted(table["a"]) == sorted(table["near"])


def test_the_same_inputs_always_give_the_same_seeds() -> None:
    means = {"a": 0.90, "b": 0.898, "c": 0.85, "d": 0.899}
    assert simulate(means, 0.005)[1] == simulate(means, 0.005)[1]


def test_the_extra_seeds_are_counted_against_the_first_seeds_alone() -> None:
    table, _ = simulate({"a": 0.90, "b": 0.894, "c": 0.80}, noise=0.003)
    doc = decisions_document(table, RULE, CC, {}, baseline=("b", "a"))
    assert doc["decided_first_seeds_only"] <= doc["decided"] == doc["compared"]
    assert doc["baseline_pair"]["name"] == "b" and doc["baseline_pair"]["leader"] == "a"
    assert all(-1 <= p["ci"][0] <= p["ci"][1] <= 1 for p in doc["pairs"])
