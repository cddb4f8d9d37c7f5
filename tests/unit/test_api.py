"""bench.api is a contract: what it exports, what the registry accepts and refuses, the code
fingerprint's reach, and the example plugin's Dual-clip loss by hand."""

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import BaseModel, ValidationError

import bench.api as api
from bench import fingerprint, registry
from bench.algos import ALGORITHMS, BUILT_IN

ROOT = Path(__file__).resolve().parents[2]


def test_everything_exported_exists_and_is_the_documented_kind():
    assert len(set(api.__all__)) == len(api.__all__)
    for name in api.__all__:
        assert hasattr(api, name), name
    assert issubclass(api.PPOConfig, BaseModel) and issubclass(api.PGConfig, BaseModel)
    assert callable(api.ppo_train) and callable(api.pg_train) and callable(api.build_agent)
    assert callable(api.losses.gae) and callable(api.losses.clipped_surrogate_loss)
    assert api.Algorithm is registry.Algorithm and api.register_algorithm is registry.register_algorithm


def test_the_built_ins_go_through_the_public_registry():
    assert [a.name for a in BUILT_IN] == list(ALGORITHMS)[: len(BUILT_IN)]
    for algo in BUILT_IN:
        assert isinstance(algo, api.Algorithm) and ALGORITHMS[algo.name] is algo
        assert algo.origin.kind == "built-in"
    api.register_algorithm(BUILT_IN[0])  # the same record again: a no-op


def _train(task, cfg, env_steps, seed, evaluator, recorder):
    pass


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="ppo"), "algorithm 'ppo' from built-in clashes with the one from built-in"),
        (dict(name="has space"), "must be letters, digits"),
        (dict(config=dict), "config must be a pydantic BaseModel class"),
        (dict(train=lambda task, cfg: None), "must take the positional parameters (task, cfg, env_steps"),
        (dict(aligned=True), "and the run's context (7 in all)"),
        (dict(domain="atari"), "domain must be one of control, lm"),
        (dict(version=""), "version must be a non-empty string"),
        (dict(task_defaults={"CartPole-v1": 3}), "task_defaults must map task ids to dicts"),
    ],
)
def test_the_registry_refuses_what_cannot_run(kwargs, message):
    fields = dict(name="new-algo", config=api.PPOConfig, task_defaults={}, train=_train, description="x")
    with pytest.raises(api.PluginError, match=None) as info:
        api.register_algorithm(api.Algorithm(**{**fields, **kwargs}))
    assert message in str(info.value)
    assert "new-algo" not in ALGORITHMS and "has space" not in ALGORITHMS


def test_every_registered_config_refuses_unknown_keys():
    class PlainConfig(BaseModel):  # pydantic's default: unknown keys are dropped
        lr: float = 1e-3

    algo = api.register_algorithm(api.Algorithm("plain-config", PlainConfig, {}, _train, "x"))
    try:
        with pytest.raises(ValidationError, match="learning_rate\n  Extra inputs are not permitted"):
            algo.config.model_validate({"learning_rate": 0.1})
    finally:
        del ALGORITHMS["plain-config"]
    assert algo.config is PlainConfig and PlainConfig(lr=0.1).lr == 0.1  # the plugin's own class


def test_the_policy_gets_numpy_batches_and_the_evaluator_clips_its_actions():
    """The policy contract the docs state: ``policy(obs, temperature)`` gets the raw observations
    of ``eval_episodes`` envs as one numpy array (the env's dtype) and returns one action per row;
    continuous actions are clipped to the action space by the evaluator."""
    from bench.control.tasks import TASKS

    for task, action in [("CartPole-v1", np.ones(3, dtype=np.int64)), ("Pendulum-v1", np.full((3, 1), 5.0))]:
        evaluator = api.Evaluator(TASKS[task], api.Recorder(), 0, 1, 3, [0.0, 1.0])
        seen, sent = [], []
        step = evaluator.env.step
        evaluator.env.step = lambda a, step=step, sent=sent: (sent.append(a), step(a))[1]

        def policy(obs, temperature, seen=seen, action=action):
            seen.append((type(obs), obs.shape, obs.dtype, temperature))
            return action

        means = evaluator(0, policy)
        dim = evaluator.env.single_observation_space.shape[0]
        assert set(seen) == {(np.ndarray, (3, dim), np.dtype("float32"), t) for t in (0.0, 1.0)}
        assert list(means) == [0.0, 1.0]
        clipped = np.full((3, 1), 2.0) if task == "Pendulum-v1" else action  # Pendulum: torque in [-2, 2]
        assert all(np.array_equal(a, clipped) for a in sent)


def test_what_bench_sets_up_before_train():
    """The docs' contract: in the run's process bench seeds torch's global RNG with the run's seed
    and limits torch to one thread; numpy's global RNG is left as it was; what train returns is
    ignored."""
    import json

    from bench.executors import run_one
    from bench.suite import RunSpec

    seen = {}

    def probe(task, cfg, env_steps, seed, evaluator, recorder):
        seen.update(seed=torch.initial_seed(), threads=torch.get_num_threads(), numpy=np.random.get_state())
        return "ignored"

    api.register_algorithm(api.Algorithm("probe-setup", api.PGConfig, {}, probe, "x"))
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    numpy_before = np.random.get_state()
    evaluation = json.dumps({"eval_every": 512, "eval_episodes": 2, "temperatures": [1.0]})
    config = json.dumps(api.PGConfig().model_dump(mode="json"))
    try:
        spec = RunSpec("k", "s", "1", "probe-setup", "probe-setup", "CartPole-v1", 7, 512, config, evaluation)
        assert run_one(spec)["status"] == "done"
    finally:
        del ALGORITHMS["probe-setup"]
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)
    assert seen["seed"] == 7 and seen["threads"] == 1
    assert all(np.array_equal(a, b) for a, b in zip(seen["numpy"], numpy_before, strict=True))


def test_task_records_are_checked_and_a_clash_refused():
    with pytest.raises(api.PluginError, match="clashes with the one from built-in"):
        api.register_task(api.Task("CartPole-v1", 1.0, 0.0, 1.0, continuous=False))
    with pytest.raises(api.PluginError, match="solved_score must differ from random_score"):
        api.register_task(api.Task("Same-v0", 1.0, 5.0, 5.0, continuous=False))
    with pytest.raises(api.PluginError, match="must be a finite number"):
        api.register_task(api.Task("Nan-v0", float("nan"), 0.0, 1.0, continuous=False))


def test_a_fingerprint_covers_the_algorithms_code_path_and_nothing_else():
    path = fingerprint.closure("bench.algos.ppo")
    assert {"bench.algos.ppo", "bench.algos.losses", "bench.algos.rollout", "bench.evaluation"} <= set(path)
    assert not {m for m in path if m.startswith(("bench.report", "bench.cli", "bench.store"))}
    fp = fingerprint.algorithm_fingerprint(ALGORITHMS["trpo"])
    assert fp == {"version": "1", "source": fingerprint.bench_source_hash("bench.algos.trpo")[:12],
                  "origin": "built-in"}  # fmt: skip
    # PPO's and PG's seed-batched trainers are on their code paths too
    for name in ("ppo", "pg"):
        both = fingerprint.bench_source_hash(f"bench.algos.{name}")[:12] + fingerprint.bench_source_hash(
            "bench.algos.seed_batch"
        )
        source = fingerprint.algorithm_fingerprint(ALGORITHMS[name])["source"]
        assert source == hashlib.sha256(both.encode()).hexdigest()[:12]
    # PPO and SB3's wrapper do not share their code path: an edit of ppo.py leaves sb3-ppo's runs
    assert "bench.algos.ppo" not in fingerprint.closure("bench.algos.external")


def test_dual_clip_loss_of_the_example_plugin_by_hand():
    sys.path.insert(0, str(ROOT / "examples" / "bench-plugin-example" / "src"))
    try:
        from bench_plugin_example.algorithm import dual_clip_loss
    finally:
        sys.path.pop(0)
    # ratios e^0.5 = 1.6487 and e^2 = 7.389; clip 0.2, c = 3
    logp, old = torch.tensor([0.5, 2.0, 2.0, -1.0]), torch.zeros(4)
    adv = torch.tensor([1.0, -1.0, 2.0, -0.5])
    r = torch.exp(logp)
    # A > 0: min(r A, 1.2 A); A < 0: max(min(r A, clip(r) A), 3 A)
    expected = [
        min(r[0] * 1.0, 1.2 * 1.0),  # 1.2
        max(min(r[1] * -1.0, 1.2 * -1.0), -3.0),  # min(-7.39, -1.2) = -7.39 -> bounded at -3
        min(r[2] * 2.0, 1.2 * 2.0),  # 2.4
        max(min(r[3] * -0.5, 0.8 * -0.5), -1.5),  # r = 0.368: min(-0.184, -0.4) = -0.4
    ]
    assert [round(float(e), 4) for e in expected] == [1.2, -3.0, 2.4, -0.4]
    got = dual_clip_loss(logp, old, adv, 0.2, 3.0)
    assert float(got) == pytest.approx(-sum(float(e) for e in expected) / 4, rel=1e-6)
