"""Alignment pieces with exact values: KL to the reference, DPO/IPO losses, Bradley-Terry
labels, reward-model training, the adaptive KL controller, artifact caching."""

import math

import numpy as np
import pytest
import torch

from bench.algos import losses
from bench.algos.aligned import sequence_logp
from bench.algos.reward_model import RewardModelConfig, train_reward_model
from bench.artifacts import SegmentPreferences
from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct, categorical_kl, gaussian_kl
from bench.control.tasks import get_task
from bench.evaluation import _act_with_kl, play_episodes
from bench.pipeline.control import ControlPipeline, _build_preferences
from bench.pipeline.recipes import PreferenceRecipe


def _policy(obs_dim, action_dim, continuous, seed, log_std=0.0):
    torch.manual_seed(seed)
    model = ActorCritic(obs_dim, action_dim, continuous, (16,), "tanh", False, log_std)
    return PolicyAct(model, ObsNormalizer((obs_dim,), False), torch.Generator().manual_seed(seed))


# -- KL(pi || pi_ref) -----------------------------------------------------------------------


@pytest.mark.parametrize("task_id,continuous", [("CartPole-v1", False), ("Pendulum-v1", True)])
def test_kl_of_the_reference_against_itself_is_exactly_zero(task_id, continuous):
    task = get_task(task_id)
    env = task.make_vec(3)
    dims = (env.single_observation_space.shape[0], 1 if continuous else 2)
    ref = _policy(*dims, continuous, seed=0)
    ep = play_episodes(ref, env, seed=5, temperature=1.0, reference=ref)
    env.close()
    assert (ep.returns != 0).all()
    assert (ep.kl == 0.0).all() and (ep.kl_k1 == 0.0).all()


def test_the_proxy_return_is_the_learned_rewards_sum_along_each_episode():
    """A proxy of 1 per step sums to the episode length, which on CartPole is the return; a proxy
    of the normalised observation's first coordinate and the action sums as computed by hand."""
    task = get_task("CartPole-v1")
    env = task.make_vec(4)
    policy = _policy(4, 2, False, seed=1)
    ep = play_episodes(policy, env, seed=9, temperature=1.0, proxy=lambda obs, act: torch.ones(len(obs)))
    assert np.array_equal(ep.proxy, ep.returns) and (ep.returns > 1).all()
    seen = []

    def proxy(obs, actions):
        seen.append((obs.numpy().copy(), actions.numpy().copy()))
        return obs[:, 0] + actions.float()

    again = play_episodes(_policy(4, 2, False, seed=1), env, seed=9, temperature=1.0, proxy=proxy)
    env.close()
    assert np.array_equal(again.returns, ep.returns)  # the same episodes
    lengths = ep.returns.astype(int)
    by_hand = [sum(float(o[i, 0]) + float(a[i]) for o, a in seen[: lengths[i]]) for i in range(4)]
    assert np.allclose(again.proxy, by_hand, rtol=0, atol=1e-5)


def _mc_check(policy: PolicyAct, ref: PolicyAct, obs: np.ndarray, temperature: float, n: int = 40_000):
    """Per-step exact KL from the evaluator vs the Monte-Carlo mean of its k1 samples."""
    batch = np.repeat(obs[None], n, axis=0)
    _, step_kl, step_k1 = _act_with_kl(policy, ref, batch, temperature)
    assert np.allclose(step_kl, step_kl[0])
    se = step_k1.std() / math.sqrt(n)
    assert abs(step_k1.mean() - step_kl[0]) < 3 * se, (step_k1.mean(), step_kl[0], se)
    return float(step_kl[0])


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_categorical_kl_matches_closed_form_and_monte_carlo(temperature):
    policy, ref = _policy(4, 3, False, seed=1), _policy(4, 3, False, seed=2)
    with torch.no_grad():  # larger logits so the KL is far from zero
        policy.model.pi[-1].weight.mul_(8.0)
    obs = np.array([0.3, -0.2, 0.5, 0.1], np.float32)
    kl = _mc_check(policy, ref, obs, temperature)
    with torch.no_grad():
        p = torch.softmax(policy.dist(obs[None])[0] / temperature, -1).numpy()
        q = torch.softmax(ref.dist(obs[None])[0], -1).numpy()
    assert kl == pytest.approx(float((p * np.log(p / q)).sum()), rel=1e-5)
    assert kl > 0.01


@pytest.mark.parametrize("temperature", [1.0, 1.5])
def test_gaussian_kl_matches_closed_form_and_monte_carlo(temperature):
    policy, ref = _policy(3, 2, True, seed=1, log_std=-0.3), _policy(3, 2, True, seed=2, log_std=0.2)
    with torch.no_grad():
        policy.model.pi[-1].weight.mul_(100.0)
    obs = np.array([0.4, -0.7, 0.2], np.float32)
    kl = _mc_check(policy, ref, obs, temperature)
    with torch.no_grad():
        m1, m2 = policy.dist(obs[None])[0].numpy(), ref.dist(obs[None])[0].numpy()
    s1, s2 = np.exp(-0.3) * temperature, np.exp(0.2)
    by_hand = np.sum(np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5)
    assert kl == pytest.approx(float(by_hand), rel=1e-5)


def test_kl_functions_are_zero_on_identical_distributions():
    logits = torch.randn(5, 4)
    assert (categorical_kl(logits, logits) == 0).all()
    mean, log_std = torch.randn(5, 2), torch.randn(2)
    assert (gaussian_kl(mean, log_std, mean, log_std) == 0).all()


# -- DPO family ---------------------------------------------------------------------------------


def test_dpo_loss_equals_the_formula_by_hand():
    lw, lrw, ll, lrl, beta = -3.0, -3.5, -2.0, -1.2, 0.5
    margin = (lw - lrw) - (ll - lrl)  # 0.5 - (-0.8) = 1.3
    expected = -math.log(1.0 / (1.0 + math.exp(-beta * margin)))
    got = losses.dpo_loss(torch.tensor([lw - lrw]), torch.tensor([ll - lrl]), beta)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # IPO: (margin - 1/(2 beta))^2 ; hinge: max(0, 1 - beta margin)
    ipo = losses.ipo_loss(torch.tensor([lw - lrw]), torch.tensor([ll - lrl]), beta)
    assert float(ipo) == pytest.approx((1.3 - 1.0) ** 2, rel=1e-6)
    hinge = losses.hinge_loss(torch.tensor([lw - lrw]), torch.tensor([ll - lrl]), beta)
    assert float(hinge) == pytest.approx(1 - 0.65, rel=1e-6)
    assert set(losses.PREFERENCE_LOSSES) == {"dpo", "ipo", "ipo-mean", "hinge"}


def _tiny_preferences():
    """Two segments (H = 3, the second ends after 2 steps): pair 0 prefers segment 0."""
    obs = torch.tensor([[[0.1, 0.2], [0.3, -0.1], [0.0, 0.5]], [[-0.2, 0.1], [0.4, 0.4], [0.0, 0.0]]])
    actions = torch.tensor([[0, 1, 1], [1, 0, 0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    returns = torch.tensor([3.0, 2.0])
    return SegmentPreferences(obs, actions, mask, returns, torch.tensor([0]), torch.tensor([1]), 1)


def test_sequence_logp_and_dpo_on_segments_by_hand():
    prefs = _tiny_preferences()
    policy, ref = _policy(2, 2, False, seed=3), _policy(2, 2, False, seed=4)
    with torch.no_grad():
        policy.model.pi[-1].weight.mul_(50.0)

    def by_hand(model, k):
        total = 0.0
        for t in range(3):
            if prefs.mask[k, t] == 0:
                continue
            logits = model.policy(prefs.obs[k, t][None])[0]
            total += float(torch.log_softmax(logits, -1)[prefs.actions[k, t]].detach())
        return total

    with torch.no_grad():
        got = sequence_logp(policy.model, prefs, torch.tensor([0, 1]))
    assert got.tolist() == pytest.approx([by_hand(policy.model, 0), by_hand(policy.model, 1)], rel=1e-5)

    beta = 0.7
    ratio_w = sequence_logp(policy.model, prefs, prefs.winner) - by_hand(ref.model, 0)
    ratio_l = sequence_logp(policy.model, prefs, prefs.loser) - by_hand(ref.model, 1)
    loss = losses.dpo_loss(ratio_w, ratio_l, beta)
    h = (by_hand(policy.model, 0) - by_hand(ref.model, 0)) - (
        by_hand(policy.model, 1) - by_hand(ref.model, 1)
    )
    assert float(loss.detach()) == pytest.approx(-math.log(1 / (1 + math.exp(-beta * h))), rel=1e-5)

    # one gradient step moves the chosen segment's log-probability up and the rejected one's down
    before_w, before_l = by_hand(policy.model, 0), by_hand(policy.model, 1)
    opt = torch.optim.SGD(policy.model.pi.parameters(), lr=0.05)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert by_hand(policy.model, 0) > before_w
    assert by_hand(policy.model, 1) < before_l


# -- preferences and reward model ---------------------------------------------------------------


def _cartpole_prefs(label_temperature, n_pairs=200, seed=0):
    task = get_task("CartPole-v1")
    ref = _policy(4, 2, False, seed=seed)
    recipe = PreferenceRecipe(
        n_pairs=n_pairs, segment_length=20, label_temperature=label_temperature, episodes=40
    )
    return _build_preferences(task, ref, recipe, seed)


def test_deterministic_labels_prefer_the_higher_true_return():
    data = _cartpole_prefs(0.0)
    r = data["returns"]
    assert (r[data["winner"]] > r[data["loser"]]).all()
    assert len(data["winner"]) == 200 and data["n_train"] == 160
    # CartPole segments are shorter only where the pole fell: return = number of real steps
    assert torch.equal(data["mask"].sum(1), r)
    assert data["obs"].shape == (400, 20, 4)


def test_bradley_terry_labels_follow_sigma_of_the_return_gap():
    tau = 3.0
    data = _cartpole_prefs(tau, n_pairs=1500)
    r = data["returns"]
    gap = (r[data["winner"]] - r[data["loser"]]).abs()
    agree = (r[data["winner"]] > r[data["loser"]]).float()
    p = torch.sigmoid(gap / tau)  # probability the better segment is labelled the winner
    se = math.sqrt(float((p * (1 - p)).sum())) / len(p)
    assert abs(float(agree.mean() - p.mean())) < 3 * se + 1e-9
    assert float(agree.mean()) < 1.0


def test_reward_model_learns_the_preferences_and_reports_heldout_accuracy():
    data = _cartpole_prefs(0.0, n_pairs=300)
    prefs = SegmentPreferences(
        *(data[k] for k in ("obs", "actions", "mask", "returns", "winner", "loser", "n_train"))
    )
    out = train_reward_model(
        prefs, None, RewardModelConfig(epochs=40), seed=0, action_dim=2, continuous=False
    )
    assert out["n_pairs"] == 240 and out["heldout_pairs"] == 60
    assert out["accuracy"] >= 0.85 and out["train_accuracy"] >= 0.9
    assert out["accuracy"] == out["gold_accuracy"]  # tau = 0: labels are the true order


def test_adaptive_kl_coefficient_by_hand():
    # kl twice the target: error clipped at +0.2; 1000 of 10000 steps -> x (1 + 0.02)
    assert losses.adaptive_kl_coef(0.5, 0.2, 0.1, 1000, 10_000) == pytest.approx(0.51)
    assert losses.adaptive_kl_coef(0.5, 0.09, 0.1, 1000, 10_000) == pytest.approx(
        0.5 * (1 - 0.1 * 0.1)
    )  # error -0.1


# -- cached artifacts ---------------------------------------------------------------------------


def test_reference_and_preferences_are_built_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    task = get_task("CartPole-v1")
    recipe = {
        "reference": {
            "env_steps": 1024,
            "target_return": None,
            "check_every": 1024,
            "check_episodes": 2,
            "params": {"n_envs": 4, "n_steps": 64},
        },  # fmt: skip
        "preferences": PreferenceRecipe(n_pairs=20, segment_length=10, episodes=4).model_dump(),
    }
    logs = []
    ctx = ControlPipeline(task, recipe, seed=3, log=logs.append)
    ref = ctx.reference()
    prefs = ctx.preferences()
    assert "trained" in logs[0] and "built" in logs[1]
    again = ControlPipeline(task, recipe, seed=3, log=logs.append)
    ref2 = again.reference()
    assert "loaded" in logs[2]
    for a, b in zip(ref.model.state_dict().values(), ref2.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(again.preferences().winner, prefs.winner) and "loaded" in logs[3]
    # another seed or recipe is another artifact
    other = ControlPipeline(
        task, {**recipe, "preferences": {**recipe["preferences"], "n_pairs": 30}}, seed=3, log=logs.append
    )
    assert other.ref_hash == ctx.ref_hash and other.pref_hash != ctx.pref_hash
    assert len(list(tmp_path.glob("CartPole-v1/*.pt"))) == 2
    # other code (an edit of the reference training's path) is another artifact too
    import bench.pipeline.keys as keys

    monkeypatch.setattr(keys, "artifact_code", lambda module: "0123456789ab")
    edited = ControlPipeline(task, recipe, seed=3, log=logs.append)
    assert edited.ref_hash != ctx.ref_hash and edited.pref_hash != ctx.pref_hash
