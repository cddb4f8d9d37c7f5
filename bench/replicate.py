"""``bench replicate``: re-derive a published report's verdicts on a fresh, disjoint seed set.

A report folder (``bench report``'s output) holds what a replication needs: ``report.json`` names
the suite and its version and hash, ``final_scores.csv`` each run's final score by seed, and
``claims.csv`` each claim's verdict with the difference it rests on. ``bench replicate`` re-runs
the suite (or the part a claim, an algorithm or a task needs) on seeds the report did not use, in
a store of its own, then judges

* **claims**: the verdict here against the published one — ``replicated`` (the same decisive
  verdict), ``not replicated`` (the other decisive verdict), ``inconclusive`` (undecided on either
  side) — beside the chance of replicating that the published difference and spread predict
  (``stats.replication_probability``), so a miss is read against what was to be expected;
* **leaderboard rows**: the mean final score here against the published seeds' (Welch, the seed
  sets are disjoint): ``consistent`` where two one-sided tests put the difference inside ±margin
  (equivalence), ``differs`` where the 95% interval excludes 0 and equivalence is not shown,
  ``inconclusive`` otherwise; beside the chance of showing equivalence that the published spread
  predicts when nothing changed (``stats.equivalence_probability``).

The margin is a fraction (``--margin``, default 0.1) of the task's scale: its random-to-solved
range where the task declares one, else the spread of the published rows' means on that task.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import stats
from bench.claims import claims_table
from bench.report.tables import finals_digest, machine_kinds_in, number_in
from bench.results import Results, final_scores, machine_kinds, method_of, task_scale
from bench.safeio import csv_text

CLAIM_COLUMNS = [
    "task", "claim", "published", "here", "status", "p_predicted", "seeds_published", "seeds_here",
    "published_measured", "measured_here",
]  # fmt: skip
ROW_COLUMNS = [
    "task", "algorithm", "published_mean", "published_sd", "published_seeds", "here_mean", "here_sd",
    "here_seeds",
    "difference", "diff_lo", "diff_hi", "interval", "margin", "eq_lo", "eq_hi", "status", "p_consistent",
]  # fmt: skip
DECISIVE = ("holds", "does not hold")


class ReplicationError(Exception):
    """A report folder or a selection that cannot be replicated (one line)."""


@dataclass
class Published:
    """What a report folder states."""

    folder: Path
    suite: str
    version: str
    hash: str
    finals: pd.DataFrame  # task, algorithm, seed, score
    claims: pd.DataFrame  # claims.csv (empty where the report has none)
    machines: str  # the report's provenance line ("not recorded" for reports before fingerprints)

    @property
    def seeds(self) -> list[int]:
        return sorted({int(s) for s in self.finals.seed})


def read_published(folder: str | Path) -> Published:
    folder = Path(folder)
    meta = folder / "report.json"
    if not meta.is_file():
        raise ReplicationError(f"{folder}: not a bench report folder (no report.json)")
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        prov = info.get("provenance") or {}
        suite = str(info["suite"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ReplicationError(f"{meta}: unreadable ({type(e).__name__})") from None
    finals_path = folder / "final_scores.csv"
    if not finals_path.is_file():
        raise ReplicationError(f"{folder}: no final_scores.csv (re-render the report with this bench)")
    try:
        finals = pd.read_csv(finals_path, dtype={"run_key": str})
        claims = pd.read_csv(folder / "claims.csv") if (folder / "claims.csv").is_file() else pd.DataFrame()
    except (ValueError, OSError) as e:
        raise ReplicationError(f"{folder}: unreadable table ({e})") from None
    keys = folder / "base_keys.csv"  # written by reports since base keys were published
    if keys.is_file() and "run_key" in finals.columns:
        try:
            base = pd.read_csv(keys, dtype=str)[["run_key", "base_key"]]
            finals = finals.merge(base, on="run_key", how="left")
        except (ValueError, OSError, KeyError) as e:
            raise ReplicationError(f"{keys}: unreadable ({type(e).__name__})") from None
    missing = {"task", "algorithm", "seed", "score"} - set(finals.columns)
    if missing or finals.empty:
        what = f"missing columns {', '.join(sorted(missing))}" if missing else "no rows"
        raise ReplicationError(f"{finals_path}: {what}")
    return Published(
        folder, suite, str(prov.get("suite version", "")), str(prov.get("suite hash", "")), finals,
        claims, str(prov.get("machines", "not recorded")),
    )  # fmt: skip


def same_runs(pub: Published, suite) -> bool:
    """Whether ``suite`` at the report's seeds runs exactly the runs the report shows: every
    published run's base key (its identity without code: label, task, seed, budget, config,
    evaluation, artifact recipe; the report's base_keys.csv) is the key of the suite's run of that
    label, task and seed. True where a definition hash moved with the schema's defaults, not with
    the definition; False for a report rendered before reports wrote base keys."""
    from bench.suite import expand

    finals = pub.finals
    if "base_key" not in finals.columns or finals.base_key.isna().any() or (finals.base_key == "").any():
        return False
    specs = expand(suite.model_copy(update={"seeds": pub.seeds}))
    mine = {(s.task, s.label, s.seed): s.base_key for s in specs}
    return all(
        mine.get((r.task, r.algorithm, int(r.seed))) == r.base_key
        for r in finals[["task", "algorithm", "seed", "base_key"]].itertuples(index=False)
    )


def new_kinds(published: Published, runs: pd.DataFrame) -> list[str]:
    """The machine kinds ``runs`` ran on that the report's runs did not (none where the report
    recorded no kinds: nothing to tell them apart by)."""
    theirs = machine_kinds_in(published.machines)
    return sorted({k for k in machine_kinds(runs).split(", ") if k} - theirs) if theirs else []


def default_output(published: Published, runs: pd.DataFrame, seeds: list[int]) -> Path:
    """Where a replication's page goes by default: ``REPORT/replication``; ``REPORT/replication-KIND``
    when ``runs`` (the replication's) were made on machine kinds the report's were not; and, where
    that folder already holds a replication of other seeds, ``...-seeds-FIRST-LAST`` beside it, so
    that no replication overwrites another."""
    name = "replication" + "".join(f"-{k}" for k in new_kinds(published, runs))
    there = page_seeds(published.folder / name)
    other = there is not None and there != sorted(seeds)
    return published.folder / (name + (f"-seeds-{min(seeds)}-{max(seeds)}" if other and seeds else ""))


def page_seeds(folder: Path) -> list[int] | None:
    """The seeds of the replication page in ``folder`` (its ``replication.json``), sorted; None where
    there is no readable page."""
    try:
        info = json.loads((Path(folder) / "replication.json").read_text(encoding="utf-8"))
        return sorted(int(s) for s in info.get("seeds", []))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def replicated_seeds(folder: Path) -> list[int]:
    """The seeds the replications already beside a report ran (``replication*/replication.json``)."""
    from bench.report.tables import replication_folders

    return sorted({s for sub in replication_folders(folder) for s in page_seeds(sub) or []})


def resumed_seeds(store_path: Path, suite, published: list[int]) -> list[int] | None:
    """The fresh seeds a replication's store already holds this suite under (same definition but for
    the seeds, none of them the report's), so that the same command resumes or judges again the
    same seed set; None where the store has no such suite."""
    from bench.store import Store, StoreError

    if not Path(store_path).is_file():
        return None
    try:
        row = Store(store_path, create=False).suite_row(suite.name)
        seeds = [int(x) for x in json.loads(row[5]).get("seeds", [])] if row else []
    except (StoreError, OSError, ValueError, TypeError, AttributeError):
        return None
    if not seeds or set(seeds) & set(published) or suite.model_copy(update={"seeds": seeds}).hash() != row[2]:
        return None
    return seeds


def fresh_seeds(
    published: list[int], suite_seeds: list[int], n: int, start: int | None = None, taken: list[int] = ()
) -> list[int]:
    """``n`` seeds the report did not use: from ``start``, or from one past the largest seed the
    suite, the report or an earlier replication (``taken``) names, so that each replication beside a
    report is a seed set of its own."""
    first = max([*published, *suite_seeds, *taken]) + 1 if start is None else start
    seeds = list(range(first, first + n))
    clash = sorted(set(seeds) & set(published))
    if clash:
        raise ReplicationError(
            f"seeds {', '.join(map(str, clash))} were used by the report: choose disjoint seeds"
        )
    return seeds


def claim_methods(claims: list[str]) -> set[str]:
    """The methods (run labels without their grid suffix) the named claims (their statements as
    tables print them, or their ids) compare, with the baselines they measure against, and π_SFT."""
    from bench import claims as registry

    out = {"sft"}
    for claim in registry.load():
        if claim.id in claims or claim.statements() & set(claims):
            out |= claim.methods()
    return out


def select(labels: list[str], patterns: list[str]) -> set[str]:
    """The labels matching any pattern: a label, a method (``dpo`` for every ``dpo[...]``) or a
    shell pattern; a pattern that matches nothing is an error."""
    out = set()
    for pattern in patterns:
        hit = {
            lab
            for lab in labels
            if lab == pattern or method_of(lab) == pattern or fnmatch.fnmatch(lab, pattern)
        }
        if not hit:
            raise ReplicationError(f"--algorithms {pattern!r} matches no run label of the suite")
        out |= hit
    return out


def pick_claims(claims: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """The published claims whose text contains one of ``wanted`` (case-insensitive)."""
    if claims.empty:
        raise ReplicationError("--claims: the report has no claims")
    keep = pd.Series(False, index=claims.index)
    for w in wanted:
        hit = claims.claim.str.contains(w, case=False, regex=False)
        if not hit.any():
            known = "; ".join(sorted(set(claims.claim)))
            raise ReplicationError(f"--claims {w!r} matches no claim of the report (its claims: {known})")
        keep |= hit
    return claims[keep]


def _kind(verdict) -> str:
    return str(verdict).split(":")[0].strip() if isinstance(verdict, str) else ""


def judge_claims(published: pd.DataFrame, here: pd.DataFrame, seeds_here: int) -> pd.DataFrame:
    """One row per published claim: its verdict there and here, the status and the chance of
    replicating it at ``seeds_here`` seeds that the published difference and spread predict."""
    rows = []
    found = {(r.task, r.claim): r for r in here.itertuples()} if len(here) else {}
    for r in published.to_dict("records"):
        new = found.get((r["task"], r["claim"]))
        pub_kind, new_kind = _kind(r["verdict"]), _kind(new.verdict) if new is not None else ""
        if new is None:
            status = "not measured here"
        elif pub_kind not in DECISIVE:
            status = "inconclusive" + (f" in the report (here: {new_kind})" if new_kind in DECISIVE else "")
        elif new_kind not in DECISIVE:
            status = "inconclusive here"
        else:
            status = "replicated" if new_kind == pub_kind else "not replicated"
        seeds = number_in(r, "seeds")
        p = math.nan
        if pub_kind in DECISIVE and str(r.get("rule", "")) in stats.RULES and seeds >= 2:
            if int(seeds) == seeds_here and not math.isnan(number_in(r, "p_replicate")):
                p = number_in(r, "p_replicate")  # the report's own figure (all the differences it rests on)
            else:
                p = stats.replication_probability(
                    number_in(r, "effect"),
                    number_in(r, "se"),
                    number_in(r, "df"),
                    int(seeds),
                    r["rule"],
                    seeds_here,
                )
        rows.append(dict(
            task=r["task"], claim=r["claim"], published=r["verdict"],
            here=new.verdict if new is not None else "", status=status, p_predicted=p,
            seeds_published=seeds, seeds_here=seeds_here, published_measured=r.get("measured", ""),
            measured_here=new.measured if new is not None else "",
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def judge_rows(
    published: pd.DataFrame, here: pd.DataFrame, margin: float = 0.1, confidence: float = 0.95
) -> pd.DataFrame:
    """Per (task, algorithm) published: its mean final score over the published seeds and over the
    seeds here, the Welch difference (here minus published) at ``confidence``, the equivalence
    interval (``2·confidence - 1``) against ±``margin`` × the task's scale, the status and the chance
    of showing equivalence that the published spread predicts if nothing changed."""
    rows = []
    scale = {
        task: task_scale(task, g.groupby("algorithm").score.mean()) for task, g in published.groupby("task")
    }
    for (task, algo), pub in published.groupby(["task", "algorithm"], sort=True):
        m = margin * scale[task]
        a = pub.score.to_numpy(float)
        b = here[(here.task == task) & (here.algorithm == algo)].score.to_numpy(float)
        row = dict(task=task, algorithm=algo, published_mean=a.mean(), published_sd=stats.sample_sd(a),
                   published_seeds=len(a), here_mean=b.mean() if len(b) else math.nan,
                   here_sd=stats.sample_sd(b) if len(b) else math.nan, here_seeds=len(b), margin=m,
                   p_consistent=stats.equivalence_probability(stats.sample_sd(a), len(a), max(len(b), 2), m,
                                                              confidence))  # fmt: skip
        if len(b) == 0:
            row.update(status="not run here", interval="")
        elif min(len(a), len(b)) < 2:
            row.update(status="inconclusive (fewer than 2 seeds on a side)", difference=b.mean() - a.mean(),
                       interval="no interval")  # fmt: skip
        else:
            d = stats.difference_interval(b, a, confidence=confidence)
            eq = stats.difference_interval(b, a, confidence=2 * confidence - 1)
            equivalent = -m < eq.lo and eq.hi < m
            differs = d.lo > 0 or d.hi < 0
            status = "consistent" if equivalent else "differs" if differs else "inconclusive"
            row.update(difference=d.point, diff_lo=d.lo, diff_hi=d.hi, interval=d.label, eq_lo=eq.lo,
                       eq_hi=eq.hi, status=status)  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=ROW_COLUMNS)


@dataclass
class Replication:
    suite: str
    published: Published
    seeds: list[int]
    claims: pd.DataFrame
    rows: pd.DataFrame
    machines_here: str
    margin: float
    notes: tuple[str, ...] = ()  # what the fresh seeds do not vary, for the page

    def counts(self) -> dict:
        c, r = self.claims, self.rows
        decided = c[c.status.isin(["replicated", "not replicated", "inconclusive here"])]
        return dict(
            claims_replicated=int((c.status == "replicated").sum()),
            claims_decided=len(decided),
            claims_not_replicated=int((c.status == "not replicated").sum()),
            claims=len(c),
            rows_consistent=int((r.status == "consistent").sum()),
            rows_differ=int((r.status == "differs").sum()),
            rows_compared=int(r.status.isin(["consistent", "differs", "inconclusive"]).sum()),
            rows=len(r),
        )

    @property
    def fails(self) -> bool:
        k = self.counts()
        return bool(k["claims_not_replicated"] or k["rows_differ"])

    def verdict(self) -> str:
        k = self.counts()
        parts = []
        if k["claims"]:
            parts.append(
                f"claims replicated {k['claims_replicated']} of {k['claims_decided']} decided in the report"
                + (f" ({k['claims_not_replicated']} NOT replicated)" if k["claims_not_replicated"] else "")
            )
        undecided = k["rows_compared"] - k["rows_consistent"] - k["rows_differ"]
        extra = [f"{k['rows_differ']} DIFFER"] if k["rows_differ"] else []
        extra += [f"{undecided} inconclusive"] if undecided else []
        parts.append(
            f"rows consistent {k['rows_consistent']} of {k['rows_compared']}"
            + (f" ({', '.join(extra)})" if extra else "")
        )
        return "; ".join(parts)


def replicate(published: Published, here: Results, seeds: list[int], margin: float = 0.1,
              confidence: float = 0.95, notes: tuple[str, ...] = ()) -> Replication:  # fmt: skip
    """Judges the runs ``here`` (a fresh seed set of the report's suite) against ``published``."""
    from bench.results import machine_summary

    finals = final_scores(here)
    pub_finals = published.finals
    tasks, labels = set(finals.task), set(finals.algorithm)
    pub_finals = pub_finals[pub_finals.task.isin(tasks) & pub_finals.algorithm.isin(labels)]
    claims_here = claims_table(here, confidence=confidence) if len(published.claims) else pd.DataFrame()
    pub_claims = published.claims
    if len(pub_claims):
        pub_claims = pub_claims[pub_claims.task.isin(tasks)]
        if len(claims_here):  # a claim whose methods were not re-run is left out, not judged
            measurable = {
                c for c in pub_claims.claim if claim_methods([c]) - {"sft"} <= set(map(method_of, labels))
            }
            pub_claims = pub_claims[pub_claims.claim.isin(measurable)]
    done = here.runs[here.runs.status == "done"].groupby(["task", "algorithm"]).seed.nunique()
    n_here = int(done.min()) if len(done) else 0
    return Replication(
        published.suite, published, seeds, judge_claims(pub_claims, claims_here, n_here),
        judge_rows(pub_finals, finals, margin, confidence), machine_summary(here.runs), margin, notes,
    )  # fmt: skip


# -- the page ------------------------------------------------------------------------------------

CLAIM_HEADER = ["task", "claim", "published", "here", "status", "replicates (predicted)", "measured here"]
ROW_HEADER = [
    "task", "algorithm", "published: mean, sd (n)", "here: mean, sd (n)", "here − published [95% CI]",
    "margin ±", "status", "P(consistent) predicted",
]  # fmt: skip

METHOD = (
    "The suite was run again on seeds the report did not use, in a store of its own. Claims: the verdict "
    "here by the report's own rules, against the published one; 'replicates (predicted)' is the chance of "
    "the same verdict on this many fresh seeds if the published difference is the true one and the spread "
    "per seed stays as it was (noncentral t; an upper reading, since a significant estimate leans away "
    "from zero). Rows: the mean final score here minus the published mean, Welch's t interval (the seed sets "
    "are disjoint); 'consistent' where the 90% interval lies inside ±margin (two one-sided tests at 5%), "
    "'differs' where the 95% interval excludes 0 without that, 'inconclusive' otherwise. The margin is "
    "{margin:g} × the task's scale (its random-to-solved range where declared, else the spread of the "
    "published rows' means). 'P(consistent) predicted' is the chance of showing equivalence at this seed "
    "count if nothing changed, from the published spread: where it is low, 'inconclusive' is what was to "
    "be expected and says nothing against the report."
)


def _f(v, digits: int = 3) -> str:
    from bench.report.tables import fmt

    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt(float(v), digits + 1)


def _pct(p) -> str:
    return "—" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{100 * float(p):.0f}%"


def claim_display(rep: Replication) -> list[list[str]]:
    return [
        [r.task, r.claim, r.published, r.here or "—", r.status,
         _pct(r.p_predicted) + (f" at {r.seeds_here} seeds" if not math.isnan(r.p_predicted) else ""),
         r.measured_here or "—"]
        for r in rep.claims.itertuples()
    ]  # fmt: skip


def row_display(rep: Replication) -> list[list[str]]:
    out = []
    for r in rep.rows.itertuples():
        diff = "—"
        if isinstance(r.interval, str) and r.interval and not math.isnan(r.diff_lo):
            diff = f"{r.difference:+.4g} [{r.diff_lo:+.4g}, {r.diff_hi:+.4g}] ({r.interval})"
        out.append([
            r.task, r.algorithm, f"{_f(r.published_mean)}, sd {_f(r.published_sd)} (n = {r.published_seeds})",
            f"{_f(r.here_mean)}, sd {_f(r.here_sd)} (n = {r.here_seeds})" if r.here_seeds else "—", diff,
            _f(r.margin), r.status, _pct(r.p_consistent),
        ])  # fmt: skip
    return out


def figure(rep: Replication, path: Path) -> bool:
    """Each row's difference (here minus published) with its 95% interval, in units of its margin:
    the shaded band is ±margin (equivalence), the line 0 (no difference)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rep.rows.dropna(subset=["diff_lo"])
    if rows.empty:
        return False
    colors = {"consistent": "#2e7d32", "differs": "#c62828", "inconclusive": "#757575"}
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows.itertuples(), strict=True):
        c = colors.get(r.status, "#757575")
        ax.plot([r.diff_lo / r.margin, r.diff_hi / r.margin], [yi, yi], color=c, lw=2)
        ax.plot(r.difference / r.margin, yi, "o", color=c, ms=5)
    ax.axvspan(-1, 1, color="#e3f2e5", zorder=0, label="±margin")
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_yticks(y, [f"{r.task} · {r.algorithm}" for r in rows.itertuples()], fontsize=7)
    ax.set_xlabel("here − published, in units of the row's margin (95% Welch interval)")
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2, label=k) for k, c in colors.items()]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def page_files(rep: Replication, generated: str) -> dict[str, str | bytes]:
    """The replication page: index.html, replication.md, claims.csv, rows.csv, the figure and
    replication.json (the counts, for the report's replication section)."""
    import tempfile

    from bench.report.render import _env
    from bench.report.tables import markdown_table, md_escape

    title = f"bench replicate — {rep.suite}"
    method = METHOD.format(margin=rep.margin)
    context = (
        f"Published: {rep.published.suite} version {rep.published.version or '?'}, seeds "
        f"{', '.join(map(str, rep.published.seeds))}; machines {rep.published.machines}. Here: seeds "
        f"{', '.join(map(str, rep.seeds))}; machines {rep.machines_here}."
    ) + "".join(f" {n}" for n in rep.notes)
    files: dict[str, str | bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if figure(rep, Path(tmp) / "rows.png"):
            files["rows.png"] = (Path(tmp) / "rows.png").read_bytes()
    claims, rows = claim_display(rep), row_display(rep)
    md = f"# {md_escape(title)}\n\n**{md_escape(rep.verdict())}**\n\n"
    md += f"{md_escape(context)}\n\n{md_escape(method)}\n\n"
    if claims:
        md += "## Claims\n\n" + markdown_table(CLAIM_HEADER, claims) + "\n\n"
    if "rows.png" in files:
        md += "![rows: here minus published](rows.png)\n\n"
    md += "## Leaderboard rows\n\n" + markdown_table(ROW_HEADER, rows) + "\n"
    html = _env().get_template("replication.html.j2").render(
        title=title, verdict=rep.verdict(), failing=rep.fails, context=context, method=method,
        generated=generated, claim_header=CLAIM_HEADER, claims=claims,
        claim_classes=[s.split(" ")[0] for s in rep.claims.status], row_header=ROW_HEADER, rows=rows,
        row_classes=[str(s).split(" ")[0] for s in rep.rows.status], figure="rows.png" in files,
    )  # fmt: skip
    digest = finals_digest(rep.published.folder / "final_scores.csv" if rep.published.folder else None)
    summary = {
        "published_finals_sha256": digest,  # the report re-rendered from the same results keeps this page
        "suite": rep.suite, "published_version": rep.published.version, "seeds": rep.seeds,
        "published_seeds": rep.published.seeds, "machines_published": rep.published.machines,
        "machines_here": rep.machines_here, "margin": rep.margin, "verdict": rep.verdict(), **rep.counts(),
        "generated": generated,
    }  # fmt: skip
    files.update({
        "index.html": html, "replication.md": md, "claims.csv": csv_text(rep.claims),
        "rows.csv": csv_text(rep.rows), "replication.json": json.dumps(summary, indent=1),
    })  # fmt: skip
    return files


def pinned_notes(suite, other_kind: bool = False) -> tuple[str, ...]:
    """What a suite holds fixed across seeds, which a fresh seed set therefore does not re-derive
    (``other_kind``: the replication ran on a machine kind the report's runs did not, where such an
    artifact is built again)."""
    sft = getattr(getattr(suite, "lm", None), "sft", None)
    if sft is not None and sft.seed is not None:
        text = (f"The suite trains one π_SFT (SFT seed {sft.seed}) for every seed, as the DPO paper starts "
                "every method from one SFT model: the fresh seeds vary the preference data, the reward "
                "models and the methods, not π_SFT (the LM guide's calibration table covers π_SFT's own "
                "variation).")  # fmt: skip
        if other_kind:
            text += (" This replication ran on a machine kind the report's runs did not, so π_SFT was built "
                     "again here, from the same recipe and seed: its float-order variation across CPU kinds "
                     "is part of what the rows compare (π_SFT's own row among them).")  # fmt: skip
        return (text,)
    return ()
