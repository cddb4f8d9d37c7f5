"""The docs' results pages are generated from the published reports: the committed pages hold what
the reports hold (a re-rendered report without regenerated pages fails here), the generator
rewrites only the block between its markers, and its tables read the reports' columns by name."""

import json
import re
import shutil
from pathlib import Path

import pytest

from bench.report import results_pages as rp

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
PAGES = ROOT / "docs" / "results"


def test_the_committed_pages_and_figures_are_what_the_reports_give():
    problems = rp.stale(REPORTS, PAGES)
    assert not problems, (
        "docs/results is stale; run `python -m bench.report.results_pages docs/results`:\n"
        + "\n".join(problems)
    )
    blocks, figures = rp.render(REPORTS)
    folders = {p.name for p in REPORTS.iterdir() if (p / "report.json").is_file()}
    assert {f"{name}.md" for name in folders} | {"index.md"} == set(blocks)
    for name in folders:  # every report has its page, with its lead figure beside it
        page = (PAGES / f"{name}.md").read_text(encoding="utf-8")
        assert rp.extract(page) == blocks[f"{name}.md"]
        assert f"reports/{name}/index.html" in page
        figure = re.search(r"!\[[^\]]*\]\((figures/[^)]+)\)", rp.extract(page)).group(1)
        assert (PAGES / figure).is_file() and figure[len("figures/") :] in figures
    assert sum((PAGES / "figures" / f).stat().st_size for f in figures) < 2_000_000  # lead figures only


def test_every_results_page_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES.glob("*.md"):
        assert f"results/{page.name}" in nav, page.name
    assert "results.md" not in nav and not (ROOT / "docs" / "results.md").exists()


def test_pages_name_the_reports_best_points_and_no_other():
    for folder in sorted(REPORTS.iterdir()):
        if not (folder / "report.json").is_file():
            continue
        meta = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        block = rp.extract((PAGES / f"{folder.name}.md").read_text(encoding="utf-8"))
        marked = set(re.findall(r"`([^`]+)` \(best point\)", block))
        assert marked == set((meta.get("best_points") or {}).values()), folder.name
        if meta.get("best_point_rule"):
            assert block.count(meta["best_point_rule"].replace("_", "\\_")) == 1  # printed once


def test_control_alignment_uses_the_report_best_point_not_a_per_task_one():
    """The best-points table shows the label report.json names, with that label's own mean on each
    task — never the label that happens to be highest on one task."""
    import csv

    report = REPORTS / "control-alignment"
    best = json.loads((report / "report.json").read_text())["best_points"]["dpo"]
    rows = list(csv.DictReader((report / "leaderboard.csv").open()))
    cartpole = {
        r["algorithm"]: r for r in rows if r["task"] == "CartPole-v1" and r["algorithm"].startswith("dpo[")
    }
    per_task = max(cartpole, key=lambda a: float(cartpole[a]["mean"]))
    block = rp.extract((PAGES / "control-alignment.md").read_text(encoding="utf-8"))
    row = next(line for line in block.splitlines() if line.startswith(f"| `dpo` | `{best}`"))
    assert f"{float(cartpole[best]['mean']):.1f} ± {float(cartpole[best]['sd']):.1f}" in row
    if per_task != best:
        assert f"{float(cartpole[per_task]['mean']):.1f} ±" not in row


def test_regenerating_keeps_the_hand_written_prose(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    before = "# My title\n\nProse before, with 1.23 and <b>html</b>.\n\n"
    after = "\n\n## Notes\n\nProse after: `code`, a [link](index.md) and a trailing space \n"
    stale_block = f"{rp.BEGIN}\nold numbers 0.63\n{rp.END}"
    (out / "lunarlander.md").write_text(before + stale_block + after, encoding="utf-8")
    (out / "figures").mkdir()
    (out / "figures" / "gone-aggregate.png").write_bytes(b"old")  # a lead figure no report has

    rp.write(REPORTS, out)
    page = (out / "lunarlander.md").read_text(encoding="utf-8")
    blocks, figures = rp.render(REPORTS)
    assert page == before + blocks["lunarlander.md"] + after
    assert "old numbers" not in page and (out / "classic-control.md").is_file()  # new pages created
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(figures)
    assert rp.write(REPORTS, out) == [] and rp.stale(REPORTS, out) == []  # idempotent

    (out / "lunarlander.md").write_text(before + after, encoding="utf-8")  # markers removed
    with pytest.raises(ValueError, match="generated: begin"):
        rp.write(REPORTS, out)


def test_check_exits_1_on_a_stale_page(tmp_path, capsys):
    out = tmp_path / "results"
    shutil.copytree(PAGES, out)
    assert rp.main([str(out), "--reports", str(REPORTS), "--check"]) == 0
    page = out / "classic-control.md"
    page.write_text(page.read_text(encoding="utf-8").replace("500.0 ± 0.0", "500 ± 0", 1), encoding="utf-8")
    assert rp.main([str(out), "--reports", str(REPORTS), "--check"]) == 1
    assert "classic-control.md: generated block out of date" in capsys.readouterr().err


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_tables_read_columns_by_name_and_print_interval_kinds(tmp_path):
    folder = tmp_path / "reports" / "tiny"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(
        json.dumps({"suite": "tiny", "best_point_rule": "highest mean", "best_points": {"a": "a[x=1]"},
                    "provenance": {"suite version": "1", "runs": "4 done"}}), encoding="utf-8",
    )  # fmt: skip
    base = dict(task="CartPole-v1", seeds=2, failed=0, unfinished=0, std=0.5, iqm_lo=9.0, iqm_hi=11.0,
                threshold="", new_column="ignored", wall_time_s=3.0, peak_rss_mb=400.0)  # fmt: skip
    _write_csv(
        folder / "leaderboard.csv",
        [  # columns in another order, an extra one, a mean CI and an interval kind beside the IQM
            dict(base, algorithm="a[x=1]", mean=-0.04, iqm=10.0, mean_lo=-1.0, mean_hi=1.0, iqm_kind="t"),
            dict(base, algorithm="a[x=2]", mean=12.345, iqm=12.0, mean_lo="", mean_hi="", iqm_kind="t"),
        ],
    )
    _write_csv(
        folder / "temperature.csv",
        [
            dict(task="CartPole-v1", algorithm="a[x=1]", temperature=1.0, runs=2, mean=10, lo=9, hi=11,
                 kind="t"),
            dict(task="CartPole-v1", algorithm="a[x=1]", temperature=0.0, runs=2, mean=10, lo=9, hi=11,
                 kind="bootstrap"),
        ],
    )  # fmt: skip
    blocks, _ = rp.render(tmp_path / "reports")
    block = blocks["tiny.md"]
    assert "| run label | seeds | mean ± std | mean [95% CI] | IQM [95% CI, t] |" in block
    assert "| `a[x=2]` | 2 | 12.3 ± 0.5 | 12.3 (no interval) | 12.0 [9.0, 11.0] |" in block
    assert "| `a[x=1]` (best point) | 2 | 0.0 ± 0.5 | 0.0 [−1.0, 1.0] | 10.0 [9.0, 11.0] |" in block
    # the kinds differ between rows: each cell says its own
    assert "10.0 [9.0, 11.0] (bootstrap)" in block and "10.0 [9.0, 11.0] (t)" in block
    assert "ignored" not in block and "highest mean" in block


@pytest.mark.parametrize(
    "v, digits, text",
    [(-0.0004, 3, "0.000"), (-1234.56, 1, "−1,234.6"), (0.62494, 3, "0.625"), (float("inf"), 0, "never"),
     (None, 2, "—"), (1790.0945, 2, "1,790.09")],
)  # fmt: skip
def test_numbers_have_one_format(v, digits, text):
    assert rp.fmt(v, digits) == text


def test_a_replication_shows_only_when_made_against_the_reports_own_finals(tmp_path):
    """The page carries ``bench replicate``'s verdict, claims and differing rows when the replication's
    digest of final_scores.csv is the report's; a replication of other results is left out."""
    import hashlib

    folder = tmp_path / "reports" / "control-alignment"
    shutil.copytree(REPORTS / "control-alignment", folder)
    for other in folder.glob("replication-*"):  # the published report's later replications
        shutil.rmtree(other)
    rep = rp.Report(folder, json.loads((folder / "report.json").read_text(encoding="utf-8")))
    ctx = rp.Context({"CartPole-v1": 1})
    lines = rp.replication_section(rep, ctx)
    info = json.loads((folder / "replication" / "replication.json").read_text(encoding="utf-8"))
    assert (
        info["published_finals_sha256"]
        == hashlib.sha256((folder / "final_scores.csv").read_bytes()).hexdigest()
    )
    text = "\n".join(lines)
    assert f"**{info['verdict']}**" in text and "here seeds 3, 4, 5" in text
    assert text.count("| DPO dominates PPO-GT |") == 3  # every claim
    assert "| CartPole-v1 | `ipo-mean[beta=0.1]` | 94.3 | 500.0 | 405.7 [374.8, 436.7] |" in text
    # a second replication beside the first, on another machine kind: a section of its own
    other = folder / "replication-9a46f20efd"
    shutil.copytree(folder / "replication", other)
    amd = {**info, "seeds": [6, 7, 8], "machines_here": "1 kind: 9a46f20efd AMD EPYC · AVX-512 (3 runs)",
           "machines_published": "1 kind: 7816bf4d29 Intel(R) Xeon(R) Processor · AMX (3 runs)"}  # fmt: skip
    (other / "replication.json").write_text(json.dumps(amd), encoding="utf-8")
    both = "\n".join(rp.replication_section(rep, ctx))
    assert both.startswith(text) and "### Replication on fresh seeds and another machine kind" in both
    assert "From `reports/control-alignment/replication-9a46f20efd/`" in both and "here seeds 6, 7, 8" in both
    (folder / "final_scores.csv").write_text("task,algorithm\n", encoding="utf-8")  # other results
    assert rp.replication_section(rep, ctx) == []
