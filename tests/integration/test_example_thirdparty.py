"""The third-party example plugins (examples/bench-skrl-plugin, examples/bench-torchrl-plugin,
examples/bench-tianshou-plugin): skrl's, TorchRL's and tianshou's PPO, which bench did not write,
each installed from its folder and run through its own suite at a tiny budget, on a discrete task
(CartPole) and a continuous one (Pendulum).

A plugin is installed with ``pip install --target`` into a folder that only the ``bench``
subprocesses see (``PYTHONPATH``), so the test environment's registry stays bench's own; its
library must already be installed (the test is skipped otherwise; nothing is downloaded).
"""

import importlib.metadata
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# (example folder, algorithm, distribution, the library it wraps, its tiny-budget params)
PLUGINS = [
    ("bench-skrl-plugin", "skrl-ppo", "bench-skrl", "skrl", {"n_envs": 2, "rollouts": 64, "mini_batches": 2,
                                                              "n_epochs": 1}),
    ("bench-torchrl-plugin", "torchrl-ppo", "bench-torchrl", "torchrl", {"n_envs": 2, "n_steps": 64,
                                                                        "batch_size": 64, "n_epochs": 1}),
    ("bench-tianshou-plugin", "tianshou-ppo", "bench-tianshou", "tianshou", {"n_envs": 2, "n_steps": 64,
                                                                            "batch_size": 64, "n_epochs": 1}),
]  # fmt: skip


def bench(cwd: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "BENCH_CACHE": str(cwd / "cache"), "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def tiny(suite: dict, algo: str, params: dict) -> dict:
    """The example's suite (same name, tasks and algorithms) at a budget of seconds."""
    small = {algo: params, "ppo": {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1}}
    return {**suite, "seeds": 1, "env_steps": 512,
            "evaluation": {**suite["evaluation"], "eval_every": 256, "eval_episodes": 2},
            "algorithms": [{**a, "params": small[a["algo"]]} for a in suite["algorithms"]]}  # fmt: skip


@pytest.mark.slow  # 45 s on two shared cores: a pip install and two bench processes
@pytest.mark.parametrize("folder, algo, dist, library, params", PLUGINS, ids=[p[3] for p in PLUGINS])
def test_a_third_party_example_runs_its_suite_through_the_protocol(
    tmp_path, folder, algo, dist, library, params
):
    pytest.importorskip(library)
    example = EXAMPLES / folder
    source, site = tmp_path / "plugin", tmp_path / "site"
    shutil.copytree(example, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    listed = bench(tmp_path, site, "list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.strip().startswith(algo))
    assert line.endswith(f"[{dist} 0.1.0 (entry point)]"), line

    suite = yaml.safe_load((example / "suite.yaml").read_text())
    assert suite["tasks"] == ["CartPole-v1", "Pendulum-v1"]
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(tiny(suite, algo, params)))
    out = bench(tmp_path, site, "run", "suite.yaml", "--store", "b.sqlite", "-q")
    assert out.returncode == 0, out.stderr
    assert "4 done, 0 failed" in out.stderr

    with sqlite3.connect(tmp_path / "b.sqlite") as db:
        query = f"SELECT key, task, status, code, packages FROM runs WHERE algo = '{algo}'"
        runs = db.execute(query).fetchall()
        assert sorted(task for _, task, *_ in runs) == ["CartPole-v1", "Pendulum-v1"]
        for key, task, status, code, packages in runs:
            assert status == "done", task
            assert json.loads(code)["distribution"] == dist
            assert json.loads(packages)[library] == importlib.metadata.version(library)
            evals = db.execute("SELECT step, temperature, value FROM evals WHERE run_key = ? AND metric = "
                               "'eval/return'", (key,)).fetchall()  # fmt: skip
            curves = db.execute("SELECT metric, value FROM curves WHERE run_key = ?", (key,)).fetchall()
            # both temperatures at every evaluation, the last one at the end of the budget
            assert {(s, t) for s, t, _ in evals} == {(s, t) for s in (256, 512) for t in (0.0, 1.0)}, task
            assert {m for m, _ in curves} == {"train/policy_loss", "train/value_loss"}, task
            assert all(math.isfinite(v) for *_, v in evals + curves), task
            # a return the task can give: CartPole 1 per step (at most 500), Pendulum at most 0
            low, high = (1, 500) if task == "CartPole-v1" else (-200 * 16.3, 0)
            assert all(low <= v <= high for *_, v in evals), (task, evals)
