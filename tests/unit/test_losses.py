"""Hand-computed checks of the return/advantage estimators and policy-gradient losses."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from bench.algos import losses

F64 = torch.float64


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=F64)


# ---------------------------------------------------------------------------------------------
# GAE
# ---------------------------------------------------------------------------------------------

# column 0: the episode ends at t=1 (done), a new one starts at t=2; column 1: no episode end.
R0 = [1.0, 2.0, 3.0]
V0 = [0.5, 1.0, 1.5, 2.0]
R1 = [-1.0, 0.5, 2.0]
V1 = [0.2, -0.3, 0.7, 1.1]
REWARDS = t([[R0[0], R1[0]], [R0[1], R1[1]], [R0[2], R1[2]]])
VALUES = t([[V0[0], V1[0]], [V0[1], V1[1]], [V0[2], V1[2]], [V0[3], V1[3]]])
DONES = torch.tensor([[False, False], [True, False], [False, False]])


def _gae_expected(g: float, lam: float) -> torch.Tensor:
    # column 0 (done at t=1: no bootstrap from v[2] and nothing flows back from t=2)
    r0, r1, r2 = R0
    v0, v1, v2, v3 = V0
    d2 = r2 + g * v3 - v2
    d1 = r1 - v1
    d0 = r0 + g * v1 - v0
    a2 = d2
    a1 = d1
    a0 = d0 + g * lam * a1
    col0 = [a0, a1, a2]
    # column 1 (no done)
    r0, r1, r2 = R1
    v0, v1, v2, v3 = V1
    d2 = r2 + g * v3 - v2
    d1 = r1 + g * v2 - v1
    d0 = r0 + g * v1 - v0
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    col1 = [a0, a1, a2]
    return t([[col0[i], col1[i]] for i in range(3)])


def test_gae_hand_computed_with_done_mid_column():
    g, lam = 0.9, 0.8
    adv, ret = losses.gae(REWARDS, VALUES, DONES, g, lam)
    expected = _gae_expected(g, lam)
    assert adv.shape == (3, 2)
    assert_close(adv, expected)
    assert_close(ret, expected + VALUES[:3])
    # spot-check one entry written out numerically: column 0, t=0 = (1 + .9*1 - .5) + .72*(2 - 1)
    assert adv[0, 0].item() == pytest.approx(1.4 + 0.72 * 1.0)


def test_gae_lambda_one_is_discounted_return_minus_value():
    g = 0.9
    adv, ret = losses.gae(REWARDS, VALUES, DONES, g, 1.0)
    r0, r1, r2 = R0
    v0, v1, v2, v3 = V0
    col0 = [r0 + g * r1 - v0, r1 - v1, r2 + g * v3 - v2]
    r0, r1, r2 = R1
    v0, v1, v2, v3 = V1
    col1 = [
        r0 + g * r1 + g**2 * r2 + g**3 * v3 - v0,
        r1 + g * r2 + g**2 * v3 - v1,
        r2 + g * v3 - v2,
    ]
    expected = t([[col0[i], col1[i]] for i in range(3)])
    assert_close(adv, expected)
    assert_close(ret, expected + VALUES[:3])
    # and the returns are the bootstrapped reward-to-go
    assert_close(ret, losses.reward_to_go(REWARDS, DONES, g, VALUES[-1]))


def test_gae_lambda_zero_is_one_step_td_error():
    g = 0.9
    adv, ret = losses.gae(REWARDS, VALUES, DONES, g, 0.0)
    not_done = 1.0 - DONES.to(F64)
    td = REWARDS + g * VALUES[1:] * not_done - VALUES[:-1]
    assert_close(adv, td)
    assert_close(ret, td + VALUES[:3])
    # the done entry has no bootstrap: r1 - v1 = 2.0 - 1.0
    assert adv[1, 0].item() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# reward-to-go and truncation bootstrap
# ---------------------------------------------------------------------------------------------


def test_reward_to_go_episode_end_and_bootstrapped_tail():
    g = 0.5
    # column 0: episode ends at t=1, the tail (t=2,3) is still running -> bootstrapped with 10.
    # column 1: episode ends at the last step -> its last_value (100) must be ignored.
    rewards = t([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    dones = torch.tensor([[False, False], [True, False], [False, False], [False, True]])
    last_value = t([10.0, 100.0])
    G = losses.reward_to_go(rewards, dones, g, last_value)
    g3 = 4.0 + g * 10.0  # 9
    g2 = 3.0 + g * g3  # 7.5
    g1 = 2.0  # episode ended: no flow from t=2
    g0 = 1.0 + g * g1  # 2
    h3 = 1.0  # ended: last value ignored
    h2 = 1.0 + g * h3
    h1 = 1.0 + g * h2
    h0 = 1.0 + g * h1
    expected = t([[g0, h0], [g1, h1], [g2, h2], [g3, h3]])
    assert_close(G, expected)
    assert_close(G, t([[2.0, 1.875], [2.0, 1.75], [7.5, 1.5], [9.0, 1.0]]))


def test_reward_to_go_zero_last_value_is_monte_carlo():
    rewards = t([[1.0], [1.0], [1.0]])
    dones = torch.zeros(3, 1, dtype=torch.bool)
    G = losses.reward_to_go(rewards, dones, 0.9, torch.zeros(1, dtype=F64))
    assert_close(G, t([[1.0 + 0.9 + 0.81], [1.0 + 0.9], [1.0]]))


def test_bootstrap_truncated_only_where_truncated():
    g = 0.99
    rewards = t([[1.0, 2.0], [3.0, 4.0]])
    values = t([[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]])
    truncated = torch.tensor([[False, True], [True, False]])
    out = losses.bootstrap_truncated(rewards, values, truncated, g)
    expected = t([[1.0, 2.0 + g * 8.0], [3.0 + g * 9.0, 4.0]])
    assert_close(out, expected)


# ---------------------------------------------------------------------------------------------
# PPO / PG losses
# ---------------------------------------------------------------------------------------------


def test_clipped_surrogate_loss_cases():
    eps = 0.2
    ratios = [1.1, 1.5, 0.5, 1.5]
    advs = [2.0, 1.0, -1.0, -2.0]
    old = [-0.3, -1.2, -0.7, -2.0]
    logp = [o + math.log(r) for o, r in zip(old, ratios, strict=True)]
    # 1: inside the range -> r*A; 2: r > 1+eps, A > 0 -> clipped (1+eps)*A;
    # 3: r < 1-eps, A < 0 -> clipped (1-eps)*A; 4: r > 1+eps, A < 0 -> min picks unclipped r*A.
    terms = [1.1 * 2.0, (1 + eps) * 1.0, (1 - eps) * -1.0, 1.5 * -2.0]
    expected = -sum(terms) / 4
    assert expected == pytest.approx(0.1)

    logp_t = t(logp).requires_grad_(True)
    loss = losses.clipped_surrogate_loss(logp_t, t(old), t(advs), eps)
    assert loss.item() == pytest.approx(expected, abs=1e-12)

    # clipped samples carry no gradient; d(-r A / 4)/d logp = -r A / 4 for the others
    loss.backward()
    expected_grad = [-1.1 * 2.0 / 4, 0.0, 0.0, -1.5 * -2.0 / 4]
    assert_close(logp_t.grad, t(expected_grad))


def test_clipped_surrogate_low_ratio_positive_adv_is_unclipped():
    # r < 1-eps with A > 0: min(r A, (1-eps) A) = r A
    loss = losses.clipped_surrogate_loss(t([math.log(0.5)]), t([0.0]), t([3.0]), 0.2)
    assert loss.item() == pytest.approx(-(0.5 * 3.0))


def test_ratio_surrogate_loss_is_the_clip_removed():
    # the same four samples as above: every one is r*A now, and every one carries its gradient
    ratios, advs, old = [1.1, 1.5, 0.5, 1.5], [2.0, 1.0, -1.0, -2.0], [-0.3, -1.2, -0.7, -2.0]
    logp = t([o + math.log(r) for o, r in zip(old, ratios, strict=True)]).requires_grad_(True)
    loss = losses.ratio_surrogate_loss(logp, t(old), t(advs))
    assert loss.item() == pytest.approx(-(2.2 + 1.5 - 0.5 - 3.0) / 4, abs=1e-12)  # -0.05, not 0.1
    loss.backward()
    assert_close(logp.grad, t([-2.2 / 4, -1.5 / 4, 0.5 / 4, 3.0 / 4]))


def test_kl_penalty_loss_formula():
    old = [0.0, -1.0, -0.5]
    ratios = [1.2, 0.9, 1.0]
    logp = [o + math.log(r) for o, r in zip(old, ratios, strict=True)]
    adv = [1.0, -2.0, 0.5]
    kl = [0.01, 0.02, 0.03]
    beta = 3.0
    mean_ratio_adv = (1.2 * 1.0 + 0.9 * -2.0 + 1.0 * 0.5) / 3
    mean_kl = (0.01 + 0.02 + 0.03) / 3
    expected = -(mean_ratio_adv - beta * mean_kl)
    loss = losses.kl_penalty_loss(t(logp), t(old), t(adv), t(kl), beta)
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(-(-0.1 / 3 - 0.06))


def test_adaptive_kl_beta():
    target, beta = 0.03, 0.4
    low, high = target / 1.5, target * 1.5
    assert losses.adaptive_kl_beta(beta, 0.001, target) == 0.2
    assert losses.adaptive_kl_beta(beta, 1.0, target) == 0.8
    assert losses.adaptive_kl_beta(beta, target, target) == beta
    # exact boundaries keep beta; just outside them changes it
    assert losses.adaptive_kl_beta(beta, low, target) == beta
    assert losses.adaptive_kl_beta(beta, high, target) == beta
    assert losses.adaptive_kl_beta(beta, math.nextafter(low, 0.0), target) == 0.2
    assert losses.adaptive_kl_beta(beta, math.nextafter(high, 1.0), target) == 0.8


def test_value_loss_unclipped():
    values, old, returns = t([1.0, 2.0, 0.0]), t([0.0, 0.0, 0.0]), t([3.0, 1.5, -1.0])
    expected = 0.5 * ((1.0 - 3.0) ** 2 + (2.0 - 1.5) ** 2 + (0.0 + 1.0) ** 2) / 3
    assert losses.value_loss(values, old, returns, None).item() == pytest.approx(expected)
    assert expected == pytest.approx(0.5 * 5.25 / 3)


def test_value_loss_clipped():
    c = 0.2
    values = t([1.0, 1.0, 0.1])
    old = t([0.5, 0.0, 0.0])
    returns = t([2.0, 0.0, 1.0])
    # 1: V moved +0.5 -> clipped to 0.7; clipped error (0.7-2)^2 = 1.69 > unclipped 1.0
    # 2: V moved +1.0 -> clipped to 0.2; unclipped error 1.0 > clipped 0.04
    # 3: V moved +0.1, inside the range: both 0.81
    e1 = max((1.0 - 2.0) ** 2, (0.5 + c - 2.0) ** 2)
    e2 = max((1.0 - 0.0) ** 2, (0.0 + c - 0.0) ** 2)
    e3 = (0.1 - 1.0) ** 2
    expected = 0.5 * (e1 + e2 + e3) / 3
    assert expected == pytest.approx(0.5 * (1.69 + 1.0 + 0.81) / 3)
    assert losses.value_loss(values, old, returns, c).item() == pytest.approx(expected)
    # without clipping the same inputs give a different (smaller) loss
    unclipped = 0.5 * (1.0 + 1.0 + 0.81) / 3
    assert losses.value_loss(values, old, returns, None).item() == pytest.approx(unclipped)


def test_policy_gradient_loss():
    logp, adv = t([-0.5, -1.0, -2.0]), t([2.0, -1.0, 0.5])
    expected = -((-0.5 * 2.0) + (-1.0 * -1.0) + (-2.0 * 0.5)) / 3
    assert losses.policy_gradient_loss(logp, adv).item() == pytest.approx(expected)
    assert expected == pytest.approx(1.0 / 3)


def test_normalize():
    x = t([1.0, 2.0, 3.0, 4.0])
    std = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)  # unbiased: sqrt(5/3)
    expected = t([(v - 2.5) / std for v in [1.0, 2.0, 3.0, 4.0]])
    out = losses.normalize(x)
    assert_close(out, expected)
    assert out.mean().item() == pytest.approx(0.0, abs=1e-12)
    assert out.std().item() == pytest.approx(1.0)
    # a constant input does not divide by zero
    assert_close(losses.normalize(t([3.0, 3.0, 3.0])), t([0.0, 0.0, 0.0]))


def test_schedule():
    assert losses.schedule("linear", 3e-4, 1.0) == pytest.approx(3e-4)
    assert losses.schedule("linear", 3e-4, 0.25) == pytest.approx(7.5e-5)
    assert losses.schedule("linear", 3e-4, 0.0) == 0.0
    assert losses.schedule("constant", 3e-4, 0.25) == 3e-4
    assert losses.schedule("constant", 3e-4, 0.0) == 3e-4


def test_clip_grad_norm_matches_torch():
    from bench.algos.losses import clip_grad_norm_

    torch.manual_seed(0)
    for scale in (0.01, 10.0):  # below and above the threshold
        grads = [torch.randn(3, 4) * scale, torch.randn(5) * scale]
        ref = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(ref, grads, strict=True):
            p.grad = g.clone()
        expected_norm = torch.nn.utils.clip_grad_norm_(ref, 0.5)
        norm = clip_grad_norm_(grads, 0.5)
        assert torch.allclose(norm, expected_norm)
        for p, g in zip(ref, grads, strict=True):
            assert torch.allclose(p.grad, g)


@pytest.mark.parametrize("bootstrap, returns", [(True, [2.0, 2.0]), (False, [1.5, 1.0])])
def test_ppo_time_limit_bootstrap_switch(bootstrap, returns):
    """Two steps of one env, the second a time-limit truncation (rewards 1, 1; V 0.5, 0.5 and 2
    for the final observation; γ 0.5, λ 1). Bootstrapped: r₁ = 1 + 0.5·2 = 2, so R₁ = 2 and
    R₀ = 1 + 0.5·2 = 2. Off (CleanRL's handling): R₁ = 1, R₀ = 1 + 0.5·1 = 1.5."""
    from types import SimpleNamespace

    from bench.algos import ppo
    from bench.control.tasks import get_task

    cfg = ppo.PPOConfig(gamma=0.5, gae_lambda=1.0, time_limit_bootstrap=bootstrap)
    ro = SimpleNamespace(
        rewards=torch.tensor([[1.0], [1.0]]), values=torch.tensor([[0.5], [0.5], [2.0]]),
        truncated=torch.tensor([[False], [True]]), dones=torch.tensor([[False], [True]]),
        valid=torch.tensor([[True], [True]]), obs=torch.zeros(2, 1, 4), actions=torch.zeros(2, 1),
        logp=torch.zeros(2, 1), params=torch.zeros(2, 1, 2),
    )  # fmt: skip
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    _, _, _, _, ret = ppo.prepare(get_task("CartPole-v1"), cfg, ro, None, 2, 10, optimizer, None)
    assert ret.flatten().tolist() == returns
