"""The cross-library PPO report is what its committed exports give: each library's part runs,
joined into one CSV under examples/cross-library/results, are whole (every task and seed, done, on
one recorded machine kind), and the published report's final scores are recomputed from them."""

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
}


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
    assert raw.machine.notna().all() and raw.machine.nunique() == 1  # one CPU kind per library
    evals = raw[(raw.kind == "eval") & (raw.metric == "eval/return")]
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
    assert len(ours) == 80
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
