"""Integrity under careless and hostile use: no command destroys an input, leaves a mixed or
half-written file, or answers bad input with anything but one ``error:`` line and exit status 2.

* An output path that is (or resolves to) one of the command's inputs is refused, nothing written.
* ``bench report`` replaces only what it wrote: the author's files in a report folder survive a
  re-render; the folder is swapped in one step, and a render killed in between is recovered.
* Every writer writes through a temporary file of its own: concurrent writers to one path leave one
  whole file, and what a killed writer left is cleaned up by the next.
* Numeric options are finite and in range; argv that is not UTF-8 text is refused before a store
  is created; CSV cells that a spreadsheet would run as a formula are neutralised.
* Generated hostile values for the gate's options and output paths (hypothesis): always exit 0, 1
  or 2, never a traceback or a hang, one ``error:`` line on exit 2, and no input file changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import gate
from bench.cli import main
from bench.safeio import csv_safe, replace_folder, write_file
from tests.integration.test_hostile_results import GOOD, tidy_table

ROOT = Path(__file__).resolve().parents[2]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its sha256 (dot-files included)."""
    return {p.relative_to(path).as_posix(): sha(p) for p in sorted(path.rglob("*")) if p.is_file()}


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    return err[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A small finished store (the tiny suite, 2 seeds)."""
    from tests.conftest import TINY, run_in_cache

    tmp = tmp_path_factory.mktemp("integrity")
    (tmp / "tiny.yaml").write_text(TINY)
    store = run_in_cache(tmp, tmp / "tiny.yaml")
    with sqlite3.connect(store) as db:  # all in the main file: copies of it are whole stores
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store


@pytest.fixture
def results(tmp_path) -> Path:
    path = tmp_path / "results.csv"
    path.write_bytes(GOOD)
    return path


# -- 1. an output that is an input ------------------------------------------------------------------


def test_an_output_that_is_an_input_is_refused(tmp_path, store, results, capsys):
    """`export -o STORE` once replaced the store with CSV text; `leaderboard --store X -o X` too."""
    copy = tmp_path / "copy.sqlite"
    shutil.copy(store, copy)
    link = tmp_path / "link.sqlite"
    link.symlink_to(copy)
    before = {p: sha(p) for p in (copy, results)}
    cases = [
        ["export", "--store", str(copy), "-o", str(copy)],
        ["export", "--store", str(copy), "-o", str(link)],  # resolves to the store
        ["export", "--store", str(link), "-o", str(tmp_path / "." / "copy.sqlite")],
        ["leaderboard", "--store", str(copy), "--suite", "tiny", "-o", str(copy)],
        ["leaderboard", "--results", str(results), "-o", str(results)],
        ["leaderboard", "--results", f"mine={results}", "--format", "csv", "-o", str(results)],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        assert "this command reads; choose another output" in one_error(capsys)
    baseline = tmp_path / "compare.csv"  # a baseline named like compare's own output, in its folder
    baseline.write_bytes(GOOD)
    assert main(["compare", "--results", str(results), "--baseline", str(baseline), "-o", str(tmp_path)]) == 2
    assert "--baseline file this command reads" in one_error(capsys)
    assert {p: sha(p) for p in (copy, results)} == before and sha(baseline) == hashlib.sha256(
        GOOD
    ).hexdigest()
    argv = ["import", str(results), "--task", "CartPole-v1", "--algorithm", "ppo", "--suite", "mine"]
    assert main([*argv, "-o", str(results)]) == 2
    assert "is the file to import this command reads" in one_error(capsys)
    assert main(["report", "--store", str(copy), "--suite", "tiny", "-o", str(copy), "-q"]) == 2
    assert "not a bench report folder" in one_error(capsys) and sha(copy) == before[copy]


# -- 2. a report replaces only what it wrote -------------------------------------------------------


def _report(results: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "report",
            "--results",
            str(results),
            "-o",
            str(out),
            "-q",
            "--reps",
            "20",
            "--no-published",
            "--format",
            "png",
            *extra,
        ]
    )


def test_a_report_keeps_the_authors_files_and_notes(tmp_path, results, capsys):
    """`report --notes DIR/NOTES.txt -o DIR` once deleted every file of the earlier folder, the
    notes included, and the next render then failed for want of them."""
    out = tmp_path / "rep"
    assert _report(results, out) == 0
    notes = out / "NOTES.txt"
    notes.write_text("## Findings\n\nPPO learns.\n")
    (out / "mine").mkdir()
    (out / "mine" / "draft.md").write_text("my own draft")
    for _ in range(2):
        capsys.readouterr()
        assert _report(results, out, "--notes", str(notes)) == 0
        assert "kept 2 files bench did not write (NOTES.txt, mine/draft.md)" in capsys.readouterr().err
        assert notes.read_text() == "## Findings\n\nPPO learns.\n"
        assert (out / "mine" / "draft.md").read_text() == "my own draft"
        assert (out / "notes.txt").read_text() == notes.read_text()  # bench's copy of the notes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no tmp or old folder left


def test_a_report_does_not_overwrite_an_authors_file_of_a_name_it_writes(tmp_path, results, capsys):
    out = tmp_path / "rep"
    assert _report(results, out) == 0
    meta = out / "report.json"  # a report whose file list misses summary.md: as if the author made it
    info = json.loads(meta.read_text())
    info["files"].remove("summary.md")
    meta.write_text(json.dumps(info))
    (out / "summary.md").write_text("the author's summary")
    before = tree(out)
    capsys.readouterr()
    assert _report(results, out) == 2
    assert "summary.md: a file bench did not write" in one_error(capsys)
    assert tree(out) == before


def test_the_report_folder_is_swapped_in_one_step_and_a_killed_swap_is_recovered(
    tmp_path, results, monkeypatch
):
    """A kill between the two renames of the old swap left no report at the path."""
    new, out = tmp_path / "new", tmp_path / "out"
    for folder, text in [(new, "new"), (out, "old")]:
        folder.mkdir()
        (folder / "index.html").write_text(text)
    renames = []
    real_rename = Path.rename
    monkeypatch.setattr(
        Path, "rename", lambda self, target: renames.append(self) or real_rename(self, target)
    )
    replace_folder(new, out)
    assert (out / "index.html").read_text() == "new" and not new.exists()
    assert renames == []  # one renameat2(RENAME_EXCHANGE): at no moment was there no folder at out
    monkeypatch.undo()
    # a two-rename swap killed between its renames: the old report waits aside under a dead pid
    report = tmp_path / "rep"
    assert _report(results, report) == 0
    (report / "NOTES.txt").write_text("kept")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    aside = tmp_path / f".rep.old{int(dead.stdout)}"
    report.rename(aside)
    half = tmp_path / f".rep.tmp{int(dead.stdout)}"  # and a killed render's half-built folder
    half.mkdir()
    assert _report(results, report) == 0
    assert (report / "NOTES.txt").read_text() == "kept" and not aside.exists() and not half.exists()


# -- 4. temporary files of one's own ----------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_exports_to_one_path_leave_one_whole_file(tmp_path, store):
    """Two exports through one fixed OUT.tmp once produced a file that matched neither."""
    out = tmp_path / "out.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kinds = ["eval", "eval,curve,run"]
    expected = {}
    for kind in kinds:
        single = tmp_path / f"single-{kind}.csv"
        assert main(["export", "--store", str(store), "--kind", kind, "-o", str(single)]) == 0
        expected[kind] = single.read_bytes()
    for _ in range(2):
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.cli",
                    "export",
                    "--store",
                    str(store),
                    "--kind",
                    kind,
                    "-o",
                    str(out),
                ],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for kind in kinds
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        assert out.read_bytes() in expected.values()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    out = tmp_path / "board.csv"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    left = tmp_path / f".board.csv.{int(dead.stdout)}.0badc0de.tmp"
    left.write_text("half")
    alive = tmp_path / f".board.csv.{os.getppid()}.0badc0de.tmp"  # a live writer's: left alone
    alive.write_text("busy")
    write_file(out, "a,b\n")
    assert out.read_text() == "a,b\n" and not left.exists() and alive.exists()

    def broken(path: Path) -> None:
        path.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_file(out, broken)
    assert out.read_text() == "a,b\n" and sorted(p.name for p in tmp_path.iterdir()) == [alive.name, out.name]


# -- 7. numeric options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--tolerance", "1e15"],
        ["plan", "--tolerance", "1e17"],
        ["compare", "--tolerance", "nan"],
        ["plan", "--tolerance", "-inf"],
        ["compare", "--effect", "nan"],
        ["plan", "--effect", "0"],
        ["compare", "--confidence", "1"],
        ["plan", "--confidence", "nan"],
        ["report", "--reps", "0"],
        ["leaderboard", "--seed", "-1"],
        ["run", "smoke", "--jobs", "0"],
        ["replicate", "x", "--margin", "inf"],
        ["replicate", "x", "--seeds", "1"],
        ["replicate", "x", "--seed-start", "1e3"],
    ],
)
def test_numeric_options_are_finite_and_in_range(argv, tmp_path, results, capsys):
    """`--tolerance 1e15` once hung the gate; `--tolerance nan` gave a traceback and exit 1."""
    if argv[0] in ("compare", "plan", "report", "leaderboard"):
        argv = [*argv, "--results", str(results)]
    option = next(a for a in argv if a.startswith("--"))
    assert main(argv) == 2
    line = one_error(capsys)
    assert f"bench {argv[0]}: argument {option}" in line and f"see `bench {argv[0]} --help`" in line


def test_the_gates_search_ends_for_any_tolerance():
    start = time.monotonic()
    for tolerance in (0.0, 0.05, 1e12, 1e15, 1e17, 1e300):
        mde = gate.minimum_detectable_effect(0.1, 4, 0.95, tolerance)
        assert mde > tolerance or mde == float("inf")
    assert gate.minimum_detectable_effect(0.1, 4, 0.95, 1e17) == float("inf")
    assert time.monotonic() - start < 5


# -- 8. argv that is not UTF-8 text ------------------------------------------------------------------


def test_argv_that_is_not_utf8_is_refused_before_a_store_exists(tmp_path, capsys, monkeypatch):
    """`bench run 'dir\\xff/s.yaml'` once raised UnicodeEncodeError and left a new 64 KB store."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/dir\xff"))
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "integration" / "suites" / "determinism-control.yaml", folder / "s.yaml")
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["run", str(folder / "s.yaml"), "--store", str(tmp_path / "st.sqlite"), "-q"],
        ["leaderboard", "--results", str(folder / "s.yaml")],
        ["report", "--results", os.fsdecode(b"x\xff.csv"), "-o", str(tmp_path / "r")],
    ):
        assert main(argv) == 2
        line = one_error(capsys)
        assert "\\xff" in line and "is not UTF-8 text" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]


# -- 11. CSV cells that would run as formulas ------------------------------------------------------


FORMULAS = {"ppo": '=HYPERLINK("http://x","y")', "pg": "@SUM(1+1)"}


def test_csv_outputs_neutralise_formulas(tmp_path, capsys):
    table = tidy_table()
    table["algorithm"] = table.algorithm.map(FORMULAS)
    table["task"] = "+cmd|' /C calc'!A0"
    hostile = tmp_path / "hostile.csv"
    table.to_csv(hostile, index=False)
    board = tmp_path / "board.csv"
    assert (
        main(["leaderboard", "--results", str(hostile), "--format", "csv", "-o", str(board), "--reps", "20"])
        == 0
    )
    report = tmp_path / "rep"
    assert _report(hostile, report) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--results", str(hostile), "--format", "csv", "--reps", "20"]) == 0
    stdout = tmp_path / "stdout.csv"
    stdout.write_text(capsys.readouterr().out)
    for path in (board, report / "final_scores.csv", report / "leaderboard.csv", stdout):
        cells = pd.read_csv(path, dtype=str, keep_default_na=False)
        text = cells.stack()
        assert not text.str.match(r"[=+@]").any(), path
        assert {"'" + v for v in FORMULAS.values()} <= set(text), path
        assert "'+cmd|' /C calc'!A0" in set(text), path
    # numbers keep their signs, and a neutralised file still reads back
    assert csv_safe(pd.DataFrame({"x": ["-1.5", "+2", "-inf", "-x"]})).x.tolist() == [
        "-1.5",
        "+2",
        "-inf",
        "'-x",
    ]
    assert main(["leaderboard", "--results", str(report / "final_scores.csv"), "--format", "csv"]) in (0, 2)


# -- hostile generators: the gate's options and output paths ---------------------------------------

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "1e15",
            "1e17",
            "1e309",
            "-0",
            "0",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "0x10",
            "1_000",
            "",
            " ",
            "1e-320",
            "abc",
            "1,5",
            "٣",
        ]
    ),
    st.integers(-(10**20), 10**20).map(str),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    command=st.sampled_from(["compare", "plan"]),
    option=st.sampled_from(["--tolerance", "--effect", "--confidence"]),
    value=NUMBERS,
)
def test_generated_gate_options_never_hang_or_crash(command, option, value, tmp_path, results, capsys):
    before = sha(results)
    argv = [command, "--results", str(results), f"{option}={value}"]
    if command == "compare":
        argv += ["--baseline", str(results), "-o", str(tmp_path / "cmp")]
    capsys.readouterr()
    start = time.monotonic()
    rc = main(argv)
    assert time.monotonic() - start < 60
    assert rc in (0, 1, 2)
    if rc == 2:
        one_error(capsys)
    assert sha(results) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    command=st.sampled_from(["export", "leaderboard", "leaderboard-csv", "compare", "report"]),
    target=st.sampled_from(
        ["store", "results", "store-link", "store-dotted", "folder-of-store", "store-wal"]
    ),
)
def test_generated_output_paths_never_change_an_input(command, target, tmp_path_factory, store, capsys):
    tmp = tmp_path_factory.mktemp("out")
    copy = tmp / "s.sqlite"
    shutil.copy(store, copy)
    results = tmp / "r.csv"
    results.write_bytes(GOOD)
    link = tmp / "link"
    link.symlink_to(copy)
    out = {
        "store": copy,
        "results": results,
        "store-link": link,
        "store-dotted": tmp / "." / "s.sqlite",
        "folder-of-store": tmp,
        "store-wal": tmp / "s.sqlite-wal",
    }[target]
    source = ["--store", str(copy), "--suite", "tiny"] if target != "results" else ["--results", str(results)]
    argv = {
        "export": ["export", "--store", str(copy), "-o", str(out)],
        "leaderboard": ["leaderboard", *source, "-o", str(out), "--reps", "20"],
        "leaderboard-csv": ["leaderboard", *source, "--format", "csv", "-o", str(out), "--reps", "20"],
        "compare": ["compare", "--results", str(results), "--baseline", str(results), "-o", str(out)],
        "report": ["report", *source, "-o", str(out), "-q", "--reps", "20", "--format", "png"],
    }[command]
    given = {
        Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in ("--store", "--results", "--baseline")
    }
    read = [p for p in tmp.iterdir() if (p.name.startswith("s.sqlite") and copy in given) or p in given]
    before = {p: sha(p) for p in read}
    capsys.readouterr()
    rc = main(argv)
    if rc == 2:
        one_error(capsys)
    assert {p: sha(p) for p in read} == before, (argv, rc)
