"""bench.stats against small matrices computed by hand."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench import gate, stats

# 4 runs x 2 tasks
M = np.array([[0.0, 1.0], [0.2, 0.6], [0.4, 0.8], [1.0, 1.4]])


def test_iqm_by_hand():
    # 8 values sorted: 0, .2, .4, .6, .8, 1, 1, 1.4 -> drop 2 each end -> .4 .6 .8 1 -> 0.7
    assert stats.iqm(M) == pytest.approx(0.7)
    assert stats.iqm(M) == pytest.approx(sps.trim_mean(M.ravel(), 0.25))


def test_mean_median_optimality_gap_by_hand():
    # per-task means: 0.4 and 0.95
    assert stats.mean(M) == pytest.approx(0.675)
    assert stats.median(M) == pytest.approx(0.675)
    three = np.array([[0.0, 1.0, 5.0]])
    assert stats.median(three) == pytest.approx(1.0)
    # min(x, 1): 0 .2 .4 1 | 1 .6 .8 1 -> mean 0.625 -> gap 0.375
    assert stats.optimality_gap(M) == pytest.approx(0.375)
    assert stats.optimality_gap(np.full((3, 2), 2.0)) == 0.0


def test_statistics_skip_missing_runs():
    ragged = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, np.nan]])
    assert stats.mean(ragged) == pytest.approx((1.0 + 1.0) / 2)
    # valid values 0 1 1 2: cut 1 each end -> 1
    assert stats.iqm(ragged) == pytest.approx(1.0)


def test_batched_statistics_match_one_at_a_time():
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(5, 6, 3))
    for fn in stats.AGGREGATES.values():
        np.testing.assert_allclose(fn(batch), [fn(m) for m in batch])


def test_stratified_bootstrap_resamples_within_tasks():
    scores = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, np.nan]])
    boot = stats.stratified_bootstrap(scores, reps=200, seed=3)
    assert boot.shape == (200, 3, 2)
    assert set(np.unique(boot[:, :, 0])) <= {0.0, 1.0, 2.0}
    assert set(np.unique(boot[:, :2, 1])) <= {10.0, 11.0}
    assert np.isnan(boot[:, 2, 1]).all()
    np.testing.assert_array_equal(boot, stats.stratified_bootstrap(scores, reps=200, seed=3))


def test_interval_estimate_brackets_point_and_degenerates():
    point, lo, hi = stats.interval_estimate(M, stats.iqm, reps=500, seed=1)
    assert point == pytest.approx(0.7) and lo <= point <= hi
    assert tuple(stats.interval_estimate(np.full((5, 2), 3.0), stats.mean, reps=100)) == (3.0, 3.0, 3.0)


def test_probability_of_improvement_by_hand():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([0.0, 2.0])
    # pairs: 1>0, 1<2, 2>0, 2=2 (1/2), 3>0, 3>2 -> (1 + 0 + 1 + .5 + 1 + 1) / 6
    assert stats.probability_of_improvement(x, y) == pytest.approx(4.5 / 6)
    assert stats.probability_of_improvement(y, x) == pytest.approx(1.5 / 6)
    # two tasks: average of per-task probabilities
    xm = np.array([[1.0, 0.0], [2.0, 0.0]])
    ym = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert stats.probability_of_improvement(xm, ym) == pytest.approx(0.5)


def test_probability_of_improvement_interval():
    x, y = np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0, 3.0])
    assert stats.probability_of_improvement_interval(x, y, reps=300) == (1.0, 1.0, 1.0)
    p, lo, hi = stats.probability_of_improvement_interval(
        np.array([1.0, 3.0]), np.array([2.0, 2.5]), reps=400
    )
    assert p == pytest.approx(0.5) and 0.0 <= lo < p < hi <= 1.0


def test_difference_and_mean_intervals_by_hand():
    # Welch: a = [3, 5] (mean 4, var 2), b = [1, 2, 3] (mean 2, var 1)
    iv = stats.difference_interval(np.array([3.0, 5.0]), np.array([1.0, 2.0, 3.0]))
    va, vb = 2.0 / 2, 1.0 / 3
    df = (va + vb) ** 2 / (va**2 / 1 + vb**2 / 2)
    half = sps.t.ppf(0.975, df) * np.sqrt(va + vb)
    assert iv.kind == "Welch" and iv.n == (2, 3) and iv.label == "Welch, 2 vs 3 seeds"
    assert (iv.point, iv.lo, iv.hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    # the same seeds on both sides: paired, aligned by seed whatever the order
    iv = stats.difference_interval(np.array([3.0, 5.0, 4.0]), np.array([2.0, 1.0, 3.0]), [0, 1, 2], [1, 0, 2])
    d = np.array([3.0 - 1.0, 5.0 - 2.0, 4.0 - 3.0])  # 2, 3, 1
    half = sps.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert iv.kind == "paired t" and iv.label == "paired t, 3 seeds"
    assert (iv.point, iv.lo, iv.hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    # one value on a side: no interval, and the text says so
    iv = stats.difference_interval(np.array([0.0, 4.0]), np.array([1.0]))
    assert iv.point == 1.0 and np.isnan(iv.lo) and not iv.has_interval
    assert iv.text(signed=True) == "+1.000 (1 seed: no interval)"
    m, lo, hi = stats.mean_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    half = sps.t.ppf(0.975, 3) * np.std([1, 2, 3, 4], ddof=1) / 2
    assert (m, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half))
    assert stats.mean_interval(np.array([0.229])).text() == "0.229 (1 seed: no interval)"


def test_t_intervals_equal_scipy():
    """The reports' and the gate's t intervals are scipy's (``TtestResult.confidence_interval``)."""
    rng = np.random.default_rng(3)
    for n in (2, 3, 5, 10):
        a, b = rng.gamma(2.0, size=n), rng.normal(size=n) + 0.3
        c = rng.normal(size=n + 2)
        ref = sps.ttest_1samp(a, 0.0).confidence_interval(0.95)
        assert tuple(stats.mean_interval(a))[1:] == pytest.approx((ref.low, ref.high))
        ref = sps.ttest_rel(a, b).confidence_interval(0.95)
        iv = stats.difference_interval(a, b, list(range(n)), list(range(n)))
        assert (iv.lo, iv.hi) == pytest.approx((ref.low, ref.high))
        g = gate.paired_interval(a, b, 0.95)
        assert (g.lo, g.hi) == pytest.approx((ref.low, ref.high))
        ref = sps.ttest_ind(a, c, equal_var=False).confidence_interval(0.95)
        iv = stats.difference_interval(a, c)
        assert iv.kind == "Welch" and (iv.lo, iv.hi) == pytest.approx((ref.low, ref.high))
        g = gate.welch_interval(a, c, 0.95)
        assert (g.lo, g.hi) == pytest.approx((ref.low, ref.high))


def test_two_way_interval_by_hand():
    m = np.array([[1.0, 0.0, 1.0, 0.5], [0.5, 0.0, 1.0, 1.0], [1.0, 0.5, 0.5, 0.5]])
    iv = stats.two_way_interval(m)
    se = np.sqrt(m.mean(1).var(ddof=1) / 3 + m.mean(0).var(ddof=1) / 4)
    half = sps.t.ppf(0.975, 2) * se
    assert iv.kind == "two-way t" and iv.label == "two-way t, 3 seeds x 4 items"
    assert (iv.point, iv.lo, iv.hi) == pytest.approx((m.mean(), m.mean() - half, m.mean() + half))


def test_mean_band_handles_missing_points():
    curves = np.array([[0.0, 1.0, np.nan], [2.0, 3.0, 5.0], [1.0, 2.0, 4.0]])
    point, lo, hi = stats.mean_band(curves)
    np.testing.assert_allclose(point, [1.0, 2.0, 4.5])
    half = sps.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # columns 0 and 1: sd 1 over 3 runs
    np.testing.assert_allclose(lo[:2], [1.0 - half, 2.0 - half])
    half = sps.t.ppf(0.975, 1) * np.std([5.0, 4.0], ddof=1) / np.sqrt(2)
    assert (lo[2], hi[2]) == pytest.approx((4.5 - half, 4.5 + half))
    point, lo, hi = stats.mean_band(np.array([[1.0, np.nan], [2.0, 3.0]]))
    assert np.isnan(lo[1]) and np.isnan(hi[1]) and point[1] == 3.0  # one run there: no band


def test_performance_profile_by_hand():
    taus = np.array([-1.0, 0.3, 1.0, 2.0])
    # values 0 .2 .4 1 | 1 .6 .8 1.4: >-1: 8, >.3: 6, >1: 1, >2: 0
    np.testing.assert_allclose(stats.performance_profile(M, taus), [1.0, 6 / 8, 1 / 8, 0.0])
    point, lo, hi = stats.performance_profile_band(M, taus, reps=300, seed=0)
    np.testing.assert_allclose(point, [1.0, 6 / 8, 1 / 8, 0.0])
    assert np.all(lo <= point) and np.all(point <= hi)
    assert lo[0] == hi[0] == 1.0 and lo[3] == hi[3] == 0.0


def test_pareto_front_by_hand():
    kl = np.array([1.0, 2.0, 2.0, 3.0, 0.5, 4.0, np.nan])
    reward = np.array([1.0, 3.0, 2.0, 2.5, 0.2, 4.0, 9.0])
    # 0.5/0.2 (lowest KL), 1/1, 2/3, 4/4 are on the front; 2/2 and 3/2.5 are dominated by 2/3
    np.testing.assert_array_equal(stats.pareto_front(kl, reward), [4, 0, 1, 5])
    assert stats.pareto_front(np.array([1.0, 1.0]), np.array([2.0, 2.0])).tolist() == [0]


def test_median_interval_keeps_never_as_infinity():
    from bench import stats

    point, lo, hi = stats.median_interval(np.array([1.0, 2.0, 3.0, np.inf, np.inf]), reps=2000, seed=0)
    assert (point, lo, hi) == (3.0, 1.0, np.inf)  # resampled medians range from 1 to never
    assert stats.median_interval(np.array([np.inf, np.inf]), reps=50) == (np.inf, np.inf, np.inf)
    # every bootstrap median of 5 distinct values is one of them (no interpolation)
    point, lo, hi = stats.median_interval(np.array([10.0, 20.0, 30.0, 40.0, 50.0]), reps=500, seed=1)
    assert point == 30.0 and lo in {10.0, 20.0} and hi in {40.0, 50.0}


def test_replication_probability_matches_simulation():
    """A paired t verdict 'above 0' measured as effect 1.0, se 0.3 on 5 seeds: the chance that 5 or
    10 fresh seeds (per-seed sd 0.3·sqrt(5), true effect 1.0) give a lower bound above 0 again."""
    rng = np.random.default_rng(7)
    sd = 0.3 * np.sqrt(5)
    for n in (5, 10):
        x = rng.normal(1.0, sd, size=(20_000, n))
        lo = x.mean(1) - sps.t.ppf(0.975, n - 1) * x.std(1, ddof=1) / np.sqrt(n)
        simulated = (lo > 0).mean()
        assert abs(stats.replication_probability(1.0, 0.3, 4, 5, "above 0", n) - simulated) < 0.01
    # the four rules: complementary pairs, and the sign of the effect decides which is likely
    p = {r: stats.replication_probability(-0.5, 0.3, 4, 5, r) for r in stats.RULES}
    assert p["above 0"] + p["not above 0"] == pytest.approx(1) and p["below 0"] + p[
        "not below 0"
    ] == pytest.approx(1)
    assert p["below 0"] > 0.2 > 0.01 > p["above 0"]
    # fewer seeds never help; the seeds for 80% are the first count that reaches it
    need = stats.seeds_to_replicate(1.0, 0.3, 4, 5, "above 0")
    assert stats.replication_probability(1.0, 0.3, 4, 5, "above 0", need) >= 0.8
    assert stats.replication_probability(1.0, 0.3, 4, 5, "above 0", need - 1) < 0.8
    assert math.isnan(stats.replication_probability(1.0, float("nan"), 4, 5, "above 0"))


def test_equivalence_probability_matches_simulation():
    """Fresh seeds from the published distribution (sd 1, 5 published seeds) declared equivalent at
    ±1.5 by two one-sided Welch tests, counted directly."""
    rng = np.random.default_rng(3)
    sd, n_pub, n_new, margin = 1.0, 5, 8, 1.5
    new = rng.normal(0, sd, size=(20_000, n_new))
    va, vb = sd * sd / n_pub, new.var(1, ddof=1) / n_new
    se, df = np.sqrt(va + vb), stats.welch_df(va, vb, n_pub, n_new)
    half = sps.t.ppf(0.95, df) * se
    d = new.mean(1)
    simulated = ((d - half > -margin) & (d + half < margin)).mean()
    assert abs(stats.equivalence_probability(sd, n_pub, n_new, margin) - simulated) < 0.015
    assert stats.equivalence_probability(0.0, 5, 5, 0.1) == 1.0
    assert math.isnan(stats.equivalence_probability(1.0, 1, 5, 0.1))
