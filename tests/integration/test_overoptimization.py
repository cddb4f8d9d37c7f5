"""The over-optimisation records end to end on the LM smoke setup: the proxy (the reward model's
score) beside the gold at every evaluation of the methods that optimise it, none where the gold
is optimised, and the analysis reading them."""

from pathlib import Path

import pandas as pd
import pytest

from bench import overopt
from bench.results import Results
from bench.store import Store
from tests.conftest import run_in_cache
from tests.integration.test_cli import _rows

SUITES = Path(__file__).resolve().parents[2] / "suites"
# LM suite runs (the smoke setup with eight methods): the slow tier; the fits, claim kinds and
# online DPO's equality with TRL's are in the default tier's unit tests
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def proxy_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overopt")
    suite = tmp / "suite.yaml"
    suite.write_text(
        f"include: {SUITES / 'lm-smoke.yaml'}\n"
        "name: overopt-test\nversion: 1\n"
        "algorithms:\n"
        "  - algo: sft\n"
        "  - algo: best-of-n\n    params: {n: [1, 2, 4], ranker: rm}\n"
        "  - algo: best-of-n\n    label: best-of-n-gold\n    params: {n: 4, ranker: gold}\n"
        "  - algo: rlhf-ppo\n    params: {batch_size: 8, minibatch_size: 4, ppo_epochs: 2, kl_coef: 0.0}\n"
        "  - algo: rlhf-ppo\n    label: ppo-gt\n    params: {batch_size: 8, minibatch_size: 4, ppo_epochs: 2,"
        " reward: gold}\n"
        "  - algo: lm-online-dpo\n    params: {prompts_per_batch: 4}\n"
        "  - algo: lm-online-dpo\n    label: online-dpo-gold\n"
        "    params: {prompts_per_batch: 4, judge: gold}\n"
        "  - algo: trl-online-dpo\n    params: {prompts_per_batch: 4}\n"
    )
    return tmp, run_in_cache(tmp, suite)


def test_the_proxy_is_recorded_beside_the_gold_where_a_learned_reward_is_optimised(proxy_run):
    _, store = proxy_run
    ev = pd.DataFrame(
        _rows(store, "SELECT r.algorithm, e.step, e.temperature, e.metric, e.value FROM evals e"
                     " JOIN runs r ON r.key = e.run_key"),
        columns=["algorithm", "step", "temperature", "metric", "value"],
    )  # fmt: skip
    proxy = ev[ev.metric == "eval/proxy_reward"]
    gold = ev[ev.metric == "eval/return"]
    assert set(proxy.algorithm) == {
        "rlhf-ppo",
        "best-of-n[n=1]",
        "best-of-n[n=2]",
        "best-of-n[n=4]",
        "lm-online-dpo",
        "trl-online-dpo",
    }  # the gold judge's run has none

    # every gold record of those runs (each checkpoint and temperature) has its proxy
    def keys(df, label):
        return sorted(map(tuple, df[df.algorithm == label][["step", "temperature"]].values))

    for label in set(proxy.algorithm):
        assert keys(proxy, label) == keys(gold, label)
    # the analysis: Best-of-N's series over N and RLHF-PPO's over its checkpoints, gold relative to π_SFT
    pts = overopt.points(Results.from_store(Store(store, create=False), "overopt-test"))
    assert set(pts.series) == {"best-of-n", "rlhf-ppo", "lm-online-dpo", "trl-online-dpo"}
    bon = pts[pts.series == "best-of-n"].sort_values("n")
    assert bon.n.tolist() == [1, 2, 4] and bon.d.iloc[0] == 0 and (bon.d.diff().iloc[1:] >= 0).all()
    assert bon.gold.iloc[0] == pytest.approx(0.0)  # N = 1 is π_SFT's own distribution
    assert pts[pts.series == "rlhf-ppo"].proxy.notna().all()


def test_the_report_shows_the_over_optimisation_section(proxy_run, tmp_path):
    from bench.cli import main

    _, store = proxy_run
    out = tmp_path / "report"
    assert main(["report", "--store", str(store), "--suite", "overopt-test", "-o", str(out), "-q"]) == 0
    html = (out / "index.html").read_text()
    assert "Reward-model over-optimisation" in html and (out / "figures" / "overopt1.png").is_file()
    fits = pd.read_csv(out / "overoptimization.csv")
    assert set(fits.series) == {"best-of-n", "rlhf-ppo", "lm-online-dpo", "trl-online-dpo"}
    assert set(fits[fits.series == "best-of-n"].kl) == {"estimate", "bound"}
    assert len(pd.read_csv(out / "overoptimization_points.csv")) > 0


def test_online_dpo_runs_ours_and_trls_with_kl_and_training_curves(proxy_run):
    _, store = proxy_run
    query = "SELECT r.algorithm, c.metric, c.value FROM curves c JOIN runs r ON r.key = c.run_key"
    curves = pd.DataFrame(_rows(store, query), columns=["algorithm", "metric", "value"])
    for label in ("lm-online-dpo", "online-dpo-gold", "trl-online-dpo"):
        metrics = set(curves[curves.algorithm == label].metric)
        assert {"train/loss", "train/reward_margin", "train/score"} <= metrics, (label, metrics)
    kl = dict(_rows(store, "SELECT r.algorithm, e.value FROM evals e JOIN runs r ON r.key = e.run_key"
                           " WHERE e.metric = 'eval/kl' AND e.step = 20"))  # fmt: skip
    assert all(kl[label] > 0 for label in ("lm-online-dpo", "online-dpo-gold", "trl-online-dpo"))


@pytest.mark.slow
def test_reward_model_data_size_per_run(tmp_path):
    """``rm_pairs``: the reward model trained on the first k training pairs, cached apart from the
    default one; a run key without it is the run key of before (the field is new)."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"include: {SUITES / 'lm-smoke.yaml'}\n"
        "name: rm-pairs-test\nversion: 1\n"
        "algorithms:\n"
        "  - algo: best-of-n\n    params: {n: 2, ranker: rm, rm_pairs: [20, null]}\n"
        "  - algo: rlhf-ppo\n    params: {batch_size: 8, minibatch_size: 4, ppo_epochs: 2, rm_pairs: 20}\n"
    )
    store = run_in_cache(tmp_path, suite)
    pairs = dict(_rows(store, "SELECT r.algorithm, e.value FROM evals e JOIN runs r ON r.key = e.run_key"
                              " WHERE e.metric = 'rm/train_pairs'"))  # fmt: skip
    assert pairs["best-of-n[rm_pairs=20]"] == pairs["rlhf-ppo"] == 20
    assert pairs["best-of-n[rm_pairs=None]"] > 20  # every training pair
    configs = dict(_rows(store, "SELECT algorithm, config FROM runs"))
    assert "rm_pairs" not in configs["best-of-n[rm_pairs=None]"] and '"rm_pairs": 20' in configs["rlhf-ppo"]
    models = sorted(p.name for p in (tmp_path / "cache").rglob("rm-s0-*") if p.is_dir())
    assert len(models) == 2 and models[1].endswith("-p20")
