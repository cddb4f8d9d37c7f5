"""The regression gate on real runs: a refactor (a new code version, the same behaviour) is judged
``identical`` run by run, a one-line behavioural change is named down to the first record that
differs, ``--baseline-version`` compares two code versions in one store, and a comparison missing
from the store fails the gate."""

import dataclasses
import re
import sqlite3

import pandas as pd
import pytest

from bench.algos import ppo
from bench.cli import main
from bench.registry import ALGORITHMS
from bench.store import code_short

SUITE = """
name: gate-test
version: 1
tasks: [CartPole-v1]
seeds: 2
env_steps: 1024
evaluation: {eval_every: 512, eval_episodes: 2}
algorithms:
  - algo: ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: 2}
  - algo: pg
    params: {n_envs: 4, n_steps: 128}
"""


def _ppo_codes(store) -> list[str]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT code FROM runs WHERE algo = 'ppo' ORDER BY rowid").fetchall()
    return list(dict.fromkeys(code_short(c) for (c,) in rows))


def _smaller_clip_range(task, cfg, *args, **kwargs):
    return ppo.train(task, cfg.model_copy(update={"clip_range": 0.05}), *args, **kwargs)


@pytest.fixture
def gate_store(tmp_path, monkeypatch, write_suite):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    suite, store = str(write_suite(SUITE)), str(tmp_path / "g.sqlite")
    assert main(["run", suite, "--store", store, "-q"]) == 0
    return suite, store


def test_a_refactor_is_identical_and_a_behavioural_change_is_named(gate_store, tmp_path, monkeypatch, capsys):
    suite, store = gate_store
    original = ALGORITHMS["ppo"]
    # a refactor: new code version, same behaviour
    monkeypatch.setitem(ALGORITHMS, "ppo", dataclasses.replace(original, version="1-refactor"))
    assert main(["run", suite, "--store", store, "-q"]) == 0
    assert "2 of them were done under earlier code of ppo" in capsys.readouterr().err
    first, refactor = _ppo_codes(store)
    out = tmp_path / "cmp"
    args = ["compare", "--store", store, "--suite", "gate-test", "-o", str(out)]
    assert main([*args, "--baseline-version", first]) == 0
    text = capsys.readouterr().out
    assert "no regression in 1 comparisons; 1 identical" in text
    table = pd.read_csv(out / "compare.csv").set_index("algorithm")
    assert table.loc["ppo", "exact"] == "identical: 2/2 runs" and table.loc["ppo", "verdict"] == "identical"
    # pg ran the same code for both versions: the same runs on both sides, not a new algorithm
    assert table.loc["pg", "verdict"] == "unchanged" and table.loc["pg", "baseline_seeds"] == 2
    assert not (out / "compare.png").exists()  # nothing judged by statistics, no figure
    # a one-line behavioural change under another version
    monkeypatch.setitem(
        ALGORITHMS, "ppo", dataclasses.replace(original, version="2", train=_smaller_clip_range)
    )
    assert main(["run", suite, "--store", store, "-q"]) == 0
    assert len(_ppo_codes(store)) == 3
    capsys.readouterr()
    # a prefix of the source hash may name a version, but here it names two
    assert main([*args, "--baseline-version", refactor.split("+")[1][:6]]) == 2
    assert f"it matches {first}, {refactor}; give one in full" in capsys.readouterr().err
    rc = main([*args, "--baseline-version", refactor])
    table = pd.read_csv(out / "compare.csv").set_index("algorithm")
    row = table.loc["ppo"]
    # the first evaluation already differs: named with the baseline's and the store's value
    assert re.fullmatch(r"differs: seed 0, eval/return at step \d+, T=0: [\d.]+ → [\d.]+", row.exact), (
        row.exact
    )
    assert row.method == "paired t" and row.verdict != "identical"
    assert rc == (1 if row.verdict == "regression" else 0)
    assert (out / "compare.png").is_file()
    capsys.readouterr()
    # an unknown version names the ones the store has
    assert main([*args, "--baseline-version", "9+nothing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no runs of suite 'gate-test' under code '9+nothing'") and first in err


def test_a_comparison_missing_from_the_store_fails_the_gate(gate_store, tmp_path, capsys):
    suite, store = gate_store
    baseline = tmp_path / "base.csv"
    assert main(["export", "--store", store, "-o", str(baseline)]) == 0
    # a store holding pg only
    with sqlite3.connect(store) as db:
        db.execute("DELETE FROM evals WHERE run_key IN (SELECT key FROM runs WHERE algo = 'ppo')")
        db.execute("DELETE FROM runs WHERE algo = 'ppo'")
    capsys.readouterr()
    args = [
        "compare",
        "--store",
        store,
        "--suite",
        "gate-test",
        "--baseline",
        str(baseline),
        "-o",
        str(tmp_path / "c"),
    ]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "no regression in 1 comparisons; 1 identical; 1 MISSING from the store" in captured.out
    assert "error: CartPole-v1 / ppo: in the baseline but no finished run in the store" in captured.err
    assert main([*args, "--allow-missing"]) == 0
    assert "1 MISSING from the store (allowed)" in capsys.readouterr().out


def test_plan_says_how_many_seeds_each_comparison_needs(capsys):
    """`bench plan` on the committed classic-control baseline: the seeds for Pendulum PPO are
    those bench.gate computes from the seed spread of its five final greedy scores."""
    import io
    import math
    from pathlib import Path

    import numpy as np

    from bench import gate

    csv = Path(__file__).resolve().parents[2] / "baselines" / "classic-control.csv"
    args = [
        "plan",
        "--results",
        str(csv),
        "--suite",
        "classic-control",
        "--tolerance",
        "0.02",
        "--effect",
        "0.1",
    ]
    assert main([*args, "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index(["task", "algorithm"])
    assert len(table) == 12
    raw = pd.read_csv(csv)
    finals = raw[(raw.task == "Pendulum-v1") & (raw.algorithm == "ppo") & (raw.metric == "eval/return")
                 & (raw.temperature == 0.0)]  # fmt: skip
    finals = finals[finals.step == finals.groupby("seed").step.transform("max")].value.to_numpy()
    sd = np.std((finals - (-1255.5)) / (-200 - (-1255.5)), ddof=1)  # Pendulum's random and solved scores
    row = table.loc[("Pendulum-v1", "ppo")]
    assert row.seeds == 5 and row.seed_sd == pytest.approx(sd)
    level = 1 - 0.05 / 12
    assert row.seeds_needed == gate.seeds_needed(sd, 0.1, level, 0.02)
    mde = gate.minimum_detectable_effect(math.sqrt(2) * sd / math.sqrt(5), 4, level, 0.02)
    assert row.mde_now == pytest.approx(mde)
    assert main(args) == 0 and "99.58% per comparison" in capsys.readouterr().out
    assert main([*args[:-2], "--effect", "0.01"]) == 2
    assert "--effect must be larger than --tolerance" in capsys.readouterr().err
