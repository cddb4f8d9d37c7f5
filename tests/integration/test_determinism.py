"""Determinism: the same suite run twice on CPU stores the same results, and the same store renders
the same report.

* Every algorithm of the project (``bench list``) runs twice, each time into a new store, in this
  process: once with a cold artifact cache (reference policies, preference data, reward models,
  tokenizers, SFT models are built) and once with the cache the first run filled. The two
  stores' ``bench export --no-timing`` files must be byte-equal, and so must the stored LM text
  samples and per-prompt outcomes. Default run: the two suites in ``tests/integration/suites/``
  (every algorithm once, tiny budgets; about 20 s each on 2 cores). ``-m slow``: every shipped
  smoke suite and those two, three times each — cold cache, warm cache, and a second cold cache
  with ``--jobs 2`` — about 6 minutes on 2 cores:

      pytest -m slow tests/integration/test_determinism.py

* ``bench report`` twice from the same store writes byte-identical figures and CSV tables,
  whatever the global NumPy random state or the hash seed; with ``SOURCE_DATE_EPOCH`` set, the
  whole folder is byte-identical (otherwise index.html, summary.md and report.json differ in
  their "generated" time only).
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.store import is_timing_metric

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "baselines" / "published.csv"
HERE = Path(__file__).resolve().parent / "suites"
DETERMINISM_SUITES = [HERE / "determinism-control.yaml", HERE / "determinism-lm.yaml"]
SMOKE = ["smoke", "control-alignment-smoke", "lm-smoke", "lm-summarization-smoke", "scale-smoke"]
SMOKE_SUITES = [ROOT / "suites" / f"{name}.yaml" for name in SMOKE]


def algos_of(suite: Path) -> set[str]:
    """The registered algorithms a suite file runs (read as YAML, following ``include``)."""
    data = yaml.safe_load(suite.read_text())
    if "algorithms" not in data and data.get("include"):
        return algos_of(suite.parent / data["include"])
    return {entry["algo"] for entry in data["algorithms"]}


def run_suite(suite: Path, store: Path, cache: Path, monkeypatch, *args: str) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    assert main(["run", str(suite), "--store", str(store), "-q", *args]) == 0


def export(store: Path, out: Path) -> bytes:
    assert main(["export", "--store", str(store), "--no-timing", "-o", str(out)]) == 0
    return out.read_bytes()


def texts(store: Path) -> dict[str, list[tuple]]:
    """The stored LM samples and per-prompt outcomes, by run identity (not by row id)."""
    db = sqlite3.connect(store)
    ident = "r.suite, r.algorithm, r.task, r.seed"
    out = {
        "samples": db.execute(
            f"SELECT {ident}, s.step, s.temperature, s.prompt, s.completion, s.score FROM samples s"
            f" JOIN runs r ON r.key = s.run_key ORDER BY {ident}, s.rowid"
        ).fetchall(),
        "outcomes": db.execute(
            f"SELECT {ident}, o.temperature, o.metric, o.item, o.value FROM outcomes o"
            f" JOIN runs r ON r.key = o.run_key ORDER BY {ident}, o.rowid"
        ).fetchall(),
    }
    db.close()
    return out


def first_difference(a: bytes, b: bytes) -> str:
    """Where two exports differ: the first differing line of each, for the failure message."""
    la, lb = a.decode().splitlines(), b.decode().splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return f"line {i + 1}:\n  first:  {x}\n  second: {y}"
    return f"lengths differ: {len(la)} and {len(lb)} lines"


def check_same(stores: list[Path], tmp: Path) -> bytes:
    tables = [export(s, tmp / f"{s.stem}.csv") for s in stores]
    for store, table in zip(stores[1:], tables[1:], strict=True):
        assert table == tables[0], f"{stores[0].name} vs {store.name}: {first_difference(tables[0], table)}"
        assert texts(store) == texts(stores[0])
    return tables[0]


def test_the_determinism_suites_cover_every_algorithm():
    from bench.algos import ALGORITHMS

    assert set().union(*map(algos_of, DETERMINISM_SUITES)) == set(ALGORITHMS)


@pytest.mark.parametrize(
    "suite",
    [pytest.param(s, marks=pytest.mark.slow) for s in DETERMINISM_SUITES],  # control 13 s, LM 11 s
    ids=lambda p: p.stem,
)
def test_a_suite_run_twice_exports_byte_identical_results(suite, tmp_path, monkeypatch):
    """Cold cache, then warm cache (what a rerun on the same machine finds): same bytes."""
    cache = tmp_path / "cache"
    stores = [tmp_path / "cold.sqlite", tmp_path / "warm.sqlite"]
    for store in stores:
        run_suite(suite, store, cache, monkeypatch)
    table = check_same(stores, tmp_path)
    frame = pd.read_csv(io.BytesIO(table))
    assert set(frame.algo) == algos_of(suite) and (frame.status == "done").all()
    assert "wall_time" not in frame and not frame.metric.map(is_timing_metric).any()
    assert "train/ref_kl_per_step" in set(frame.metric) or suite.stem != "determinism-control"


@pytest.mark.slow
def test_every_smoke_suite_run_three_times_exports_byte_identical_results(tmp_path, monkeypatch):
    """Every shipped smoke suite and the determinism suites: cold cache, warm cache, and another
    cold cache with two worker processes."""
    from bench.algos import ALGORITHMS

    suites = SMOKE_SUITES + DETERMINISM_SUITES
    assert set().union(*map(algos_of, suites)) == set(ALGORITHMS)
    stores = [tmp_path / "cold.sqlite", tmp_path / "warm.sqlite", tmp_path / "cold-jobs2.sqlite"]
    for suite in suites:
        run_suite(suite, stores[0], tmp_path / "cache1", monkeypatch)
        run_suite(suite, stores[1], tmp_path / "cache1", monkeypatch)
        run_suite(suite, stores[2], tmp_path / "cache2", monkeypatch, "--jobs", "2")
    check_same(stores, tmp_path)


# -- reports -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory) -> Path:
    from bench.report.synthetic import write_synthetic
    from bench.store import Store

    path = tmp_path_factory.mktemp("report") / "bench.sqlite"
    store = Store(path)
    # several seeds per algorithm: the final-score panel jitters its dots
    write_synthetic(store, labels=["ppo", "pg", "dpo[beta=0.1]", "dpo[beta=1]"], seeds=4, alignment=True,
                    failed=1, seed=3)  # fmt: skip
    store.close()
    return path


def render(store: Path, out: Path) -> dict[str, bytes]:
    argv = ["report", "--store", str(store), "--suite", "synthetic", "-o", str(out), "-q", "--reps", "100",
            "--published", str(PUBLISHED)]  # fmt: skip
    assert main(argv) == 0
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


STAMPED = {"index.html", "summary.md", "report.json"}  # carry the "generated" time


@pytest.mark.slow  # each render writes every figure as PNG and SVG
def test_a_report_rendered_twice_has_identical_figures_and_tables(synthetic_store, tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    np.random.seed(1)  # the global random state must not matter
    first = render(synthetic_store, tmp_path / "a")
    np.random.seed(2)
    second = render(synthetic_store, tmp_path / "b")
    assert first.keys() == second.keys()
    assert sum(name.endswith(".png") for name in first) >= 6 and sum(n.endswith(".csv") for n in first) >= 4
    differ = {name for name in first if first[name] != second[name]}
    assert differ <= STAMPED, differ


@pytest.mark.slow  # 14 s: a fresh interpreter renders a report
def test_with_source_date_epoch_the_whole_report_is_identical_in_a_fresh_process(
    synthetic_store, tmp_path, monkeypatch
):
    """Another process with another hash seed (set and dict orders) writes the same bytes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = render(synthetic_store, tmp_path / "a")
    assert "2023-11-14 22:13 UTC" in first["index.html"].decode()
    env = {**os.environ, "PYTHONHASHSEED": "12345", "SOURCE_DATE_EPOCH": "1700000000"}
    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "bench", "report", "--store", str(synthetic_store), "--suite", "synthetic",
           "-o", str(out), "-q", "--reps", "100", "--published", str(PUBLISHED)]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, cwd=tmp_path, capture_output=True)
    second = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert first.keys() == second.keys()
    assert [n for n in first if first[n] != second[n]] == []
