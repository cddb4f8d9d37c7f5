"""TorchRL's PPO as a bench algorithm, for discrete (CartPole) and continuous (Pendulum) actions.

TorchRL does the work: its ``GymEnv`` environments batched by ``SerialEnv``, its ``Collector``,
its ``GAE`` advantage module and its ``ClipPPOLoss`` (clipped surrogate, critic loss, entropy
bonus, per-minibatch advantage normalisation). This module builds the two networks TorchRL's PPO
takes (a ``ProbabilisticActor`` and a ``ValueOperator``) and writes the loop TorchRL's own PPO
examples write (collect a batch, compute GAE, a few epochs of shuffled minibatches, Adam with a
gradient-norm clip), so that bench's train contract is kept between updates: report steps and
losses after each update, stop on a non-finite loss or parameter, hand the evaluator a policy
when it is due and at the end.

Differences from bench's ``ppo`` that TorchRL's API fixes: the critic loss is TorchRL's ``l2``
((V − target)², no ½), the value clip is TorchRL's (``clip_value``), the learning rate is constant
unless ``lr_schedule: linear``, and there is no observation or reward normalisation.

The evaluator's policy reads the same networks: temperature 0 is the greedy action (logits) or
the mean (Gaussian), T > 0 samples from logits / T or with the std scaled by T.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from bench.api import Algorithm, check_finite


class TorchRLPPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n_envs: int = Field(8, ge=1, le=256, description="parallel environments (SerialEnv)")
    n_steps: int = Field(128, ge=1, description="steps per env per batch (frames_per_batch / n_envs)")
    batch_size: int = Field(64, ge=1, description="minibatch size")
    n_epochs: int = Field(10, ge=1, description="passes over each batch")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    lr_schedule: Literal["constant", "linear"] = Field("constant", description="lr annealing to 0")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda (TorchRL: lmbda)")
    clip_range: float = Field(0.2, gt=0, description="policy ratio clip epsilon (TorchRL: clip_epsilon)")
    clip_range_vf: float | None = Field(
        None, gt=0, description="value clip (TorchRL: clip_value; None = off)"
    )
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus (TorchRL: entropy_coeff)")
    vf_coef: float = Field(0.5, ge=0, description="critic loss coefficient (TorchRL: critic_coeff)")
    max_grad_norm: float = Field(0.5, gt=0, description="global gradient-norm clip")
    normalize_advantage: bool = Field(True, description="per-minibatch advantage normalisation")
    hidden: int = Field(64, ge=1, le=4096, description="units in each of the two tanh layers")
    log_std_init: float = Field(0.0, description="initial log std of the Gaussian (continuous actions)")


# bench's PPO defaults for these tasks where TorchRL's API has the setting (CartPole: bench's
# rl-zoo settings without the clip schedule; Pendulum: without observation and reward
# normalisation): starting points, not tuned for TorchRL
TASK_DEFAULTS = {
    "CartPole-v1": dict(n_envs=16, n_steps=32, batch_size=512, n_epochs=10, lr=4e-3, lr_schedule="linear",
                        gamma=0.98, gae_lambda=0.8),
    "Pendulum-v1": dict(n_envs=8, n_steps=512, batch_size=64, n_epochs=10, lr=1e-3, lr_schedule="linear",
                        gamma=0.9, gae_lambda=0.95),
}  # fmt: skip


def mlp(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, n_out))  # fmt: skip


class LocScale(nn.Module):
    """A Gaussian's mean from an MLP and a state-independent std."""

    def __init__(self, n_in: int, d: int, hidden: int, log_std_init: float):
        super().__init__()
        self.net = mlp(n_in, d, hidden)
        self.log_std = nn.Parameter(torch.full((d,), float(log_std_init)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self.net(obs)
        return loc, self.log_std.exp().expand_as(loc)


def make_env(task_id: str, n_envs: int, seed: int, continuous: bool):
    from torchrl.envs import SerialEnv
    from torchrl.envs.libs.gym import GymEnv

    def one():
        return GymEnv(task_id, categorical_action_encoding=not continuous)

    env = SerialEnv(n_envs, one)
    env.set_seed(seed)
    return env


def build(env, continuous: bool, cfg: TorchRLPPOConfig):
    """(actor, value, the network the evaluator reads)."""
    from tensordict.nn import TensorDictModule
    from torchrl.modules import IndependentNormal, ProbabilisticActor, ValueOperator

    n_obs = env.observation_spec["observation"].shape[-1]
    if continuous:
        d = env.action_spec.shape[-1]
        net = LocScale(n_obs, d, cfg.hidden, cfg.log_std_init)
        module = TensorDictModule(net, in_keys=["observation"], out_keys=["loc", "scale"])
        actor = ProbabilisticActor(module, spec=env.action_spec, in_keys=["loc", "scale"],
                                   distribution_class=IndependentNormal, return_log_prob=True)  # fmt: skip
    else:
        n_act = env.action_spec.space.n
        net = mlp(n_obs, n_act, cfg.hidden)
        module = TensorDictModule(net, in_keys=["observation"], out_keys=["logits"])
        categorical = torch.distributions.Categorical
        actor = ProbabilisticActor(module, spec=env.action_spec, in_keys=["logits"],
                                   distribution_class=categorical, return_log_prob=True)  # fmt: skip
    value = ValueOperator(mlp(n_obs, 1, cfg.hidden), in_keys=["observation"])
    return actor, value, net


def train(task, cfg, env_steps, seed, evaluator, recorder):
    from torchrl.collectors import Collector
    from torchrl.objectives import ClipPPOLoss
    from torchrl.objectives.value import GAE

    torch.manual_seed(seed)
    env = make_env(task.id, cfg.n_envs, seed, task.continuous)
    actor, value, net = build(env, task.continuous, cfg)
    frames = cfg.n_envs * cfg.n_steps
    total = -(-env_steps // frames) * frames  # whole batches; the last one may pass env_steps
    collector = Collector(
        env,
        actor,
        frames_per_batch=frames,
        total_frames=total,
        split_trajs=False,
        auto_register_policy_transforms=False,
    )  # an MLP policy needs no InitTracker
    gae = GAE(gamma=cfg.gamma, lmbda=cfg.gae_lambda, value_network=value, average_gae=False)
    loss_module = ClipPPOLoss(
        actor, value, clip_epsilon=cfg.clip_range, entropy_bonus=cfg.ent_coef > 0,
        entropy_coeff=cfg.ent_coef if cfg.ent_coef > 0 else None, critic_coeff=cfg.vf_coef,
        loss_critic_type="l2", normalize_advantage=cfg.normalize_advantage, clip_value=cfg.clip_range_vf,
    )  # fmt: skip
    params = list(loss_module.parameters())
    optim = torch.optim.Adam(params, lr=cfg.lr)
    order = torch.Generator().manual_seed(seed + 2)
    policy = TorchRLAct(net, task.continuous, seed)

    step = 0
    for data in collector:
        step += data.numel()
        progress = min(1.0, (step - data.numel()) / total)
        if cfg.lr_schedule == "linear":  # annealed to 0 over the budget, set before each batch's updates
            for group in optim.param_groups:
                group["lr"] = cfg.lr * (1.0 - progress)
        with torch.no_grad():
            gae(data)
        flat = data.reshape(-1)
        pg, vf = [], []
        for _ in range(cfg.n_epochs):
            for idx in torch.randperm(flat.numel(), generator=order).split(cfg.batch_size):
                out = loss_module(flat[idx])
                loss = out["loss_objective"] + out["loss_critic"]
                if "loss_entropy" in out.keys():
                    loss = loss + out["loss_entropy"]
                optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optim.step()
                pg.append(float(out["loss_objective"].detach()))
                vf.append(float(out["loss_critic"].detach()))
        collector.update_policy_weights_()
        losses = {"policy loss": float(np.mean(pg)), "value loss": float(np.mean(vf))}
        check_finite(step, losses, {"actor": actor, "value": value})
        recorder.steps(step)
        recorder.curve(step, "train/policy_loss", losses["policy loss"])
        recorder.curve(step, "train/value_loss", losses["value loss"])
        if evaluator.due(step):
            evaluator(step, policy)
        if evaluator.stop:
            break
    collector.shutdown()  # closes the env too
    recorder.steps(step)
    evaluator.final(step, policy)


class TorchRLAct:
    """``act(obs, temperature)`` on the actor's own network."""

    def __init__(self, net: nn.Module, continuous: bool, seed: int):
        self.net, self.continuous = net, continuous
        self.generator = torch.Generator().manual_seed(seed + 1)

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, temperature: float) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32)
        if not self.continuous:
            logits = self.net(x)
            if temperature == 0:
                return logits.argmax(-1).numpy()
            probs = torch.softmax(logits / temperature, -1)
            return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).numpy()
        loc, scale = self.net(x)
        if temperature == 0:
            return loc.numpy()
        return (loc + scale * temperature * torch.randn(loc.shape, generator=self.generator)).numpy()


TORCHRL_PPO = Algorithm(
    name="torchrl-ppo",
    config=TorchRLPPOConfig,
    task_defaults=TASK_DEFAULTS,
    train=train,
    description="TorchRL's PPO (ClipPPOLoss, GAE, Collector over a SerialEnv of GymEnv), wrapped as a plugin",
    version="1",
)
