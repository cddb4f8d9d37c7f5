import pandas as pd

from bench.results import time_to_threshold


def test_time_to_threshold_takes_first_greedy_eval_at_or_above():
    rows = [
        # run_key, step, wall_time, train_time, temperature, metric, value, n
        ("a", 100, 1.0, 0.5, 0.0, "eval/return", 400.0, 20),
        ("a", 200, 2.0, 1.0, 0.0, "eval/return", 480.0, 20),
        ("a", 300, 3.0, 1.5, 0.0, "eval/return", 500.0, 20),
        ("a", 100, 1.0, 0.5, 1.0, "eval/return", 499.0, 20),  # T=1 does not count
        ("b", 100, 1.0, 0.4, 0.0, "eval/return", 475.0, 20),  # exactly the threshold
        ("c", 100, 1.0, 0.4, 0.0, "eval/return", 474.9, 20),  # never reaches
        ("a", 100, 1.0, 0.5, 0.0, "eval/return_std", 600.0, 20),
    ]
    evals = pd.DataFrame(
        rows, columns=["run_key", "step", "wall_time", "train_time", "temperature", "metric", "value", "n"]
    )
    hits = time_to_threshold(evals, 475.0)
    assert sorted(hits.index) == ["a", "b"]
    assert hits.loc["a"].tolist() == [1.0, 2.0, 200]
    assert hits.loc["b"].tolist() == [0.4, 1.0, 100]
