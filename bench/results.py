"""Stored results as DataFrames, and the tables every report, leaderboard and comparison uses.

``Results`` comes from the store (``Results.from_store``) or from a tidy table written by
``bench export`` (``Results.from_tidy`` / ``from_csv``), so a baselines CSV and a live store go
through the same code. Record names (the ``metric`` column of evaluation records):

* ``eval/return`` — mean true return of the evaluation episodes (control tasks);
* ``eval/gold_reward`` — mean gold reward (LM tasks); ``eval/win_rate`` — win rate (summaries);
* ``eval/kl`` — sequence-level KL(pi || pi_ref), exact per step; ``eval/kl_k1`` — its k1 estimate.

A task's *score* is the first of ``SCORE_METRICS`` it has records for. The final score of a run is
its last evaluation at temperature 0 (the temperature closest to 0 it was evaluated at).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import stats
from bench.registry import TASKS, find_task, task_domain
from bench.store import Store, code_short, machine_labels

SCORE_METRICS = ("eval/return", "eval/gold_reward", "eval/win_rate")
KL_METRIC = "eval/kl"
# an upper bound on the KL where no estimate exists (Best-of-N's log N − (N−1)/N); a point whose KL
# is only a bound is marked as such in reports (its true KL lies at or left of it)
KL_BOUND_METRIC = "eval/kl_bound"
RUN_COLUMNS = ["run_key", "suite", "suite_version", "task", "algorithm", "algo", "seed", "status"]
# optional run columns of imported runs (``bench import``): ``protocol`` — what the scores measure
# (bench's own runs: "bench evaluation") — and ``source`` — where the run comes from
OPTIONAL_RUN_TEXT = ("protocol", "source", "machine", "cpu")
BENCH_PROTOCOL = "bench evaluation"
TIDY_REQUIRED = [*RUN_COLUMNS, "kind", "step", "temperature", "metric", "value"]


def _declare_tasks(declarations: list[dict], suite: str) -> None:
    """Tasks a stored suite declared, registered so that their scores are normalised as in the
    run; one that cannot be registered here (its environment's package is missing) stays raw."""
    if not declarations:
        return
    from bench.registry import PluginError
    from bench.suite.load import declare_task
    from bench.suite.schema import TaskDeclaration

    for d in declarations:
        try:
            declare_task(TaskDeclaration(**d), suite)
        except (PluginError, ValueError):
            pass


class ResultsError(Exception):
    """Input that cannot be read as results (missing columns, unknown suite)."""


# -- reading CSV files strictly ------------------------------------------------------------------
#
# A CSV from a user (a baseline, exported results, published anchors) is read as text and checked
# before anything uses it: a corrupt, truncated, binary or mistyped file gets one ResultsError
# naming the file and the first problem (the CLI prints it and exits 2), never a traceback or a
# report of half a file.

RUN_STATUSES = ("done", "failed", "running", "pending")
RECORD_KINDS = ("eval", "curve", "run")
FINITE_METRICS = (*SCORE_METRICS, KL_METRIC)  # records every statistic is computed from
_MISSING = {"", "nan", "NaN", "NAN", "<NA>", "NA", "N/A", "null", "NULL", "None"}


def read_csv_text(path: str | Path) -> pd.DataFrame:
    """A CSV file as a table of strings (header row = column names), or a ResultsError: not a
    file, unreadable, binary, not UTF-8, empty, badly quoted, duplicate column names, or a row
    whose number of fields differs from the header's (a truncated or corrupt file). Records end
    at a line feed."""
    path = Path(path)
    if path.is_dir():
        raise ResultsError(f"{path}: is a folder, not a CSV file")
    if not path.is_file():
        raise ResultsError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ResultsError(f"{path}: cannot read: {e.strerror or e}") from None
    if b"\x00" in data:
        raise ResultsError(f"{path}: not a CSV table: it contains NUL bytes (a binary or corrupt file)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}: not a CSV table: not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise ResultsError(f"{path}: empty file (expected a CSV table with a header row)")
    # records end at a line feed ("\r\n" is one); a lone "\r" belongs to its field, as pandas
    # writes it unquoted: it stands in as a private-use character while the csv module reads
    text = text.replace("\r\n", "\n")
    cr = next(c for c in map(chr, range(0xE000, 0xF900)) if c not in text) if "\r" in text else ""
    reader = csv.reader(io.StringIO(text.replace("\r", cr) if cr else text, newline=""), strict=True)
    rows = []
    try:
        header = next(reader)
        for record in reader:
            if not record:
                continue
            if len(record) != len(header):
                raise ResultsError(
                    f"{path}: line {reader.line_num}: {len(record)} fields where the header has "
                    f"{len(header)} (a truncated or corrupt file?)"
                )
            rows.append(record)
    except csv.Error as e:
        raise ResultsError(f"{path}: not a CSV table: line {reader.line_num}: {e}") from None
    if cr:
        header = [f.replace(cr, "\r") for f in header]
        rows = [[f.replace(cr, "\r") for f in record] for record in rows]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ResultsError(f"{path}: not a CSV table: duplicate column {dup[0]!r} in the header")
    return pd.DataFrame(rows, columns=header, dtype=object)


def _is_missing(raw: pd.Series) -> pd.Series:
    return raw.isna() | raw.astype(str).str.strip().isin(_MISSING)


def _numbers(raw: pd.Series, fail, column: str) -> pd.Series:
    """A column as floats (missing: NaN); a value that is not a number fails."""
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    nan = num.isna()
    if nan.any():
        bad = ~_is_missing(raw[nan])
        if bad.any():
            i = int(raw.index.get_loc(bad.index[bad.to_numpy()][0]))
            fail(i, f"{column} {str(raw.iloc[i])[:40]!r} is not a number")
    return num


def _first(mask: pd.Series) -> int | None:
    m = mask.to_numpy(dtype=bool)
    return int(np.argmax(m)) if m.any() else None


def check_tidy(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """A table in `bench export` format, checked and typed: text columns as str, seed as int,
    step / temperature / value / n / wall_time / train_time as float. Raises a ResultsError for
    missing columns, no rows, empty names, unknown kinds or statuses, values that are not numbers,
    non-finite scores, evaluation records without step, temperature or n, a run key with two
    identities, or a record given twice. Row numbers count data rows from 1."""
    missing = [c for c in TIDY_REQUIRED if c not in table.columns]
    if missing:
        raise ResultsError(f"{source}: missing columns {', '.join(missing)} (expected `bench export` format)")
    if table.columns.duplicated().any():
        raise ResultsError(f"{source}: duplicate column {table.columns[table.columns.duplicated()][0]!r}")
    if table.empty:
        raise ResultsError(f"{source}: no records (only a header)")
    table = table.reset_index(drop=True)

    def fail(i: int, message: str):
        raise ResultsError(f"{source}: row {i + 1}: {message}")

    out = pd.DataFrame(index=table.index)
    for col in ["run_key", "suite", "suite_version", "task", "algorithm", "algo", "status", "kind", "metric"]:
        text = table[col]
        if pd.api.types.infer_dtype(text, skipna=False) != "string":  # numbers, NaN: as text
            text = text.where(text.notna(), "").astype(object).map(str)
        blank = [v for v in pd.unique(text) if not v.strip()]  # (few distinct names: fast)
        if blank and col != "suite_version":
            fail(_first(text.isin(blank)), f"empty {col}")
        out[col] = text
    for col, allowed in [("kind", RECORD_KINDS), ("status", RUN_STATUSES)]:
        i = _first(~out[col].isin(allowed))
        if i is not None:
            fail(i, f"{col} {out[col].iloc[i][:40]!r} is not one of {', '.join(allowed)}")
    seed = _numbers(table.seed, fail, "seed")
    i = _first(seed.isna())
    if i is not None:
        fail(i, "empty seed")
    i = _first(~np.isfinite(seed) | (seed % 1 != 0) | (seed.abs() > 2**53))
    if i is not None:
        fail(i, f"seed {str(table.seed.iloc[i])[:40]!r} is not an integer")
    out["seed"] = seed.astype("int64")
    if "code" in table:  # optional: the code version of each run (exports before it have none)
        out["code"] = table["code"].where(table["code"].notna(), "").astype(object).map(str)
    if "base_key" in table:  # optional: the run key without code (the gate matches runs by it)
        out["base_key"] = table["base_key"].where(table["base_key"].notna(), "").astype(object).map(str)
    for col in OPTIONAL_RUN_TEXT:  # optional: what imported runs measure and where they come from
        if col in table:
            out[col] = table[col].where(table[col].notna(), "").astype(object).map(str)
    for col in ["step", "temperature", "value", "n", "wall_time", "train_time"]:
        out[col] = _numbers(table[col], fail, col) if col in table else np.nan
    ev = (out.kind == "eval").to_numpy()
    kept = (out.kind != "curve").to_numpy()  # eval and run rows: what the statistics use
    checks = [
        (ev & ~np.isfinite(out.step), "an eval record needs a finite step"),
        (ev & (out.step < 0), "step is negative"),
        (ev & ~np.isfinite(out.temperature), "an eval record needs a finite temperature"),
        (ev & (out.temperature < 0), "temperature is negative"),
        (ev & ~(np.isfinite(out.n) & (out.n >= 0) & (out.n % 1 == 0)), "an eval record needs n, a count"),
        (kept & np.isinf(out.value), "value is infinite"),
        (ev & out.metric.isin(FINITE_METRICS) & out.value.isna(), "a score or KL record needs a value"),
        (kept & np.isinf(out.wall_time), "wall_time is infinite"),
        (kept & np.isinf(out.train_time), "train_time is infinite"),
    ]
    for mask, message in checks:
        i = _first(pd.Series(mask))
        if i is not None:
            what = f"{out.metric.iloc[i][:40]!r}: " if "record" in message else ""
            fail(i, f"{what}{message}")
    idents = out[RUN_COLUMNS].drop_duplicates()
    i = _first(idents.run_key.duplicated())
    if i is not None:
        key = idents.run_key.iloc[i]
        a, b = idents[idents.run_key == key].iloc[:2].to_dict("records")
        col = next(c for c in RUN_COLUMNS if a[c] != b[c])
        rows = out.index[(out.run_key == key) & (out[col] == b[col])]
        values = f"{str(a[col])[:40]!r} and {str(b[col])[:40]!r}"
        fail(int(rows[0]), f"run {key[:40]!r} has two values of {col}: {values}")
    for kind, key in [("eval", ["run_key", "step", "temperature", "metric"]), ("run", ["run_key", "metric"])]:
        part = out[out.kind == kind]
        dup = part.duplicated(key, keep="first")
        if dup.any():
            i = int(part.index[dup.to_numpy()][0])
            record = f"{out.metric.iloc[i][:40]!r} of run {out.run_key.iloc[i][:40]!r}"
            fail(i, f"the {kind} record {record} is given twice")
    return out


@dataclass
class Results:
    """One suite's runs (one row per run) and their evaluation records."""

    runs: pd.DataFrame
    evals: pd.DataFrame
    source: str
    suite_info: dict = field(default_factory=dict)
    samples: pd.DataFrame | None = None  # LM runs' generated texts (from a store only)
    outcomes: pd.DataFrame | None = None  # per-prompt final outcomes (from a store only)
    parts: list[tuple[str, Results]] = field(default_factory=list)  # merged submissions (``combine``)

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def from_store(cls, store: Store, suite: str) -> Results:
        runs = store.runs(suite)
        if runs.empty:
            raise ResultsError(store.unknown_suite(suite))
        runs = runs.rename(columns={"key": "run_key"})
        runs["cpu"] = machine_labels(runs)
        evals = store.evals(suite)
        row = store.suite_row(suite)
        suite_info = {"name": suite}
        if row:
            suite_info = dict(zip(["name", "version", "hash", "path", "registered"], row[:5], strict=True))
            definition = json.loads(row[5])
            suite_info["description"] = definition.get("description") or ""
            _declare_tasks(definition.get("task_declarations") or [], suite)
        samples, outcomes = store.samples(suite), store.outcomes(suite)
        # reports name the store by its file name: a reader cannot find the writer's folders
        return cls(runs, evals, f"store {Path(store.path).name}", suite_info,
                   samples if not samples.empty else None,
                   outcomes if not outcomes.empty else None)  # fmt: skip

    @classmethod
    def from_tidy(cls, table: pd.DataFrame, suite: str | None = None, source: str = "table") -> Results:
        """Results from a table in `bench export` format, checked first (``check_tidy``): a
        ResultsError names the first thing wrong."""
        table = check_tidy(table, source)
        if suite is not None:
            names = sorted(table.suite.unique())
            if suite not in names:
                shown = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
                raise ResultsError(f"{source}: no rows for suite {suite!r} (it has: {shown})")
            table = table[table.suite == suite]
        runs = table[RUN_COLUMNS + [c for c in ("code", "base_key", *OPTIONAL_RUN_TEXT) if c in table]]
        runs = runs.drop_duplicates("run_key").set_index("run_key")
        summary = table[table.kind == "run"].pivot_table(index="run_key", columns="metric", values="value")
        for col, metric in [
            ("wall_time", "run/wall_time"),
            ("train_time", "run/train_time"),
            ("env_steps", "run/env_steps"),
            ("peak_rss_mb", "run/peak_rss_mb"),
            ("parameters", "run/parameters"),
        ]:
            runs[col] = summary[metric].reindex(runs.index) if metric in summary else np.nan
        runs = runs.reset_index()
        cols = ["run_key", "step", "wall_time", "train_time", "temperature", "metric", "value", "n"]
        ev = table[table.kind == "eval"]
        evals = ev.reindex(columns=cols)
        name = suite if suite is not None else ", ".join(sorted(runs.suite.astype(str).unique()))
        versions = sorted(runs.suite_version.dropna().astype(str).unique())
        return cls(runs, evals.reset_index(drop=True), source, {"name": name, "version": ", ".join(versions)})

    @classmethod
    def from_csv(cls, path: str | Path, suite: str | None = None) -> Results:
        """Results from a `bench export` CSV; a ResultsError for anything that is not one."""
        out = cls.from_tidy(read_csv_text(path), suite, source=str(path))
        out.source = f"export {Path(path).name}"  # reports name the file, not the writer's folders
        return out

    @classmethod
    def combine(cls, parts: list[tuple[str, Results]]) -> Results:
        """Several submissions (name, results) as one, never pooled: each run keeps its submission
        (column ``submission``) and its run key becomes ``submission/key`` (the name's "%" and "/"
        escaped, so that no two pairs give one key); run labels are shown as ``merged_labels``
        names them, so that each label and each method belongs to one submission. The submissions
        themselves stay in ``parts`` (for the claims, which compare methods within one)."""
        if len(parts) == 1:
            name, only = parts[0]
            only.runs = only.runs.assign(submission=name)
            only.suite_info = {**only.suite_info, "submissions": {name: only.source}}
            return only
        names = [n for n, _ in parts]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ResultsError(f"two submissions are named {dup!r}: name them with NAME=FILE")
        shown = merged_labels((name, label) for name, r in parts for label in r.runs.algorithm.unique())
        runs, evals, samples, outcomes = [], [], [], []
        for name, r in parts:
            prefix = name.replace("%", "%25").replace("/", "%2F") + "/"
            rr = r.runs.assign(submission=name, run_key=prefix + r.runs.run_key.astype(str))
            rr["algorithm"] = [shown[(name, a)] for a in rr.algorithm]
            runs.append(rr)
            evals.append(r.evals.assign(run_key=prefix + r.evals.run_key.astype(str)))
            for frame, out in ((r.samples, samples), (r.outcomes, outcomes)):
                if frame is not None:
                    out.append(frame.assign(run_key=prefix + frame.run_key.astype(str)))
        info = {
            "name": " + ".join(dict.fromkeys(str(r.name) for _, r in parts)),
            "version": ", ".join(sorted({str(r.suite_info.get("version", "")) for _, r in parts} - {""})),
            "submissions": {n: r.source for n, r in parts},
        }
        source = "; ".join(f"{n}: {r.source}" for n, r in parts)
        return cls(pd.concat(runs, ignore_index=True), pd.concat(evals, ignore_index=True), source, info,
                   pd.concat(samples, ignore_index=True) if samples else None,
                   pd.concat(outcomes, ignore_index=True) if outcomes else None, list(parts))  # fmt: skip

    # -- views ----------------------------------------------------------------------------

    @property
    def submission_column(self) -> list[str]:
        """``["submission"]`` where several submissions are merged (``combine``), else ``[]``: the
        column that tables of merged results carry beside task and label."""
        return ["submission"] if len(self.parts) > 1 else []

    @property
    def name(self) -> str:
        return str(self.suite_info.get("name", ""))

    def tasks(self) -> list[str]:
        return sorted(self.runs.task.unique())

    def algorithms(self) -> list[str]:
        return sorted(self.runs.algorithm.unique())

    def score_metric(self, task: str) -> str | None:
        keys = self.runs.run_key[self.runs.task == task]
        present = set(self.evals.metric[self.evals.run_key.isin(keys)].unique())
        return next((m for m in SCORE_METRICS if m in present), None)

    def scored_evals(self) -> pd.DataFrame:
        """Score records of every run (each task's score metric), joined with the run columns."""
        frames = []
        for task in self.tasks():
            metric = self.score_metric(task)
            if metric is None:
                continue
            keys = self.runs.run_key[self.runs.task == task]
            frames.append(self.evals[(self.evals.metric == metric) & self.evals.run_key.isin(keys)])
        cols = ["task", "algorithm", "algo", "seed", "status"]
        cols += self.submission_column
        if not frames:
            return pd.DataFrame(columns=[*self.evals.columns, *cols])
        ev = pd.concat(frames, ignore_index=True)
        return ev.merge(self.runs[["run_key", *cols]], on="run_key")


def run_protocols(runs: pd.DataFrame) -> pd.Series:
    """Each run's protocol (what its scores measure): bench's own evaluation unless imported."""
    if "protocol" not in runs:
        return pd.Series(BENCH_PROTOCOL, index=runs.index)
    return runs.protocol.fillna("").astype(str).replace("", BENCH_PROTOCOL)


def protocols(results: Results) -> dict[str, str]:
    """label -> the protocol of its runs, for labels whose runs are not measured by bench's own
    evaluation (imported runs)."""
    proto = run_protocols(results.runs)
    runs = results.runs.assign(protocol=proto)[proto != BENCH_PROTOCOL]
    return {a: "; ".join(sorted(set(g.protocol))) for a, g in runs.groupby("algorithm")}


def method_of(label: str) -> str:
    """A run label without its grid suffix: ``dpo[beta=0.1]`` -> ``dpo`` (a method's sweep)."""
    return str(label).split("[", 1)[0]


def _marked(label: str, marker: str) -> str:
    """``label`` with ``(marker)`` after its method: ``dpo[beta=0.1]``, ``B`` -> ``dpo (B)[beta=0.1]``."""
    stem = method_of(label)
    return f"{stem} ({marker}){label[len(stem) :]}"


def merged_labels(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(submission, run label) -> the label shown for it where several submissions are merged: the
    label itself, or where another submission's label has the same method (``method_of``) the
    label with its submission after the method (``ppo`` -> ``ppo (B)``, ``dpo[beta=0.1]`` ->
    ``dpo (B)[beta=0.1]``). A label that would read as another's shown label or method is marked
    too, until none does, and a clash left among marked labels (submission names alike but for
    brackets) is told apart by a count (``ppo (B #2)``). So shown labels are unique and each
    method belongs to one submission: no label a submitter picks pools its runs with another
    submission's, in a row or in a method's sweep."""
    pairs = sorted(set(pairs))
    marker = {sub: sub.replace("[", "(").replace("]", ")") for sub, _ in pairs}  # no "[" in a method

    def clashes(shown: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
        owners: dict[str, set[str]] = {}
        count: dict[str, int] = {}
        for (sub, _), name in shown.items():
            owners.setdefault(method_of(name), set()).add(sub)
            count[name] = count.get(name, 0) + 1
        return {p for p, name in shown.items() if len(owners[method_of(name)]) > 1 or count[name] > 1}

    marked: set[tuple[str, str]] = set()
    while True:
        shown = {p: _marked(p[1], marker[p[0]]) if p in marked else p[1] for p in pairs}
        left = clashes(shown)
        if left <= marked:
            break
        marked |= left
    out = {p: name for p, name in shown.items() if p not in left}
    taken, owner = set(out.values()), {method_of(name): p[0] for p, name in out.items()}
    for sub, label in sorted(left):
        name, k = shown[(sub, label)], 1
        while name in taken or owner.get(method_of(name), sub) != sub:
            k += 1
            name = _marked(label, f"{marker[sub]} #{k}")
        out[(sub, label)] = name
        taken.add(name)
        owner[method_of(name)] = sub
    return out


BEST_POINT_RULE = (
    "each method's sweep point with the highest mean final score over the suite's tasks (normalised "
    "where a task declares bounds, else scaled from the method labels' lowest to highest mean on that "
    "task), at the scoring temperature, chosen on all seeds: it picks which label the method-level "
    "views draw, and that label's row shows its own seeds, so a method with many sweep points looks "
    "a little better than it is; verdicts that compare methods at their best points (the claims) "
    "instead take each seed's value at the point chosen on the other seeds"
)


def best_points(results: Results) -> dict[str, str]:
    """method -> the run label that stands for it in method-level views (``BEST_POINT_RULE``);
    a method without a sweep stands for itself."""
    finals = final_scores(results)
    if finals.empty:
        return {}
    means = finals.groupby(["task", "algorithm"]).score.mean().reset_index()
    scaled = []
    for task, g in means.groupby("task", sort=True):
        norm = normalise(task, g.score.to_numpy(float))
        if norm is None:
            lo, hi = g.score.min(), g.score.max()
            norm = (g.score.to_numpy(float) - lo) / (hi - lo) if hi > lo else np.zeros(len(g))
        scaled.append(g.assign(scaled=norm))
    table = pd.concat(scaled).groupby("algorithm").scaled.mean().reset_index()
    table["method"] = table.algorithm.map(method_of)
    best = table.sort_values(["scaled", "algorithm"], ascending=[False, True]).groupby("method").head(1)
    return dict(zip(best.method, best.algorithm, strict=True))


TRUE_REWARD_ALGOS = ("ppo-gt", "pg-gt", "grpo-gt")


def true_reward_labels(results: Results) -> set[str]:
    """Run labels that train on the true (gold) reward rather than on preferences: the ``*-gt``
    control methods and LM runs configured with ``reward: gold`` or ``ranker: gold``. They are
    upper references, not preference methods, wherever they are ranked beside them."""
    runs = results.runs
    out = set(runs.algorithm[runs.algo.isin(TRUE_REWARD_ALGOS)])
    for label, cfg in zip(runs.algorithm, run_configs(runs), strict=True):
        if "gold" in (cfg.get("reward"), cfg.get("ranker")):
            out.add(label)
    return out


def has_sweeps(results: Results) -> bool:
    """Whether some method of the suite ran more than one sweep point (label)."""
    labels = pd.Series(results.algorithms())
    return bool(len(labels) and labels.map(method_of).duplicated().any())


def scoring_evals(results: Results) -> pd.DataFrame:
    """Each run's score records at its scoring temperature: T = 1 for alignment runs (runs with
    KL-to-reference records: the temperature the frontier and the DPO paper's curves use), the
    lowest evaluated temperature (greedy) otherwise."""
    ev = results.scored_evals()
    aligned = set(results.evals.run_key[results.evals.metric.isin([KL_METRIC, KL_BOUND_METRIC])])
    lowest = ev.groupby("run_key").temperature.transform("min")
    use = np.where(ev.run_key.isin(aligned), 1.0, lowest)  # KL is recorded only at T = 1
    return ev[ev.temperature == use]


def final_scores(results: Results) -> pd.DataFrame:
    """One row per finished (done) run: its final score at its scoring temperature
    (``scoring_evals``), and its submission where several were merged (``Results.combine``)."""
    cols = ["run_key", "task", "algorithm", "algo", "seed", "step", "score"]
    cols += results.submission_column
    ev = scoring_evals(results)
    ev = ev[ev.status == "done"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    last = ev.sort_values("step", kind="stable").groupby("run_key").tail(1)
    out = last.rename(columns={"value": "score"})[cols]
    return out.sort_values(["task", "algorithm", "seed"]).reset_index(drop=True)


def normalise(task: str, score):
    """Score on the task's declared scale (0 = random, 1 = solved); None for tasks without bounds."""
    t = TASKS.get(task)
    return None if t is None else t.normalise(score)


def task_scale(task: str, means: pd.Series) -> float:
    """What a margin is a fraction of (replication's rows, equivalence claims): the
    random-to-solved range of a task that declares one, else the spread of ``means`` (the methods'
    or rows' mean scores; their largest magnitude where they are equal), else 1."""
    lo, hi = normalise(task, 0.0), normalise(task, 1.0)
    if lo is not None and hi is not None and hi != lo:
        return abs(1.0 / (hi - lo))
    means = means.dropna()
    spread = float(means.max() - means.min()) if len(means) else np.nan
    if not spread > 0:
        spread = float(means.abs().max()) if len(means) else np.nan
    return spread if spread > 0 else 1.0


def threshold(task: str) -> float | None:
    t = TASKS.get(task)
    return None if t is None else t.reward_threshold


def random_score(task: str) -> float | None:
    """The task's declared score of a random policy (None for an unknown task)."""
    t = TASKS.get(task)
    return None if t is None else t.random_score


# -- leaderboard -------------------------------------------------------------------------------


def time_to_threshold(evals: pd.DataFrame, threshold: float, metric: str = "eval/return") -> pd.DataFrame:
    """Per run reaching ``threshold`` (index run_key): training time (s, evaluation excluded),
    wall time (s) and env steps at its first ``metric`` evaluation at or above it, among the
    evaluations at the run's lowest temperature (greedy). ``evals``: one task's records."""
    ev = evals[evals.metric == metric]
    greedy = ev[ev.temperature == ev.groupby("run_key").temperature.transform("min")]
    hit = greedy[greedy.value >= threshold].sort_values("step", kind="stable").groupby("run_key").first()
    return hit[["train_time", "wall_time", "step"]]


def leaderboard(results: Results, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per (task, algorithm; and submission where several were merged): final score mean with its
    t interval over seeds (``mean_lo``, ``mean_hi``; ``mean_ci`` names the kind), sample sd (ddof =
    1), IQM with its stratified-bootstrap CI (below nominal coverage at few seeds:
    ``bench.coverage``) and median over seeds; a single seed has no interval (NaN bounds); median
    env steps, wall and training time to the task's threshold over all seeds (runs that never reach
    it count as infinitely late, so the median is inf when half never do); median wall time and
    env-steps/s; seeds done, failed and unfinished."""
    finals = final_scores(results)
    hits = pd.concat(
        [
            time_to_threshold(
                results.evals[results.evals.run_key.isin(results.runs.run_key[results.runs.task == task])],
                threshold(task),
                results.score_metric(task),
            )
            for task in results.tasks()
            if threshold(task) is not None and results.score_metric(task)
        ]
        or [pd.DataFrame(columns=["train_time", "wall_time", "step"])]
    )
    rows = []
    # a row per (task, run label, submission): merged submissions never share a row
    keys = ["task", "algorithm", *results.submission_column]
    for group, runs in results.runs.groupby(keys, sort=True):
        task = group[0]
        done = runs[runs.status == "done"]
        scores = finals.score[finals.run_key.isin(done.run_key)].to_numpy(dtype=float)
        row = {
            **dict(zip(keys, group, strict=True)),
            "seeds": len(scores),
            "failed": int((runs.status == "failed").sum()),
            "unfinished": int(runs.status.isin(["pending", "running"]).sum()),
            "code": code_versions(runs),
            "machines": machine_kinds(runs),
        }
        if len(scores):
            point, lo, hi = stats.interval_estimate(scores[:, None], stats.iqm, reps, confidence, seed)
            mean_iv = stats.mean_interval(scores, confidence)
            limit = threshold(task)
            reached = hits.reindex(done.run_key).dropna(subset=["step"])
            late = np.full(len(done) - len(reached), np.inf)
            steps = np.concatenate([reached.step.to_numpy(float), late])
            walls = np.concatenate([reached.wall_time.to_numpy(float), late])
            trains = np.concatenate([reached.train_time.to_numpy(float), late])
            sps = (done.env_steps / done.train_time).replace([np.inf, -np.inf], np.nan)
            steps_ci = (
                stats.median_interval(steps, reps, confidence, seed) if limit is not None else (np.nan,) * 3
            )
            row.update(
                mean=scores.mean(),
                mean_lo=mean_iv.lo,
                mean_hi=mean_iv.hi,
                mean_ci=mean_iv.label,
                sd=stats.sample_sd(scores),
                iqm=point,
                iqm_lo=lo,
                iqm_hi=hi,
                median=float(np.median(scores)),
                threshold=limit if limit is not None else np.nan,
                reached=len(reached) if limit is not None else np.nan,
                steps_to_threshold=float(np.median(steps)) if limit is not None else np.nan,
                steps_to_threshold_lo=steps_ci[1],
                steps_to_threshold_hi=steps_ci[2],
                wall_to_threshold_s=float(np.median(walls)) if limit is not None else np.nan,
                train_to_threshold_s=float(np.median(trains)) if limit is not None else np.nan,
                env_steps=float(done.env_steps.median()),
                wall_time_s=float(done.wall_time.median()),
                env_steps_per_s=float(sps.median()),
                peak_rss_mb=_median_of(done, "peak_rss_mb"),
                parameters=_median_of(done, "parameters"),
            )
        rows.append(row)
    columns = [
        "task", "algorithm", "seeds", "failed", "unfinished", "mean", "mean_lo", "mean_hi", "mean_ci", "sd",
        "iqm", "iqm_lo", "iqm_hi",
        "median", "threshold", "reached", "steps_to_threshold", "steps_to_threshold_lo",
        "steps_to_threshold_hi", "wall_to_threshold_s", "train_to_threshold_s",
        "env_steps", "wall_time_s", "env_steps_per_s", "peak_rss_mb", "parameters", "code", "machines",
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=[*keys, *columns[2:]])


def _median_of(runs: pd.DataFrame, column: str) -> float:
    """The median of a run column recorded only by newer code (NaN where absent)."""
    if column not in runs:
        return np.nan
    values = pd.to_numeric(runs[column], errors="coerce").dropna()
    return float(values.median()) if len(values) else np.nan


def machines_of(runs: pd.DataFrame) -> dict[str, tuple[str, int]]:
    """Machine kind (``bench.machine``) -> (its one-line description, runs) over ``runs``, sorted by
    kind; runs without a recorded kind (stored before fingerprints, exports without them, imported
    runs) under ""."""
    if "machine" not in runs:
        return {"": ("", len(runs))} if len(runs) else {}
    kinds = runs["machine"].fillna("").astype(str)
    cpu = runs["cpu"].fillna("").astype(str) if "cpu" in runs else pd.Series("", index=runs.index)
    return {kind: (cpu[kinds == kind].iloc[0], int((kinds == kind).sum())) for kind in sorted(set(kinds))}


def machine_kinds(runs: pd.DataFrame) -> str:
    """The machine kinds ``runs`` ran on, comma-separated; "" where none was recorded."""
    return ", ".join(k for k in machines_of(runs) if k)


def machine_summary(runs: pd.DataFrame) -> str:
    """ "2 kinds: 1a2b3c4d5e Intel(R) Xeon(R) … (60 runs); …" for provenance lines."""
    if "machine" not in runs:
        return "not recorded"
    found = machines_of(runs)
    parts = [f"{kind} {label or 'no details'} ({n} runs)" for kind, (label, n) in found.items() if kind]
    if "" in found:
        parts.append(f"not recorded ({found[''][1]} runs)")
    n = sum(1 for kind in found if kind)
    head = f"{n} kind{'s' if n != 1 else ''}: " if n else ""
    return head + "; ".join(parts)


def code_versions(runs: pd.DataFrame) -> str:
    """The code versions (``{version}+{source hash}``) of ``runs``, comma-separated; "" where runs
    were stored without a fingerprint (or come from an export that has none)."""
    if "code" not in runs:
        return ""
    return ", ".join(sorted({code_short(v) for v in runs["code"].dropna()} - {""}))


# -- aggregates over tasks ---------------------------------------------------------------------


def normalised_matrices(results: Results) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per algorithm a ``(runs, tasks)`` matrix of normalised final scores (NaN = missing run),
    over the tasks with declared bounds that every algorithm has finished runs on."""
    finals = final_scores(results)
    finals = finals[finals.task.map(lambda t: t in TASKS)]
    if finals.empty:
        return {}, []
    algos = sorted(finals.algorithm.unique())
    per_algo = finals.groupby("algorithm").task.agg(set)
    tasks = sorted(set.intersection(*per_algo.reindex(algos).tolist()))
    if not tasks:  # no task that every algorithm ran (a label on one task only): no aggregate
        return {}, []
    out = {}
    for algo in algos:
        columns = []
        for task in tasks:
            s = finals.score[(finals.algorithm == algo) & (finals.task == task)].to_numpy(float)
            columns.append(normalise(task, s))
        n = max(len(c) for c in columns)
        out[algo] = np.column_stack([np.pad(c, (0, n - len(c)), constant_values=np.nan) for c in columns])
    return out, tasks


def aggregate_table(
    matrices: dict[str, np.ndarray], reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Per algorithm: IQM, mean, median and optimality gap of normalised scores with CIs."""
    rows = []
    for algo, m in matrices.items():
        row = {"algorithm": algo, "runs": int(np.count_nonzero(~np.isnan(m))), "tasks": m.shape[1]}
        for name, fn in stats.AGGREGATES.items():
            point, lo, hi = stats.interval_estimate(m, fn, reps, confidence, seed)
            key = name.lower().replace(" ", "_")
            row.update({key: point, f"{key}_lo": lo, f"{key}_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def improvement_matrix(matrices: dict[str, np.ndarray]) -> pd.DataFrame:
    """P(row algorithm > column algorithm) on normalised scores, averaged over tasks."""
    algos = list(matrices)
    p = pd.DataFrame(np.nan, index=algos, columns=algos)
    for i, a in enumerate(algos):
        for b in algos[i + 1 :]:
            v = stats.probability_of_improvement(matrices[a], matrices[b])
            p.loc[a, b], p.loc[b, a] = v, 1.0 - v
    return p


# -- curves, frontiers, temperatures -------------------------------------------------------------


def curve_grid(ev: pd.DataFrame, x: str, points: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Puts each run's greedy curve ``value`` against ``x`` (``step`` or ``wall_time``) on a common
    grid: the last value at or before each grid point, NaN before a run's first evaluation and
    after its last. Returns ``(grid, values[runs, points])``."""
    codes, _ = pd.factorize(ev.run_key, sort=True)
    xs, ys = ev[x].to_numpy(float), ev.value.to_numpy(float)
    top = float(xs.max())
    grid = np.linspace(top / points, top, points)
    # one sorted axis for all runs: run r's x values live in [r * span, r * span + top]
    span = 2 * top + 1
    order = np.lexsort((xs, codes))
    keys, ys, codes = codes[order] * span + xs[order], ys[order], codes[order]
    runs = codes.max() + 1
    queries = np.arange(runs)[:, None] * span + grid[None, :]
    idx = np.searchsorted(keys, queries, side="right") - 1
    ok = (idx >= 0) & (codes[np.clip(idx, 0, None)] == np.arange(runs)[:, None])
    values = np.where(ok, ys[np.clip(idx, 0, None)], np.nan)
    last = np.full(runs, -np.inf)
    np.maximum.at(last, codes, keys - codes * span)
    values[grid[None, :] > last[:, None] * (1 + 0.5 / points)] = np.nan
    return grid, values


def kl_records(results: Results) -> pd.DataFrame:
    """The T = 1 KL-to-reference record of each evaluation: run_key, step, kl and ``kl_is_bound``
    (True where the run recorded only an upper bound, ``eval/kl_bound``). Stores written before
    Best-of-N recorded an estimate hold its bound under ``eval/kl``: those records count as bounds."""
    ev = results.evals[results.evals.temperature == 1.0]
    kl, bound = ev[ev.metric == KL_METRIC], ev[ev.metric == KL_BOUND_METRIC]
    legacy_bon = set(results.runs.run_key[results.runs.algo == "best-of-n"]) - set(bound.run_key)
    kl = kl.assign(kl_is_bound=kl.run_key.isin(legacy_bon))
    only_bound = bound[~bound.run_key.isin(set(kl.run_key))].assign(kl_is_bound=True)
    out = pd.concat([kl, only_bound], ignore_index=True)[["run_key", "step", "value", "kl_is_bound"]]
    return out.rename(columns={"value": "kl"})


def frontier_points(results: Results) -> pd.DataFrame:
    """Every evaluation that recorded both the KL to the reference (or only a bound on it) and a
    score, at T = 1: columns task, algorithm, algo, seed, run_key, step, kl, kl_is_bound, score."""
    cols = ["task", "algorithm", "algo", "seed", "run_key", "step", "kl", "kl_is_bound", "score"]
    kl = kl_records(results)
    if kl.empty:
        return pd.DataFrame(columns=cols)
    scores = results.scored_evals()
    scores = scores[scores.temperature == 1.0]
    pts = kl.merge(
        scores[["run_key", "step", "value", "task", "algorithm", "algo", "seed"]].rename(
            columns={"value": "score"}
        ),
        on=["run_key", "step"],
    )
    return pts[cols]


def _checkpoint_index(pts: pd.DataFrame) -> pd.Series:
    """Each evaluation's ordinal within its run (0 = first): the seeds of one configuration
    evaluate at slightly different steps (a vector env overshoots ``eval_every`` by a few steps,
    e.g. 10185 / 10188 / 10206), so checkpoints are matched by ordinal, not by step."""
    return (
        pts.sort_values(["run_key", "step"], kind="stable").groupby("run_key").cumcount().reindex(pts.index)
    )


def aligned_points(results: Results, confidence: float = 0.95) -> pd.DataFrame:
    """The frontier's points without the bias of single evaluations: per (task, run label,
    checkpoint ordinal), the mean over seeds of the T = 1 KL and score at that checkpoint, with
    the score's t interval over seeds (``lo``, ``hi``, ``ci``), the median step, the seeds, and
    ``final`` (the label's last checkpoint that every seed reached). Only checkpoints that every
    finished seed of the label reached are kept, so each mean is over the same seeds."""
    cols = ["task", "algorithm", "method", "checkpoint", "step", "seeds", "kl", "kl_is_bound", "score", "lo",
            "hi", "ci", "final"]  # fmt: skip
    pts = frontier_points(results)
    pts = pts[pts.run_key.isin(set(results.runs.run_key[results.runs.status == "done"]))]
    if pts.empty:
        return pd.DataFrame(columns=cols)
    pts = pts.assign(checkpoint=_checkpoint_index(pts))
    rows = []
    for (task, label), g in pts.groupby(["task", "algorithm"], sort=True):
        seeds = g.seed.nunique()
        for ck, h in g.groupby("checkpoint", sort=True):
            if h.seed.nunique() < seeds:
                break
            iv = stats.mean_interval(h.score.to_numpy(float), confidence)
            rows.append(dict(task=task, algorithm=label, method=method_of(label), checkpoint=int(ck),
                             step=float(h.step.median()), seeds=seeds, kl=float(h.kl.mean()),
                             kl_is_bound=bool(h.kl_is_bound.any()), score=iv.point, lo=iv.lo, hi=iv.hi,
                             ci=iv.label, final=False))  # fmt: skip
        if rows and rows[-1]["algorithm"] == label:
            rows[-1]["final"] = True
    return pd.DataFrame(rows, columns=cols)


def fallen_methods(aligned: pd.DataFrame) -> pd.DataFrame:
    """Methods whose final point lies well below their own front: per (task, run label), the
    final seed-mean score against the best seed-mean score of the method's points at no more KL;
    "well below" means the final point's interval lies entirely under that best point's score.
    Columns task, method, algorithm, kl, score, hi, front_score."""
    cols = ["task", "method", "algorithm", "kl", "score", "hi", "front_score"]
    rows = []
    for (task, method), g in aligned.groupby(["task", "method"], sort=True):
        for r in g[g.final].itertuples():
            left = g[g.kl <= r.kl]
            best = float(left.score.max())
            if pd.notna(r.hi) and r.hi < best:
                rows.append(dict(task=task, method=method, algorithm=r.algorithm, kl=r.kl, score=r.score,
                                 hi=r.hi, front_score=best))  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def temperature_table(
    results: Results, reps: int = 2000, confidence: float = 0.95, seed: int = 0, min_temperatures: int = 3
) -> pd.DataFrame:
    """Per (task, algorithm, temperature): mean final-step score over runs with its t interval
    (``ci`` names the kind; one run: NaN bounds), for tasks whose final evaluations cover at least
    ``min_temperatures`` temperatures. ``reps`` and ``seed`` are unused (kept for callers)."""
    ev = results.scored_evals()
    ev = ev[ev.status == "done"]
    if ev.empty:
        return pd.DataFrame(columns=["task", "algorithm", "temperature", "runs", "mean", "lo", "hi", "ci"])
    last = ev[ev.step == ev.groupby("run_key").step.transform("max")]
    rows = []
    for task, group in last.groupby("task", sort=True):
        if group.temperature.nunique() < min_temperatures:
            continue
        for (algo, temp), g in group.groupby(["algorithm", "temperature"], sort=True):
            iv = stats.mean_interval(g.value.to_numpy(float), confidence)
            rows.append(dict(task=task, algorithm=algo, temperature=temp, runs=len(g), mean=iv.point,
                             lo=iv.lo, hi=iv.hi, ci=iv.label))  # fmt: skip
    return pd.DataFrame(rows, columns=["task", "algorithm", "temperature", "runs", "mean", "lo", "hi", "ci"])


WIN_METRIC = "eval/win_rate"


def win_rate_table(
    results: Results, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Per (task, algorithm, temperature): final win rate against the reference completions
    (wins + ½ ties by the gold reward), mean over seeds and test prompts. The 95% CI is the two-way
    t interval over seeds and prompts (``stats.two_way_interval``) where the store has the
    per-prompt outcomes, else the t interval over the seeds' win rates (``ci`` says which, with
    the counts)."""
    cols = ["task", "algorithm", "temperature", "runs", "prompts", "mean", "lo", "hi", "ci"]
    ev = results.evals[results.evals.metric == WIN_METRIC]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    runs = results.runs[results.runs.status == "done"].set_index("run_key")[["task", "algorithm", "seed"]]
    ev = ev.join(runs, on="run_key", how="inner")
    last = ev[ev.step == ev.groupby("run_key").step.transform("max")]
    groups: dict = {}  # (task, algorithm, temperature) -> that cell's per-prompt outcomes
    if results.outcomes is not None:
        out = results.outcomes[results.outcomes.metric == WIN_METRIC].join(runs, on="run_key", how="inner")
        groups = dict(list(out.groupby(["task", "algorithm", "temperature"])))
    rows = []
    for (task, algo, temp), g in last.groupby(["task", "algorithm", "temperature"], sort=True):
        o = groups.get((task, algo, temp))
        if o is not None:
            matrix = o.pivot_table(index="run_key", columns="item", values="value").dropna(axis=1)
            iv = stats.two_way_interval(matrix.to_numpy(), confidence)
            rows.append(
                [task, algo, temp, len(matrix), matrix.shape[1], *iv, iv.label.replace("items", "prompts")]
            )
        else:
            iv = stats.mean_interval(g.value.to_numpy(float), confidence)
            rows.append([task, algo, temp, len(g), int(g.n.iloc[0]), *iv, iv.label])
    return pd.DataFrame(rows, columns=cols)


def kl_curves(results: Results) -> pd.DataFrame:
    """The T = 1 KL-to-reference records over training of every finished run: task, algorithm,
    seed, step, checkpoint (the evaluation's ordinal in its run: seeds are matched by it, not by
    step), kl (runs with a single evaluation, e.g. Best-of-N, are left out)."""
    ev = results.evals[(results.evals.metric == KL_METRIC) & (results.evals.temperature == 1.0)]
    runs = results.runs[results.runs.status == "done"][["run_key", "task", "algorithm", "seed"]]
    ev = ev.drop(columns=["task", "algorithm", "seed"], errors="ignore").merge(runs, on="run_key")
    ev = ev[ev.groupby("run_key").step.transform("nunique") > 1]
    ev = ev.assign(checkpoint=_checkpoint_index(ev))
    return ev.rename(columns={"value": "kl"})[
        ["task", "algorithm", "seed", "run_key", "step", "checkpoint", "kl"]
    ]


# -- alignment tables ----------------------------------------------------------------------------


def kl_budget_table(
    results: Results, budgets=(5.0, 10.0, 20.0), reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Best T = 1 score a method reaches within each KL budget: per seed, the best checkpoint
    over all of the method's sweep points with KL <= budget; then mean over seeds with its t
    interval (``ci``). ``seeds`` counts the seeds with any checkpoint inside the budget. The best
    checkpoint is chosen and scored on the same evaluation, so this is an optimistic summary, not
    a verdict (the claims use ``final_points``)."""
    pts = frontier_points(results)
    cols = ["task", "method", "kl_budget", "seeds", "mean", "lo", "hi", "ci"]
    if pts.empty:
        return pd.DataFrame(columns=cols)
    pts = pts.assign(method=pts.algorithm.map(method_of))
    rows = []
    for (task, method), g in pts.groupby(["task", "method"], sort=True):
        for budget in budgets:
            best = g[g.kl <= budget].groupby("seed").score.max()
            if best.empty:
                rows.append(dict(task=task, method=method, kl_budget=budget, seeds=0, mean=np.nan, lo=np.nan,
                                 hi=np.nan, ci=""))  # fmt: skip
                continue
            iv = stats.mean_interval(best.to_numpy(float), confidence)
            rows.append(dict(task=task, method=method, kl_budget=budget, seeds=len(best), mean=iv.point,
                             lo=iv.lo, hi=iv.hi, ci=iv.label))  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def run_configs(runs: pd.DataFrame) -> pd.Series:
    """Each run's resolved config as a dict (``{}`` where the table has none or it is unreadable),
    indexed as ``runs``."""

    def read(text) -> dict:
        try:
            cfg = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            return {}
        return cfg if isinstance(cfg, dict) else {}

    if "config" not in runs:
        return pd.Series([{}] * len(runs), index=runs.index, dtype=object)
    return runs.config.map(read)


def _configured_rm_pairs(results: Results) -> dict:
    """run_key -> the ``rm_pairs`` its config sets (LM methods' reward-model data size), where set."""
    sizes = run_configs(results.runs).map(lambda c: c.get("rm_pairs"))
    return {k: float(v) for k, v in zip(results.runs.run_key, sizes, strict=True) if v is not None}


def reward_model_table(
    results: Results, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Held-out preference accuracy of the reward models (``rm/*`` records), one row per
    (task, training pairs), over distinct reward models (one per seed and recipe)."""
    metrics = ["rm/accuracy", "rm/gold_accuracy", "data/n_pairs", "rm/train_pairs"]
    ev = results.evals[results.evals.metric.isin(metrics)]
    cols = ["task", "n_pairs", "models", "accuracy", "lo", "hi", "ci", "gold_accuracy", "heldout_pairs"]
    if ev.empty or not (ev.metric == "rm/accuracy").any():
        return pd.DataFrame(columns=cols)
    wide = ev.pivot_table(index="run_key", columns="metric", values="value", aggfunc="first")
    wide = wide.reindex(columns=metrics)
    # LM tasks: the number of training pairs varies by seed (ties are dropped), so their reward
    # models form one group labelled with the mean count — except those trained on a given number
    # of pairs (``rm_pairs``), which are grouped by it
    lm = wide["data/n_pairs"].isna() & wide["rm/train_pairs"].notna()
    if lm.any():
        given = pd.Series(wide.index.map(_configured_rm_pairs(results)), index=wide.index, dtype=float)
        fixed = lm & given.notna()
        wide.loc[fixed, "data/n_pairs"] = wide.loc[fixed, "rm/train_pairs"]
        rest = lm & ~fixed
        if rest.any():
            wide.loc[rest, "data/n_pairs"] = round(wide.loc[rest, "rm/train_pairs"].mean())
    n = ev[ev.metric == "rm/accuracy"].set_index("run_key").n
    wide = wide.join(n.rename("heldout")).join(results.runs.set_index("run_key")[["task", "seed"]])
    wide = wide.dropna(subset=["rm/accuracy"])
    # runs of a KL sweep share one reward model per seed: count each model once
    models = wide.drop_duplicates(["task", "seed", "data/n_pairs", "rm/accuracy", "rm/gold_accuracy"])
    rows = []
    for (task, pairs), g in models.groupby(["task", "data/n_pairs"], sort=True):
        iv = stats.mean_interval(g["rm/accuracy"].to_numpy(float), confidence)
        rows.append(
            dict(
                task=task,
                n_pairs=int(pairs),
                models=len(g),
                accuracy=iv.point,
                lo=iv.lo,
                hi=iv.hi,
                ci=iv.label.replace("seed", "model"),
                gold_accuracy=float(g["rm/gold_accuracy"].mean()),
                heldout_pairs=int(g.heldout.iloc[0]),
            )
        )
    return pd.DataFrame(rows, columns=cols)


def data_efficiency_table(
    results: Results, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Final T = 1 score against the number of preference pairs a run trained on (``data/n_pairs``
    records), per (task, run label stem, pairs), for stems run at two or more dataset sizes."""
    cols = ["task", "method", "n_pairs", "runs", "mean", "lo", "hi", "ci"]
    ev = results.evals[results.evals.metric == "data/n_pairs"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    pairs = ev.groupby("run_key").value.first().rename("n_pairs")
    finals = final_scores(results).join(pairs, on="run_key").dropna(subset=["n_pairs"])
    finals = finals.assign(method=finals.algorithm.map(method_of))
    rows = []
    for (task, method), g in finals.groupby(["task", "method"], sort=True):
        if g.n_pairs.nunique() < 2:
            continue
        for k, h in g.groupby("n_pairs", sort=True):
            iv = stats.mean_interval(h.score.to_numpy(float), confidence)
            rows.append(dict(task=task, method=method, n_pairs=int(k), runs=len(h), mean=iv.point, lo=iv.lo,
                             hi=iv.hi, ci=iv.label))  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


# -- hyperparameters -----------------------------------------------------------------------------


def hyperparameter_table(results: Results) -> pd.DataFrame:
    """The resolved config of each (run label, task) against its algorithm's defaults on that task
    (the config class's defaults updated by the shipped per-task defaults): one row per field with
    columns algorithm, algo, task, field, value, default (JSON text; default "" where the algorithm is
    not registered here) and ``differs``. Empty when the runs carry no config (an export)."""
    cols = ["algorithm", "algo", "task", "field", "value", "default", "differs"]
    if "config" not in results.runs or results.runs.config.isna().all():
        return pd.DataFrame(columns=cols)
    from bench.algos import ALGORITHMS

    rows = []
    first = results.runs.dropna(subset=["config"]).sort_values("seed").groupby(["algorithm", "task"]).head(1)
    for r in first.sort_values(["algorithm", "task"]).itertuples():
        config = json.loads(r.config)
        algo = ALGORITHMS.get(r.algo)
        defaults = {}
        if algo is not None:
            try:
                cfg = algo.config.model_validate(dict(algo.task_defaults.get(r.task, {})))
                defaults = cfg.model_dump(mode="json")
            except Exception:  # noqa: BLE001 - a default that no longer validates: no comparison
                defaults = {}
        for name, value in config.items():
            text = json.dumps(value, sort_keys=True)
            default = json.dumps(defaults[name], sort_keys=True) if name in defaults else ""
            rows.append([r.algorithm, r.algo, r.task, name, text, default, bool(default) and default != text])
    return pd.DataFrame(rows, columns=cols)


# -- provenance --------------------------------------------------------------------------------


def provenance(results: Results) -> dict:
    """Suite version and hash, git revisions, package versions, hosts and dates of the runs."""
    runs = results.runs
    info = {"source": results.source}
    for k, v in results.suite_info.items():
        if k in ("description", "submissions"):  # submissions: their own line below
            continue
        if k == "path" and v:  # the file's name: the writer's folders mean nothing to a reader
            v = Path(str(v)).name
        info[f"suite {k}"] = v

    def counts(column: str) -> str:
        if column not in runs:
            return "not recorded"
        c = runs[column].dropna().astype(str).value_counts()
        return ", ".join(f"{k} ({v} runs)" for k, v in c.items()) or "not recorded"

    if "submission" in runs and runs.submission.nunique() > 1:
        info["submissions"] = ", ".join(
            f"{k} ({v} runs)" for k, v in runs.submission.value_counts().sort_index().items()
        )
    if "source" in runs and runs.source.fillna("").astype(str).str.len().gt(0).any():
        info["imported runs from"] = counts("source")
    info["git revisions"] = counts("git_rev")
    info["hosts"] = counts("host")
    info["machines"] = machine_summary(runs)
    if "packages" in runs:
        versions: dict[str, set] = {}
        for blob in runs.packages.dropna():
            for name, version in json.loads(blob).items():
                versions.setdefault(name, set()).add(str(version))
        info["packages"] = ", ".join(f"{k} {' / '.join(sorted(v))}" for k, v in sorted(versions.items()))
    if "started_at" in runs:
        started, ended = runs.started_at.dropna(), runs.ended_at.dropna()
        info["first run started"] = started.min() if len(started) else "—"
        info["last run ended"] = ended.max() if len(ended) else "—"
    info["runs"] = ", ".join(f"{v} {k}" for k, v in runs.status.value_counts().sort_index().items())
    return info


def read_published(path: str | Path) -> pd.DataFrame:
    """Published anchor numbers: columns source, algorithm, task, budget, score, note, and
    optionally std and seeds; a ResultsError names the first thing wrong."""
    table = read_csv_text(path)
    missing = {"source", "algorithm", "task", "budget", "score", "note"} - set(table.columns)
    if missing:
        raise ResultsError(f"{path}: missing columns {', '.join(sorted(missing))}")

    def fail(i: int, message: str):
        raise ResultsError(f"{path}: row {i + 1}: {message}")

    for col in ["source", "algorithm", "task"]:
        i = _first(table[col].str.strip() == "")
        if i is not None:
            fail(i, f"empty {col}")
    table["note"] = table.note.where(~_is_missing(table.note), np.nan)
    for col in ["budget", "score", "std", "seeds"]:
        if col not in table:
            continue
        values = _numbers(table[col], fail, col)
        required = col in ("budget", "score")
        bad = ~np.isfinite(values) if required else np.isinf(values)
        if col == "seeds":
            bad |= (values < 0) | (values % 1 != 0)
        i = _first(bad)
        if i is not None:
            expected = "a count" if col == "seeds" else "a finite number"
            fail(i, f"{col} {str(table[col].iloc[i])[:40]!r} is not {expected}")
        table[col] = values
    return table


# -- text samples (LM tasks) -------------------------------------------------------------------

REFERENCE_ALGOS = ("sft", "reference")


def sample_table(results: Results, reference_n: int = 5, method_n: int = 3, temperature: float = 1.0):
    """Generated texts to read, per task: ``reference_n`` samples of π_SFT and ``method_n`` of each
    other method's best sweep point (highest mean final score), all from the lowest seed at
    ``temperature``, each with its gold score."""
    cols = ["task", "method", "algorithm", "seed", "prompt", "completion", "score"]
    if results.samples is None or results.samples.empty:
        return pd.DataFrame(columns=cols)
    s = results.samples[np.isclose(results.samples.temperature, temperature)]
    runs = results.runs[results.runs.status == "done"].set_index("run_key")
    s = s.join(runs[["task", "algorithm", "algo", "seed"]], on="run_key", how="inner")
    finals = final_scores(results)
    means = finals.groupby(["task", "algorithm"]).score.mean()
    rows = []
    for task, g in s.groupby("task", sort=True):
        g = g.assign(method=g.algorithm.map(method_of))
        for method, m in g.groupby("method", sort=False):
            is_ref = m.algo.isin(REFERENCE_ALGOS).all()
            labels = [a for a in m.algorithm.unique() if (task, a) in means.index]
            best = max(labels, key=lambda a: means[(task, a)]) if labels else m.algorithm.iloc[0]
            b = m[m.algorithm == best]
            b = b[b.seed == b.seed.min()].head(reference_n if is_ref else method_n)
            for _, r in b.iterrows():
                rows.append([task, method, best, int(r.seed), r.prompt, r.completion, float(r.score)])
    out = pd.DataFrame(rows, columns=cols)
    # the reference first, then methods by name
    order = out.method.map(lambda m: (m not in REFERENCE_ALGOS, m))
    return out.iloc[sorted(range(len(out)), key=lambda i: order.iloc[i])].reset_index(drop=True)


def _without_workers(label: str) -> str:
    """``dppo[lr=0.001,workers=2]`` -> ``dppo[lr=0.001]``; ``dppo-4mb[workers=2]`` -> ``dppo-4mb``."""
    stem, _, suffix = str(label).partition("[")
    axes = [a for a in suffix.rstrip("]").split(",") if a and not a.startswith("workers=")]
    return stem + (f"[{','.join(axes)}]" if axes else "")


def scaling_table(results: Results) -> pd.DataFrame:
    """Throughput against the number of workers, for runs that record one (Distributed PPO): per
    task, method (the run label without its ``workers`` axis) and worker count W, over its done
    runs: env-steps/s (env steps / training time) and wall time (mean, min, max over seeds), the
    speed-up over the same method's W = 1 and the efficiency against linear (speed-up / W)."""
    runs = results.runs
    columns = ["task", "method", "workers", "runs", "env_steps_per_s", "sps_min", "sps_max",
               "wall_time", "wall_min", "wall_max", "speedup", "efficiency", "reached",
               "wall_to_threshold_s", "train_to_threshold_s", "steps_to_threshold"]  # fmt: skip
    if "config" not in runs or runs.empty:
        return pd.DataFrame(columns=columns)
    done = runs[(runs.status == "done") & (runs.train_time > 0)].copy()
    done["workers"] = [json.loads(c or "{}").get("workers") for c in done.config]
    done = done[done.workers.notna()]
    if done.empty:
        return pd.DataFrame(columns=columns)
    done["workers"] = done.workers.astype(int)
    done["method"] = done.algorithm.map(_without_workers)
    done["sps"] = done.env_steps / done.train_time
    table = (
        done.groupby(["task", "method", "workers"])
        .agg(
            runs=("sps", "size"),
            env_steps_per_s=("sps", "mean"),
            sps_min=("sps", "min"),
            sps_max=("sps", "max"),
            wall_time=("wall_time", "mean"),
            wall_min=("wall_time", "min"),
            wall_max=("wall_time", "max"),
        )  # fmt: skip
        .reset_index()
    )
    base = table[table.workers == 1].set_index(["task", "method"]).env_steps_per_s
    one = [base.get((t, m), np.nan) for t, m in zip(table.task, table.method, strict=True)]
    table["speedup"] = table.env_steps_per_s / np.asarray(one, float)
    table["efficiency"] = table.speedup / table.workers
    # the learning claim: how soon the task's threshold is reached (median over seeds, greedy
    # evaluations; a run that never reaches it counts as never, so half never -> inf)
    for col in ("reached", "wall_to_threshold_s", "train_to_threshold_s", "steps_to_threshold"):
        table[col] = np.nan
    for i, row in table.iterrows():
        limit = threshold(row.task)
        metric = results.score_metric(row.task)
        if limit is None or metric is None:
            continue
        keys = done.run_key[
            (done.task == row.task) & (done.method == row.method) & (done.workers == row.workers)
        ]
        hits = time_to_threshold(results.evals[results.evals.run_key.isin(keys)], limit, metric)
        late = np.full(len(keys) - len(hits), np.inf)
        table.loc[i, "reached"] = len(hits)
        for col, src in (("wall_to_threshold_s", "wall_time"), ("train_to_threshold_s", "train_time"),
                         ("steps_to_threshold", "step")):  # fmt: skip
            table.loc[i, col] = float(np.median(np.concatenate([hits[src].to_numpy(float), late])))
    return table[columns]


# -- the DPO paper's claims, measured --------------------------------------------------------------


def final_points(results: Results) -> pd.DataFrame:
    """Per finished run: its final T = 1 KL to the reference and score (the last evaluation that
    recorded both): task, algorithm, method, seed, kl, kl_is_bound, score."""
    pts = frontier_points(results)
    done = set(results.runs.run_key[results.runs.status == "done"])
    pts = pts[pts.run_key.isin(done)]
    if pts.empty:
        return pd.DataFrame(columns=["task", "algorithm", "method", "seed", "kl", "kl_is_bound", "score"])
    last = pts.sort_values("step", kind="stable").groupby("run_key").tail(1)
    last = last.assign(method=last.algorithm.map(method_of))
    return last[["task", "algorithm", "method", "seed", "kl", "kl_is_bound", "score"]].reset_index(drop=True)


def claim_points(results: Results) -> pd.DataFrame:
    """What the claims read (``bench.claims``): ``final_points``, plus the finished runs that record
    no KL to a reference (plain RL: PPO with one detail changed) at their last T = 1 score, with KL
    NaN. The kinds that compare frontiers read only methods that record a KL."""
    pts = final_points(results)
    scores = results.scored_evals()
    scores = scores[(scores.temperature == 1.0) & (scores.status == "done")]
    with_kl = set(zip(pts.task, pts.algorithm, pts.seed, strict=True))
    scores = scores[[k not in with_kl for k in zip(scores.task, scores.algorithm, scores.seed, strict=True)]]
    if scores.empty:
        return pts
    last = scores.sort_values("step", kind="stable").groupby("run_key").tail(1)
    plain = pd.DataFrame({
        "task": last.task, "algorithm": last.algorithm, "method": last.algorithm.map(method_of),
        "seed": last.seed, "kl": np.nan, "kl_is_bound": False, "score": last.value,
    })  # fmt: skip
    return pd.concat([df for df in (pts, plain) if len(df)], ignore_index=True)


def kl_span_table(results: Results) -> pd.DataFrame:
    """Per (task, method): how many sweep points it ran and the range of their mean final KL to
    the reference (``ratio`` = max / min; undefined where a point has KL 0)."""
    cols = ["task", "method", "points", "kl_min", "kl_max", "ratio", "kl_is_bound"]
    pts = final_points(results)
    if pts.empty:
        return pd.DataFrame(columns=cols)
    means = pts.groupby(["task", "method", "algorithm"]).agg(kl=("kl", "mean"), bound=("kl_is_bound", "any"))
    rows = []
    for (task, method), g in means.groupby(level=[0, 1], sort=True):
        lo, hi = float(g.kl.min()), float(g.kl.max())
        rows.append(dict(task=task, method=method, points=len(g), kl_min=lo, kl_max=hi,
                         ratio=hi / lo if lo > 0 else np.nan, kl_is_bound=bool(g.bound.any())))  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


# A frontier comparison at a second-method point of KL k uses the first method's points with KL in
# [k / KL_WINDOW, k]: a point much further left is not a comparison at matched KL but a gap in the
# first method's sweep grid (design §7: a verdict is decided only where the grid covers it).
KL_WINDOW = 2.0
# the largest N of the DPO paper's Best-of-N (Best-of-128, TL;DR summarisation)
PAPER_BEST_OF_N = 128
CLAIM_RULES = (
    "Intervals: 95% t intervals of differences of means over seeds, paired where both sides ran the "
    "same seeds (each seed fixes the reference policy, preference data and reward model, so the sides "
    "share them), Welch's otherwise; the kind is printed with each interval, and a side with one seed "
    "has none. Frontier claims: for each point of the second method (a sweep setting; mean final KL "
    "and score at T = 1 over its seeds), the first method's best point with mean KL between "
    f"1/{KL_WINDOW:g} of that point's KL and that KL. The claim holds when that point scores "
    "significantly higher (interval above 0) at every point; it does not hold when some point of the "
    "second method scores significantly higher than a first-method point inside that window; when the "
    "first method has no point inside the window the grid cannot decide that point (inconclusive: the "
    "grid stops, or leaves a gap, at that KL), and otherwise it is inconclusive. Temperature: per seed, "
    "the range (highest minus lowest) over the final temperature sweep of the win rate against the "
    "references (tasks with references; else the score), at each method's chosen point; holds when "
    "DPO's mean range is significantly smaller, does not hold when significantly larger. Best-of-N: its "
    "chosen point against DPO's (score at T = 1); holds when it is not significantly below DPO's and "
    "is significantly above π_SFT's; does not hold otherwise — unless its best N is the largest N the "
    f"suite ran and that is below the paper's {PAPER_BEST_OF_N} (inconclusive: the grid stops there). "
    "Chosen points without selection bias: each seed's value is taken at the sweep point chosen on "
    "the other seeds (leave one seed out), so no seed both chooses and reports; with one seed the "
    "choice is in-sample and says so. Claims of the other kinds in the registry (bench claims --list) — "
    "difference, law-fit, kl-efficiency, proxy-gold-divergence, rm-data-delays — follow the rules the "
    "reports guide states for each (bench.claims.kinds), with the same intervals."
)


def crossfit_choice(select: pd.DataFrame) -> dict:
    """Leave-one-seed-out choice of a sweep point: ``select`` is a (label x seed) table of the
    values the choice maximises (NaN = no run). Returns seed -> the label with the highest mean
    over the *other* seeds (ties: the first label in sorted order); with a single seed, that seed's
    own best (in-sample). Under a null where every label is equally good, a value reported for a
    seed at its chosen label is then free of selection bias, since the seed took no part in the
    choice (``tests/unit/test_selection.py`` checks this by simulation)."""
    select = select.sort_index()
    seeds = list(select.columns)
    out = {}
    for s in seeds:
        others = select.drop(columns=[s]) if len(seeds) > 1 else select
        means = others.mean(axis=1, skipna=True)
        means = means[select[s].notna()]  # only labels this seed ran
        if means.notna().any():
            out[s] = means.idxmax()
    return out


def _crossfit_values(choice: dict, report: pd.DataFrame) -> pd.Series:
    """seed -> the reported value of ``report`` (label x seed) at that seed's chosen label."""
    return pd.Series({s: report.at[label, s] for s, label in choice.items() if label in report.index})


def _choice_text(choice: dict) -> str:
    labels = sorted(set(choice.values()))
    if len(labels) == 1:
        return labels[0]
    return " / ".join(f"{lab} (seeds {', '.join(str(s) for s, v in choice.items() if v == lab)})"
                      for lab in labels)  # fmt: skip


def _point_scores(pts: pd.DataFrame) -> dict[str, tuple[float, pd.Series]]:
    """label -> (mean final KL, per-seed final scores indexed by seed)."""
    return {
        label: (float(g.kl.mean()), g.set_index("seed").score.astype(float))
        for label, g in pts.groupby("algorithm", sort=True)
    }


def _difference(a: pd.Series, b: pd.Series, confidence: float = 0.95) -> stats.Interval:
    """``mean(a) - mean(b)`` of two per-seed series: paired t where both ran the same seeds,
    Welch otherwise; no interval with one seed on a side."""
    return stats.difference_interval(a.to_numpy(float), b.to_numpy(float), list(a.index), list(b.index),
                                     confidence)  # fmt: skip


def _dominance(
    a_pts, b_pts, a_name, b_name, confidence, kl_window: float = KL_WINDOW
) -> tuple[str, str, list]:
    """(verdict, what was measured, the differences at decided points) of "a's frontier dominates
    b's" (``CLAIM_RULES``; a's points within [k / kl_window, k] of each b point's KL k)."""
    a, b = _point_scores(a_pts), _point_scores(b_pts)
    details, ahead, behind, undecided, decided = [], 0, 0, 0, []
    for b_label, (b_kl, b_scores) in sorted(b.items(), key=lambda kv: kv[1][0]):
        left = {lab: v for lab, v in a.items() if v[0] <= b_kl}
        window = {lab: v for lab, v in left.items() if v[0] >= b_kl / kl_window}
        if not window:
            undecided += 1
            nearest = max(left, key=lambda lab: a[lab][0]) if left else None
            above = [v[0] for v in a.values() if v[0] > b_kl]
            if nearest is None:
                why = f"the {a_name} grid starts at KL {min(above):.2f}" if above else f"no {a_name} points"
            else:
                why = f"grid gap: the nearest {a_name} point below is {nearest} at KL {a[nearest][0]:.2f}"
                if above:
                    why += f", the next above at KL {min(above):.2f}"
            details.append(f"{b_label} (KL {b_kl:.2f}): not decided, {why}")
            continue
        a_label = max(window, key=lambda lab: (window[lab][1].mean(), lab))
        d = _difference(window[a_label][1], b_scores, confidence)
        decided.append(d)
        ahead += d.has_interval and d.lo > 0
        behind += d.has_interval and d.hi < 0
        details.append(
            f"{b_label} (KL {b_kl:.2f}): {a_label} (KL {window[a_label][0]:.2f}) {d.text(signed=True)}"
        )
    n = len(b)
    if ahead == n:
        verdict = "holds"
    elif behind:
        verdict = "does not hold"
    elif undecided:
        verdict = "inconclusive: the grid does not cover every point"
    else:
        verdict = "inconclusive"
    text = f"{a_name} significantly higher at {ahead} of {n} {b_name} points, significantly lower at {behind}"
    text += (f", not decided by the grid at {undecided}" if undecided else "") + ". " + "; ".join(details)
    return verdict, text, decided


def _t_of(d: stats.Interval) -> float:
    """A difference's t statistic (the clearest of several is the one furthest from 0)."""
    return d.point / d.se if d.se > 0 else np.sign(d.point) * np.inf


def _deciding(verdict: str, candidates: list[tuple[stats.Interval, str]]) -> list[tuple[stats.Interval, str]]:
    """The (difference, rule it met) pairs a decisive verdict rests on, every one of which must meet
    its rule again for the verdict to replicate; [] for an inconclusive verdict or where one of
    them has no t interval."""
    if verdict.split(":")[0] not in ("holds", "does not hold") or not candidates:
        return []
    if any(not d.has_interval or not np.isfinite(d.se) for d, _ in candidates):
        return []
    return candidates


def _temperature_values(results: Results, label: str, metric: str) -> pd.DataFrame:
    """(seed x temperature) final values of one run label's ``metric`` (final evaluation)."""
    ev = results.evals[results.evals.metric == metric]
    runs = results.runs[(results.runs.status == "done") & (results.runs.algorithm == label)]
    ev = ev.merge(runs[["run_key", "seed"]], on="run_key")
    ev = ev[ev.step == ev.groupby("run_key").step.transform("max")]
    return ev.pivot_table(index="seed", columns="temperature", values="value")


def _seed_table(pts: pd.DataFrame, column: str = "score") -> pd.DataFrame:
    """(label x seed) table of a column of ``final_points``."""
    return pts.pivot_table(index="algorithm", columns="seed", values=column, aggfunc="first")


def _n_of(label: str) -> float | None:
    """The N of a Best-of-N run label (``best-of-n[n=16]`` -> 16.0), None when it has none."""
    import re

    m = re.search(r"\bn=(\d+)", label)
    return float(m.group(1)) if m else None


def reference_checks(results: Results) -> list[dict]:
    """The reference every fine-tuning starts from, against its band (``bench.bands``): per LM task
    with a band, π_SFT's row (its ``sft`` runs); per control task with declared bounds, the
    ``reference`` runs' normalised final score. Each: task, the mean over seeds with its t interval,
    the seeds' lowest and highest value, whether the mean lies inside the band and whether every
    seed keeps the band's margin, and one line for a reader."""
    from bench.bands import BANDS, CONTROL_REFERENCE

    out, finals = [], None
    for task in sorted(set(results.runs.task)):
        runs = results.runs[(results.runs.task == task) & (results.runs.status == "done")]
        if task in BANDS:
            band, label = BANDS[task], "sft"
            runs = runs[runs.algorithm.map(method_of) == label]
            ev = results.evals[
                results.evals.run_key.isin(runs.run_key) & (results.evals.metric == band.metric)
            ]
            ev = ev[np.isclose(ev.temperature.astype(float), band.temperature)]
            ev = ev[ev.step == ev.groupby("run_key").step.transform("max")]
            values = ev.groupby("run_key").value.mean().to_numpy(float)
            who = "π_SFT"
        elif task in TASKS and "reference" in set(runs.algorithm):
            band = CONTROL_REFERENCE
            finals = final_scores(results) if finals is None else finals
            ref = finals[(finals.task == task) & (finals.algorithm == "reference")]
            values = np.array([normalise(task, v) for v in ref.score.astype(float)])
            who = "the reference policy"
        else:
            continue
        if len(values) == 0:
            continue
        iv = stats.mean_interval(values)
        inside = band.inside(iv.point)
        margin = all(band.with_margin(v) for v in values)
        where = "inside its band" if inside else "OUTSIDE its band"
        what = band.what.replace(" of the reference policy", "")
        text = (f"{task}: {who}'s {what} at T = {band.temperature:g} is {iv.text()}, {where} "
                f"[{band.lo:g}, {band.hi:g}]; seeds {values.min():.3f}–{values.max():.3f}"
                + ("" if margin else f", not all {band.margin:g} inside it"))  # fmt: skip
        if not inside:
            text += (": the task was calibrated for a reference inside it, so every comparison of this "
                     "report starts from another point than the task intends")  # fmt: skip
        out.append(dict(task=task, value=iv.point, lo=band.lo, hi=band.hi, inside=inside, margin=margin,
                        text=text + "."))  # fmt: skip
    return out


def claim_caveats(results: Results) -> pd.DataFrame:
    """What stands beside each task's claims (design §7): the size of the models, what the gold
    reward is, that the data are generated, and the reference row of this run (π_SFT's win rate,
    or the reference policy's score). Columns task, caveats."""
    rows = []
    finals = final_scores(results)
    win = win_rate_table(results)
    for task in sorted(set(final_points(results).task)):
        runs = results.runs[(results.runs.task == task) & (results.runs.status == "done")]
        parts = []
        params = pd.to_numeric(runs.get("parameters", pd.Series(dtype=float)), errors="coerce").dropna()
        if len(params):
            lo, hi = params.min() / 1e6, params.max() / 1e6
            size = f"{lo:.2g} M" if lo == hi else f"{lo:.2g}–{hi:.2g} M"
            parts.append(f"models of {size} parameters (the DPO paper: GPT-2 large, 774 M)")
        if task_domain(task) == "lm":
            desc = find_task(task).description
            gold = desc[desc.find("(gold:") + 1 : desc.rfind(")")] if "(gold:" in desc else "gold reward"
            parts.append(f"{gold}; prompts, corpus and references generated by bench, not human text")
        else:
            parts.append("gold: the environment's true return; preferences labelled from it")
        ref_labels = [a for a in runs.algorithm.unique() if method_of(a) in ("sft", "reference")]
        for label in sorted(ref_labels):
            w = win[(win.task == task) & (win.algorithm == label)]
            if len(w):
                temps = ", ".join(
                    f"{r.mean:.3f} at T = {r.temperature:g}"
                    for r in w.sort_values("temperature").itertuples()
                )
                parts.append(f"{label}'s win rate against the references on this run: {temps}")
            else:
                sc = finals.score[(finals.task == task) & (finals.algorithm == label)].to_numpy(float)
                if len(sc):
                    parts.append(f"{label}'s score on this run: {stats.mean_interval(sc).text()}")
        rows.append(dict(task=task, caveats="; ".join(parts) + "."))
    return pd.DataFrame(rows, columns=["task", "caveats"])
