"""bench report / leaderboard / compare on synthetic stores (bench.report.synthetic)."""

import io
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench.cli import main
from bench.report.synthetic import write_synthetic
from bench.store import Store

EVIL = "evil<script>alert(1)</script>"
PUBLISHED = Path(__file__).resolve().parents[2] / "baselines" / "published.csv"


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "bench.sqlite"
    s = Store(path)
    write_synthetic(s, labels=["ppo", "pg", EVIL], seeds=4, alignment=True, failed=1, seed=1)
    # a failed run whose error message carries markup
    s.db.execute("UPDATE runs SET error = ? WHERE status = 'failed'", (f"ValueError: bad {EVIL}",))
    s.close()
    return path


def _finals(path) -> pd.DataFrame:
    """Final score per done run, straight from SQL (independent of bench.results): greedy, or at
    T = 1 for runs with KL-to-reference records (alignment runs)."""
    db = sqlite3.connect(path)
    q = (
        "SELECT r.task, r.algorithm, e.value FROM evals e JOIN runs r ON r.key = e.run_key"
        " WHERE r.status = 'done' AND e.metric = 'eval/return'"
        " AND e.temperature = (CASE WHEN EXISTS (SELECT 1 FROM evals k WHERE k.run_key = e.run_key"
        " AND k.metric = 'eval/kl') THEN 1.0 ELSE 0.0 END)"
        " AND e.step = (SELECT MAX(step) FROM evals WHERE run_key = e.run_key)"
    )
    out = pd.read_sql_query(q, db)
    db.close()
    return out


def test_report_writes_escaped_html_figures_tables_and_markdown(store, tmp_path):
    out = tmp_path / "report"
    assert main(["report", "--store", str(store), "--suite", "synthetic", "-o", str(out), "-q"]) == 0
    html = (out / "index.html").read_text()
    # every string from the suite or a run is escaped
    assert "<script>" not in html
    assert "evil&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "ValueError: bad evil&lt;script&gt;" in html
    md = (out / "summary.md").read_text()
    assert "<script>" not in md and "evil&lt;script&gt;" in md
    # every image the page references exists: an SVG (vector), with its PNG beside it
    images = re.findall(r'<img src="([^"]+)"', html)
    names = {Path(i).stem for i in images}
    assert {"aggregate", "profiles", "improvement", "frontier1", "temperature1"} <= names
    for img in images:
        assert img.endswith(".svg") and (out / img).read_text().lstrip().startswith("<?xml")
        assert "<script" not in (out / img).read_text()
        assert (out / img).with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the leaderboard's means are the stored final scores' means
    board = pd.read_csv(out / "leaderboard.csv")
    expected = _finals(store).groupby(["task", "algorithm"]).value.agg(["mean", "count"])
    got = board.set_index(["task", "algorithm"])
    np.testing.assert_allclose(got.loc[expected.index, "mean"], expected["mean"])
    np.testing.assert_array_equal(got.loc[expected.index, "seeds"], expected["count"])
    assert board.failed.sum() == 1
    frontier = pd.read_csv(out / "frontier.csv")
    assert len(frontier) == 4 * 2 * 3 * 10 - 9  # runs x evals, less the failed run's missing ones
    # sample sd (ddof = 1) and the t interval of the mean over seeds, labelled with its kind
    sd = _finals(store).groupby(["task", "algorithm"]).value.std(ddof=1)
    np.testing.assert_allclose(got.loc[sd.index, "sd"], sd)
    half = sps.t.ppf(0.975, got.seeds - 1) * got.sd / np.sqrt(got.seeds)
    np.testing.assert_allclose(got.mean_hi - got["mean"], half)
    assert set(board.mean_ci) == {"t, 4 seeds", "t, 3 seeds"}
    assert "Key results" in html and "(t, 4 seeds)" in html and "sd" in md
    # the frontier's points are seed means at aligned checkpoints, each over every seed
    means = pd.read_csv(out / "frontier_means.csv")
    one = means[(means.algorithm == "ppo") & (means.checkpoint == 0)].iloc[0]
    first = frontier[(frontier.algorithm == "ppo") & (frontier.task == one.task)].sort_values("step")
    first = first.groupby("run_key").head(1)
    assert one.score == pytest.approx(first.score.mean()) and one.seeds == len(first) == 4
    assert set(pd.read_csv(out / "temperature.csv").temperature) == {0.0, 0.25, 0.5, 0.75, 1.0, 1.5}
    assert "Provenance" in html and "synthetic-host" in html


@pytest.mark.slow  # 18 s; a report rendered twice stays in the default run (test_determinism)
def test_report_is_reproducible_and_replaces_only_reports(store, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["report", "--store", str(store), "--suite", "synthetic", "-o", str(out), "-q"]) == 0
    for name in ["leaderboard.csv", "aggregate.csv", "temperature.csv"]:
        assert (a / name).read_text() == (b / name).read_text()
    # re-rendering into a previous report replaces it
    assert main(["report", "--store", str(store), "--suite", "synthetic", "-o", str(a), "-q"]) == 0
    # a folder that is not a report is left alone
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["report", "--store", str(store), "--suite", "synthetic", "-o", str(other), "-q"]) == 2
    assert "not a bench report folder" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_report_from_exported_csv_matches_store(store, tmp_path, capsys):
    csv = tmp_path / "export.csv"
    assert (
        main(["export", "--store", str(store), "--suite", "synthetic", "--kind", "eval,run", "-o", str(csv)])
        == 0
    )
    assert set(pd.read_csv(csv).kind) == {"eval", "run"}
    # the report's leaderboard table, from each source (a full report from a CSV is rendered by
    # test_hostile_results and test_browser)
    boards = []
    for source in (["--store", str(store)], ["--results", str(csv)]):
        capsys.readouterr()
        assert main(["leaderboard", *source, "--suite", "synthetic", "--format", "csv"]) == 0
        boards.append(pd.read_csv(io.StringIO(capsys.readouterr().out)))
    pd.testing.assert_frame_equal(*boards, check_dtype=False)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "nope"], "no suite 'nope'"),
        (["--results", "missing.csv", "--suite", "synthetic"], "no such file"),
        (["--suite", "synthetic", "--reps", "0"], "--reps"),
        (["--suite", "synthetic", "--published", "missing.csv"], "no such file"),
        (["--suite", "synthetic", "--notes", "missing.txt"], "no such file"),
    ],
)
def test_report_bad_input_exits_2_and_writes_nothing(store, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--store", str(store), "-o", "out", "-q", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # 13 s: two full reports
def test_report_leads_with_the_authors_findings_and_keeps_them(store, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text(f"PPO-RM now beats pi_ref {EVIL}.\n\n- one finding\n- another\n", encoding="utf-8")
    out = tmp_path / "report"
    args = ["report", "--store", str(store), "--suite", "synthetic", "-o", str(out), "-q", "--reps", "100"]
    assert main([*args, "--notes", str(notes)]) == 0
    html = (out / "index.html").read_text()
    assert html.index("Findings") < html.index("Aggregate")
    assert "<li>one finding</li>" in html and "<script>" not in html
    assert "## Findings" in (out / "summary.md").read_text()
    assert (out / "notes.txt").read_text() == notes.read_text()
    # re-rendered from the copy the report keeps
    assert main([*args, "--notes", str(out / "notes.txt")]) == 0
    assert "<li>another</li>" in (out / "index.html").read_text()
    # the header names the store's file, not its folder
    assert str(tmp_path) not in html and "store bench.sqlite" in html
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00")
    assert main([*args, "--notes", str(bad)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_leaderboard_formats(store, capsys):
    assert main(["leaderboard", "--store", str(store), "--suite", "synthetic", "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "### CartPole-v1" in md and "| algorithm | seeds |" in md
    assert "evil&lt;script&gt;" in md and "<script>" not in md
    assert "rl-baselines3-zoo: ppo (published)" in md  # anchors from baselines/published.csv
    assert main(["leaderboard", "--store", str(store), "--suite", "synthetic", "--format", "csv"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert len(table) == 2 * 3 and {"iqm", "iqm_lo", "iqm_hi", "steps_to_threshold"} <= set(table.columns)
    assert main(["leaderboard", "--store", str(store), "--suite", "synthetic", "--no-published"]) == 0
    assert "published" not in capsys.readouterr().out


def _baseline(store, tmp_path) -> Path:
    csv = tmp_path / "baseline.csv"
    assert (
        main(["export", "--store", str(store), "--suite", "synthetic", "--kind", "eval,run", "-o", str(csv)])
        == 0
    )
    return csv


def test_compare_unchanged_results_pass(store, tmp_path, capsys):
    baseline = _baseline(store, tmp_path)
    out = tmp_path / "cmp"
    args = [
        "compare",
        "--store",
        str(store),
        "--suite",
        "synthetic",
        "--baseline",
        str(baseline),
        "-o",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "no regression in 6 comparisons; 6 identical" in text
    table = pd.read_csv(out / "compare.csv")
    assert set(table.verdict) == {"identical"} and set(table.method) == {"identical"}
    assert set(table.exact) == {"identical: 4/4 runs", "identical: 3/3 runs"}  # one run failed
    np.testing.assert_allclose(table.difference, 0.0)
    assert (out / "compare.md").is_file() and "<script>" not in (out / "compare.html").read_text()


def test_compare_flags_a_clearly_worse_variant(store, tmp_path, capsys):
    baseline = _baseline(store, tmp_path)
    # the "changed" algorithm: pg loses 30% of the random-to-solved range on CartPole
    db = sqlite3.connect(store)
    db.execute(
        "UPDATE evals SET value = value - 0.3 * (500 - 22.7) WHERE run_key IN"
        " (SELECT key FROM runs WHERE algorithm = 'pg' AND task = 'CartPole-v1')"
    )
    db.commit()
    db.close()
    out = tmp_path / "cmp"
    args = [
        "compare",
        "--store",
        str(store),
        "--suite",
        "synthetic",
        "--baseline",
        str(baseline),
        "-o",
        str(out),
    ]
    assert main(args) == 1
    assert "REGRESSION in 1 of 6 comparisons" in capsys.readouterr().out
    table = pd.read_csv(out / "compare.csv").set_index(["task", "algorithm"])
    row = table.loc[("CartPole-v1", "pg")]
    assert row.verdict == "regression" and row.diff_hi < -0.05 and row.method == "paired t"
    assert row.difference == pytest.approx(-0.3)
    # the exact check names the first record that differs: seed 0's first KL record (every record
    # of the variant moved), baseline value → store value
    assert re.fullmatch(r"differs: seed 0, eval/kl at step 10000, T=1: 3.69035 → -139.5", row.exact), (
        row.exact
    )
    assert (table.verdict == "regression").sum() == 1
    assert (table.verdict == "identical").sum() == 5


def test_compare_counts_new_failures_as_regressions(store, tmp_path):
    baseline = _baseline(store, tmp_path)
    db = sqlite3.connect(store)
    key = db.execute("SELECT key FROM runs WHERE algorithm='ppo' AND status='done' LIMIT 1").fetchone()[0]
    db.execute("UPDATE runs SET status='failed' WHERE key=?", (key,))
    db.commit()
    db.close()
    args = ["compare", "--store", str(store), "--suite", "synthetic", "--baseline", str(baseline)]
    assert main([*args, "-o", str(tmp_path / "cmp")]) == 1


def test_compare_bad_input_exits_2(store, tmp_path, capsys):
    base = ["compare", "--store", str(store), "-o", str(tmp_path / "cmp")]
    assert main([*base, "--suite", "synthetic", "--baseline", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"task": ["x"], "score": [1.0]}).to_csv(bad, index=False)
    assert main([*base, "--suite", "synthetic", "--baseline", str(bad)]) == 2
    assert "missing columns" in capsys.readouterr().err
    baseline = _baseline(store, tmp_path)
    assert main([*base, "--suite", "other", "--baseline", str(baseline)]) == 2
    assert "no suite 'other'" in capsys.readouterr().err
    assert main([*base, "--suite", "synthetic", "--baseline", str(baseline), "--tolerance", "-1"]) == 2
    assert not (tmp_path / "cmp").exists()


@pytest.mark.slow
def test_report_on_10000_synthetic_runs(tmp_path):
    """Acceptance: `bench report` on 10,000 runs (timed by the closing note's command, not here)."""
    s = Store(tmp_path / "big.sqlite")
    write_synthetic(
        s, labels=[f"algo-{i}" for i in range(8)], tasks=None, seeds=625, alignment=True, failed=10
    )
    s.close()
    out = tmp_path / "report"
    assert (
        main(
            ["report", "--store", str(tmp_path / "big.sqlite"), "--suite", "synthetic", "-o", str(out), "-q"]
        )
        == 0
    )
    board = pd.read_csv(out / "leaderboard.csv")
    assert board.seeds.sum() + board.failed.sum() == 10_000


def test_report_of_a_suite_without_kl_records(tmp_path):
    # plain RL suites have no KL-to-reference records: no KL figure, and no failure over it
    path = tmp_path / "plain.sqlite"
    s = Store(path)
    write_synthetic(s, labels=["ppo", "pg"], seeds=3, alignment=False, seed=2)
    s.close()
    out = tmp_path / "report"
    assert main(["report", "--store", str(path), "--suite", "synthetic", "-o", str(out), "-q"]) == 0
    assert "KL over training" not in (out / "index.html").read_text()


def test_compare_claims_no_power_where_no_spread_is_seen(store, tmp_path):
    """Records differ but every final score is equal on both sides (zero spread of the
    differences): no detectable drop is claimed, and the verdict is not under-powered either."""
    baseline = _baseline(store, tmp_path)
    db = sqlite3.connect(store)
    db.execute(
        "UPDATE evals SET value = value + 1 WHERE step = 10000 AND run_key IN"
        " (SELECT key FROM runs WHERE algorithm = 'pg' AND task = 'CartPole-v1')"
    )
    db.commit()
    db.close()
    out = tmp_path / "cmp"
    args = ["compare", "--store", str(store), "--suite", "synthetic", "--baseline", str(baseline)]
    assert main([*args, "-o", str(out)]) == 0
    row = pd.read_csv(out / "compare.csv").set_index(["task", "algorithm"]).loc[("CartPole-v1", "pg")]
    assert row.exact.startswith("differs: seed 0, eval/kl at step 10000")  # metrics in name order
    assert row.difference == 0.0 and pd.isna(row.mde) and row.verdict == "no significant change"


def test_report_refuses_an_unknown_figure_format(store, tmp_path, capsys):
    bad = tmp_path / "bad"
    assert (
        main(["report", "--store", str(store), "--suite", "synthetic", "-o", str(bad), "--format", "gif"])
        == 2
    )
    assert "unknown figure format 'gif'" in capsys.readouterr().err and not bad.exists()


@pytest.mark.slow
def test_report_figure_formats(store, tmp_path, capsys):
    out = tmp_path / "pdf"
    args = ["report", "--store", str(store), "--suite", "synthetic", "-o", str(out), "-q"]
    assert main([*args, "--format", "png,pdf"]) == 0
    names = {p.name for p in (out / "figures").iterdir()}
    assert (
        "aggregate.pdf" in names and "aggregate.png" in names and not any(n.endswith(".svg") for n in names)
    )
    assert (out / "figures" / "aggregate.pdf").read_bytes()[:4] == b"%PDF"
    assert '<img src="figures/aggregate.png"' in (out / "index.html").read_text()  # no SVG: the PNG is shown
