"""Seed-batched PPO (``bench.algos.seed_batch``) is unbatched PPO, float for float: the same
parameters and the same records per seed, on this machine's kernels, for discrete and Gaussian
policies, both objectives, early stopping on the KL and minibatches of mixed sizes; a seed that
fails fails alone; the executor groups runs into seed batches and stores what unbatched runs store."""

import dataclasses

import numpy as np
import pytest
import torch

from bench.algos import pg, ppo, seed_batch
from bench.control.tasks import get_task
from bench.evaluation import Evaluator
from bench.recorder import Recorder


def _records(rec: Recorder):
    curves = [
        (step, metric, value) for step, _, metric, value in rec.curves if not metric.startswith("perf/")
    ]
    evals = [(e[0], e[3], e[4], e[5], e[6]) for e in rec.evals]  # without the clock columns
    return curves, evals, list(rec.outcomes)


def _both(task_id: str, steps: int, seeds=(3, 4, 5), **params):
    torch.set_num_threads(1)
    task = get_task(task_id)
    cfg = ppo.PPOConfig(**{**ppo.TASK_DEFAULTS.get(task_id, {}), **params})
    alone = []
    for s in seeds:
        rec = Recorder()
        agent = ppo.train(task, cfg, steps, s, Evaluator(task, rec, s, steps // 2, 2, [1.0]), rec)
        alone.append((rec, [p.detach().clone() for p in agent.model.parameters()]))
    recs = [Recorder() for _ in seeds]
    evaluators = [Evaluator(task, r, s, steps // 2, 2, [1.0]) for r, s in zip(recs, seeds, strict=True)]
    together = seed_batch.ppo_train(task, cfg, steps, list(seeds), evaluators, recs)
    return alone, together, recs


def test_seed_batched_pg_is_unbatched_pg_float_for_float():
    """REINFORCE: rollouts batched, each seed's full-batch step its own; Gaussian with observation
    and reward scaling, two epochs and a gradient clip."""
    torch.set_num_threads(1)
    for task_id, params in [("CartPole-v1", {}), ("Pendulum-v1", {"n_epochs": 2, "max_grad_norm": 0.5})]:
        task = get_task(task_id)
        cfg = pg.PGConfig(**{**pg.TASK_DEFAULTS[task_id], **params})
        steps, seeds = 4096, (3, 4)
        alone = []
        for s in seeds:
            rec = Recorder()
            agent = pg.train(task, cfg, steps, s, Evaluator(task, rec, s, steps // 2, 2, [1.0]), rec)
            alone.append((rec, [p.detach().clone() for p in agent.model.parameters()]))
        recs = [Recorder() for _ in seeds]
        evs = [Evaluator(task, r, s, steps // 2, 2, [1.0]) for r, s in zip(recs, seeds, strict=True)]
        together = seed_batch.pg_train(task, cfg, steps, list(seeds), evs, recs)
        for (rec, params_alone), agent, rec_b in zip(alone, together, recs, strict=True):
            assert all(torch.equal(a, b.detach()) for a, b in zip(params_alone, agent.model.parameters(),
                                                                   strict=True))  # fmt: skip
            assert _records(rec) == _records(rec_b) and len(rec_b.evals) > 0


SMALL = {"n_envs": 4, "n_steps": 256, "batch_size": 256, "n_epochs": 4}  # a short Pendulum budget


@pytest.mark.parametrize(
    "task_id, steps, params",
    [
        ("CartPole-v1", 2048, {}),  # one minibatch per epoch, of each seed's own size
        ("CartPole-v1", 2048, {"batch_size": 100, "target_kl": 0.01}),  # mixed sizes, early stops
        ("Pendulum-v1", 2048, {"objective": "kl_penalty", "target_kl": 0.01, **SMALL}),  # Gaussian, eq. 8
        ("Pendulum-v1", 2048, {"clip_range_vf": 0.2, "lr_schedule": "linear", "value_loss": "mse", **SMALL}),
        ("CartPole-v1", 2048, {"objective": "unclipped", "policy_init_gain": 1.0}),  # the detail switches
    ],
)
def test_seed_batched_ppo_is_unbatched_ppo_float_for_float(task_id, steps, params):
    alone, together, recs = _both(task_id, steps, **params)
    for (rec, params_alone), agent, rec_b in zip(alone, together, recs, strict=True):
        assert not isinstance(agent, BaseException), agent
        batched = [p.detach() for p in agent.model.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(params_alone, batched, strict=True))
        assert _records(rec) == _records(rec_b)
        assert len(rec_b.evals) > 0 and rec_b.env_steps == rec.env_steps >= steps


def test_a_seed_that_fails_fails_alone(monkeypatch):
    """The second seed's run raises after its third update (as a divergence would); the others
    finish exactly as unbatched."""
    calls = {"n": 0}
    real = ppo.after_update

    def failing(task, cfg, agent, stats, step, *rest, **kw):
        if agent.collector.generator.initial_seed() == 4:
            calls["n"] += 1
            if calls["n"] == 3:
                raise FloatingPointError("policy loss is nan")
        return real(task, cfg, agent, stats, step, *rest, **kw)

    alone = _both("CartPole-v1", 2048, seeds=(3, 5))[0]
    monkeypatch.setattr(ppo, "after_update", failing)
    task = get_task("CartPole-v1")
    cfg = ppo.PPOConfig(**ppo.TASK_DEFAULTS["CartPole-v1"])
    recs = [Recorder() for _ in range(3)]
    evs = [Evaluator(task, r, s, 1024, 2, [1.0]) for r, s in zip(recs, (3, 4, 5), strict=True)]
    out = seed_batch.ppo_train(task, cfg, 2048, [3, 4, 5], evs, recs)
    assert isinstance(out[1], FloatingPointError)
    for (rec, params), agent, rec_b in zip(alone, (out[0], out[2]), (recs[0], recs[2]), strict=True):
        assert all(torch.equal(a, b.detach()) for a, b in zip(params, agent.model.parameters(), strict=True))
        assert _records(rec) == _records(rec_b)


def _grpo_reference(task, seed: int):
    """A stand-in π_ref of the seed (random weights; observation scaling on for Gaussian tasks, with
    made-up statistics), as ``alignment.reference()`` gives one."""
    from types import SimpleNamespace

    from bench.control.policies import ActorCritic, ObsNormalizer

    torch.manual_seed(100 + seed)
    env = __import__("gymnasium").make(task.id)
    obs_dim, space = env.observation_space.shape[0], env.action_space
    env.close()
    continuous = not hasattr(space, "n")
    model = ActorCritic(obs_dim, space.shape[0] if continuous else int(space.n), continuous).requires_grad_(
        False
    )
    norm = ObsNormalizer((obs_dim,), enabled=continuous)
    if continuous:
        norm.rms.mean, norm.rms.var = np.full(obs_dim, 0.1), np.full(obs_dim, 0.5)
    ref = SimpleNamespace(model=model, obs_norm=norm)
    return SimpleNamespace(reference=lambda: ref)


# (task, env steps: at least two batches of groups x k episodes, config)
GRPO_CASES = [("CartPole-v1", 1200, {}),
              ("Pendulum-v1", 3000, {"aggregation": "dr_grpo", "scale_rewards": "none"})]  # fmt: skip


@pytest.mark.parametrize("task_id, steps, params", GRPO_CASES)
def test_seed_batched_grpo_gt_is_unbatched_grpo_gt_float_for_float(task_id, steps, params, monkeypatch):
    """GRPO-GT from each seed's own π_ref: the groups' rollouts batched over seeds, each seed's
    updates its own; a seed that fails (its second update raises) fails alone."""
    from bench.algos import grpo

    torch.set_num_threads(1)
    task = get_task(task_id)
    cfg = grpo.GRPOGTConfig(groups=2, k=4, iterations=2, **params)
    seeds = (3, 4, 5)
    alone = []
    for s in (3, 5):
        rec = Recorder()
        grpo.train_grpo_gt(task, cfg, steps, s, Evaluator(task, rec, s, steps // 2, 2, [1.0]), rec,
                           _grpo_reference(task, s))  # fmt: skip
        alone.append(rec)
    real, calls = grpo._Run.learn, {"n": 0}

    def failing(self, ep, evaluator, recorder):
        if self.rng is runs_of[4]:
            calls["n"] += 1
            if calls["n"] == 2:
                raise FloatingPointError("loss is nan")
        return real(self, ep, evaluator, recorder)

    runs_of = {}
    real_init = grpo._Run.__init__

    def init(self, task, cfg, seed, alignment):
        real_init(self, task, cfg, seed, alignment)
        runs_of[seed] = self.rng

    monkeypatch.setattr(grpo._Run, "learn", failing)
    monkeypatch.setattr(grpo._Run, "__init__", init)
    recs = [Recorder() for _ in seeds]
    evs = [Evaluator(task, r, s, steps // 2, 2, [1.0]) for r, s in zip(recs, seeds, strict=True)]
    out = grpo.train_grpo_gt_seeds(task, cfg, steps, list(seeds), evs, recs,
                                   [_grpo_reference(task, s) for s in seeds])  # fmt: skip
    assert isinstance(out[1], FloatingPointError) and calls["n"] == 2
    for rec, run, rec_b in zip(alone, (out[0], out[2]), (recs[0], recs[2]), strict=True):
        assert not isinstance(run, BaseException), run
        assert _records(rec) == _records(rec_b)
        assert len(rec_b.evals) > 0 and rec_b.env_steps == rec.env_steps >= steps
    # the two seeds' runs really differ (each its own π_ref and start states)
    assert _records(recs[0])[0] != _records(recs[2])[0]


def test_a_batched_layer_is_used_only_where_it_gives_linears_floats():
    # one output (the value head) is a matrix-vector product in F.linear: run per seed
    assert not seed_batch._batched_equals_linear(3, 512, 64, 1)
    # whatever the probe decides, the MLP gives each seed F.linear's floats
    g = torch.Generator().manual_seed(1)
    layers = [(torch.randn(3, 64, 4, generator=g), torch.randn(3, 64, generator=g)),
              (torch.randn(3, 1, 64, generator=g), torch.randn(3, 1, generator=g))]  # fmt: skip
    for rows in (1, 2, 3, 16, 100, 505):
        x = torch.randn(3, rows, 4, generator=g)
        out = seed_batch._mlp(torch.tanh, layers, x)
        for i in range(3):
            h = torch.tanh(torch.nn.functional.linear(x[i], layers[0][0][i], layers[0][1][i]))
            assert torch.equal(out[i], torch.nn.functional.linear(h, layers[1][0][i], layers[1][1][i]))


def test_seed_batches_group_runs_that_differ_only_in_their_seed():
    from bench.executors import seed_batches
    from bench.suite import RunSpec

    def spec(key, algo="ppo", seed=0, task="CartPole-v1", config="{}"):
        return RunSpec(key=key, suite="s", suite_version="1", label=algo, algo=algo, task=task, seed=seed,
                       env_steps=100, config_json=config, evaluation_json="{}")  # fmt: skip

    specs = [spec(f"p{s}", seed=s) for s in range(5)]
    specs += [spec("g0", algo="trpo"), spec("g1", algo="trpo", seed=1)]
    specs += [spec("q0", config='{"lr": 1}'), spec("t0", task="Pendulum-v1")]
    units = seed_batches(specs, 2)
    keys = [[s.key for s in u] for u in units]
    # PPO's five seeds in batches of two; TRPO has no seed-batched trainer; other settings or tasks
    # are other batches
    assert keys == [["p0", "p1"], ["p2", "p3"], ["p4"], ["g0"], ["g1"], ["q0"], ["t0"]]
    assert [[s.key for s in u] for u in seed_batches(specs, 1)] == [[s.key] for s in specs]
    assert dataclasses.replace(specs[0], seed=9, key="x").key == "x"  # frozen, replaceable


def _store_records(path):
    """(runs, curves without timing, evaluations) of a store, in a fixed order."""
    import sqlite3

    import pandas as pd

    with sqlite3.connect(path) as c:
        runs = pd.read_sql("select key, status from runs order by key", c)
        curves = pd.read_sql(
            "select run_key, step, metric, value from curves where metric not like 'perf/%' "
            "order by run_key, step, metric", c)  # fmt: skip
        evals = pd.read_sql("select run_key, step, temperature, metric, value, n from evals "
                            "order by run_key, step, temperature, metric", c)  # fmt: skip
    return runs, curves, evals


def test_bench_run_with_seed_batches_stores_what_one_run_at_a_time_stores(tmp_path):

    import pandas as pd

    from bench.cli import main

    suite = tmp_path / "sb.yaml"
    suite.write_text(
        "name: sb\nversion: 1\ntasks: [CartPole-v1]\nseeds: 3\nenv_steps: 2048\n"
        "evaluation: {eval_every: 1024, eval_episodes: 2, temperatures: [1.0]}\n"
        "algorithms:\n  - algo: ppo\n  - algo: pg\n    env_steps: 1024\n"
    )
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert main(["run", str(suite), "--store", str(a), "-q"]) == 0
    assert main(["run", str(suite), "--store", str(b), "-q", "--batch-seeds", "3"]) == 0

    for x, y in zip(_store_records(a), _store_records(b), strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert (_store_records(b)[0].status == "done").all() and len(_store_records(b)[0]) == 6
    log = next((tmp_path / "logs" / "sb").glob("ppo-CartPole-v1-s1-*.log")).read_text()
    assert "seed batch of 3 runs (seeds 0, 1, 2)" in log
    assert np.isfinite(_store_records(b)[2].value).all()


def test_seed_batched_alignment_runs_store_what_unbatched_ones_store(tmp_path, monkeypatch):
    """PPO-GT/RM, PG-GT/RM and GRPO-GT fine-tuning from each seed's own π_ref (the KL penalty in the
    reward, and as a loss term: then each seed's own epochs), through ``bench run``: the same records."""

    import pandas as pd

    from bench.cli import main

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    small = "n_envs: 4, n_steps: 128"
    suite = tmp_path / "sa.yaml"
    suite.write_text(
        "name: sa\nversion: 1\ntasks: [CartPole-v1]\nseeds: 2\nenv_steps: 1024\n"
        "evaluation: {eval_every: 512, eval_episodes: 2, temperatures: [1.0],"
        " final_temperatures: [0.0, 1.0]}\n"
        "alignment:\n  reference: {CartPole-v1: {env_steps: 2048, target_return: null, check_every: 2048,"
        " check_episodes: 2}}\n  preferences: {n_pairs: 48, episodes: 6, segment_length: 20}\n"
        "algorithms:\n"
        f"  - {{algo: ppo-gt, params: {{{small}, batch_size: 128, n_epochs: 2}}}}\n"
        f"  - {{algo: ppo-gt, label: ppo-gt-loss, params: {{kl_penalty: loss, {small}, batch_size: 64}}}}\n"
        f"  - {{algo: ppo-rm, params: {{{small}, batch_size: 128, n_epochs: 2,"
        " reward_model: {epochs: 2}}}\n"
        f"  - {{algo: pg-gt, params: {{{small}}}}}\n"
        f"  - {{algo: pg-rm, params: {{{small}, reward_model: {{epochs: 2}}}}}}\n"
        "  - {algo: grpo-gt, params: {groups: 2, k: 4, iterations: 2}}\n"
    )
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert main(["run", str(suite), "--store", str(a), "-q"]) == 0
    assert main(["run", str(suite), "--store", str(b), "-q", "--batch-seeds", "2"]) == 0

    for x, y in zip(_store_records(a), _store_records(b), strict=True):
        pd.testing.assert_frame_equal(x, y)
    runs, curves, evals = _store_records(b)
    assert (runs.status == "done").all() and len(runs) == 12
    assert {"eval/kl", "rm/return_corr"} <= set(evals.metric)
    # the learned reward's episode sums beside the true return, at every evaluation of the RM methods
    proxy = evals[evals.metric == "eval/proxy_return"].merge(runs, left_on="run_key", right_on="key")
    returns = evals[evals.metric == "eval/return"]
    rm_keys = set(proxy.run_key)
    assert len(rm_keys) == 4  # ppo-rm and pg-rm, 2 seeds each
    assert len(proxy) == len(returns[returns.run_key.isin(rm_keys)])
    log = next((tmp_path / "logs" / "sa").glob("ppo-rm-CartPole-v1-s1-*.log")).read_text()
    assert "seed batch of 2 runs (seeds 0, 1)" in log
