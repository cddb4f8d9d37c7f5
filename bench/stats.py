"""Statistics for comparing algorithms over runs and tasks, after Agarwal et al. (2021),
"Deep RL at the edge of the statistical precipice" — built on numpy and scipy.

Score matrices have shape ``(runs, tasks)``; ``NaN`` marks a missing run (a task with fewer runs
than another). Aggregate statistics also accept a batch of matrices ``(..., runs, tasks)`` and
return one value per matrix, which is how the bootstrap evaluates all replicates at once.
Every random function takes an explicit ``seed``.

* ``iqm`` — interquartile mean: the mean of the middle 50% of all run x task scores
  (``scipy.stats.trim_mean`` with 25% cut from each end).
* ``mean`` — the mean over tasks of the per-task mean score.
* ``median`` — the median over tasks of the per-task mean score.
* ``optimality_gap`` — ``gamma - mean(min(score, gamma))``: how far below ``gamma`` runs fall.
* ``probability_of_improvement`` — P(X > Y) + ½ P(X = Y) per task, from the Mann-Whitney U
  statistic, averaged over tasks.
* ``performance_profile`` — fraction of runs whose score exceeds each threshold tau.
* ``stratified_bootstrap`` — resamples runs with replacement within each task.
* ``pareto_front`` — the non-dominated (low KL, high reward) points.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats as sps

Statistic = Callable[[np.ndarray], np.ndarray]


# -- aggregate statistics over (..., runs, tasks) ------------------------------------------


def _flat_valid(scores: np.ndarray) -> np.ndarray:
    """``(..., runs, tasks)`` -> ``(..., k)`` sorted valid values; every matrix of the batch
    must have the same number k of non-NaN entries (true for bootstrap replicates)."""
    scores = np.asarray(scores, dtype=float)
    flat = scores.reshape(*scores.shape[:-2], -1)
    k = int(np.count_nonzero(~np.isnan(flat.reshape(-1, flat.shape[-1])[0])))
    return np.sort(flat, axis=-1)[..., :k]  # NaN sorts last


def iqm(scores: np.ndarray) -> np.ndarray | float:
    """Interquartile mean of all valid run x task scores (25% trimmed from each end)."""
    values = _flat_valid(scores)
    k = values.shape[-1]
    cut = int(0.25 * k)
    return values[..., cut : k - cut].mean(axis=-1)


def mean(scores: np.ndarray) -> np.ndarray | float:
    """Mean over tasks of the per-task mean score."""
    return np.nanmean(scores, axis=-2).mean(axis=-1)


def median(scores: np.ndarray) -> np.ndarray | float:
    """Median over tasks of the per-task mean score."""
    return np.median(np.nanmean(scores, axis=-2), axis=-1)


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray | float:
    """``gamma`` minus the mean of the scores clipped at ``gamma`` (0 = every run at gamma)."""
    values = _flat_valid(scores)
    return gamma - np.minimum(values, gamma).mean(axis=-1)


AGGREGATES: dict[str, Statistic] = {
    "IQM": iqm,
    "Mean": mean,
    "Median": median,
    "Optimality gap": optimality_gap,
}


# -- bootstrap -------------------------------------------------------------------------------


def _columns(scores: np.ndarray) -> list[np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (runs, tasks) matrix, got shape {scores.shape}")
    cols = [scores[~np.isnan(scores[:, j]), j] for j in range(scores.shape[1])]
    if any(len(c) == 0 for c in cols):
        raise ValueError("every task needs at least one run")
    return cols


def stratified_bootstrap(scores: np.ndarray, reps: int = 2000, seed: int = 0) -> np.ndarray:
    """``reps`` replicates of a ``(runs, tasks)`` matrix, each task's runs resampled with
    replacement among that task's valid runs -> ``(reps, runs, tasks)`` (NaN padding kept)."""
    cols = _columns(scores)
    rng = np.random.default_rng(seed)
    n_runs = max(len(c) for c in cols)
    out = np.full((reps, n_runs, len(cols)), np.nan)
    for j, col in enumerate(cols):
        out[:, : len(col), j] = col[rng.integers(0, len(col), size=(reps, len(col)))]
    return out


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile interval of bootstrap samples (last axis reduced)."""
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(samples, [tail, 100 - tail], axis=-1)
    return lo, hi


def interval_estimate(
    scores: np.ndarray,
    statistic: Statistic,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and stratified-bootstrap percentile CI ``(point, lo, hi)``."""
    scores = np.asarray(scores, dtype=float)
    point = float(statistic(scores[None])[0])
    boot = statistic(stratified_bootstrap(scores, reps, seed))
    lo, hi = percentile_interval(boot, confidence)
    return point, float(lo), float(hi)


def median_interval(
    values: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Median over seeds with a bootstrap percentile CI, for values that may be ``inf`` (a run that
    never reaches a threshold): percentiles without interpolation (``inverted_cdf``), so an
    interval end is a resampled median, ``inf`` included, never NaN."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    samples = values[rng.integers(0, len(values), size=(reps, len(values)))]
    with np.errstate(invalid="ignore"):  # the mean of two infinite middle values is inf
        medians = np.sort(samples, axis=1)
        mid = len(values) // 2
        boot = medians[:, mid] if len(values) % 2 else (medians[:, mid - 1] + medians[:, mid]) / 2
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail], method="inverted_cdf")
    return float(np.median(values)), float(lo), float(hi)


def _resample_weights(n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n items is drawn in each of ``reps`` resamples: ``(reps, n)``."""
    idx = rng.integers(0, n, size=(reps, n)) + n * np.arange(reps)[:, None]
    return np.bincount(idx.ravel(), minlength=reps * n).reshape(reps, n).astype(float)


def mean_band(
    values: np.ndarray, reps: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Learning-curve band: per column of ``values`` ``(runs, points)`` (NaN = no value), the
    mean over runs and the bootstrap CI of that mean, resampling whole runs."""
    values = np.asarray(values, dtype=float)
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = filled.sum(0) / valid.sum(0)
        w = _resample_weights(len(values), reps, np.random.default_rng(seed))
        boot = (w @ filled) / (w @ valid)  # (reps, points); NaN where a replicate has no run
    if not reps:
        return point, point, point
    q = [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2]
    if not np.isnan(boot).any():
        lo, hi = np.percentile(boot, q, axis=0)
        return point, lo, hi
    with warnings.catch_warnings():  # points no run reaches stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(boot, q, axis=0)
    return point, lo, hi


def mean_interval(
    values: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a 1-D sample and its bootstrap percentile CI."""
    point, lo, hi = mean_band(np.asarray(values, dtype=float)[:, None], reps, confidence, seed)
    return float(point[0]), float(lo[0]), float(hi[0])


def two_way_interval(
    matrix: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a ``(seeds, items)`` matrix and its two-way bootstrap percentile CI: each resample
    draws seeds (rows) and items (columns, e.g. test prompts shared by every seed) independently
    with replacement, so the interval covers both sources of variation."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.size == 0:
        raise ValueError("need a non-empty (seeds, items) matrix")
    rng = np.random.default_rng(seed)
    rows = _resample_weights(m.shape[0], reps, rng)  # (reps, seeds)
    cols = _resample_weights(m.shape[1], reps, rng)  # (reps, items)
    boot = np.einsum("rs,si,ri->r", rows, m, cols) / (m.shape[0] * m.shape[1])
    lo, hi = percentile_interval(boot, confidence)
    return float(m.mean()), float(lo), float(hi)


def difference_interval(
    a: np.ndarray, b: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` and its bootstrap percentile CI, resampling a and b independently."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both samples need at least one value")
    rng = np.random.default_rng(seed)
    mean_a = _resample_weights(len(a), reps, rng) @ a / len(a)
    boot = mean_a - _resample_weights(len(b), reps, rng) @ b / len(b)
    lo, hi = percentile_interval(boot, confidence)
    return float(a.mean() - b.mean()), float(lo), float(hi)


# -- probability of improvement ----------------------------------------------------------------


def _task_columns(scores: np.ndarray) -> list[np.ndarray]:
    """Per-task valid values of a ``(runs, tasks)`` matrix; a 1-D sample is one task."""
    scores = np.asarray(scores, dtype=float)
    return _columns(scores[:, None] if scores.ndim == 1 else scores)


def _win_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[x_i > y_j] + ½ [x_i == y_j]`` for every pair."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + ½ P(X = Y), X and Y a random run of each, averaged over tasks; ``x`` and ``y``
    are ``(runs, tasks)`` matrices (or 1-D for one task). Per task it is the Mann-Whitney U
    statistic of x over (n_x n_y)."""
    xs, ys = _task_columns(x), _task_columns(y)
    if len(xs) != len(ys):
        raise ValueError("x and y must cover the same tasks")
    per_task = [sps.mannwhitneyu(a, b).statistic / (len(a) * len(b)) for a, b in zip(xs, ys, strict=True)]
    return float(np.mean(per_task))


def probability_of_improvement_interval(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Probability of improvement with a stratified-bootstrap percentile CI (runs of x and of y
    resampled independently within each task)."""
    xs, ys = _task_columns(x), _task_columns(y)
    if len(xs) != len(ys):
        raise ValueError("x and y must cover the same tasks")
    rng = np.random.default_rng(seed)
    boot = np.zeros(reps)
    for a, b in zip(xs, ys, strict=True):
        wins = _win_matrix(a, b)
        wa, wb = _resample_weights(len(a), reps, rng), _resample_weights(len(b), reps, rng)
        boot += np.einsum("ri,ij,rj->r", wa, wins, wb) / (len(a) * len(b))
    boot /= len(xs)
    lo, hi = percentile_interval(boot, confidence)
    return probability_of_improvement(x, y), float(lo), float(hi)


# -- performance profiles --------------------------------------------------------------------


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of valid runs (all tasks pooled) whose score exceeds each tau; ``scores`` may be
    a batch ``(..., runs, tasks)``; returns ``(..., len(taus))``."""
    values = _flat_valid(scores)
    taus = np.asarray(taus, dtype=float)
    above = values[..., None, :] > taus[:, None]
    return above.mean(axis=-1)


def performance_profile_band(
    scores: np.ndarray, taus: np.ndarray, reps: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Performance profile with a stratified-bootstrap percentile band per tau."""
    scores = np.asarray(scores, dtype=float)
    point = performance_profile(scores[None], taus)[0]
    values = _flat_valid(stratified_bootstrap(scores, reps, seed))
    # fraction above each tau for every replicate, via sorted search (cheap for many runs)
    k = values.shape[-1]
    counts = np.stack([k - np.searchsorted(row, taus, side="right") for row in values])
    lo, hi = percentile_interval((counts / k).T, confidence)
    return point, lo, hi


# -- Pareto front ----------------------------------------------------------------------------


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated when lower ``x`` (e.g. KL) and higher ``y`` (e.g.
    reward) are better, ordered by increasing x. A point is dominated when another has x <= and
    y >= with one strict; of identical points the first is kept."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.flatnonzero(~(np.isnan(x) | np.isnan(y)))
    order = ok[np.lexsort((-y[ok], x[ok]))]  # by x ascending, then y descending
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.asarray(front, dtype=int)
