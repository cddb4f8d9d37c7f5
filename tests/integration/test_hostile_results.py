"""Corrupt, truncated or mistyped CSV files and hostile names, through `bench report`, `bench
leaderboard` and `bench compare` (``--results``, ``--baseline``, ``--published``).

A CSV that is not a `bench export` table (or a published-anchors table) gets one line
``error: FILE: what is wrong`` on stderr, exit status 2 and nothing written — never a traceback.
Names that are valid but hostile (markup, paths, TeX, control characters, very long, unicode) are
shown as text: escaped in HTML and Markdown, cut short in figures, never part of a file path.
"""

from __future__ import annotations

import html.parser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.store import EXPORT_COLUMNS

PUBLISHED = Path(__file__).resolve().parents[2] / "baselines" / "published.csv"


def tidy_table(tasks=("CartPole-v1",), algorithms=("ppo", "pg"), seeds=3, suite="hostile") -> pd.DataFrame:
    """A small valid `bench export` table (eval and run records), made up without a store."""
    rng = np.random.default_rng(0)
    rows = []
    for t, task in enumerate(tasks):
        for a, algo in enumerate(algorithms):
            for seed in range(seeds):
                key = f"k{t}-{a}-{seed}"
                ident = dict(suite=suite, suite_version="1", run_key=key, task=task, algorithm=algo,
                             algo="ppo", seed=seed, status="done", code="1+0123456789ab",
                             base_key=f"b{t}-{a}-{seed}", machine="0123456789", cpu="test CPU")  # fmt: skip
                for step in (0, 1000, 2000):
                    for temp in (0.0, 1.0):
                        score = 20 + 100 * a + step / 10 + rng.normal(0, 5)
                        for metric, value in [("eval/return", score), ("eval/return_std", 3.0)]:
                            rows.append(dict(ident, kind="eval", step=step, wall_time=step / 1e3,
                                             train_time=step / 2e3, temperature=temp, metric=metric,
                                             value=value, n=4))  # fmt: skip
                for metric, value in [("run/wall_time", 2.0), ("run/train_time", 1.0),
                                      ("run/env_steps", 2000), ("run/env_steps_per_s", 2000.0),
                                      ("run/failed", 0.0)]:  # fmt: skip
                    rows.append(dict(ident, kind="run", step=2000, wall_time=2.0, train_time=1.0,
                                     temperature=np.nan, metric=metric, value=value, n=pd.NA))  # fmt: skip
    return pd.DataFrame(rows)[EXPORT_COLUMNS]


GOOD = tidy_table().to_csv(index=False).encode()
GOOD_PUBLISHED = PUBLISHED.read_bytes()


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """``bench ARGV`` in this process; (exit status, stderr). Any exception fails the test."""
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*")} if path.exists() else set()


# -- commands that read a CSV, and where each may write --------------------------------------------


def commands(csv: Path, out: Path, kind: str) -> list[str]:
    good = out.parent / "good.csv"
    good.write_bytes(GOOD)
    return {
        "report": ["report", "--results", str(csv), "-o", str(out), "-q", "--reps", "20", "--no-published"],
        "leaderboard": ["leaderboard", "--results", str(csv), "--reps", "20", "--no-published"],
        "compare": [
            "compare",
            "--results",
            str(good),
            "--baseline",
            str(csv),
            "-o",
            str(out),
        ],  # fmt: skip
        "compare-results": [
            "compare",
            "--results",
            str(csv),
            "--baseline",
            str(good),
            "-o",
            str(out),
        ],  # fmt: skip
        "published": [
            "report",
            "--results",
            str(good),
            "--published",
            str(csv),
            "-o",
            str(out),
            "-q",
            "--reps",
            "20",
        ],  # fmt: skip
        "leaderboard-published": [
            "leaderboard",
            "--results",
            str(good),
            "--published",
            str(csv),
            "--reps",
            "20",
        ],  # fmt: skip
    }[kind]


def check_refused(rc: int, err: str, csv: Path, out: Path, before: set[Path]) -> None:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {csv}: "), err
    assert "Traceback" not in err
    assert not out.exists() and files_under(out.parent) == before  # nothing written


# -- explicit corrupt inputs ---------------------------------------------------------------------

frame = tidy_table()


def _cells(column: str, values) -> bytes:
    return frame.assign(**{column: values}).to_csv(index=False).encode()


CORRUPT = {
    "binary garbage": (bytes(range(256)) * 8, "binary"),
    "not UTF-8": (GOOD.replace(b"ppo", b"pp\xff\xfe", 1), "not UTF-8"),
    "UTF-16": (GOOD.decode().encode("utf-16"), "NUL bytes"),
    "truncated mid-row": (GOOD[: GOOD.index(b"eval/return", len(GOOD) // 2) + 4], "fields where the header"),
    "empty file": (b"", "empty file"),
    "blank lines only": (b"\n\n  \n", "empty file"),
    "header only": (GOOD.split(b"\n")[0] + b"\n", "no records"),
    "missing columns": (b"a,b\n1,2\n", "missing columns"),
    "value abc": (_cells("value", ["abc"] + list(frame.value[1:])), "value 'abc' is not a number"),
    "seed 1.5": (_cells("seed", 1.5), "seed '1.5' is not an integer"),
    "empty seed": (_cells("seed", ""), "empty seed"),
    "step x": (_cells("step", "x"), "step 'x' is not a number"),
    "temperature hot": (_cells("temperature", "hot"), "temperature 'hot' is not a number"),
    "n abc": (_cells("n", "abc"), "n 'abc' is not a number"),
    "wall_time abc": (_cells("wall_time", "abc"), "wall_time 'abc' is not a number"),
    "NaN scores": (_cells("value", np.nan), "a score or KL record needs a value"),
    "infinite values": (_cells("value", np.inf), "value is infinite"),
    "negative temperature": (_cells("temperature", -1.0), "temperature is negative"),
    "duplicated rows": (pd.concat([frame, frame]).to_csv(index=False).encode(), "given twice"),
    "two files concatenated": (GOOD + GOOD, "kind 'kind' is not one of"),
    "unknown kind": (_cells("kind", "zzz"), "kind 'zzz' is not one of eval, curve, run"),
    "unknown status": (_cells("status", "finished"), "status 'finished' is not one of"),
    "empty task": (_cells("task", ""), "empty task"),
    "empty algorithm": (_cells("algorithm", ""), "empty algorithm"),
    "empty run_key": (_cells("run_key", ""), "empty run_key"),
    "run with two tasks": (_cells("task", ["A", "B"] * (len(frame) // 2)), "has two values of task"),
    "stray quote": (GOOD.replace(b",3.0,4", b',3."0,4', 1), """value '3."0' is not a number"""),
    "unclosed quote": (GOOD.replace(b"eval/return", b'"eval/return', 1), "not a CSV table"),
    "extra fields": (GOOD.replace(b"\n", b",1,2\n", 4), "fields where the header has"),
    "duplicate column": (GOOD.replace(b"wall_time", b"value", 1), "duplicate column 'value'"),
}


@pytest.mark.parametrize("kind", ["report", "leaderboard", "compare", "compare-results"])
@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_results_csv_is_one_error_line_and_exit_2(case, kind, tmp_path, capsys):
    assert_refused(tmp_path / "input.csv", *CORRUPT[case], kind, capsys)


def assert_refused(csv, data: bytes, message: str, kind: str, capsys) -> None:
    """``data`` written to ``csv`` and given to command ``kind``: refused with ``message``."""
    csv.write_bytes(data)
    out = csv.parent / "out"
    argv = commands(csv, out, kind)
    before = files_under(csv.parent)
    rc, err = run_cli(argv, capsys)
    check_refused(rc, err, csv, out, before)
    assert message in err


pub = pd.read_csv(PUBLISHED, dtype=str, keep_default_na=False)
CORRUPT_PUBLISHED = {
    "binary garbage": (bytes(range(256)) * 8, "binary"),
    "not UTF-8": (GOOD_PUBLISHED.replace(b"ppo", b"\xff", 1), "not UTF-8"),
    "truncated mid-row": (GOOD_PUBLISHED[: GOOD_PUBLISHED.index(b"Pendulum") + 4], "fields where the header"),
    "empty file": (b"", "empty file"),
    "missing columns": (b"source,algorithm\nx,y\n", "missing columns"),
    "score abc": (pub.assign(score="abc").to_csv(index=False).encode(), "score 'abc' is not a number"),
    "budget inf": (pub.assign(budget="inf").to_csv(index=False).encode(), "budget 'inf' is not a finite"),
    "empty score": (pub.assign(score="").to_csv(index=False).encode(), "score '' is not a finite"),
    "seeds 1.5": (pub.assign(seeds="1.5").to_csv(index=False).encode(), "seeds '1.5' is not a count"),
    "empty task": (pub.assign(task="").to_csv(index=False).encode(), "empty task"),
}


@pytest.mark.parametrize("kind", ["published", "leaderboard-published"])
@pytest.mark.parametrize("case", list(CORRUPT_PUBLISHED))
def test_corrupt_published_csv_is_one_error_line_and_exit_2(case, kind, tmp_path, capsys):
    assert_refused(tmp_path / "published.csv", *CORRUPT_PUBLISHED[case], kind, capsys)


@pytest.mark.parametrize("kind", ["report", "compare", "published"])
def test_a_folder_or_a_missing_file_is_exit_2(kind, tmp_path, capsys):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    for path, message in [(folder, "is a folder, not a CSV file"), (tmp_path / "none.csv", "no such file")]:
        out = tmp_path / "out"
        argv = commands(path, out, kind)
        before = files_under(tmp_path)
        rc, err = run_cli(argv, capsys)
        check_refused(rc, err, path, out, before)
        assert message in err


def test_export_without_timing_is_a_valid_baseline_and_results_file(tmp_path, capsys):
    """A `bench export --no-timing` table (no wall_time / train_time columns, no timing metrics)
    reads as a baseline and as results, and renders a report (without the wall-time curves)."""
    timing = frame.metric.isin(["run/wall_time", "run/train_time", "run/env_steps_per_s"])
    csv = tmp_path / "no-timing.csv"
    frame[~timing].drop(columns=["wall_time", "train_time"]).to_csv(csv, index=False)
    rc, err = run_cli(commands(csv, tmp_path / "out", "compare"), capsys)
    assert rc == 0, err
    rc, err = run_cli(commands(csv, tmp_path / "out2", "leaderboard"), capsys)
    assert rc == 0, err
    rc, err = run_cli(commands(csv, tmp_path / "out3", "report"), capsys)
    assert rc == 0, err
    assert len(list((tmp_path / "out3" / "figures").glob("task*.png"))) == 1


# -- corrupt inputs, generated -------------------------------------------------------------------

BAD_CELLS = ["abc", "", "1.5", "-1", "nan", "inf", "-inf", "1e999", '"', "\n", "x,y", "ÿ", "0x10", " ",
             "eval", "done", "1" * 400, "<script>", "../../x", "$\\frac{1}{0}$"]  # fmt: skip


@st.composite
def corrupt_csv(draw) -> bytes:
    """The good CSV with one to three damages: truncation, bytes replaced / inserted / deleted, a
    cell replaced, a column or the header dropped, rows repeated or shuffled."""
    text = GOOD.decode()
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        data = "".join(lines).encode()
        op = draw(st.sampled_from(["truncate", "bytes", "insert", "delete", "cell", "column", "header",
                                   "repeat", "shuffle"]))  # fmt: skip
        if op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op in ("bytes", "insert", "delete") and data:
            i = draw(st.integers(0, len(data) - 1))
            junk = draw(st.binary(min_size=1, max_size=8))
            data = {
                "bytes": data[:i] + junk + data[i + len(junk) :],
                "insert": data[:i] + junk + data[i:],
                "delete": data[:i] + data[i + len(junk) :],
            }[op]
        elif op in ("cell", "column") and len(lines) > 1:
            table = [line.rstrip("\r\n").split(",") for line in lines]
            width = len(table[0])
            col = draw(st.integers(0, width - 1))
            if op == "cell":
                row = draw(st.integers(1, len(table) - 1))
                if col < len(table[row]):
                    table[row][col] = draw(st.sampled_from(BAD_CELLS))
            else:
                table = [r[:col] + r[col + 1 :] for r in table]
            data = "".join(",".join(r) + "\n" for r in table).encode()
        elif op == "header":
            data = "".join(lines[1:]).encode()
        elif op == "repeat" and len(lines) > 1:
            i = draw(st.integers(1, len(lines) - 1))
            data = "".join(lines + [lines[i]] * draw(st.integers(1, 3))).encode()
        elif op == "shuffle" and len(lines) > 2:
            body = draw(st.permutations(lines[1:]))
            data = "".join([lines[0], *body]).encode()
        try:
            lines = data.decode().splitlines(keepends=True)
        except UnicodeDecodeError:
            return data
    return "".join(lines).encode()


@settings(max_examples=120, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(data=corrupt_csv(), kind=st.sampled_from(["leaderboard", "compare", "compare-results"]))
def test_generated_corrupt_csvs_are_refused_or_read_never_a_traceback(data, kind, tmp_path_factory, capsys):
    """Whatever the damage: exit 0 (still a valid table), 1 (compare found a regression) or 2
    with one ``error: FILE: ...`` line and nothing written."""
    tmp = tmp_path_factory.mktemp("corrupt")
    csv = tmp / "input.csv"
    csv.write_bytes(data)
    out = tmp / "out"
    argv = commands(csv, out, kind)
    before = files_under(tmp)
    rc, err = run_cli(argv, capsys)
    event(f"exit {rc}")  # --hypothesis-show-statistics: how many damaged files still read
    if rc == 2 and not err.startswith("error: nothing to compare"):
        check_refused(rc, err, csv, out, before)
    else:
        assert rc in (0, 1, 2) and "Traceback" not in err, err


# -- hostile names ---------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
HOSTILE = [
    SCRIPT,
    "../../escape",
    "/etc/passwd",
    "$\\frac{1}{0}$",
    "$\\notacommand{$",
    '"><img src=x onerror=alert(1)>',
    "a" * 300,
    "line\nbreak\r\tand\x1b[2J escape",
    "ünïcødé ✓ 中文 🙂",
    "[link](javascript:alert(1)) ![img](http://x/y.png) *em* `code` | pipe",
    "nan",
]


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text: str) -> _Tags:
    p = _Tags()
    p.feed(text)
    return p


def check_safe_html(page: str, folder: Path) -> _Tags:
    p = parse_html(page)
    assert "script" not in {t for t, _ in p.tags}
    assert not [a for _, attrs in p.tags for a in attrs if a.startswith("on")]  # no event handlers
    for _, attrs in p.tags:
        for name in ("src", "href"):
            ref = attrs.get(name)
            if ref is None or ref.startswith("#"):
                continue
            assert ":" not in ref and (folder / ref).resolve().is_relative_to(folder.resolve()), ref
            assert (folder / ref).is_file(), ref
    return p


def hostile_table() -> pd.DataFrame:
    names = HOSTILE
    table = tidy_table(tasks=["CartPole-v1", *names[:3]], algorithms=names[3:], seeds=2, suite=SCRIPT)
    return table


def test_hostile_names_render_safely_in_report_leaderboard_and_compare(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output folders are relative: reports/..., compare/...
    csv = tmp_path / "hostile.csv"
    hostile_table().to_csv(csv, index=False)
    published = tmp_path / "published.csv"
    pd.DataFrame([dict(source=SCRIPT, algorithm=HOSTILE[3], task="CartPole-v1", budget=1000, score=50,
                       note=HOSTILE[7], std=1.0, seeds=3)]).to_csv(published, index=False)  # fmt: skip
    rc, err = run_cli(["report", "--results", str(csv), "--published", str(published), "-q", "--reps", "20"],
                      capsys)  # fmt: skip
    assert rc == 0, err
    # the default folder is a safe slug of the suite name, under reports/
    (folder,) = (tmp_path / "reports").iterdir()
    assert folder.name == "script_alert_1_script"
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")} - {Path("hostile.csv"),
                                                                          Path("published.csv")}  # fmt: skip
    assert all(p.parts[0] == "reports" for p in written)
    assert all(p.resolve().is_relative_to(folder.resolve()) for p in folder.rglob("*"))
    page = (folder / "index.html").read_text(encoding="utf-8")
    p = check_safe_html(page, folder)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = "".join(p.text)
    for name in HOSTILE[:6] + HOSTILE[8:]:  # every name is shown, as text
        assert name in text, name
    figures = sorted((folder / "figures").iterdir())
    pngs, svgs = [f for f in figures if f.suffix == ".png"], [f for f in figures if f.suffix == ".svg"]
    assert pngs and len(pngs) + len(svgs) == len(figures)
    assert all(f.read_bytes()[:4] == b"\x89PNG" for f in pngs)
    # SVG text is drawn as glyph paths: no name reaches the file as markup
    assert svgs and all("<script" not in f.read_text(encoding="utf-8") for f in svgs)
    md = (folder / "summary.md").read_text(encoding="utf-8")
    assert "<script>" not in md and "<img" not in md and "\x1b" not in md
    assert "[link\\](javascript:alert(1))" in md and "![img\\](http" in md  # no link, no image
    assert "](javascript" not in md.replace("\\](", "") and "\\$\\\\frac{1}{0}\\$" in md  # no math
    for line in md.splitlines():  # a name never breaks a table row
        if line.startswith("|"):
            assert line.endswith("|")

    rc, err = run_cli(["leaderboard", "--results", str(csv), "--format", "md", "--reps", "20",
                       "--no-published"], capsys)  # fmt: skip
    assert rc == 0, err

    rc, err = run_cli(["compare", "--results", str(csv), "--baseline", str(csv),
                       "--store", str(tmp_path / "runs" / "bench.sqlite")], capsys)  # fmt: skip
    assert rc == 0, err
    (cfolder,) = (tmp_path / "runs" / "compare").iterdir()
    assert cfolder.name == "script_alert_1_script"
    check_safe_html((cfolder / "compare.html").read_text(encoding="utf-8"), cfolder)
    cmd = (cfolder / "compare.md").read_text(encoding="utf-8")
    assert "<script>" not in cmd and "\x1b" not in cmd


def test_leaderboard_text_has_no_control_characters(tmp_path, capsys):
    csv = tmp_path / "hostile.csv"
    hostile_table().to_csv(csv, index=False)
    capsys.readouterr()
    assert main(["leaderboard", "--results", str(csv), "--reps", "20", "--no-published"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\t" not in out


def test_markdown_escape_and_figure_labels():
    from bench.report.figures import short
    from bench.report.tables import md_escape, plain

    assert md_escape("a|b\nc") == "a\\|b c"
    assert md_escape("[x](javascript:y)") == "[x\\](javascript:y)"
    assert md_escape("$x$ *y* _z_ `w` ~v~") == "\\$x\\$ \\*y\\* \\_z\\_ \\`w\\` \\~v\\~"
    assert md_escape("<b>&") == "&lt;b&gt;&amp;"
    assert plain("a\x1b[2Jb\r\n") == "a\ufffd[2Jb  "
    assert len(short("x" * 1000)) == 48 and short("ok") == "ok"


def test_a_large_export_with_commas_and_quotes_in_names_reads_back(tmp_path):
    """50k rows whose algorithm names hold commas (quoted fields) read back whole."""
    from bench.results import Results

    one = tidy_table(algorithms=[f"algo,{i}" for i in range(30)], seeds=50)
    big = pd.concat([one, one], ignore_index=True)
    big["run_key"] = big.run_key + np.repeat(["a", "b"], len(big) // 2)
    csv = tmp_path / "big.csv"
    big.to_csv(csv, index=False)
    results = Results.from_csv(csv)
    assert len(results.runs) == 3000
    assert set(results.runs.algorithm) == {f"algo,{i}" for i in range(30)}


NAMES = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
).filter(str.strip)  # any text a UTF-8 file can hold


@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(suite=NAMES, task=NAMES, algorithm=NAMES)
def test_any_names_go_through_leaderboard_and_compare(suite, task, algorithm, tmp_path_factory, capsys):
    """Any non-blank names (control characters, quotes, commas, markup, unicode) survive the CSV
    round trip and print as one table row each."""
    import re

    tmp = tmp_path_factory.mktemp("names")
    csv = tmp / "names.csv"
    tidy_table(tasks=[task], algorithms=[algorithm, algorithm + "-2"], seeds=2, suite=suite).to_csv(
        csv, index=False
    )
    rc, err = run_cli(["leaderboard", "--results", str(csv), "--format", "md", "--reps", "10",
                       "--no-published"], capsys)  # fmt: skip
    assert rc == 0, err
    rc, err = run_cli(["compare", "--results", str(csv), "--baseline", str(csv), "--suite", suite, "-o",
                       str(tmp / "out")], capsys)  # fmt: skip
    assert rc == 0, err
    md = (tmp / "out" / "compare.md").read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 4  # header, rule, two algorithms
    assert {len(re.findall(r"(?<!\\)\|", row)) for row in rows} == {10}  # 9 columns
    page = (tmp / "out" / "compare.html").read_text(encoding="utf-8")
    assert "script" not in {t for t, _ in parse_html(page).tags}
