"""Dual-clip PPO (Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep
Reinforcement Learning", eq. 5): PPO's clipped surrogate, and for negative advantages a second
bound c·A, so that a very large ratio on a bad action cannot make the loss unbounded.

Written against ``bench.api`` only: a config (PPO's with one field more), the loss, and a train
function that hands the loss to bench's PPO loop.
"""

import torch
from pydantic import Field

from bench.api import PPO_TASK_DEFAULTS, Algorithm, PPOConfig, ppo_train


class DualClipConfig(PPOConfig):
    dual_clip: float = Field(3.0, gt=1.0, description="c: the lower bound c·A of the objective when A < 0")


def dual_clip_loss(logp, old_logp, adv, clip_range, dual_clip=3.0):
    """-E[ max(min(r A, clip(r, 1-ε, 1+ε) A), c A) ] where A < 0, PPO's clipped term where A ≥ 0."""
    ratio = torch.exp(logp - old_logp)
    clipped = torch.min(ratio * adv, torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * adv)
    dual = torch.max(clipped, dual_clip * adv)
    return -torch.where(adv < 0, dual, clipped).mean()


def train(task, cfg, env_steps, seed, evaluator, recorder):
    def surrogate(logp, old_logp, adv, clip_range):
        return dual_clip_loss(logp, old_logp, adv, clip_range, cfg.dual_clip)

    return ppo_train(task, cfg, env_steps, seed, evaluator, recorder, surrogate=surrogate)


DUAL_CLIP_PPO = Algorithm(
    name="dual-clip-ppo",
    config=DualClipConfig,
    task_defaults=PPO_TASK_DEFAULTS,
    train=train,
    description="Dual-clip PPO (Ye et al. 2020): PPO with the objective bounded below by c·A for A < 0",
    version="1",
)
