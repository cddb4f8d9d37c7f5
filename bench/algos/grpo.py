"""GRPO on classic control (``grpo-gt``): the LM recipe with episodes for completions and start
states for prompts, fine-tuning π_ref on the true reward with a KL term to π_ref.

A group is ``k`` episodes that start from the same state: the ``k`` environments of a group are
reset with the same reset seed, so the group mean return is a baseline for that start state as
the mean reward of k completions is for a prompt. Per iteration: ``groups`` start states × ``k``
episodes run to their end under the current policy; each episode's return becomes an advantage
relative to its group (``losses.group_advantages``: divided by the group's std, or only centred
for Dr. GRPO); then ``iterations`` full-batch updates of ``losses.grpo_loss`` (the clipped ratio
per step, β × the k3 estimate of KL(π ‖ π_ref) per step, aggregated per episode then over
episodes, or Dr. GRPO's constant normaliser). No critic.
"""

from __future__ import annotations

import copy
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses
from bench.algos.guard import check_finite
from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class GRPOGTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    groups: int = Field(4, ge=1, le=4096, description="start states per batch")
    k: int = Field(8, ge=2, le=4096, description="episodes per start state (the group)")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    clip_range: float = Field(0.2, gt=0, description="ratio clip ε")
    iterations: int = Field(4, ge=1, le=1000, description="full-batch updates per batch of episodes")
    kl_coef: float = Field(0.05, ge=0, description="β: weight of the k3 KL(π ‖ π_ref) term per step")
    scale_rewards: Literal["group", "none"] = Field(
        "group", description="GRPO (group std) or Dr. GRPO (none)"
    )
    aggregation: Literal["grpo", "dr_grpo", "bnpo"] = Field(
        "grpo", description="step losses: mean per episode then over episodes, or Dr. GRPO's sum /"
        " (B · T_max), or"
        " mean over the batch's steps"
    )  # fmt: skip
    max_grad_norm: float = Field(0.5, gt=0, description="gradient-norm clip")


class Episodes:
    """A batch of episodes as [B, T] arrays (B = groups × k; T = the longest; ``mask`` marks real steps)."""

    def __init__(self, obs, actions, logp, mask, returns):
        self.obs, self.actions, self.logp, self.mask, self.returns = obs, actions, logp, mask, returns


def run_groups(envs: list[gym.Env], model: ActorCritic, obs_norm: ObsNormalizer, reset_seeds: list[int],
               k: int, generator: torch.Generator) -> Episodes:  # fmt: skip
    """Runs one episode per env, envs ``g·k … g·k + k − 1`` reset with ``reset_seeds[g]``."""
    n = len(envs)
    obs = np.stack([env.reset(seed=int(reset_seeds[i // k]))[0] for i, env in enumerate(envs)])
    alive = np.ones(n, dtype=bool)
    returns = np.zeros(n)
    steps_obs, steps_act, steps_logp, steps_mask = [], [], [], []
    while alive.any():
        o = torch.tensor(obs_norm(obs), dtype=torch.float32)  # a copy: ``obs`` is updated in place below
        with torch.no_grad():
            params = model.policy(o)
            actions = model.sample(params, 1.0, generator)
            logp = model.log_prob(params, actions)
        steps_obs.append(o)
        steps_act.append(actions)
        steps_logp.append(logp)
        steps_mask.append(torch.as_tensor(alive.copy()))
        a = actions.numpy()
        for i in np.flatnonzero(alive):
            obs_i, r, terminated, truncated, _ = envs[i].step(a[i])
            returns[i] += float(r)
            obs[i] = obs_i
            if terminated or truncated:
                alive[i] = False
    stack = lambda xs: torch.stack(xs, 1)  # noqa: E731  [T] of [B, ...] -> [B, T, ...]
    return Episodes(stack(steps_obs), stack(steps_act), stack(steps_logp), stack(steps_mask),
                    torch.as_tensor(returns, dtype=torch.float32))  # fmt: skip


def train_grpo_gt(
    task, cfg: GRPOGTConfig, env_steps, seed, evaluator: Evaluator, recorder: Recorder, alignment
):
    ref = alignment.reference()
    model = copy.deepcopy(ref.model).requires_grad_(True)
    policy = PolicyAct(model, ref.obs_norm, torch.Generator().manual_seed(seed + 1))
    params = list(model.pi.parameters()) + ([model.log_std] if model.continuous else [])
    opt = torch.optim.Adam(params, lr=cfg.lr)
    envs = [gym.make(task.id) for _ in range(cfg.groups * cfg.k)]
    rng = np.random.default_rng(seed)
    sampling = torch.Generator().manual_seed(seed + 2)
    steps = 0
    try:
        while steps < env_steps and not evaluator.stop:
            seeds = rng.integers(0, 2**31 - 1, size=cfg.groups).tolist()
            ep = run_groups(envs, model, ref.obs_norm, seeds, cfg.k, sampling)
            steps += int(ep.mask.sum())
            adv = losses.group_advantages(ep.returns.view(cfg.groups, cfg.k), cfg.scale_rewards).flatten()
            flat_obs = ep.obs.flatten(0, 1)
            with torch.no_grad():
                ref_logp = ref.model.log_prob(ref.model.policy(flat_obs), ep.actions.flatten(0, 1)).view_as(
                    ep.logp
                )
            for _ in range(cfg.iterations):
                logp = model.log_prob(model.policy(flat_obs), ep.actions.flatten(0, 1)).view_as(ep.logp)
                loss = losses.grpo_loss(logp, ep.logp, ref_logp, adv, ep.mask, cfg.clip_range, cfg.kl_coef,
                                        cfg.aggregation)  # fmt: skip
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
            check_finite(steps, {"loss": float(loss.detach())}, model)
            with torch.no_grad():
                kl_k1 = float(((ep.logp - ref_logp) * ep.mask).sum(-1).mean())
            recorder.curve(steps, "train/loss", float(loss.detach()))
            recorder.curve(steps, "train/episode_return", float(ep.returns.mean()))
            recorder.curve(steps, "train/kl_k1", kl_k1)
            recorder.steps(steps)
            if evaluator.due(steps):
                evaluator(steps, policy)
    finally:
        for env in envs:
            env.close()
    recorder.env_steps = steps
    evaluator.final(steps, policy)
