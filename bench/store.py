"""The results store: one SQLite file (default ``runs/bench.sqlite``).

Tables: ``suites`` (definition and hash), ``plan`` (the run keys of a suite's current grid),
``runs`` (one row per run with config, status and provenance), ``curves`` (training metrics
against env steps), ``evals`` (evaluation-protocol records), ``samples`` (generated texts of
LM runs with their gold scores) and ``outcomes`` (per-prompt outcomes of LM runs' final
evaluation, e.g. win against the reference, for intervals over prompts). A finished run is written in one
transaction, so a crash leaves either the whole run or none of it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.suite import RunSpec, Suite

DEFAULT_STORE = "runs/bench.sqlite"

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
  git_rev TEXT, packages TEXT, host TEXT, log_path TEXT
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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StoreError(Exception):
    """The store cannot be opened, created or read."""


class Store:
    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no results store here (run `bench run SUITE` first)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self.db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as e:
            raise StoreError(f"{self.path}: cannot open results store: {e}") from None

    def close(self) -> None:
        self.db.close()

    def _tx(self):
        return _Transaction(self.db)

    # -- writing -------------------------------------------------------------------------

    def register(self, suite: Suite, specs: list[RunSpec]) -> None:
        """Records the suite and its current plan; new runs become ``pending``."""
        definition = json.dumps(suite.model_dump(mode="json"), sort_keys=True)
        with self._tx() as db:
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
                " env_steps_budget, config, evaluation, status) VALUES (?,?,?,?,?,?,?,?,?,?,'pending')",
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
                    )
                    for s in specs
                ],
            )

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        out: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self.db.execute(
                f"SELECT key FROM runs WHERE status = 'done' AND key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out.update(r[0] for r in rows)
        return out

    def mark_running(self, key: str, log_path: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status='running', started_at=?, log_path=? WHERE key=?",
                (now(), log_path, key),
            )

    def mark_pending(self, keys: Iterable[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE runs SET status='pending' WHERE key=? AND status='running'",
                [(k,) for k in keys],
            )

    def write_result(self, result: dict) -> None:
        """Stores one finished run (done or failed) in a single transaction."""
        key = result["key"]
        with self._tx() as db:
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
                " train_time=?, env_steps=?, git_rev=?, packages=?, host=?, log_path=? WHERE key=?",
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
                    key,
                ),
            )

    # -- reading -------------------------------------------------------------------------

    def status_counts(self) -> pd.DataFrame:
        """Per suite: runs of its current plan by status. ``running`` rows left by a killed driver
        are re-run by the next ``bench run``."""
        return pd.read_sql_query(
            "SELECT p.suite AS suite, s.version AS version,"
            " SUM(r.status = 'done') AS done, SUM(r.status = 'failed') AS failed,"
            " SUM(r.status = 'running') AS running, SUM(r.status = 'pending') AS pending,"
            " COUNT(*) AS total"
            " FROM plan p JOIN runs r ON r.key = p.key LEFT JOIN suites s ON s.name = p.suite"
            " GROUP BY p.suite ORDER BY p.suite",
            self.db,
        )

    # Reads cover the runs of each suite's current plan; runs of an earlier grid of a suite
    # (superseded by an edit) stay in the store but are left out.
    def runs(self, suite: str | None = None) -> pd.DataFrame:
        query = "SELECT r.* FROM runs r JOIN plan p ON p.key = r.key AND p.suite = r.suite"
        args: tuple = ()
        if suite is not None:
            query += " WHERE r.suite = ?"
            args = (suite,)
        return pd.read_sql_query(
            query + " ORDER BY r.suite, r.algorithm, r.task, r.seed", self.db, params=args
        )

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
        return pd.read_sql_query(query, self.db, params=args)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


EXPORT_COLUMNS = [
    "suite",
    "suite_version",
    "run_key",
    "task",
    "algorithm",
    "algo",
    "seed",
    "status",
    "kind",
    "step",
    "wall_time",
    "train_time",
    "temperature",
    "metric",
    "value",
    "n",
]


def tidy(store: Store, suite: str | None = None, kinds: set[str] | None = None) -> pd.DataFrame:
    """The long export table: one row per record (columns documented in README.md); ``kinds``
    selects record kinds among eval, curve and run (default: all)."""
    kinds = kinds or {"eval", "curve", "run"}
    runs = store.runs(suite)
    ident = runs[["key", "suite", "suite_version", "task", "algorithm", "algo", "seed", "status"]]
    ident = ident.rename(columns={"key": "run_key"})
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
    frames = [f for f in (ev, cv, pd.DataFrame(summary)) if len(f)]
    if not frames:
        return pd.DataFrame(columns=EXPORT_COLUMNS)
    records = pd.concat(frames, ignore_index=True)
    out = records.merge(ident, on="run_key", how="inner")
    return (
        out[EXPORT_COLUMNS]
        .sort_values(["suite", "algorithm", "task", "seed", "kind", "metric", "step"], kind="stable")
        .reset_index(drop=True)
    )
