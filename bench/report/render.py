"""``bench report``: one folder with index.html, figures/, CSV tables and summary.md.

The folder is built beside its destination and moved into place at the end, so an interrupted or
failed report leaves the previous one untouched. Every string from a suite or a run reaches the
HTML through Jinja2's autoescaping and the Markdown through ``md_escape``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from tqdm import tqdm

from bench import results as R
from bench import stats
from bench.claims import claims_table, short_paper
from bench.report import figures
from bench.report.tables import (
    AGGREGATE_HEADER,
    LEADERBOARD_HEADER,
    REPLICATION_NOTE,
    _code,
    _seconds,
    aggregate_rows,
    fmt,
    hyperparameter_rows,
    interval_cell,
    leaderboard_columns,
    leaderboard_rows,
    markdown_table,
    md_escape,
    mean_cell,
    pick,
    replication_cell,
    replication_folders,
    replication_title,
)
from bench.safeio import csv_text, dead_leftovers, recover_folder, replace_folder

MARKER = "report.json"  # identifies a folder written by `bench report` (safe to replace)


class ReportError(Exception):
    pass


def generated_at() -> str:
    """The report's "generated" time (UTC, to the minute): now, or ``$SOURCE_DATE_EPOCH`` (seconds
    since 1970) when set, so that the same store renders to byte-identical files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit() else datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def folder_name(name: str) -> str:
    """A suite name as one safe folder name for default output paths (``reports/NAME``): letters,
    digits, ``.``, ``_`` and ``-`` only, never ``..`` or a path, at most 80 characters."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")[:80].strip("._")
    return text or "suite"


def check_destination(out: Path) -> None:
    """Refuses to replace a folder that is not a previous report."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise ReportError(f"{out}: exists and is not a bench report folder; choose another --output")


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def build(
    results: R.Results,
    out: Path,
    published: pd.DataFrame | None = None,
    published_source: str = "",
    reps: int = 2000,
    seed: int = 0,
    progress: bool = True,
    notes: str | None = None,
    formats: tuple[str, ...] | None = None,
) -> dict:
    """Renders the report of ``results`` into ``out``; returns a short summary. ``notes``: the
    author's findings (text checked by ``read_notes``), shown first and kept as notes.txt;
    ``formats``: the figure files written (``figures.FORMATS``; default PNG and SVG)."""
    out = Path(out)
    check_destination(out)
    sweep_folders(out)
    tmp = out.parent / f".{out.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    try:
        parsed = parse_notes(notes) if notes else []
        if notes:
            (tmp / "notes.txt").write_text(notes, encoding="utf-8")
        summary = _render(results, tmp, published, published_source, reps, seed, progress, parsed, formats,
                          replication_folders(out))  # fmt: skip
        written = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        meta = json.loads((tmp / MARKER).read_text(encoding="utf-8"))
        (tmp / MARKER).write_text(json.dumps({**meta, "files": written}, indent=1) + "\n", encoding="utf-8")
        summary["kept"] = _keep_foreign_files(out, tmp)
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def sweep_folders(out: Path) -> None:
    """Puts back a report that a killed ``bench report`` had moved aside, and removes the
    half-built folders that killed renders left beside ``out``."""
    recover_folder(out)
    for tmp in dead_leftovers(out, "tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def _bench_files(out: Path) -> set[str] | None:
    """The files a previous report in ``out`` says it wrote (None: a report from before the list)."""
    try:
        files = json.loads((out / MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return set(files) if isinstance(files, list) else None


def _keep_foreign_files(out: Path, tmp: Path) -> list[str]:
    """Copies into the new report ``tmp`` the files of the old one at ``out`` that bench did not
    write (the author's own notes, say), so replacing a report never deletes them. Bench's own:
    the old report's file list, ``replication/`` and ``replication-*/`` (`bench replicate`'s,
    carried or dropped by the render) and, for a report from before the list, ``figures/`` and
    whatever the new one writes again. A file of the author's that the new report would overwrite
    with other content stops the render (ReportError), before the old report is touched."""
    if not out.is_dir():
        return []
    ours = _bench_files(out)
    replicas = {p.name for p in replication_folders(out)}
    kept = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(out).as_posix()
        if rel.split("/")[0] in replicas or (ours is not None and rel in ours):
            continue
        if ours is None and (rel.startswith("figures/") or rel == MARKER or (tmp / rel).is_file()):
            continue
        target = tmp / rel
        if target.exists():
            if path.is_file() and target.read_bytes() == path.read_bytes():
                continue
            raise ReportError(f"{path}: a file bench did not write, and the new report writes one of that "
                              "name; move it, or choose another --output")  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target, follow_symlinks=False)
        kept.append(rel)
    return kept


NOTES_LIMIT = 64 * 1024


def read_notes(path: str | Path) -> str:
    """The text of a findings file (``bench report --notes``), or a ReportError for a missing,
    binary, non-UTF-8 or oversized file."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such file (--notes)")
    data = path.read_bytes()
    if len(data) > NOTES_LIMIT:
        raise ReportError(f"{path}: notes over {NOTES_LIMIT // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: notes are not UTF-8 text") from None
    if "\x00" in text:
        raise ReportError(f"{path}: notes contain NUL bytes")
    return text


def parse_notes(text: str) -> list[tuple[str, list[str]]]:
    """Findings text as blocks: paragraphs separated by blank lines; a paragraph whose lines all
    start with "- " is a list. [(kind "p" or "ul", lines)]."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        if all(ln.startswith("- ") for ln in lines):
            out.append(("ul", [ln[2:] for ln in lines]))
        else:
            out.append(("p", [" ".join(lines)]))
    return out


def _mark_imported(rows: list[list[str]], protos: dict, true_reward: set = frozenset()) -> list[list[str]]:
    """Aggregate rows whose label is an imported run's get its protocol's first clause beside it;
    labels trained on the true reward (``results.true_reward_labels``) are marked as such."""
    for r in rows:
        if r[0] in protos:
            r[0] = f"{r[0]} (imported: {protos[r[0]].split(',')[0]})"
        elif r[0] in true_reward:
            r[0] = f"{r[0]} (true reward: a reference, not a preference method)"
    return rows


def suite_line(results) -> str:
    """The suite as a report header names it: name, version and the start of its definition hash."""
    info = results.suite_info
    text = str(info.get("name", ""))
    if info.get("version"):
        text += f" version {info['version']}"
    if info.get("hash"):
        text += f", definition hash {str(info['hash'])[:12]}"
    return text


def _render(
    results,
    tmp: Path,
    published,
    published_source,
    reps,
    seed,
    progress,
    notes=(),
    formats=None,
    replication_dirs: list[Path] = (),
) -> dict:
    from bench.registry import task_domain

    figures.setup(formats or figures.DEFAULT_FORMATS)
    fig_dir = tmp / "figures"
    tasks = results.tasks()
    finals = R.final_scores(results)
    board = R.leaderboard(results, reps=reps, seed=seed)
    matrices, agg_tasks = R.normalised_matrices(results)
    points = R.frontier_points(results)
    temps = R.temperature_table(results, reps=reps, seed=seed)
    scored = results.scored_evals()
    scored = scored[scored.status == "done"]
    greedy = R.scoring_evals(results)
    greedy = greedy[greedy.status == "done"]
    anchors = published if published is not None else pd.DataFrame(columns=["source", "algorithm", "task"])
    colors = figures.palette([*results.algorithms(), *results.runs.algo.unique()])
    # method-level figures (frontiers, temperature panels, data efficiency) get hues of their own,
    # spread over the methods only
    colors.update(figures.palette(sorted({R.method_of(a) for a in results.algorithms()})))
    # method-level views: one sweep point per method leads; the full sweep is collapsed behind it
    sweeps = R.has_sweeps(results)
    best = R.best_points(results) if sweeps else {}
    leading = set(best.values()) if sweeps else set(results.algorithms())
    for method, label in best.items():  # a method's chosen point wears the method's colours
        if method in colors:
            colors.alias(label, method)
    hyper = R.hyperparameter_table(results)
    protos = R.protocols(results)  # imported runs: what their scores measure
    budgets = R.kl_budget_table(results, reps=reps, seed=seed)
    rm_table = R.reward_model_table(results, reps=reps, seed=seed)
    efficiency = R.data_efficiency_table(results, reps=reps, seed=seed)
    samples = R.sample_table(results)
    win_rates = R.win_rate_table(results, reps=reps, seed=seed)
    kl_curves = R.kl_curves(results)
    scaling_table = R.scaling_table(results)
    claims = claims_table(results, reps=reps, seed=seed)
    caveats = R.claim_caveats(results) if len(claims) else pd.DataFrame(columns=["task", "caveats"])
    caveats = caveats[caveats.task.isin(set(claims.task))] if len(claims) else caveats
    if len(claims):  # the caveats travel with the verdicts into claims.csv
        claims = claims.merge(caveats, on="task", how="left")
    span = R.kl_span_table(results)

    steps = len(tasks) + (3 if matrices else 0) + points.task.nunique() + temps.task.nunique()
    steps += efficiency.task.nunique() + win_rates.task.nunique() + kl_curves.task.nunique()
    steps += scaling_table.task.nunique()
    bar = tqdm(total=steps, desc="report", unit="figure", disable=not progress)
    task_sections = []
    for i, task in enumerate(tasks):
        metric = results.score_metric(task) or "eval/return"
        ev = greedy[(greedy.task == task) & greedy.algorithm.isin(leading)]
        lm = task_domain(task) == "lm"
        fig = None
        if len(ev):
            fig = "figures/" + figures.task_figure(
                ev, finals[(finals.task == task) & finals.algorithm.isin(leading)], task, metric, colors,
                anchors[anchors.task == task], R.threshold(task), fig_dir / f"task{i + 1}.png",
                reps=min(reps, 1000), seed=seed,
                x_label="optimizer updates" if lm else "env steps", protocols=protos,
                time_axis="train_time" if lm else "wall_time", random=R.random_score(task),
            )  # fmt: skip
        columns = leaderboard_columns(task)
        part = board[board.task == task]
        rows = [pick(r, columns) for r in leaderboard_rows(part[part.algorithm.isin(leading)], anchors, task)]
        for r in rows:  # an imported run's protocol stays beside its name
            if r[0] in protos:
                r[0] = f"{r[0]} (imported; protocol: {protos[r[0]]})"
        n_own = int(part.algorithm.isin(leading).sum())
        few = int(part.seeds[part.seeds > 0].min()) if (part.seeds > 0).any() else 0
        sweep_rows = [pick(r, columns) for r in leaderboard_rows(part, None, task)] if sweeps else []
        task_sections.append(
            dict(
                name=task,
                metric=metric,
                threshold=R.threshold(task),
                sampled=figures.temperature_label(ev.temperature) if len(ev) else "greedy",
                figure=fig,
                header=pick(LEADERBOARD_HEADER, columns),
                rows=[dict(cells=r, anchor=j >= n_own) for j, r in enumerate(rows)],
                md_rows=rows,
                sweep_rows=sweep_rows,
                interval_note=_interval_note(few),
            )
        )
        bar.update()

    aggregate = None
    agg_table = pd.DataFrame()
    poi = pd.DataFrame()
    if matrices:
        agg_table = R.aggregate_table(matrices, reps=reps, seed=seed)  # every label: aggregate.csv
        agg_table["leads"] = agg_table.algorithm.isin(leading)
        matrices = {a: m for a, m in matrices.items() if a in leading}
        aggregate = dict(
            tasks=agg_tasks,
            note=_aggregate_note(results, matrices, agg_tasks),
            header=AGGREGATE_HEADER,
            rows=_mark_imported(
                aggregate_rows(agg_table[agg_table.leads]), protos, R.true_reward_labels(results)
            ),
            sweep_rows=aggregate_rows(agg_table) if sweeps else [],
            figure="figures/"
            + figures.aggregate_figure(agg_table[agg_table.leads], colors, fig_dir / "aggregate.png"),
        )
        bar.update()
        aggregate["profile"] = "figures/" + figures.profile_figure(
            matrices, colors, fig_dir / "profiles.png", reps=min(reps, 1000), seed=seed
        )
        bar.update()
        aggregate["poi"] = None
        if len(matrices) > 1:
            poi = R.improvement_matrix(matrices)
            aggregate["poi"] = "figures/" + figures.improvement_figure(poi, fig_dir / "improvement.png")
        bar.update()

    frontiers = []
    aligned = R.aligned_points(results)
    fallen = R.fallen_methods(aligned)
    for i, (task, g) in enumerate(aligned.groupby("task", sort=True)):
        metric = results.score_metric(task) or "eval/return"
        name = figures.frontier_figure(g, task, metric, colors, fig_dir / f"frontier{i + 1}.png",
                                       fallen[fallen.task == task])  # fmt: skip
        frontiers.append(dict(task=task, figure="figures/" + name, span=span_rows(span[span.task == task])))
        bar.update()
    temperatures = []
    for i, (task, g) in enumerate(temps.groupby("task", sort=True)):
        metric = results.score_metric(task) or "eval/return"
        name = figures.temperature_figure(g, task, metric, colors, fig_dir / f"temperature{i + 1}.png", best)
        sweep = None
        if sweeps:
            sweep = "figures/" + figures.temperature_sweep_figure(
                g, task, metric, colors, fig_dir / f"temperature-sweep{i + 1}.png"
            )
        temperatures.append(dict(task=task, figure="figures/" + name, sweep=sweep))
        bar.update()
    from bench import overopt

    opt_points, opt_fits = overopt.points(results), overopt.fit_table(results)
    alignment = _alignment_sections(
        results, budgets, rm_table, efficiency, samples, win_rates, kl_curves, colors, fig_dir, bar, best
    )
    _overoptimization_sections(alignment, opt_points, opt_fits, colors, fig_dir)
    scaling = []
    for i, (task, g) in enumerate(scaling_table.groupby("task", sort=True)):
        name = figures.scaling_figure(g, task, colors, fig_dir / f"scaling{i + 1}.png")
        scaling.append(dict(task=task, figure="figures/" + name, rows=scaling_rows(g)))
        bar.update()
    bar.close()

    failed = results.runs[results.runs.status == "failed"]
    failures = [
        dict(
            task=r.task,
            algorithm=r.algorithm,
            seed=r.seed,
            error=str(r.get("error") or "(no error recorded)")[-2000:],
            log=str(r.get("log_path") or ""),
        )
        for _, r in failed.iterrows()
    ]

    # tables as CSV
    csv_files = {"leaderboard.csv": board, "final_scores.csv": finals}
    if "base_key" in results.runs and len(finals):  # each run's identity without code, which bench
        # replicate compares (apart from final_scores.csv, whose digest a replication page is tied to)
        done = results.runs[results.runs.run_key.isin(set(finals.run_key))]
        keys = done[["run_key", "base_key"]].sort_values("run_key").reset_index(drop=True)
        csv_files["base_keys.csv"] = keys
    if matrices:
        csv_files["aggregate.csv"] = agg_table
    if len(poi):
        csv_files["probability_of_improvement.csv"] = poi.rename_axis("algorithm")
    optional = {
        "frontier.csv": points,
        "frontier_means.csv": aligned,
        "temperature.csv": temps,
        "kl_budgets.csv": budgets,
        "reward_models.csv": rm_table,
        "data_efficiency.csv": efficiency,
        "samples.csv": samples,
        "win_rates.csv": win_rates,
        "scaling.csv": scaling_table,
        "claims.csv": claims,
        "overoptimization.csv": opt_fits,
        "overoptimization_points.csv": opt_points,
        "kl_span.csv": span,
        "hyperparameters.csv": hyper,
    }
    csv_files.update({name: table for name, table in optional.items() if len(table)})
    if published is not None and len(published):
        csv_files["published.csv"] = published[published.task.isin(tasks)]
    for name, table in csv_files.items():
        (tmp / name).write_text(
            csv_text(table, index=name == "probability_of_improvement.csv"), encoding="utf-8"
        )
    replications = [info for folder in replication_dirs if (info := _carry_replication(folder, tmp))]

    prov = R.provenance(results)
    generated = generated_at()
    title = f"bench report — {results.name}"
    description = results.suite_info.get("description", "")
    checks = R.reference_checks(results)
    key = key_results(results, leading, claims, fallen, checks)
    key += [replication_line(info) for info in replications]
    html = (
        _env()
        .get_template("index.html.j2")
        .render(
            title=title,
            description=description,
            notes=notes,
            generated=generated,
            source=results.source,
            suite_line=suite_line(results),
            best_rule=R.BEST_POINT_RULE if sweeps else "",
            hyperparameters=hyperparameter_rows(hyper, board) if len(hyper) else [],
            csv_files=list(csv_files),
            aggregate=aggregate,
            tasks=task_sections,
            frontiers=frontiers,
            span_header=SPAN_HEADER,
            claims=[
                {**c, "replication": replication_cell(c), "paper_short": short_paper(c.get("paper"))}
                for c in claims.to_dict("records")
            ],  # fmt: skip
            replication_note=REPLICATION_NOTE,
            replications=replications,
            band_alerts=[c["text"] for c in checks if not c["inside"]],
            claims_rule=R.CLAIM_RULES,
            overopt_header=OVEROPT_HEADER,
            overopt_intro=OVEROPT_INTRO,
            key_results=key,
            caveats=caveats.to_dict("records"),
            temperatures=temperatures,
            alignment=alignment,
            scaling=scaling,
            scaling_header=SCALING_HEADER,
            scaling_intro=SCALING_INTRO,
            rm_header=RM_HEADER,
            samples_header=SAMPLES_HEADER,
            samples_intro=SAMPLES_INTRO,
            failures=failures,
            provenance=list(prov.items()),
            reps=reps,
            seed=seed,
            published_source=published_source or "no published anchors",
        )
    )
    (tmp / "index.html").write_text(html, encoding="utf-8")
    (tmp / "summary.md").write_text(
        _markdown(
            title,
            generated,
            results,
            task_sections,
            aggregate,
            prov,
            frontiers,
            temperatures,
            failures,
            alignment,
            scaling,
            notes,
            R.BEST_POINT_RULE if sweeps else "",
            claims,
            key,
        ),
        encoding="utf-8",
    )
    meta = {
        "suite": results.name,
        "generated": generated,
        "source": results.source,
        "reps": reps,
        "seed": seed,
        "figure_formats": list(figures._formats),
        "best_point_rule": R.BEST_POINT_RULE if sweeps else None,
        "best_points": best,
        "provenance": {k: str(v) for k, v in prov.items()},
    }
    (tmp / MARKER).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    n_figures = sum(1 for _ in (tmp / "figures").iterdir())
    return {"tasks": len(tasks), "runs": len(results.runs), "figures": n_figures}


def _carry_replication(folder: Path, tmp: Path) -> dict | None:
    """A replication page (``bench replicate``) made against these very results travels into the
    re-rendered report under its folder's name: its summary (with ``folder`` and ``title`` added), or
    None. One made against other results (another run, other code) is left behind, with a note: its
    verdicts were about numbers this report no longer shows."""
    try:
        info = json.loads((folder / "replication.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    from bench.report.tables import finals_digest

    if not isinstance(info, dict) or info.get("published_finals_sha256") != finals_digest(
        tmp / "final_scores.csv"
    ):
        print(f"note: {folder} was made against other results than this report's final_scores.csv: left "
              "out (bench replicate REPORT --no-run judges the replication's store again against these, "
              "training nothing)", file=sys.stderr)  # fmt: skip
        return None
    shutil.copytree(folder, tmp / folder.name)
    return {**info, "folder": folder.name, "title": replication_title(info)}


def replication_line(info: dict) -> str:
    """The key-results line of a report that carries a replication."""
    seeds = ", ".join(map(str, info.get("seeds", [])))
    return (f"Replicated on fresh seeds {seeds} ({info.get('machines_here', 'machines not recorded')}): "
            f"{info.get('verdict', '')} — {info.get('folder', 'replication')}/index.html")  # fmt: skip


def caveat_lines(claims) -> list[str]:
    """The Markdown caveat paragraphs of a claims table: one per task that has caveats (tasks the
    caveat rules say nothing about, e.g. plain control, merge in as missing and get none)."""
    if "caveats" not in claims:
        return []
    lines = []
    for task, text in claims.drop_duplicates("task")[["task", "caveats"]].to_numpy().tolist():
        if isinstance(text, str) and text.strip():
            lines += [f"**Caveats, {md_escape(task)}:** {md_escape(text)}", ""]
    return lines


def _markdown(
    title, generated, results, task_sections, aggregate, prov, frontiers, temperatures, failures,
    alignment=(), scaling=(), notes=(), best_rule="", claims=None, key=(),
) -> str:  # fmt: skip
    lines = [f"# {md_escape(title)}", "",
             f"Suite {md_escape(suite_line(results))}; results from {md_escape(results.source)}. "
             f"Generated {generated}.", ""]  # fmt: skip
    if best_rule:
        text = (
            "Method-level views: the tables, aggregates and the temperature figure show one sweep point "
            f"per method — {best_rule}. Every sweep point is in the CSV tables and the HTML page."
        )
        lines += [md_escape(text), ""]
    if notes:
        lines += ["## Findings", ""]
        for kind, items in notes:
            lines += [f"- {md_escape(i)}" for i in items] if kind == "ul" else [md_escape(items[0])]
            lines.append("")
        notes = ()
    if key:
        lines += ["## Key results", ""] + [f"- {md_escape(k)}" for k in key] + [""]
    if notes:
        lines += ["## Findings", ""]
        for kind, items in notes:
            lines += [f"- {md_escape(i)}" for i in items] if kind == "ul" else [md_escape(items[0])]
            lines.append("")
    if claims is not None and len(claims):
        rows = [[short_paper(r.get("paper")), r["task"], r["claim"], r["verdict"], replication_cell(r),
                 r["measured"]]
                for r in claims.to_dict("records")]  # fmt: skip
        lines += ["## Paper claims, measured here", "", md_escape(R.CLAIM_RULES), "",
                  md_escape(REPLICATION_NOTE), ""]  # fmt: skip
        lines += caveat_lines(claims)
        lines += [
            markdown_table(
                ["paper", "task", "claim", "here", "replicates (predicted)", "measured (95% CIs)"], rows
            ),
            "",
        ]
    if frontiers:
        lines += ["## Reward vs KL frontiers", ""]
    for f in frontiers:
        lines += [f"![reward vs KL, {md_escape(f['task'])}]({f['figure']})", ""]
        if f.get("span"):
            lines += [markdown_table(SPAN_HEADER, f["span"]), ""]
    if temperatures:
        lines += ["## Robustness to sampling temperature", ""]
    for f in temperatures:
        lines += [f"![temperature, {md_escape(f['task'])}]({f['figure']})", ""]
    if aggregate:
        lines += [
            "## Aggregate over tasks (normalised scores, 95% stratified-bootstrap CIs)",
            "",
            f"Tasks: {md_escape(', '.join(aggregate['tasks']))}. {md_escape(aggregate['note'])}",
            "",
            markdown_table(aggregate["header"], aggregate["rows"]),
            "",
            f"![aggregate]({aggregate['figure']})",
            "",
        ]
    for t in task_sections:
        lines += [f"## {md_escape(t['name'])}", "", md_escape(t["interval_note"]), "",
                  markdown_table(t["header"], t["md_rows"]), ""]  # fmt: skip
        if t["figure"]:
            lines += [f"![{md_escape(t['name'])}]({t['figure']})", ""]
    for a in alignment:
        lines += [f"## Alignment: {md_escape(a['task'])}", ""]
        if a["budgets"]:
            intro = (
                "Best T = 1 return within a KL budget"
                " (mean over seeds of each seed's best checkpoint, 95% CI):"
            )
            lines += [intro, "", markdown_table(a["budget_header"], a["budgets"]), ""]
        if a["reward_models"]:
            lines += ["Reward models, held-out preference accuracy:", "",
                      markdown_table(RM_HEADER, a["reward_models"]), ""]  # fmt: skip
        if a["efficiency"]:
            lines += [f"![data efficiency, {md_escape(a['task'])}]({a['efficiency']})", ""]
        if a["win_rates"]:
            lines += [a["win_intro"], "", markdown_table(a["win_header"], a["win_rates"]), ""]
            lines += [f"![win rate vs temperature, {md_escape(a['task'])}]({a['win_figure']})", ""]
        if a["kl_figure"]:
            lines += [f"![KL over training, {md_escape(a['task'])}]({a['kl_figure']})", ""]
        if a["samples"]:
            lines += [SAMPLES_INTRO, "", markdown_table(SAMPLES_HEADER, a["samples"]), ""]
    for sc in scaling:
        lines += [f"## Scaling: {md_escape(sc['task'])}", "", SCALING_INTRO, "",
                  markdown_table(SCALING_HEADER, sc["rows"]), "",
                  f"![scaling, {md_escape(sc['task'])}]({sc['figure']})", ""]  # fmt: skip
    if failures:
        lines += ["## Failed runs", ""]
        rows = [
            [f["task"], f["algorithm"], str(f["seed"]), f["error"].strip().splitlines()[-1]] for f in failures
        ]
        lines += [markdown_table(["task", "algorithm", "seed", "error"], rows), ""]
    lines += ["## Provenance", "", markdown_table(["", ""], [[k, str(v)] for k, v in prov.items()]), ""]
    return "\n".join(lines)


SPAN_HEADER = ["method", "sweep points", "lowest KL", "highest KL", "highest / lowest"]


def span_rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for r in table.itertuples():
        bound = " (bound)" if r.kl_is_bound else ""
        ratio = "—" if pd.isna(r.ratio) else f"{r.ratio:.1f}×"
        rows.append([r.method, str(r.points), f"{r.kl_min:.2f}{bound}", f"{r.kl_max:.2f}{bound}", ratio])
    return sorted(rows, key=lambda row: figures.natural_key(row[0]))


SCALING_HEADER = [
    "method", "workers", "runs", "env steps/s [seed range]", "wall time (s)", "speed-up", "efficiency",
    "wall time to threshold (s)", "env steps to threshold",
]  # fmt: skip
SCALING_INTRO = (
    "Training throughput against the number of synchronous workers W (each run on its own, the"
    " start-up of the workers not counted): mean env steps per second of training over seeds, mean"
    " wall time of a run, speed-up over the same method with W = 1 and efficiency against linear"
    " scaling (speed-up / W). The learning claim: wall time and env steps until the greedy evaluation"
    " first reaches the task's threshold, median over seeds (runs that never reach it count as never;"
    " in brackets the seeds that reach it)."
)


def scaling_rows(table: pd.DataFrame) -> list[list[str]]:
    def num(v: float, fmt: str) -> str:
        return "—" if pd.isna(v) else format(v, fmt)

    return [
        [r.method, str(r.workers), str(r.runs),
         f"{r.env_steps_per_s:,.0f} [{r.sps_min:,.0f}, {r.sps_max:,.0f}]", f"{r.wall_time:.1f}",
         num(r.speedup, ".2f") + ("×" if not pd.isna(r.speedup) else ""), num(r.efficiency, ".2f"),
         _reach(r.wall_to_threshold_s, r.reached, r.runs, ",.0f"),
         _reach(r.steps_to_threshold, r.reached, r.runs, ",.0f")]
        for r in table.sort_values(["method", "workers"]).itertuples()
    ]  # fmt: skip


def _reach(value, reached, runs, fmt: str) -> str:
    if pd.isna(reached):
        return "—"
    text = "never" if np.isinf(value) else format(value, fmt)
    return f"{text} ({int(reached)}/{int(runs)})"


SAMPLES_HEADER = ["run", "prompt", "completion", "gold"]
SAMPLES_INTRO = (
    "Samples at T = 1 on test prompts (lowest seed): five of the reference π_SFT, three of each"
    " method's best sweep point, with their gold reward:"
)

WIN_HEADER = ["run"]  # + one column per temperature
WIN_INTRO = (
    "Win rate against the reference completions by the gold reward (wins + ½ ties) at each sampling"
    " temperature: mean over seeds and test prompts with its 95% interval ({kinds}):"
)

RM_HEADER = [
    "training pairs",
    "models",
    "held-out accuracy [95% t CI over models]",
    "vs true return order",
    "held-out pairs",
]


def _interval_note(seeds: int) -> str:
    """What a leaderboard's intervals are, with the IQM bootstrap's coverage at its seed count."""
    if seeds < 2:
        return "One seed: no intervals."
    from bench import coverage

    cov = coverage.bootstrap_coverage("IQM", "normal", seeds, 1, sims=400, reps=500)
    text = (
        f"Final: mean with its 95% t interval over seeds and the sample sd (ddof = 1). IQM: its 95% "
        f"percentile bootstrap, which with {seeds} seeds covered the truth in {100 * cov:.0f}% of 400 "
        "simulated normal data sets (python -m bench.coverage)"
    )
    return text + (": read it as the seeds' range, not a 95% interval." if cov < 0.9 else ".")


def key_results(
    results, leading: set, claims: pd.DataFrame, fallen: pd.DataFrame, checks: list[dict] | None = None
) -> list[str]:
    """The report's first lines, computed from its records (never typed by hand): per task the two
    highest final means among the leading labels and their difference with its interval (paired by
    seed within one submission, Welch's between two merged submissions); the
    claims' verdicts; the methods whose final point fell below their front. First, the reference
    checks (``checks``: ``R.reference_checks``, computed here when not given)."""
    finals = R.final_scores(results)
    finals = finals[finals.algorithm.isin(leading)]
    gold = R.true_reward_labels(results)
    mark = lambda label: f"{label} (true reward)" if label in gold else label  # noqa: E731
    out = [c["text"] for c in (R.reference_checks(results) if checks is None else checks)]
    for task, g in finals.groupby("task", sort=True):
        means = g.groupby("algorithm").score.mean().sort_values(ascending=False)
        first = means.index[0]
        a = g[g.algorithm == first]
        best = stats.mean_interval(a.score.to_numpy(float)).text()
        head = f"{task}: highest final score {mark(first)} {best}"
        if len(means) > 1:
            second = means.index[1]
            b = g[g.algorithm == second]
            # seeds pair two labels of one submission (one code base seeds both alike); across
            # submissions a seed number is only a name, so their runs are compared unpaired
            one = "submission" not in g or a.submission.iloc[0] == b.submission.iloc[0]
            seeds = (list(a.seed), list(b.seed)) if one else (None, None)
            d = stats.difference_interval(a.score.to_numpy(float), b.score.to_numpy(float), *seeds)
            if d.has_interval:
                verdict = "ahead" if d.lo > 0 else "not significantly ahead"
                head += f"; next {mark(second)}: {first} is {verdict} by {d.text(signed=True)}"
            else:
                head += f"; next {mark(second)}, difference {d.text(signed=True)}"
        out.append(head + ".")
    if claims is not None and len(claims):
        counts = claims.verdict.map(lambda v: v.split(":")[0]).value_counts()
        out.append("Paper claims here: " + ", ".join(f"{n} {v}" for v, n in counts.items())
                   + " (table below, with its caveats).")  # fmt: skip
    for r in fallen.itertuples() if fallen is not None else ():
        out.append(f"{r.algorithm} on {r.task} ends at {fmt(r.score, 3)} (KL {fmt(r.kl, 3)}), well below its "
                   f"method's front ({fmt(r.front_score, 3)}).")  # fmt: skip
    return out


def _aggregate_note(results, matrices: dict, tasks: list[str]) -> str:
    """What the aggregate's intervals are and how often they cover at this table's seed count
    (simulated now, ``bench.coverage``), and which labels ran another budget than the rest."""
    from bench import coverage

    n = min(int(np.count_nonzero(~np.isnan(m[:, j]))) for m in matrices.values() for j in range(m.shape[1]))
    text = "Intervals: 95% stratified percentile bootstrap over seeds within each task."
    if n >= 2:
        cov = coverage.bootstrap_coverage("IQM", "normal", n, len(tasks), sims=400, reps=500)
        text += (
            f" With {n} seeds per task over {len(tasks)} task{'s' if len(tasks) != 1 else ''}, such an "
            f"interval of the IQM covered the truth in {100 * cov:.0f}% of 400 simulated normal data sets "
            "(python -m bench.coverage)"
        )
        text += ": below 90%, so read these intervals as narrower than 95%." if cov < 0.9 else "."
    budgets = R.final_scores(results).merge(results.runs[["run_key", "env_steps"]], on="run_key")
    budgets = budgets[budgets.algorithm.isin(matrices) & budgets.task.isin(tasks)]
    odd = []
    for task, g in budgets.groupby("task", sort=True):
        per_label = g.groupby("algorithm").env_steps.median()
        usual = per_label.median()  # a budget 1.5x off the labels' median is another budget
        if not usual > 0:
            continue
        odd += [f"{a} ({fmt(v)} steps on {task})" for a, v in per_label.items()
                if v > 0 and max(v / usual, usual / v) > 1.5]  # fmt: skip
    if odd:
        text += " Trained on another budget than most labels: " + "; ".join(odd) + "."
    return text


def _alignment_sections(
    results,
    budgets,
    rm_table,
    efficiency,
    samples,
    win_rates,
    kl_curves,
    colors,
    fig_dir: Path,
    bar,
    best=None,
) -> list[dict]:
    """Per task: KL-budget table (methods x budgets), reward-model accuracy, data-efficiency
    figure, win rate against the references by temperature (table and figure), KL over training,
    generated text samples (LM tasks)."""
    out = []
    tables = (budgets, rm_table, efficiency, samples, win_rates, kl_curves)
    tasks = sorted(set().union(*(set(t.task) for t in tables)))
    for i, task in enumerate(tasks):
        section = dict(task=task, budgets=[], budget_header=[], reward_models=[], efficiency=None,
                       win_rates=[], win_header=[], win_intro="", win_figure=None,
                       kl_figure=None, overopt_figure=None, overopt_rows=[])  # fmt: skip
        w = win_rates[win_rates.task == task]
        if len(w):
            temps = sorted(w.temperature.unique())
            section["win_header"] = [*WIN_HEADER, *[f"T = {t:g}" for t in temps]]
            for algo in figures.natural(w.algorithm.unique()):
                g = w[w.algorithm == algo]
                cells = [algo]
                for t in temps:
                    r = g[np.isclose(g.temperature, t)]
                    cells.append(
                        "—"
                        if r.empty
                        else interval_cell(r["mean"].iloc[0], r.lo.iloc[0], r.hi.iloc[0], 3, r.runs.iloc[0])
                    )
                section["win_rates"].append(cells)
            section["win_intro"] = WIN_INTRO.format(kinds="; ".join(sorted(set(w.ci))))
            name = figures.win_rate_figure(w, task, colors, fig_dir / f"winrate{i + 1}.png", best)
            section["win_figure"] = "figures/" + name
            bar.update()
        k = kl_curves[kl_curves.task == task]
        if len(k):
            from bench.registry import task_domain

            section["kl_figure"] = "figures/" + figures.kl_curve_figure(
                k,
                task,
                colors,
                fig_dir / f"kl{i + 1}.png",
                "optimizer updates" if task_domain(task) == "lm" else "env steps",
            )
            bar.update()
        section["samples"] = [
            [r.algorithm, r.prompt, r.completion, f"{r.score:+.2f}"]
            for r in samples[samples.task == task].itertuples()
        ]
        b = budgets[budgets.task == task]
        if len(b):
            levels = sorted(b.kl_budget.unique())
            section["budget_header"] = ["method", *[f"KL ≤ {v:g}" for v in levels]]
            # scores within [-10, 10] (LM gold rewards) get two decimals, returns one
            d = 2 if b[["mean", "lo", "hi"]].abs().max().max() <= 10 else 1
            for method in figures.natural(b.method.unique()):
                g = b[b.method == method]
                cells = [method]
                for v in levels:
                    r = g[g.kl_budget == v].iloc[0]
                    interval = f"{r['mean']:.{d}f} [{r.lo:.{d}f}, {r.hi:.{d}f}] ({int(r.seeds)})"
                    if pd.isna(r.lo):
                        interval = f"{r['mean']:.{d}f} (1 seed: no interval)"
                    cells.append("—" if r.seeds == 0 else interval)
                section["budgets"].append(cells)
        for _, r in rm_table[rm_table.task == task].iterrows():
            section["reward_models"].append([
                str(r.n_pairs), str(r.models), interval_cell(r.accuracy, r.lo, r.hi, 3, r.models),
                f"{r.gold_accuracy:.3f}", str(r.heldout_pairs),
            ])  # fmt: skip
        e = efficiency[efficiency.task == task]
        if len(e):
            metric = results.score_metric(task) or "eval/return"
            name = figures.data_efficiency_figure(e, task, metric, colors, fig_dir / f"efficiency{i + 1}.png")
            section["efficiency"] = "figures/" + name
            bar.update()
        out.append(section)
    return out


OVEROPT_HEADER = [
    "series",
    "gold form",
    "KL",
    "seeds",
    "points",
    "α",
    "β",
    "held-out R²",
    "d* (gold peak)",
    "largest d",
]
OVEROPT_INTRO = (
    "Gold and proxy (the learned reward the method optimises) against d = √KL(π ‖ π_init), after Gao, "
    "Schulman & Hilton (2023): Best-of-N over N (KL: the estimate; the bound log N − (N − 1)/N in its own "
    "row), RL over its checkpoints; gold relative to π_init of the same seed. Fits per seed by least "
    "squares through the origin, then the mean over seeds with its 95% t interval; the held-out R² fits "
    "the points with d at or below the median and predicts the rest (needs 3 and 2 points). "
    "overoptimization.csv and overoptimization_points.csv hold the numbers."
)


def _overoptimization_sections(alignment: list[dict], pts: pd.DataFrame, fits: pd.DataFrame, colors,
                               fig_dir: Path) -> None:  # fmt: skip
    """Adds each task's over-optimisation figure and fit table to its alignment section (a new
    section where the task has none)."""

    def cell(v, lo, hi, digits=3):
        if not np.isfinite(v):
            return "—"
        return f"{v:.{digits}g}" + (f" [{lo:.{digits}g}, {hi:.{digits}g}]" if np.isfinite(lo) else "")

    for i, task in enumerate(sorted(set(pts.task))):
        section = next((a for a in alignment if a["task"] == task), None)
        if section is None:
            section = dict(task=task, budgets=[], budget_header=[], reward_models=[], efficiency=None,
                           win_rates=[], win_header=[], win_intro="", win_figure=None, kl_figure=None,
                           samples=[])  # fmt: skip
            alignment.append(section)
        f = fits[fits.task == task]
        section["overopt_figure"] = "figures/" + figures.overoptimization_figure(
            pts[pts.task == task], f, task, colors, fig_dir / f"overopt{i + 1}.png"
        )
        section["overopt_rows"] = [
            [r.series, r.form, r.kl, str(r.seeds), str(r.points), cell(r.alpha, r.alpha_lo, r.alpha_hi),
             cell(r.beta, r.beta_lo, r.beta_hi), cell(r.r2_heldout, r.r2_lo, r.r2_hi),
             cell(r.d_star, r.d_star_lo, r.d_star_hi) + (" (beyond the grid)" if r.d_star > r.d_max else ""),
             f"{r.d_max:.3g}"]
            for r in f.itertuples()
        ]  # fmt: skip


def leaderboard_page(results, board: pd.DataFrame, generated: str, reps: int = 2000, seed: int = 0) -> str:
    """One sortable, filterable HTML leaderboard over every (task, run label) of ``results`` (one or
    several submissions, ``Results.combine``): plain JavaScript in the page, no network."""
    from bench.results import BENCH_PROTOCOL, code_versions, normalise, run_protocols

    runs = results.runs.assign(protocol=run_protocols(results.runs))
    if "submission" not in runs:
        runs = runs.assign(submission=str(results.name))
    first = runs.drop_duplicates(["task", "algorithm"]).set_index(["task", "algorithm"])
    owner, protocol = first.submission, first.protocol
    header = [("task", "text"), ("algorithm", "text"), ("submission", "text"), ("protocol", "text"),
              ("seeds", "num"), ("final: mean [95% t CI], sd (n)", "num"), ("IQM [95% bootstrap CI]", "num"),
              ("normalised IQM", "num"), ("median", "num"), ("wall time", "num"),
              ("code", "text")]  # fmt: skip

    def cell(text, sort=None, num=False):
        return dict(text=text, sort="" if sort is None or pd.isna(sort) else sort, num=num)

    rows = []
    for _, r in board.sort_values(["task", "mean"], ascending=[True, False], na_position="last").iterrows():
        key = (r.task, r.algorithm)
        proto = protocol.get(key, BENCH_PROTOCOL)
        norm = normalise(r.task, r.iqm) if r.seeds else None
        rows.append(
            dict(
                task=r.task,
                imported=proto != BENCH_PROTOCOL,
                cells=[
                    cell(r.task, r.task), cell(r.algorithm, r.algorithm),
                    cell(owner.get(key, ""), owner.get(key, "")), cell(proto, proto),
                    cell(str(r.seeds), r.seeds, True),
                    cell(mean_cell(r) if r.seeds else "—", r["mean"], True),
                    cell(interval_cell(r.iqm, r.iqm_lo, r.iqm_hi, n=r.seeds) if r.seeds else "—", r.iqm,
                         True),
                    cell("—" if norm is None else f"{norm:.3f}", norm, True),
                    cell(fmt(r["median"]) if r.seeds else "—", r["median"], True),
                    cell(_seconds(r.wall_time_s), r.wall_time_s, True),
                    cell(_code(r), _code(r)),
                ],
            )
        )  # fmt: skip
    submissions = []
    for name, g in runs.groupby("submission", sort=True):
        source = "; ".join(sorted({str(s) for s in g.get("source", pd.Series(dtype=str)).dropna() if str(s)}))
        read_from = results.suite_info.get("submissions", {}).get(name, results.source)
        submissions.append(dict(name=name, source=source or read_from, runs=len(g),
                                code=code_versions(g) or "—"))  # fmt: skip
    return (
        _env()
        .get_template("leaderboard.html.j2")
        .render(
            title=f"bench leaderboard — {results.name}",
            generated=generated,
            header=[dict(name=h, type=t) for h, t in header],
            rows=rows,
            tasks=sorted(board.task.unique()),
            submissions=submissions,
            reps=reps,
            seed=seed,
        )
    )
