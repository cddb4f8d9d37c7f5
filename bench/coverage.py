"""Coverage of bench's intervals, measured by simulation (design §7: every interval kind has one).

Layer: beside ``stats`` (imports only ``stats``, numpy and scipy).

For each interval kind, each distribution and each number of seeds, draw ``sims`` data sets whose
true value is known, compute the interval with the same code the reports and the gate use, and
count how often it covers the truth. A nominal 95% interval should cover about 95% of the time;
the test suite holds the t kinds to >= 93% (``tests/unit/test_coverage.py``). The bootstrap kinds
(IQM and the other aggregates) cannot reach that at 3 seeds — a percentile bootstrap never leaves
the range of the data, and three values contain their mean only 75% of the time — so their
coverage is printed (``python -m bench.coverage``, the reports guide, and beside the tables that
use them) rather than held to the mark.

The distributions: ``normal``; ``skewed``, a gamma with shape 4 (skewness 1.0); and, to show
where the one-sample t falls short, ``gamma(2)`` (skewness 1.41) and ``exponential`` (skewness 2).
The data models of each kind:

* ``t`` — n iid values; the truth is the distribution's mean.
* ``paired t`` — a shared seed effect plus independent noise on each side (both from the
  distribution), the second side shifted by a constant; the truth is the shift.
* ``Welch`` — two independent samples of n from the distribution, one shifted; and ``Welch
  (skewed vs normal)``: one side from the distribution, the other normal with the same mean and sd.
* ``two-way t`` — n seeds x 50 items (test prompts): seed effect and residual from the
  distribution, item effect normal, all of unit variance; the truth is the grand mean.
* ``bootstrap IQM, 1 task`` and ``bootstrap IQM, 4 tasks`` — ``stats.interval_estimate`` with
  ``stats.iqm`` (the leaderboard's and the aggregate table's interval); the truth is the
  population interquartile mean. ``bootstrap mean, 4 tasks``: the aggregate table's Mean.
"""

from __future__ import annotations

import argparse
from functools import lru_cache

import numpy as np
from scipy import stats as sps

from bench import stats

SEEDS = (3, 5, 10)
ITEMS = 50  # test prompts of the two-way model

# name -> (frozen scipy distribution), each standardised below to mean 0 and sd 1
_DISTRIBUTIONS = {
    "normal": sps.norm(),
    "skewed": sps.gamma(4.0),
    "gamma(2)": sps.gamma(2.0),
    "exponential": sps.expon(),
}
TESTED = ("normal", "skewed")  # the distributions the test suite holds to the mark
T_KINDS = ("t", "paired t", "Welch", "Welch (skewed vs normal)", "two-way t")
BOOTSTRAP_KINDS = ("bootstrap IQM, 1 task", "bootstrap IQM, 4 tasks", "bootstrap mean, 4 tasks")


def _draw(dist: str, rng: np.random.Generator, shape) -> np.ndarray:
    """Values from ``dist`` standardised to mean 0, sd 1."""
    d = _DISTRIBUTIONS[dist]
    return (d.rvs(size=shape, random_state=rng) - d.mean()) / d.std()


def population_iqm(dist: str) -> float:
    """The interquartile mean of the standardised distribution: 2 ∫_{0.25}^{0.75} Q(u) du."""
    d = _DISTRIBUTIONS[dist]
    u = 0.25 + 0.5 * (np.arange(20000) + 0.5) / 20000  # midpoints: the integral is their mean
    return float(((d.ppf(u) - d.mean()) / d.std()).mean())


def _covered(lo, hi, truth) -> float:
    return float(np.mean((lo <= truth) & (truth <= hi)))


def coverage(kind: str, dist: str, n: int, sims: int = 4000, seed: int = 0, confidence: float = 0.95,
             reps: int = 1000) -> float:  # fmt: skip
    """Fraction of ``sims`` simulated data sets whose ``kind`` interval covers the truth."""
    rng = np.random.default_rng([seed, n, sum(map(ord, kind + dist))])
    shift = 0.7
    if kind == "t":
        point, se, df = stats.one_sample_parts(_draw(dist, rng, (sims, n)))
        return _covered(*stats.t_bounds(point, se, df, confidence), 0.0)
    if kind == "paired t":
        seed_effect = _draw(dist, rng, (sims, n))
        a = seed_effect + _draw(dist, rng, (sims, n)) + shift
        b = seed_effect + _draw(dist, rng, (sims, n))
        point, se, df = stats.paired_parts(a, b)
        return _covered(*stats.t_bounds(point, se, df, confidence), shift)
    if kind in ("Welch", "Welch (skewed vs normal)"):
        a = _draw(dist, rng, (sims, n)) + shift
        b = _draw(dist if kind == "Welch" else "normal", rng, (sims, n))
        point, se, df = stats.welch_parts(a, b)
        return _covered(*stats.t_bounds(point, se, df, confidence), shift)
    if kind == "two-way t":
        m = (
            _draw(dist, rng, (sims, n, 1))
            + rng.normal(size=(sims, 1, ITEMS))
            + _draw(dist, rng, (sims, n, ITEMS))
        )
        point, se, df = stats.two_way_parts(m)
        return _covered(*stats.t_bounds(point, se, df, confidence), 0.0)
    if kind in BOOTSTRAP_KINDS:
        tasks = 1 if "1 task" in kind else 4
        return bootstrap_coverage(
            "IQM" if "IQM" in kind else "Mean", dist, n, tasks, sims, seed, confidence, reps
        )
    raise ValueError(f"unknown interval kind {kind!r}")


@lru_cache(maxsize=64)  # a report asks once per table, often for the same (n, tasks)
def bootstrap_coverage(statistic: str, dist: str, n: int, tasks: int, sims: int = 1000, seed: int = 0,
                       confidence: float = 0.95, reps: int = 1000) -> float:  # fmt: skip
    """Coverage of ``stats.interval_estimate`` (stratified percentile bootstrap) of an aggregate
    (``stats.AGGREGATES`` name: "IQM" or "Mean") over ``n`` runs x ``tasks`` tasks drawn from
    ``dist``; the truth is the population IQM (or mean, 0) of the standardised distribution."""
    rng = np.random.default_rng([seed, n, tasks, sum(map(ord, statistic + dist))])
    fn = stats.AGGREGATES[statistic]
    truth = population_iqm(dist) if statistic == "IQM" else 0.0
    hits = 0
    for i in range(sims):
        iv = stats.interval_estimate(_draw(dist, rng, (n, tasks)), fn, reps, confidence, seed=i)
        hits += iv.lo <= truth <= iv.hi
    return hits / sims


def coverage_table(kinds=T_KINDS + BOOTSTRAP_KINDS, dists=tuple(_DISTRIBUTIONS), seeds=SEEDS,
                   sims: int = 20000, bootstrap_sims: int = 1000, seed: int = 0) -> list[dict]:  # fmt: skip
    """One row per (kind, distribution): the coverage at each number of seeds."""
    rows = []
    for kind in kinds:
        for dist in dists:
            k = bootstrap_sims if kind in BOOTSTRAP_KINDS else sims
            rows.append({"kind": kind, "distribution": dist, "sims": k,
                         **{n: coverage(kind, dist, n, k, seed) for n in seeds}})  # fmt: skip
    return rows


def markdown(rows: list[dict], seeds=SEEDS) -> str:
    head = "| interval | data | " + " | ".join(f"{n} seeds" for n in seeds) + " | simulations |"
    lines = [head, "|" + "---|" * (len(seeds) + 3)]
    for r in rows:
        cells = " | ".join(f"{100 * r[n]:.1f}%" for n in seeds)
        lines.append(f"| {r['kind']} | {r['distribution']} | {cells} | {r['sims']:,} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Measure the coverage of bench's nominal 95% intervals.")
    p.add_argument("--sims", type=int, default=20000, help="data sets per cell, t kinds (default 20000)")
    p.add_argument("--bootstrap-sims", type=int, default=1000, help="data sets per cell, bootstrap kinds")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(markdown(coverage_table(sims=args.sims, bootstrap_sims=args.bootstrap_sims, seed=args.seed)))


if __name__ == "__main__":
    main()
