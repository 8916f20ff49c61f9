"""Confidence intervals and paired tests for comparing schedules over seeds.

Why paired: the seed fixes the initial weights and the data order, and one
LeNet run differs from the next seed's run by more than most gaps between
schedules. Averaging each schedule separately leaves that seed-to-seed spread
in both error bars, so real differences look like ties. Every schedule runs the
same seeds, so seed ``s`` gives a matched pair; the difference ``a_s - b_s``
cancels what the seed contributes to both, and the test on those differences
sees only what the schedule changed.

Pure functions on plain floats (no torch), so the report and tests stay light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from scipy import stats as _st

CHANCE_ACC = 0.1  # 10 classes
LEARNED_MIN = 0.2  # under twice chance: the run did not learn
ALPHA = 0.05
TEST_NAME = "paired t-test (two-sided, α = 0.05) on per-seed final test accuracy"

# Accuracies are multiples of 1/10000; differences that agree to this are "identical"
# (float rounding must not turn a constant difference into a huge t statistic).
_SAME = 1e-12


@dataclass(frozen=True)
class Interval:
    """Mean with sample std and a two-sided Student-t confidence interval."""

    mean: float
    std: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        if self.n < 2 or self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "ci95_low": self.low, "ci95_high": self.high, "n": self.n}


@dataclass(frozen=True)
class PairedDiff:
    """Mean of the paired differences a - b, its t CI and the paired t-test p-value."""

    mean: float
    low: float | None
    high: float | None
    p_value: float | None
    n: int

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "ci95_low": self.low, "ci95_high": self.high, "p_value": self.p_value,
                "n": self.n}


def _floats(values: Sequence[float]) -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"non-finite value in {out}")
    return out


def mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean, sample std (ddof=1) and the Student-t CI with n - 1 degrees of freedom."""
    xs = _floats(values)
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci of no values")
    if n == 1:
        return Interval(xs[0], None, None, None, 1)
    if max(xs) - min(xs) <= _SAME:  # exact degenerate interval, free of rounding noise
        return Interval(xs[0], 0.0, xs[0], xs[0], n)
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(_st.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean, std, mean - half, mean + half, n)


def paired_diff(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedDiff:
    """Paired two-sided t-test of a against b, with the t CI of the mean difference a - b.

    ``a[i]`` and ``b[i]`` must come from the same seed.
    """
    xa, xb = _floats(a), _floats(b)
    if len(xa) != len(xb):
        raise ValueError(f"paired samples differ in length: {len(xa)} vs {len(xb)}")
    if not xa:
        raise ValueError("paired_diff of no pairs")
    diffs = [x - y for x, y in zip(xa, xb)]
    ci = mean_ci(diffs, level)
    if ci.n < 2:
        return PairedDiff(ci.mean, None, None, None, ci.n)
    if ci.std == 0.0:
        # ttest_rel is 0/0 here; a constant nonzero shift on every seed is as clear as it gets.
        return PairedDiff(ci.mean, ci.mean, ci.mean, 1.0 if abs(ci.mean) <= _SAME else 0.0, ci.n)
    p = float(_st.ttest_rel(xa, xb).pvalue)
    return PairedDiff(ci.mean, ci.low, ci.high, p, ci.n)
