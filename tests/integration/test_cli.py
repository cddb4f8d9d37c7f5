"""End to end through the CLI: run, resume, status, export, failures, Ctrl-C-free kills."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import machine
from bench.cli import main
from bench.store import EXPORT_COLUMNS
from tests.conftest import TINY

SMOKE = Path(__file__).resolve().parents[2] / "suites" / "smoke.yaml"


def _rows(store, query):
    db = sqlite3.connect(store)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def _wait_for_done(store, n: int, timeout: float = 120.0) -> int:
    """Polls the store until ``n`` runs are done; returns the count seen."""
    deadline = time.time() + timeout
    done = 0
    while time.time() < deadline and done < n:
        time.sleep(0.2)
        if store.exists():
            try:
                done = _rows(store, "SELECT COUNT(*) FROM runs WHERE status='done'")[0][0]
            except sqlite3.OperationalError:
                pass
    return done


def test_run_status_export_and_resume(write_suite, tmp_path, capsys):
    suite = write_suite(TINY)
    store = tmp_path / "bench.sqlite"
    assert main(["run", str(suite), "--store", str(store), "-q"]) == 0
    runs = _rows(store, "SELECT key, status, task, algo, seed, env_steps, git_rev, packages, host FROM runs")
    assert len(runs) == 4 and {r[1] for r in runs} == {"done"}
    assert {(r[3], r[4]) for r in runs} == {("ppo", 0), ("ppo", 1), ("pg", 0), ("pg", 1)}
    assert all(r[5] >= 1024 for r in runs)
    assert all(r[6] and r[8] for r in runs)
    assert json.loads(runs[0][7])["torch"]
    # evaluation records: every eval_every and at the end, both temperatures, n = episodes
    ev = _rows(store, "SELECT DISTINCT temperature, n FROM evals WHERE metric='eval/return'")
    assert sorted(ev) == [(0.0, 2), (1.0, 2)]
    logs = list((tmp_path / "logs" / "tiny").glob("*.log"))
    assert len(logs) == 4 and "done in" in logs[0].read_text()

    n_evals = _rows(store, "SELECT COUNT(*) FROM evals")[0][0]
    last = _rows(
        store, "SELECT r.env_steps, MAX(e.step) FROM runs r JOIN evals e ON e.run_key=r.key GROUP BY r.key"
    )
    assert all(steps == final for steps, final in last)  # the final evaluation is at the end
    capsys.readouterr()
    # re-running skips every finished run and duplicates nothing
    assert main(["run", str(suite), "--store", str(store), "-q"]) == 0
    assert "4 already done, 0 to run" in capsys.readouterr().err
    assert _rows(store, "SELECT COUNT(*) FROM runs")[0][0] == 4
    assert _rows(store, "SELECT COUNT(*) FROM evals")[0][0] == n_evals

    assert main(["status", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and " 4 " in out
    # every run records this machine's fingerprint; status lists the kind with its CPU line
    here = machine.fingerprint()
    kinds = _rows(store, "SELECT DISTINCT machine, machine_info FROM runs")
    assert len(kinds) == 1 and json.loads(kinds[0][1])["cpu_model"] == here["cpu_model"]
    stored = json.loads(kinds[0][1])
    assert stored["threads"] == 1 and stored["isa"] == here["isa"] and kinds[0][0] == machine.kind_of(stored)
    assert f"{kinds[0][0]}  {machine.label(stored)}: tiny 4" in out

    csv = tmp_path / "out.csv"
    assert main(["export", "--store", str(store), "--format", "csv", "-o", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert list(table.columns) == EXPORT_COLUMNS
    assert set(table.machine) == {kinds[0][0]} and set(table.cpu) == {machine.label(stored)}
    assert set(table.kind) == {"eval", "curve", "run"}
    assert (table[table.metric == "run/env_steps"].value >= 1024).all()
    pq = tmp_path / "out.parquet"
    assert main(["export", "--store", str(store), "--format", "parquet", "-o", str(pq)]) == 0
    assert len(pd.read_parquet(pq)) == len(table)


def test_missing_store_is_exit_2(tmp_path, capsys):
    assert main(["status", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert main(["export", "--store", str(tmp_path / "none.sqlite"), "-o", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "none.sqlite").exists()


def test_failing_run_is_recorded_and_suite_goes_on(write_suite, tmp_path, monkeypatch):
    import bench.algos as algos

    pg = algos.ALGORITHMS["pg"]

    def broken(*args, **kwargs):
        raise RuntimeError("exploded on purpose")

    monkeypatch.setitem(
        algos.ALGORITHMS, "pg", algos.Algorithm("pg", pg.config, pg.task_defaults, broken, pg.description)
    )
    store = tmp_path / "bench.sqlite"
    assert main(["run", str(write_suite(TINY)), "--store", str(store), "-q"]) == 1
    rows = _rows(store, "SELECT algo, status, error FROM runs ORDER BY algo")
    assert [(a, s) for a, s, _ in rows] == [("pg", "failed")] * 2 + [("ppo", "done")] * 2
    assert "RuntimeError: exploded on purpose" in rows[0][2]


@pytest.mark.slow
def test_jobs_2_matches_jobs_1(write_suite, tmp_path):
    suite = write_suite(TINY)
    finals = []
    for jobs in (1, 2):
        store = tmp_path / f"j{jobs}.sqlite"
        assert main(["run", str(suite), "--store", str(store), "-q", "--jobs", str(jobs)]) == 0
        finals.append(
            _rows(
                store,
                "SELECT run_key, step, temperature, metric, value FROM evals "
                "ORDER BY run_key, step, temperature, metric",
            )
        )
    assert finals[0] == finals[1]


@pytest.mark.slow  # 12 s; kill loops run in the slow tier
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_resume_after_kill_loses_and_duplicates_nothing(write_suite, tmp_path):
    text = TINY.replace("seeds: [0, 1]", "seeds: [0, 1, 2]").replace("1024", "3072")
    suite = write_suite(text)
    store = tmp_path / "bench.sqlite"
    cmd = [sys.executable, "-m", "bench.cli", "run", str(suite), "--store", str(store), "-q"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    done = _wait_for_done(store, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 6, "the kill should land mid-suite"
    before = dict(_rows(store, "SELECT key, ended_at FROM runs WHERE status='done'"))
    assert main(["run", str(suite), "--store", str(store), "-q"]) == 0
    after = dict(_rows(store, "SELECT key, ended_at FROM runs WHERE status='done'"))
    assert len(after) == 6 and _rows(store, "SELECT COUNT(*) FROM runs")[0][0] == 6
    assert all(after[k] == v for k, v in before.items()), "finished runs were not re-run"
    # every run has exactly one final evaluation set, and equals an uninterrupted run
    fresh = tmp_path / "fresh.sqlite"
    assert main(["run", str(suite), "--store", str(fresh), "-q"]) == 0
    q = "SELECT run_key, step, temperature, metric, value FROM evals ORDER BY 1, 2, 3, 4"
    assert _rows(store, q) == _rows(fresh, q)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly_and_leaves_unfinished_runs_pending(write_suite, tmp_path, sig):
    text = TINY.replace("seeds: [0, 1]", "seeds: [0, 1, 2, 3]").replace("1024", "4096")
    suite = write_suite(text)
    store = tmp_path / "bench.sqlite"
    held = tmp_path / "held"  # the driver holds after its first stored run: there is work left to stop
    cmd = [sys.executable, "-m", "tests.faults", "run", str(suite), "--store", str(store), "-q", "-j", "2"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd(), "BENCH_FAULT_HOLD": str(held)},
    )
    deadline = time.time() + 600
    while not held.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert held.exists(), proc.communicate()[1] if proc.poll() is not None else "no run finished in 600 s"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=240)  # seconds on a quiet machine; minutes on a loaded one
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    statuses = dict(_rows(store, "SELECT status, COUNT(*) FROM runs GROUP BY status"))
    assert "running" not in statuses and statuses["done"] == 1 and statuses["pending"] == 7
    assert main(["run", str(suite), "--store", str(store), "-q"]) == 0
    assert _rows(store, "SELECT COUNT(*) FROM runs WHERE status='done'")[0][0] == 8


def test_editing_a_suite_supersedes_old_runs_in_status_and_export(write_suite, tmp_path):
    from bench.store import Store, tidy

    store = tmp_path / "bench.sqlite"
    assert main(["run", str(write_suite(TINY)), "--store", str(store), "-q"]) == 0
    edited = TINY.replace("n_epochs: 2}", "n_epochs: 3}")  # new ppo config -> new keys
    assert main(["run", str(write_suite(edited)), "--store", str(store), "-q"]) == 0
    assert _rows(store, "SELECT COUNT(*) FROM runs WHERE status='done'")[0][0] == 6  # kept
    s = Store(store, create=False)
    assert len(s.runs("tiny")) == 4
    assert set(tidy(s).run_key) == set(s.runs("tiny").key)
    assert _rows(
        store,
        "SELECT done, total FROM (SELECT SUM(r.status='done') AS done, COUNT(*) AS "
        "total FROM plan p JOIN runs r ON r.key=p.key)",
    ) == [(4, 4)]


ALL_FAIL = """
name: allfail
version: 1
tasks: [Pendulum-v1]
seeds: 1
env_steps: 2048
evaluation: {eval_every: 1024, eval_episodes: 2, temperatures: [0.0]}
algorithms:
  - algo: ppo
    params: {lr: 1000.0, lr_schedule: constant}  # a linear schedule is at 0 after the only rollout
"""


def test_a_suite_whose_every_run_failed_reads_cleanly(write_suite, tmp_path, capsys):
    """The first thing a user with a new algorithm sees: every run failed. status, report and
    leaderboard show the failure (exit 0); compare has nothing to compare (exit 2, one line)."""
    store = str(tmp_path / "s.sqlite")
    assert main(["run", str(write_suite(ALL_FAIL)), "--store", store, "-q"]) == 1
    capsys.readouterr()
    for args in (["status", "--suite", "allfail"], ["leaderboard", "--suite", "allfail"]):
        assert main([*args, "--store", store]) == 0
        out = capsys.readouterr().out
        assert "ppo" in out and "Traceback" not in out
    out_dir = tmp_path / "report"
    assert main(["report", "--suite", "allfail", "--store", store, "-o", str(out_dir), "-q"]) == 0
    assert "diverged at env step" in (out_dir / "index.html").read_text()
    csv = tmp_path / "all.csv"
    assert main(["export", "--store", store, "-o", str(csv)]) == 0
    capsys.readouterr()
    assert main(["compare", "--store", store, "--suite", "allfail", "--baseline", str(csv)]) == 2
    assert "nothing to compare" in capsys.readouterr().err


def test_unknown_suites_are_named_and_export_format_follows_the_extension(write_suite, tmp_path, capsys):
    store = str(tmp_path / "s.sqlite")
    assert main(["run", str(write_suite(TINY)), "--store", store, "-q"]) == 0
    capsys.readouterr()
    for args in (["export", "-o", str(tmp_path / "x.csv")], ["status"], ["leaderboard"]):
        assert main([*args, "--store", store, "--suite", "tnyi"]) == 2
        err = capsys.readouterr().err
        assert "no suite 'tnyi'" in err and "(it has: tiny)" in err
    assert not (tmp_path / "x.csv").exists()
    assert main(["export", "--store", store, "-o", str(tmp_path / "x.parquet")]) == 0
    table = pd.read_parquet(tmp_path / "x.parquet")  # a real Parquet file, not CSV
    assert set(EXPORT_COLUMNS) <= set(table.columns) and len(table) > 0
    assert main(["export", "--store", store, "-o", str(tmp_path / "y.parquet"), "--format", "csv"]) == 0
    assert (tmp_path / "y.parquet").read_text().startswith("suite,")  # an explicit --format wins


def test_describe_shows_an_algorithms_fields_defaults_and_bounds(capsys):
    assert main(["describe", "ppo"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("clip_range "))
    assert "0.2" in line and "> 0" in line and "policy ratio clip epsilon" in line
    assert "clip | kl_penalty" in out  # a Literal's choices
    assert "CartPole-v1: n_envs=16" in out  # shipped per-task defaults
    assert main(["describe", "ppo-gt"]) == 0
    assert "kl_penalty" in capsys.readouterr().out
    assert main(["describe", "pp"]) == 2
    assert "did you mean ppo" in capsys.readouterr().err


def test_list_of_a_missing_folder_is_exit_2(tmp_path, capsys):
    assert main(["list", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_shipped_suites_are_found_from_any_folder(tmp_path, monkeypatch, capsys):
    from bench.suite import find_suite, shipped_suites

    monkeypatch.chdir(tmp_path)  # no suites/ folder here
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "shipped suites (bench run NAME):" in out and "\n  smoke  smoke v2:" in out
    assert find_suite("smoke") == shipped_suites() / "smoke.yaml"
    assert find_suite("paper/imdb-sentiment").name == "imdb-sentiment.yaml"
    assert find_suite("../../../etc/passwd") == Path("../../../etc/passwd")  # not a shipped suite
    (tmp_path / "smoke").write_text("a local file wins")
    assert find_suite("smoke") == Path("smoke")
    assert main(["run", "nosuchsuite", "--store", str(tmp_path / "s.sqlite")]) == 2
    assert not (tmp_path / "s.sqlite").exists()
