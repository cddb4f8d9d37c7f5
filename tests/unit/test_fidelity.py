"""Every published number means what its label says: KL-regularised fine-tuning on control (the
KL acts on the policy, the optimised reward is normalised), the return scaler's autoreset steps,
Best-of-N's KL estimate against enumeration, IPO's two forms, and the LM actor without dropout."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch

from bench.algos import losses, ppo
from bench.algos.aligned import KLShaping, PPOGTConfig
from bench.algos.rollout import Rollout, build_agent, reference_episodes
from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct, ReturnScaler, categorical_kl
from bench.control.tasks import get_task
from bench.lm_evaluation import best_of_n_kl_bound, best_of_n_kl_estimate, best_of_n_kl_exact
from bench.recorder import Recorder

# -- the return scaler --------------------------------------------------------------------------


def test_return_scaler_leaves_autoreset_steps_out_of_the_return_and_its_variance():
    gamma = 0.5
    scaler = ReturnScaler(2, gamma, enabled=True)
    # env 0: rewards 1, 2 (episode ends), autoreset step (reward 0, invalid), 4
    # env 1: rewards 1, 1, 1, 1, never ends
    rewards = [np.array([1.0, 1.0]), np.array([2.0, 1.0]), np.array([0.0, 1.0]), np.array([4.0, 1.0])]
    dones = [
        np.array([False, False]),
        np.array([True, False]),
        np.array([False, False]),
        np.array([False, False]),
    ]
    valid = [np.array([True, True]), np.array([True, True]), np.array([False, True]), np.array([True, True])]
    outs = [scaler(r, d, v) for r, d, v in zip(rewards, dones, valid, strict=True)]
    # the discounted returns the running variance saw, by hand (env 0's return restarts at 4)
    seen = [1.0, 1.0, 2.5, 1.5, 1.75, 4.0, 1.875]
    expected_var = np.var(seen)  # population variance; the prior (var 1, count 1e-4) is negligible
    assert scaler.rms.count == pytest.approx(len(seen), abs=1e-3)
    assert scaler.rms.var == pytest.approx(expected_var, rel=1e-3)
    assert outs[2][0] == 0.0  # the autoreset step's reward stays 0
    assert outs[3][0] == pytest.approx(4.0 / math.sqrt(scaler.rms.var + 1e-8))


# -- KL-regularised fine-tuning on control --------------------------------------------------------


def _reference(seed: int = 0) -> PolicyAct:
    task = get_task("CartPole-v1")
    torch.manual_seed(seed)
    model = ActorCritic(4, 2, False, (64, 64), "tanh", True, 0.0)
    return PolicyAct(model, ObsNormalizer((4,), False), torch.Generator().manual_seed(seed)), task


class _NoEvaluation:
    stop = False

    def due(self, step):
        return False

    def final(self, step, act):
        pass


def _states(n: int = 512, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g) * torch.tensor([1.0, 1.0, 0.1, 1.0])


def _mean_kl(model: ActorCritic, ref: PolicyAct, states: torch.Tensor) -> float:
    with torch.no_grad():
        return float(categorical_kl(model.policy(states), ref.model.policy(states)).mean())


class _ZeroReward(torch.nn.Module):
    def forward(self, obs, actions):
        return torch.zeros(obs.shape[:-1])


@pytest.mark.parametrize("kl_penalty", ["reward", "loss"])
def test_a_kl_only_objective_moves_a_perturbed_policy_back_to_the_reference(kl_penalty):
    """Reward 0, penalty c·KL: PPO fine-tuning must pull π(·|s) towards π_ref(·|s) on the states
    it visits. (With the exact per-state KL folded into the reward, the gradient never saw this
    pull: that KL does not depend on the action taken.)"""
    ref, task = _reference()
    cfg = PPOGTConfig(kl_coef=1.0, kl_penalty=kl_penalty, n_envs=8, n_steps=128, batch_size=256,
                      n_epochs=4, lr=3e-3, normalize_reward=True, ent_coef=0.0,
                      rescale_critic=False)  # fmt: skip
    # (reward 0 has no scale: the scaler's divisor sits at its 1e-4 floor, and a critic rescaled by
    # 1e4 would have its value loss take the whole gradient-norm clip)
    perturbed = copy.deepcopy(ref)
    with torch.no_grad():  # push the action logits apart: a policy far from π_ref
        perturbed.model.pi[-1].weight.add_(torch.randn_like(perturbed.model.pi[-1].weight) * 2.0)
    recorder = Recorder()
    agent = build_agent(task, cfg, 0, recorder, init=perturbed)
    states = _states()
    before = _mean_kl(agent.model, ref, states)
    shaping = KLShaping(cfg, agent.model, ref, recorder, reward_model=_ZeroReward())
    ppo.train(task, cfg, 8192, 0, _NoEvaluation(), recorder, agent=agent, shaping=shaping)
    after = _mean_kl(agent.model, ref, states)
    assert before > 0.05
    assert after < 0.6 * before, (before, after)


def _rollout(T=64, N=4, seed=0, scale=1.0) -> Rollout:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(T, N, 4, generator=g)
    ref, _ = _reference()
    params = ref.model.policy(obs.flatten(0, 1)).detach().view(T, N, 2) + 0.3 * torch.randn(
        T, N, 2, generator=g
    )
    actions = torch.randint(0, 2, (T, N), generator=g)
    logp = torch.log_softmax(params, -1).gather(-1, actions[..., None]).squeeze(-1)
    dones = torch.rand(T, N, generator=g) < 0.05
    valid = torch.ones(T, N, dtype=torch.bool)
    valid[1:][dones[:-1]] = False  # the step after an episode end is an autoreset step
    rewards = (torch.rand(T, N, generator=g) + 0.5) * scale * valid
    return Rollout(
        obs, actions, logp, params, torch.zeros(T + 1, N), rewards, dones, torch.zeros_like(dones), valid
    )


def test_the_optimised_reward_is_invariant_to_the_reward_scale():
    """r × k with c × k optimises the same thing: the normalised shaped rewards agree to 1e-3
    (the running variance's prior, var 1 with weight 1e-4, is all that tells them apart)."""
    ref, _ = _reference()
    outs = []
    for k in (1.0, 7.4):
        cfg = PPOGTConfig(kl_coef=0.3 * k, n_envs=4, gamma=0.99, normalize_reward=True)
        shaping = KLShaping(cfg, ref.model, ref, Recorder())
        outs.append(torch.cat([shaping(_rollout(seed=s, scale=k)) for s in range(3)]))
    assert torch.allclose(outs[0], outs[1], rtol=1e-3, atol=1e-6)
    assert outs[0].abs().max() < 10  # and they are O(1), not O(return)


def test_shaped_reward_is_r_minus_c_times_the_sampled_log_ratio_on_valid_steps():
    ref, _ = _reference()
    ro = _rollout()
    cfg = PPOGTConfig(kl_coef=2.0, n_envs=4, normalize_reward=False)
    out = KLShaping(cfg, ref.model, ref, Recorder())(ro)
    ref_logp = torch.log_softmax(ref.model.policy(ro.obs.flatten(0, 1)), -1)
    k1 = (ro.logp.flatten() - ref_logp.gather(-1, ro.actions.flatten()[:, None]).squeeze(-1)).view_as(ro.logp)
    assert torch.allclose(out, (ro.rewards - 2.0 * k1.detach()) * ro.valid.float(), atol=1e-6)
    # kl_penalty: loss leaves the reward alone and adds c / (s·σ) · KL to the policy loss
    cfg = PPOGTConfig(kl_coef=2.0, kl_penalty="loss", n_envs=4, normalize_reward=False)
    shaping = KLShaping(cfg, ref.model, ref, Recorder())
    assert torch.allclose(shaping(ro), ro.rewards * ro.valid.float())
    idx = torch.arange(10)
    params = ro.params.flatten(0, 1)[idx]
    exact = categorical_kl(params, ref.model.policy(ro.obs.flatten(0, 1)[idx])).mean()
    assert float(shaping.policy_loss(idx, params, 4.0).detach()) == pytest.approx(
        float(2.0 / 4.0 * exact.detach()), rel=1e-5
    )


def test_critic_rescale_keeps_scale_times_value_and_puts_rollout_values_in_the_new_units():
    """PopArt's output preservation: after each rollout, s·V(s) is what it was before the scale
    changed, and the rollout's values are those the rescaled critic gives."""
    ref, _ = _reference()
    model = copy.deepcopy(ref.model)
    cfg = PPOGTConfig(kl_coef=0.3, n_envs=4, gamma=0.99, normalize_reward=True)
    shaping = KLShaping(cfg, model, ref, Recorder(), value_scale=2.5)  # π_ref's critic: units of scale 2.5
    probe = torch.randn(16, 4, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = 2.5 * model.value(probe)
    for seed in range(3):
        ro = _rollout(seed=seed, scale=40.0)
        with torch.no_grad():
            ro.values[:-1] = model.value(ro.obs.flatten(0, 1)).view(64, 4)
            ro.values[-1] = model.value(ro.obs[-1])
            given = ro.values.clone()
            s_old = shaping.value_scale
            shaping(ro)
            assert shaping.value_scale == shaping.scale != s_old
            assert torch.allclose(ro.values, given * s_old / shaping.scale, rtol=1e-5, atol=1e-7)
            assert torch.allclose(shaping.scale * model.value(probe), before, rtol=1e-4, atol=1e-5)
            assert torch.allclose(ro.values[:-1], model.value(ro.obs.flatten(0, 1)).view(64, 4), rtol=1e-4,
                                  atol=1e-6)  # fmt: skip
    # without normalisation the critic is brought to raw units once, then left alone
    model = copy.deepcopy(ref.model)
    cfg = PPOGTConfig(kl_coef=0.3, n_envs=4, normalize_reward=False)
    shaping = KLShaping(cfg, model, ref, Recorder(), value_scale=2.5)
    shaping(_rollout())
    with torch.no_grad():
        assert torch.allclose(model.value(probe), before, rtol=1e-5, atol=1e-6)
    # and rescale_critic: false leaves it alone
    model = copy.deepcopy(ref.model)
    cfg = PPOGTConfig(kl_coef=0.3, n_envs=4, normalize_reward=True, rescale_critic=False)
    KLShaping(cfg, model, ref, Recorder(), value_scale=2.5)(_rollout(scale=40.0))
    with torch.no_grad():
        assert torch.equal(2.5 * model.value(probe), before)


def _fine_tune_scaled(ref, task, k: float, env_steps: int) -> ActorCritic:
    """PPO-GT from ``ref`` on the true reward × k with c × k (and a critic in units of k, as a
    reference trained on the reward × k would have)."""
    cfg = PPOGTConfig(kl_coef=0.01 * k, n_envs=8, n_steps=128, batch_size=256, n_epochs=4, lr=1e-3,
                      gamma=0.99, normalize_reward=True, ent_coef=0.0)  # fmt: skip
    recorder = Recorder()
    torch.manual_seed(0)  # the same random stream for both scales
    agent = build_agent(task, cfg, 0, recorder, init=ref)

    class Scaled(KLShaping):
        def __call__(self, ro):
            ro.rewards = ro.rewards * k
            return super().__call__(ro)

    shaping = Scaled(cfg, agent.model, ref, recorder, value_scale=k)
    ppo.train(task, cfg, env_steps, 0, _NoEvaluation(), recorder, agent=agent, shaping=shaping)
    return agent


def test_scale_invariance_of_ppo_gt_training():
    """The same fine-tuning with the true reward × 7.4 (and c × 7.4) takes the same steps: after
    two rollouts the policies agree to 1e-3 (only the running variance's prior tells the scales
    apart)."""
    ref, task = _reference(seed=3)
    short = [_fine_tune_scaled(ref, task, k, 2048).model for k in (1.0, 7.4)]
    for (name, a), b in zip(short[0].named_parameters(), short[1].parameters(), strict=True):
        if name.startswith("pi"):
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name
    assert not torch.allclose(short[0].pi[0].weight, ref.model.pi[0].weight, atol=1e-3)  # it moved


@pytest.mark.slow  # 10 s: two 20k-step fine-tunings
def test_ppo_gt_learns_at_either_reward_scale():
    """After 20k steps both scales have learned (before the reward was normalised, a scale of 7.4
    alone took ppo-gt from 500 to 151). Over 20k steps the two drift apart chaotically, so their
    final returns are compared with π_ref, not with each other."""
    ref, task = _reference(seed=3)
    finals = []
    for k in (1.0, 7.4):
        agent = _fine_tune_scaled(ref, task, k, 20_000)
        act = PolicyAct(agent.model, agent.collector.obs_norm, torch.Generator().manual_seed(1))
        finals.append(np.mean([e[2].sum() for e in reference_episodes(task, act, 16, 5)]))
    start = np.mean([e[2].sum() for e in reference_episodes(task, ref, 16, 5)])
    # measured: π_ref 16.8; k = 1: 254.8, k = 7.4: 288.2 alone, 225.1 and 367.6 after the other tests
    assert min(finals) > 5 * start, (start, finals)


# -- Best-of-N's KL -------------------------------------------------------------------------------


def _bon_by_enumeration(probs, scores, n):
    """KL(π_BoN ‖ π) by enumerating every n-tuple of outcomes (ties: the first sample wins)."""
    k = len(probs)
    bon = np.zeros(k)
    for tup in itertools.product(range(k), repeat=n):
        p = np.prod([probs[i] for i in tup])
        best = max(range(n), key=lambda j: (scores[tup[j]], -j))
        bon[tup[best]] += p
    keep = bon > 0
    return float(np.sum(bon[keep] * np.log(bon[keep] / np.asarray(probs)[keep])))


@pytest.mark.parametrize(
    "probs,scores,n",
    [
        ([0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 1.0, 2.0], 3),  # a tie between two outcomes
        ([0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.0, 1.0], 4),  # a three-way tie at the bottom
        ([0.5, 0.3, 0.2], [3.0, 1.0, 2.0], 5),  # no ties
    ],
)
def test_best_of_n_kl_exact_equals_enumeration_with_ties(probs, scores, n):
    truth = _bon_by_enumeration(probs, scores, n)
    values = sorted(set(scores))
    masses = [sum(p for p, s in zip(probs, scores, strict=True) if s == v) for v in values]
    assert best_of_n_kl_exact(masses, n) == pytest.approx(truth, abs=1e-12)
    assert best_of_n_kl_exact(masses, n) <= best_of_n_kl_bound(n)


def test_best_of_n_kl_on_four_outcomes_is_far_below_the_bound():
    # the example: a 4-outcome policy, N = 64: true KL log 4 = 1.386, the bound 3.175
    assert best_of_n_kl_exact([0.25] * 4, 64) == pytest.approx(math.log(4), abs=1e-6)
    assert best_of_n_kl_bound(64) == pytest.approx(3.1746, abs=1e-4)


def test_best_of_n_kl_estimate_from_samples():
    rng = np.random.default_rng(0)
    probs, scores = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 1.0, 2.0])
    draws = scores[rng.choice(4, size=20_000, p=probs)]
    truth = best_of_n_kl_exact([0.1, 0.5, 0.4], 8)
    assert best_of_n_kl_estimate(draws, 8) == pytest.approx(truth, abs=0.01)
    # all distinct (a continuous score): the bound exactly; all tied: 0; N = 1: 0
    assert best_of_n_kl_estimate(rng.normal(size=64), 16) == pytest.approx(best_of_n_kl_bound(16), abs=1e-9)
    assert best_of_n_kl_estimate(np.zeros(64), 16) == 0.0
    assert best_of_n_kl_estimate(rng.normal(size=8), 1) == 0.0
    # a mixed distribution: an atom of mass 1/2 at the bottom and a continuous upper half. Best-of-N
    # rarely keeps the atom; by hand: atom term g log(g/p) with g = (1/2)^N, plus the integral of the
    # continuous stretch from u = 1/2 to 1
    n = 4
    half = np.concatenate([np.zeros(5000), rng.uniform(1, 2, size=5000)])
    g = 0.5**n
    by_hand = g * math.log(g / 0.5)
    H = lambda u: u**n * math.log(n) + (n - 1) * (u**n * math.log(u) - u**n / n)  # noqa: E731
    by_hand += H(1.0) - H(0.5)
    assert best_of_n_kl_estimate(half, n) == pytest.approx(by_hand, abs=1e-9)


# -- preference losses: IPO's two forms ------------------------------------------------------------


def test_ipo_sum_and_ipo_mean_by_hand():
    rw, rl = torch.tensor([3.0, -1.0]), torch.tensor([1.0, 2.0])
    lw, ll = torch.tensor([4.0, 2.0]), torch.tensor([2.0, 8.0])
    beta = 0.5
    summed = ((rw - rl - 1.0) ** 2).mean()
    mean = ((rw / lw - rl / ll - 1.0) ** 2).mean()
    assert float(losses.PREFERENCE_LOSSES["ipo"](rw, rl, beta)) == pytest.approx(float(summed))
    assert float(losses.PREFERENCE_LOSSES["ipo-mean"](rw, rl, beta, lw, ll)) == pytest.approx(float(mean))
    assert float(losses.PREFERENCE_LOSSES["dpo"](rw, rl, beta, lw, ll)) == pytest.approx(
        float(losses.dpo_loss(rw, rl, beta))
    )  # lengths matter only to per-token rows


# -- the LM actor without dropout -----------------------------------------------------------------


def test_lm_policy_on_identical_weights_has_kl_0_ratio_1_and_dpo_loss_log_2(tmp_path, monkeypatch):
    """π_SFT with dropout 0.1 (as every paper-scale base has): the trainable copy and the frozen
    reference must give the same log-probabilities, so before any update the sequence KL is 0,
    the PPO ratio 1 and the DPO loss log 2."""
    from bench.algos.lm import LMDPOConfig, encode_pairs, frozen_pair_logps, pair_logps, preference_loss
    from bench.lm.corpus import generate_reviews
    from bench.lm.generation import score, sequence_kl
    from bench.lm.models import ModelRecipe, build_tiny_lm
    from bench.lm.tasks import get_lm_task
    from bench.lm.tokenizer import train_tokenizer
    from bench.pipeline.lm import LMPipeline
    from bench.pipeline.recipes import LMSetup

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    tok = train_tokenizer([r.text for r in generate_reviews(300, seed=1)], vocab_size=300)
    sft = build_tiny_lm(ModelRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64, dropout=0.1), tok, seed=0)
    sft.save_pretrained(tmp_path / "sft")
    task = get_lm_task("sentiment")
    ctx = LMPipeline(task, LMSetup().for_task(task), seed=0)
    monkeypatch.setattr(ctx, "sft_path", lambda: tmp_path / "sft")
    policy, ref = ctx.policy(), ctx.reference()
    assert policy.config.resid_pdrop == 0.1  # dropout is in the model; it must be off
    prompts = [tok("The film was")["input_ids"], tok("I watched it")["input_ids"]]
    completions = [tok(" great and long, a lovely time")["input_ids"], tok(" and it was boring")["input_ids"]]
    pad = tok.pad_token_id
    kl, k1 = sequence_kl(score(policy, prompts, completions, pad), score(ref, prompts, completions, pad))
    assert torch.equal(kl, torch.zeros_like(kl)) and torch.equal(k1, torch.zeros_like(k1))
    new = score(policy, prompts, completions, pad, with_grad=True).token_logp
    ratio = torch.exp(new - score(ref, prompts, completions, pad).token_logp)
    assert torch.equal(ratio.detach(), torch.ones_like(ratio))
    pairs = encode_pairs(tok, ["The film was"] * 2, [" great.", " lovely"], [" awful.", " boring, so boring"])
    ref_w, ref_l = frozen_pair_logps(ref, pairs, pad)
    logp_w, logp_l = pair_logps(policy, pairs, pad)
    loss = preference_loss(LMDPOConfig(beta=0.1), logp_w, logp_l, ref_w, ref_l, pairs)
    assert float(loss.detach()) == pytest.approx(math.log(2), abs=1e-7)


def test_lm_log_probs_at_the_sampling_temperature_are_those_of_the_samples():
    """RLHF-PPO and RLOO score their rollouts at the temperature they sampled them at: the
    first-token frequencies of 4,000 samples at T = 0.5 match exp(score at T = 0.5), not T = 1."""
    from bench.lm.corpus import generate_reviews
    from bench.lm.generation import sample, score
    from bench.lm.models import ModelRecipe, build_tiny_lm
    from bench.lm.tokenizer import train_tokenizer

    tok = train_tokenizer([r.text for r in generate_reviews(300, seed=1)], vocab_size=300)
    model = build_tiny_lm(ModelRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64), tok, seed=0).eval()
    with torch.no_grad():
        for p in model.parameters():  # a peaked, non-uniform next-token distribution
            p.mul_(4.0)
    prompt = tok("The film was")["input_ids"]
    n = 4000
    out = sample(model, [prompt] * n, 0.5, 1, tok.eos_token_id, tok.pad_token_id,
                 generator=torch.Generator().manual_seed(0))  # fmt: skip
    first = torch.tensor([c[0] for c in out])
    top = torch.bincount(first, minlength=len(tok)).argsort(descending=True)[:3]
    gaps = []
    for t in top.tolist():
        freq = float((first == t).float().mean())
        at_half = float(score(model, [prompt], [[t]], tok.pad_token_id, temperature=0.5).token_logp.exp())
        at_one = float(score(model, [prompt], [[t]], tok.pad_token_id).token_logp.exp())
        assert freq == pytest.approx(at_half, abs=0.025)
        gaps.append(abs(at_one - at_half))
    assert max(gaps) > 0.1  # the two temperatures are told apart here


def test_the_training_correlation_of_learned_and_true_returns_keeps_being_recorded():
    """train/rm_return_corr: Pearson correlation over the last 64 finished episodes, recorded after
    every rollout that finishes an episode — also once the window is full."""
    ref, _ = _reference()
    recorder = Recorder()
    shaping = KLShaping(PPOGTConfig(n_envs=2), ref.model, ref, recorder)
    rng = np.random.default_rng(0)
    sums = []
    for call in range(50):  # 2 envs x 2 steps, both episodes end at the second step: 2 per call
        true = rng.normal(size=(2, 2))
        learned = true * (1.0 if call < 25 else -1.0)  # the learned reward flips sign halfway
        dones = np.array([[False, False], [True, True]])
        shaping._track_episodes(learned, true, dones, np.ones((2, 2), bool))
        sums += list(zip(learned.sum(0), true.sum(0), strict=True))
    corr = [v for _, _, m, v in recorder.curves if m == "train/rm_return_corr"]
    assert len(corr) == 47  # from the 4th call (8 episodes) on, every call
    assert corr[0] == pytest.approx(1.0) and corr[-1] < 0  # it follows the flip (the window was full)
    assert corr[-1] == pytest.approx(np.corrcoef(np.array(sums[-64:]).T)[0, 1])
