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
fails unless a subset is allowed); ``new`` (in the store only: nothing to compare); ``unchanged``
(a baseline from the same store holding the very same runs: nothing changed between the sides).

A baseline from the same store (``--baseline-version``) pairs runs by (label, task, seed) across
code and settings (``version_runs``); each comparison names the settings that differ between its
sides (``settings_change``: ``n_epochs 10 → 5``) beside the code versions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

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
from bench.store import code_short, is_timing_metric

COLUMNS = [
    "task", "algorithm", "scale", "method", "baseline_seeds", "store_seeds", "baseline_failed",
    "store_failed",
    "baseline_mean", "store_mean", "difference", "diff_lo", "diff_hi", "mde", "exact", "verdict",
    "settings", "baseline_code", "store_code",
]  # fmt: skip
FAILING = ("regression", "missing")
NOT_COMPARED = ("missing", "new", "unchanged")  # verdicts reached without comparing two sides
UNDER_POWERED = "no significant change (under-powered)"
# verdict -> its class in the compare page (an under-powered verdict is not shown as a pass)
VERDICT_CLASSES = {
    "identical": "identical", "regression": "regression", "improvement": "improvement",
    "no significant change": "no-change", UNDER_POWERED: "under-powered", "missing": "missing",
    "new": "new", "unchanged": "unchanged",
}  # fmt: skip
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
    one_store: bool = False,
) -> tuple[pd.DataFrame, float, dict]:
    """One row per (task, algorithm) present on either side, the per-comparison confidence level,
    and each comparison's per-seed scores (for the figure): ``{(task, algo): (store, baseline,
    paired)}`` on the comparison's scale. ``one_store``: both sides were read from one store, where
    a (task, algorithm) with the very same runs on both sides is ``unchanged``."""
    effect = default_effect(tolerance) if effect is None else effect
    new, old = final_scores(store), final_scores(baseline)
    pairs = sorted(
        set(map(tuple, store.runs[["task", "algorithm"]].drop_duplicates().to_numpy()))
        | set(map(tuple, baseline.runs[["task", "algorithm"]].drop_duplicates().to_numpy()))
    )
    unchanged = {p for p in pairs if one_store and _same_runs(store, baseline, *p)}
    comparable = [p for p in pairs if len(_scores(new, *p)) and len(_scores(old, *p)) and p not in unchanged]
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
            settings=_settings_of(_runs_of(store, task, algo), _runs_of(baseline, task, algo)),
        )
        if (task, algo) not in comparable:
            verdict = "unchanged" if (task, algo) in unchanged else "missing" if len(b) else "new"
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
            verdict = UNDER_POWERED
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


def _same_runs(store: Results, baseline: Results, task: str, algo: str) -> bool:
    """Whether both sides hold the very same runs (by run key) of a (task, algorithm)."""
    mine, theirs = set(_runs_of(store, task, algo).run_key), set(_runs_of(baseline, task, algo).run_key)
    return bool(mine) and mine == theirs


# -- what differs between two versions ---------------------------------------------------------


def _fields(value: dict, prefix: str = "") -> dict[str, object]:
    """A nested settings dict as ``dotted.name -> value``."""
    out: dict[str, object] = {}
    for name, v in value.items():
        out.update(_fields(v, f"{prefix}{name}.") if isinstance(v, dict) else {f"{prefix}{name}": v})
    return out


# the run columns that hold its settings, each read as named fields, in the order they are shown
SETTINGS = {
    "config": lambda v: _fields(json.loads(v)),
    "env_steps_budget": lambda v: {"env_steps": int(v)},
    "evaluation": lambda v: _fields(json.loads(v), "evaluation."),
    "suite_version": lambda v: {"suite version": str(v)},
}
_ABSENT = object()  # a field one side's settings do not have (a parameter added or removed)


def _recorded(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None and not pd.isna(value)


def _settings(run: Mapping) -> dict[str, dict[str, object]]:
    """A run's settings by column (see ``SETTINGS``); a column the run does not record (a CSV
    baseline records no config) or cannot be read is absent."""
    out = {}
    for column, read in SETTINGS.items():
        value = run.get(column)
        if _recorded(value):
            try:
                out[column] = read(value)
            except (ValueError, TypeError, AttributeError):
                continue
    return out


def _setting(value: object) -> str:
    if value is _ABSENT:
        return "—"
    return value if isinstance(value, str) else json.dumps(value)


def settings_change(old: Mapping, new: Mapping) -> list[str]:
    """What differs between two runs' settings, as ``name old → new`` parts (``n_epochs 10 → 5``,
    ``env_steps 1024 → 2048``, ``evaluation.eval_every 512 → 256``, ``suite version 1 → 2``), over
    what both runs record; ``other settings (not recorded)`` where nothing recorded differs but
    their keys without code do (a CSV baseline records no config)."""
    mine, theirs = _settings(old), _settings(new)
    parts = []
    for column in SETTINGS:
        if column in mine and column in theirs:
            a, b = mine[column], theirs[column]
            for name in sorted(set(a) | set(b)):
                before, after = a.get(name, _ABSENT), b.get(name, _ABSENT)
                if before != after:
                    parts.append(f"{name} {_setting(before)} → {_setting(after)}")
    keys = old.get("base_key"), new.get("base_key")
    if not parts and all(isinstance(k, str) and k for k in keys) and keys[0] != keys[1]:
        parts.append("other settings (not recorded)")
    return parts


def run_change(old: Mapping, new: Mapping) -> str:
    """What differs between two runs of one (label, task, seed), as ``bench run`` and the gate
    name it: ``settings_change`` and the code versions where they differ (``n_epochs 10 → 5,
    code 1+450e… → 1+c4bc…``)."""
    parts = settings_change(old, new)
    codes = code_short(old.get("code")), code_short(new.get("code"))
    if codes[0] != codes[1]:
        parts.append(f"code {codes[0] or '—'} → {codes[1] or '—'}")
    return ", ".join(parts)


def _settings_of(store: pd.DataFrame, baseline: pd.DataFrame) -> str:
    """What differs between the settings of a comparison's two sides (baseline → store), over
    its runs paired by seed (the first run of each side where they share no seed); "" when
    nothing does or a side has no runs."""
    if store.empty or baseline.empty:
        return ""
    mine = store.drop_duplicates("seed").set_index("seed")
    theirs = baseline.drop_duplicates("seed").set_index("seed")
    seeds = sorted(set(mine.index) & set(theirs.index))
    pairs = [(theirs.loc[s], mine.loc[s]) for s in seeds] or [(theirs.iloc[0], mine.iloc[0])]
    changes = dict.fromkeys(", ".join(settings_change(old, new)) for old, new in pairs)
    return "; ".join(c for c in changes if c)


def settings_note(table: pd.DataFrame) -> str:
    """One sentence naming, per comparison whose sides ran other settings, what differs (with its
    code versions where they differ too); "" when no comparison's settings differ."""
    changed = table[~table.verdict.isin(NOT_COMPARED) & (table.settings.fillna("") != "")]
    if changed.empty:
        return ""
    items = []
    for _, r in changed.iterrows():
        old, new = (c if isinstance(c, str) and c else "—" for c in (r.baseline_code, r.store_code))
        items.append(
            f"{r.task} / {r.algorithm}: {r.settings}" + (f", code {old} → {new}" if old != new else "")
        )
    return f"Settings differ (baseline → store): {'; '.join(items)}."


def earlier_settings(current: pd.DataFrame, earlier: pd.DataFrame) -> dict[str, tuple[int, list[str]]]:
    """For ``bench run``: label -> (how many of the ``current`` runs, what differs) for the runs
    whose (label, task, seed) was done under other settings: compared with ``earlier``'s most
    recently finished done run of it whose key without code differs, named by ``run_change``
    (``n_epochs 10 → 5, code 1+450e… → 1+c4bc…``). Runs whose earlier ones differ in code only
    are left out (``bench run`` names those apart)."""
    done = earlier[earlier.status == "done"].sort_values("ended_at", kind="stable", na_position="first")
    cells = dict(list(done.groupby(["algorithm", "task", "seed"])))
    out: dict[str, tuple[int, list[str]]] = {}
    for _, run in current.iterrows():
        cell = cells.get((run.algorithm, run.task, run.seed))
        other = cell[cell.base_key != run.base_key] if cell is not None else None
        if other is None or other.empty or not settings_change(other.iloc[-1], run):
            continue
        change = run_change(other.iloc[-1], run)
        n, changes = out.get(run.algorithm, (0, []))
        out[run.algorithm] = (n + 1, changes if change in changes else [*changes, change])
    return out


def version_runs(runs: pd.DataFrame, under: pd.Series, current: set[str]) -> pd.DataFrame:
    """The baseline of ``--baseline-version``, paired with the plan by (label, task, seed) across
    code and settings. ``runs``: the runs of the suite's plan cells in a store (the plan's own and
    the finished runs of earlier code or settings; ``key`` column); ``under``: True for those under
    the baseline's code version; ``current``: the plan's run keys. Per cell: the most recently
    finished run under that version other than the plan's own; where there is none, the plan's own
    run when it is under that version or the only run of its cell (an algorithm unchanged between
    the versions: the same runs on both sides, ``unchanged`` in ``compare(..., one_store=True)``)."""
    cell = ["algorithm", "task", "seed"]
    own = runs.key.isin(current).to_numpy()
    under = under.to_numpy(bool)
    earlier = runs[~own & under & runs.status.isin(["done", "failed"]).to_numpy()]
    earlier = earlier.sort_values("ended_at", kind="stable", na_position="first").drop_duplicates(
        cell, keep="last"
    )
    alone = (runs.groupby(cell).key.transform("size") == 1).to_numpy()
    same = runs[own & (under | alone)]
    same = same[~same.set_index(cell).index.isin(earlier.set_index(cell).index)]
    return pd.concat([earlier, same]).sort_values(cell, kind="stable")


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
        if r.verdict not in NOT_COMPARED:
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
                _difference(r.settings, r.baseline_code, r.store_code),
            ]
        )
    return rows


HEADER = [
    "task", "algorithm", "baseline mean", "store mean", "difference [CI], method", "could detect ≥",
    "exact check", "verdict", "what differs (baseline → store)",
]  # fmt: skip


def summary(table: pd.DataFrame, allow_missing: bool = False) -> tuple[str, bool]:
    """The one-line verdict and whether the gate fails."""
    regressions = int((table.verdict == "regression").sum())
    missing = int((table.verdict == "missing").sum())
    compared = int((~table.verdict.isin(NOT_COMPARED)).sum())
    identical = int((table.verdict == "identical").sum())
    unchanged = int((table.verdict == "unchanged").sum())
    weak = table[table.verdict == UNDER_POWERED]
    parts = []
    if regressions:
        parts.append(f"REGRESSION in {regressions} of {compared} comparisons")
    else:
        parts.append(f"no regression in {compared} comparisons")
    if identical:
        parts.append(f"{identical} identical")
    if len(weak):
        parts.append(f"{len(weak)} under-powered (could detect ≥ {weak.mde.max():.3g})")
    if unchanged:
        parts.append(f"{unchanged} unchanged (the same runs on both sides)")
    if missing:
        parts.append(f"{missing} MISSING from the store" + (" (allowed)" if allow_missing else ""))
    fails = bool(regressions) or (bool(missing) and not allow_missing)
    return "; ".join(parts), fails


def summary_class(table: pd.DataFrame, fails: bool) -> str:
    """The compare page's class for the summary line: ``fail``, ``under-powered`` (no regression,
    but a comparison could not have seen the drop it was meant to), or ``pass``."""
    if fails:
        return "fail"
    return "under-powered" if (table.verdict == UNDER_POWERED).any() else "pass"


def _difference(settings, old, new) -> str:
    """A row's ``what differs (baseline → store)``: the settings that differ and the code versions
    (``n_epochs 10 → 5, code 1+450e… → 1+c4bc…``; ``n_epochs 10 → 5, same code 1+450e…``;
    ``nothing (code 1+450e…)``); ``—`` marks a side without a code version, and is all it says
    when neither side has one and no settings differ."""
    old = old if isinstance(old, str) and old else "—"
    new = new if isinstance(new, str) and new else "—"
    settings = settings if isinstance(settings, str) else ""
    if old != new:
        return ", ".join(filter(None, [settings, f"code {old} → {new}"]))
    code = "" if old == "—" else f"code {old}"
    if settings:
        return f"{settings}, same {code}" if code else settings
    return f"nothing ({code})" if code else "—"


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
