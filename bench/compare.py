"""``bench compare``: the regression gate — a suite's runs in the store against a baseline (a CSV
from ``bench export``, or the same store's runs under an earlier code version).

Per (task, algorithm), in this order:

1. **Exact check.** Runs here are deterministic: the same seed, config and code give the same
   evaluation records, byte for byte. Runs are matched by seed (and, where both sides know it,
   by the run key without code: same task, config, budget and seed). When every run of both
   sides has a match and their evaluation records (every non-timing metric, step, temperature
   and value) are equal, the verdict is ``identical`` — the refactor verdict; no statistics are
   needed. Otherwise the first run and record that differ are named.
2. **The difference of mean final scores** (store minus baseline), on normalised scores where the
   task declares bounds (0 = random policy, 1 = solved), raw scores otherwise. When both sides
   ran the same seeds the differences are taken per seed with a paired t interval; otherwise
   Welch's t interval (``bench.gate`` explains the choice). The confidence level is family-wise:
   with k comparisons each interval is at ``1 - (1 - confidence) / k`` (Bonferroni).
3. **Power.** The minimum detectable effect (MDE): the smallest drop the gate flags with 80%
   probability at that level and tolerance, given the observed seed spread and counts. A green
   verdict whose MDE exceeds ``effect`` (default twice the tolerance, 0.1 at tolerance 0) is
   marked under-powered. No MDE is given where neither side shows any seed spread.

Verdicts: ``identical``; ``regression`` (the interval lies entirely below ``-tolerance``, or more
runs failed than in the baseline); ``improvement`` (entirely above ``+tolerance``); ``no
significant change``; ``missing`` (in the baseline, but no finished run in the store: the gate
fails unless a subset is allowed); ``new`` (in the store only: nothing to compare).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench import gate
from bench.results import (
    BENCH_PROTOCOL,
    Results,
    code_versions,
    final_scores,
    machines_of,
    normalise,
    run_protocols,
)  # fmt: skip
from bench.store import is_timing_metric

COLUMNS = [
    "task", "algorithm", "scale", "method", "baseline_seeds", "store_seeds", "baseline_failed",
    "store_failed",
    "baseline_mean", "store_mean", "difference", "diff_lo", "diff_hi", "mde", "exact", "verdict",
    "baseline_code", "store_code",
]  # fmt: skip
FAILING = ("regression", "missing")
RECORD = ["step", "temperature", "metric", "value", "n"]


def protocol_of(results: Results, task: str, algo: str) -> str:
    """What a (task, algorithm)'s scores measure: bench's own evaluation unless imported."""
    return "; ".join(sorted(set(run_protocols(_runs_of(results, task, algo))))) or BENCH_PROTOCOL


def protocol_mismatches(store: Results, baseline: Results) -> list[tuple[str, str, str, str]]:
    """(task, algorithm, store's protocol, baseline's) of every comparison whose two sides were
    measured differently (e.g. a training-episode return against bench's evaluation)."""
    both = set(map(tuple, store.runs[["task", "algorithm"]].drop_duplicates().to_numpy())) & set(
        map(tuple, baseline.runs[["task", "algorithm"]].drop_duplicates().to_numpy())
    )
    out = []
    for task, algo in sorted(both):
        a, b = protocol_of(store, task, algo), protocol_of(baseline, task, algo)
        if a != b:
            out.append((task, algo, a, b))
    return out


def compare(
    store: Results,
    baseline: Results,
    tolerance: float = 0.05,
    confidence: float = 0.95,
    effect: float | None = None,
) -> tuple[pd.DataFrame, float, dict]:
    """One row per (task, algorithm) present on either side, the per-comparison confidence level,
    and each comparison's per-seed scores (for the figure): ``{(task, algo): (store, baseline,
    paired)}`` on the comparison's scale."""
    effect = default_effect(tolerance) if effect is None else effect
    new, old = final_scores(store), final_scores(baseline)
    pairs = sorted(
        set(map(tuple, store.runs[["task", "algorithm"]].drop_duplicates().to_numpy()))
        | set(map(tuple, baseline.runs[["task", "algorithm"]].drop_duplicates().to_numpy()))
    )
    comparable = [p for p in pairs if len(_scores(new, *p)) and len(_scores(old, *p))]
    level = 1 - (1 - confidence) / max(len(comparable), 1)
    records = (_records(store), _records(baseline))
    rows, points = [], {}
    for task, algo in pairs:
        a, b = _scores(new, task, algo), _scores(old, task, algo)
        row = dict(
            task=task,
            algorithm=algo,
            baseline_seeds=len(b),
            store_seeds=len(a),
            baseline_failed=_failed(baseline, task, algo),
            store_failed=_failed(store, task, algo),
            baseline_mean=b.score.mean() if len(b) else np.nan,
            store_mean=a.score.mean() if len(a) else np.nan,
            baseline_code=code_versions(_runs_of(baseline, task, algo)),
            store_code=code_versions(_runs_of(store, task, algo)),
        )
        if (task, algo) not in comparable:
            verdict = "missing" if len(b) else "new"
            rows.append({**row, "scale": "", "method": "", "exact": "", "verdict": verdict})
            continue
        exact = exact_check(store, baseline, task, algo, records)
        scaled = normalise(task, a.score.to_numpy(float)) is not None

        def on_scale(x: pd.Series, task=task, scaled=scaled) -> np.ndarray:
            x = x.to_numpy(float)
            return normalise(task, x) if scaled else x

        paired = sorted(a.seed) == sorted(b.seed) and len(a) >= 2
        if paired:
            a, b = a.sort_values("seed"), b.sort_values("seed")
            iv = gate.paired_interval(on_scale(a.score), on_scale(b.score), level)
        else:
            iv = gate.welch_interval(on_scale(a.score), on_scale(b.score), level)
        # no spread observed on either side (e.g. every seed at a task's ceiling) is no evidence of
        # no spread: the formula's answer (the tolerance itself) is not reported as a power
        mde = gate.interval_mde(iv, level, tolerance) if iv.se != 0 else np.nan
        identical = exact.startswith("identical") and row["store_failed"] == row["baseline_failed"]
        if identical:
            verdict = "identical"
        elif iv.hi < -tolerance or row["store_failed"] > row["baseline_failed"]:
            verdict = "regression"
        elif iv.lo > tolerance:
            verdict = "improvement"
        elif mde > effect:
            verdict = "no significant change (under-powered)"
        else:
            verdict = "no significant change"
        points[(task, algo)] = (on_scale(a.score), on_scale(b.score), paired)
        rows.append(
            {
                **row,
                "scale": "normalised" if scaled else "raw",
                "method": "identical" if identical else ("paired t" if paired else "Welch t"),
                "difference": iv.difference,
                "diff_lo": iv.lo,
                "diff_hi": iv.hi,
                "mde": mde,
                "exact": exact,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows).reindex(columns=COLUMNS), level, points


def default_effect(tolerance: float) -> float:
    """The drop a green verdict must have been able to see: twice the tolerance, or 0.1 (10% of
    the random-to-solved range) for a zero tolerance."""
    return 2 * tolerance if tolerance > 0 else 0.1


def _scores(table: pd.DataFrame, task: str, algo: str) -> pd.DataFrame:
    return table[(table.task == task) & (table.algorithm == algo)][["seed", "run_key", "score"]]


def _failed(res: Results, task: str, algo: str) -> int:
    r = res.runs
    return int(((r.task == task) & (r.algorithm == algo) & (r.status == "failed")).sum())


def _runs_of(results: Results, task: str, algo: str) -> pd.DataFrame:
    r = results.runs
    return r[(r.task == task) & (r.algorithm == algo)]


def _records(results: Results) -> dict[str, pd.DataFrame]:
    """Each run's evaluation records without timing, in a canonical order: run key -> table."""
    ev = results.evals
    ev = ev[~ev.metric.map(is_timing_metric).astype(bool)]
    ev = ev[["run_key", *RECORD]].astype({"step": float, "temperature": float, "value": float, "n": float})
    ev = ev.sort_values(["run_key", "metric", "step", "temperature"], kind="stable")
    return {key: part[RECORD].reset_index(drop=True) for key, part in ev.groupby("run_key", sort=False)}


def _show(x: float) -> str:
    return f"{x:.6g}" if isinstance(x, float) and math.isfinite(x) else str(x)


def exact_check(store: Results, baseline: Results, task: str, algo: str, records: tuple[dict, dict]) -> str:
    """``identical: N/N runs``, or what tells the two sides apart: unmatched seeds, or the first
    run and record that differ; ``(configs differ)`` is added when matched runs had other configs
    (a renamed or added parameter can leave every record as it was). ``records``: ``_records`` of
    each side."""
    a, b = _runs_of(store, task, algo), _runs_of(baseline, task, algo)
    a, b = a[a.status == "done"], b[b.status == "done"]
    if sorted(a.seed) != sorted(b.seed) or a.seed.duplicated().any():
        return f"seeds differ ({len(a)} vs {len(b)} runs)"
    b = b.set_index("seed")
    configs = ""  # a config that differs (e.g. a parameter added with its default) does not stop the check
    for _, run in a.sort_values("seed").iterrows():
        other = b.loc[run.seed]
        keys = run.get("base_key"), other.get("base_key")
        if not configs and all(isinstance(k, str) and k for k in keys) and keys[0] != keys[1]:
            configs = " (configs differ)"
        empty = pd.DataFrame(columns=RECORD)
        mine, theirs = records[0].get(run.run_key, empty), records[1].get(other.run_key, empty)
        if len(mine) != len(theirs):
            return f"differs: seed {run.seed} has {len(mine)} vs {len(theirs)} evaluation records{configs}"
        same = (mine[["metric"]] == theirs[["metric"]]).all(axis=1)
        for col in ("step", "temperature", "value", "n"):
            x, y = mine[col].to_numpy(), theirs[col].to_numpy()
            same &= (x == y) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            i = int(np.flatnonzero(~same.to_numpy())[0])
            r, s = mine.iloc[i], theirs.iloc[i]
            where = f"{r.metric} at step {_show(r.step)}, T={_show(r.temperature)}"
            return f"differs: seed {run.seed}, {where}: {_show(s.value)} → {_show(r.value)}{configs}"
    return f"identical: {len(a)}/{len(a)} runs{configs}"


def _machines(results: Results) -> dict[str, str]:
    """Machine kind -> one-line description, over ``results``' finished runs with a recorded kind."""
    runs = results.runs[results.runs.status.isin(["done", "failed"])]
    return {kind: label for kind, (label, _) in machines_of(runs).items() if kind}


def machine_note(store: Results, baseline: Results) -> str:
    """A plain statement when the two sides ran on different machine kinds (exact equality cannot
    hold across kinds: float sums run in other orders), or when a side has no kinds recorded; ""
    when both ran on the same kinds."""

    def describe(kinds: dict[str, str]) -> str:
        return "; ".join(f"{k} ({v})" if v else k for k, v in sorted(kinds.items()))

    mine, theirs = _machines(store), _machines(baseline)
    if not mine and not theirs:
        return "Neither side records its machine kind: an exact mismatch may come from the machine."
    if not mine or not theirs:
        side = "the baseline" if not theirs else "the store"
        return (f"Machines unknown for {side} (recorded before fingerprints or exported without them): an "
                "exact mismatch may come from the machine, not the code.")  # fmt: skip
    if set(mine) == set(theirs):
        return ""
    return (
        f"MACHINES DIFFER: the baseline ran on {describe(theirs)}, the store on {describe(mine)}. "
        "Records are bitwise-equal on one machine kind only, so the exact check cannot come out "
        "identical across them; read the interval verdicts."
    )


def display_rows(table: pd.DataFrame) -> list[list[str]]:
    from bench.report.tables import fmt

    rows = []
    for _, r in table.iterrows():
        diff = mde = "—"
        if r.verdict not in ("missing", "new"):
            diff = f"{r.difference:+.3f} [{r.diff_lo:+.3f}, {r.diff_hi:+.3f}] {r.scale}, {r.method}"
            mde = "—" if r.method == "identical" else fmt(r.mde)
        rows.append(
            [
                r.task,
                r.algorithm,
                f"{fmt(r.baseline_mean)} (n={r.baseline_seeds}, {r.baseline_failed} failed)",
                f"{fmt(r.store_mean)} (n={r.store_seeds}, {r.store_failed} failed)",
                diff,
                mde,
                r.exact if isinstance(r.exact, str) and r.exact else "—",
                r.verdict,
                _code_change(r.baseline_code, r.store_code),
            ]
        )
    return rows


HEADER = [
    "task", "algorithm", "baseline mean", "store mean", "difference [CI], method", "could detect ≥",
    "exact check", "verdict", "code (baseline → store)",
]  # fmt: skip


def summary(table: pd.DataFrame, allow_missing: bool = False) -> tuple[str, bool]:
    """The one-line verdict and whether the gate fails."""
    regressions = int((table.verdict == "regression").sum())
    missing = int((table.verdict == "missing").sum())
    compared = int((~table.verdict.isin(["missing", "new"])).sum())
    identical = int((table.verdict == "identical").sum())
    weak = table[table.verdict.str.endswith("(under-powered)")]
    parts = []
    if regressions:
        parts.append(f"REGRESSION in {regressions} of {compared} comparisons")
    else:
        parts.append(f"no regression in {compared} comparisons")
    if identical:
        parts.append(f"{identical} identical")
    if len(weak):
        parts.append(f"{len(weak)} under-powered (could detect ≥ {weak.mde.max():.3g})")
    if missing:
        parts.append(f"{missing} MISSING from the store" + (" (allowed)" if allow_missing else ""))
    fails = bool(regressions) or (bool(missing) and not allow_missing)
    return "; ".join(parts), fails


def _code_change(old, new) -> str:
    """``old → new`` code versions, ``same: v`` when equal, ``—`` when neither side has one."""
    old = old if isinstance(old, str) and old else "—"
    new = new if isinstance(new, str) and new else "—"
    if old == new:
        return "—" if old == "—" else f"same: {old}"
    return f"{old} → {new}"


PLAN_HEADER = [
    "task", "algorithm", "scale", "seeds", "seed sd", "could detect ≥ now", "seeds for effect", "note",
]  # fmt: skip


def plan(
    results: Results, tolerance: float, effect: float, confidence: float = 0.95
) -> tuple[pd.DataFrame, float]:
    """How many seeds each comparison of a suite needs: per (task, algorithm) with finished runs,
    the seed standard deviation of the final score (normalised where the task has bounds), the
    drop a rerun with the same seeds could detect (80% power; the two sides' seeds taken as
    uncorrelated, the conservative case: the differences' sd is sqrt(2) · sd), and the fewest
    seeds that detect a drop of ``effect`` at ``tolerance`` — at the per-comparison level of a
    gate over all of the suite's comparisons."""
    finals = final_scores(results)
    pairs = sorted(set(map(tuple, finals[["task", "algorithm"]].drop_duplicates().to_numpy())))
    level = 1 - (1 - confidence) / max(len(pairs), 1)
    rows = []
    for task, algo in pairs:
        x = finals.score[(finals.task == task) & (finals.algorithm == algo)].to_numpy(float)
        scaled = normalise(task, x)
        x = scaled if scaled is not None else x
        n = len(x)
        sd = float(np.std(x, ddof=1)) if n > 1 else math.nan
        if n > 1:
            now = gate.minimum_detectable_effect(math.sqrt(2) * sd / math.sqrt(n), n - 1, level, tolerance)
            need = gate.seeds_needed(sd, effect, level, tolerance)
        else:
            now, need = math.inf, None
        note = ""
        if n < 2:
            note = "one run: no spread to go by"
        elif sd == 0:
            note = "no spread observed: a changed algorithm's own spread decides"
        elif need is None:
            note = "more than 1000 seeds"
        rows.append(dict(task=task, algorithm=algo, scale="normalised" if scaled is not None else "raw",
                         seeds=n, seed_sd=sd, mde_now=now, seeds_needed=need, note=note))  # fmt: skip
    columns = ["task", "algorithm", "scale", "seeds", "seed_sd", "mde_now", "seeds_needed", "note"]
    return pd.DataFrame(rows).reindex(columns=columns), level


def plan_rows(table: pd.DataFrame) -> list[list[str]]:
    from bench.report.tables import fmt

    return [
        [
            r.task,
            r.algorithm,
            r.scale,
            str(r.seeds),
            fmt(r.seed_sd),
            fmt(r.mde_now),
            "—" if pd.isna(r.seeds_needed) else str(int(r.seeds_needed)),
            r.note or "",
        ]  # fmt: skip
        for _, r in table.iterrows()
    ]
