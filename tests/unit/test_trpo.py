"""The project's TRPO: conjugate gradient against sb3-contrib's solver, the Fisher-vector product
against the explicit Hessian of the KL, a policy step that stays inside the trust region, and a
policy step whose line search backtracks equal to sb3-contrib's ``TRPO.train`` on the same rollout."""

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
        kl = float(model.kl(new, params).mean())  # KL(π_new ‖ π_old): the line search's direction
        surrogate = float((torch.exp(model.log_prob(new, actions) - old_logp) * adv).mean())
    assert info["accepted"] == 1.0 and 0 < kl < 0.01
    assert info["kl"] == pytest.approx(kl) and surrogate > 0.0  # the surrogate at θ_old is 0 (mean A = 0)


# -- the whole policy step against sb3-contrib's TRPO.train, with backtracking -------------------


def _sb3_trpo_and_ours(seed: int, target_kl: float):
    """sb3-contrib's TRPO on Pendulum-v1 after one rollout (4 envs x 64 steps), and our Gaussian
    actor-critic with its policy weights and log-std."""
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("Pendulum-v1", n_envs=4, seed=seed)
    sb3 = TRPO("MlpPolicy", env, n_steps=64, batch_size=256, target_kl=target_kl, cg_damping=0.1,
               cg_max_steps=15, line_search_shrinking_factor=0.8, line_search_max_iter=10,
               n_critic_updates=1, seed=seed, device="cpu", verbose=0)  # fmt: skip
    _, callback = sb3._setup_learn(256, None)
    sb3.collect_rollouts(sb3.env, callback, sb3.rollout_buffer, n_rollout_steps=64)
    model = ActorCritic(3, 1, True, (64, 64), "tanh", True)
    ex = sb3.policy.mlp_extractor
    pairs = [
        (model.pi[0], ex.policy_net[0]),
        (model.pi[2], ex.policy_net[2]),
        (model.pi[4], sb3.policy.action_net),
    ]
    with torch.no_grad():
        for ours, theirs in pairs:
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
        model.log_std.copy_(sb3.policy.log_std)
    return sb3, model


def _actor_vector(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


@pytest.mark.parametrize(
    "seed, target_kl, tries",
    [
        (1, 1.0, 2),  # the full step's KL(new ‖ old) exceeds δ (its KL(old ‖ new) does not)
        (2, 1.0, 3),  # the first two steps do not improve the surrogate
    ],
)
def test_a_backtracking_policy_step_equals_sb3_contrib_trpo(monkeypatch, seed, target_kl, tries):
    """Same weights, rollout, sample order and conjugate-gradient start as sb3-contrib's
    ``TRPO.train``: the line search rejects the same first steps (KL(π_new ‖ π_old) < δ and a
    surrogate above L(θ_old), strict, the KL in sb3-contrib's ``kl_divergence(distribution,
    old_distribution)`` direction), accepts the same one and ends at the same parameters."""
    pytest.importorskip("sb3_contrib")
    import numpy as np
    import sb3_contrib.trpo.trpo as sb3_trpo
    from stable_baselines3.common.buffers import RolloutBuffer

    sb3, model = _sb3_trpo_and_ours(seed, target_kl)
    buf = sb3.rollout_buffer
    np.random.seed(123)  # the permutation sb3-contrib's RolloutBuffer.get(batch_size=None) draws
    order = torch.from_numpy(np.random.permutation(256))

    def flat(a):  # SB3's order (env-major), then its permutation
        return torch.as_tensor(RolloutBuffer.swap_and_flatten(a)).float()[order]

    obs, actions, old_logp = flat(buf.observations), flat(buf.actions), flat(buf.log_probs).flatten()
    adv = flat(buf.advantages).flatten()
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)  # sb3-contrib's normalisation
    with torch.no_grad():
        old_params = model.policy(obs)

    theirs_kl: list[float] = []  # sb3-contrib's mean KLs: one for the Fisher, then one per try
    kl_divergence = sb3_trpo.kl_divergence

    def recording_kl(p, q):
        out = kl_divergence(p, q)
        theirs_kl.append(float(out.detach().mean()))
        return out

    monkeypatch.setattr(sb3_trpo, "kl_divergence", recording_kl)
    np.random.seed(123)
    torch.manual_seed(7)  # its conjugate gradient starts from 1e-4 x a standard normal draw
    sb3.train()

    ours_kl: list[tuple[float, float]] = []  # per try: KL(new ‖ old) as used, KL(old ‖ new)
    kl_new_old = trpo._kl_new_old

    def recording_new_old(m, old, new, old_log_std=None):
        out = kl_new_old(m, old, new, old_log_std)
        ours_kl.append((float(out.mean()), float(m.kl(old, new, old_log_std).mean())))
        return out

    cg = trpo.conjugate_gradient

    def sb3_start(mvp, b, iters):  # the same draw; sb3's actor vector starts with the log-std
        return cg(mvp, b, iters, x0=torch.roll(1e-4 * torch.randn_like(b), -1))

    monkeypatch.setattr(trpo, "_kl_new_old", recording_new_old)
    monkeypatch.setattr(trpo, "conjugate_gradient", sb3_start)
    start = _actor_vector([*model.pi.parameters(), model.log_std])
    torch.manual_seed(7)
    cfg = trpo.TRPOConfig(target_kl=target_kl, cg_damping=0.1, cg_max_steps=15)
    info = trpo.policy_step(model, obs, actions, old_logp, old_params, adv, cfg)

    their_tries = theirs_kl[1:]
    assert info["accepted"] == 1.0 and sb3.logger.name_to_value["train/is_line_search_success"] == 1.0
    assert info["line_search_steps"] == len(their_tries) == tries  # tries - 1 > 0 backtracks each
    torch.testing.assert_close([k for k, _ in ours_kl], their_tries, rtol=1e-4, atol=1e-6)
    assert info["kl"] == pytest.approx(sb3.logger.name_to_value["train/kl_divergence_loss"], rel=1e-4)
    assert info["kl"] < target_kl
    if seed == 1:  # rejected for its KL in sb3-contrib's direction; the reverse KL would accept it
        assert ours_kl[0][0] > target_kl > ours_kl[0][1]
    ours = _actor_vector([*model.pi.parameters(), model.log_std])
    pol = sb3.policy
    theirs = _actor_vector(
        [*pol.mlp_extractor.policy_net.parameters(), *pol.action_net.parameters(), pol.log_std]
    )
    assert float((ours - start).abs().max()) > 0.01  # a real step was taken
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)
    print(f"tries {tries}: KLs {[round(k, 4) for k in their_tries]}, "
          f"max |Δθ| vs sb3-contrib {float((ours - theirs).abs().max()):.1e}")  # fmt: skip


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
