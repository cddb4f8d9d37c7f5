"""The project's TRPO: conjugate gradient against sb3-contrib's solver, the Fisher-vector product
against the explicit Hessian of the KL, and a policy step that stays inside the trust region."""

import pytest
import torch

from bench.algos import trpo
from bench.control.policies import ActorCritic


def test_conjugate_gradient_solves_and_equals_sb3_contrib():
    utils = pytest.importorskip("sb3_contrib.common.utils")
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x = trpo.conjugate_gradient(lambda v: a @ v, b, iters=6, tol=0.0)
    torch.testing.assert_close(a @ x, b, rtol=0, atol=1e-9)
    # a truncated solve (3 iterations) from sb3-contrib's random start is the same as its solver's
    torch.manual_seed(5)
    x0 = 1e-4 * torch.randn_like(b)
    ours = trpo.conjugate_gradient(lambda v: a @ v, b, iters=3, x0=x0)
    torch.manual_seed(5)
    theirs = utils.conjugate_gradient_solver(lambda v: a @ v, b, max_iter=3)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("continuous", [False, True])
def test_fisher_vector_product_is_the_hessian_of_the_kl(continuous):
    torch.manual_seed(0)
    model = ActorCritic(3, 2, continuous, hidden_sizes=(4,)).double()
    obs = torch.randn(7, 3, dtype=torch.float64)
    with torch.no_grad():
        old = model.policy(obs)
    old_log_std = model.log_std.detach().clone() if continuous else None
    params = list(model.pi.parameters()) + ([model.log_std] if continuous else [])
    shapes = [p.shape for p in params]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def kl_of(flat):
        chunks, i = [], 0
        for s in shapes:
            n = int(torch.tensor(s).prod())
            chunks.append(flat[i : i + n].view(s))
            i += n
        w0, b0, w1, b1 = chunks[:4]
        x = torch.tanh(obs @ w0.T + b0) @ w1.T + b1
        if continuous:
            return _gauss_kl(old, old_log_std, x, chunks[4]).mean()
        return model.kl(old, x).mean()

    hessian = torch.autograd.functional.hessian(kl_of, flat0)
    v = torch.randn(len(flat0), dtype=torch.float64)
    product = trpo.fisher_vector_product(
        lambda: model.kl(old, model.policy(obs), old_log_std).mean(), params, 0.1
    )
    torch.testing.assert_close(product(v), hessian @ v + 0.1 * v, rtol=1e-9, atol=1e-12)


def _gauss_kl(old_mean, old_log_std, mean, log_std):
    from bench.control.policies import gaussian_kl

    return gaussian_kl(old_mean, old_log_std, mean, log_std)


def test_a_policy_step_improves_the_surrogate_inside_the_trust_region():
    torch.manual_seed(1)
    model = ActorCritic(4, 3, False, hidden_sizes=(16,))
    obs = torch.randn(256, 4)
    with torch.no_grad():
        params = model.policy(obs)
        actions = torch.distributions.Categorical(logits=params).sample()
        old_logp = model.log_prob(params, actions)
    adv = torch.randn(256)
    adv = (adv - adv.mean()) / adv.std()
    cfg = trpo.TRPOConfig(target_kl=0.01, cg_max_steps=15, cg_damping=0.1)
    info = trpo.policy_step(model, obs, actions, old_logp, params, adv, cfg)
    with torch.no_grad():
        new = model.policy(obs)
        kl = float(model.kl(params, new).mean())
        surrogate = float((torch.exp(model.log_prob(new, actions) - old_logp) * adv).mean())
    assert info["accepted"] == 1.0 and 0 < kl <= 0.01
    assert info["kl"] == pytest.approx(kl) and surrogate > 0.0  # the surrogate at θ_old is 0 (mean A = 0)


# -- GRPO on control: groups share their start state ----------------------------------------------


def test_a_group_of_episodes_starts_from_one_state():
    import gymnasium as gym
    import numpy as np

    from bench.algos.grpo import run_groups
    from bench.control.policies import ObsNormalizer

    torch.manual_seed(0)
    model = ActorCritic(4, 2, False, hidden_sizes=(8,))
    envs = [gym.make("CartPole-v1") for _ in range(6)]
    ep = run_groups(
        envs, model, ObsNormalizer((4,), enabled=False), [11, 12], 3, torch.Generator().manual_seed(0)
    )
    first = ep.obs[:, 0].numpy()
    assert np.array_equal(first[0], first[1]) and np.array_equal(first[0], first[2])
    assert np.array_equal(first[3], first[5]) and not np.array_equal(first[0], first[3])
    # each episode's steps are masked where it has ended; its return counts its steps (CartPole: +1 each)
    assert ep.returns.tolist() == ep.mask.sum(1).float().tolist()
    assert len(set(ep.returns.tolist())) > 1  # the members of a group act differently
