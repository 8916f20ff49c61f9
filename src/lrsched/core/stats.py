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


# ---- the decisive comparison: corrected tests, equivalence, failure rates ------------------

# An accuracy counts correct images out of 10,000, so each one is rounded to 1e-4 and a difference
# carries the rounding SD of two such values. Floor the SD of paired differences there: a constant
# shift on every seed then gets a large but finite t and a p-value above 0, never exactly 0.
ACC_RESOLUTION = 1e-4
SD_FLOOR = ACC_RESOLUTION / math.sqrt(6)


@dataclass(frozen=True)
class PairTest:
    """A paired comparison of a - b: mean difference, sd (floored), n, the two p-values."""

    mean: float
    sd: float
    n: int
    p_diff: float        # two-sided paired t-test of Δ = 0
    p_equiv: float       # TOST of |Δ| < margin (the larger of the two one-sided p-values)

    def ci(self, level: float) -> tuple[float, float]:
        """Student-t interval of the mean difference, clipped to [-1, 1] (a difference of accuracies)."""
        half = float(_st.t.ppf((1 + level) / 2, self.n - 1)) * self.sd / math.sqrt(self.n)
        return max(self.mean - half, -1.0), min(self.mean + half, 1.0)


def pair_test(a: Sequence[float], b: Sequence[float], margin: float) -> PairTest:
    """Paired t-test and TOST (statsmodels) of ``a - b`` over seeds matched by position; n >= 2."""
    import numpy as np
    from statsmodels.stats.weightstats import DescrStatsW, ttost_paired

    xa, xb = _floats(a), _floats(b)
    if len(xa) != len(xb) or len(xa) < 2:
        raise ValueError(f"pair_test needs two equal samples of n >= 2, got {len(xa)} and {len(xb)}")
    diffs = [x - y for x, y in zip(xa, xb)]
    n, mean = len(diffs), math.fsum(diffs) / len(diffs)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd >= SD_FLOOR:
        p_diff = float(DescrStatsW(diffs).ttest_mean(0.0)[1])
        p_equiv = float(ttost_paired(np.asarray(xa), np.asarray(xb), -margin, margin)[0])
    else:  # the same difference on every seed: the same tests with the rounding SD
        se, df = SD_FLOOR / math.sqrt(n), n - 1
        p_diff = float(2 * _st.t.sf(abs(mean) / se, df))
        p_equiv = float(max(_st.t.sf((mean + margin) / se, df), _st.t.sf((margin - mean) / se, df)))
    return PairTest(mean, max(sd, SD_FLOOR), n, p_diff, p_equiv)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels), in the input order."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]


def n_needed(test: PairTest, alpha: float, power: float, margin: float) -> int | None:
    """Paired seeds that would decide the pair at the observed Δ and SD, with the given power.

    The smaller of: the n for a two-sided t-test of Δ = 0 (if Δ is not 0), and the n for TOST
    within ±margin (if |Δ| < margin); None when neither can ever decide it.
    """
    from statsmodels.stats.power import TTestPower

    solver, options = TTestPower(), []
    if abs(test.mean) > 0:
        options.append(solver.solve_power(effect_size=abs(test.mean) / test.sd, alpha=alpha, power=power,
                                          alternative="two-sided"))
    if abs(test.mean) < margin:
        options.append(solver.solve_power(effect_size=(margin - abs(test.mean)) / test.sd, alpha=alpha,
                                          power=power, alternative="larger"))
    finite = [float(n) for n in options if n is not None and math.isfinite(float(n))]
    return max(2, math.ceil(min(finite))) if finite else None


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (scipy); always inside [0, 1]."""
    ci = _st.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def friedman(columns: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Friedman's test (scipy) over k >= 3 treatments measured on the same blocks (seeds)."""
    result = _st.friedmanchisquare(*[list(c) for c in columns])
    return float(result.statistic), float(result.pvalue)


def format_p(p: float | None) -> str:
    """A p-value for people: never '0', tiny ones as 'p < 0.0001'."""
    if p is None:
        return "p n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"
