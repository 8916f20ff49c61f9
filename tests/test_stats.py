"""lrsched.stats against values worked out by hand (closed forms, not scipy)."""

from __future__ import annotations

import math

import pytest

from lrsched.core.stats import Interval, mean_ci

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
