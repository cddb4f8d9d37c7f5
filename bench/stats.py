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

Intervals (design §7, one statistics path for the reports and the gate). A difference of means
is a **paired t** interval where both sides ran the same seeds (in bench a seed fixes the shared
artifacts: π_ref or π_SFT, preference data, reward model, evaluation episodes) and **Welch's t**
otherwise; a mean over seeds is a **one-sample t**; a win rate over seeds x shared test prompts
a **two-way t**. Each returns an ``Interval`` that knows its kind and sample sizes, and a side
with one value has no interval at all. Percentile bootstrap intervals remain only for statistics
a t interval does not fit (IQM and the other aggregates, probability of improvement, medians);
their coverage at few seeds is below nominal, measured by ``bench.coverage`` and printed beside
the tables that use them. ``bench.coverage`` simulates the coverage of every kind; the test
suite holds the t kinds to >= 93% at 3, 5 and 10 seeds on normal and skewed data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

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
) -> Interval:
    """Point estimate and stratified-bootstrap percentile CI (kind ``"bootstrap"``; ``n`` counts
    the runs). A task with a single run gives no interval: its resamples are all the same value.
    Its coverage at few seeds is below nominal (``bench.coverage`` measures it)."""
    scores = np.asarray(scores, dtype=float)
    point = float(statistic(scores[None])[0])
    boot = statistic(stratified_bootstrap(scores, reps, seed))
    lo, hi = percentile_interval(boot, confidence)
    runs = int(np.count_nonzero(~np.isnan(scores)))
    if min(len(c) for c in _columns(scores)) < 2:
        return _none(point, (runs,), confidence)
    return Interval(point, float(lo), float(hi), "bootstrap", (runs,), confidence)


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


# -- intervals with a known kind and measured coverage -------------------------------------------

NO_INTERVAL = "no interval"


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval, the interval's kind and the sample sizes behind it.

    Unpacks as ``point, lo, hi``. ``kind``: ``"t"`` (one-sample t over seeds), ``"paired t"``
    (seeds shared by both sides), ``"Welch"`` (independent sides), ``"two-way t"`` (seeds x shared
    items, e.g. test prompts), ``"bootstrap"`` (stratified percentile bootstrap), or
    ``NO_INTERVAL`` (a side with one value: the bounds are NaN). ``n``: the values per side."""

    point: float
    lo: float
    hi: float
    kind: str
    n: tuple[int, ...]
    confidence: float = 0.95
    se: float = math.nan  # the standard error behind a t interval (NaN for other kinds)
    df: float = math.nan  # and its degrees of freedom

    def __iter__(self):
        return iter((self.point, self.lo, self.hi))

    @property
    def has_interval(self) -> bool:
        return self.kind != NO_INTERVAL

    @property
    def label(self) -> str:
        """What the interval is, for a table: ``"paired t, 5 seeds"``, ``"Welch, 3 vs 5 seeds"``,
        ``"1 seed: no interval"``."""
        if not self.has_interval:
            few = min(self.n) if self.n else 0
            return f"{few} seed{'s' if few != 1 else ''}: no interval"
        if self.kind == "Welch" and len(self.n) == 2:
            return f"Welch, {self.n[0]} vs {self.n[1]} seeds"
        if self.kind == "two-way t" and len(self.n) == 2:
            return f"two-way t, {self.n[0]} seeds x {self.n[1]} items"
        return f"{self.kind}, {self.n[0]} seed{'s' if self.n[0] != 1 else ''}"

    def text(self, digits: int = 3, signed: bool = False) -> str:
        """``"+0.041 [+0.012, +0.070] (paired t, 5 seeds)"``, or the point and "1 seed: no interval"."""
        f = f"{{:{'+' if signed else ''}.{digits}f}}".format
        if not self.has_interval:
            return f"{f(self.point)} ({self.label})"
        return f"{f(self.point)} [{f(self.lo)}, {f(self.hi)}] ({self.label})"


def _none(point: float, n: tuple[int, ...], confidence: float) -> Interval:
    return Interval(float(point), math.nan, math.nan, NO_INTERVAL, n, confidence)


def t_bounds(point, se, df, confidence: float = 0.95):
    """``point ± t_{(1+confidence)/2, df} · se``, elementwise (arrays broadcast); a zero ``se``
    gives a zero-width interval."""
    half = sps.t.ppf((1 + confidence) / 2, df) * se
    half = np.where(np.asarray(se) == 0, 0.0, half)
    return point - half, point + half


def one_sample_parts(x: np.ndarray):
    """``(mean, se, df)`` of the one-sample t over the last axis (at least 2 values)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    return x.mean(-1), x.std(-1, ddof=1) / np.sqrt(n), np.full(x.shape[:-1], n - 1.0)


def paired_parts(a: np.ndarray, b: np.ndarray):
    """``(mean difference, se, df)`` of the paired t over the last axis (``a[..., i]`` and
    ``b[..., i]`` share seed i)."""
    return one_sample_parts(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))


def welch_df(va, vb, na: int, nb: int):
    """Welch-Satterthwaite degrees of freedom from the variances of the two means (``sd² / n``),
    elementwise; inf where both are 0."""
    va, vb = np.asarray(va, dtype=float), np.asarray(vb, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    return np.where(va + vb == 0, np.inf, df)


def welch_parts(a: np.ndarray, b: np.ndarray):
    """``(mean difference, se, df)`` of Welch's t over the last axis (independent samples, at
    least 2 values each); df by Welch-Satterthwaite (``welch_df``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = a.shape[-1], b.shape[-1]
    va, vb = a.var(-1, ddof=1) / na, b.var(-1, ddof=1) / nb
    return a.mean(-1) - b.mean(-1), np.sqrt(va + vb), welch_df(va, vb, na, nb)


def two_way_parts(m: np.ndarray):
    """``(mean, se, df)`` of the grand mean of ``(..., seeds, items)`` matrices whose items (test
    prompts) are shared by every seed: the variance is the seeds' term (variance of the row means
    / seeds) plus the items' term (variance of the column means / items) — which counts the
    residual twice, erring wide — and the degrees of freedom are the seeds' (``seeds - 1``), the
    smaller source, so that few seeds are never read as many."""
    m = np.asarray(m, dtype=float)
    s, p = m.shape[-2], m.shape[-1]
    v_seeds = m.mean(-1).var(-1, ddof=1) / s
    v_items = m.mean(-2).var(-1, ddof=1) / p if p > 1 else np.zeros(m.shape[:-2])
    return m.mean((-2, -1)), np.sqrt(v_seeds + v_items), np.full(m.shape[:-2], s - 1.0)


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean of a 1-D sample (one value per seed) with its t interval; one value: no interval."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        raise ValueError("need at least one value")
    if len(values) < 2:
        return _none(values.mean(), (len(values),), confidence)
    point, se, df = one_sample_parts(values)
    lo, hi = t_bounds(point, se, df, confidence)
    return Interval(float(point), float(lo), float(hi), "t", (len(values),), confidence, float(se), float(df))


def difference_interval(
    a: np.ndarray, b: np.ndarray, seeds_a=None, seeds_b=None, confidence: float = 0.95
) -> Interval:
    """``mean(a) - mean(b)`` with a t interval: paired when both sides ran the same seeds
    (``seeds_a`` and ``seeds_b`` given, equal as sets, no repeats: the values are aligned by seed),
    Welch's otherwise. Fewer than two values on a side (or two pairs): no interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both samples need at least one value")
    point = float(a.mean() - b.mean())
    paired = (
        seeds_a is not None
        and seeds_b is not None
        and len(set(seeds_a)) == len(seeds_a) == len(a)
        and len(set(seeds_b)) == len(seeds_b) == len(b)
        and set(seeds_a) == set(seeds_b)
    )
    if paired:
        order_b = {s: i for i, s in enumerate(seeds_b)}
        b = b[[order_b[s] for s in seeds_a]]
        if len(a) < 2:
            return _none(point, (len(a),), confidence)
        point_, se, df = paired_parts(a, b)
        lo, hi = t_bounds(point_, se, df, confidence)
        return Interval(
            float(point_), float(lo), float(hi), "paired t", (len(a),), confidence, float(se), float(df)
        )
    if min(len(a), len(b)) < 2:
        return _none(point, (len(a), len(b)), confidence)
    point_, se, df = welch_parts(a, b)
    lo, hi = t_bounds(point_, se, df, confidence)
    return Interval(
        float(point_), float(lo), float(hi), "Welch", (len(a), len(b)), confidence, float(se), float(df)
    )


def two_way_interval(matrix: np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean of a ``(seeds, items)`` matrix (items, e.g. test prompts, shared by every seed) with
    the two-way t interval of ``two_way_parts``; one seed: no interval."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.size == 0:
        raise ValueError("need a non-empty (seeds, items) matrix")
    if m.shape[0] < 2:
        return _none(m.mean(), m.shape, confidence)
    point, se, df = two_way_parts(m)
    lo, hi = t_bounds(point, se, df, confidence)
    return Interval(
        float(point), float(lo), float(hi), "two-way t", m.shape, confidence, float(se), float(df)
    )


def mean_band(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Learning-curve band: per column of ``values`` ``(runs, points)`` (NaN = no value), the mean
    over the runs that have a value and its one-sample t interval (NaN bounds where fewer than two
    runs have one)."""
    values = np.asarray(values, dtype=float)
    valid = ~np.isnan(values)
    k = valid.sum(0)
    filled = np.where(valid, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = filled.sum(0) / k
        var = (np.where(valid, values - point, 0.0) ** 2).sum(0) / (k - 1)
        se = np.sqrt(var / k)
        lo, hi = t_bounds(point, se, np.maximum(k - 1, 1), confidence)
    few = k < 2
    return point, np.where(few, np.nan, lo), np.where(few, np.nan, hi)


def sample_sd(values: np.ndarray) -> float:
    """Sample standard deviation (ddof = 1); NaN for fewer than two values."""
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1)) if len(values) > 1 else math.nan


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


# -- replication ------------------------------------------------------------------------------

# what a verdict needs its deciding interval to do again on a fresh seed set
RULES = ("above 0", "below 0", "not below 0", "not above 0")


def seeds_of(iv: Interval) -> int:
    """The seed count behind an interval (the smaller side of a Welch interval)."""
    if iv.kind == "Welch" and len(iv.n) == 2:
        return int(min(iv.n))
    return int(iv.n[0]) if iv.n else 0


def replication_probability(
    effect: float, se: float, df: float, seeds: int, rule: str, seeds_new: int | None = None,
    confidence: float = 0.95,
) -> float:  # fmt: skip
    """The probability that a t interval on a fresh set of ``seeds_new`` seeds (default: as many as
    before) meets ``rule`` (``RULES``: e.g. "above 0" = its lower bound is above 0) again, if the
    published ``effect`` is the true one and the spread per seed stays as it was: the standard error
    scales as sqrt(seeds / seeds_new), the degrees of freedom as ``seeds_new - 1`` (Welch: in
    proportion), and the probability is a noncentral t tail. The published effect is an estimate (a
    significant one is biased away from 0), so this is the chance *if the published effect holds*:
    an upper reading, not a promise. NaN where there is no t interval."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}")
    seeds_new = seeds if seeds_new is None else seeds_new
    if not (np.isfinite(effect) and np.isfinite(se) and np.isfinite(df)) or seeds < 2 or seeds_new < 2:
        return math.nan
    se_new = se * math.sqrt(seeds / seeds_new)
    df_new = max(1.0, df * (seeds_new - 1) / max(seeds - 1, 1))
    t_crit = float(sps.t.ppf((1 + confidence) / 2, df_new))
    if se_new == 0:  # no spread: the interval is the point, every time
        above, below = effect > 0, effect < 0
        return float(
            {"above 0": above, "below 0": below, "not below 0": not below, "not above 0": not above}[rule]
        )
    nc = effect / se_new
    if rule == "above 0":  # lower bound > 0: T > t_crit
        return float(sps.nct.sf(t_crit, df_new, nc))
    if rule == "below 0":  # upper bound < 0: T < -t_crit
        return float(sps.nct.cdf(-t_crit, df_new, nc))
    if rule == "not below 0":  # upper bound >= 0: T >= -t_crit
        return float(sps.nct.sf(-t_crit, df_new, nc))
    return float(sps.nct.cdf(t_crit, df_new, nc))  # "not above 0": lower bound <= 0


def fewest_seeds(chance: Callable[[int], float], target: float = 0.8, most: int = 200) -> int | None:
    """The fewest seeds n (2 .. ``most``) with ``chance(n) >= target``; None where even ``most`` do
    not reach it or the chance is undefined (NaN)."""
    for n in range(2, most + 1):
        p = chance(n)
        if math.isnan(p):
            return None
        if p >= target:
            return n
    return None


def seeds_to_replicate(
    effect: float, se: float, df: float, seeds: int, rule: str, target: float = 0.8, most: int = 200,
    confidence: float = 0.95,
) -> int | None:  # fmt: skip
    """The fewest seeds (2 .. ``most``) at which ``replication_probability`` reaches ``target``;
    None where even ``most`` seeds do not (or there is no t interval)."""
    return fewest_seeds(
        lambda n: replication_probability(effect, se, df, seeds, rule, n, confidence), target, most
    )


def equivalence_probability(
    sd: float, n_published: int, n_new: int, margin: float, confidence: float = 0.95, sims: int = 4000
) -> float:
    """The probability that ``n_new`` fresh seeds drawn from the published distribution (its mean,
    its sample sd ``sd``; normal) are declared equivalent to the published ``n_published`` seeds at
    ``margin``: two one-sided Welch t tests at level ``1 - confidence`` each, i.e. the
    ``2·confidence - 1`` interval of the difference inside ±margin. The published side is held as
    observed; the new side is simulated (``sims`` draws, a fixed generator: the same inputs give the
    same number). NaN without a spread."""
    if n_published < 2 or n_new < 2 or not np.isfinite(sd) or not np.isfinite(margin):
        return math.nan
    if sd == 0:
        return 1.0 if margin > 0 else 0.0
    rng = np.random.default_rng(12345)
    new = rng.normal(0.0, sd, size=(sims, n_new))
    va = sd * sd / n_published
    vb = new.var(1, ddof=1) / n_new
    se = np.sqrt(va + vb)
    t_crit = sps.t.ppf(confidence, welch_df(va, vb, n_published, n_new))
    d = new.mean(1)
    return float(np.mean((d - t_crit * se > -margin) & (d + t_crit * se < margin)))
