"""Per algorithm x task summaries of stored runs (what ``bench status --suite`` prints)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.control.tasks import TASKS
from bench.store import Store


def time_to_threshold(evals: pd.DataFrame, threshold: float) -> pd.Series:
    """Per run: training time (s, evaluation excluded), wall time (s) and env steps at the first
    greedy (T=0) evaluation whose mean return reaches ``threshold``; runs that never reach it
    are absent. ``evals``: one task's eval records."""
    greedy = evals[(evals.metric == "eval/return") & (evals.temperature == 0)]
    hit = greedy[greedy.value >= threshold].sort_values("step").groupby("run_key").first()
    return hit[["train_time", "wall_time", "step"]]


def run_summary(store: Store, suite: str) -> pd.DataFrame:
    """Per (algorithm, task): mean/std over seeds of the final greedy return; medians over seeds
    of env-steps/s and of the time (training and wall) and env steps to the task's threshold,
    with runs that never reach it counted as infinitely late."""
    runs = store.runs(suite)
    runs = runs[runs.status == "done"]
    if runs.empty:
        return pd.DataFrame()
    evals = store.evals(suite)
    greedy = evals[(evals.metric == "eval/return") & (evals.temperature == 0)]
    final = greedy.sort_values("step").groupby("run_key").last()["value"]
    rows = []
    for (algo, task), group in runs.groupby(["algorithm", "task"], sort=True):
        keys = group.key
        sps = group.env_steps / group.train_time
        threshold = TASKS[task].reward_threshold
        hits = time_to_threshold(evals[evals.run_key.isin(keys)], threshold)
        reached = len(hits)
        # median over all seeds, with unreached runs counted as +inf
        unreached = np.full(len(keys) - reached, np.inf)
        t = np.concatenate([hits.train_time.to_numpy(), unreached])
        w = np.concatenate([hits.wall_time.to_numpy(), unreached])
        s = np.concatenate([hits.step.to_numpy(), unreached])
        scores = final.reindex(keys)
        rows.append(
            {
                "algorithm": algo,
                "task": task,
                "seeds": len(keys),
                "final_T0_mean": scores.mean(),
                "final_T0_std": scores.std(ddof=0),
                "env_steps": int(group.env_steps.median()),
                "env_steps_per_s": float(np.median(sps)),
                "reached": f"{reached}/{len(keys)}",
                "time_to_threshold_s": float(np.median(t)) if len(t) else np.nan,
                "wall_to_threshold_s": float(np.median(w)) if len(w) else np.nan,
                "steps_to_threshold": float(np.median(s)) if len(s) else np.nan,
                "train_time_s": float(group.train_time.median()),
            }
        )
    return pd.DataFrame(rows)
