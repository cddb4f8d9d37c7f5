"""REINFORCE (Williams 1992): the textbook policy gradient.

Per batch of ``n_steps`` x ``n_envs`` on-policy steps: discounted reward-to-go G_t within each
episode; advantage G_t - V(s_t) with the optional learned value baseline (episodes still running
at the batch end, and time-limit truncations, bootstrap from V when the baseline is on; without
it they are cut, so use ``n_steps`` >= the episode length); optional advantage normalisation and
entropy bonus; one gradient step per batch (``n_epochs`` > 1 reuses the batch).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses
from bench.algos.guard import check_finite
from bench.algos.ppo import explained_variance
from bench.algos.rollout import Agent, Shaping, build_agent, set_lr
from bench.control.policies import HiddenSizes
from bench.control.tasks import Task
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class PGConfig(BaseModel):
    """REINFORCE hyperparameters."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n_envs: int = Field(8, ge=1, le=4096, description="parallel environments")
    n_steps: int = Field(200, ge=1, le=1_000_000, description="steps per env per batch")
    n_epochs: int = Field(1, ge=1, le=10_000, description="gradient steps per batch")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    lr_schedule: Literal["constant", "linear"] = Field("constant", description="lr annealing")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    use_baseline: bool = Field(True, description="learned value baseline V(s)")
    normalize_advantage: bool = Field(True, description="normalise advantages per batch")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    max_grad_norm: float | None = Field(None, gt=0, description="gradient-norm clip (None = off)")
    normalize_obs: bool = Field(False, description="running observation normalisation")
    normalize_reward: bool = Field(False, description="scale rewards by return std")
    hidden_sizes: HiddenSizes = Field((64, 64), description="MLP hidden layers")
    activation: Literal["tanh", "relu"] = Field("tanh", description="hidden activation")
    ortho_init: bool = Field(True, description="orthogonal initialisation")
    log_std_init: float = Field(0.0, description="initial log std (Gaussian policies)")


TASK_DEFAULTS: dict[str, dict] = {
    "CartPole-v1": dict(n_envs=16, n_steps=128, lr=1e-3, gamma=0.99),
    "LunarLander-v3": dict(n_envs=16, n_steps=256, lr=1e-3, gamma=0.99, ent_coef=0.01),
    "LunarLanderContinuous-v3": dict(n_envs=16, n_steps=256, lr=1e-3, gamma=0.99),
    "Pendulum-v1": dict(
        n_envs=8,
        n_steps=200,
        lr=1e-3,
        gamma=0.9,
        normalize_obs=True,
        normalize_reward=True,
        log_std_init=-0.5,
    ),
}


def train(
    task: Task,
    cfg: PGConfig,
    env_steps: int,
    seed: int,
    evaluator: Evaluator,
    recorder: Recorder,
    agent: Agent | None = None,
    shaping: Shaping | None = None,
) -> Agent:
    """Trains until ``env_steps`` (or until ``evaluator.stop``); returns the agent.

    ``agent``: start from this one (e.g. a copy of a reference policy) instead of a fresh one.
    ``shaping``: the rewards to optimise instead of the env's, and an extra policy-loss term
    (the KL-regularised and reward-model objectives of the alignment methods)."""
    agent = agent or build_agent(task, cfg, seed, recorder)
    optimizer = make_optimizer(agent.model, cfg)
    while agent.collector.env_steps < env_steps and not evaluator.stop:
        ro = agent.collector.collect(cfg.n_steps)
        learn(cfg, agent, optimizer, ro, env_steps, evaluator, recorder, shaping)
    evaluator.final(agent.collector.env_steps, agent.act)
    agent.env.close()
    return agent


def make_optimizer(model, cfg: PGConfig) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)


def learn(cfg: PGConfig, agent: Agent, optimizer, ro, env_steps: int, evaluator: Evaluator,
          recorder: Recorder, shaping: Shaping | None = None) -> None:  # fmt: skip
    """Everything after one rollout ``ro``: the learning rate at this progress, returns and
    advantages, the gradient step(s), the divergence check (raises), the training curves and the
    evaluation when due."""
    env, model, collector, act = agent.env, agent.model, agent.collector, agent.act
    # the progress after the rollout's steps are counted, as PPO (and SB3) read it
    remaining = max(0.0, 1.0 - collector.env_steps / env_steps)
    set_lr(optimizer, losses.schedule(cfg.lr_schedule, cfg.lr, remaining))
    rewards = ro.rewards if shaping is None else shaping(ro)
    last_value = torch.zeros(env.num_envs)
    if cfg.use_baseline:
        rewards = losses.bootstrap_truncated(rewards, ro.values, ro.truncated, cfg.gamma)
        last_value = ro.values[-1]
    returns = losses.reward_to_go(rewards, ro.dones, cfg.gamma, last_value)
    valid = ro.valid.flatten()
    index = torch.nonzero(valid).squeeze(-1)
    obs, actions = ro.obs.flatten(0, 1)[valid], ro.actions.flatten(0, 1)[valid]
    returns = returns.flatten()[valid]
    for _ in range(cfg.n_epochs):
        params, values = model(obs)
        logp, entropy = model.log_prob_entropy(params, actions)
        adv = returns - values.detach() if cfg.use_baseline else returns
        adv_scale = 1.0
        if cfg.normalize_advantage:
            adv, adv_scale = losses.normalize_with_scale(adv)
        pg_loss = losses.policy_gradient_loss(logp, adv)
        extra = shaping.policy_loss(index, params, adv_scale) if shaping is not None else None
        if extra is not None:
            pg_loss = pg_loss + extra
        vf_loss = 0.5 * (values - returns).pow(2).mean() if cfg.use_baseline else 0.0 * pg_loss
        loss = pg_loss + cfg.vf_coef * vf_loss - cfg.ent_coef * entropy.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()

    step = collector.env_steps
    last = {"policy loss": float(pg_loss.detach()), "value loss": float(vf_loss.detach()),
            "entropy": float(entropy.detach().mean())}  # fmt: skip
    check_finite(step, last, model)  # a NaN / inf loss or parameter stops the run
    collector.log_episodes()
    ev = explained_variance(values.detach(), returns) if cfg.use_baseline else float("nan")
    if ev == ev:  # not NaN (constant returns)
        recorder.curve(step, "train/explained_variance", ev)
    recorder.curve(step, "train/policy_loss", last["policy loss"])
    recorder.curve(step, "train/value_loss", last["value loss"])
    recorder.curve(step, "train/entropy", last["entropy"])
    recorder.curve(step, "perf/env_steps_per_s", step / max(recorder.train_time(), 1e-9))
    recorder.steps(step)
    if evaluator.due(step):
        evaluator(step, act)
