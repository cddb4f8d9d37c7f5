"""Over-optimisation (``bench.overopt``) and its claim kinds by hand, on synthetic runs whose gold
and proxy follow known curves: the fits recover α and β, held-out R² separates a curve of the
form from one that is not, and each kind's verdict comes out as constructed."""

import json

import numpy as np
import pandas as pd
import pytest

from bench import overopt
from bench import results as R
from bench.claims import Claim, evaluate

SEEDS = (0, 1, 2)


class _Runs:
    """Collects runs and T = 1 evaluations of one task."""

    def __init__(self):
        self.runs, self.evals = [], []

    def add(self, label, algo, seed, steps, kls, golds, proxies=None, config=None, bound=None):
        key = f"{label}-{seed}"
        self.runs.append(
            (key, "sentiment", label, algo, seed, "done", max(steps), 1.0, 1.0, json.dumps(config or {}))
        )
        for i, (step, kl, gold) in enumerate(zip(steps, kls, golds, strict=True)):
            self.evals.append((key, step, 1.0, 1.0, "eval/kl", kl))
            self.evals.append((key, step, 1.0, 1.0, "eval/return", gold))
            if proxies is not None:
                self.evals.append((key, step, 1.0, 1.0, "eval/proxy_reward", proxies[i]))
            if bound is not None:
                self.evals.append((key, step, 1.0, 1.0, "eval/kl_bound", bound))

    def results(self) -> R.Results:
        cols = ["run_key", "task", "algorithm", "algo", "seed", "status", "env_steps", "train_time",
                "wall_time", "config"]  # fmt: skip
        runs = pd.DataFrame(self.runs, columns=cols)
        ev = pd.DataFrame(
            self.evals, columns=["run_key", "step", "wall_time", "temperature", "metric", "value"]
        )
        ev["train_time"], ev["n"] = ev.wall_time, 24
        return R.Results(runs, ev, "test", {"name": "t"})


def _bon(runs: _Runs, alpha=1.0, beta=0.3, ns=(1, 2, 4, 8, 16, 32, 64, 128), noise=0.0, label="best-of-n"):
    """Best-of-N over N per seed: KL = the bound, gold = d (α − β d) (+ a seed's offset x d), proxy 2d;
    π_SFT at gold 0.1 (subtracted)."""
    for seed in SEEDS:
        runs.add("sft", "sft", seed, [0], [0.0], [0.1])
        for n in ns:
            kl = np.log(n) - (n - 1) / n
            d = np.sqrt(kl)
            gold = 0.1 + d * (alpha - beta * d) + noise * (seed - 1) * d
            runs.add(f"{label}[n={n}]", "best-of-n", seed, [0], [kl], [gold], [2 * d], {"n": n}, bound=kl)


def test_points_and_fits_recover_the_forms_parameters():
    runs = _Runs()
    _bon(runs, noise=0.01)
    res = runs.results()
    pts = overopt.points(res)
    assert set(pts.series) == {"best-of-n"} and set(pts.form) == {"bon"}
    first = pts[(pts.seed == 0) & (pts.n == 1)].iloc[0]
    assert first.d == 0 and first.gold == pytest.approx(0.0)  # relative to π_SFT's gold
    fits = overopt.fit_table(res).set_index("kl")
    # seed s has α = 1 + 0.01 (s − 1): mean 1, spread ±0.01; β = 0.3 exactly
    est = fits.loc["estimate"]
    assert est.alpha == pytest.approx(1.0) and est.beta == pytest.approx(0.3)
    assert est.alpha_lo < 1.0 < est.alpha_hi and est.interval == "t, 3 seeds"
    assert est.r2_heldout == pytest.approx(1.0) and est.d_star == pytest.approx(1.0 / 0.6)
    assert fits.loc["bound"].alpha == pytest.approx(1.0)  # here the estimate is the bound
    # the RL form's d* = exp(α / β − 1)
    assert overopt.d_star(0.5, 0.25, "rl") == pytest.approx(np.e)
    assert np.isnan(overopt.d_star(0.5, -0.1, "bon"))


def test_law_fit_holds_for_its_form_and_not_for_a_curve_that_turns_late():
    runs = _Runs()
    _bon(runs, noise=0.01)
    # another method: gold rises as d up to d = 1, then collapses — no d (α − β d) fitted on the
    # small-d points predicts it
    for seed in SEEDS:
        ds = np.linspace(0.25, 2.0, 8)
        gold = np.where(ds <= 1.0, ds, 1.0 - 6 * (ds - 1.0)) + 0.01 * seed
        runs.add("rlhf-ppo", "rlhf-ppo", seed, list(range(10, 90, 10)), list(ds**2), list(gold), list(2 * ds))
    res = runs.results()
    bon = Claim(id="bon-law", paper="Gao et al. 2023", statement="BoN follows d(α − βd)", kind="law-fit",
                a="best-of-n", params={"form": "bon", "r2": 0.9})  # fmt: skip
    rl = Claim(id="rl-law", paper="Gao et al. 2023", statement="RL follows d(α − β log d)", kind="law-fit",
               a="rlhf-ppo", params={"form": "rl"})  # fmt: skip
    table = evaluate(res, [bon, rl]).set_index("id")
    assert table.loc["bon-law"].verdict == "holds" and table.loc["bon-law"].rule == "above 0"
    assert "held-out R² 1.000" in table.loc["bon-law"].measured
    late = table.loc["rl-law"]
    assert late.verdict == "does not hold" and late.rule == "below 0" and late.hi < 0  # R² − 0.9 < 0


def test_kl_efficiency_by_hand():
    # Best-of-N gains d per unit d (linear: interpolation is exact); RL 0.5 d + a seed offset
    # (−0.01, 0, +0.01) at d = 0.5, 1, 1.5, inside Best-of-N's range: per-seed differences
    # 0.5 + 0.01, 0.5, 0.5 − 0.01 -> mean 0.5, sd 0.01, paired t with 2 df
    runs = _Runs()
    _bon(runs, beta=0.0)
    for seed in SEEDS:
        ds = np.array([0.5, 1.0, 1.5])
        gold = 0.1 + 0.5 * ds + 0.01 * (seed - 1)
        runs.add("rlhf-ppo", "rlhf-ppo", seed, [10, 20, 30], list(ds**2), list(gold), list(ds))
    claim = Claim(id="bon-efficient", paper="Gao et al. 2023", statement="BoN is more KL-efficient than RL",
                  kind="kl-efficiency", a="best-of-n", b="rlhf-ppo")  # fmt: skip
    row = evaluate(runs.results(), [claim]).iloc[0]
    half = 4.302652729911275 * 0.01 / np.sqrt(3)
    assert row.verdict == "holds" and row.effect == pytest.approx(0.5)
    assert row.lo == pytest.approx(0.5 - half) and row.hi == pytest.approx(0.5 + half)
    assert row.interval == "paired t, 3 seeds"


def _rl_series(runs, label, peak_gold, proxy_slope, ds, seed_jitter=0.01, config=None):
    for seed in SEEDS:
        gold = peak_gold(ds) + seed_jitter * seed
        proxy = proxy_slope * ds + seed_jitter * seed * ds
        runs.add(label, "rlhf-ppo", seed, list(range(10, 10 * len(ds) + 1, 10)), list(ds**2), list(gold),
                 list(proxy), config)  # fmt: skip


def test_proxy_rises_while_gold_falls():
    ds = np.linspace(0.5, 4.0, 8)
    claim = Claim(id="div", paper="Gao et al. 2023", statement="proxy rises, gold falls",
                  kind="proxy-gold-divergence", a="rlhf-ppo")  # fmt: skip
    # gold d (1 − 0.5 ln d) peaks at d = e (between the 5th and 6th points); proxy rises as 1.5 d
    runs = _Runs()
    _rl_series(runs, "rlhf-ppo", lambda d: d * (1 - 0.5 * np.log(d)), 1.5, ds)
    row = evaluate(runs.results(), [claim]).iloc[0]
    assert row.verdict == "holds", row.measured
    assert "proxy slope +1.5" in row.measured
    # the proxy falls with the gold: does not hold
    runs = _Runs()
    _rl_series(runs, "rlhf-ppo", lambda d: d * (1 - 0.5 * np.log(d)), -1.0, ds)
    assert evaluate(runs.results(), [claim]).iloc[0].verdict == "does not hold"
    # the gold still rises at the grid's end: nothing past a peak to measure
    runs = _Runs()
    _rl_series(runs, "rlhf-ppo", lambda d: d, 1.5, ds)
    assert (
        evaluate(runs.results(), [claim])
        .iloc[0]
        .verdict.startswith("inconclusive: the gold peaks at the last")
    )


def test_more_reward_model_data_delays_the_peak():
    # gold peaks at d = 1, 2, 3 for 100, 400, 1600 pairs (seed 1: 3.5 at 1600); slope of the peak's d
    # against ln(pairs), 3 equally spaced points: (last − first) / (2 ln 4)
    ds = np.linspace(0.5, 4.0, 8)
    runs = _Runs()
    peaks = {100: (1.0, 1.0, 1.0), 400: (2.0, 2.0, 2.0), 1600: (3.0, 3.5, 3.0)}
    for pairs, by_seed in peaks.items():
        for seed in SEEDS:
            gold = -((ds - by_seed[seed]) ** 2)
            runs.add(f"rlhf-ppo[rm_pairs={pairs}]", "rlhf-ppo", seed, list(range(10, 90, 10)), list(ds**2),
                     list(gold), list(ds), {"rm_pairs": pairs})  # fmt: skip
    claim = Claim(id="delay", paper="Gao et al. 2023", statement="more RM data delays over-optimisation",
                  kind="rm-data-delays", a="rlhf-ppo")  # fmt: skip
    row = evaluate(runs.results(), [claim]).iloc[0]
    slopes = np.array([2.0, 2.5, 2.0]) / (2 * np.log(4))
    assert row.verdict == "holds" and row.effect == pytest.approx(slopes.mean())
    assert row.se == pytest.approx(slopes.std(ddof=1) / np.sqrt(3))
    assert "100: 1.00, 400: 2.00, 1600: 3.17" in row.measured and "censored" not in row.measured


def test_a_field_added_when_set_keeps_run_keys():
    from bench.algos.lm import BestOfNConfig
    from bench.algos.rlhf_ppo import RLHFPPOConfig
    from bench.suite.grid import key_config

    assert "rm_pairs" not in key_config(BestOfNConfig(n=4)) and "rm_pairs" not in key_config(RLHFPPOConfig())
    assert key_config(RLHFPPOConfig(rm_pairs=50))["rm_pairs"] == 50
    assert key_config(BestOfNConfig(n=4)) == {"n": 4, "ranker": "rm", "kl_samples": 64}


def test_the_reward_model_table_groups_lm_models_by_their_data_size():
    """LM reward models trained on all pairs form one row (their counts differ by seed); those
    trained on a given number (``rm_pairs``) a row per number."""
    runs = _Runs()
    for seed in SEEDS:
        for pairs, acc in ((None, 0.80), (300, 0.60)):
            label = "rlhf-ppo" if pairs is None else "rlhf-ppo[rm_pairs=300]"
            runs.add(
                label,
                "rlhf-ppo",
                seed,
                [10],
                [1.0],
                [0.5],
                config={} if pairs is None else {"rm_pairs": pairs},
            )
            key = f"{label}-{seed}"
            runs.evals += [(key, 0, 1.0, 1.0, "rm/accuracy", acc + 0.01 * seed),
                           (key, 0, 1.0, 1.0, "rm/gold_accuracy", 1.0),
                           (key, 0, 1.0, 1.0, "rm/train_pairs", pairs or 5400 + seed)]  # fmt: skip
    table = R.reward_model_table(runs.results()).set_index("n_pairs")
    assert list(table.index) == [300, 5401] and list(table.models) == [3, 3]
    assert table.loc[300].accuracy == pytest.approx(0.61) and table.loc[5401].accuracy == pytest.approx(0.81)
