"""The cross-library PPO report is what its committed exports give: each library's part runs,
joined into one CSV under examples/cross-library/results, are whole (every task and seed, done, on
one recorded machine kind; CleanRL's, brought in by `bench import`, with their protocol labelled),
and the published report's final scores are recomputed from them."""

from pathlib import Path

import pandas as pd
import pytest

from bench import results as R

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "examples" / "cross-library" / "results"
REPORT = ROOT / "reports" / "cross-library-ppo"
TASKS = {"CartPole-v1", "LunarLander-v3", "LunarLanderContinuous-v3", "Pendulum-v1"}
# submission name in the report -> (export file, algorithm)
SUBMISSIONS = {
    "bench-ppo": ("bench-ppo.csv", "ppo"),
    "sb3": ("sb3-ppo.csv", "sb3-ppo"),
    "skrl": ("skrl.csv", "skrl-ppo"),
    "tianshou": ("tianshou.csv", "tianshou-ppo"),
    "torchrl": ("torchrl.csv", "torchrl-ppo"),
    "cleanrl": ("cleanrl.csv", "cleanrl-ppo"),
}
IMPORTED = {"cleanrl"}  # CleanRL's own logs: training-episode returns of the sampling policy


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_each_library_export_is_whole(name):
    file, algo = SUBMISSIONS[name]
    results = R.Results.from_csv(RESULTS / file, "cross-library-ppo")
    runs = results.runs
    assert set(runs.algorithm) == {algo}
    assert set(runs.status) == {"done"}
    assert runs.run_key.is_unique
    assert set(zip(runs.task, runs.seed, strict=True)) == {(t, s) for t in TASKS for s in range(5)}
    raw = pd.read_csv(RESULTS / file)
    evals = raw[(raw.kind == "eval") & (raw.metric == "eval/return")]
    if name in IMPORTED:  # no bench evaluation: the protocol says what the scores are
        assert set(evals.temperature) == {1.0}
        assert set(raw.protocol) == {
            "training-episode return, mean of the last 100 episodes (stochastic policy, while training)"
        }
        return
    assert raw.machine.notna().all() and raw.machine.nunique() == 1  # one CPU kind per library
    assert set(evals.temperature) == {0.0, 1.0}


def test_the_published_report_is_what_the_exports_give():
    parts = [
        (name, R.Results.from_csv(RESULTS / file, "cross-library-ppo"))
        for name, (file, _) in SUBMISSIONS.items()
    ]
    finals = R.final_scores(R.Results.combine(parts))
    published = pd.read_csv(REPORT / "final_scores.csv")
    key = ["submission", "task", "algorithm", "seed"]
    ours = finals.sort_values(key).reset_index(drop=True)[key + ["step", "score"]]
    theirs = published.sort_values(key).reset_index(drop=True)[key + ["step", "score"]]
    assert len(ours) == 5 * len(TASKS) * len(SUBMISSIONS)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def test_the_time_limit_check_reran_the_recipes_pendulum_runs_exactly():
    """pendulum-time-limit.yaml's `ppo` runs are the cross-library suite's bench `ppo` Pendulum
    runs again (another suite, store and code version of ppo.py, the same machine kind): every
    evaluation record equal, so its bootstrapping-off runs differ from the recipe in that one
    detail only."""

    def evals(file, label):
        raw = pd.read_csv(RESULTS / file)
        ev = raw[(raw.kind == "eval") & (raw.task == "Pendulum-v1") & (raw.algorithm == label)]
        cols = ["seed", "step", "temperature", "metric", "value", "machine"]
        return ev.sort_values(cols[:4]).reset_index(drop=True)[cols]

    again, recipe = evals("time-limit.csv", "ppo"), evals("bench-ppo.csv", "ppo")
    assert len(again) == 200 and set(again.seed) == set(range(5))
    pd.testing.assert_frame_equal(again, recipe)
    off = evals("time-limit.csv", "ppo-time-limit-bootstrap")
    assert len(off) == 200 and not off.value.equals(again.value)
