"""lrsched.stats against values worked out by hand (closed forms, not scipy)."""

from __future__ import annotations

import math

import pytest

from lrsched.stats import Interval, PairedDiff, mean_ci, paired_diff

T_975_DF2 = 4.302652729749464  # Student t quantile, 0.975, 2 df (tables)
T_975_DF3 = 3.182446305284263  # 0.975, 3 df


def test_mean_ci_three_values() -> None:
    iv = mean_ci([0.80, 0.82, 0.84])
    half = T_975_DF2 * 0.02 / math.sqrt(3)  # = 0.049683
    assert iv.n == 3
    assert iv.mean == pytest.approx(0.82, abs=1e-12)
    assert iv.std == pytest.approx(0.02, abs=1e-12)  # ddof=1; ddof=0 would give 0.01633
    assert iv.low == pytest.approx(0.82 - half, abs=1e-12)
    assert iv.high == pytest.approx(0.82 + half, abs=1e-12)
    assert iv.half_width == pytest.approx(half, abs=1e-12)
    assert iv.as_dict() == {"mean": iv.mean, "std": iv.std, "ci95_low": iv.low, "ci95_high": iv.high, "n": 3}


def test_mean_ci_other_level() -> None:
    iv = mean_ci([0.80, 0.82, 0.84], level=0.90)
    assert iv.half_width == pytest.approx(2.919985580355516 * 0.02 / math.sqrt(3), abs=1e-12)  # t(0.95, 2)


def test_mean_ci_degenerate() -> None:
    one = mean_ci([0.7])
    assert one == Interval(0.7, None, None, None, 1)
    assert one.half_width is None
    assert one.as_dict() == {"mean": 0.7, "std": None, "ci95_low": None, "ci95_high": None, "n": 1}
    flat = mean_ci([0.1, 0.1, 0.1])  # float sums would give a 1e-17 std without the special case
    assert flat.low == flat.high == flat.mean == 0.1 and flat.std == 0.0
    with pytest.raises(ValueError):
        mean_ci([])
    with pytest.raises(ValueError):
        mean_ci([0.5, float("nan")])


def test_paired_diff_by_hand() -> None:
    # d = a - b = [0.01, 0, 0.02, 0.01]: mean 0.01, sd sqrt(0.0002/3), se = sd/2, t = sqrt(6), 3 df
    a, b = [0.90, 0.91, 0.92, 0.93], [0.89, 0.91, 0.90, 0.92]
    d = paired_diff(a, b)
    se = math.sqrt(0.0002 / 3) / 2
    # t(3 df) CDF in closed form: 1/2 + (atan(t/√3) + (t/√3)/(1 + t²/3)) / π, at t = √6
    p = 1 - (2 / math.pi) * (math.atan(math.sqrt(2)) + math.sqrt(2) / 3)  # = 0.0917
    assert d.n == 4
    assert d.mean == pytest.approx(0.01, abs=1e-12)
    assert d.p_value == pytest.approx(p, rel=1e-9)
    assert d.low == pytest.approx(0.01 - T_975_DF3 * se, abs=1e-12)
    assert d.high == pytest.approx(0.01 + T_975_DF3 * se, abs=1e-12)
    assert not d.significant  # p = 0.09, and the CI contains 0
    assert d.low < 0 < d.high
    assert set(d.as_dict()) == {"mean", "ci95_low", "ci95_high", "p_value", "n"}

    flipped = paired_diff(b, a)  # a - b, not b - a
    assert flipped.mean == pytest.approx(-0.01, abs=1e-12)
    assert flipped.p_value == pytest.approx(p, rel=1e-9)


def test_pairing_beats_unpaired_spread() -> None:
    # seeds move both schedules by 4 points; the schedule costs 1 point on every seed, give or take 0.1
    best = [0.90, 0.94, 0.92, 0.91]
    other = [x - e for x, e in zip(best, [0.010, 0.011, 0.009, 0.010])]
    assert mean_ci(other).high > mean_ci(best).low  # unpaired intervals overlap
    d = paired_diff(other, best)
    assert d.significant and d.high < 0


def test_paired_diff_degenerate() -> None:
    shift = paired_diff([0.80, 0.81, 0.82], [0.90, 0.91, 0.92])  # -0.1 on every seed (up to rounding)
    assert shift.p_value == 0.0 and shift.significant
    assert shift.low == shift.high == shift.mean == pytest.approx(-0.1)
    same = paired_diff([0.8, 0.9], [0.8, 0.9])
    assert same == PairedDiff(0.0, 0.0, 0.0, 1.0, 2) and not same.significant
    single = paired_diff([0.9], [0.8])
    assert single.p_value is None and single.low is None and single.high is None and single.n == 1
    assert single.mean == pytest.approx(0.1) and not single.significant
    with pytest.raises(ValueError, match="length"):
        paired_diff([0.9, 0.8], [0.9])
    with pytest.raises(ValueError):
        paired_diff([], [])
