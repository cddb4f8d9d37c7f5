"""TRPO (Schulman et al. 2015): the KL-constrained policy step that PPO approximates, written
against the same rollout machinery as the project's PPO.

Per rollout: GAE advantages (normalised); the surrogate L(θ) = E[π_θ(a|s)/π_old(a|s) · A] and its
gradient g; the natural-gradient direction x ≈ F⁻¹ g by conjugate gradient, with F the Fisher
matrix of the policy (the Hessian of the mean KL(π_old ‖ π_θ) at θ_old, applied to vectors by
double backpropagation, plus ``cg_damping`` · I); the step θ_old + α · sqrt(2 δ / xᵀFx) · x,
α = 1, s, s², … (``line_search_shrinking_factor``), the first whose mean KL(π_θ ‖ π_old) — the
new policy first, as sb3-contrib's ``kl_divergence(distribution, old_distribution)`` — is < δ
(``target_kl``) and whose L is > L(θ_old); no step when none does. Then ``n_critic_updates``
epochs of Adam on the value loss over minibatches. These are the choices of sb3-contrib's TRPO,
so ``trpo`` and ``sb3-trpo`` are the same algorithm written twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses
from bench.algos.guard import check_finite
from bench.algos.rollout import build_agent
from bench.control.policies import HiddenSizes, categorical_kl, gaussian_kl
from bench.control.tasks import Task
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class TRPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n_envs: int = Field(8, ge=1, le=4096, description="parallel environments")
    n_steps: int = Field(256, ge=1, le=1_000_000, description="steps per env per rollout")
    batch_size: int = Field(128, ge=1, le=10_000_000, description="critic minibatch size")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of the value function")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    target_kl: float = Field(
        0.01, gt=0, description="trust-region radius delta: mean KL(pi || pi_old) < delta per step"
    )
    cg_max_steps: int = Field(15, ge=1, le=1000, description="conjugate-gradient iterations")
    cg_damping: float = Field(0.1, ge=0, description="damping added to the Fisher-vector product")
    line_search_shrinking_factor: float = Field(
        0.8, gt=0, lt=1, description="step shrink per line-search try"
    )
    line_search_max_iter: int = Field(10, ge=1, le=1000, description="line-search tries")
    n_critic_updates: int = Field(10, ge=1, le=10_000, description="value-function epochs per rollout")
    normalize_advantage: bool = Field(True, description="normalise advantages per rollout")
    normalize_obs: bool = Field(False, description="running observation normalisation")
    normalize_reward: bool = Field(False, description="scale rewards by return std")
    hidden_sizes: HiddenSizes = Field((64, 64), description="MLP hidden layers")
    activation: Literal["tanh", "relu"] = Field("tanh", description="hidden activation")
    ortho_init: bool = Field(True, description="orthogonal initialisation")
    log_std_init: float = Field(0.0, description="initial log std (Gaussian policies)")


# rl-baselines3-zoo's TRPO hyperparameters (hyperparams/trpo.yml), as for sb3-trpo; Pendulum
# without gSDE (the project's Gaussian policy has a state-independent std), with normalised
# observations and rewards as the project's PPO uses there
TASK_DEFAULTS: dict[str, dict] = {
    "CartPole-v1": dict(n_envs=2, n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98, lr=1e-3,
                        n_critic_updates=20),
    "LunarLander-v3": dict(n_envs=2, n_steps=512, cg_damping=0.01, gae_lambda=0.98, lr=1e-3,
                           n_critic_updates=15),
    "Pendulum-v1": dict(n_envs=2, n_steps=1024, gamma=0.9, n_critic_updates=15, normalize_obs=True,
                        normalize_reward=True),
    "LunarLanderContinuous-v3": dict(n_envs=2, n_steps=1024, n_critic_updates=20, normalize_obs=True,
                                     normalize_reward=True),
}  # fmt: skip


def conjugate_gradient(mvp: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int,
                       tol: float = 1e-10, x0: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """x ≈ A⁻¹ b for a symmetric positive-definite A given as its matrix-vector product, from
    ``x0`` (default 0; sb3-contrib starts from 1e-4 · a standard normal draw)."""
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - mvp(x) if x0 is not None else b.clone()
    p = r.clone()
    rr = r @ r
    for _ in range(iters):
        if rr <= tol:
            break
        ap = mvp(p)
        alpha = rr / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _assign(params: list[torch.Tensor], flat: torch.Tensor) -> None:
    i = 0
    for p in params:
        n = p.numel()
        p.data.copy_(flat[i : i + n].view_as(p))
        i += n


def fisher_vector_product(mean_kl: Callable[[], torch.Tensor], params: list[torch.Tensor], damping: float):
    """v ↦ (∇²_θ mean KL(π_old ‖ π_θ)) v + damping · v at the current θ (= θ_old), by
    differentiating ∇KL · v once more (one graph for all products)."""
    grad_kl = _flat(torch.autograd.grad(mean_kl(), params, create_graph=True))

    def product(v: torch.Tensor) -> torch.Tensor:
        return _flat(torch.autograd.grad(grad_kl @ v, params, retain_graph=True)) + damping * v

    return product


def _kl_new_old(model, old_params: torch.Tensor, new_params: torch.Tensor, old_log_std=None):
    """KL(π_new ‖ π_old) per state [B]: ``model.kl`` with the two policies swapped."""
    if model.continuous:
        return gaussian_kl(new_params, model.log_std, old_params, old_log_std)
    return categorical_kl(new_params, old_params)


def policy_step(model, obs, actions, old_logp, old_params, adv, cfg: TRPOConfig) -> dict[str, float]:
    """One trust-region step of the policy's parameters (in place); returns what it did."""
    old_log_std = model.log_std.detach().clone() if model.continuous else None
    params = list(model.pi.parameters()) + ([model.log_std] if model.continuous else [])

    def surrogate() -> torch.Tensor:
        return (torch.exp(model.log_prob(model.policy(obs), actions) - old_logp) * adv).mean()

    def mean_kl() -> torch.Tensor:
        return model.kl(old_params, model.policy(obs), old_log_std).mean()

    def line_search_kl() -> torch.Tensor:  # KL(π_θ ‖ π_old), sb3-contrib's direction
        return _kl_new_old(model, old_params, model.policy(obs), old_log_std).mean()

    loss = surrogate()
    g = _flat(torch.autograd.grad(loss, params))
    fisher_vector = fisher_vector_product(mean_kl, params, cfg.cg_damping)
    x = conjugate_gradient(fisher_vector, g, cfg.cg_max_steps)
    xfx = float(x @ fisher_vector(x))
    info = {"surrogate": float(loss.detach()), "kl": 0.0, "line_search_steps": 0.0, "accepted": 0.0}
    if not xfx > 0:
        return info
    full = (2 * cfg.target_kl / xfx) ** 0.5 * x
    old = _flat([p.detach() for p in params]).clone()
    with torch.no_grad():
        coef = 1.0
        for i in range(cfg.line_search_max_iter):
            _assign(params, old + coef * full)
            kl, improved = float(line_search_kl()), float(surrogate())
            if kl < cfg.target_kl and improved > float(loss):  # sb3-contrib's test, strict both
                return {"surrogate": improved, "kl": kl, "line_search_steps": float(i + 1), "accepted": 1.0}
            coef *= cfg.line_search_shrinking_factor
        _assign(params, old)  # no step satisfied the constraint
    return {**info, "line_search_steps": float(cfg.line_search_max_iter)}


def train(task: Task, cfg: TRPOConfig, env_steps: int, seed: int, evaluator: Evaluator, recorder: Recorder):
    rng = np.random.default_rng(seed + 7919)
    agent = build_agent(task, cfg, seed, recorder)
    env, model, collector, act = agent.env, agent.model, agent.collector, agent.act
    critic = torch.optim.Adam(model.vf.parameters(), lr=cfg.lr)
    steps, stop = 0, False
    while steps < env_steps and not stop:
        ro = collector.collect(cfg.n_steps)
        rewards = losses.bootstrap_truncated(ro.rewards, ro.values, ro.truncated, cfg.gamma)
        adv, ret = losses.gae(rewards, ro.values, ro.dones, cfg.gamma, cfg.gae_lambda)
        idx = torch.nonzero(ro.valid.flatten()).squeeze(-1)
        flat = lambda x, idx=idx: x.flatten(0, 1)[idx]  # noqa: E731  valid steps of [T, N, ...]
        obs, actions, old_logp, old_params = flat(ro.obs), flat(ro.actions), flat(ro.logp), flat(ro.params)
        adv_v, ret_v = flat(adv), flat(ret)
        if cfg.normalize_advantage and len(adv_v) > 1:
            adv_v = (adv_v - adv_v.mean()) / (adv_v.std() + 1e-8)
        info = policy_step(model, obs, actions, old_logp, old_params, adv_v, cfg)
        vf_losses = []
        for _ in range(cfg.n_critic_updates):
            order = torch.from_numpy(rng.permutation(len(idx)))
            for start in range(0, len(order), cfg.batch_size):
                mb = order[start : start + cfg.batch_size]
                vf_loss = (model.value(obs[mb]) - ret_v[mb]).pow(2).mean()
                critic.zero_grad(set_to_none=True)
                vf_loss.backward()
                critic.step()
                vf_losses.append(float(vf_loss.detach()))
        steps = collector.env_steps
        check_finite(steps, {"surrogate": info["surrogate"], "value loss": float(np.mean(vf_losses))}, model)
        collector.log_episodes(steps)
        for name, value in [*info.items(), ("value_loss", float(np.mean(vf_losses)))]:
            recorder.curve(steps, f"train/{name}", value)
        recorder.curve(steps, "perf/env_steps_per_s", steps / max(recorder.train_time(), 1e-9))
        recorder.steps(steps)
        if evaluator.due(steps):
            evaluator(steps, act)
        stop = evaluator.stop
    evaluator.final(steps, act)
    env.close()
