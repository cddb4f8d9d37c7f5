"""Reward model r_φ(s, a) learned from trajectory preferences by Bradley–Terry on segment sums.

An MLP on [observation as the reference sees it, action (one-hot for categorical)] -> scalar.
Loss: -log σ(Σ_t r_φ(winner) − Σ_t r_φ(loser)). Trained on the first ``n_pairs`` training pairs;
accuracy is measured on the held-out pairs, both against their labels and against the true
return order (the same thing when τ = 0). Its output is divided by the standard deviation of the
per-step reward over the training segments, so a KL coefficient means the same across tasks;
the reward is not centred: with episodes that end early, its level carries the preference.
Cached like the other alignment artifacts.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from bench.algos import losses
from bench.algos.guard import check_finite
from bench.artifacts import AlignmentContext, SegmentPreferences
from bench.cache import cached, recipe_hash
from bench.control.policies import HiddenSizes, mlp
from bench.fingerprint import artifact_code


class RewardModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    hidden_sizes: HiddenSizes = Field((64, 64), description="MLP hidden layers")
    epochs: int = Field(30, ge=1, le=100_000, description="passes over the training pairs")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    batch_size: int = Field(64, ge=1, le=10_000_000, description="pairs per minibatch")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")


class RewardModel(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, continuous: bool, hidden_sizes: tuple[int, ...]):
        super().__init__()
        self.continuous, self.action_dim = continuous, action_dim
        self.net = mlp([obs_dim + action_dim, *hidden_sizes, 1], "relu", 1.0, True)
        self.register_buffer("scale", torch.ones(()))

    def features(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.continuous:
            a = actions.float()
        else:
            a = nn.functional.one_hot(actions.long(), self.action_dim).float()
        return torch.cat([obs, a], -1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Per-step reward [...] for obs [..., d] and actions [...] / [..., D]."""
        return self.net(self.features(obs, actions)).squeeze(-1) / self.scale

    def segment_sums(self, prefs: SegmentPreferences, idx: torch.Tensor) -> torch.Tensor:
        return (self(prefs.obs[idx], prefs.actions[idx]) * prefs.mask[idx]).sum(-1)


def _accuracy(rm: RewardModel, prefs: SegmentPreferences, pairs: slice) -> tuple[float, float]:
    """(accuracy against the labels, against the true return order) on ``pairs``."""
    with torch.no_grad():
        w, lo = prefs.winner[pairs], prefs.loser[pairs]
        margin = rm.segment_sums(prefs, w) - rm.segment_sums(prefs, lo)
        true = prefs.returns[w] - prefs.returns[lo]
    return float((margin > 0).float().mean()), float(((margin > 0) == (true > 0)).float().mean())


def train_reward_model(prefs: SegmentPreferences, n_pairs: int | None, cfg: RewardModelConfig, seed: int,
                       action_dim: int, continuous: bool) -> dict:  # fmt: skip
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, heldout = prefs.split(n_pairs)
    rm = RewardModel(prefs.obs.shape[-1], action_dim, continuous, cfg.hidden_sizes)
    opt = torch.optim.AdamW(rm.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    w_all, l_all = prefs.winner[train], prefs.loser[train]
    n = len(w_all)
    for epoch in range(1, cfg.epochs + 1):
        order = rng.permutation(n)
        epoch_losses = []
        for start in range(0, n, cfg.batch_size):
            mb = torch.from_numpy(order[start : start + cfg.batch_size])
            loss = losses.bradley_terry_loss(
                rm.segment_sums(prefs, w_all[mb]), rm.segment_sums(prefs, l_all[mb])
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            epoch_losses.append(loss.detach())
        # a NaN / inf loss or parameter stops the run (and nothing is cached)
        mean_loss = torch.stack(epoch_losses).mean() if epoch_losses else 0.0
        check_finite(epoch, {"loss": mean_loss}, rm, unit="reward-model epoch")
    with torch.no_grad():
        used = torch.unique(torch.cat([w_all, l_all]))
        per_step = rm(prefs.obs[used], prefs.actions[used])[prefs.mask[used] > 0]
        rm.scale.fill_(float(per_step.std()) + 1e-8)
    train_acc, _ = _accuracy(rm, prefs, train)
    acc, gold_acc = _accuracy(rm, prefs, heldout)
    return {
        "state_dict": rm.state_dict(),
        "n_pairs": n,
        "train_accuracy": train_acc,
        "accuracy": acc,
        "gold_accuracy": gold_acc,
        "heldout_pairs": heldout.stop - heldout.start,
    }


def load_reward_model(
    ctx: AlignmentContext, n_pairs: int | None, cfg: RewardModelConfig
) -> tuple[RewardModel, dict]:
    """The reward model for this run's seed, dataset and recipe (trained once, then cached)."""
    prefs = ctx.preferences()
    ref = ctx.reference()
    t0 = time.perf_counter()
    action_dim, continuous = ref.model.action_dim, ref.model.continuous
    key = recipe_hash({"prefs": ctx.pref_hash, "n_pairs": n_pairs, "rm": cfg.model_dump(mode="json"),
                       "code": artifact_code(__name__)})  # fmt: skip
    path = ctx.artifact("reward-model", key)
    data, built = cached(
        path, lambda: train_reward_model(prefs, n_pairs, cfg, ctx.seed, action_dim, continuous)
    )
    rm = RewardModel(prefs.obs.shape[-1], action_dim, continuous, cfg.hidden_sizes)
    rm.load_state_dict(data["state_dict"])
    rm.requires_grad_(False)
    ctx.exclude(time.perf_counter() - t0)
    ctx.log(
        f"reward model {'trained' if built else 'loaded'} ({path}): {data['n_pairs']} pairs,"
        f" held-out accuracy {data['accuracy']:.3f} (true order {data['gold_accuracy']:.3f}),"
        f" train {data['train_accuracy']:.3f}"
    )
    return rm, data
