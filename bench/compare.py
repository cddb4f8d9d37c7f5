"""``bench compare``: the regression gate — a suite's final scores in the store against a baseline.

Per (task, algorithm): the difference of mean final scores (store minus baseline) with a
bootstrap percentile CI, and the probability that a store run beats a baseline run. Tasks with
declared score bounds are judged on normalised scores (0 = random policy, 1 = solved), so the
tolerance means the same on every task; other tasks on raw scores. The confidence level is
family-wise: with k comparisons each CI is at level ``1 - (1 - confidence) / k`` (Bonferroni), so
a rerun of an unchanged algorithm is flagged with probability at most about ``(1 - confidence)/2``.

Verdicts: ``regression`` (the CI lies entirely below ``-tolerance``, or more runs failed than in
the baseline), ``improvement`` (the CI lies entirely above ``+tolerance``), ``no significant
change``, ``missing`` (no finished run on one side).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import stats
from bench.results import Results, code_versions, final_scores, normalise

COLUMNS = [
    "task", "algorithm", "scale", "baseline_seeds", "store_seeds", "baseline_failed", "store_failed",
    "baseline_mean", "store_mean", "difference", "diff_lo", "diff_hi", "p_improvement", "verdict",
    "baseline_code", "store_code",
]  # fmt: skip


def compare(
    store: Results,
    baseline: Results,
    tolerance: float = 0.05,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[pd.DataFrame, float]:
    """One row per (task, algorithm) present on either side, and the per-comparison confidence
    level used for the CIs; see the module docstring."""
    new, old = final_scores(store), final_scores(baseline)
    pairs = sorted(
        set(map(tuple, store.runs[["task", "algorithm"]].drop_duplicates().to_numpy()))
        | set(map(tuple, baseline.runs[["task", "algorithm"]].drop_duplicates().to_numpy()))
    )

    def scores(table, task, algo):
        return table.score[(table.task == task) & (table.algorithm == algo)].to_numpy(float)

    def failed(res, task, algo):
        r = res.runs
        return int(((r.task == task) & (r.algorithm == algo) & (r.status == "failed")).sum())

    comparable = [p for p in pairs if len(scores(new, *p)) and len(scores(old, *p))]
    level = 1 - (1 - confidence) / max(len(comparable), 1)
    rows = []
    for i, (task, algo) in enumerate(pairs):
        a, b = scores(new, task, algo), scores(old, task, algo)
        row = dict(
            task=task,
            algorithm=algo,
            baseline_seeds=len(b),
            store_seeds=len(a),
            baseline_failed=failed(baseline, task, algo),
            store_failed=failed(store, task, algo),
            baseline_mean=b.mean() if len(b) else np.nan,
            store_mean=a.mean() if len(a) else np.nan,
            baseline_code=code_versions(_runs_of(baseline, task, algo)),
            store_code=code_versions(_runs_of(store, task, algo)),
        )
        if (task, algo) not in comparable:
            rows.append({**row, "scale": "", "verdict": "missing"})
            continue
        scaled = normalise(task, a) is not None
        na, nb = (normalise(task, a), normalise(task, b)) if scaled else (a, b)
        d, lo, hi = stats.difference_interval(na, nb, reps, level, seed + i)
        p = stats.probability_of_improvement(na, nb)
        if hi < -tolerance or row["store_failed"] > row["baseline_failed"]:
            verdict = "regression"
        elif lo > tolerance:
            verdict = "improvement"
        else:
            verdict = "no significant change"
        rows.append(
            {
                **row,
                "scale": "normalised" if scaled else "raw",
                "difference": d,
                "diff_lo": lo,
                "diff_hi": hi,
                "p_improvement": p,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows).reindex(columns=COLUMNS), level


def _runs_of(results: Results, task: str, algo: str) -> pd.DataFrame:
    r = results.runs
    return r[(r.task == task) & (r.algorithm == algo)]


def display_rows(table: pd.DataFrame) -> list[list[str]]:
    from bench.report.tables import fmt

    rows = []
    for _, r in table.iterrows():
        diff = "—"
        if r.verdict != "missing":
            diff = f"{r.difference:+.3f} [{r.diff_lo:+.3f}, {r.diff_hi:+.3f}] {r.scale}"
        rows.append(
            [
                r.task,
                r.algorithm,
                f"{fmt(r.baseline_mean)} (n={r.baseline_seeds}, {r.baseline_failed} failed)",
                f"{fmt(r.store_mean)} (n={r.store_seeds}, {r.store_failed} failed)",
                diff,
                "—" if pd.isna(r.p_improvement) else f"{r.p_improvement:.2f}",
                r.verdict,
                _code_change(r.baseline_code, r.store_code),
            ]
        )
    return rows


HEADER = [
    "task", "algorithm", "baseline mean", "store mean", "difference [CI]", "P(store > baseline)", "verdict",
    "code (baseline → store)",
]  # fmt: skip


def _code_change(old, new) -> str:
    """``old → new`` code versions, ``same: v`` when equal, ``—`` when neither side has one."""
    old = old if isinstance(old, str) and old else "—"
    new = new if isinstance(new, str) and new else "—"
    if old == new:
        return "—" if old == "—" else f"same: {old}"
    return f"{old} → {new}"
