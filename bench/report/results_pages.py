"""The docs site's results pages, generated from the published reports.

    python -m bench.report.results_pages docs/results            # (re)write the pages
    python -m bench.report.results_pages docs/results --check    # exit 1 if a page is stale

Every folder of ``reports/`` that holds a ``report.json`` (written by ``bench report``) gets a page
``docs/results/<suite>.md``; ``docs/results/index.md`` lists them. Only the block between
``<!-- generated: begin -->`` and ``<!-- generated: end -->`` of a page is (re)written: the title
and the hand-written prose around it stay as they are. A page that does not exist yet is created
with a title and an empty hand-written section.

What a block holds, all read from the report's files (nothing is recomputed except each run
label's mean final KL, the mean over its done runs of their last ``frontier.csv`` point):

* the report's lead figure (the first figure of its ``index.html``, copied as PNG into
  ``docs/results/figures/<suite>-<name>.png``) and the repository path of the HTML report;
* ``report.json``'s best-point rule and best points (the only "best" a page names);
* the leaderboard per task (``leaderboard.csv``), the best points across tasks, the aggregate
  (``aggregate.csv``), claims, scaling, win rates, temperature, KL span, KL budgets, data
  efficiency, reward models and published references, where the report has them, and the notes
  published with the report (``notes.txt``).

Numbers are printed with one fixed precision per quantity (``PRECISION``); a task's scores get
one decimal, or three where the task's mean scores all lie within ±10 (gold rewards, win rates).
Each interval is printed beside the statistic it belongs to (``iqm`` with ``iqm_lo``/``iqm_hi``,
``mean`` with ``lo``/``hi`` or ``mean_lo``/``mean_hi``); a column that names an interval's kind
(``ci``, ``interval``, ``kind``, or ``<stat>_ci`` ...) is printed in the header, or in the cells
where its rows differ. Columns that the pages do not use are ignored.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import math
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "<!-- generated: begin -->"
END = "<!-- generated: end -->"
COMMAND = "python -m bench.report.results_pages docs/results"
FIGURES = "figures"  # under the output folder: the copied lead figures (the generator owns it)
INDEX = "index.md"
MINUS = "\u2212"
DASH = "—"
# digits after the point, per quantity (scores: ``score_digits``)
PRECISION = {"normalised": 3, "kl": 2, "rate": 3, "accuracy": 3, "ratio": 2, "count": 0}
ANNOTATIONS = ("ci", "interval", "kind")  # columns that say what an interval is
# the order of the index (suites not named here follow, alphabetically)
ORDER = (
    "classic-control", "lunarlander", "ppo-vs-trpo", "ablations", "dppo-scaling", "control-alignment",
    "control-alignment-ablations", "control-alignment-relatives", "lm-sentiment", "lm-sentiment-relatives",
    "lm-summarization", "lm-summarization-relatives",
)  # fmt: skip


# -- reading a report ----------------------------------------------------------------------------


@dataclass
class Report:
    """One published report folder: ``report.json``, its CSV files (read on demand), the suite's
    one-line description and the lead figure of its ``index.html``."""

    folder: Path
    meta: dict
    _tables: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def best_points(self) -> dict[str, str]:
        return dict(self.meta.get("best_points") or {})

    def has(self, name: str) -> bool:
        return (self.folder / name).is_file()

    def table(self, name: str) -> list[dict]:
        """The rows of a CSV file of the report (``[]`` where it has none)."""
        if name not in self._tables:
            path = self.folder / name
            rows: list[dict] = []
            if path.is_file():
                with path.open(newline="", encoding="utf-8") as f:
                    rows = list(csv.DictReader(f))
            self._tables[name] = rows
        return self._tables[name]

    def columns(self, name: str) -> list[str]:
        path = self.folder / name
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])

    def _html(self) -> str:
        path = self.folder / "index.html"
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    def description(self) -> str:
        """The suite's description as the report shows it under its title ('' where none)."""
        m = re.search(r"</h1>\s*<p>(.*?)</p>", self._html(), re.S)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).split()) if m else ""

    def lead_figure(self) -> tuple[Path, str] | None:
        """The first figure the report's page shows (its PNG where there is one) and its alt text."""
        for m in re.finditer(r"<img\s[^>]*>", self._html()):
            tag = m.group(0)
            src = re.search(r'src="([^"]+)"', tag)
            if not src or "://" in src.group(1):
                continue
            alt = re.search(r'alt="([^"]*)"', tag)
            path = self.folder / html.unescape(src.group(1))
            png = path.with_suffix(".png")
            path = png if png.is_file() else path
            if path.is_file():
                return path, html.unescape(alt.group(1)) if alt else ""
        return None


def find_reports(reports: Path) -> list[Report]:
    """Every folder of ``reports`` with a ``report.json``, in ``ORDER``."""
    found = []
    for folder in sorted(p for p in Path(reports).iterdir() if (p / "report.json").is_file()):
        meta = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        found.append(Report(folder, meta))
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda r: (rank.get(r.name, len(ORDER)), r.name))


# -- numbers -------------------------------------------------------------------------------------


def value(row: dict, column: str) -> float | None:
    """A CSV cell as a number (None where empty, NaN or not a number)."""
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return None if math.isnan(v) else v


def fmt(v: float | None, digits: int) -> str:
    """``v`` with ``digits`` after the point, thousands separated, a true minus sign; '—' for a
    missing value, 'never' for +inf (a threshold never reached)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    if math.isinf(v):
        return "never" if v > 0 else f"{MINUS}∞"
    text = f"{v:,.{digits}f}"
    if text.startswith("-"):
        text = text[1:] if float(text[1:].replace(",", "")) == 0 else MINUS + text[1:]
    return text


def score_digits(reports: list[Report]) -> dict[str, int]:
    """Per task: the digits its scores are printed with, the same on every page — 3 where every
    mean score of the task (over all reports' leaderboards) lies within ±10, else 1."""
    top: dict[str, float] = {}
    for rep in reports:
        for r in rep.table("leaderboard.csv"):
            v = value(r, "mean")
            if v is not None and not math.isinf(v):
                top[r["task"]] = max(top.get(r["task"], 0.0), abs(v))
    return {task: 3 if m <= 10 else 1 for task, m in top.items()}


def natural_key(name) -> tuple:
    """Sort key that orders the numbers inside names by value (``n=4`` < ``n=16``)."""
    parts = re.split(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)", str(name))
    return tuple((1, float(p), "") if i % 2 else (0, 0.0, p) for i, p in enumerate(parts))


# -- Markdown ------------------------------------------------------------------------------------

_SPECIAL = re.compile(r"([\\`*_~$])")


def text(s) -> str:
    """Plain text safe in a Markdown table cell: no HTML, emphasis, code, links or column breaks."""
    s = " ".join(str(s).split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", s).replace("](", "\\](").replace("|", "\\|")


def code(s) -> str:
    """A run label, method or file name as inline code."""
    s = " ".join(str(s).split())
    if "`" in s:
        return text(s)
    return f"`{s.replace('|', '¦')}`"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def plural(n: float, word: str) -> str:
    return f"{fmt(n, 0)} {word}{'' if n == 1 else 's'}"


def temperature_label(t: float) -> str:
    return f"T = {t:g}"


# -- intervals -----------------------------------------------------------------------------------


@dataclass
class Interval:
    """Where a statistic's interval lives in a table: the point, lo and hi columns and the columns
    that say what the interval is."""

    point: str
    lo: str
    hi: str
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, columns: list[str], stat: str, bare: bool = False) -> Interval | None:
        """``stat`` with ``stat_lo``/``stat_hi`` (or, with ``bare``, ``lo``/``hi``), if the table has
        them, and the annotation columns beside them."""
        lo, hi = ("lo", "hi") if bare else (f"{stat}_lo", f"{stat}_hi")
        if stat not in columns or lo not in columns or hi not in columns:
            return None
        names = ANNOTATIONS if bare else tuple(f"{stat}_{a}" for a in ANNOTATIONS)
        return cls(stat, lo, hi, tuple(c for c in names if c in columns))

    def note(self, row: dict) -> str:
        return ", ".join(str(row.get(c) or "").strip() for c in self.notes if str(row.get(c) or "").strip())

    def shared_note(self, rows: list[dict]) -> str | None:
        """The annotation every row shares ('' where there is none), None where rows differ."""
        notes = {self.note(r) for r in rows}
        return notes.pop() if len(notes) <= 1 else None

    def label(self, rows: list[dict]) -> str:
        """What the interval is, for a header: '[95% CI]' or '[95% CI, t]'."""
        shared = self.shared_note(rows)
        return f"[{describe(shared)}]" if shared else "[95% CI]"

    def cell(self, row: dict, digits: int, rows: list[dict], extra: str = "") -> str:
        """``point [lo, hi]``, with the row's annotation where the table's rows differ in it."""
        p, lo, hi = value(row, self.point), value(row, self.lo), value(row, self.hi)
        if p is None:
            return DASH
        out = fmt(p, digits)
        notes = [extra] if extra else []
        if lo is None or hi is None:
            notes.insert(0, "no interval")
        else:
            out += f" [{fmt(lo, digits)}, {fmt(hi, digits)}]"
        if self.shared_note(rows) is None and self.note(row):
            notes.insert(0, self.note(row))
        return out + (f" ({'; '.join(notes)})" if notes else "")


def describe(note: str) -> str:
    return note if ("%" in note or "CI" in note) else f"95% CI, {note}"


# -- the blocks ----------------------------------------------------------------------------------


@dataclass
class Context:
    """What every block needs besides its report: the digits of each task's scores."""

    digits: dict[str, int]

    def score(self, task: str) -> int:
        return self.digits.get(task, 1)


def final_kl(rep: Report) -> dict[tuple[str, str], tuple[float, bool]]:
    """(task, run label) -> (mean over its done runs of the KL of their last ``frontier.csv``
    point, whether any of those is only a bound)."""
    done = {r["run_key"] for r in rep.table("final_scores.csv")}
    last: dict[str, tuple[float, dict]] = {}
    for r in rep.table("frontier.csv"):
        step = value(r, "step")
        if (done and r["run_key"] not in done) or step is None or value(r, "kl") is None:
            continue
        if r["run_key"] not in last or step >= last[r["run_key"]][0]:
            last[r["run_key"]] = (step, r)
    groups: dict[tuple[str, str], list[dict]] = {}
    for _, r in last.values():
        groups.setdefault((r["task"], r["algorithm"]), []).append(r)
    return {
        key: (
            sum(value(r, "kl") for r in rows) / len(rows),
            any(r.get("kl_is_bound", "").strip().lower() == "true" for r in rows),
        )
        for key, rows in groups.items()
    }


def kl_text(kl: tuple[float, bool] | None) -> str:
    if kl is None:
        return DASH
    return ("≤ " if kl[1] else "") + fmt(kl[0], PRECISION["kl"])


def _tasks(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["task"] for r in rows))


def _by_mean(rows: list[dict]) -> list[dict]:
    def key(r):
        m = value(r, "mean")
        return (m is None, -(m if m is not None else 0.0), natural_key(r["algorithm"]))

    return sorted(rows, key=key)


def _label(rep: Report, label: str) -> str:
    best = set(rep.best_points.values())
    return code(label) + (" (best point)" if label in best and len(best) else "")


def _seconds(v: float | None) -> str:
    return DASH if v is None else ("never" if math.isinf(v) else f"{fmt(v, 0)} s")


def _memory(row: dict) -> str:
    mem, params = value(row, "peak_rss_mb"), value(row, "parameters")
    if mem is None:
        return DASH
    out = f"{fmt(mem, 0)} MiB"
    if params is not None:
        out += f" ({params / 1e6:.2f}M params)" if params >= 1e5 else f" ({fmt(params, 0)} params)"
    return out


def leaderboard_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("leaderboard.csv")
    if not rows:
        return []
    cols = rep.columns("leaderboard.csv")
    iqm = Interval.of(cols, "iqm")
    mean_ci = Interval.of(cols, "mean")
    spread = "sd" if "sd" in cols else "std" if "std" in cols else None
    kls = final_kl(rep)
    thresholds = any(value(r, "threshold") is not None for r in rows)
    out = ["### Final scores", ""]
    out += [
        "From `leaderboard.csv`, one row per run label, highest mean first. Final score: each run's last "
        "evaluation (greedy, or at T = 1 for runs that record a KL to a reference policy). "
        + ("KL: mean over seeds of each run's final KL to the reference, in nats (from `frontier.csv`; "
           "≤ marks an upper bound). " if kls else "")
        + ("Env steps (of training), wall time, env-steps/s" if thresholds else "Wall time")
        + " and peak memory: medians over a label's runs.",
        "",
    ]  # fmt: skip
    for task in _tasks(rows):
        part = _by_mean([r for r in rows if r["task"] == task])
        d = ctx.score(task)
        threshold = next((value(r, "threshold") for r in part if value(r, "threshold") is not None), None)
        failed = any((value(r, "failed") or 0) or (value(r, "unfinished") or 0) for r in part)
        has_kl = any((task, r["algorithm"]) in kls for r in part)
        header = ["run label", "seeds"]
        header += ["failed"] if failed else []
        header += [f"mean ± {spread}"] if spread else ["mean"]
        header += [f"mean {mean_ci.label(part)}"] if mean_ci else []
        header += [f"IQM {iqm.label(part)}"] if iqm else []
        header += ["KL"] if has_kl else []
        if threshold is not None:
            header += ["env steps", "reached", "steps to threshold, median [95% CI]", "env-steps/s"]
        header += ["wall time per run", "peak memory per run"]
        body = []
        for r in part:
            seeds = value(r, "seeds") or 0
            cells = [_label(rep, r["algorithm"]), fmt(seeds, 0)]
            if failed:
                un = value(r, "unfinished") or 0
                cells.append(fmt(value(r, "failed") or 0, 0) + (f", {fmt(un, 0)} unfinished" if un else ""))
            m = value(r, "mean")
            if spread:
                s = value(r, spread)
                cells.append(DASH if m is None else fmt(m, d) + ("" if s is None else f" ± {fmt(s, d)}"))
            else:
                cells.append(fmt(m, d))
            cells += [mean_ci.cell(r, d, part)] if mean_ci else []
            cells += [iqm.cell(r, d, part)] if iqm else []
            cells += [kl_text(kls.get((task, r["algorithm"])))] if has_kl else []
            if threshold is not None:
                reached = value(r, "reached")
                cells.append(fmt(value(r, "env_steps"), 0))
                cells.append(DASH if reached is None or not seeds else f"{fmt(reached, 0)}/{fmt(seeds, 0)}")
                st, lo, hi = (value(r, c) for c in ("steps_to_threshold", "steps_to_threshold_lo",
                                                    "steps_to_threshold_hi"))  # fmt: skip
                steps = fmt(st, 0)
                if st is not None and lo is not None and hi is not None and not (lo == hi == st):
                    steps += f" [{fmt(lo, 0)}, {fmt(hi, 0)}]"
                cells.append(steps)
                cells.append(fmt(value(r, "env_steps_per_s"), 0))
            cells += [_seconds(value(r, "wall_time_s")), _memory(r)]
            body.append(cells)
        out += [f"#### {text(task)}", ""]
        if threshold is not None:
            out += [f"Threshold {fmt(threshold, d)}.", ""]
        out += table(header, body) + [""]
    return out


def best_points_section(rep: Report, ctx: Context) -> list[str]:
    """The best point of each method on every task (multi-task suites with sweeps)."""
    best = rep.best_points
    rows = rep.table("leaderboard.csv")
    tasks = _tasks(rows)
    if not best or len(tasks) < 2:
        return []
    kls = final_kl(rep)
    spread = "sd" if "sd" in rep.columns("leaderboard.csv") else "std"
    cell_of = {(r["task"], r["algorithm"]): r for r in rows}
    body = []
    for method in sorted(best, key=natural_key):
        label = best[method]
        cells = [code(method), code(label)]
        for task in tasks:
            r = cell_of.get((task, label))
            m = None if r is None else value(r, "mean")
            if m is None:
                cells.append(DASH)
                continue
            s = value(r, spread)
            c = fmt(m, ctx.score(task)) + ("" if s is None else f" ± {fmt(s, ctx.score(task))}")
            if (task, label) in kls:
                c += f" (KL {kl_text(kls[(task, label)])})"
            cells.append(c)
        body.append(cells)
    return [
        "### Best points on every task",
        "",
        f"Each method at its best point (`report.json`), final score mean ± {spread} over seeds"
        + (" and its mean final KL to the reference" if kls else "")
        + "; the same rows are marked *(best point)* in the tables above.",
        "",
        *table(["method", "best point", *[text(t) for t in tasks]], body),
        "",
    ]


def aggregate_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("aggregate.csv")
    if not rows:
        return []
    cols = rep.columns("aggregate.csv")
    if "leads" in cols:
        rows = [r for r in rows if r.get("leads", "").strip().lower() == "true"] or rows
    stats = [(s, h) for s, h in (("iqm", "IQM"), ("mean", "mean"), ("median", "median"),
                                  ("optimality_gap", "optimality gap")) if Interval.of(cols, s)]  # fmt: skip
    rows = sorted(rows, key=lambda r: (-(value(r, stats[0][0]) or 0.0), natural_key(r["algorithm"])))
    header = ["run label", "runs", "tasks"] + [f"{h} {Interval.of(cols, s).label(rows)}" for s, h in stats]
    body = []
    for r in rows:
        cells = [_label(rep, r["algorithm"]), fmt(value(r, "runs"), 0), fmt(value(r, "tasks"), 0)]
        cells += [Interval.of(cols, s).cell(r, PRECISION["normalised"], rows) for s, _ in stats]
        body.append(cells)
    which = " (the best point of each method)" if rep.best_points else ""
    return [
        "### Aggregate over tasks",
        "",
        f"From `aggregate.csv`{which}: normalised scores (0 = random policy, 1 = solved) over the tasks "
        "every run label finished.",
        "",
        *table(header, body),
        "",
    ]


def claims_section(rep: Report, ctx: Context) -> list[str]:
    from bench.report.tables import replication_cell

    rows = rep.table("claims.csv")
    if not rows:
        return []
    from bench.claims import short_paper

    body = [[short_paper(r.get("paper")), text(r.get("task", "")), text(r.get("claim", "")),
             f"**{text(r.get('verdict', ''))}**",
             replication_cell(r), text(r.get("measured", ""))] for r in rows]  # fmt: skip
    caveats = {}  # task -> the caveats that stand beside its verdicts (model size, gold, data, baseline)
    for r in rows:
        if r.get("caveats"):
            caveats.setdefault(r.get("task", ""), r["caveats"])
    return [
        "### Paper claims, measured",
        "",
        "From `claims.csv` (the report states the rule each verdict follows; differences with their "
        "95% CIs and their kind).",
        "",
        *[f"**Caveats, {text(t)}:** {text(c)}\n" for t, c in caveats.items()],
        *table(["paper", "task", "claim", "verdict", "replicates (predicted)", "measured"], body),
        "",
    ]


def scaling_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("scaling.csv")
    if not rows:
        return []
    header = ["task", "method", "workers", "runs", "env-steps/s, mean (min–max)", "wall time per run, mean "
              "(min–max)", "speed-up", "efficiency", "reached", "time to threshold, train / wall (median)",
              "steps to threshold (median)"]  # fmt: skip
    body = []
    for r in sorted(rows, key=lambda r: (r["task"], natural_key(r["method"]), value(r, "workers") or 0)):
        runs, reached = value(r, "runs"), value(r, "reached")

        def span(c, lo, hi, unit="", r=r):
            return f"{fmt(value(r, c), 0)}{unit} ({fmt(value(r, lo), 0)}–{fmt(value(r, hi), 0)}{unit})"

        ratio = PRECISION["ratio"]
        speed = value(r, "speedup")
        body.append([
            text(r["task"]), code(r["method"]), fmt(value(r, "workers"), 0), fmt(runs, 0),
            span("env_steps_per_s", "sps_min", "sps_max"), span("wall_time", "wall_min", "wall_max", " s"),
            DASH if speed is None else f"{fmt(speed, ratio)}×", fmt(value(r, "efficiency"), ratio),
            DASH if reached is None else f"{fmt(reached, 0)}/{fmt(runs, 0)}",
            f"{_seconds(value(r, 'train_to_threshold_s'))} / {_seconds(value(r, 'wall_to_threshold_s'))}",
            fmt(value(r, "steps_to_threshold"), 0),
        ])  # fmt: skip
    return [
        "### Scaling with workers",
        "",
        "From `scaling.csv`: training throughput (env steps per second of training) and wall time over "
        "seeds; speed-up over the same method with one worker, efficiency = speed-up / workers; the time "
        "and env steps until the greedy evaluation first reaches the task's threshold, median over seeds "
        "(never where half the seeds never reach it).",
        "",
        *table(header, body),
        "",
    ]


def _matrix(
    rep: Report, name: str, key: str, columns: str, digits, intro: str, title: str, labels=None, extra=None
) -> list[str]:
    """Per task: one row per ``key`` value, one column per ``columns`` value, cells the row's
    ``mean [lo, hi]`` (``digits(task)`` decimals)."""
    rows = rep.table(name)
    cols = rep.columns(name)
    ci = Interval.of(cols, "mean", bare=True)
    if not rows or ci is None:
        return []
    out = [title, "", intro, ""]
    for task in _tasks(rows):
        part = [r for r in rows if r["task"] == task and (labels is None or r[key] in labels)]
        if not part:
            continue
        levels = sorted({value(r, columns) for r in part if value(r, columns) is not None})
        cell = {(r[key], value(r, columns)): r for r in part}
        head = "run label" if key == "algorithm" else key
        header = [f"{head} (cells: mean {ci.label(part)})"]
        header += [temperature_label(v) if columns == "temperature" else extra["header"](v) for v in levels]
        body = []
        for k in sorted({r[key] for r in part}, key=natural_key):
            cells = [_label(rep, k) if key == "algorithm" else code(k)]
            for v in levels:
                r = cell.get((k, v))
                more = extra["cell"](r) if (extra and r is not None) else ""
                cells.append(DASH if r is None else ci.cell(r, digits(task), part, more))
            body.append(cells)
        out += [f"#### {text(task)}", "", *table(header, body), ""]
    return out


def temperature_section(rep: Report, ctx: Context) -> list[str]:
    best = set(rep.best_points.values())
    which = "each method's best point" if best else "each run label"
    return _matrix(
        rep, "temperature.csv", "algorithm", "temperature", ctx.score,
        f"From `temperature.csv`: final score of {which} at each sampling temperature, mean over seeds.",
        "### Score against sampling temperature", labels=best or None,
    )  # fmt: skip


def win_rate_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("win_rates.csv")
    extra = {"cell": lambda r: "", "header": None}
    if rows:
        counts = {(value(r, "runs"), value(r, "prompts")) for r in rows}
        if len(counts) > 1:  # say per cell how many seeds and prompts a rate is over
            extra["cell"] = lambda r: f"{fmt(value(r, 'runs'), 0)} × {fmt(value(r, 'prompts'), 0)}"
    over = ""
    if rows and len({(value(r, "runs"), value(r, "prompts")) for r in rows}) == 1:
        over = f" ({fmt(value(rows[0], 'runs'), 0)} seeds × {fmt(value(rows[0], 'prompts'), 0)} test prompts)"
    return _matrix(
        rep, "win_rates.csv", "algorithm", "temperature", lambda task: PRECISION["rate"],
        "From `win_rates.csv`: win rate against the reference completions by the gold reward (wins + ½ ties) "
        f"at each sampling temperature, mean over seeds and test prompts{over}.",
        "### Win rate against the references", extra=extra,
    )  # fmt: skip


def kl_budget_section(rep: Report, ctx: Context) -> list[str]:
    seeds = {value(r, "seeds") for r in rep.table("kl_budgets.csv") if value(r, "seeds")}
    extra = {"header": lambda v: f"KL ≤ {v:g}", "cell": lambda r: ""}
    over = "the seeds that have one"
    if len(seeds) == 1:
        over += f" (all {fmt(seeds.pop(), 0)} where there is one)"
    else:  # say per cell how many seeds a mean is over
        extra["cell"] = lambda r: "" if not value(r, "seeds") else plural(value(r, "seeds"), "seed")
    return _matrix(
        rep, "kl_budgets.csv", "method", "kl_budget", ctx.score,
        "From `kl_budgets.csv`: the best final score a method reaches within each KL budget (per seed "
        "the best checkpoint over all of the method's sweep points with KL at most the budget), mean "
        f"over {over}; — where no checkpoint is within the budget.",
        "### Best score within a KL budget", extra=extra,
    )  # fmt: skip


def data_efficiency_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("data_efficiency.csv")
    cols = rep.columns("data_efficiency.csv")
    ci = Interval.of(cols, "mean", bare=True)
    if not rows or ci is None:
        return []
    tasks = _tasks(rows)
    cell = {(r["method"], value(r, "n_pairs"), r["task"]): r for r in rows}
    keys = sorted({(r["method"], value(r, "n_pairs")) for r in rows}, key=lambda k: (natural_key(k[0]), k[1]))
    body = []
    for method, pairs in keys:
        cells = [code(method), fmt(pairs, 0)]
        for task in tasks:
            r = cell.get((method, pairs, task))
            cells.append(DASH if r is None else ci.cell(r, ctx.score(task), rows))
        body.append(cells)
    return [
        "### Data efficiency",
        "",
        "From `data_efficiency.csv`: final score against the number of training preference pairs, mean over "
        f"seeds {ci.label(rows)}.",
        "",
        *table(["method", "preference pairs", *[text(t) for t in tasks]], body),
        "",
    ]


def kl_span_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("kl_span.csv")
    if not rows:
        return []
    body = []
    for r in sorted(rows, key=lambda r: (r["task"], natural_key(r["method"]))):
        bound = "≤ " if r.get("kl_is_bound", "").strip().lower() == "true" else ""
        ratio = value(r, "ratio")
        body.append([
            text(r["task"]), code(r["method"]), fmt(value(r, "points"), 0),
            bound + fmt(value(r, "kl_min"), PRECISION["kl"]),
            bound + fmt(value(r, "kl_max"), PRECISION["kl"]),
            DASH if ratio is None else f"{fmt(ratio, PRECISION['ratio'])}×",
        ])  # fmt: skip
    return [
        "### KL span of each sweep",
        "",
        "From `kl_span.csv`: how many sweep points each method ran and the range of their mean final KL to "
        "the reference (nats).",
        "",
        *table(["task", "method", "sweep points", "lowest KL", "highest KL", "highest / lowest"], body),
        "",
    ]


def reward_model_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("reward_models.csv")
    cols = rep.columns("reward_models.csv")
    ci = Interval.of(cols, "accuracy", bare=True)
    if not rows or ci is None:
        return []
    d = PRECISION["accuracy"]
    body = [[text(r["task"]), fmt(value(r, "n_pairs"), 0), fmt(value(r, "models"), 0), ci.cell(r, d, rows),
             fmt(value(r, "gold_accuracy"), d), fmt(value(r, "heldout_pairs"), 0)] for r in rows]  # fmt: skip
    return [
        "### Reward models",
        "",
        "From `reward_models.csv`: held-out preference accuracy of the learned reward models (mean over "
        "models), and the gold reward's accuracy on the same held-out pairs.",
        "",
        *table(
            [
                "task",
                "training pairs",
                "models",
                f"held-out accuracy {ci.label(rows)}",
                "gold accuracy",
                "held-out pairs",
            ],
            body,
        ),  # fmt: skip
        "",
    ]


def published_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("published.csv")
    if not rows:
        return []
    body = []
    for r in rows:
        d = ctx.score(r.get("task", ""))
        s, sd = value(r, "score"), value(r, "std")
        body.append([
            text(r.get("task", "")), text(r.get("source", "")), code(r.get("algorithm", "")),
            fmt(value(r, "budget"), 0), fmt(s, d) + ("" if sd is None else f" ± {fmt(sd, d)}"),
            fmt(value(r, "seeds"), 0), text(r.get("note", "")),
        ])  # fmt: skip
    return [
        "### Published reference results",
        "",
        "From `published.csv`: results published elsewhere that the report draws beside its own.",
        "",
        *table(["task", "source", "algorithm", "budget", "score ± std", "runs", "note"], body),
        "",
    ]


def overoptimization_section(rep: Report, ctx: Context) -> list[str]:
    rows = rep.table("overoptimization.csv")
    if not rows:
        return []

    def cell(r, name, short=None):
        short = short or name
        v, lo, hi = value(r, name), value(r, f"{short}_lo"), value(r, f"{short}_hi")
        if v is None:
            return DASH
        return f"{v:.3g}" + (f" [{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else "")

    body = [[text(r["task"]), code(r["series"]), text(r["form"]), text(r["kl"]), fmt(value(r, "seeds"), 0),
             cell(r, "alpha"), cell(r, "beta"), cell(r, "r2_heldout", "r2"), cell(r, "d_star"),
             fmt(value(r, "d_max"), 2)] for r in rows]  # fmt: skip
    return [
        "### Reward-model over-optimisation",
        "",
        "From `overoptimization.csv` (Gao, Schulman & Hilton 2023): the gold gain over π_init against "
        "d = √KL fitted per seed by d (α − β d) (Best-of-N) or d (α − β ln d) (RL), means over seeds with "
        "95% t intervals; held-out R²: fitted on the points with d at or below the median, scored on the "
        "rest; d*: where the fitted gold peaks (beyond the largest d measured when it exceeds it). The "
        "report's figure draws gold and proxy against d.",
        "",
        *table(
            ["task", "series", "gold form", "KL", "seeds", "α", "β", "held-out R²", "d*", "largest d"], body
        ),  # fmt: skip
        "",
    ]


def notes_section(rep: Report, ctx: Context) -> list[str]:
    path = rep.folder / "notes.txt"
    if not path.is_file():
        return []
    body = path.read_text(encoding="utf-8").strip()
    body = body.replace("<", "&lt;").replace("](", "\\](")
    return ["### Findings published with the report", "", "From `notes.txt`, as the report shows them:", "",
            body, ""]  # fmt: skip


def replication_section(rep: Report, ctx: Context) -> list[str]:
    """``bench replicate``'s pages beside the report (``replication/``, ``replication-NAME/``), each
    when it was made against these very results (its digest of ``final_scores.csv`` is the
    report's): the verdict, the seeds and machines, every claim, and the rows that differ."""
    from bench.report.tables import finals_digest, replication_folders

    finals = rep.folder / "final_scores.csv"
    if not finals.is_file():
        return []
    lines = []
    for folder in replication_folders(rep.folder):
        info = json.loads((folder / "replication.json").read_text(encoding="utf-8"))
        if info.get("published_finals_sha256") == finals_digest(finals):
            lines += _replication_lines(rep, ctx, folder.name, info)
    return lines


def _replication_lines(rep: Report, ctx: Context, name: str, info: dict) -> list[str]:
    def get(key: str) -> str:
        v = info.get(key, DASH)
        return ", ".join(str(x) for x in v) if isinstance(v, list) else text(v)

    from bench.report.tables import replication_title

    lines = [f"### {replication_title(info)}", "",
             f"From `reports/{rep.name}/{name}/` (`bench replicate`, {get('generated')}): published "
             f"seeds {get('published_seeds')}, here seeds {get('seeds')}; machines published: "
             f"{get('machines_published')}; here: {get('machines_here')}. Rows are compared at a margin of "
             f"{get('margin')} of the task's scale.", "",
             f"**{get('verdict')}**", ""]  # fmt: skip
    claims = rep.table(f"{name}/claims.csv")
    if claims:
        rows = [[text(c["task"]), text(c["claim"]), text(c["published"]), text(c["here"]), text(c["status"])]
                for c in claims]  # fmt: skip
        lines += table(["task", "claim", "published", "here", "replicated"], rows) + [""]
    differ = [r for r in rep.table(f"{name}/rows.csv") if r.get("status") == "differs"]
    if differ:

        def num(r: dict, column: str) -> str:
            return fmt(value(r, column), ctx.score(r["task"]))

        rows = [[text(r["task"]), code(r["algorithm"]), num(r, "published_mean"), num(r, "here_mean"),
                 f"{num(r, 'difference')} [{num(r, 'diff_lo')}, {num(r, 'diff_hi')}]", text(r["interval"])]
                for r in differ]  # fmt: skip
        lines += ["Rows that differ:", "",
                  *table(["task", "run label", "published mean", "here mean", "here − published [95% CI]",
                          "interval"], rows), ""]  # fmt: skip
    return lines


SECTIONS = (
    leaderboard_section, best_points_section, aggregate_section, claims_section, scaling_section,
    win_rate_section, temperature_section, kl_span_section, kl_budget_section, data_efficiency_section,
    reward_model_section, overoptimization_section, published_section, replication_section, notes_section,
)  # fmt: skip


def figure_name(rep: Report) -> str | None:
    lead = rep.lead_figure()
    return None if lead is None else f"{rep.name}-{lead[0].name}"


def suite_line(rep: Report) -> str:
    prov = rep.meta.get("provenance") or {}
    parts = [f"Suite `{rep.name}`"]
    if prov.get("suite version"):
        parts[0] += f" version {prov['suite version']}"
    if prov.get("suite hash"):
        parts[0] += f" (definition hash {str(prov['suite hash'])[:12]})"
    if prov.get("runs"):
        parts.append(f"runs: {text(prov['runs'])}")
    if rep.meta.get("generated"):
        parts.append(f"report generated {text(rep.meta['generated'])}")
    return "; ".join(parts) + "."


def suite_block(rep: Report, ctx: Context) -> str:
    """The generated block of a suite's page, markers included."""
    where = f"reports/{rep.name}/"
    lines = [
        BEGIN,
        "",
        "## From the report",
        "",
        f'!!! info "Generated from `{where}`"',
        f"    The tables and the figure of this block are written by `{COMMAND}` from the published",
        f"    report in `{where}` (`report.json` and its CSV files); edit the report, not this block.",
        f"    The full report, with every figure, is `{where}index.html` in the repository.",
        "",
    ]
    desc = rep.description()
    lines += ([text(desc), ""] if desc else []) + [suite_line(rep), ""]
    lead, name = rep.lead_figure(), figure_name(rep)
    if lead is not None:
        alt = text(lead[1] or f"{rep.name}: lead figure").replace("[", "(").replace("]", ")")
        lines += [f"![{alt}]({FIGURES}/{name})", ""]
    if rep.best_points:
        rule = rep.meta.get("best_point_rule") or "not stated"
        points = sorted(rep.best_points.items(), key=lambda kv: natural_key(kv[0]))
        listed = ", ".join(f"{code(m)} → {code(label)}" for m, label in points)
        lines += [f"**Best points.** The report's rule: {text(rule)}. Best points: {listed}.", ""]
    for section in SECTIONS:
        lines += section(rep, ctx)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join([*lines, "", END])


def index_block(reports: list[Report]) -> str:
    body = []
    for rep in reports:
        prov = rep.meta.get("provenance") or {}
        body.append([f"[{rep.name}]({rep.name}.md)", text(rep.description() or DASH),
                     text(prov.get("suite version", DASH)), text(prov.get("runs", DASH)),
                     text(rep.meta.get("generated", DASH))])  # fmt: skip
    return "\n".join([
        BEGIN, "",
        f"One page per published report in `reports/`, generated by `{COMMAND}`.", "",
        *table(["suite", "what it compares", "version", "runs", "report generated"], body), "",
        END,
    ])  # fmt: skip


# -- pages ---------------------------------------------------------------------------------------


def extract(page: str) -> str | None:
    """The generated block of a page, markers included (None where it has none)."""
    if page.count(BEGIN) != 1 or page.count(END) != 1:
        return None
    b, e = page.index(BEGIN), page.index(END)
    return page[b : e + len(END)] if b < e else None


def splice(page: str, block: str) -> str:
    """``page`` with its generated block replaced by ``block``; the rest stays byte for byte."""
    if extract(page) is None:
        raise ValueError(f"a page needs exactly one {BEGIN!r} followed by one {END!r}")
    b, e = page.index(BEGIN), page.index(END) + len(END)
    return page[:b] + block + page[e:]


def new_page(title: str, block: str) -> str:
    return (
        f"# {title}\n\n{block}\n\n## Notes on the measurement\n\n"
        "*Hand-written: how the suite was run, on which machine, and what to read into the tables.*\n"
    )


def render(reports_dir: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """The generated block of every page (file name -> block) and the figures to copy (file name
    under ``figures/`` -> source)."""
    reports = find_reports(Path(reports_dir))
    ctx = Context(score_digits(reports))
    blocks = {INDEX: index_block(reports)}
    figures = {}
    for rep in reports:
        blocks[f"{rep.name}.md"] = suite_block(rep, ctx)
        lead = rep.lead_figure()
        if lead is not None:
            figures[figure_name(rep)] = lead[0]
    return blocks, figures


def _pages(blocks: dict[str, str], out: Path) -> dict[str, str]:
    """The full text of each page with its new block."""
    pages = {}
    for name, block in blocks.items():
        path = out / name
        if path.is_file():
            pages[name] = splice(path.read_text(encoding="utf-8"), block)
        else:
            title = "Results" if name == INDEX else f"`{name[:-3]}`"
            pages[name] = new_page(title, block)
    return pages


def stale(reports_dir: Path, out: Path) -> list[str]:
    """What differs between the committed pages in ``out`` and the reports: pages whose block is
    missing or differs, figures missing or different, generated pages without a report."""
    blocks, figures = render(reports_dir)
    problems = []
    for name, block in blocks.items():
        path = out / name
        have = extract(path.read_text(encoding="utf-8")) if path.is_file() else None
        if have != block:
            problems.append(f"{path}: generated block {'missing' if have is None else 'out of date'}")
    for name, src in figures.items():
        dst = out / FIGURES / name
        if not dst.is_file() or dst.read_bytes() != src.read_bytes():
            problems.append(f"{dst}: missing or not the report's figure")
    for path in sorted(out.glob("*.md")):
        if path.name not in blocks and BEGIN in path.read_text(encoding="utf-8"):
            problems.append(f"{path}: has a generated block but no report folder")
    if (out / FIGURES).is_dir():
        problems += [
            f"{p}: not a lead figure" for p in sorted((out / FIGURES).iterdir()) if p.name not in figures
        ]
    return problems


def write(reports_dir: Path, out: Path) -> list[Path]:
    """(Re)writes the generated blocks and lead figures under ``out``; returns the files changed.
    Figures under ``out/figures`` that no report leads with are removed."""
    out = Path(out)
    blocks, figures = render(reports_dir)
    pages = _pages(blocks, out)
    changed = []
    out.mkdir(parents=True, exist_ok=True)
    for name, page in pages.items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != page:
            path.write_text(page, encoding="utf-8")
            changed.append(path)
    fig_dir = out / FIGURES
    fig_dir.mkdir(exist_ok=True)
    for name, src in figures.items():
        dst = fig_dir / name
        if not dst.is_file() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
            changed.append(dst)
    for path in sorted(fig_dir.iterdir()):
        if path.name not in figures:
            path.unlink()
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report.results_pages",
        description="Write the docs' results pages (their generated blocks and lead figures) from the "
        "published reports.",
    )
    parser.add_argument("out", nargs="?", default="docs/results", help="the pages' folder (docs/results)")
    parser.add_argument("--reports", default="reports", help="the published reports' folder (reports)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(Path(args.reports), Path(args.out))
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    for path in write(Path(args.reports), Path(args.out)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
