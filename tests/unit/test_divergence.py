"""Divergence: a NaN / inf loss or parameter stops a run, which is stored as failed with the step
and the quantity while the suite goes on; and artifacts load without unpickling code.

Real divergence: REINFORCE / PPO on Pendulum with lr 1000 (one Adam step moves the log-std by
±1000, so std = exp(±1000) is inf or 0 and the next log-probabilities are NaN). Everything else:
an optimizer post-step hook that writes NaN into the first parameter of the optimizer after its
first step (``poison``), through every algorithm family's real training loop."""

import copy
import faulthandler
import math
import multiprocessing as mp
import pickle
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from bench.algos.guard import Diverged, check_finite, nonfinite_loss, nonfinite_parameter
from bench.cache import cached
from bench.control.tasks import get_task
from bench.evaluation import Evaluator
from bench.recorder import Recorder

NAN, INF = float("nan"), float("inf")


@contextmanager
def poison(value: float = NAN, at_step: int = 1):
    """After the ``at_step``-th optimizer step (any torch optimizer), fills the optimizer's first
    parameter with ``value``. Yields the list of step counts seen."""
    seen = [0]

    def hook(optimizer, args, kwargs):
        seen[0] += 1
        if seen[0] == at_step:
            with torch.no_grad():
                optimizer.param_groups[0]["params"][0].fill_(value)

    handle = register_optimizer_step_post_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _evaluator(task_id: str, recorder: Recorder) -> Evaluator:
    return Evaluator(get_task(task_id), recorder, 0, 10**9, 2, [0.0])


# -- the guard itself --------------------------------------------------------------------------


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def test_finite_losses_and_parameters_pass():
    check_finite(10, {"policy loss": 0.5, "value loss": torch.tensor(2.0)}, _net())
    check_finite(10, {"a": -1e30}, {"actor": _net(), "critic": _net()}, unit="update")
    check_finite(10)  # nothing to check


@pytest.mark.parametrize("value,kind", [(NAN, "nan"), (INF, "inf"), (-INF, "-inf")])
def test_non_finite_loss_raises_with_step_and_name(value, kind):
    with pytest.raises(Diverged) as info:
        check_finite(12288, {"policy loss": 0.1, "value loss": value}, _net())
    e = info.value
    assert (e.step, e.reason, e.unit) == (12288, f"value loss is {kind}", "env step")
    assert str(e) == f"diverged at env step 12288: value loss is {kind}"
    # 0-dim tensors (a loop's loss before .item()) too
    assert nonfinite_loss({"loss": torch.tensor(value)}) == f"loss is {kind}"


@pytest.mark.parametrize("value,kind", [(INF, "inf"), (-INF, "inf"), (NAN, "nan")])
def test_non_finite_parameter_is_named(value, kind):
    net = _net()
    with torch.no_grad():
        net[2].weight[1, 3] = value
    assert nonfinite_parameter(net) == f"parameter 2.weight has {kind}"
    with pytest.raises(Diverged, match=rf"^diverged at update 7: parameter critic\.2\.weight has {kind}$"):
        check_finite(7, {"loss": 0.3}, {"actor": _net(), "critic": net}, unit="update")


def test_a_non_finite_loss_is_reported_before_a_parameter():
    net = _net()
    with torch.no_grad():
        net[0].bias.fill_(NAN)
    with pytest.raises(Diverged, match="policy loss is nan"):
        check_finite(1, {"policy loss": NAN}, net)


def test_diverged_pickles_with_its_fields():
    e = pickle.loads(pickle.dumps(Diverged(5, "loss is nan", "update")))
    assert (e.step, e.reason, e.unit) == (5, "loss is nan", "update")
    assert str(e) == "diverged at update 5: loss is nan"


# -- real divergence, and every loop calls the guard -------------------------------------------


@pytest.mark.parametrize("algo,step", [("pg", 256), ("ppo", 128)])
def test_an_absurd_learning_rate_diverges_on_pendulum(algo, step):
    from bench.algos import pg, ppo

    mod = {"pg": pg, "ppo": ppo}[algo]
    params = dict(n_envs=2, n_steps=64, lr=1000.0)
    if algo == "ppo":
        params.update(batch_size=64, n_epochs=2)
    cfg = (pg.PGConfig if algo == "pg" else ppo.PPOConfig)(**params)
    rec = Recorder()
    with pytest.raises(Diverged) as info:
        mod.train(get_task("Pendulum-v1"), cfg, 4096, 0, _evaluator("Pendulum-v1", rec), rec)
    # rollouts of 2 envs x 64 steps, all valid (Pendulum's episodes last 200 steps): PG's first
    # update moves log std to +-1000, its second rollout's log-probs are NaN; PPO's already
    # within the first rollout's epochs
    assert (info.value.step, info.value.reason) == (step, "policy loss is nan")
    # nothing non-finite was recorded
    assert all(math.isfinite(v) for *_, v in rec.curves)


@pytest.mark.parametrize("algo", ["pg", "ppo"])
def test_control_loops_check_parameters_every_iteration(algo):
    from bench.algos import pg, ppo

    mod = {"pg": pg, "ppo": ppo}[algo]
    cfg = (pg.PGConfig if algo == "pg" else ppo.PPOConfig)(n_envs=2, n_steps=32, **(
        {"batch_size": 64, "n_epochs": 1} if algo == "ppo" else {}))  # fmt: skip
    rec = Recorder()
    with poison(INF), pytest.raises(Diverged) as info:
        mod.train(get_task("CartPole-v1"), cfg, 4096, 0, _evaluator("CartPole-v1", rec), rec)
    # one update per rollout; the poisoned parameter is seen at the end of the first iteration
    assert info.value.reason == "parameter pi.0.weight has inf"
    assert 0 < info.value.step <= 64  # the first rollout's valid steps (2 envs x 32 steps)


@pytest.mark.parametrize("algo", ["sb3-ppo", "sb3-a2c"])
def test_sb3_parameters_are_checked_before_the_policy_acts_again(algo):
    pytest.importorskip("stable_baselines3")
    from bench.algos import external

    extra = {"batch_size": 32, "n_epochs": 1} if algo == "sb3-ppo" else {}
    cfg = external.SB3Config(n_envs=2, n_steps=16, **extra)
    rec = Recorder()
    with poison(NAN), pytest.raises(Diverged) as info:
        external.train(algo, get_task("CartPole-v1"), cfg, 256, 0, _evaluator("CartPole-v1", rec), rec)
    # SB3 updates after each rollout of 2 x 16 steps; the next rollout does not start
    assert info.value.step == 32 and info.value.reason.startswith("parameter ")
    assert info.value.reason.endswith(" has nan")


@pytest.fixture(scope="module")
def alignment(tmp_path_factory):
    """A CartPole reference policy and 24 preference pairs in a private cache."""
    from bench.pipeline.control import ControlPipeline
    from bench.pipeline.recipes import PreferenceRecipe

    mp_ = pytest.MonkeyPatch()
    mp_.setenv("BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    recipe = {
        "reference": {"env_steps": 512, "target_return": None, "check_every": 512, "check_episodes": 2,
                      "params": {"n_envs": 4, "n_steps": 64}},
        "preferences": PreferenceRecipe(n_pairs=24, segment_length=10, episodes=4).model_dump(),
    }  # fmt: skip
    ctx = ControlPipeline(get_task("CartPole-v1"), recipe, seed=0, log=lambda _: None)
    ctx.reference(), ctx.preferences()
    yield ctx
    mp_.undo()


@pytest.mark.parametrize(
    "algo,params,expected",
    [
        ("dpo", {"eval_points": 1}, r"^diverged at update 2: loss is nan$"),
        ("preferred-bc", {"eval_points": 1}, r"^diverged at update 2: loss is nan$"),
        ("pg-gt", {"n_envs": 2, "n_steps": 32},
         r"^diverged at env step \d+: parameter pi\.0\.weight has nan$"),
        ("ppo-gt", {"n_envs": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
         r"^diverged at env step \d+: parameter pi\.0\.weight has nan$"),
        ("ppo-rm", {"n_envs": 2, "n_steps": 32, "reward_model": {"epochs": 2}},
         r"^diverged at reward-model epoch 1: parameter net\.0\.weight has nan$"),
    ],
)  # fmt: skip
def test_alignment_loops_check_losses_and_parameters(alignment, algo, params, expected):
    from bench.algos import ALGORITHMS

    a = ALGORITHMS[algo]
    rec = Recorder()
    evaluator = _evaluator("CartPole-v1", rec)
    with poison(NAN), pytest.raises(Diverged, match=expected):
        a.train(get_task("CartPole-v1"), a.config(**params), 50, 0, evaluator, rec, alignment)
    assert not list(alignment.root.glob("reward-model-*.pt"))  # a diverged reward model is not cached


def test_reference_training_divergence_names_the_reference(tmp_path, monkeypatch):
    from bench.pipeline.control import ControlPipeline
    from bench.pipeline.recipes import PreferenceRecipe

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    recipe = {
        "reference": {"env_steps": 1024, "target_return": None, "check_every": 1024, "check_episodes": 2,
                      "params": {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 2, "lr": 1000.0}},
        "preferences": PreferenceRecipe(n_pairs=8, segment_length=10, episodes=2).model_dump(),
    }  # fmt: skip
    ctx = ControlPipeline(get_task("Pendulum-v1"), recipe, seed=0, log=lambda _: None)
    with pytest.raises(Diverged, match=r"^diverged at reference-policy env step 128: policy loss is nan$"):
        ctx.reference()
    assert not list(tmp_path.glob("**/*.pt"))  # nothing cached


# -- LM loops (a tiny GPT-2 on a stub context) -------------------------------------------------


@pytest.fixture(scope="module")
def lm_ctx(tmp_path_factory):
    from bench.artifacts import CompletionPreferences
    from bench.lm.corpus import generate_reviews
    from bench.lm.models import ModelRecipe, build_tiny_lm
    from bench.lm.tokenizer import train_tokenizer

    texts = [r.text for r in generate_reviews(120, seed=1)]
    tok = train_tokenizer(texts, vocab_size=300)
    ref = build_tiny_lm(ModelRecipe(n_layer=1, n_embd=16, n_head=2, n_positions=96), tok, seed=0).eval()
    sft = tmp_path_factory.mktemp("sft")
    ref.save_pretrained(sft)
    prompts = [t[:24] for t in texts[:8]]
    completions = [[t[24:40], t[40:52]] for t in texts[:8]]
    prefs = CompletionPreferences({
        "prompt_text": prompts, "prompt_ids": tok(prompts)["input_ids"], "completion_text": completions,
        "completion_ids": [tok(c)["input_ids"] for c in completions], "gold": [[0.5, -0.5]] * 8,
        "pairs": [(i, 0, 1) for i in range(8)], "n_train_prompts": 8, "ties": 0,
    })  # fmt: skip

    class Ctx:
        seed = 0
        setup = SimpleNamespace(max_new_tokens=4, torch_device=lambda: torch.device("cpu"))
        sft_dir = sft

        def tokenizer(self):
            return tok

        def hold(self, name, model):
            pass

        def reference(self):
            return ref

        def policy(self):
            return copy.deepcopy(ref).train().requires_grad_(True)

        def sft_path(self):
            return sft

        def preferences(self):
            return prefs

        def prompts(self):
            return {"train": list(zip(prompts, prefs.prompt_ids, strict=True))}

        def gold(self):
            return lambda texts, prompt_texts: np.array([len(t) % 3 - 1.0 for t in texts])

        def derived(self, name, build, code, tensors=False):
            return build()

    return Ctx()


class _LMEval:
    def due(self, step):
        return False

    def final(self, step, model):
        raise AssertionError("a diverged run must not reach its final evaluation")


@pytest.mark.parametrize(
    "algo,params,expected",
    [
        ("lm-dpo", {"batch_size": 4}, r"^diverged at update 2: loss is nan$"),
        ("preferred-ft", {"batch_size": 4}, r"^diverged at update 2: loss is nan$"),
        ("rlhf-ppo", {"batch_size": 4, "minibatch_size": 4, "ppo_epochs": 1, "reward": "gold"},
         r"^diverged at update 1: parameter actor\.transformer\.wte\.weight has nan$"),
        ("lm-pg", {"prompts_per_batch": 2, "k": 2, "reward": "gold"},
         r"^diverged at update 1: parameter transformer\.wte\.weight has nan$"),
    ],
)  # fmt: skip
def test_lm_loops_check_losses_and_parameters(lm_ctx, algo, params, expected):
    from bench.algos import ALGORITHMS

    a = ALGORITHMS[algo]
    with poison(NAN), pytest.raises(Diverged, match=expected):
        a.train(None, a.config(**params), 6, 0, _LMEval(), Recorder(), lm_ctx)


def test_trl_dpo_parameters_are_checked_after_each_step(lm_ctx):
    pytest.importorskip("trl")
    from bench.algos import ALGORITHMS

    a = ALGORITHMS["trl-dpo"]
    with poison(NAN), pytest.raises(Diverged, match=r"^diverged at update 1: parameter .* has nan$"):
        a.train(None, a.config(batch_size=4, precompute_ref=False), 4, 0, _LMEval(), Recorder(), lm_ctx)


def test_sft_training_divergence_is_reported(lm_ctx):
    from bench.pipeline.lm import train_sft
    from bench.pipeline.recipes import SFTRecipe

    model = copy.deepcopy(lm_ctx.reference()).requires_grad_(True)
    docs = lm_ctx.preferences().prompt_text
    with poison(NAN), pytest.raises(Diverged, match=r"^diverged at SFT update 1: parameter .* has nan$"):
        train_sft(model, lm_ctx.tokenizer(), docs, SFTRecipe(steps=3, batch_size=2), 0, lambda _: None)


def test_saved_models_are_safetensors_and_load_as_such(lm_ctx):
    from bench.lm.models import load_lm, load_scalar_model, scalar_model_from

    files = {p.name for p in Path(lm_ctx.sft_dir).iterdir()}
    assert "model.safetensors" in files and "pytorch_model.bin" not in files
    load_lm(str(lm_ctx.sft_dir))
    scalar_model_from(str(lm_ctx.sft_dir), 1, 0).save_pretrained(lm_ctx.sft_dir.parent / "rm")
    load_scalar_model(str(lm_ctx.sft_dir.parent / "rm"))
    # a folder with only pickled weights is refused (use_safetensors=True on local folders)
    pickled = lm_ctx.sft_dir.parent / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((lm_ctx.sft_dir / "config.json").read_text())
    torch.save(load_lm(str(lm_ctx.sft_dir)).state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(OSError):
        load_lm(str(pickled))


# -- Distributed PPO: all workers stop together ------------------------------------------------


def _rank_main(rank: int, init: str, out) -> None:
    import torch.distributed as dist

    from bench.algos.dppo import Replicas

    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=2)
    try:
        group = Replicas(rank, 2)
        check_finite(10, {"loss": 0.5}, group=group)  # nobody diverged: nobody raises
        try:  # only rank 1's loss is NaN; rank 0 must not wait for it in a later collective
            check_finite(20, {"loss": NAN if rank else 0.5}, group=group)
            out.put((rank, None))
        except Diverged as e:
            out.put((rank, str(e)))
    finally:
        dist.destroy_process_group()


def test_divergence_decision_is_collective(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    procs = [ctx.Process(target=_rank_main, args=(r, str(tmp_path / "rdv"), out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    got = dict(out.get() for _ in range(2))
    assert got == {
        0: "diverged at env step 20: loss is nan (worker 1)",
        1: "diverged at env step 20: loss is nan",
    }


@pytest.mark.slow
def test_two_worker_dppo_divergence_stops_every_worker():
    from bench.algos import dppo

    cfg = dppo.DPPOConfig(workers=2, n_envs=2, n_steps=64, batch_size=64, n_epochs=2, lr=1000.0)
    rec = Recorder()
    faulthandler.dump_traceback_later(120, exit=True)  # a hang fails loudly instead of waiting 30 min
    try:
        with pytest.raises(Diverged) as info:
            dppo.train(get_task("Pendulum-v1"), cfg, 4096, 0, _evaluator("Pendulum-v1", rec), rec)
    finally:
        faulthandler.cancel_dump_traceback_later()
    # both workers' first rollouts (2 x 2 envs x 64 steps) in the step count
    assert (info.value.step, info.value.reason) == (256, "policy loss is nan")
    assert not mp.active_children()


# -- through `bench run`: failed with the step, the rest of the suite goes on -------------------

SUITE = """
name: diverge
version: 1
tasks: [Pendulum-v1]
seeds: [0]
env_steps: 512
evaluation: {eval_every: 128, eval_episodes: 2, temperatures: [0.0]}
algorithms:
  - algo: pg
    label: pg-diverges
    params: {n_envs: 2, n_steps: 64, lr: 1000.0}
  - algo: pg
    params: {n_envs: 2, n_steps: 64}
"""


def test_a_diverging_run_fails_with_its_step_and_the_suite_goes_on(write_suite, tmp_path, capsys):
    from bench.cli import main
    from bench.results import Results, leaderboard
    from bench.store import Store

    store = tmp_path / "bench.sqlite"
    assert main(["run", str(write_suite(SUITE)), "--store", str(store), "-q"]) == 1
    err = capsys.readouterr().err
    assert "1 done, 1 failed" in err and ": diverged at env step 256: policy loss is nan" in err
    db = sqlite3.connect(store)
    runs = {r[0]: r[1:] for r in db.execute("SELECT algorithm, status, error, env_steps, key FROM runs")}
    assert runs["pg"][0] == "done" and runs["pg"][2] >= 512
    status, error, env_steps, key = runs["pg-diverges"]
    # rollouts of 2 envs x 64 steps (all valid: Pendulum episodes last 200 steps); the first
    # update sends log std to +-1000, so the second rollout's log-probabilities are NaN
    assert status == "failed" and error == "diverged at env step 256: policy loss is nan"
    assert env_steps == 2 * 2 * 64
    # the records up to the divergence are kept: the evaluation and curves at step 128
    evals = db.execute("SELECT step, metric FROM evals WHERE run_key=?", (key,)).fetchall()
    assert (128, "eval/return") in evals and max(s for s, _ in evals) == 128
    curves = db.execute("SELECT DISTINCT step FROM curves WHERE run_key=?", (key,)).fetchall()
    assert curves == [(128,)]
    db.close()
    board = leaderboard(Results.from_store(Store(store), "diverge"), reps=50).set_index("algorithm")
    assert board.loc["pg-diverges", "failed"] == 1 and board.loc["pg", "failed"] == 0


# -- artifacts load with weights_only=True --------------------------------------------------------


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")  # unpickling would create the marker file


@pytest.mark.parametrize("fmt", ["torch", "pickle"])
def test_a_malicious_cache_file_is_not_executed_but_rebuilt(tmp_path, fmt):
    marker, path = tmp_path / "pwned", tmp_path / "artifact.pt"
    if fmt == "torch":
        torch.save({"state_dict": _Evil(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Evil(marker), protocol=2))  # torch.load's own protocol
    assert not marker.exists()
    data, built = cached(path, lambda: {"x": torch.ones(2), "n": 3, "checks": [(1, 2.0)]})
    assert built and not marker.exists()
    assert torch.equal(data["x"], torch.ones(2))
    again, built = cached(path, lambda: pytest.fail("rebuilt a good artifact"))
    assert not built and again["n"] == 3 and again["checks"] == [(1, 2.0)] and not marker.exists()


def test_an_artifact_that_would_not_load_safely_is_not_saved(tmp_path):
    with pytest.raises(TypeError, match="not plain data: Unsupported global: .*numpy"):
        cached(tmp_path / "a.pt", lambda: {"x": np.zeros(3)})
    assert not list(tmp_path.glob("a.pt*[!k]"))  # neither the artifact nor its temporary file


def test_alignment_artifacts_are_plain_data(alignment):
    """Reference, preferences and reward model load with weights_only=True (no rebuild)."""
    from bench.algos.reward_model import RewardModelConfig, load_reward_model
    from bench.cache import load_artifact

    load_reward_model(alignment, None, RewardModelConfig(epochs=1))
    files = sorted(alignment.root.glob("*.pt"))
    assert {f.name.split("-s0-")[0] for f in files} == {"reference", "preferences", "reward-model"}
    for f in files:
        assert load_artifact(f) is not None, f
