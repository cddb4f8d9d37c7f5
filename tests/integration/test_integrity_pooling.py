"""Submissions merged by `bench leaderboard` and `bench report` (``--results NAME=FILE`` repeated)
stay apart: no label a submitter picks can pool its runs with another submission's, no two run
keys collide, and every row is credited to the submission its runs came from. Task names with
repeated or trailing spaces survive the leaderboard page's task filter.
"""

from __future__ import annotations

import html.parser
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench.claims import claims_table
from bench.cli import main
from bench.results import Results, method_of
from tests.integration.test_hostile_results import tidy_table


def finals(table: pd.DataFrame) -> pd.Series:
    """Each run's final score in a tidy table (last greedy ``eval/return``), by (label, seed)."""
    ev = table[(table.kind == "eval") & (table.metric == "eval/return") & (table.temperature == 0.0)]
    return ev.sort_values("step").groupby(["algorithm", "seed"]).value.last()


def submission(labels: tuple[str, ...], shift: float = 0.0, prefix: str = "") -> pd.DataFrame:
    """A three-seed `bench export` table of ``labels``, its scores moved by ``shift`` (so that two
    submissions' runs differ) and its run keys prefixed by ``prefix``."""
    table = tidy_table(algorithms=labels)
    table.loc[table.kind == "eval", "value"] += shift
    table["run_key"] = prefix + table.run_key
    return table


def write(tmp_path: Path, tables: dict[str, pd.DataFrame]) -> list[str]:
    """The tables as CSV files: ``--results NAME=FILE`` arguments."""
    args = []
    for i, (name, table) in enumerate(tables.items()):
        path = tmp_path / f"sub{i}.csv"
        table.to_csv(path, index=False)
        args += ["--results", f"{name}={path}"]
    return args


def expected(tables: dict[str, pd.DataFrame]) -> dict[tuple[str, str], list[float]]:
    """(submission, its label) -> the final scores of its runs, by seed."""
    out = {}
    for name, table in tables.items():
        for (label, _), score in finals(table).items():
            out.setdefault((name, label), []).append(score)
    return out


# A labels a run "ppo (B)": what the merge names B's "ppo" when both submissions use "ppo"
FORGED = {"A": submission(("ppo", "ppo (B)")), "B": submission(("ppo",), shift=500.0)}
# "x" + "/" + "y/..." and "x/y" + "/" + "..." would be the same joined key
COLLIDING = {"x": submission(("ppo",), prefix="y/"), "x/y": submission(("pg",), shift=500.0)}


def check_rows(table: pd.DataFrame, tables: dict[str, pd.DataFrame], value: str) -> None:
    """Each (submission, label) of ``tables`` is one row of ``table`` (one per run label, with
    ``value`` the mean final score over its runs), with its own three seeds and nobody else's."""
    want = expected(tables)
    assert sorted(table.seeds) == [3] * len(want), dict(zip(table.algorithm, table.seeds, strict=True))
    assert table.algorithm.is_unique and "submission" in table
    got = {}
    for r in table.itertuples():
        match = [k for k, v in want.items() if k[0] == r.submission and getattr(r, value) == pytest.approx(
            sum(v) / len(v))]  # fmt: skip
        assert len(match) == 1, f"row {r.algorithm!r} of {r.submission!r} matches no submitted label"
        got[match[0]] = r.algorithm
    assert set(got) == set(want)


def test_a_label_naming_another_submission_does_not_pool_its_runs(tmp_path, capsys):
    out = tmp_path / "board.csv"
    args = ["leaderboard", *write(tmp_path, FORGED), "--format", "csv", "-o", str(out), "--reps", "20"]
    assert main(args) == 0, capsys.readouterr().err
    board = pd.read_csv(out)
    check_rows(board, FORGED, "mean")
    # the merge's own marker names the submission a row comes from: "ppo (B)" is B's ppo
    shown = dict(zip(board.algorithm, board.submission, strict=True))
    assert shown.get("ppo (B)") == "B" and shown.get("ppo (A)") == "A"


def test_run_keys_of_submissions_never_collide(tmp_path, capsys):
    out = tmp_path / "board.csv"
    args = ["leaderboard", *write(tmp_path, COLLIDING), "--format", "csv", "-o", str(out), "--reps", "20"]
    assert main(args) == 0, capsys.readouterr().err
    parts = [(name, Results.from_tidy(t, source=name)) for name, t in COLLIDING.items()]
    merged = Results.combine(parts)
    assert merged.runs.run_key.is_unique and len(merged.runs) == sum(len(r.runs) for _, r in parts)
    assert len(merged.evals) == sum(len(r.evals) for _, r in parts)
    assert merged.evals.run_key.isin(merged.runs.run_key).all()
    check_rows(pd.read_csv(out), COLLIDING, "mean")


@pytest.mark.parametrize("tables", [FORGED, COLLIDING], ids=["forged-label", "colliding-keys"])
def test_report_keeps_every_submission_apart(tables, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["report", *write(tmp_path, tables), "-o", str(out), "-q", "--reps", "20", "--no-published",
            "--format", "png"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    scores = pd.read_csv(out / "final_scores.csv")
    runs = sum(len(v) for v in expected(tables).values())
    assert len(scores) == scores.run_key.nunique() == runs  # no run lost or merged
    seeds = scores.groupby("algorithm").seed.size()
    assert sorted(seeds) == [3] * len(expected(tables)), seeds.to_dict()
    per_row = scores.groupby("algorithm").agg(
        submission=("submission", "unique"), seeds=("seed", "nunique"), score=("score", "mean")
    )
    assert all(len(s) == 1 for s in per_row.submission)
    per_row = per_row.assign(submission=[s[0] for s in per_row.submission]).reset_index()
    check_rows(per_row, tables, "score")
    check_rows(pd.read_csv(out / "leaderboard.csv"), tables, "mean")


@pytest.mark.parametrize(
    "names",
    [
        {"A": ("dpo[beta=0.1]", "dpo (B)[beta=0.1]", "ppo (A)"), "B": ("dpo[beta=0.1]", "ppo")},
        {"A": ("ppo", "ppo (a[b)"), "a[b": ("ppo", "ppo[lr=1]"), "a(b": ("ppo",)},
        {"s": ("ppo", "ppo (t)"), "t": ("ppo", "ppo (s)", "ppo (t) (s)")},
    ],
)
def test_merged_labels_are_unique_and_each_method_belongs_to_one_submission(names):
    merged = Results.combine(
        [(name, Results.from_tidy(submission(labels), source=name)) for name, labels in names.items()]
    )
    pairs = merged.runs[["submission", "algorithm"]].drop_duplicates()
    assert len(pairs) == sum(len(v) for v in names.values()) and pairs.algorithm.is_unique
    owners = pairs.groupby(pairs.algorithm.map(method_of)).submission.nunique()
    assert (owners == 1).all(), owners


def with_kl(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a KL to the reference at each T = 1 evaluation (an alignment run's records)."""
    ev = table[(table.kind == "eval") & (table.metric == "eval/return") & (table.temperature == 1.0)]
    return pd.concat([table, ev.assign(metric="eval/kl", value=0.5 + ev.step / 1000)], ignore_index=True)


def test_claims_compare_methods_within_one_submission():
    def merged(names: dict[str, tuple[str, ...]]) -> Results:
        return Results.combine(
            [(n, Results.from_tidy(with_kl(submission(labels)), source=n)) for n, labels in names.items()]
        )

    # A's DPO against B's PPO: seeds of two submissions paired as if they shared a reference
    assert claims_table(merged({"A": ("dpo",), "B": ("rlhf-ppo",)})).empty
    both = claims_table(merged({"A": ("dpo", "rlhf-ppo"), "B": ("rlhf-ppo", "dpo")}))
    assert list(both.claim) == ["A: DPO's frontier dominates PPO's", "B: DPO's frontier dominates PPO's"]
    assert set(both.verdict) == {"does not hold", "holds"}  # each submission's own runs (A's DPO is lower)


# -- the leaderboard page's task filter ---------------------------------------------------------------

TASKS = ("a  b", "c ")  # browsers collapse and trim the text of an <option> without a value


class _Page(html.parser.HTMLParser):
    """The task <select>'s options and the board's rows' data-task attributes."""

    def __init__(self):
        super().__init__()
        self.options: list[dict] = []
        self.rows: list[str | None] = []
        self.in_select = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select" and attrs.get("id") == "task":
            self.in_select = True
        elif tag == "option" and self.in_select:
            self.options.append(attrs)
        elif tag == "tr" and "data-task" in attrs:
            self.rows.append(attrs["data-task"])

    def handle_endtag(self, tag):
        if tag == "select":
            self.in_select = False


@pytest.fixture
def page(tmp_path, capsys) -> Path:
    csv = tmp_path / "tasks.csv"
    tidy_table(tasks=TASKS).to_csv(csv, index=False)
    out = tmp_path / "page.html"
    args = ["leaderboard", "--results", str(csv), "--format", "html", "-o", str(out), "--reps", "20"]
    assert main(args) == 0
    return out


def test_task_filter_options_carry_the_exact_task_names(page):
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    assert len(parsed.options) == len(TASKS) + 1 and parsed.options[0].get("value") == ""
    assert [o.get("value") for o in parsed.options[1:]] == sorted(TASKS)
    assert sorted(set(parsed.rows)) == sorted(TASKS) and len(parsed.rows) == 2 * len(TASKS)


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")), reason="needs chromium")
def test_choosing_a_task_with_odd_spaces_shows_its_rows(page):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu"]:
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(page.as_uri())
        select = Select(driver.find_element(By.ID, "task"))
        for i, task in enumerate(sorted(TASKS)):
            select.select_by_index(i + 1)
            shown = [r for r in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr") if r.is_displayed()]
            assert [r.get_attribute("data-task") for r in shown] == [task, task]
            assert driver.find_element(By.ID, "shown").text == f"2 of {2 * len(TASKS)} rows shown"
    finally:
        driver.quit()


def test_key_results_compare_two_submissions_unpaired_and_one_submissions_labels_by_seed():
    """Seed numbers pair two labels of one submission (one code base seeds both alike); two
    submissions' seed 0 are unrelated runs, so the report's first lines compare them by Welch's t
    (the interval scipy gives for the same scores), never paired by seed number."""
    from scipy import stats as sps

    from bench.report.render import key_results

    a, b = submission(("ppo",), shift=0.0), submission(("pg",), shift=-30.0)
    merged = Results.combine([(n, Results.from_tidy(t, source=n)) for n, t in (("A", a), ("B", b))])

    def first(r):  # the report's first line about CartPole
        return next(k for k in key_results(r, {"ppo", "pg"}, None, None, checks=[]) if k.startswith("Cart"))

    line = first(merged)
    fa, fb = finals(a)["ppo"].to_numpy(), finals(b)["pg"].to_numpy()
    ci = sps.ttest_ind(fa, fb, equal_var=False).confidence_interval(0.95)
    assert f"{fa.mean() - fb.mean():+.3f} [{ci.low:+.3f}, {ci.high:+.3f}] (Welch" in line

    both = submission(("ppo", "pg"))  # one submission: its labels' seeds pair
    line = first(Results.from_tidy(both, source="A"))
    f = finals(both)
    d = f["pg"].to_numpy() - f["ppo"].to_numpy()
    ci = sps.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert f"{d.mean():+.3f} [{ci.low:+.3f}, {ci.high:+.3f}] (paired t" in line
