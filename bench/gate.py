"""The regression gate's statistics: a t interval for the difference of mean final scores (paired
over seeds where both sides ran the same seeds, Welch's otherwise), the gate's power against a
given drop, the minimum detectable effect, and the seeds a comparison needs.

Why t intervals. The gate compares a handful of seeds per side (3-10), at a family-wise level
that Bonferroni makes strict (12 comparisons at 95%: each at 99.6%). At those counts the other
candidates fail in known ways: a bootstrap percentile interval is too narrow (it treats the few
observed values as the whole population: for the difference of two normal samples, measured
over 1,000 simulations, a nominal 95% interval covered the true difference 79% of the time at
3 seeds per side, 88% at 5 and 93% at 10),
and the Wilcoxon signed-rank test cannot reject at all with 5 pairs at 95% (its smallest
two-sided p-value is 2/2^5 = 0.0625). The t interval has exact coverage when seed-to-seed
variation is normal, degrades gracefully when it is not, and — what the gate needs most — its
power has a closed form: the noncentral t distribution. The same formula that sets the
interval says how large a drop the gate could have seen.

The gate. With per-comparison level ``L`` (``confidence`` after Bonferroni), the difference
``D = store - baseline`` has the interval ``d ± c · se`` with ``c = t_{(1+L)/2, df}``. A
regression is flagged when the upper end lies below ``-tolerance``. Under a true drop ``δ``
(``E[D] = -δ``), ``(d + tolerance) / se`` follows a noncentral t with ``df`` degrees of freedom
and noncentrality ``(tolerance - δ) / σ_D``, where ``σ_D`` is the true standard error; the
power is that distribution's CDF at ``-c``. Paired: ``df = n - 1``, ``σ_D = σ_d / sqrt(n)``
(exact under normal differences). Welch: ``df`` by Welch-Satterthwaite and
``σ_D = sqrt(σ_a²/n_a + σ_b²/n_b)`` (the usual approximation). The observed standard deviations
stand in for the true ones. The minimum detectable effect (MDE) is the smallest ``δ`` whose power
reaches ``power`` (default 80%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as sps

from bench import stats

POWER = 0.8


@dataclass(frozen=True)
class Interval:
    """A difference of means (store minus baseline) with its t interval."""

    method: str  # "paired" or "welch"
    difference: float
    lo: float
    hi: float
    df: float  # degrees of freedom (inf: no variance at all)
    se: float  # the estimated standard error of the difference
    sd: tuple[float, ...]  # paired: (sd of the differences,); welch: (sd store, sd baseline)
    n: tuple[int, ...]  # paired: (pairs,); welch: (n store, n baseline)


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


def paired_interval(a: np.ndarray, b: np.ndarray, level: float) -> Interval:
    """``mean(a - b)`` with the paired t interval at ``level``; ``a[i]`` and ``b[i]`` share a seed."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) != len(b) or len(a) < 1:
        raise ValueError("paired samples need equal, non-zero lengths")
    n = len(a)
    if n < 2:
        return Interval("paired", float((a - b).mean()), -math.inf, math.inf, math.nan, math.nan, (math.nan,),
                        (n,))  # fmt: skip
    mean, se, df = (float(v) for v in stats.paired_parts(a, b))  # the reports' paired t
    lo, hi = (float(v) for v in stats.t_bounds(mean, se, df, level))
    return Interval("paired", mean, lo, hi, df, se, (_sd(a - b),), (n,))


def welch_df(sa: float, na: int, sb: float, nb: int) -> float:
    """Welch-Satterthwaite degrees of freedom from the two sides' sds (``stats.welch_df``)."""
    return float(stats.welch_df(sa * sa / na, sb * sb / nb, na, nb))


def _welch_parts(sa: float, na: int, sb: float, nb: int) -> tuple[float, float, float, float]:
    """(sd a, sd b, se, df); a side with one run borrows the other side's sd (equal variances
    assumed) and the degrees of freedom are the other side's."""
    if na < 2 and nb < 2:
        return math.nan, math.nan, math.nan, math.nan
    if na < 2:
        sa, df = sb, nb - 1
    elif nb < 2:
        sb, df = sa, na - 1
    else:
        df = welch_df(sa, na, sb, nb)
    se = math.sqrt(sa * sa / na + sb * sb / nb)
    return sa, sb, se, df


def welch_interval(a: np.ndarray, b: np.ndarray, level: float) -> Interval:
    """``mean(a) - mean(b)`` with Welch's t interval at ``level`` (independent samples)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 1 or len(b) < 1:
        raise ValueError("both samples need at least one value")
    mean = float(a.mean() - b.mean())
    sa, sb, se, df = _welch_parts(_sd(a), len(a), _sd(b), len(b))
    if math.isnan(se):
        return Interval("welch", mean, -math.inf, math.inf, math.nan, math.nan, (sa, sb), (len(a), len(b)))
    if se == 0:
        return Interval("welch", mean, mean, mean, math.inf, 0.0, (sa, sb), (len(a), len(b)))
    lo, hi = (float(v) for v in stats.t_bounds(mean, se, df, level))  # the reports' Welch t
    return Interval("welch", mean, lo, hi, df, se, (sa, sb), (len(a), len(b)))


def power(drop: float, se: float, df: float, level: float, tolerance: float) -> float:
    """P(the gate flags a regression | the true difference is ``-drop``): the upper end of the
    interval falls below ``-tolerance``. ``se``: the true standard error of the difference."""
    if not math.isfinite(df) or df <= 0 or math.isnan(se):
        if se == 0:
            return 1.0 if drop > tolerance else 0.0
        return 0.0
    if se == 0:
        return 1.0 if drop > tolerance else 0.0
    c = sps.t.ppf((1 + level) / 2, df)
    return float(sps.nct.cdf(-c, df, (tolerance - drop) / se))


def minimum_detectable_effect(
    se: float, df: float, level: float, tolerance: float, target: float = POWER
) -> float:
    """The smallest drop the gate flags with probability ``target`` (inf when it cannot: a side
    without variance estimate)."""
    if se == 0:
        return tolerance
    if math.isnan(se) or not math.isfinite(df) or df <= 0:
        return math.inf

    def gap(drop: float) -> float:
        return power(drop, se, df, level, tolerance) - target

    excess = se  # how far past the tolerance the search reaches: doubled at most 31 times
    while gap(tolerance + excess) < 0:
        excess *= 2
        if excess > 1e9 * se or tolerance + excess == tolerance:  # or lost in tolerance's rounding
            return math.inf
    return float(optimize.brentq(gap, tolerance, tolerance + excess, xtol=1e-10 * max(se, 1e-12), rtol=1e-10))


def interval_mde(iv: Interval, level: float, tolerance: float, target: float = POWER) -> float:
    """The MDE of a comparison with the observed spread of ``iv`` (see the module docstring)."""
    return minimum_detectable_effect(iv.se, iv.df, level, tolerance, target)


def seeds_needed(
    sd: float, effect: float, level: float, tolerance: float, paired: bool = True,
    target: float = POWER, most: int = 1000,
) -> int | None:  # fmt: skip
    """The fewest seeds per side for which a drop of ``effect`` is flagged with probability
    ``target``, with seed standard deviation ``sd`` on each side. Paired: the differences'
    sd is ``sqrt(2) · sd`` (no correlation between the two sides' seeds: the conservative case);
    unpaired: Welch with equal counts. None when even ``most`` seeds are not enough."""
    if effect <= tolerance:
        return None
    if sd == 0:
        return 2
    for n in range(2, most + 1):
        if paired:
            se, df = math.sqrt(2) * sd / math.sqrt(n), n - 1
        else:
            se, df = sd * math.sqrt(2 / n), welch_df(sd, n, sd, n)
        if power(effect, se, df, level, tolerance) >= target:
            return n
    return None
