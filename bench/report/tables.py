"""Display tables: the leaderboard and aggregate rows as strings, and their Markdown / text forms."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

LEADERBOARD_HEADER = [
    "algorithm", "seeds", "final: mean [95% t CI], sd (n)", "IQM [95% bootstrap CI]", "median",
    "steps to threshold",
    "time to threshold (train / wall)", "wall time, peak memory", "env-steps/s", "failed", "code", "machines",
]  # fmt: skip
# leaderboard columns that mean nothing where the "steps" are optimizer updates on a fixed data set
# and no task threshold exists (LM tasks)
CONTROL_ONLY = ("steps to threshold", "time to threshold (train / wall)", "env-steps/s")
AGGREGATE_HEADER = ["algorithm", "runs", "tasks", "IQM", "mean", "median", "optimality gap"]


def fmt(v, digits: int = 4) -> str:
    """Compact number: 4 significant digits, thousands separators for large values, '—' for NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "never" if v > 0 else "-inf"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def interval_cell(point, lo, hi, digits: int = 4, n=None) -> str:
    """``"0.52 [0.41, 0.63]"``, or ``"0.52 (1 seed: no interval)"`` where the bounds are NaN."""
    if point is None or pd.isna(point):
        return "—"
    if pd.isna(lo) or pd.isna(hi):
        few = "" if n is None else f"{int(n)} seed{'s' if int(n) != 1 else ''}: "
        return f"{fmt(float(point), digits)} ({few or ''}no interval)"
    return f"{fmt(float(point), digits)} [{fmt(float(lo), digits)}, {fmt(float(hi), digits)}]"


def mean_cell(row) -> str:
    """A leaderboard row's final score: mean with its t interval over seeds and the sample sd
    (ddof = 1) with the seed count — ``"212.4 [180.1, 244.7], sd 13.0 (n = 3)"``; one seed:
    ``"212.4 (1 seed: no interval)"``."""
    sd = row.get("sd", row.get("std", np.nan))
    if row.seeds < 2 or pd.isna(row.get("mean_lo", np.nan)):
        return interval_cell(row["mean"], np.nan, np.nan, n=row.seeds)
    mean = interval_cell(row["mean"], row["mean_lo"], row["mean_hi"])
    return f"{mean}, sd {fmt(sd, 3)} (n = {int(row.seeds)})"


def _seconds(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return "never" if v == math.inf else f"{v:.3g} s"


def _memory(row) -> str:
    """ ", 412 MiB (1.2M params)": a leaderboard row's median peak resident memory per run and the
    parameters of the models its runs hold, where recorded."""
    mem, params = row.get("peak_rss_mb", np.nan), row.get("parameters", np.nan)
    out = "" if pd.isna(mem) else f", {mem:,.0f} MiB"
    if pd.notna(params):
        out += f" ({params / 1e6:.3g}M params)" if params >= 1e5 else f" ({params:,.0f} params)"
    return out


def _range(row) -> str:
    """ " [lo, hi]": the 95% bootstrap CI of the median steps to threshold, where there is one."""
    lo, hi = row.get("steps_to_threshold_lo", np.nan), row.get("steps_to_threshold_hi", np.nan)
    if pd.isna(lo) or pd.isna(hi) or (lo == hi == row.steps_to_threshold):
        return ""
    return f" [{fmt(float(lo))}, {fmt(float(hi))}]"


def _code(row, column: str = "code") -> str:
    """The code version(s) a leaderboard row's runs came from ("—" for runs stored without one);
    ``column="machines"``: the machine kinds they ran on."""
    code = row.get(column) if hasattr(row, "get") else None
    return code if isinstance(code, str) and code else "—"


REPLICATION_NOTE = (
    "'Replicates (predicted)': the chance that a fresh, disjoint set of as many seeds gives the same "
    "verdict, if the measured difference is the true one and the spread per seed stays as it was (a "
    "noncentral t calculation; where a verdict rests on several differences, the product of their "
    "chances) — an upper reading, since a significant estimate leans away from zero — and the seeds "
    "that would make it 80%. `bench replicate` measures it."
)


def number_in(row, key: str) -> float:
    """A number from a table row or a dict read from CSV text (NaN where missing or not a number)."""
    value = pd.to_numeric(row.get(key, np.nan) if hasattr(row, "get") else np.nan, errors="coerce")
    return float(value) if value is not None and pd.notna(value) else math.nan


def replication_cell(row) -> str:
    """A claim's predicted chance of coming out the same on a fresh seed set of its size, and the
    seeds that would make it 80% — ``"97% at 3 seeds (80% from 2)"``; "—" for an inconclusive
    verdict (nothing to replicate) or without a t interval."""
    p, seeds, need = (number_in(row, k) for k in ("p_replicate", "seeds", "seeds_for_80"))
    if pd.isna(p):
        return "—"
    text = f"{100 * float(p):.0f}%" + (f" at {int(seeds)} seeds" if pd.notna(seeds) else "")
    if pd.isna(need):
        return text + " (80% needs more than 200)"
    return text + (f" (80% from {int(need)})" if float(p) < 0.8 or int(need) < int(seeds) else "")


def leaderboard_rows(board: pd.DataFrame, anchors: pd.DataFrame | None, task: str) -> list[list[str]]:
    """Display rows of one task's leaderboard (best mean first), published anchors after."""
    rows = []
    part = board[board.task == task].sort_values("mean", ascending=False, na_position="last")
    for _, r in part.iterrows():
        if r.seeds == 0:
            unfinished = f", {r.unfinished} unfinished" if r.unfinished else ""
            rows.append([r.algorithm, "0", "—", "—", "—", "—", "—", "—", "—", f"{r.failed}{unfinished}",
                         _code(r), _code(r, "machines")])  # fmt: skip
            continue
        reached = "" if pd.isna(r.reached) else f" ({int(r.reached)}/{r.seeds} reach)"
        unfinished = f", {r.unfinished} unfinished" if r.unfinished else ""
        rows.append(
            [
                r.algorithm,
                f"{r.seeds}",
                mean_cell(r),
                interval_cell(r.iqm, r.iqm_lo, r.iqm_hi, n=r.seeds),
                fmt(r["median"]),
                fmt(r.steps_to_threshold) + _range(r) + reached,
                f"{_seconds(r.train_to_threshold_s)} / {_seconds(r.wall_to_threshold_s)}",
                _seconds(r.wall_time_s) + _memory(r),
                fmt(r.env_steps_per_s, 3),
                f"{r.failed}{unfinished}",
                _code(r),
                _code(r, "machines"),
            ]
        )
    if anchors is not None:
        for _, a in anchors[anchors.task == task].iterrows():
            std = f" ± {fmt(a['std'], 3)}" if "std" in a and pd.notna(a["std"]) else ""
            rows.append(
                [
                    f"{a.source}: {a.algorithm} (published)",
                    "—" if "seeds" not in a or pd.isna(a["seeds"]) else f"{int(a['seeds'])}",
                    f"{fmt(float(a.score))}{std}",
                    "—",
                    "—",
                    f"budget {fmt(float(a.budget))}",
                    "—",
                    "—",
                    "—",
                    str(a.note) if pd.notna(a.note) else "",
                    "—",
                    "—",
                ]
            )
    return rows


def leaderboard_columns(task: str) -> list[int]:
    """The indices of ``LEADERBOARD_HEADER`` shown for ``task`` (LM tasks drop ``CONTROL_ONLY``)."""
    from bench.registry import task_domain

    drop = CONTROL_ONLY if task_domain(task) == "lm" else ()
    return [i for i, h in enumerate(LEADERBOARD_HEADER) if h not in drop]


def pick(row: list, columns: list[int]) -> list:
    return [row[i] for i in columns]


def hyperparameter_rows(table: pd.DataFrame, board: pd.DataFrame) -> list[dict]:
    """Per run label: its algorithm, the settings that differ from the algorithm's defaults (one
    text per setting, with whether it differs; a setting that differs on some tasks only names
    them) and the code versions of its runs (``board``: the leaderboard)."""
    out = []
    codes = board.groupby("algorithm").code.agg(lambda c: ", ".join(sorted({x for x in c if x})) or "—")
    for label in sorted(table.algorithm.unique(), key=natural_key):
        rows = table[table.algorithm == label]
        tasks = sorted(rows.task.unique())
        settings = []
        if (rows.default == "").all():  # the algorithm is not registered here: no defaults to compare
            first = rows[rows.task == tasks[0]]
            settings = [(f"{f}={v}", False) for f, v in zip(first.field, first.value, strict=True)]
            settings.append(("(its defaults are unknown here: the algorithm is not installed)", False))
        for field, g in rows.groupby("field", sort=True):
            if not g.differs.any():
                continue
            values = dict(zip(g.task, g.value, strict=True))
            default = g.default.iloc[0] if g.default.nunique() == 1 else None
            if len(set(values.values())) == 1 and len(values) == len(tasks):
                text = f"{field}={g.value.iloc[0]}"
            else:
                text = f"{field}: " + ", ".join(f"{t} {v}" for t, v in values.items())
            if default is not None and default != "":
                text += f" (default {default})"
            settings.append((text, True))
        if not settings:
            settings = [("all at the defaults", False)]
        out.append(dict(label=label, algo=rows.algo.iloc[0], settings=settings, code=codes.get(label, "—")))
    return out


def aggregate_rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for _, r in table.sort_values("iqm", ascending=False).iterrows():
        cells = [r.algorithm, str(r.runs), str(r.tasks)]
        for key in ["iqm", "mean", "median", "optimality_gap"]:
            if pd.isna(r[key + "_lo"]):
                cells.append(f"{r[key]:.3f} (no interval)")
            else:
                cells.append(f"{r[key]:.3f} [{r[key + '_lo']:.3f}, {r[key + '_hi']:.3f}]")
        rows.append(cells)
    return rows


def natural_key(name) -> tuple:
    """Sort key that orders the numbers inside names by value: ``n=4`` < ``n=16`` < ``n=64``,
    ``target_kl=3`` < ``target_kl=12``."""
    parts = re.split(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)", str(name))
    return tuple(float(p) if i % 2 else p for i, p in enumerate(parts))


def natural(names) -> list:
    """``names`` (unique) in natural order."""
    return sorted(set(names), key=natural_key)


def plain(text) -> str:
    """Text on one line with no control characters (line breaks and tabs become spaces, other
    control characters U+FFFD): names as printed to a terminal, a Markdown cell or a figure."""

    def clean(c: str) -> str:
        if c in "\n\r\t\v\f\x85\u2028\u2029":
            return " "
        return "\ufffd" if ord(c) < 32 or 127 <= ord(c) < 160 else c

    return "".join(map(clean, str(text)))


_MD_SPECIAL = re.compile(r"([\\`*_~$])")


def md_escape(text: str) -> str:
    """Text safe in a Markdown table cell or heading: no HTML, no column or line breaks, no
    emphasis, code, math, links or images (``\\ ` * _ ~ $`` and ``](`` backslash-escaped)."""
    text = plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text).replace("](", "\\](").replace("|", "\\|")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    header, rows = [plain(h) for h in header], [[plain(c) for c in row] for row in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]])


def leaderboard_document(
    results, board: pd.DataFrame, published: pd.DataFrame | None, fmt: str, reps: int = 2000, seed: int = 0
) -> str:
    """The aggregate table and one leaderboard per task, as Markdown (``fmt="md"``) or text."""
    from bench.results import aggregate_table, normalised_matrices

    render = markdown_table if fmt == "md" else text_table
    heading = (lambda t: f"### {md_escape(t)}") if fmt == "md" else plain
    out = []
    matrices, agg_tasks = normalised_matrices(results)
    if matrices:
        agg = aggregate_table(matrices, reps=reps, seed=seed)
        title = f"{results.name}: aggregate over {', '.join(agg_tasks)} (normalised, 95% CIs)"
        out += [heading(title), "", render(AGGREGATE_HEADER, aggregate_rows(agg)), ""]
    for task in results.tasks():
        cols = leaderboard_columns(task)
        rows = [pick(r, cols) for r in leaderboard_rows(board, published, task)]
        out += [heading(task), "", render(pick(LEADERBOARD_HEADER, cols), rows), ""]
    return "\n".join(out).rstrip()


def finals_digest(finals: Path | None) -> str:
    """The digest of a report's ``final_scores.csv`` that its replication page records (``''`` where
    there is none): a report carries the page only while its final scores are still those."""
    return hashlib.sha256(finals.read_bytes()).hexdigest() if finals and finals.is_file() else ""


REPLICATION = "replication"  # a report's first replication page; others sit beside it as replication-NAME


def replication_folders(report: Path) -> list[Path]:
    """The replication pages (``bench replicate``) in a report folder: ``replication/`` first, then
    each ``replication-NAME/`` (another seed set or machine kind) by name; only folders holding a
    ``replication.json``."""
    report = Path(report)
    if not report.is_dir():
        return []
    found = [p for p in report.iterdir() if p.name == REPLICATION or p.name.startswith(REPLICATION + "-")]
    found = [p for p in found if (p / "replication.json").is_file()]
    return sorted(found, key=lambda p: (p.name != REPLICATION, p.name))


def machine_kinds_in(text: str) -> set[str]:
    """The machine kinds (10 hex digits, ``bench.machine``) a provenance line names."""
    return set(re.findall(r"\b[0-9a-f]{10}\b", str(text or "")))


def replication_title(info: dict) -> str:
    """A replication page's heading: fresh seeds, and whether they ran on a machine kind the report
    did not (said only where both sides recorded their kinds)."""
    here = machine_kinds_in(info.get("machines_here"))
    published = machine_kinds_in(info.get("machines_published"))
    if published and here - published:
        return "Replication on fresh seeds and another machine kind"
    if here and not published:
        return "Replication on fresh seeds (the report's machine kind not recorded)"
    return "Replication on fresh seeds"
