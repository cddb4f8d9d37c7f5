"""bench.stats against small matrices computed by hand."""

import numpy as np
import pytest
from scipy import stats as sps

from bench import stats

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
    assert stats.interval_estimate(np.full((5, 2), 3.0), stats.mean, reps=100) == (3.0, 3.0, 3.0)


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


def test_difference_and_mean_intervals():
    d, lo, hi = stats.difference_interval(np.array([3.0, 3.0]), np.array([1.0, 1.0, 1.0]))
    assert (d, lo, hi) == (2.0, 2.0, 2.0)
    d, lo, hi = stats.difference_interval(np.array([0.0, 4.0]), np.array([1.0]), reps=1000, seed=0)
    # mean(a) resamples to 0, 2 or 4 -> the difference to -1, 1 or 3
    assert d == 1.0 and lo == -1.0 and hi == 3.0
    m, lo, hi = stats.mean_interval(np.array([1.0, 2.0, 3.0, 4.0]), reps=2000, seed=0)
    assert m == 2.5 and 1.0 <= lo < 2.5 < hi <= 4.0


def test_mean_band_handles_missing_points():
    curves = np.array([[0.0, 1.0, np.nan], [2.0, 3.0, 5.0]])
    point, lo, hi = stats.mean_band(curves, reps=200, seed=0)
    np.testing.assert_allclose(point, [1.0, 2.0, 5.0])
    assert lo[2] == hi[2] == 5.0
    assert lo[0] == 0.0 and hi[0] == 2.0


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
