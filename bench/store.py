"""The results store: one SQLite file (default ``runs/bench.sqlite``).

Tables: ``suites`` (definition and hash), ``plan`` (the run keys of a suite's current grid),
``runs`` (one row per run with config, status and provenance), ``curves`` (training metrics
against env steps), ``evals`` (evaluation-protocol records), ``samples`` (generated texts of
LM runs with their gold scores) and ``outcomes`` (per-prompt outcomes of LM runs' final
evaluation, e.g. win against the reference, for intervals over prompts). A finished run is written in one
transaction, so a crash leaves either the whole run or none of it.

Several ``bench run`` processes may share a store (WAL journal, busy timeout, retried
transactions). A driver *claims* a run before starting it: the row becomes ``running`` with the
driver as its ``owner`` (host, pid and process start time). The claim is a lease: while the run
trains, the driver renews its ``heartbeat`` (unix time) every tenth of the lease. Another driver
skips a run whose owner is alive and takes over one whose owner has died (killed, crashed): on
this host a process that is gone, on any host a heartbeat older than the lease (``lease_s``), so
every run is trained to completion by exactly one process. ``attempts`` counts the claims of a run.

A bench store is marked (``PRAGMA application_id`` = ``APPLICATION_ID``); a store made before the
marker is recognised by its tables and gains it on its next write. Any other SQLite file is refused
before anything is written to it.

What the store keeps of a suite and of a planned run is the shape of ``SuiteRecord`` and
``RunRecord``, defined here (the suite reader's ``Suite`` and ``RunSpec`` have it).

Layer: foundation (imports nothing above it, types included).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from functools import lru_cache, partial
from pathlib import Path
from typing import Protocol, TypeVar

import pandas as pd

DEFAULT_STORE = "runs/bench.sqlite"


class SuiteRecord(Protocol):
    """A suite as the store records it (table ``suites``): its definition is ``model_dump``'s."""

    name: str
    version: str
    path: str

    def hash(self) -> str: ...

    def model_dump(self, *, mode: str) -> dict: ...


class RunRecord(Protocol):
    """A planned run as the store records it (table ``runs``, status ``pending``)."""

    key: str
    suite: str
    suite_version: str
    label: str  # the run's algorithm as the suite names it (column ``algorithm``)
    algo: str  # the registered algorithm
    task: str
    seed: int
    env_steps: int
    config_json: str
    evaluation_json: str
    code_json: str  # the algorithm's code fingerprint, "" for none
    base_key: str  # the key without the code fingerprint, "" for none


SCHEMA = """
CREATE TABLE IF NOT EXISTS suites (
  name TEXT PRIMARY KEY, version TEXT, hash TEXT, path TEXT, definition TEXT, updated_at TEXT
);
CREATE TABLE IF NOT EXISTS plan (suite TEXT, key TEXT, PRIMARY KEY (suite, key));
CREATE TABLE IF NOT EXISTS runs (
  key TEXT PRIMARY KEY, suite TEXT, suite_version TEXT, task TEXT, algorithm TEXT, algo TEXT,
  seed INTEGER, env_steps_budget INTEGER, config TEXT, evaluation TEXT,
  status TEXT NOT NULL, error TEXT, started_at TEXT, ended_at TEXT,
  wall_time REAL, train_time REAL, env_steps INTEGER,
  git_rev TEXT, packages TEXT, host TEXT, log_path TEXT, owner TEXT, attempts INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS curves (
  run_key TEXT NOT NULL, step INTEGER, wall_time REAL, metric TEXT, value REAL
);
CREATE TABLE IF NOT EXISTS evals (
  run_key TEXT NOT NULL, step INTEGER, wall_time REAL, train_time REAL, temperature REAL,
  metric TEXT, value REAL, n INTEGER
);
CREATE TABLE IF NOT EXISTS samples (
  run_key TEXT NOT NULL, step INTEGER, temperature REAL, prompt TEXT, completion TEXT, score REAL
);
CREATE TABLE IF NOT EXISTS outcomes (
  run_key TEXT NOT NULL, temperature REAL, metric TEXT, item INTEGER, value REAL
);
CREATE INDEX IF NOT EXISTS curves_run ON curves (run_key);
CREATE INDEX IF NOT EXISTS outcomes_run ON outcomes (run_key);
CREATE INDEX IF NOT EXISTS samples_run ON samples (run_key);
CREATE INDEX IF NOT EXISTS evals_run ON evals (run_key);
CREATE INDEX IF NOT EXISTS runs_suite ON runs (suite, status);
"""
# columns added after the first release: (name, declaration), added to older stores on open
ADDED_COLUMNS = [("owner", "TEXT"), ("attempts", "INTEGER DEFAULT 0"), ("code", "TEXT"), ("base_key", "TEXT"),
                 ("peak_rss_mb", "REAL"), ("parameters", "INTEGER"),
                 ("machine", "TEXT"), ("machine_info", "TEXT"), ("heartbeat", "REAL")]  # fmt: skip
TABLES = {"suites", "plan", "runs", "curves", "evals"}
OPTIONAL_TABLES = {"samples", "outcomes"}  # added later: absent from older stores
# the run columns of the first release: with TABLES, they recognise a store made before the marker
FIRST_RUN_COLUMNS = frozenset(
    {"key", "suite", "suite_version", "task", "algorithm", "algo", "seed", "env_steps_budget", "config",
     "evaluation", "status", "error", "started_at", "ended_at", "wall_time", "train_time", "env_steps",
     "git_rev", "packages", "host", "log_path"}
)  # fmt: skip
APPLICATION_ID = 0x42454E43  # "BENC": the PRAGMA application_id that marks a bench results store

BUSY_TIMEOUT_MS = 10_000  # SQLite waits this long for another writer's lock ...
LOCK_WAIT_S = 600.0  # ... and a transaction is retried (with back-off) for this long in all

LEASE_S = 600.0  # a claimed run whose heartbeat is older than this has lost its (dead) driver ...
LEASE_ENV = "BENCH_LEASE_S"  # ... unless this environment variable sets another lease (tests)
# a claim written without a heartbeat (by older code) on another host counts as alive this long
LEGACY_CLAIM_S = 24 * 3600.0

T = TypeVar("T")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StoreError(Exception):
    """The store cannot be opened, created, read or written."""


class _NotAStore(StoreError):
    """The file is not a bench results store (another program's, say)."""


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (Linux), None if there is no such process;
    "?" where /proc is missing and the process exists."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        if not os.path.isdir("/proc/self"):
            try:
                os.kill(pid, 0)
                return "?"
            except ProcessLookupError:
                return None
            except PermissionError:
                return "?"
        return None
    except (OSError, IndexError):
        return "?"


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def owner_id() -> str:
    """This process as a run owner: host, pid and start time (a reused pid is another owner)."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_time(pid)}"


def lease_s() -> float:
    """The lease of a claim in seconds: ``LEASE_S``, or a positive number in the environment
    variable ``BENCH_LEASE_S``. The driver renews its heartbeats every tenth of it."""
    try:
        lease = float(os.environ.get(LEASE_ENV, ""))
    except ValueError:
        return LEASE_S
    return lease if math.isfinite(lease) and lease > 0 else LEASE_S


def _unix_time(stamp: object) -> float | None:
    """An ISO time (``now()``) as unix time; None if it is missing or unreadable."""
    if not isinstance(stamp, str):
        return None
    try:
        t = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def owner_alive(owner: str | None, heartbeat: float | None = None, claimed_at: str | None = None) -> bool:
    """Whether the driver that claimed a run still holds it. ``heartbeat``: the unix time its
    driver last renewed the claim; ``claimed_at``: the claim's time (``started_at``).

    Dead: an owner on this host whose process is gone (pid and start time), and an owner on any
    host whose heartbeat is older than the lease (``lease_s``). A claim without a heartbeat of its
    own (written by older code; a heartbeat from before the claim belongs to an earlier claim):
    on this host its process decides, on another host it counts as alive for ``LEGACY_CLAIM_S``
    after the claim, or always when the claim time is unknown."""
    if not isinstance(owner, str) or not owner:
        return False
    claimed = _unix_time(claimed_at)
    beat = heartbeat if isinstance(heartbeat, (int, float)) and math.isfinite(heartbeat) else None
    if beat is not None and claimed is not None and beat < claimed:
        beat = None
    if beat is not None and time.time() - beat > lease_s():
        return False
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != _host():
        return beat is not None or claimed is None or time.time() - claimed <= LEGACY_CLAIM_S
    try:
        current = _start_time(int(pid))
    except ValueError:
        return False
    return current is not None and (current == start or "?" in (current, start))


def _add_columns(db: sqlite3.Connection) -> None:
    """Adds the run columns newer than the store's schema (an older store's upgrade)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    for name, decl in ADDED_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE runs ADD COLUMN {name} {decl}")


def _schema_statements() -> list[str]:
    """SCHEMA as single statements (to run inside one transaction)."""
    return [statement.strip() for statement in SCHEMA.split(";") if statement.strip()]


def _recognise(db: sqlite3.Connection, path: Path) -> str:
    """What the SQLite file behind ``db`` is, read without writing: ``"marked"`` (a bench store),
    ``"older"`` (a bench store made before the marker) or ``"empty"`` (no schema at all: a new
    file). Raises StoreError for any other file, an SQLite file of another program."""
    app = db.execute("PRAGMA application_id").fetchone()[0]
    if app == APPLICATION_ID:
        return "marked"
    if app != 0:
        raise _NotAStore(f"{path}: not a bench results store (it belongs to another program: "
                         f"application_id {app:#x})")  # fmt: skip
    kinds = dict(db.execute("SELECT name, type FROM sqlite_master"))
    if not kinds:
        return "empty"
    tables = {name for name, kind in kinds.items() if kind == "table"}
    if not TABLES <= tables:
        missing = ", ".join(sorted(TABLES - tables))
        raise _NotAStore(f"{path}: not a bench results store (no {missing} table)")
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    if not FIRST_RUN_COLUMNS <= columns:
        raise _NotAStore(f"{path}: not a bench results store (its runs table is not bench's)")
    return "older"


def _locked(e: sqlite3.Error) -> bool:
    text = str(e).lower()
    return "locked" in text or "busy" in text


class Store:
    """The results store. ``create=False`` (read commands) opens an existing store without
    writing to it: no schema, no journal change; a read-only file or folder is fine. A file that
    is not a bench store is refused (StoreError) before anything is written to it."""

    def __init__(self, path: str | Path, create: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
                 lock_wait_s: float = LOCK_WAIT_S):  # fmt: skip
        self.path = Path(path)
        self.lock_wait_s = lock_wait_s
        self.busy_timeout_ms = busy_timeout_ms
        self._held: set[str] = set()  # the runs this store's process has claimed and not finished
        self._held_lock = threading.Lock()
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        self.db: sqlite3.Connection | None = None
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a results store file")
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no results store here (run `bench run SUITE` first)")
        existed = self.path.exists()
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not existed:
                    self._create_file()
                self.db = self._connect(busy_timeout_ms)
                self._retry(self._create_schema, "cannot create the results store")
            else:
                self.db = self._open_existing(busy_timeout_ms)
        except (StoreError, sqlite3.Error, OSError) as e:
            if self.db is not None:
                self.db.close()
            if create and not existed:  # leave no half-created store behind
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            writable = os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
            if self.path.exists() and not writable and not isinstance(e, _NotAStore):
                raise StoreError(f"{self.path}: the store file or its folder is read-only") from None
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"{self.path}: cannot open results store: {_reason(e)}") from None

    def _connect(self, busy_timeout_ms: int, uri: str | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(uri or self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                             uri=uri is not None)  # fmt: skip
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return db

    def _create_file(self) -> None:
        """Creates the store file with its schema complete, or not at all: the schema is written
        to a private file that is then hard-linked into place (``os.link`` never replaces a file,
        so of two processes creating one store, one wins and both use its file). A reader never
        sees a store with half its tables."""
        tmp = self.path.with_name(f".{self.path.name}.new{os.getpid()}")
        try:
            db = sqlite3.connect(tmp)
            db.executescript(SCHEMA)
            _add_columns(db)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.commit()
            db.close()
            os.link(tmp, self.path)
        except FileExistsError:
            pass  # another process created it first
        except OSError:  # no hard links on this filesystem: the schema is created in place
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def _create_schema(self) -> None:
        """Makes the file a complete, marked store of the current schema: checks first, reading
        only, that it is a bench store (or an empty file), then switches it to WAL and adds what
        is missing (the tables of a new file, the newer columns and the marker of an older store)
        in one transaction."""
        _recognise(self.db, self.path)
        if self.db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            self.db.execute("PRAGMA journal_mode=WAL")
        # under the write lock, so that of two processes creating or upgrading one store at once,
        # the second sees the first one's tables and columns
        with _Transaction(self.db) as db:
            if _recognise(db, self.path) != "marked":
                for statement in _schema_statements():
                    db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            _add_columns(db)

    def _open_existing(self, busy_timeout_ms: int) -> sqlite3.Connection:
        try:
            db = self._connect(busy_timeout_ms)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.OperationalError as e:
            # a WAL store in a read-only folder (or on read-only media) cannot create its
            # shared-memory file; it opens as immutable when no write-ahead log is pending
            wal = self.path.with_name(self.path.name + "-wal")
            if "unable to open" not in str(e) or (wal.exists() and wal.stat().st_size > 0):
                raise
            db = self._connect(busy_timeout_ms, f"file:{self.path.resolve()}?mode=ro&immutable=1")
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        try:
            if _recognise(db, self.path) == "empty":
                missing = ", ".join(sorted(TABLES))
                raise _NotAStore(f"{self.path}: not a bench results store (no {missing} table)")
        except BaseException:
            db.close()
            raise
        for name in OPTIONAL_TABLES - tables:  # an older store: read as if empty, writing nothing
            create = re.search(rf"CREATE TABLE IF NOT EXISTS {name} \([^;]*\);", SCHEMA)
            db.execute(create.group(0).replace("CREATE TABLE", "CREATE TEMP TABLE"))
        return db

    def close(self) -> None:
        """Closes the store; the heartbeats of runs still held stop (their lease runs out)."""
        self._beat_stop.set()
        thread = self._beat_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.db.close()

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        """Runs ``fn`` (one transaction), retrying while another process holds the write lock
        (up to ``lock_wait_s``); any other database error becomes a StoreError."""
        deadline = time.monotonic() + self.lock_wait_s
        delay = 0.05
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if _locked(e) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(2 * delay, 2.0)
                    continue
                if _locked(e):
                    raise StoreError(
                        f"{self.path}: {what}: the store stayed locked by another process for "
                        f"{self.lock_wait_s:.0f} s"
                    ) from None
                raise StoreError(f"{self.path}: {what}: {_reason(e)}") from None
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.path}: {what}: {_reason(e)}") from None

    def _write(self, fn: Callable[[sqlite3.Connection], T], what: str = "cannot write to the store") -> T:
        def tx() -> T:
            with _Transaction(self.db) as db:
                return fn(db)

        return self._retry(tx, what)

    def _read(self, query: str, args: tuple = ()) -> pd.DataFrame:
        def read() -> pd.DataFrame:
            try:
                return pd.read_sql_query(query, self.db, params=args)
            except pd.errors.DatabaseError as e:  # pandas wraps the sqlite3 error
                cause = e.__cause__
                raise cause if isinstance(cause, sqlite3.Error) else sqlite3.DatabaseError(str(e)) from None

        return self._retry(read, "cannot read the store")

    # -- writing -------------------------------------------------------------------------

    def register(self, suite: SuiteRecord, specs: list[RunRecord]) -> None:
        """Records the suite and its current plan; new runs become ``pending``."""
        definition = json.dumps(suite.model_dump(mode="json"), sort_keys=True)

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO suites VALUES (?,?,?,?,?,?)",
                (suite.name, suite.version, suite.hash(), suite.path, definition, now()),
            )
            db.execute("DELETE FROM plan WHERE suite = ?", (suite.name,))
            db.executemany("INSERT INTO plan VALUES (?, ?)", [(suite.name, s.key) for s in specs])
            # runs of an earlier plan that never finished are dropped; finished ones are kept
            db.execute(
                "DELETE FROM runs WHERE suite = ? AND status != 'done' "
                "AND key NOT IN (SELECT key FROM plan WHERE suite = ?)",
                (suite.name, suite.name),
            )
            db.executemany(
                "INSERT OR IGNORE INTO runs (key, suite, suite_version, task, algorithm, algo, seed,"
                " env_steps_budget, config, evaluation, code, base_key, status)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'pending')",
                [
                    (
                        s.key,
                        s.suite,
                        s.suite_version,
                        s.task,
                        s.label,
                        s.algo,
                        s.seed,
                        s.env_steps,
                        s.config_json,
                        s.evaluation_json,
                        s.code_json or None,
                        s.base_key or None,
                    )
                    for s in specs
                ],
            )

        self._write(write, "cannot register the suite")

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        out: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            query = f"SELECT key FROM runs WHERE status = 'done' AND key IN ({','.join('?' * len(chunk))})"
            out.update(self._read(query, tuple(chunk))["key"])
        return out

    def done_under_other_code(self, specs: Iterable[RunRecord]) -> dict[str, tuple[str, str]]:
        """For ``--pin-code``: base key -> (key, code) of a done run of the same suite, config,
        task and seed under another code fingerprint (the most recently finished one)."""
        specs = [s for s in specs if s.base_key]
        out: dict[str, tuple[str, str]] = {}
        if "base_key" not in self._run_columns():
            return out
        for i in range(0, len(specs), 500):
            chunk = specs[i : i + 500]
            query = (
                "SELECT base_key, key, code FROM runs WHERE status = 'done' AND base_key IN"
                f" ({','.join('?' * len(chunk))}) ORDER BY ended_at"
            )
            for row in self._read(query, tuple(s.base_key for s in chunk)).itertuples():
                out[row.base_key] = (row.key, row.code or "")
        return out

    def claim(self, key: str, log_path: str) -> str | None:
        """Takes run ``key`` for this process (``running``, owned by it, with a fresh heartbeat
        that this store renews until the run's result is written or given back). Returns None
        when claimed, else why not: ``"done"`` or the live owner that is running it."""
        me = owner_id()

        def write(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT status, owner, heartbeat, started_at FROM runs WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return "gone"  # dropped from the plan by another driver's edit of the suite
            status, owner, heartbeat, started = row
            if status == "done":
                return "done"
            if status == "running" and owner and owner != me and owner_alive(owner, heartbeat, started):
                return owner
            t = time.time()
            db.execute(
                "UPDATE runs SET status='running', owner=?, attempts=COALESCE(attempts, 0) + 1,"
                " started_at=?, heartbeat=?, log_path=? WHERE key=?",
                (me, datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds"), t, log_path, key),
            )
            return None

        why = self._write(write, "cannot claim a run")
        if why is None:
            self._hold([key])
        return why

    def mark_pending(self, keys: Iterable[str]) -> None:
        """Gives back this process's claims on ``keys`` (interrupted runs)."""
        keys = list(keys)
        rows = [(k, owner_id()) for k in keys]
        self._write(
            lambda db: db.executemany(
                "UPDATE runs SET status='pending', owner=NULL, heartbeat=NULL"
                " WHERE key=? AND status='running' AND owner=?",
                rows,
            )
        )
        self._release(keys)

    # -- the lease: heartbeats of the runs this process holds ----------------------------

    def _hold(self, keys: Iterable[str]) -> None:
        """Adds ``keys`` to the runs whose heartbeat this store renews; starts its heartbeat
        thread if none runs."""
        with self._held_lock:
            self._held.update(keys)
            if self._held and self._beat_thread is None and not self._beat_stop.is_set():
                self._beat_thread = threading.Thread(target=self._beat, name="bench-heartbeat", daemon=True)
                self._beat_thread.start()

    def _release(self, keys: Iterable[str]) -> None:
        with self._held_lock:
            self._held.difference_update(keys)

    def _beating(self) -> bool:
        """Whether the heartbeat thread runs."""
        with self._held_lock:
            return self._beat_thread is not None

    def _beat(self) -> None:
        """The heartbeat thread: every tenth of the lease, renews the heartbeat of the runs this
        process holds, in one short transaction on a connection of its own (with the store's
        retries, so a busy store delays a beat but never fails it); ends when no run is held
        (runs finished, given back, or taken over by another driver) or the store is closed."""
        db: sqlite3.Connection | None = None
        try:
            while not self._beat_stop.wait(lease_s() / 10):
                with self._held_lock:
                    keys = sorted(self._held)
                    if not keys:
                        self._beat_thread = None
                        return
                try:
                    db = db or self._connect(self.busy_timeout_ms)
                    still = self._retry(partial(self._renew, db, keys), "cannot renew a run's lease")
                except (StoreError, sqlite3.Error):
                    continue  # the next beat tries again; the result's write reports a broken store
                with self._held_lock:  # a run another driver took over is no longer renewed
                    self._held.difference_update(set(keys) - still)
        finally:
            with self._held_lock:
                if self._beat_thread is threading.current_thread():
                    self._beat_thread = None
            if db is not None:
                db.close()

    def _renew(self, db: sqlite3.Connection, keys: list[str]) -> set[str]:
        """Sets the heartbeat of those of ``keys`` this process still holds to now; returns them."""
        me, t, still = owner_id(), time.time(), set()
        with _Transaction(db):
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                where = f"key IN ({marks}) AND status = 'running' AND owner = ?"
                db.execute(f"UPDATE runs SET heartbeat = ? WHERE {where}", (t, *chunk, me))
                rows = db.execute(f"SELECT key FROM runs WHERE {where}", (*chunk, me))
                still.update(key for (key,) in rows)
        return still

    def write_result(self, result: dict) -> None:
        """Stores one finished run (done or failed) in a single transaction."""
        key = result["key"]

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM curves WHERE run_key = ?", (key,))
            db.execute("DELETE FROM evals WHERE run_key = ?", (key,))
            db.execute("DELETE FROM samples WHERE run_key = ?", (key,))
            db.execute("DELETE FROM outcomes WHERE run_key = ?", (key,))
            db.executemany(
                "INSERT INTO outcomes VALUES (?,?,?,?,?)", [(key, *row) for row in result.get("outcomes", [])]
            )
            db.executemany(
                "INSERT INTO samples VALUES (?,?,?,?,?,?)", [(key, *row) for row in result.get("samples", [])]
            )
            db.executemany("INSERT INTO curves VALUES (?,?,?,?,?)", [(key, *row) for row in result["curves"]])
            db.executemany(
                "INSERT INTO evals VALUES (?,?,?,?,?,?,?,?)", [(key, *row) for row in result["evals"]]
            )
            db.execute(
                "UPDATE runs SET status=?, error=?, started_at=?, ended_at=?, wall_time=?,"
                " train_time=?, env_steps=?, git_rev=?, packages=?, host=?, log_path=?, owner=NULL,"
                " heartbeat=NULL, peak_rss_mb=?, parameters=?, machine=?, machine_info=? WHERE key=?",
                (
                    result["status"],
                    result.get("error"),
                    result["started_at"],
                    result["ended_at"],
                    result["wall_time"],
                    result["train_time"],
                    result["env_steps"],
                    result["git_rev"],
                    json.dumps(result["packages"]),
                    result["host"],
                    result.get("log_path"),
                    result.get("peak_rss_mb"),
                    result.get("parameters"),
                    (result.get("machine") or {}).get("kind"),
                    json.dumps(result["machine"], sort_keys=True) if result.get("machine") else None,
                    key,
                ),
            )

        self._write(write, f"cannot store run {key}")
        self._release([key])

    # -- reading -------------------------------------------------------------------------

    def status_counts(self) -> pd.DataFrame:
        """Per suite: runs of its current plan by status. A ``running`` run whose driver has
        died (killed, crashed, or its lease ran out: ``owner_alive``) counts as ``interrupted``:
        the next ``bench run`` re-runs it."""
        have = self._run_columns()
        owner = "r.owner" if "owner" in have else "NULL"
        heartbeat = "r.heartbeat" if "heartbeat" in have else "NULL"
        rows = self._read(
            f"SELECT p.suite AS suite, s.version AS version, r.status AS status, {owner} AS owner,"
            f" {heartbeat} AS heartbeat, r.started_at AS started_at"
            " FROM plan p JOIN runs r ON r.key = p.key LEFT JOIN suites s ON s.name = p.suite"
        )
        alive = [
            owner_alive(o, None if pd.isna(h) else float(h), s)
            for o, h, s in zip(rows.owner, rows.heartbeat, rows.started_at, strict=True)
        ]
        stale = (rows.status == "running") & ~pd.Series(alive, index=rows.index, dtype=bool)
        rows.loc[stale, "status"] = "interrupted"
        statuses = ["done", "failed", "running", "interrupted", "pending"]
        counts = pd.crosstab([rows.suite, rows.version.fillna("")], rows.status)
        counts = counts.reindex(columns=statuses, fill_value=0).astype(int)
        counts["total"] = counts.sum(axis=1)
        return counts.reset_index().rename_axis(columns=None)

    def machines(self) -> pd.DataFrame:
        """The machine kinds of the finished runs of each suite's current plan: columns machine,
        cpu (one line), suite, runs; runs stored before fingerprints count under machine ""."""
        recorded = "machine" in self._run_columns()
        machine, info = ("r.machine", "MIN(r.machine_info)") if recorded else ("''", "NULL")
        rows = self._read(
            f"SELECT r.suite AS suite, {machine} AS machine, {info} AS machine_info, COUNT(*) AS runs"
            " FROM plan p JOIN runs r ON r.key = p.key AND r.suite = p.suite"
            f" WHERE r.status IN ('done', 'failed') GROUP BY r.suite, {machine} ORDER BY {machine}, r.suite"
        )
        rows["machine"] = rows.machine.fillna("")
        rows["cpu"] = machine_labels(rows)
        return rows[["machine", "cpu", "suite", "runs"]]

    def _run_columns(self) -> set[str]:
        return set(self._read("SELECT name FROM pragma_table_info('runs')")["name"])

    # Reads cover the runs of each suite's current plan; runs of an earlier grid of a suite
    # (superseded by an edit) stay in the store but are left out.
    def runs(self, suite: str | None = None) -> pd.DataFrame:
        query = "SELECT r.* FROM runs r JOIN plan p ON p.key = r.key AND p.suite = r.suite"
        args: tuple = ()
        if suite is not None:
            query += " WHERE r.suite = ?"
            args = (suite,)
        return self._read(query + " ORDER BY r.suite, r.algorithm, r.task, r.seed", args)

    def earlier_runs(self, suite: str) -> pd.DataFrame:
        """The suite's finished runs outside its current plan: those of earlier code, settings,
        grids or suite versions, which stay in the store (``bench run`` names them, ``bench compare
        --baseline-version`` takes its baseline from them)."""
        query = (
            "SELECT r.* FROM runs r WHERE r.suite = ? AND r.status IN ('done', 'failed')"
            " AND r.key NOT IN (SELECT key FROM plan WHERE suite = ?) ORDER BY r.algorithm, r.task, r.seed"
        )
        return self._read(query, (suite, suite))

    def evals_of(self, keys: list[str]) -> pd.DataFrame:
        """The evaluation records of the runs ``keys``."""
        frames = []
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            frames.append(self._read(f"SELECT * FROM evals WHERE run_key IN ({marks})", tuple(chunk)))
        return pd.concat(frames, ignore_index=True) if frames else self._read("SELECT * FROM evals WHERE 0")

    def evals(self, suite: str | None = None) -> pd.DataFrame:
        return self._records("evals", suite)

    def curves(self, suite: str | None = None) -> pd.DataFrame:
        return self._records("curves", suite)

    def samples(self, suite: str | None = None) -> pd.DataFrame:
        return self._records("samples", suite)

    def outcomes(self, suite: str | None = None) -> pd.DataFrame:
        return self._records("outcomes", suite)

    def _records(self, table: str, suite: str | None) -> pd.DataFrame:
        query = (
            f"SELECT t.* FROM {table} t JOIN runs r ON r.key = t.run_key"
            " JOIN plan p ON p.key = r.key AND p.suite = r.suite"
        )
        args: tuple = ()
        if suite is not None:
            query += " WHERE r.suite = ?"
            args = (suite,)
        return self._read(query, args)

    def suite_names(self) -> list[str]:
        """Names of the suites with runs in this store, sorted."""
        return sorted(self._read("SELECT DISTINCT suite FROM runs").suite.astype(str))

    def unknown_suite(self, suite: str) -> str:
        """The message for a suite this store does not hold, naming the ones it does."""
        names = self.suite_names()
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        return f"no suite {suite!r} in {self.path} (it has: {shown or 'no suites yet'})"

    def suite_row(self, suite: str) -> tuple | None:
        """(name, version, hash, path, updated_at, definition) of a registered suite, or None."""
        query = "SELECT name, version, hash, path, updated_at, definition FROM suites WHERE name = ?"
        rows = self._read(query, (suite,))
        return tuple(rows.iloc[0]) if len(rows) else None


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    low = text.lower()
    if "disk i/o" in low or "full" in low:
        text += " (is the disk full, or the file over a size limit?)"
    elif "readonly" in low or "read-only" in low:
        text += " (the store file or its folder is read-only)"
    elif "not a database" in low or "malformed" in low:
        text += " (the file is corrupt or not a results store; `sqlite3 FILE 'PRAGMA integrity_check'`)"
    return text


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:  # no transaction left to roll back (SQLite ended it on the error)
            pass


EXPORT_COLUMNS = [
    "suite",
    "suite_version",
    "run_key",
    "task",
    "algorithm",
    "algo",
    "seed",
    "status",
    "code",
    "base_key",
    "machine",
    "cpu",
    "kind",
    "step",
    "wall_time",
    "train_time",
    "temperature",
    "metric",
    "value",
    "n",
]


# Columns and metrics that measure time or speed (and peak memory): they differ between two runs of the same
# suite, everything else in the store is reproducible (same suite, same code, CPU: same bytes).
# `bench export --no-timing` leaves them out. A metric is timing-valued when it is listed in
# TIMING_METRICS, starts with a TIMING_PREFIXES entry or ends with a TIMING_SUFFIXES entry.
TIMING_COLUMNS = ("wall_time", "train_time")
TIMING_METRICS = frozenset(
    {
        "run/wall_time",  # seconds for the whole run
        "run/train_time",  # seconds of training (evaluation excluded)
        "run/env_steps_per_s",  # env steps / training time
        "perf/env_steps_per_s",  # the same, so far, on every learning-curve point
        "dist/startup_s",  # Distributed PPO: seconds to start the workers
        "run/peak_rss_mb",  # not time, but machine-dependent too: peak resident memory of the run
    }
)
TIMING_PREFIXES = ("perf/", "time/")  # throughput / clock families
TIMING_SUFFIXES = ("_s", "_time", "_seconds", "_sps", "/sps", "_per_s", "_per_second")


def is_timing_metric(metric: str) -> bool:
    """True for a metric that measures time or speed (see TIMING_METRICS)."""
    m = str(metric)
    return m in TIMING_METRICS or m.startswith(TIMING_PREFIXES) or m.endswith(TIMING_SUFFIXES)


def code_short(fingerprint: str | None) -> str:
    """A stored code fingerprint (JSON) as ``{version}+{source hash}``; "" for none."""
    if not isinstance(fingerprint, str) or not fingerprint.strip():
        return ""
    try:
        fp = json.loads(fingerprint)
        return f"{fp['version']}+{fp['source']}"
    except (ValueError, KeyError, TypeError):
        return fingerprint


def machine_labels(runs: pd.DataFrame) -> pd.Series:
    """Each run's machine as one line (``bench.machine.label``); "" for runs stored before
    fingerprints were recorded."""
    from bench.machine import label, parse

    if "machine_info" not in runs:
        return pd.Series("", index=runs.index, dtype=object)
    return runs["machine_info"].map(lambda blob: label(info) if (info := parse(blob)) else "")


def tidy(
    store: Store, suite: str | None = None, kinds: set[str] | None = None, timing: bool = True
) -> pd.DataFrame:
    """The long export table: one row per record (columns documented in README.md); ``kinds``
    selects record kinds among eval, curve and run (default: all). ``timing=False`` leaves out
    the timing columns and every timing-valued metric (``is_timing_metric``): what is left is
    byte-identical between two runs of the same suite. Rows are in a canonical order."""
    kinds = kinds or {"eval", "curve", "run"}
    runs = store.runs(suite)
    ident = runs[["key", "suite", "suite_version", "task", "algorithm", "algo", "seed", "status"]]
    ident = ident.rename(columns={"key": "run_key"})
    ident = ident.assign(
        code=runs["code"].map(code_short) if "code" in runs else "",
        base_key=runs["base_key"].fillna("") if "base_key" in runs else "",
        machine=runs["machine"].fillna("") if "machine" in runs else "",
        cpu=machine_labels(runs),
    )
    ev = store.evals(suite).assign(kind="eval") if "eval" in kinds else pd.DataFrame()
    cv = pd.DataFrame()
    if "curve" in kinds:
        cv = store.curves(suite).assign(
            kind="curve", train_time=float("nan"), temperature=float("nan"), n=pd.NA
        )
    finished = runs[runs.status.isin(["done", "failed"])] if "run" in kinds else runs.iloc[:0]
    summary = []
    for _, r in finished.iterrows():
        sps = r.env_steps / r.train_time if r.train_time else float("nan")
        for metric, value in [
            ("run/wall_time", r.wall_time),
            ("run/train_time", r.train_time),
            ("run/env_steps", r.env_steps),
            ("run/env_steps_per_s", sps),
            ("run/failed", float(r.status == "failed")),
            *[
                (f"run/{col}", r[col])
                for col in ("peak_rss_mb", "parameters")
                if col in r and pd.notna(r[col])
            ],
        ]:
            summary.append(
                dict(
                    run_key=r.key,
                    step=r.env_steps,
                    wall_time=r.wall_time,
                    train_time=r.train_time,
                    temperature=float("nan"),
                    metric=metric,
                    value=value,
                    n=pd.NA,
                    kind="run",
                )
            )
    columns = EXPORT_COLUMNS if timing else [c for c in EXPORT_COLUMNS if c not in TIMING_COLUMNS]
    frames = [f for f in (ev, cv, pd.DataFrame(summary)) if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    records = pd.concat(frames, ignore_index=True)
    out = records.merge(ident, on="run_key", how="inner")
    if not timing:
        out = out[~out.metric.map(is_timing_metric).astype(bool)]
    # whole numbers print as such (a failed run's missing env steps would make them floats)
    for col in ("step", "seed", "n"):
        values = pd.to_numeric(out[col], errors="coerce")
        if values.dropna().mod(1).eq(0).all():
            out[col] = values.astype("Int64")
    # a canonical order: within one run, ties (same kind, metric, step, temperature) keep the
    # order the run recorded them in
    order = ["suite", "algorithm", "task", "seed", "kind", "metric", "step", "temperature", "run_key"]
    return out[columns].sort_values(order, kind="stable").reset_index(drop=True)
