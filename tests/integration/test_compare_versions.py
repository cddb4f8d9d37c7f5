"""Two versions of an algorithm in one store (issue 37): a default changed in the algorithm's code
gives its runs a new config as well as a new code version; ``bench run`` says which runs were done
under earlier settings, ``bench compare --baseline-version`` pairs the runs by label, task and seed
across code and settings and names what differs, an algorithm unchanged between the versions is
``unchanged`` (not ``new``), and an under-powered verdict is not shown as a pass."""

import dataclasses
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.compare import run_change, settings_change, version_runs
from bench.registry import ALGORITHMS, Algorithm
from bench.report.tables import md_escape
from bench.store import code_short

PLUGIN = """
from pydantic import Field

from bench.api import Algorithm, PPOConfig, ppo_train, register_algorithm


class MyPPOConfig(PPOConfig):
    n_epochs: int = Field(2, ge=1, description="passes over each rollout")


def train(task, cfg, env_steps, seed, evaluator, recorder):
    return ppo_train(task, cfg, env_steps, seed, evaluator, recorder)


register_algorithm(Algorithm("my-ppo", MyPPOConfig, {}, train, "PPO with its own defaults"))
"""

PLUGIN_SUITE = """
name: versions
version: 1
tasks: [CartPole-v1]
seeds: 2
env_steps: 1024
evaluation: {eval_every: 512, eval_episodes: 2}
algorithms:
  - algo: my-ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128}
  - algo: pg
    params: {n_envs: 4, n_steps: 128}
"""

BUILT_IN_SUITE = """
name: settings
version: 1
tasks: [CartPole-v1]
seeds: 2
env_steps: 1024
evaluation: {eval_every: 512, eval_episodes: 2}
algorithms:
  - algo: ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: N_EPOCHS}
  - algo: pg
    params: {n_envs: 4, n_steps: 128}
"""


def bench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m bench ARGS`` in ``cwd``, with the plugin module there importable."""
    env = {**os.environ, "BENCH_CACHE": str(cwd / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def codes_of(store: Path, algo: str) -> list[str]:
    """The code versions of ``algo``'s runs, in the order they were stored."""
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT code FROM runs WHERE algo = ? ORDER BY rowid", (algo,)).fetchall()
    return list(dict.fromkeys(code_short(c) for (c,) in rows))


def row_classes(html: str) -> dict[str, str]:
    """algorithm -> the class of its row in compare.html (the algorithm is the row's second cell)."""
    rows = re.findall(r'<tr class="([^"]*)"><td>[^<]*</td><td>([^<]*)</td>', html)
    return {algo: cls for cls, algo in rows}


@pytest.mark.slow  # 50 s: three bench processes, each plugin run in a process of its own
def test_a_default_changed_in_a_plugin_modules_code_is_compared_and_named(tmp_path):
    """The issue's case on disk: the plugin module's default ``n_epochs`` goes from 2 to 1 between
    two runs of one store."""
    module = tmp_path / "myalgo.py"
    module.write_text(PLUGIN)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(PLUGIN_SUITE))
    run = ["run", "s.yaml", "--store", "b.sqlite", "-q", "--plugin", "myalgo"]
    first = bench(tmp_path, *run)
    assert first.returncode == 0, first.stderr
    module.write_text(PLUGIN.replace("Field(2,", "Field(1,"))
    second = bench(tmp_path, *run)
    assert second.returncode == 0, second.stderr
    old, new = codes_of(tmp_path / "b.sqlite", "my-ppo")
    assert "2 already done, 2 to run" in second.stderr
    assert f"2 of them were done under earlier settings of my-ppo (n_epochs 2 → 1, code {old} → {new})" in (
        second.stderr
    )
    gate = bench(tmp_path, "compare", "--suite", "versions", "--store", "b.sqlite", "--baseline-version", old,
                 "-o", "gate")  # fmt: skip
    assert gate.returncode in (0, 1), gate.stderr
    table = pd.read_csv(tmp_path / "gate" / "compare.csv", keep_default_na=False).set_index("algorithm")
    mine = table.loc["my-ppo"]
    assert (mine.baseline_seeds, mine.store_seeds, mine.method) == (2, 2, "paired t")
    assert (mine.settings, mine.baseline_code, mine.store_code) == ("n_epochs 2 → 1", old, new)
    assert table.loc["pg", "verdict"] == "unchanged"
    assert f"CartPole-v1 / my-ppo: n_epochs 2 → 1, code {old} → {new}." in gate.stdout


def _fewer_epochs(algo: Algorithm) -> Algorithm:
    """``algo`` after an edit of its code that lowers its CartPole default of ``n_epochs`` from 10
    to 5 (and bumps its version, as such an edit should)."""
    defaults = {**algo.task_defaults, "CartPole-v1": {**algo.task_defaults["CartPole-v1"], "n_epochs": 5}}
    return dataclasses.replace(algo, version="2", task_defaults=defaults)


def test_a_default_changed_in_the_algorithms_code_is_compared_and_named(tmp_path, monkeypatch, capsys,
                                                                         write_suite):  # fmt: skip
    """PPO's CartPole default ``n_epochs`` goes from 10 to 5 in its code between two runs of one
    store: a new code version and a new config; pg is left as it was."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    store = str(tmp_path / "b.sqlite")
    suite = str(write_suite(BUILT_IN_SUITE.replace(", n_epochs: N_EPOCHS", "")))
    assert main(["run", suite, "--store", store, "-q"]) == 0
    monkeypatch.setitem(ALGORITHMS, "ppo", _fewer_epochs(ALGORITHMS["ppo"]))
    capsys.readouterr()
    assert main(["run", suite, "--store", store, "-q"]) == 0
    old, new = codes_of(Path(store), "ppo")
    err = capsys.readouterr().err
    assert "2 already done, 2 to run" in err
    assert f"2 of them were done under earlier settings of ppo (n_epochs 10 → 5, code {old} → {new})" in err

    out = tmp_path / "cmp"
    rc = main(["compare", "--store", store, "--suite", "settings", "--baseline-version", old, "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    table = pd.read_csv(out / "compare.csv", keep_default_na=False).set_index("algorithm")
    ppo = table.loc["ppo"]
    assert (ppo.baseline_seeds, ppo.store_seeds, ppo.method) == (2, 2, "paired t")
    assert (ppo.settings, ppo.baseline_code, ppo.store_code) == ("n_epochs 10 → 5", old, new)
    assert ppo.exact.startswith("differs: seed 0") and ppo.exact.endswith("(configs differ)")
    # two seeds at a Bonferroni level: the interval is wide and the verdict says so
    assert ppo.verdict == "no significant change (under-powered)"
    # pg ran the same code and settings for both versions: the same runs on both sides
    pg = table.loc["pg"]
    assert pg.verdict == "unchanged" and pg.settings == ""
    assert (pg.baseline_seeds, pg.store_seeds) == (2, 2) and pg.baseline_mean == pg.store_mean
    assert "no regression in 1 comparisons; 1 under-powered" in text and "; 1 unchanged" in text
    what = f"Settings differ (baseline → store): CartPole-v1 / ppo: n_epochs 10 → 5, code {old} → {new}."
    assert what in text

    md = (out / "compare.md").read_text()
    assert md_escape(what) in md and "(n=0" not in md
    pg_code = table.loc["pg", "store_code"]
    assert re.search(
        rf"\| CartPole-v1 \| pg \|[^\n]*\| unchanged \| nothing \(code {re.escape(pg_code)}\) \|", md
    )
    changed = md_escape(f"n_epochs 10 → 5, code {old} → {new}")
    assert re.search(rf"\| CartPole-v1 \| ppo \|[^\n]*\| {re.escape(changed)} \|", md)
    html = (out / "compare.html").read_text()
    # under-powered is not a pass: its own (amber) class, on the row and on the summary
    assert row_classes(html) == {"ppo": "under-powered", "pg": "unchanged"}
    assert '<p class="verdict under-powered">' in html and 'class="verdict pass"' not in html
    assert re.search(r"\.under-powered \{ background: #[0-9a-f]{6}; \}", html)
    assert "(n=0" not in html and "n_epochs 10 → 5" in html


def test_a_setting_changed_in_the_suite_is_compared_with_the_same_codes_earlier_runs(
    tmp_path, monkeypatch, capsys, write_suite
):
    """PPO's ``n_epochs`` changed in the suite, the code left as it was: ``--baseline-version`` of
    that code compares with its runs under the earlier settings."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    store = str(tmp_path / "b.sqlite")
    suite = str(write_suite(BUILT_IN_SUITE.replace("N_EPOCHS", "2")))
    assert main(["run", suite, "--store", store, "-q"]) == 0
    write_suite(BUILT_IN_SUITE.replace("N_EPOCHS", "1"))
    capsys.readouterr()
    assert main(["run", suite, "--store", store, "-q"]) == 0
    err = capsys.readouterr().err
    assert "2 of them were done under earlier settings of ppo (n_epochs 2 → 1): they run again" in err
    assert "earlier code" not in err
    (code,) = codes_of(Path(store), "ppo")
    out = tmp_path / "cmp"
    rc = main(
        ["compare", "--store", store, "--suite", "settings", "--baseline-version", code, "-o", str(out)]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "Settings differ (baseline → store): CartPole-v1 / ppo: n_epochs 2 → 1." in text
    assert f"n_epochs 2 → 1, same code {code}" in text  # the table's "what differs"
    table = pd.read_csv(out / "compare.csv", keep_default_na=False).set_index("algorithm")
    ppo = table.loc["ppo"]
    assert (ppo.settings, ppo.baseline_code, ppo.store_code) == ("n_epochs 2 → 1", code, code)
    assert (ppo.baseline_seeds, ppo.store_seeds, ppo.method) == (2, 2, "paired t")
    assert table.loc["pg", "verdict"] == "unchanged"


def test_settings_change_names_each_field_that_differs():
    old = dict(config='{"n_epochs": 10, "lr": 0.003, "net": {"hidden": [64, 64]}}', env_steps_budget=1024,
               evaluation='{"eval_every": 512}', suite_version="1", code='{"version": "1", "source": "aaa"}',
               base_key="k1")  # fmt: skip
    new = dict(config='{"n_epochs": 5, "lr": 0.003, "net": {"hidden": [32]}, "added": true}',
               env_steps_budget=2048, evaluation='{"eval_every": 512}', suite_version="2",
               code='{"version": "1", "source": "bbb"}', base_key="k2")  # fmt: skip
    assert settings_change(old, new) == [
        "added — → true", "n_epochs 10 → 5", "net.hidden [64, 64] → [32]", "env_steps 1024 → 2048",
        "suite version 1 → 2",
    ]  # fmt: skip
    assert run_change(old, new).endswith(", suite version 1 → 2, code 1+aaa → 1+bbb")
    # a side that records no config (a CSV baseline): only what both record is compared
    exported = dict(suite_version="1", code="1+aaa", base_key="k0")
    assert settings_change(exported, {**old, "base_key": "k1"}) == ["other settings (not recorded)"]
    same = {**old, "base_key": "k0"}
    assert settings_change(exported, same) == [] and run_change(exported, same) == ""


def test_the_baseline_of_a_version_is_paired_by_label_task_and_seed():
    """Per (label, task, seed): the latest earlier run under the version; the plan's own run where
    it is the cell's only run or is under the version itself; nothing where the cell ran other
    code only."""
    runs = pd.DataFrame(
        [  # key, algorithm, seed, status, ended_at, under the version
            ("a-now", "a", 0, "done", "3", False), ("a-v-old", "a", 0, "done", "1", True),
            ("a-v", "a", 0, "done", "2", True), ("a-w", "a", 0, "done", "2.5", False),
            ("b-now", "b", 0, "done", "3", False),
            ("c-now", "c", 0, "done", "3", True),
            ("d-now", "d", 0, "done", "3", False), ("d-w", "d", 0, "done", "1", False),
        ],
        columns=["key", "algorithm", "seed", "status", "ended_at", "under"],
    ).assign(task="CartPole-v1")  # fmt: skip
    picked = version_runs(runs, runs.under, {"a-now", "b-now", "c-now", "d-now"})
    assert sorted(picked.key) == ["a-v", "b-now", "c-now"]
