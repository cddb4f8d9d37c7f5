"""Tiny-budget smoke run of every algorithm x task, and identical curves for identical seeds."""

import json

import pytest

from bench.algos import ALGORITHMS
from bench.control.tasks import TASKS
from bench.executors import run_one
from bench.suite import RunSpec

EVAL = json.dumps({"eval_every": 600, "eval_episodes": 2, "temperatures": [0.0, 1.0]}, sort_keys=True)
TINY_PARAMS = {
    "pg": {"n_envs": 2, "n_steps": 128},
    "ppo": {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2},
    "dppo": {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2, "workers": 2},
    "sb3-ppo": {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_epochs": 2},
    "sb3-a2c": {"n_envs": 2},
    "sb3-trpo": {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_critic_updates": 2},
    "trpo": {"n_envs": 2, "n_steps": 128, "batch_size": 64, "n_critic_updates": 2},
}


def make_spec(algo: str, task: str, seed: int = 0, steps: int = 1000, **extra) -> RunSpec:
    a = ALGORITHMS[algo]
    params = {**a.task_defaults.get(task, {}), **TINY_PARAMS[algo], **extra}
    config = a.config(**params).model_dump(mode="json")
    return RunSpec(
        f"{algo}-{task}-{seed}",
        "test",
        "1",
        algo,
        algo,
        task,
        seed,
        steps,
        json.dumps(config, sort_keys=True),
        EVAL,
    )


def _slow_if_dppo_on_lunar(algo: str, task: str):
    """DPPO starts two processes per run (about 6 s each), TRPO's steps are the dearest: their
    LunarLander cases, whose policies are those of CartPole and Pendulum, run in the slow tier."""
    marks = (
        [pytest.mark.slow] if algo in ("dppo", "trpo", "sb3-trpo") and task.startswith("LunarLander") else []
    )
    return pytest.param(algo, task, marks=marks, id=f"{algo}-{task}")


# alignment methods need a suite's reference recipe: tests/integration/test_alignment_suite.py
@pytest.mark.parametrize(
    "algo, task",
    [
        _slow_if_dppo_on_lunar(algo, task)
        for algo, spec in ALGORITHMS.items()
        if not spec.aligned and spec.domain == "control"
        for task in TASKS
    ],
)
def test_every_algorithm_runs_on_every_task(algo, task):
    result = run_one(make_spec(algo, task))
    assert result["status"] == "done", result["error"]
    assert result["env_steps"] >= 1000
    evals = {(r[0], r[3], r[4]) for r in result["evals"]}
    final = result["env_steps"]
    for temp in (0.0, 1.0):
        assert (final, temp, "eval/return") in evals
        assert (final, temp, "eval/return_std") in evals
    steps = sorted({r[0] for r in result["evals"]})
    assert steps[0] >= 600 and steps[-1] == final
    assert any(r[2] == "perf/env_steps_per_s" for r in result["curves"])


def _timeless(result):
    return (
        [(s, m, v) for s, _, m, v in result["curves"] if not m.startswith("perf/")],
        [(s, t, m, v, n) for s, _, _, t, m, v, n in result["evals"]],
    )


@pytest.mark.parametrize(
    "algo,task,extra",
    [
        ("ppo", "CartPole-v1", {}),
        ("ppo", "Pendulum-v1", {"objective": "kl_penalty"}),
        ("pg", "LunarLander-v3", {}),
        ("sb3-ppo", "CartPole-v1", {}),
    ],
)
def test_identical_seeds_give_identical_curves(algo, task, extra):
    a = run_one(make_spec(algo, task, seed=3, **extra))
    b = run_one(make_spec(algo, task, seed=3, **extra))
    c = run_one(make_spec(algo, task, seed=4, **extra))
    assert a["status"] == b["status"] == "done"
    assert _timeless(a) == _timeless(b)
    assert _timeless(a) != _timeless(c)


def test_sb3_runs_leave_no_log_folders(tmp_path, monkeypatch):
    # SB3's default logger makes tempdir/SB3-<time> per model; runs use a logger with no outputs
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run_one(make_spec("sb3-a2c", "CartPole-v1", steps=200))["status"] == "done"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("SB3-")] == []
