"""Actor-critic MLP policies for discrete (categorical) and continuous (diagonal Gaussian) actions.

Temperature (shared/design.md §3): categorical samples from softmax(logits / T), Gaussian from
N(mean, (std * T)^2); T = 0 is argmax / the mean action. Log-probabilities and entropies are
computed in closed form (no ``torch.distributions`` objects on the hot path).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
import torch
from pydantic import Field
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
ACTIVATION_FNS = {"tanh": torch.tanh, "relu": torch.relu}
LOG_2PI = math.log(2 * math.pi)

# MLP hidden layer sizes in a config: at most 64 layers of 1 to 65,536 units
HiddenSizes = Annotated[tuple[Annotated[int, Field(ge=1, le=65_536)], ...], Field(max_length=64)]


def mlp(sizes: list[int], activation: str, out_gain: float, ortho_init: bool) -> nn.Sequential:
    """MLP ``sizes[0] -> ... -> sizes[-1]``; orthogonal init (gain sqrt 2, output ``out_gain``)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        if ortho_init:
            # orthogonal init as in the PPO implementation details (Engstrom et al. 2020, sec. 3)
            last = i == len(sizes) - 2
            nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2))
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Separate policy and value MLPs. ``dist_params`` is logits [B, A] (categorical) or the
    mean [B, D] (Gaussian; the state-independent ``log_std`` [D] is a parameter)."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        continuous: bool,
        hidden_sizes: tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        ortho_init: bool = True,
        log_std_init: float = 0.0,
    ):
        super().__init__()
        self.continuous = continuous
        self.action_dim = action_dim
        hidden = list(hidden_sizes)
        self.pi = mlp([obs_dim, *hidden, action_dim], activation, 0.01, ortho_init)
        self.vf = mlp([obs_dim, *hidden, 1], activation, 1.0, ortho_init)
        if continuous:
            self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        # plain-function evaluation of the MLPs: same result as calling the Sequentials, without
        # the per-module call overhead (a large share of a small-network PPO step on CPU)
        self._act_fn = ACTIVATION_FNS[activation]
        self._pi_linears = [m for m in self.pi if isinstance(m, nn.Linear)]
        self._vf_linears = [m for m in self.vf if isinstance(m, nn.Linear)]

    def _mlp(self, linears: list[nn.Linear], x: torch.Tensor) -> torch.Tensor:
        last = len(linears) - 1
        for i, layer in enumerate(linears):
            x = torch.nn.functional.linear(x, layer.weight, layer.bias)
            if i < last:
                x = self._act_fn(x)
        return x

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(dist_params [B, A], value [B])."""
        return self._mlp(self._pi_linears, obs), self._mlp(self._vf_linears, obs).squeeze(-1)

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """Distribution parameters only [B, A]."""
        return self._mlp(self._pi_linears, obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) [B]."""
        return self._mlp(self._vf_linears, obs).squeeze(-1)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a|s) [B] at temperature 1 (no entropy: the rollout's hot path)."""
        if self.continuous:
            z = (actions - params) / self.log_std.exp()
            return (-0.5 * z.pow(2) - self.log_std - 0.5 * LOG_2PI).sum(-1)
        return torch.log_softmax(params, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    def noise(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        """Exploration noise for ``sample``, drawn in bulk: [*shape, A] standard Gumbel
        (categorical) or standard normal (Gaussian)."""
        size = (*shape, self.action_dim)
        if self.continuous:
            return torch.randn(size, generator=generator)
        u = torch.rand(size, generator=generator).clamp_(min=1e-12)
        return -torch.log(-torch.log(u))

    def sample(
        self,
        params: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Actions [B] (categorical) or [B, D] (Gaussian) at ``temperature``.

        Categorical: argmax(logits / T + Gumbel noise) (the Gumbel-max trick: exactly a sample of
        softmax(logits / T)). Gaussian: mean + std * T * normal noise. T = 0: argmax / mean.
        """
        if temperature == 0:
            return params if self.continuous else params.argmax(-1)
        if noise is None:
            noise = self.noise(params.shape[:-1], generator)
        if self.continuous:
            return params + self.log_std.exp() * temperature * noise
        return (params / temperature + noise).argmax(-1)

    def log_prob_entropy(
        self, params: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(a|s) [B] and entropy [B] at temperature 1."""
        if self.continuous:
            return gaussian_log_prob_entropy(params, self.log_std, actions)
        return categorical_log_prob_entropy(params, actions)

    def kl(self, old_params: torch.Tensor, new_params: torch.Tensor, old_log_std=None):
        """Exact KL(pi_old || pi_new) per state [B]."""
        if self.continuous:
            return gaussian_kl(old_params, old_log_std, new_params, self.log_std)
        return categorical_kl(old_params, new_params)


def categorical_log_prob_entropy(logits: torch.Tensor, actions: torch.Tensor):
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def gaussian_log_prob_entropy(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor):
    z = (actions - mean) / log_std.exp()
    logp = (-0.5 * z.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)
    entropy = (log_std + 0.5 * (1.0 + LOG_2PI)).sum(-1).expand(mean.shape[:-1])
    return logp, entropy


def categorical_kl(old_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(old) || softmax(new)) per row."""
    old_logp = torch.log_softmax(old_logits, -1)
    new_logp = torch.log_softmax(new_logits, -1)
    return (old_logp.exp() * (old_logp - new_logp)).sum(-1)


def gaussian_kl(old_mean, old_log_std, new_mean, new_log_std) -> torch.Tensor:
    """KL(N(old) || N(new)) for diagonal Gaussians, summed over action dims."""
    var_ratio = torch.exp(2 * (old_log_std - new_log_std))
    t = ((old_mean - new_mean) / new_log_std.exp()).pow(2)
    return 0.5 * (var_ratio + t - 1 - torch.log(var_ratio)).sum(-1)


class RunningMeanStd:
    """Running mean/variance (parallel algorithm of Chan et al.) for observation/return scaling."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = epsilon

    def update(self, x: np.ndarray) -> None:
        self.merge(x.mean(0), x.var(0), x.shape[0])

    def merge(self, batch_mean: np.ndarray, batch_var: np.ndarray, n: float) -> None:
        """Adds a batch given by its moments (mean, population variance, count)."""
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.var = m2 / total
        self.count = total


class ObsNormalizer:
    """Normalises observations with running statistics; frozen outside training, and for good
    once ``frozen`` is set (a policy fine-tuned from a reference keeps the reference's inputs)."""

    def __init__(self, shape: tuple[int, ...], enabled: bool, clip: float = 10.0):
        self.enabled = enabled
        self.rms = RunningMeanStd(shape)
        self.clip = clip
        self.frozen = False

    def state(self) -> dict:
        return {
            "enabled": self.enabled,
            "mean": self.rms.mean.tolist(),
            "var": self.rms.var.tolist(),
            "count": float(self.rms.count),
            "clip": self.clip,
        }

    @classmethod
    def from_state(cls, state: dict, frozen: bool = True) -> ObsNormalizer:
        out = cls((len(state["mean"]),), state["enabled"], state["clip"])
        out.rms.mean = np.asarray(state["mean"], np.float64)
        out.rms.var = np.asarray(state["var"], np.float64)
        out.rms.count = state["count"]
        out.frozen = frozen
        return out

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if not self.enabled:
            return obs.astype(np.float32, copy=False)
        if update and not self.frozen:
            self.rms.update(obs)
        out = (obs - self.rms.mean) / np.sqrt(self.rms.var + 1e-8)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)


class ReturnScaler:
    """Divides rewards by the running std of the discounted return (as SB3's VecNormalize)."""

    def __init__(self, num_envs: int, gamma: float, enabled: bool, clip: float = 10.0):
        self.enabled, self.gamma, self.clip = enabled, gamma, clip
        self.rms = RunningMeanStd(())
        self.ret = np.zeros(num_envs)

    def __call__(self, reward: np.ndarray, done: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Scaled ``reward`` [N]; ``done`` [N] ends the discounted return of an env; ``valid`` [N]
        False marks autoreset steps, which are not part of any episode: they neither extend the
        return nor enter the running variance (SB3's VecNormalize never sees them)."""
        if not self.enabled:
            return reward
        if valid is None:
            valid = np.ones(len(reward), bool)
        self.ret[valid] = self.ret[valid] * self.gamma + reward[valid]
        if valid.any():
            self.rms.update(self.ret[valid])
        self.ret[done] = 0.0
        return np.where(valid, np.clip(reward / np.sqrt(self.rms.var + 1e-8), -self.clip, self.clip), 0.0)

    def std(self) -> float:
        """The current divisor: the running std of the discounted return (1 when disabled)."""
        return float(np.sqrt(self.rms.var + 1e-8)) if self.enabled else 1.0


class PolicyAct:
    """``act(obs, temperature) -> actions`` for the evaluation protocol, over a policy network and
    its (frozen at evaluation) observation normaliser. ``dist`` exposes the distribution
    parameters, which the KL-to-reference protocol needs."""

    def __init__(self, model: ActorCritic, obs_norm: ObsNormalizer, generator: torch.Generator):
        self.model, self.obs_norm, self.generator = model, obs_norm, generator

    @torch.no_grad()
    def dist(self, obs: np.ndarray) -> torch.Tensor:
        return self.model.policy(torch.as_tensor(self.obs_norm(obs)))

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, temperature: float) -> np.ndarray:
        return self.model.sample(self.dist(obs), temperature, self.generator).numpy()


def policy_act_fn(model: ActorCritic, obs_norm: ObsNormalizer, generator: torch.Generator) -> PolicyAct:
    return PolicyAct(model, obs_norm, generator)
