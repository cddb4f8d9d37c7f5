"""The gate's statistics (bench.gate): intervals by hand, the power formula against simulation,
the minimum detectable effect and the seeds a comparison needs."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench import gate


def test_paired_interval_by_hand():
    # d = [1, 2, 0, 1]: mean 1, sd sqrt(2/3), se sqrt(2/3)/2; t(0.975, 3) = 3.182446
    iv = gate.paired_interval([10, 12, 9, 11], [9, 10, 9, 10], 0.95)
    half = 3.182446305284263 * math.sqrt(2 / 3) / 2
    assert iv.method == "paired" and iv.df == 3 and iv.n == (4,)
    assert iv.difference == 1.0
    assert iv.lo == pytest.approx(1 - half, abs=1e-12) and iv.hi == pytest.approx(1 + half, abs=1e-12)
    # the same numbers as scipy's one-sample t test of the differences
    ci = sps.ttest_1samp([1, 2, 0, 1], 0).confidence_interval(0.95)
    assert (iv.lo, iv.hi) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_welch_interval_equals_scipy():
    a, b = [3.0, 5.0, 4.0, 6.5, 5.5], [1.0, 2.0, 4.0]
    iv = gate.welch_interval(a, b, 0.9)
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    assert (iv.lo, iv.hi) == pytest.approx((ci.low, ci.high), abs=1e-12)
    # Welch-Satterthwaite by hand: va = 1.675 / 5, vb = 7 / 3 / 3
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 3
    assert iv.df == pytest.approx((va + vb) ** 2 / (va**2 / 4 + vb**2 / 2))


def test_degenerate_samples():
    # one pair: no spread to estimate, the interval is unbounded and nothing is detectable
    iv = gate.paired_interval([1.0], [2.0], 0.95)
    assert iv.lo == -math.inf and iv.hi == math.inf
    assert gate.interval_mde(iv, 0.95, 0.05) == math.inf
    # no spread at all: the interval is the point, any drop beyond the tolerance is seen
    iv = gate.welch_interval([0.5, 0.5], [0.7, 0.7], 0.95)
    assert (iv.lo, iv.hi) == (pytest.approx(-0.2), pytest.approx(-0.2))
    assert gate.interval_mde(iv, 0.95, 0.05) == 0.05
    # one run on one side borrows the other side's spread
    iv = gate.welch_interval([1.0], [0.0, 2.0, 1.0], 0.95)
    assert iv.df == 2 and iv.se == pytest.approx(math.sqrt(1 / 1 + 1 / 3))


def test_power_is_the_false_alarm_rate_at_the_tolerance_and_grows_with_the_drop():
    se, df, level, tol = 0.05, 4, 0.99, 0.05
    # at a drop equal to the tolerance the gate fires at the one-sided level (1 - 0.99) / 2
    assert gate.power(tol, se, df, level, tol) == pytest.approx(0.005, abs=1e-9)
    drops = np.linspace(0.05, 0.6, 12)
    powers = [gate.power(d, se, df, level, tol) for d in drops]
    assert all(np.diff(powers) > 0)
    mde = gate.minimum_detectable_effect(se, df, level, tol)
    assert gate.power(mde, se, df, level, tol) == pytest.approx(0.8, abs=1e-7)


def _detection_rate(draw, n_sims, level, tol, rng):
    flagged = 0
    for _ in range(n_sims):
        a, b, paired = draw(rng)
        iv = gate.paired_interval(a, b, level) if paired else gate.welch_interval(a, b, level)
        flagged += iv.hi < -tol
    return flagged / n_sims


@pytest.mark.parametrize(
    "paired, n_a, n_b, sd_a, sd_b",
    [(True, 5, 5, 0.15, 0.15), (True, 10, 10, 0.1, 0.1), (False, 8, 8, 0.1, 0.1), (False, 6, 12, 0.2, 0.08)],
)
def test_predicted_power_matches_simulation(paired, n_a, n_b, sd_a, sd_b):
    """Normal seed scores with a true drop at the predicted MDE: the empirical detection rate is
    80% within 2.5 points (4000 simulated comparisons: binomial sd 0.6 points)."""
    level, tol, rho = 1 - 0.05 / 6, 0.05, 0.5  # six comparisons; paired seeds correlate by 0.5
    if paired:
        sd_d = math.sqrt(sd_a**2 + sd_b**2 - 2 * rho * sd_a * sd_b)
        se, df = sd_d / math.sqrt(n_a), n_a - 1
    else:
        se = math.sqrt(sd_a**2 / n_a + sd_b**2 / n_b)
        df = gate.welch_df(sd_a, n_a, sd_b, n_b)
    drop = gate.minimum_detectable_effect(se, df, level, tol)

    def draw(rng):
        if paired:
            cov = [[sd_a**2, rho * sd_a * sd_b], [rho * sd_a * sd_b, sd_b**2]]
            x = rng.multivariate_normal([0.7 - drop, 0.7], cov, size=n_a)
            return x[:, 0], x[:, 1], True
        return rng.normal(0.7 - drop, sd_a, n_a), rng.normal(0.7, sd_b, n_b), False

    rate = _detection_rate(draw, 4000, level, tol, np.random.default_rng(7))
    assert rate == pytest.approx(0.8, abs=0.025), (drop, rate)


def test_unchanged_algorithm_is_flagged_at_most_at_the_family_level():
    """No true change (two samples of one distribution): the gate fires in at most about
    (1 - confidence) / 2 / k of comparisons."""
    level, tol = 1 - 0.05 / 6, 0.0

    def draw(rng):
        return rng.normal(0.5, 0.1, 5), rng.normal(0.5, 0.1, 5), False

    rate = _detection_rate(draw, 6000, level, tol, np.random.default_rng(3))
    assert rate <= 0.05 / 12 + 0.003


def test_seeds_needed():
    level, tol = 1 - 0.05 / 6, 0.0
    n = gate.seeds_needed(0.1, 0.1, level, tol)
    # enough: the power at n reaches 80%, and at n - 1 it does not
    se = lambda k: math.sqrt(2) * 0.1 / math.sqrt(k)  # noqa: E731
    assert gate.power(0.1, se(n), n - 1, level, tol) >= 0.8 > gate.power(0.1, se(n - 1), n - 2, level, tol)
    assert gate.seeds_needed(0.0, 0.1, level, tol) == 2
    assert gate.seeds_needed(0.1, 0.04, level, 0.05) is None  # an effect within the tolerance
    assert gate.seeds_needed(10.0, 0.1, level, 0.0, most=50) is None
