"""The results store's integrity against files and processes that are not what they seem.

* A store path naming another program's SQLite file (even one with a ``runs`` table): `bench run`
  stops with one message before writing anything; the file stays byte-identical. A bench store
  carries a marker (``PRAGMA application_id``); stores made before the marker are recognised by
  their tables and gain it.
* A run claimed by a driver whose host name is not this one (a container or CI machine that
  changed its name): the claim is a lease, renewed by the driver's heartbeat; a run whose
  heartbeat is older than the lease is taken over, one with a fresh heartbeat is skipped.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import bench.store as store_module
from bench.cli import main
from bench.store import SCHEMA, Store, StoreError, owner_alive

SUITE = """
name: tiny
version: 1
tasks: [CartPole-v1]
seeds: [0, 1]
env_steps: 1024
evaluation: {eval_every: 512, eval_episodes: 2, temperatures: [0.0]}
algorithms:
  - algo: pg
    params: {n_envs: 4, n_steps: 64}
"""

OTHER = "otherhost:12345:999"  # a driver on another host (a container since renamed, say)


def _suite(tmp: Path) -> Path:
    path = tmp / "tiny.yaml"
    path.write_text(SUITE)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line.startswith("error:")]


# -- (1) a file that is not a bench store ------------------------------------------------------


def _foreign(path: Path) -> None:
    """Another program's SQLite file that happens to have a ``runs`` table."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, command TEXT, exit_code INTEGER);"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO runs (command, exit_code) VALUES ('make', 0), ('make test', 1);"
        "INSERT INTO users (name) VALUES ('ada');"
    )
    db.commit()
    db.close()


def _journal_mode(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()


def test_bench_run_leaves_a_foreign_sqlite_file_untouched(tmp_path, capsys):
    foreign = tmp_path / "foreign.db"
    _foreign(foreign)
    digest, mode = _sha256(foreign), _journal_mode(foreign)
    capsys.readouterr()
    assert main(["run", str(_suite(tmp_path)), "--store", str(foreign), "-q"]) == 2
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert len(lines) == 1 and "not a bench results store" in lines[0] and str(foreign) in lines[0], err
    assert _sha256(foreign) == digest, "the foreign file was modified"
    assert not Path(f"{foreign}-wal").exists() and not Path(f"{foreign}-shm").exists()
    assert _journal_mode(foreign) == mode == "delete"


def test_a_file_of_another_application_is_refused(tmp_path):
    """A file marked by another application (its own ``application_id``), even with bench's
    tables, is not opened for writing nor for reading."""
    path = tmp_path / "marked.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.execute("PRAGMA application_id = 1234")
    db.commit()
    db.close()
    digest = _sha256(path)
    for create in (True, False):
        with pytest.raises(StoreError, match="not a bench results store"):
            Store(path, create=create)
    assert _sha256(path) == digest


def test_a_new_store_carries_the_marker(tmp_path):
    path = tmp_path / "new.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == store_module.APPLICATION_ID
    db.close()


@pytest.mark.parametrize("how", ["empty file", "empty database"])
def test_an_empty_file_becomes_a_new_store(tmp_path, how):
    path = tmp_path / "empty.sqlite"
    if how == "empty file":
        path.touch()
    else:  # an SQLite file with no schema at all
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 0")
        db.execute("VACUUM")
        db.close()
    store = Store(path)
    assert store.db.execute("PRAGMA application_id").fetchone()[0] == store_module.APPLICATION_ID
    assert {"suites", "plan", "runs", "curves", "evals"} <= {
        name for (name,) in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    store.close()


def test_an_older_store_without_the_marker_is_recognised_and_marked(tmp_path, capsys):
    """A store made before the marker (bench's tables, no ``application_id``) opens for reading
    unchanged, and `bench run` upgrades it: the marker, and the newer columns."""
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.commit()
    db.close()
    digest = _sha256(path)
    Store(path, create=False).close()  # reading writes nothing
    assert _sha256(path) == digest
    assert main(["run", str(_suite(tmp_path)), "--store", str(path), "-q"]) == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == store_module.APPLICATION_ID
    assert db.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone()[0] == 2
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    db.close()
    assert {name for name, _ in store_module.ADDED_COLUMNS} <= columns


# -- (2) a lease, not the host name ------------------------------------------------------------


def _claimed_elsewhere(tmp: Path, heartbeat_age_s: float) -> tuple[Path, str]:
    """A store with the tiny suite registered and its first run claimed by ``OTHER``, whose
    heartbeat is ``heartbeat_age_s`` old; (store path, the run's key)."""
    from bench.suite import expand, load_suite

    suite = load_suite(_suite(tmp))
    specs = expand(suite)
    path = tmp / "bench.sqlite"
    store = Store(path)
    store.register(suite, specs)
    key = specs[0].key
    t = time.time() - heartbeat_age_s
    started = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t - 60))
    store.db.execute(
        "UPDATE runs SET status = 'running', owner = ?, attempts = 1, started_at = ?, heartbeat = ?"
        " WHERE key = ?",
        (OTHER, started, t, key),
    )
    store.close()
    return path, key


def _row(path: Path, key: str) -> tuple:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT status, owner, attempts FROM runs WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()


def test_a_run_whose_lease_expired_on_another_host_is_taken_over(tmp_path, capsys):
    path, key = _claimed_elsewhere(tmp_path, heartbeat_age_s=store_module.LEASE_S + 60)
    assert Store(path, create=False).status_counts().loc[0, "interrupted"] == 1
    capsys.readouterr()
    assert main(["run", str(_suite(tmp_path)), "--store", str(path), "-q"]) == 0
    err = capsys.readouterr().err
    assert "2 done, 0 failed" in err and "skipped" not in err, err
    assert _row(path, key) == ("done", None, 2)
    counts = Store(path, create=False).status_counts()
    assert counts.loc[0, "done"] == 2 and counts.loc[0, "interrupted"] == 0


def test_a_run_with_a_fresh_heartbeat_on_another_host_is_skipped(tmp_path, capsys):
    path, key = _claimed_elsewhere(tmp_path, heartbeat_age_s=5)
    assert Store(path, create=False).status_counts().loc[0, "running"] == 1
    capsys.readouterr()
    assert main(["run", str(_suite(tmp_path)), "--store", str(path), "-q"]) == 0
    err = capsys.readouterr().err
    assert "1 done, 0 failed" in err, err
    assert "1 runs skipped: another bench process (pid 12345)" in err, err
    assert _row(path, key) == ("running", OTHER, 1)


def test_the_lease_can_be_shortened_through_the_environment(tmp_path, monkeypatch):
    path, key = _claimed_elsewhere(tmp_path, heartbeat_age_s=5)
    assert Store(path, create=False).status_counts().loc[0, "running"] == 1
    monkeypatch.setenv("BENCH_LEASE_S", "2")
    assert store_module.lease_s() == 2.0
    counts = Store(path, create=False).status_counts()
    assert counts.loc[0, "running"] == 0 and counts.loc[0, "interrupted"] == 1
    store = Store(path)
    assert store.claim(key, "log") is None  # taken over
    store.mark_pending([key])
    store.close()


def test_owner_alive_by_lease_and_by_process():
    me = store_module.owner_id()
    t = time.time()
    fresh, stale = t - 5, t - store_module.LEASE_S - 5
    claimed = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t - 3600))
    # another host: the heartbeat decides
    assert owner_alive(OTHER, fresh, claimed)
    assert not owner_alive(OTHER, stale, claimed)
    # this host: a dead process is dead at once, a live one while its heartbeat is fresh
    assert owner_alive(me, fresh, claimed)
    assert not owner_alive(me, stale, claimed)
    assert not owner_alive(f"{me.rsplit(':', 1)[0]}:1", fresh, claimed)
    # a claim of older code (no heartbeat, or a heartbeat of an earlier claim): this host by its
    # process; another host alive while the claim is recent, as far as the claim time tells
    assert owner_alive(me)
    assert owner_alive(me, stale - 7200, claimed)
    assert owner_alive(OTHER)
    assert owner_alive(OTHER, None, claimed)
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t - store_module.LEGACY_CLAIM_S - 60))
    assert not owner_alive(OTHER, None, long_ago)
    assert not owner_alive(None) and not owner_alive("")


def _heartbeats(path: Path, stop: threading.Event, seen: dict) -> None:
    """Samples the heartbeats of the running runs until ``stop``: key -> distinct values."""
    db = sqlite3.connect(path, timeout=30)
    try:
        while not stop.is_set():
            try:
                rows = db.execute("SELECT key, heartbeat FROM runs WHERE status = 'running'").fetchall()
            except sqlite3.OperationalError:  # the store is being created
                rows = []
            for key, beat in rows:
                if beat is not None:
                    seen.setdefault(key, set()).add(beat)
            time.sleep(0.02)
    finally:
        db.close()


@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_the_heartbeat_advances_while_a_run_trains(tmp_path, monkeypatch, capsys, jobs):
    """The driver renews its runs' heartbeats while they train (here every 0.1 s: a 1 s lease),
    in this process (``--jobs 1``) and with a process pool; a finished run has none."""
    monkeypatch.setenv("BENCH_LEASE_S", "1")
    suite = tmp_path / "longer.yaml"
    suite.write_text(SUITE.replace("env_steps: 1024", "env_steps: 8192"))
    path = tmp_path / "bench.sqlite"
    Store(path).close()
    stop, seen = threading.Event(), {}
    sampler = threading.Thread(target=_heartbeats, args=(path, stop, seen))
    sampler.start()
    try:
        assert main(["run", str(suite), "--store", str(path), "-q", "--jobs", jobs]) == 0
    finally:
        stop.set()
        sampler.join()
    assert seen and max(len(values) for values in seen.values()) >= 3, seen
    db = sqlite3.connect(path)
    rows = db.execute("SELECT status, owner, heartbeat FROM runs").fetchall()
    db.close()
    assert rows == [("done", None, None)] * 2


def test_the_heartbeat_thread_renews_only_held_runs_and_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_LEASE_S", "0.5")
    from bench.suite import expand, load_suite

    suite = load_suite(_suite(tmp_path))
    specs = expand(suite)
    store = Store(tmp_path / "bench.sqlite")
    store.register(suite, specs)
    mine, taken = specs[0].key, specs[1].key
    assert store.claim(mine, "log") is None and store.claim(taken, "log") is None

    def beat(key: str) -> float | None:
        return store.db.execute("SELECT heartbeat FROM runs WHERE key = ?", (key,)).fetchone()[0]

    store.db.execute("UPDATE runs SET owner = ?, heartbeat = 1.0 WHERE key = ?", (OTHER, taken))
    first = beat(mine)
    time.sleep(0.4)
    assert beat(mine) > first  # renewed
    assert beat(taken) == 1.0  # another driver's now: left alone
    store.mark_pending([mine])
    assert beat(mine) is None
    deadline = time.monotonic() + 5
    while store._beating() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store._beating()  # nothing held: the heartbeat thread has ended
    store.close()
