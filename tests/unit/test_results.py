"""bench.results tables on small hand-made record sets."""

import numpy as np
import pandas as pd
import pytest

from bench import results as R
from bench import stats
from bench.claims import claims_table


def _results(evals: list[tuple], runs: list[tuple]) -> R.Results:
    runs = pd.DataFrame(
        runs,
        columns=[
            "run_key",
            "task",
            "algorithm",
            "algo",
            "seed",
            "status",
            "env_steps",
            "train_time",
            "wall_time",
        ],
    )
    ev = pd.DataFrame(evals, columns=["run_key", "step", "wall_time", "temperature", "metric", "value"])
    ev["train_time"], ev["n"] = ev.wall_time, 10
    return R.Results(runs, ev, "test", {"name": "t"})


RUNS = [
    ("a", "CartPole-v1", "ppo", "ppo", 0, "done", 300, 3.0, 4.0),
    ("b", "CartPole-v1", "ppo", "ppo", 1, "done", 300, 6.0, 7.0),
    ("c", "CartPole-v1", "pg", "pg", 0, "failed", 100, 1.0, 1.0),
]
EVALS = [
    ("a", 100, 1.0, 0.0, "eval/return", 100.0),
    ("a", 200, 2.0, 0.0, "eval/return", 480.0),
    ("a", 300, 3.0, 0.0, "eval/return", 470.0),
    ("a", 300, 3.0, 1.0, "eval/return", 400.0),
    ("b", 100, 1.0, 0.0, "eval/return", 50.0),
    ("b", 300, 3.0, 0.0, "eval/return", 200.0),
    ("c", 100, 1.0, 0.0, "eval/return", 10.0),
]


def test_final_scores_are_last_greedy_evaluations_of_done_runs():
    finals = R.final_scores(_results(EVALS, RUNS))
    assert finals.set_index("run_key").score.to_dict() == {"a": 470.0, "b": 200.0}


def test_leaderboard_by_hand():
    board = R.leaderboard(_results(EVALS, RUNS), reps=200).set_index("algorithm")
    ppo = board.loc["ppo"]
    assert ppo["mean"] == 335.0 and ppo["median"] == 335.0
    assert ppo["sd"] == pytest.approx(135.0 * np.sqrt(2))  # the sample sd (ddof = 1) of 2 seeds
    # a reaches 475 at step 200 (wall 2 s); b never does: median of [200, inf] = inf
    assert ppo.reached == 1 and ppo.steps_to_threshold == np.inf
    assert ppo.env_steps_per_s == pytest.approx(np.median([100.0, 50.0]))
    assert board.loc["pg"].seeds == 0 and board.loc["pg"].failed == 1


def test_normalised_matrices_use_task_bounds():
    m, tasks = R.normalised_matrices(_results(EVALS, RUNS))
    assert tasks == ["CartPole-v1"] and list(m) == ["ppo"]
    np.testing.assert_allclose(m["ppo"][:, 0], (np.array([470.0, 200.0]) - 22.7) / (500 - 22.7))


def test_curve_grid_holds_the_last_value_and_stops_at_the_last_evaluation():
    ev = pd.DataFrame(
        dict(run_key=["b", "b", "a", "a", "a"], step=[10, 20, 5, 15, 30], value=[1, 2, 3, 4, 5.0])
    )
    grid, values = R.curve_grid(ev, "step", points=6)
    np.testing.assert_allclose(grid, [5, 10, 15, 20, 25, 30])
    np.testing.assert_allclose(values[0], [3, 3, 4, 4, 4, 5])
    np.testing.assert_allclose(values[1], [np.nan, 1, 1, 2, np.nan, np.nan])


def test_frontier_points_pair_kl_with_the_score_at_t1():
    evals = [
        ("a", 100, 1.0, 1.0, "eval/return", 10.0),
        ("a", 100, 1.0, 1.0, "eval/kl", 0.5),
        ("a", 200, 2.0, 1.0, "eval/return", 20.0),
        ("a", 200, 2.0, 1.0, "eval/kl", 1.5),
        ("a", 200, 2.0, 0.0, "eval/return", 25.0),
    ]
    pts = R.frontier_points(_results(evals, RUNS[:1]))
    assert pts[["step", "kl", "score"]].values.tolist() == [[100, 0.5, 10.0], [200, 1.5, 20.0]]


def test_frontier_points_mark_kl_bounds():
    """Best-of-N records an estimate (eval/kl) beside its bound (eval/kl_bound); a run with only
    a bound, or a Best-of-N run from an older store (its eval/kl was the bound), is a bound."""
    runs = [
        ("new", "sentiment", "best-of-n[n=4]", "best-of-n", 0, "done", 0, 1.0, 1.0),
        ("old", "sentiment", "best-of-n[n=4]", "best-of-n", 1, "done", 0, 1.0, 1.0),
        ("only", "sentiment", "x", "x", 0, "done", 0, 1.0, 1.0),
        ("dpo", "sentiment", "dpo", "lm-dpo", 0, "done", 0, 1.0, 1.0),
    ]
    evals = [
        ("new", 0, 1.0, 1.0, "eval/return", 0.5),
        ("new", 0, 1.0, 1.0, "eval/kl", 0.4),
        ("new", 0, 1.0, 1.0, "eval/kl_bound", 0.636),
        ("old", 0, 1.0, 1.0, "eval/return", 0.5),
        ("old", 0, 1.0, 1.0, "eval/kl", 0.636),
        ("only", 0, 1.0, 1.0, "eval/return", 0.1),
        ("only", 0, 1.0, 1.0, "eval/kl_bound", 2.0),
        ("dpo", 50, 1.0, 1.0, "eval/return", 0.3),
        ("dpo", 50, 1.0, 1.0, "eval/kl", 3.0),
    ]
    pts = R.frontier_points(_results(evals, runs)).set_index("run_key")
    assert pts.loc["new", "kl"] == 0.4 and not pts.loc["new", "kl_is_bound"]
    assert pts.loc["old", "kl"] == 0.636 and pts.loc["old", "kl_is_bound"]
    assert pts.loc["only", "kl"] == 2.0 and pts.loc["only", "kl_is_bound"]
    assert pts.loc["dpo", "kl"] == 3.0 and not pts.loc["dpo", "kl_is_bound"]


def test_temperature_table_needs_a_sweep():
    res = _results(EVALS, RUNS)
    assert R.temperature_table(res).empty  # only T = 0 and 1
    sweep = EVALS + [("a", 300, 3.0, 0.5, "eval/return", 450.0), ("b", 300, 3.0, 0.5, "eval/return", 150.0)]
    sweep += [("b", 300, 3.0, 1.0, "eval/return", 100.0)]
    table = R.temperature_table(_results(sweep, RUNS), reps=100).set_index("temperature")
    assert table.loc[0.5, "mean"] == 300.0 and table.loc[1.0, "mean"] == 250.0 and table.loc[0.0, "runs"] == 2


def test_scaling_table_speedup_and_efficiency_by_hand():
    import json

    def run(key, label, workers, seed, steps, train, status="done"):
        cfg = json.dumps({"workers": workers} if workers else {})
        return (key, "LunarLander-v3", label, "dppo", seed, status, steps, train, train + 2.0, cfg)

    rows = [
        run("a", "dppo[workers=1]", 1, 0, 1000, 1.0),  # 1000 steps/s
        run("b", "dppo[workers=1]", 1, 1, 1000, 0.5),  # 2000 steps/s -> mean 1500
        run("c", "dppo[workers=2]", 2, 0, 2000, 1.0),  # 2000
        run("d", "dppo[workers=2]", 2, 1, 2000, 0.5),  # 4000 -> mean 3000: 2x, efficiency 1
        run("e", "dppo[lr=0.1,workers=4]", 4, 0, 4000, 1.0),  # no W = 1 of its own: no speed-up
        run("f", "dppo[workers=2]", 2, 2, 10, 1.0, "failed"),  # left out
        run("g", "ppo", None, 0, 1000, 1.0),  # no worker count: not a scaling run
    ]
    # greedy evaluations (threshold 200 on LunarLander): a reaches it at 500 steps, 5 s wall; b at
    # 1000 steps, 9 s; c at 500 steps, 3 s; d never
    evals = [
        ("a", 500, 5.0, 0.0, "eval/return", 210.0),
        ("a", 1000, 9.0, 0.0, "eval/return", 190.0),
        ("b", 500, 4.0, 0.0, "eval/return", 150.0),
        ("b", 1000, 9.0, 0.0, "eval/return", 250.0),
        ("c", 500, 3.0, 0.0, "eval/return", 201.0),
        ("d", 500, 3.0, 0.0, "eval/return", 100.0),
        ("d", 500, 3.0, 1.0, "eval/return", 300.0),
    ]  # fmt: skip (T = 1 does not count: greedy protocol)
    res = _results(evals, [r[:9] for r in rows])
    res.runs["config"] = [r[9] for r in rows]
    table = R.scaling_table(res).set_index(["method", "workers"])
    assert table.loc[("dppo", 1), ["reached", "wall_to_threshold_s", "steps_to_threshold"]].tolist() == [
        2,
        7.0,
        750,
    ]
    # W = 2: c at 3 s, d never -> median of (3, inf) = inf
    assert table.loc[("dppo", 2), "reached"] == 1 and np.isinf(table.loc[("dppo", 2), "wall_to_threshold_s"])
    assert list(table.index) == [("dppo", 1), ("dppo", 2), ("dppo[lr=0.1]", 4)]
    assert table.loc[("dppo", 1), "env_steps_per_s"] == pytest.approx(1500)
    assert table.loc[("dppo", 2), ["runs", "sps_min", "sps_max"]].tolist() == [2, 2000, 4000]
    assert table.loc[("dppo", 2), "speedup"] == pytest.approx(2.0)
    assert table.loc[("dppo", 2), "efficiency"] == pytest.approx(1.0)
    assert table.loc[("dppo", 2), "wall_time"] == pytest.approx(2.75)
    assert np.isnan(table.loc[("dppo[lr=0.1]", 4), "speedup"])


def _lm_claim_records():
    """sentiment-like runs, 3 seeds each: final (KL, score) at T = 1 and a temperature sweep.
    dpo[beta=1] (KL 2) and dpo[beta=0.1] (KL 8); rlhf-ppo[a] (KL 3) and rlhf-ppo[b] (KL 10);
    ppo-gt (KL 1, below every DPO point); best-of-n (KL 1.8); sft (KL 0)."""
    points = {  # label: (kl, scores per seed, score drop per unit temperature)
        "dpo[beta=1]": (2.0, [0.50, 0.52, 0.54], 0.0),
        "dpo[beta=0.1]": (8.0, [0.80, 0.81, 0.82], 0.0),
        "rlhf-ppo[a]": (3.0, [0.30, 0.31, 0.32], 0.4),
        "rlhf-ppo[b]": (10.0, [0.70, 0.71, 0.72], 0.4),
        "ppo-gt": (1.0, [0.60, 0.61, 0.62], 0.4),
        "best-of-n": (1.8, [0.78, 0.80, 0.82], 0.0),
        "sft": (0.0, [0.00, 0.01, 0.02], 0.0),
    }
    runs, evals = [], []
    for label, (kl, scores, slope) in points.items():
        algo = {"dpo": "lm-dpo", "best-of-n": "best-of-n"}.get(R.method_of(label), R.method_of(label))
        for seed, score in enumerate(scores):
            key = f"{label}-{seed}"
            runs.append((key, "sentiment", label, algo, seed, "done", 400, 1.0, 1.0))
            evals.append((key, 400, 1.0, 1.0, "eval/kl", kl))
            for t in (0.0, 0.5, 1.0):
                evals.append((key, 400, 1.0, t, "eval/gold_reward", score + slope * (1.0 - t)))
    return _results(evals, runs)


def test_kl_span_and_the_paper_claims_by_hand():
    res = _lm_claim_records()
    res.score_metric = lambda task: "eval/gold_reward"
    span = R.kl_span_table(res).set_index("method")
    assert span.loc["dpo"][["points", "kl_min", "kl_max", "ratio"]].tolist() == [2, 2.0, 8.0, 4.0]
    assert np.isnan(span.loc["sft"].ratio)

    claims = claims_table(res, reps=500).set_index("claim")
    # rlhf-ppo[a] (KL 3, 0.31) faces dpo[beta=1] (KL 2, 0.52): +0.21; rlhf-ppo[b] (KL 10, 0.71)
    # faces dpo[beta=0.1] (KL 8, 0.81): +0.10 — both significant
    frontier = claims.loc["DPO's frontier dominates PPO's"]
    assert frontier.verdict == "holds"
    assert "+0.210" in frontier.measured and "+0.100" in frontier.measured
    # PPO-GT's only point has KL 1, below every DPO point: the DPO grid cannot decide it
    gt = claims.loc["DPO dominates PPO-GT"]
    assert gt.verdict == "inconclusive: the grid does not cover every point"
    assert "not decided, the DPO grid starts at KL 2.00" in gt.measured
    assert "(paired t, 3 seeds)" in frontier.measured
    # the best points: dpo[beta=0.1] is flat over T, rlhf-ppo[b] drops by 0.4 from T = 0 to 1
    flat = claims.loc["DPO's score is flatter over temperature than PPO's"]
    assert flat.verdict == "holds" and "difference -0.400" in flat.measured
    # best-of-n (0.80) against dpo[beta=0.1] (0.81): not significantly lower; far above π_SFT
    bon = claims.loc["Best-of-N is a strong baseline"]
    assert bon.verdict == "holds" and "score -0.010" in bon.measured and "minus π_SFT: +0.790" in bon.measured

    # one seed: no intervals, so no verdict — except where no comparable point decides it
    one = _lm_claim_records()
    one.runs = one.runs[one.runs.seed == 0]
    one.evals = one.evals[one.evals.run_key.isin(set(one.runs.run_key))]
    one.score_metric = lambda task: "eval/gold_reward"
    verdicts = claims_table(one, reps=200).set_index("claim").verdict
    assert verdicts["DPO's frontier dominates PPO's"] == "inconclusive"
    assert verdicts["DPO dominates PPO-GT"] == "inconclusive: the grid does not cover every point"
    assert verdicts["Best-of-N is a strong baseline"] == "inconclusive"
    assert verdicts["DPO's score is flatter over temperature than PPO's"] == "inconclusive"


def _claim_runs(points: dict, temps=(1.0,)):
    """label -> (kl, per-seed scores); one final evaluation per run at each temperature."""
    runs, evals = [], []
    for label, (kl, scores) in points.items():
        algo = {"dpo": "lm-dpo"}.get(R.method_of(label), R.method_of(label))
        for seed, score in enumerate(scores):
            key = f"{label}-{seed}"
            runs.append((key, "sentiment", label, algo, seed, "done", 400, 1.0, 1.0))
            evals.append((key, 400, 1.0, 1.0, "eval/kl", kl))
            for t in temps:
                evals.append((key, 400, 1.0, t, "eval/gold_reward", score))
    res = _results(evals, runs)
    res.score_metric = lambda task: "eval/gold_reward"
    return res


def test_a_grid_gap_leaves_the_frontier_claim_undecided():
    # DPO has points at KL 0.5 and 8; PPO's point at KL 3 is 6x the nearest DPO point on its left:
    # DPO being lower there says nothing about DPO at KL 3 -> not "does not hold"
    res = _claim_runs({
        "dpo[beta=5]": (0.5, [0.10, 0.11, 0.12]),
        "dpo[beta=0.1]": (8.0, [0.80, 0.81, 0.82]),
        "rlhf-ppo[a]": (3.0, [0.50, 0.52, 0.54]),
    })  # fmt: skip
    claim = claims_table(res).set_index("claim").loc["DPO's frontier dominates PPO's"]
    assert claim.verdict == "inconclusive: the grid does not cover every point"
    assert "grid gap: the nearest DPO point below is dpo[beta=5] at KL 0.50, the next above at KL 8.00" in (
        claim.measured
    )
    assert np.isnan(claim.p_replicate) and claim.rule == ""  # nothing decided: nothing to replicate
    # a DPO point inside the window [1.5, 3] that scores lower decides it
    res = _claim_runs({
        "dpo[beta=1]": (2.0, [0.30, 0.31, 0.32]),
        "dpo[beta=0.1]": (8.0, [0.80, 0.81, 0.82]),
        "rlhf-ppo[a]": (3.0, [0.50, 0.52, 0.54]),
    })  # fmt: skip
    claim = claims_table(res).set_index("claim").loc["DPO's frontier dominates PPO's"]
    assert claim.verdict == "does not hold" and "-0.210 [" in claim.measured
    # the verdict rests on that point: paired differences -0.20, -0.21, -0.22 (sd 0.01, 3 seeds)
    assert claim.rule == "below 0" and claim.seeds == 3 and claim.interval == "paired t, 3 seeds"
    assert claim.effect == pytest.approx(-0.21) and claim.se == pytest.approx(0.01 / np.sqrt(3))
    assert claim.p_replicate == pytest.approx(
        stats.replication_probability(-0.21, 0.01 / np.sqrt(3), 2, 3, "below 0")
    )
    assert claim.p_replicate > 0.99 and claim.seeds_for_80 == 2


def test_best_of_n_is_not_refuted_where_its_grid_stops():
    # Best-of-N improves with N up to the largest N run (16 < the paper's 128) and is still below
    # DPO: the grid cannot say it would stay below
    points = {
        "best-of-n[n=4]": (1.0, [0.30, 0.31, 0.32]),
        "best-of-n[n=16]": (2.0, [0.50, 0.51, 0.52]),
        "dpo[beta=0.1]": (8.0, [0.80, 0.81, 0.82]),
        "sft": (0.0, [0.00, 0.01, 0.02]),
    }
    claim = claims_table(_claim_runs(points)).set_index("claim").loc["Best-of-N is a strong baseline"]
    assert claim.verdict.startswith("inconclusive: the grid stops at N = 16")
    # where a smaller N is Best-of-N's best, the larger N were tried: it does not hold
    points["best-of-n[n=16]"] = (2.0, [0.20, 0.21, 0.22])
    claim = claims_table(_claim_runs(points)).set_index("claim").loc["Best-of-N is a strong baseline"]
    assert claim.verdict == "does not hold"


def test_true_reward_labels_are_the_gt_methods_and_gold_configs():
    runs = [
        ("a", "sentiment", "ppo-gt", "rlhf-ppo", 0, "done", 1, 1.0, 1.0),
        ("b", "sentiment", "rlhf-ppo", "rlhf-ppo", 0, "done", 1, 1.0, 1.0),
        ("c", "sentiment", "best-of-n-oracle[n=4]", "best-of-n", 0, "done", 1, 1.0, 1.0),
        ("d", "CartPole-v1", "ppo-gt[kl_coef=1]", "ppo-gt", 0, "done", 1, 1.0, 1.0),
        ("e", "CartPole-v1", "dpo", "dpo", 0, "done", 1, 1.0, 1.0),
    ]
    res = _results([(r[0], 1, 1.0, 1.0, "eval/return", 0.0) for r in runs], runs)
    res.runs["config"] = [
        '{"reward": "gold"}',
        '{"reward": "rm"}',
        '{"ranker": "gold", "n": 4}',
        "{}",
        "not json",
    ]
    assert R.true_reward_labels(res) == {"ppo-gt", "best-of-n-oracle[n=4]", "ppo-gt[kl_coef=1]"}


def test_plan_lists_each_claim_with_its_replication_chance():
    from bench.cli import claim_plan

    res = _claim_runs({
        "dpo[beta=1]": (2.0, [0.30, 0.31, 0.32]),
        "dpo[beta=0.1]": (8.0, [0.80, 0.81, 0.82]),
        "rlhf-ppo[a]": (3.0, [0.50, 0.52, 0.54]),
    })  # fmt: skip
    rows = {r[1]: r for r in claim_plan(res)}
    assert rows["DPO's frontier dominates PPO's"][2:] == ["does not hold", "3", "100%", "2"]


def test_reference_checks_state_pi_sft_against_its_band():
    runs, evals = [], []
    for seed, win in enumerate([0.10, 0.12, 0.08]):  # below the summarisation band [0.15, 0.45]
        runs.append((f"s{seed}", "summarization", "sft", "sft", seed, "done", 0, 1.0, 1.0))
        evals += [
            (f"s{seed}", 0, 1.0, 1.0, "eval/win_rate", win),
            (f"s{seed}", 0, 1.0, 0.0, "eval/win_rate", 0.5),
        ]
    (check,) = R.reference_checks(_results(evals, runs))
    assert check["task"] == "summarization" and check["value"] == pytest.approx(0.10) and not check["inside"]
    assert (
        "win rate against the references at T = 1 is 0.100 [" in check["text"]
        and "OUTSIDE its band" in check["text"]
    )
