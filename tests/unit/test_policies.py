"""Temperature sampling, closed-form log-probs/entropies/KLs and running statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence
from torch.testing import assert_close

from bench.control.policies import (
    ActorCritic,
    RunningMeanStd,
    categorical_kl,
    categorical_log_prob_entropy,
    gaussian_kl,
    gaussian_log_prob_entropy,
)

LOGITS = torch.tensor([1.0, 0.0, -1.0, 0.5])
N_SAMPLES = 20000


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _frequencies(temperature: float, seed: int = 0) -> torch.Tensor:
    model = ActorCritic(3, 4, continuous=False)
    params = LOGITS.expand(N_SAMPLES, 4)
    actions = model.sample(params, temperature, _gen(seed))
    assert actions.shape == (N_SAMPLES,)
    return torch.bincount(actions, minlength=4).double() / N_SAMPLES


def _entropy(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * p.log()).sum())


# ---------------------------------------------------------------------------------------------
# categorical
# ---------------------------------------------------------------------------------------------


def test_categorical_temperature_zero_is_argmax():
    model = ActorCritic(3, 4, continuous=False)
    params = torch.tensor([[1.0, 0.0, -1.0, 0.5], [-3.0, 2.0, 1.9, 0.0], [0.0, 0.0, 0.1, 5.0]])
    actions = model.sample(params, 0.0, _gen())
    assert actions.tolist() == [0, 1, 3]


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_categorical_frequencies_match_tempered_softmax(temperature):
    freq = _frequencies(temperature)
    expected = torch.softmax(LOGITS.double() / temperature, -1)
    assert (freq - expected).abs().max().item() < 0.02


def test_categorical_temperature_concentrates_and_flattens():
    cold, warm, hot = _frequencies(0.05), _frequencies(1.0), _frequencies(100.0)
    assert cold[0].item() > 0.99  # argmax of LOGITS is 0
    assert (hot - 0.25).abs().max().item() < 0.02
    # the empirical entropy grows with the temperature, as that of softmax(logits / T) does
    assert _entropy(cold) < _entropy(warm) < _entropy(hot)
    exact = [_entropy(torch.softmax(LOGITS.double() / T, -1)) for T in (0.05, 1.0, 100.0)]
    assert exact[0] < exact[1] < exact[2]
    assert _entropy(warm) == pytest.approx(exact[1], abs=0.02)


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------


def test_gaussian_temperature_zero_is_mean():
    model = ActorCritic(3, 2, continuous=True, log_std_init=-0.5)
    mean = torch.tensor([[0.3, -1.2], [2.0, 0.0]])
    out = model.sample(mean, 0.0, _gen())
    assert torch.equal(out, mean)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_gaussian_sample_std_scales_with_temperature(temperature):
    log_std = torch.tensor([-0.5, 0.3])
    model = ActorCritic(3, 2, continuous=True)
    with torch.no_grad():
        model.log_std.copy_(log_std)
    mean = torch.tensor([0.7, -1.5]).expand(N_SAMPLES, 2)
    with torch.no_grad():
        actions = model.sample(mean, temperature, _gen(1))
    assert actions.shape == (N_SAMPLES, 2)
    expected_std = log_std.exp() * temperature
    std = actions.std(0)
    assert ((std - expected_std).abs() / expected_std).max().item() < 0.05
    assert ((actions.mean(0) - mean[0]).abs() < 0.05 * expected_std + 0.01).all()


# ---------------------------------------------------------------------------------------------
# closed forms against torch.distributions
# ---------------------------------------------------------------------------------------------


def test_categorical_log_prob_entropy_matches_torch():
    g = _gen(3)
    logits = torch.randn(6, 5, generator=g, dtype=torch.float64) * 2
    actions = torch.tensor([0, 4, 2, 1, 3, 4])
    logp, ent = categorical_log_prob_entropy(logits, actions)
    dist = Categorical(logits=logits)
    assert_close(logp, dist.log_prob(actions))
    assert_close(ent, dist.entropy())
    # the ActorCritic method dispatches to it
    model = ActorCritic(3, 5, continuous=False).double()
    logp2, ent2 = model.log_prob_entropy(logits, actions)
    assert_close(logp2, logp)
    assert_close(ent2, ent)


def test_gaussian_log_prob_entropy_matches_torch():
    g = _gen(4)
    mean = torch.randn(6, 3, generator=g, dtype=torch.float64)
    log_std = torch.tensor([-1.0, 0.0, 0.7], dtype=torch.float64)
    actions = mean + torch.randn(6, 3, generator=g, dtype=torch.float64) * 1.5
    logp, ent = gaussian_log_prob_entropy(mean, log_std, actions)
    dist = Normal(mean, log_std.exp().expand_as(mean))
    assert logp.shape == (6,) and ent.shape == (6,)
    assert_close(logp, dist.log_prob(actions).sum(-1))
    assert_close(ent, dist.entropy().sum(-1))


def test_categorical_kl_matches_torch():
    g = _gen(5)
    old = torch.randn(7, 4, generator=g, dtype=torch.float64)
    new = torch.randn(7, 4, generator=g, dtype=torch.float64)
    expected = kl_divergence(Categorical(logits=old), Categorical(logits=new))
    assert_close(categorical_kl(old, new), expected)
    assert_close(categorical_kl(old, old), torch.zeros(7, dtype=torch.float64))


def test_gaussian_kl_matches_torch():
    g = _gen(6)
    old_mean = torch.randn(7, 3, generator=g, dtype=torch.float64)
    new_mean = torch.randn(7, 3, generator=g, dtype=torch.float64)
    old_log_std = torch.tensor([-0.5, 0.2, 1.0], dtype=torch.float64)
    new_log_std = torch.tensor([0.1, -0.3, 0.4], dtype=torch.float64)
    out = gaussian_kl(old_mean, old_log_std, new_mean, new_log_std)
    expected = kl_divergence(
        Normal(old_mean, old_log_std.exp().expand_as(old_mean)),
        Normal(new_mean, new_log_std.exp().expand_as(new_mean)),
    ).sum(-1)
    assert out.shape == (7,)
    assert_close(out, expected)
    # hand value for one 1-D case: log(s1/s0) + (s0^2 + (m0-m1)^2) / (2 s1^2) - 1/2
    one = gaussian_kl(
        torch.tensor([[1.0]], dtype=torch.float64),
        torch.tensor([0.0], dtype=torch.float64),
        torch.tensor([[0.0]], dtype=torch.float64),
        torch.tensor([math.log(2.0)], dtype=torch.float64),
    )
    assert one.item() == pytest.approx(math.log(2.0) + (1.0 + 1.0) / 8.0 - 0.5)


# ---------------------------------------------------------------------------------------------
# running statistics
# ---------------------------------------------------------------------------------------------


def test_running_mean_std_two_batches():
    rng = np.random.default_rng(0)
    a = rng.normal([1.0, -2.0, 5.0], [0.5, 2.0, 3.0], size=(50, 3))
    b = rng.normal([3.0, 0.0, -1.0], [1.0, 0.1, 2.0], size=(70, 3))
    rms = RunningMeanStd((3,))
    rms.update(a)
    rms.update(b)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(rms.mean, both.mean(0), atol=1e-3)
    np.testing.assert_allclose(rms.var, both.var(0), atol=1e-3)
    assert rms.count == pytest.approx(120 + 1e-4)


@pytest.mark.parametrize("continuous", [False, True])
def test_actor_critic_forward_matches_pi_and_value(continuous):
    torch.manual_seed(0)
    model = ActorCritic(3, 2, continuous=continuous, hidden_sizes=(8, 8))
    obs = torch.randn(5, 3)
    params, value = model(obs)
    assert params.shape == (5, 2) and value.shape == (5,)
    assert_close(params, model.pi(obs))
    assert_close(value, model.value(obs))


@pytest.mark.parametrize("gain", [0.01, 1.0])
def test_the_policy_last_layer_is_orthogonal_at_its_gain(gain):
    """The detail Andrychowicz et al. 2021 test: PPO's policy output layer initialised orthogonal
    at gain 0.01 (the default) or 1 (``policy_init_gain``); its rows orthonormal times the gain, the
    hidden layers at sqrt 2 and the value head at 1 either way; the default draws what it always
    drew (the same weights as an ActorCritic built directly)."""
    from bench.algos.ppo import PPOConfig
    from bench.algos.rollout import build_agent
    from bench.control.tasks import get_task
    from bench.recorder import Recorder

    agent = build_agent(get_task("LunarLander-v3"), PPOConfig(policy_init_gain=gain, n_envs=1), 3, Recorder())
    *hidden, last = agent.model._pi_linears
    eye = torch.eye(last.weight.shape[0])
    assert_close(last.weight @ last.weight.T, gain**2 * eye, atol=1e-6 * max(gain**2, 1e-4), rtol=0)
    assert_close(hidden[0].weight.T @ hidden[0].weight, 2.0 * torch.eye(8), atol=1e-5, rtol=0)
    vf_last = agent.model._vf_linears[-1]
    assert_close(vf_last.weight @ vf_last.weight.T, torch.eye(1), atol=1e-6, rtol=0)
    torch.manual_seed(3)
    direct = ActorCritic(8, 4, continuous=False)
    same = all(torch.equal(a, b) for a, b in zip(direct.parameters(), agent.model.parameters(), strict=True))
    assert same is (gain == 0.01)
