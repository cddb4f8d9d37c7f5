"""tianshou's PPO as a bench algorithm, for discrete (CartPole) and continuous (Pendulum,
LunarLanderContinuous) actions.

tianshou does the training: its ``PPO`` algorithm (GAE with bootstrapping at time limits, the
clipped surrogate, optional dual clip and value clip, per-minibatch advantage normalisation, return
scaling, gradient-norm clip), its ``Collector`` over a ``DummyVectorEnv`` into a
``VectorReplayBuffer``, its ``OnPolicyTrainer`` and its linear learning-rate schedule. This module
builds the networks from tianshou's own parts (``Net``, ``DiscreteActor`` or
``ContinuousActorProbabilistic``, a critic), sets them up the way tianshou's PPO examples do by hand
(orthogonal init, last-layer scaling), and drives the trainer one epoch at a time, an epoch set to
one collection of ``n_envs × n_steps`` steps and one update, so that bench's train contract is kept
between updates: report steps and losses, stop on a non-finite loss or parameter, hand the evaluator
a policy when it is due and at the end.

What tianshou does by default, and where it differs from bench's ``ppo``: its ``PPO`` normalises
advantages per minibatch, adds an entropy bonus of 0.01 and clips neither values nor gradients; its
critic loss is the unhalved mean of (R − V)² (with ``value_clip``, the max of the clipped and
unclipped errors, the clip range being the policy's); minibatches are shuffled with numpy's global
RNG and the last short one is merged into the one before; the learning rate is constant unless a
schedule is set, and the linear one gives update k of N the rate lr·(1 − k/N), k from 0 (bench's:
from 1); observations are normalised only by the ``VectorEnvNormObs`` env wrapper (off unless
``normalize_obs``) and there is no reward normalisation, only ``return_scaling`` (the critic's
targets divided by the running std of returns; advantages stay in reward units); networks keep
PyTorch's initialisation and ``Net``'s ReLU. Continuous actions are a Gaussian on a [-1, 1] scale
that tianshou clips (or squashes with tanh) and maps linearly to the action space before
``env.step``.

The evaluator's policy reads the same networks: temperature 0 is the greedy action (logits) or the
mean (Gaussian), T > 0 samples from logits / T or with the std scaled by T; continuous actions go
through tianshou's own ``map_action``, observations through the training env's running statistics.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from bench.api import Algorithm, Diverged, check_finite


class TianshouPPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n_envs: int = Field(8, ge=1, le=256, description="parallel environments (DummyVectorEnv)")
    n_steps: int = Field(
        256, ge=1, description="steps per env per update (collection_step_num_env_steps / n_envs)"
    )
    batch_size: int = Field(64, ge=1, description="minibatch size (the last short one is merged)")
    n_epochs: int = Field(10, ge=1, description="passes over each batch (update_step_num_repetitions)")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    lr_schedule: Literal["constant", "linear"] = Field(
        "constant", description="linear: tianshou's LRSchedulerFactoryLinear, annealed to 0"
    )
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    clip_range: float = Field(0.2, gt=0, description="policy ratio clip epsilon (tianshou: eps_clip)")
    dual_clip: float | None = Field(None, gt=1, description="dual-clip bound c (None = off)")
    value_clip: bool = Field(False, description="clip the value change to ± clip_range (no separate range)")
    ent_coef: float = Field(0.01, ge=0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0, description="critic loss coefficient (loss: mean (R − V)², no ½)")
    max_grad_norm: float | None = Field(None, gt=0, description="gradient-norm clip (None = off)")
    normalize_advantage: bool = Field(
        True, description="per-minibatch advantage normalisation (tianshou: advantage_normalization)"
    )
    recompute_advantage: bool = Field(False, description="recompute GAE before each pass after the first")
    return_scaling: bool = Field(False, description="critic targets divided by the returns' running std")
    normalize_obs: bool = Field(False, description="running observation normalisation (VectorEnvNormObs)")
    hidden_sizes: tuple[int, ...] = Field((64, 64), min_length=1, description="MLP hidden layers (Net)")
    activation: Literal["relu", "tanh"] = Field("relu", description="hidden activation (Net's default: ReLU)")
    shared_body: bool = Field(False, description="actor and critic share the hidden layers")
    ortho_init: bool = Field(False, description="orthogonal weights and zero biases in every linear layer")
    ortho_gain: float = Field(1.0, gt=0, description="gain of the orthogonal init")
    policy_last_scale: float = Field(
        1.0, gt=0, description="factor on the policy's last-layer weights (its bias set to 0 when not 1)"
    )
    log_std_init: float = Field(0.0, description="initial log std of the Gaussian (continuous actions)")
    action_bound: Literal["clip", "tanh"] = Field(
        "clip", description="how a continuous action is bounded to [-1, 1] before scaling to the space"
    )


# Starting points, not tuned for bench's budgets: tianshou v2.0.1's own PPO settings for each task
# (greedy returns below: seed 0, 10 evaluation episodes).
# CartPole-v1: test/discrete/test_ppo_discrete.py (20 envs × 100 steps per update, a shared ReLU
# body, orthogonal init of gain 1, no advantage normalisation); it reached 500 by 16k env steps,
# dipped to 181 at 26k and was at 500 at 40k and 50k.
# Pendulum-v1: test/continuous/test_ppo.py (16 episodes of 200 steps per update: 16 envs × 200 steps;
# value clip, return scaling; its stop level is -250); -201 by 42k env steps, -151 at 100k.
# LunarLanderContinuous-v3: tianshou has no PPO example for it, so its MuJoCo PPO settings
# (examples/mujoco/mujoco_ppo.py: observation normalisation, tanh, orthogonal init of gain √2, last
# policy layer × 0.01, log std -0.5, lr annealing, recomputed advantages); 227 by 82k, 191 at 100k.
TASK_DEFAULTS = {
    "CartPole-v1": dict(n_envs=20, n_steps=100, batch_size=64, n_epochs=10, lr=3e-4, gamma=0.99,
                        gae_lambda=0.95, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                        normalize_advantage=False, shared_body=True, ortho_init=True),
    "Pendulum-v1": dict(n_envs=16, n_steps=200, batch_size=128, n_epochs=2, lr=1e-3, gamma=0.95,
                        gae_lambda=0.95, ent_coef=0.0, vf_coef=0.25, max_grad_norm=0.5, value_clip=True,
                        return_scaling=True, ortho_init=True),
    "LunarLanderContinuous-v3": dict(n_envs=8, n_steps=256, batch_size=64, n_epochs=10, lr=3e-4,
                                     lr_schedule="linear", gamma=0.99, gae_lambda=0.95, ent_coef=0.0,
                                     vf_coef=0.25, max_grad_norm=0.5, value_clip=True,
                                     normalize_advantage=False, recompute_advantage=True,
                                     return_scaling=True, normalize_obs=True, activation="tanh",
                                     ortho_init=True, ortho_gain=math.sqrt(2), policy_last_scale=0.01,
                                     log_std_init=-0.5),
}  # fmt: skip


def build(observation_space, action_space, continuous: bool, cfg: TianshouPPOConfig):
    """(actor, critic): tianshou's networks, initialised as its PPO examples do."""
    from tianshou.utils.net.common import Net
    from tianshou.utils.net.continuous import ContinuousActorProbabilistic, ContinuousCritic
    from tianshou.utils.net.discrete import DiscreteActor, DiscreteCritic

    activation = {"relu": nn.ReLU, "tanh": nn.Tanh}[cfg.activation]

    def body():
        return Net(state_shape=observation_space.shape, hidden_sizes=cfg.hidden_sizes, activation=activation)

    actor_body = body()
    critic_body = actor_body if cfg.shared_body else body()
    if continuous:  # unbounded mean, a state-independent log std: every tianshou PPO example's choice
        actor = ContinuousActorProbabilistic(
            preprocess_net=actor_body, action_shape=action_space.shape, unbounded=True
        )
        critic, head = ContinuousCritic(preprocess_net=critic_body), actor.mu
    else:  # logits, for the policy's default dist_fn (Categorical from logits)
        actor = DiscreteActor(
            preprocess_net=actor_body, action_shape=int(action_space.n), softmax_output=False
        )
        critic, head = DiscreteCritic(preprocess_net=critic_body), actor.last
    with torch.no_grad():
        if cfg.ortho_init:
            for m in nn.ModuleList([actor, critic]).modules():
                if isinstance(m, nn.Linear):
                    nn.init.orthogonal_(m.weight, gain=cfg.ortho_gain)
                    nn.init.zeros_(m.bias)
        if cfg.policy_last_scale != 1.0:
            for m in head.modules():
                if isinstance(m, nn.Linear):
                    m.weight.mul_(cfg.policy_last_scale)
                    nn.init.zeros_(m.bias)
        if continuous:
            actor.sigma_param.fill_(cfg.log_std_init)
    return actor, critic


def train(task, cfg, env_steps, seed, evaluator, recorder):
    import gymnasium as gym
    from tianshou.algorithm import PPO
    from tianshou.algorithm.modelfree.reinforce import DiscreteActorPolicy, ProbabilisticActorPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory, LRSchedulerFactoryLinear
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv, VectorEnvNormObs
    from tianshou.trainer import OnPolicyTrainerParams

    np.random.seed(seed)  # tianshou shuffles minibatches with numpy's global RNG
    torch.manual_seed(seed)  # the networks' init and the collector's action samples
    envs = DummyVectorEnv([lambda: gym.make(task.id) for _ in range(cfg.n_envs)])
    envs.seed(seed)  # env i starts from reset(seed=seed + i)
    if cfg.normalize_obs:
        envs = VectorEnvNormObs(envs)
    probe = gym.make(task.id)
    actor, critic = build(probe.observation_space, probe.action_space, task.continuous, cfg)

    frames = cfg.n_envs * cfg.n_steps
    updates = -(-env_steps // frames)  # whole batches; the last one may pass env_steps
    optim = AdamOptimizerFactory(lr=cfg.lr)
    if cfg.lr_schedule == "linear":
        optim.with_lr_scheduler_factory(LRSchedulerFactoryLinear(
            max_epochs=updates, epoch_num_steps=frames, collection_step_num_env_steps=frames))  # fmt: skip
    if task.continuous:
        with warnings.catch_warnings():  # it warns whenever the actor's max_action is 1, unbounded or not
            warnings.filterwarnings("ignore", "action_scaling and action_bound_method", UserWarning)
            policy = ProbabilisticActorPolicy(actor=actor, dist_fn=gaussian, action_space=probe.action_space,
                                              action_bound_method=cfg.action_bound)  # fmt: skip
    else:
        policy = DiscreteActorPolicy(actor=actor, action_space=probe.action_space)
    probe.close()
    algorithm = PPO(
        policy=policy, critic=critic, optim=optim, eps_clip=cfg.clip_range, dual_clip=cfg.dual_clip,
        value_clip=cfg.value_clip, advantage_normalization=cfg.normalize_advantage,
        recompute_advantage=cfg.recompute_advantage, vf_coef=cfg.vf_coef, ent_coef=cfg.ent_coef,
        max_grad_norm=cfg.max_grad_norm, gae_lambda=cfg.gae_lambda, gamma=cfg.gamma,
        return_scaling=cfg.return_scaling,
    )  # fmt: skip
    collector = Collector(algorithm, envs, VectorReplayBuffer(frames, cfg.n_envs))
    trainer = algorithm.create_trainer(OnPolicyTrainerParams(
        training_collector=collector, max_epochs=updates, epoch_num_steps=frames,
        collection_step_num_env_steps=frames, batch_size=cfg.batch_size,
        update_step_num_repetitions=cfg.n_epochs, verbose=False, show_progress=False,
    ))  # fmt: skip
    recorder.hold("actor and critic", algorithm)
    obs_rms = envs.get_obs_rms() if cfg.normalize_obs else None
    act = TianshouAct(policy, task.continuous, seed, obs_rms)
    nets = {"actor": actor, "critic": critic}

    trainer.reset()
    step = 0
    for _ in range(updates):
        try:
            epoch = trainer.execute_epoch()  # one collection, one update
        except ValueError as error:  # torch's check of the policy's distribution, mid-update
            check_finite(collector.collect_step, modules=nets)  # a non-finite parameter: Diverged
            invalid = re.match(r"Expected parameter (\w+)", str(error))
            if invalid is None:
                raise
            raise Diverged(
                collector.collect_step, f"policy {invalid[1]} is not finite or out of range"
            ) from error
        step = epoch.info_stat.train_step
        stats = epoch.training_stat
        losses = {"policy loss": stats.actor_loss.mean, "value loss": stats.vf_loss.mean}
        check_finite(step, losses, nets)
        recorder.steps(step)
        recorder.curve(step, "train/policy_loss", losses["policy loss"])
        recorder.curve(step, "train/value_loss", losses["value loss"])
        if evaluator.due(step):
            evaluator(step, act)
        if evaluator.stop:
            break
    recorder.steps(step)
    evaluator.final(step, act)
    envs.close()


def gaussian(loc_scale: tuple[torch.Tensor, torch.Tensor]) -> torch.distributions.Distribution:
    """The diagonal Gaussian of tianshou's continuous PPO examples."""
    loc, scale = loc_scale
    return torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)


class TianshouAct:
    """``act(obs, temperature)`` on a tianshou policy's actor."""

    def __init__(self, policy, continuous: bool, seed: int, obs_rms=None):
        self.policy, self.continuous, self.obs_rms = policy, continuous, obs_rms
        self.generator = torch.Generator().manual_seed(seed + 1)

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, temperature: float) -> np.ndarray:
        if self.obs_rms is not None:  # the training envs' running statistics, as they are now
            obs = self.obs_rms.norm(obs)
        out, _ = self.policy.actor(torch.as_tensor(obs, dtype=torch.float32))
        if not self.continuous:
            if temperature == 0:
                return out.argmax(-1).numpy()
            probs = torch.softmax(out / temperature, -1)
            return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).numpy()
        loc, scale = out
        if temperature > 0:
            loc = loc + scale * temperature * torch.randn(loc.shape, generator=self.generator)
        return self.policy.map_action(loc.numpy())  # tianshou's bound to [-1, 1] and scaling


TIANSHOU_PPO = Algorithm(
    name="tianshou-ppo",
    config=TianshouPPOConfig,
    task_defaults=TASK_DEFAULTS,
    train=train,
    description="tianshou PPO (Collector, OnPolicyTrainer; Categorical or Gaussian MLP), wrapped as a plugin",
    version="1",
)
