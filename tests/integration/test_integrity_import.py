"""`bench import` on bad input: every refusal is one line ``error: ...`` on stderr, exit status 2,
no traceback, and no file created or changed; what it does import, other commands accept.

Covered: Monitor files with lines that are not episodes (garbage, lengths that are not positive
integers, times that are not finite); names that are not UTF-8 (arguments are refused; a file
found in a folder is imported with its undecodable bytes shown as ``\\xNN``, or refused where
tensorboard cannot open it); NaN and infinite scores (dropped and counted, refused when nothing
finite is left); the same file given twice, under one name or two; bench exports that hold the
same run; truncated or corrupt TensorBoard event files; terminal control characters in labels and
file names (never echoed); spreadsheet formulas in labels (neutralised in the CSV, which is written
atomically without clobbering a neighbouring ``OUT.tmp``).
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.test_hostile_results import run_cli, tidy_table

MONITOR_HEAD = '#{"t_start": 1700000000.0, "env_id": "CartPole-v1"}\nr,l,t\n'


def write_events(folder: Path, values: list[float], tag: str = "rollout/ep_rew_mean") -> Path:
    """A TensorBoard event file in ``folder`` (written by torch.utils.tensorboard, as CleanRL
    writes them) with ``values`` of ``tag`` at steps 100, 200, ...; returns its path."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    for i, value in enumerate(values):
        writer.add_scalar(tag, value, (i + 1) * 100)
    writer.close()
    return next(folder.glob("events.out.tfevents*"))


def write_monitor(path: Path, rows: list[str]) -> Path:
    """An SB3 Monitor file: the ``#{json}`` line, the header ``r,l,t`` and ``rows``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MONITOR_HEAD + "".join(row + "\n" for row in rows))
    return path


def snapshot(root: Path) -> dict[Path, str]:
    """Every file under ``root`` and the sha256 of its content."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def refused(argv: list, capsys, root: Path) -> str:
    """Runs ``bench import ARGV``, expects a refusal that leaves every file under ``root`` as it
    was (an output that exists stays unchanged, none is created); returns the error line."""
    before = snapshot(root)
    rc, err = run_cli(["import", *map(str, argv)], capsys)
    lines = err.splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert snapshot(root) == before
    return lines[0]


def imported(argv: list, capsys) -> str:
    """Runs ``bench import ARGV``, expects success; returns stderr."""
    rc, err = run_cli(["import", *map(str, argv)], capsys)
    assert rc == 0, err
    return err


def assert_leaderboard_reads(out: Path, capsys) -> None:
    rc, err = run_cli(["leaderboard", "--results", str(out), "--no-published", "--reps", "20"], capsys)
    assert rc == 0, err


LABELS = ["--task", "CartPole-v1", "--algorithm", "ppo"]


# -- (a) Monitor lines that are not episodes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("GARBAGE LINE here", "line 4: 1 field where the header has 3"),
        ("2.0,abc,0.2", "line 4: l 'abc' is not an episode length (a positive integer)"),
        ("2.0,-5,0.2", "line 4: l '-5' is not an episode length (a positive integer)"),
        ("2.0,0,0.2", "line 4: l '0' is not an episode length (a positive integer)"),
        ("2.0,2.5,0.2", "line 4: l '2.5' is not an episode length (a positive integer)"),
        ("x,10,0.2", "line 4: r 'x' is not a number"),
        ("2.0,10,", "line 4: t '' is not a time in seconds"),
        ("2.0,10,inf", "line 4: t 'inf' is not a time in seconds"),
    ],
)
def test_monitor_line_that_is_not_an_episode_is_refused(row, expected, tmp_path, capsys):
    monitor = write_monitor(tmp_path / "run" / "0.monitor.csv", ["1.0,10,0.1", row, "3.0,10,0.3"])
    out = tmp_path / "out.csv"
    line = refused([monitor, *LABELS, "-o", out], capsys, tmp_path)
    assert line == f"error: {monitor}: {expected}"
    out.write_text("an earlier table\n")  # an existing output is left alone too
    refused([monitor.parent, *LABELS, "-o", out], capsys, tmp_path)


# -- (b) names that are not UTF-8 ----------------------------------------------------------------------


def test_names_that_are_not_utf8_get_one_line(tmp_path, capsys):
    out = tmp_path / "out.csv"
    for option in ("PATH", "--task", "--algorithm", "--suite", "--source", "--tag", "-o"):
        labels = [*LABELS, "-o", out] + ([] if option == "PATH" else [option, os.fsdecode(b"name\xff")])
        path = os.fsdecode(bytes(tmp_path) + b"/name\xff") if option == "PATH" else tmp_path
        assert "name\\xff" in refused([path, *labels], capsys, tmp_path)
    # an event file found in a folder (not an argument): tensorboard cannot open its path
    root = tmp_path / "runs"
    root.mkdir()
    folder = Path(os.fsdecode(bytes(root) + b"/tb\xff"))
    write_events(tmp_path / "tb", [1.0, 2.0]).parent.rename(folder)  # (torch cannot write there)
    events = next(folder.iterdir())
    line = refused([root, *LABELS, "-o", out], capsys, tmp_path)
    why = "tensorboard cannot open a path that is not UTF-8 text; rename it"
    assert line == f"error: {root}/tb\\xff/{events.name}: {why}"


def test_monitor_file_whose_name_is_not_utf8_is_imported_with_its_name_shown(tmp_path, capsys):
    root = tmp_path / "runs"
    write_monitor(Path(os.fsdecode(bytes(root) + b"/m\xff/0\xff.monitor.csv")), ["1.0,10,0.1"])
    out = tmp_path / "out.csv"
    err = imported([root, *LABELS, "-o", out], capsys)
    assert "SB3 Monitor: 0\\xff.monitor.csv" in err
    assert pd.read_csv(out).source.iloc[0] == "SB3 Monitor: 0\\xff.monitor.csv"
    assert_leaderboard_reads(out, capsys)


# -- (c) bad data: non-finite scores, the same file twice, truncated files, negative lengths ----------


@pytest.mark.parametrize("tag", ["rollout/ep_rew_mean", "charts/episodic_return"])
def test_non_finite_tensorboard_values_are_dropped_and_counted(tag, tmp_path, capsys):
    events = write_events(tmp_path / "tb", [1.0, float("nan"), 3.0, float("inf"), 5.0, float("-inf")], tag)
    out = tmp_path / "out.csv"
    err = imported([events, *LABELS, "-o", out], capsys)
    assert "3 points to step 500 (dropped 3 non-finite values)" in err
    ev = pd.read_csv(out).query("kind == 'eval'")
    assert list(ev.step) == [100, 300, 500]
    assert_leaderboard_reads(out, capsys)


def test_non_finite_monitor_returns_are_dropped_and_their_steps_kept(tmp_path, capsys):
    rows = ["1.0,10,0.1", "nan,10,0.2", "3.0,10,0.3", "inf,10,0.4", "5.0,10,0.5"]
    monitor = write_monitor(tmp_path / "run" / "0.monitor.csv", rows)
    out = tmp_path / "out.csv"
    err = imported([monitor, *LABELS, "-o", out], capsys)
    assert "3 points to step 50 (dropped 2 non-finite values)" in err
    ev = pd.read_csv(out).query("kind == 'eval'")
    assert list(ev.step) == [10, 30, 50] and ev.value.iloc[-1] == pytest.approx(3.0)
    assert_leaderboard_reads(out, capsys)


def test_nothing_finite_is_refused(tmp_path, capsys):
    out = tmp_path / "out.csv"
    events = write_events(tmp_path / "tb", [float("nan"), float("inf")])
    line = refused([events, *LABELS, "-o", out], capsys, tmp_path)
    assert line == f"error: {events}: tag rollout/ep_rew_mean has no finite values (2 NaN or infinite)"
    monitor = write_monitor(tmp_path / "run" / "0.monitor.csv", ["nan,10,0.1"])
    line = refused([monitor, *LABELS, "-o", out], capsys, tmp_path)
    assert line == f"error: {monitor}: no finite episode returns (1 NaN or infinite)"


def test_the_same_file_under_two_names_is_refused(tmp_path, capsys):
    events = write_events(tmp_path / "a", [1.0, 2.0])
    copy = tmp_path / "b" / "events.out.tfevents.copy"
    copy.parent.mkdir()
    shutil.copy(events, copy)
    out = tmp_path / "out.csv"
    line = refused([tmp_path / "a", tmp_path / "b", *LABELS, "-o", out], capsys, tmp_path)
    assert line == f"error: {events} and {copy}: the same content (one run given twice); import each once"
    line = refused([events, events, *LABELS, "-o", out], capsys, tmp_path)
    assert line == f"error: {events}: given twice"
    monitor = write_monitor(tmp_path / "m1" / "0.monitor.csv", ["1.0,10,0.1"])
    twin = write_monitor(tmp_path / "m2" / "0.monitor.csv", ["1.0,10,0.1"])
    line = refused([tmp_path / "m1", tmp_path / "m2", *LABELS, "-o", out], capsys, tmp_path)
    assert line == f"error: {monitor} and {twin}: the same content (one run given twice); import each once"


def test_exports_whose_records_overlap_are_refused(tmp_path, capsys):
    table = tidy_table()
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text(table.to_csv(index=False))
    two.write_text(table.iloc[::-1].to_csv(index=False))  # the same records in another order
    line = refused([one, two, *LABELS, "-o", tmp_path / "out.csv"], capsys, tmp_path)
    assert line.startswith("error: the table to write: row ") and "is given twice" in line


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_event_file_is_refused(damage, tmp_path, capsys):
    events = write_events(tmp_path / "tb", [float(i) for i in range(20)])
    data = bytearray(events.read_bytes())
    if damage == "truncated":  # a copy cut short, or a run still writing
        del data[-7:]
        expected = "truncated TensorBoard event file (its last record is cut short at byte"
    else:  # one byte flipped in the middle of the file
        data[len(data) // 2] ^= 0xFF
        expected = "corrupt TensorBoard event file (record"
    events.write_bytes(bytes(data))
    line = refused([events, *LABELS, "-o", tmp_path / "out.csv"], capsys, tmp_path)
    assert line.startswith(f"error: {events}: {expected}"), line


# -- (d) terminal escapes ------------------------------------------------------------------------------


def test_labels_and_file_names_are_echoed_without_control_characters(tmp_path, capsys):
    esc = "\x1b[2J\x1b]0;owned\x07"
    monitor = write_monitor(tmp_path / f"run{esc}" / f"0{esc}.monitor.csv", ["1.0,10,0.1", "2.0,10,0.2"])
    out = tmp_path / f"out{esc}.csv"
    labels = ["--task", f"CartPole-v1{esc}", "--algorithm", f"ppo{esc}", "--suite", f"s{esc}"]
    err = imported([monitor.parent, *labels, "-o", out], capsys)
    assert "ppo\ufffd[2J" in err and not any(c < " " for c in err.replace("\n", ""))
    line = refused([tmp_path / f"missing{esc}", *labels, "-o", out], capsys, tmp_path)
    assert "missing\ufffd[2J" in line and not any(c < " " for c in line)
    events = write_events(tmp_path / "tb", [1.0])
    line = refused([events, *labels, "--tag", f"x{esc}", "-o", out], capsys, tmp_path)
    assert "no scalar tag x\ufffd[2J" in line and not any(c < " " for c in line)


# -- (e) spreadsheet formulas, atomic writes -----------------------------------------------------------


def test_formula_labels_are_neutralised_and_the_table_still_reads(tmp_path, capsys):
    monitor = write_monitor(tmp_path / "run" / "0.monitor.csv", ["1.0,10,0.1", "2.0,10,0.2"])
    out = tmp_path / "out.csv"
    neighbour = tmp_path / "out.csv.tmp"  # someone's file beside the output: not clobbered
    neighbour.write_text("keep me\n")
    argv = [monitor, "--task", "CartPole-v1", "--algorithm", '=HYPERLINK("x")', "--source", "@SUM(A1)"]
    imported([*argv, "-o", out], capsys)
    table = pd.read_csv(out)
    assert set(table.algorithm) == {'\'=HYPERLINK("x")'} and set(table.source) == {"'@SUM(A1)"}
    with out.open(newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert '\'=HYPERLINK("x")' in cells and not [c for c in cells if c.startswith(("=", "@"))]
    assert neighbour.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.csv.tmp", "run"]
    assert_leaderboard_reads(out, capsys)


# -- generated hostile input (hypothesis) ----------------------------------------------------------

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["", " ", "abc", "1e309", "-0", "0x10", "1_0", '"1"', "nan", "∞", "1,2", "\x1b[31m"]),
)
MONITOR_ROWS = st.lists(
    st.one_of(
        st.tuples(CELLS, CELLS, CELLS).map(",".join),
        st.tuples(st.floats(-500, 500), st.integers(1, 500), st.floats(0, 1e4)).map(
            lambda c: f"{c[0]!r},{c[1]},{c[2]!r}"
        ),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).map(lambda t: t.replace("\n", " ")),
    ),
    max_size=12,
)
LABEL = st.one_of(
    st.just("ppo"), st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
)


def _import_ends_well(argv: list, out: Path, root: Path, capsys) -> int:
    """``bench import ARGV``: exit 0 with a table the leaderboard reads, or exit 2 with one line
    and nothing changed; never a traceback."""
    before = snapshot(root)
    rc, err = run_cli(["import", *map(str, argv)], capsys)
    assert rc in (0, 2) and "Traceback" not in err, err
    if rc == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert snapshot(root) == before
    else:
        assert "\x1b" not in err
        assert_leaderboard_reads(out, capsys)
    return rc


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=MONITOR_ROWS, algorithm=LABEL)
def test_generated_monitor_files_are_imported_or_refused_in_one_line(
    rows, algorithm, tmp_path_factory, capsys
):
    root = tmp_path_factory.mktemp("gen")
    monitor = write_monitor(root / "run" / "0.monitor.csv", rows)
    out = root / "out.csv"
    rc = _import_ends_well(
        [monitor, "--task", "CartPole-v1", "--algorithm", algorithm, "-o", out], out, root, capsys
    )
    event("imported" if rc == 0 else "refused")


@pytest.fixture(scope="module")
def event_file(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("events")
    return write_events(folder, [float(v) for v in range(20)]).read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_damage_to_an_event_file_is_caught(data, event_file, tmp_path_factory, capsys):
    """Bytes flipped, cut or appended anywhere in an event file: imported only when every record
    still checks out (appending whole records, say), else one line."""
    root = tmp_path_factory.mktemp("dmg")
    blob = bytearray(event_file)
    how = data.draw(st.sampled_from(["flip", "cut", "append"]))
    if how == "flip":
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        blob += data.draw(st.binary(min_size=1, max_size=64))
    (root / "tb").mkdir()
    (root / "tb" / "events.out.tfevents.1.host").write_bytes(bytes(blob))
    rc = _import_ends_well([root / "tb", *LABELS, "-o", root / "out.csv"], root / "out.csv", root, capsys)
    event(f"{how}: {'imported' if rc == 0 else 'refused'}")
    if how == "flip" or (how == "cut" and len(blob) not in record_ends(event_file)):
        assert rc == 2  # a changed record, or one cut short, never passes as data


def record_ends(blob: bytes) -> set[int]:
    """The offsets at which an event file's TFRecords end (a cut there leaves whole records):
    each record is an 8-byte length, its 4-byte checksum, the data and the data's 4-byte checksum."""
    ends, at = {0}, 0
    while at + 8 <= len(blob):
        at += 8 + 4 + int.from_bytes(blob[at : at + 8], "little") + 4
        ends.add(at)
    return ends
