"""The control-alignment pipeline end to end: the smoke variant on CartPole through the CLI,
its evaluation records, its report, and suite validation of the alignment section."""

from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.suite import SuiteError, expand, load_suite
from tests.conftest import run_in_cache
from tests.integration.test_cli import _rows

SUITES = Path(__file__).resolve().parents[2] / "suites"
FINAL_T = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
# the smoke variant run end to end and its report (about 45 s): the slow tier; the default tier
# keeps the methods' unit tests and a fine-tuning suite through `bench run` (test_seed_batch.py)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke variant on CartPole and Pendulum (categorical and Gaussian policies), run once
    into a fresh cache."""
    tmp = tmp_path_factory.mktemp("align")
    suite = tmp / "suite.yaml"
    suite.write_text(
        f"include: {SUITES / 'control-alignment-smoke.yaml'}\n"
        "name: align-test\nversion: 1\ntasks: [CartPole-v1, Pendulum-v1]\n"
        # half the smoke budgets: two PPO updates and two checkpoints per run
        "env_steps: 1024\nevaluation: {eval_every: 512}\n"
        "alignment: {reference: {CartPole-v1: {env_steps: 2048, check_every: 2048},"
        " Pendulum-v1: {env_steps: 2048, check_every: 2048}}}\n"
    )
    return tmp, run_in_cache(tmp, suite)  # in-process; with --jobs 2 in the slow determinism test


def test_every_method_runs_and_records_kl_and_the_temperature_sweep(smoke_run):
    tmp, store = smoke_run
    assert {s for (s,) in _rows(store, "SELECT status FROM runs")} == {"done"}
    # orpo needs action probabilities: CartPole only
    assert len(_rows(store, "SELECT key FROM runs WHERE task = 'Pendulum-v1'")) == 13
    runs = dict(_rows(store, "SELECT algorithm, status FROM runs WHERE task = 'CartPole-v1'"))
    assert {"reference", "dpo", "ipo", "simpo", "orpo", "kto", "preferred-bc", "ppo-gt", "ppo-gt-adaptive",
            "pg-gt", "pg-rm", "grpo-gt"} <= set(runs)  # fmt: skip
    assert {"ppo-rm[n_pairs=20]", "ppo-rm[n_pairs=51]"} <= set(runs)
    ev = pd.DataFrame(
        _rows(
            store,
            "SELECT r.algorithm, e.step, e.temperature, e.metric, e.value"
            " FROM evals e JOIN runs r ON r.key = e.run_key WHERE r.task = 'CartPole-v1'",
        ),
        columns=["algorithm", "step", "temperature", "metric", "value"],
    )
    # KL at T = 1 only, at every checkpoint; exactly zero for pi_ref itself
    kl = ev[ev.metric == "eval/kl"]
    assert set(kl.temperature) == {1.0}
    assert set(kl.algorithm) == set(runs)
    ref = ev[ev.algorithm == "reference"]
    assert (ref[ref.metric.isin(["eval/kl", "eval/kl_k1"])].value == 0.0).all()
    # every method: final temperature sweep of the return
    for algo in runs:
        e = ev[(ev.algorithm == algo) & (ev.metric == "eval/return")]
        assert sorted(e[e.step == e.step.max()].temperature) == FINAL_T, algo
    # reward models: held-out accuracy recorded once per RM run, with its number of pairs
    rm = ev[ev.metric == "rm/accuracy"]
    assert set(rm.algorithm) == {"ppo-rm[n_pairs=20]", "ppo-rm[n_pairs=51]", "pg-rm"}
    assert ((rm.value >= 0) & (rm.value <= 1)).all()
    pairs = ev[ev.metric == "data/n_pairs"].set_index("algorithm").value
    assert pairs["ppo-rm[n_pairs=20]"] == 20 and pairs["dpo"] == 51  # 64 pairs, 13 held out
    # the reference, preference data and reward models were cached once per recipe
    cache = sorted(p.name.split("-s0-")[0] for p in (tmp / "cache" / "CartPole-v1").glob("*.pt"))
    assert cache == ["preferences", "reference", "reward-model", "reward-model", "reward-model"]
    # Gaussian policies: pi_ref's KL to itself is exactly zero too
    pend = _rows(
        store,
        "SELECT e.value FROM evals e JOIN runs r ON r.key = e.run_key WHERE r.task ="
        " 'Pendulum-v1' AND r.algorithm = 'reference' AND e.metric IN ('eval/kl', 'eval/kl_k1')",
    )
    assert pend and all(v == 0.0 for (v,) in pend)


def test_report_has_frontier_budgets_reward_models_and_data_efficiency(smoke_run, capsys):
    tmp, store = smoke_run
    out = tmp / "report"
    assert (
        main(["report", "--suite", "align-test", "--store", str(store), "-o", str(out), "--reps", "200"]) == 0
    )
    names = {p.name for p in out.iterdir()}
    assert {
        "frontier.csv",
        "temperature.csv",
        "kl_budgets.csv",
        "reward_models.csv",
        "data_efficiency.csv",
    } <= names
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"frontier1.png", "temperature1.png", "efficiency1.png"} <= figs
    budgets = pd.read_csv(out / "kl_budgets.csv")
    assert set(budgets.kl_budget) == {5.0, 10.0, 20.0}
    assert "reference" in set(budgets.method)
    eff = pd.read_csv(out / "data_efficiency.csv")
    assert sorted(eff[(eff.method == "ppo-rm") & (eff.task == "CartPole-v1")].n_pairs) == [20, 51]
    html = (out / "index.html").read_text()
    assert "Alignment: CartPole-v1" in html and "Alignment: Pendulum-v1" in html
    assert "held-out accuracy" in html
    # alignment runs are scored at T = 1
    finals = pd.read_csv(out / "final_scores.csv")
    t1 = _rows(
        store,
        "SELECT r.algorithm, e.value FROM evals e JOIN runs r ON r.key = e.run_key "
        "WHERE e.metric = 'eval/return' AND e.temperature = 1.0 AND r.algorithm = 'reference'",
    )
    ref = finals[(finals.algorithm == "reference") & (finals.task == "CartPole-v1")]
    assert ref.score.iloc[0] == pytest.approx(t1[0][1])


def test_aligned_method_needs_the_alignment_section(write_suite):
    path = write_suite(
        """
        name: x
        version: 1
        tasks: [CartPole-v1]
        seeds: 1
        env_steps: 100
        algorithms: [{algo: dpo}]
        """
    )
    with pytest.raises(SuiteError, match="alignment"):
        load_suite(path)


def test_missing_reference_recipe_is_named(write_suite):
    path = write_suite(
        """
        name: x
        version: 1
        tasks: [CartPole-v1, Pendulum-v1]
        seeds: 1
        env_steps: 100
        alignment: {reference: {CartPole-v1: {env_steps: 100}}}
        algorithms: [{algo: ppo-gt}]
        """
    )
    with pytest.raises(SuiteError, match="no reference recipe for task Pendulum-v1"):
        load_suite(path)


def test_shipped_alignment_suites_expand_and_keys_depend_on_the_recipe():
    full = load_suite(SUITES / "control-alignment.yaml")
    specs = expand(full)
    assert len(full.seeds) >= 3 and set(full.tasks) == {"CartPole-v1", "LunarLander-v3", "Pendulum-v1"}
    assert {s.algo for s in specs} == {
        "reference",
        "dpo",
        "preferred-bc",
        "ppo-gt",
        "ppo-rm",
        "pg-gt",
        "pg-rm",
    }
    assert all(s.alignment["reference"] for s in specs)
    assert len({s.key for s in specs}) == len(specs)
    smoke = expand(load_suite(SUITES / "control-alignment-smoke.yaml"))
    assert {s.alignment_json for s in smoke if s.task == "CartPole-v1"} != {
        s.alignment_json for s in specs if s.task == "CartPole-v1"
    }
