"""skrl's PPO as a bench algorithm, for discrete (CartPole) and continuous (Pendulum) actions.

skrl does the training: its ``PPO`` agent, ``RandomMemory`` and ``StepTrainer``, on a gymnasium
vector env wrapped by ``wrap_env``. This module only builds the two networks skrl asks for and
drives the trainer one vector step at a time, so that bench's train contract can be kept between
steps: report steps and losses after each update, stop on a non-finite loss or parameter, hand
the evaluator a policy when it is due and at the end.

The policy given to the evaluator acts through the agent in evaluation mode, so skrl's own
observation preprocessing applies; temperature 0 is the greedy action (Categorical) or the mean
(Gaussian), temperature T > 0 samples from logits / T (Categorical) or with the std scaled by T.
"""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from bench.api import Algorithm, check_finite


class SkrlPPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n_envs: int = Field(8, ge=1, le=256, description="parallel environments")
    rollouts: int = Field(128, ge=1, description="steps per env between updates (skrl: rollouts)")
    n_epochs: int = Field(10, ge=1, description="passes over each rollout (skrl: learning_epochs)")
    mini_batches: int = Field(4, ge=1, description="minibatches per pass (skrl: mini_batches)")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    clip_range: float = Field(0.2, gt=0, description="policy ratio clip epsilon (skrl: ratio_clip)")
    clip_range_vf: float = Field(0.0, ge=0, description="value prediction clip (0 = off; skrl: value_clip)")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus (skrl: entropy_loss_scale)")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient (skrl: value_loss_scale)")
    max_grad_norm: float = Field(0.5, ge=0, description="global gradient-norm clip (0 = off)")
    normalize_obs: bool = Field(False, description="standardise observations (skrl: RunningStandardScaler)")
    normalize_value: bool = Field(False, description="standardise value targets (the same)")
    hidden: int = Field(64, ge=1, le=4096, description="units in each of the two tanh layers")
    log_std_init: float = Field(0.0, description="initial log std of the Gaussian (continuous actions)")


# Starting points, not tuned: skrl ships no per-task defaults. On seeds 0 and 1, CartPole reached
# 500 by 30k env steps and Pendulum about -160 by 60k (greedy evaluation).
TASK_DEFAULTS = {
    "CartPole-v1": dict(n_envs=8, rollouts=32, n_epochs=10, mini_batches=4, lr=1e-3, gamma=0.98,
                        gae_lambda=0.8),
    "Pendulum-v1": dict(n_envs=8, rollouts=256, n_epochs=10, mini_batches=32, lr=1e-3, gamma=0.9,
                        normalize_obs=True, normalize_value=True),
}  # fmt: skip


def mlp(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, n_out))  # fmt: skip


def models(observation_space, action_space, cfg: SkrlPPOConfig) -> dict:
    """skrl's ``{"policy": ..., "value": ...}``: a Categorical or Gaussian policy and a value net."""
    from skrl.models.torch import CategoricalMixin, DeterministicMixin, GaussianMixin, Model

    spaces = dict(observation_space=observation_space, action_space=action_space, device="cpu")

    class CategoricalPolicy(CategoricalMixin, Model):
        def __init__(self):
            Model.__init__(self, **spaces)
            CategoricalMixin.__init__(self, unnormalized_log_prob=True)
            self.net = mlp(self.num_observations, self.num_actions, cfg.hidden)

        def compute(self, inputs, role=""):
            return self.net(inputs["observations"]), {}

    class GaussianPolicy(GaussianMixin, Model):
        def __init__(self):
            Model.__init__(self, **spaces)
            GaussianMixin.__init__(self)
            self.net = mlp(self.num_observations, self.num_actions, cfg.hidden)
            self.log_std = nn.Parameter(torch.full((self.num_actions,), cfg.log_std_init))

        def compute(self, inputs, role=""):
            return self.net(inputs["observations"]), {"log_std": self.log_std}

    class Value(DeterministicMixin, Model):
        def __init__(self):
            Model.__init__(self, **spaces)
            DeterministicMixin.__init__(self)
            self.net = mlp(self.num_observations, 1, cfg.hidden)

        def compute(self, inputs, role=""):
            return self.net(inputs["observations"]), {}

    policy = GaussianPolicy() if isinstance(action_space, gym.spaces.Box) else CategoricalPolicy()
    return {"policy": policy, "value": Value()}


def train(task, cfg, env_steps, seed, evaluator, recorder):
    import skrl
    from skrl.agents.torch.ppo import PPO, PPO_CFG
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.memories.torch import RandomMemory
    from skrl.resources.preprocessors.torch import RunningStandardScaler
    from skrl.trainers.torch import StepTrainer, StepTrainerCfg
    from skrl.utils import set_seed

    skrl.logger.setLevel(logging.WARNING)  # its INFO lines (the seed) would break bench's progress bar
    set_seed(seed)  # python, numpy, torch and skrl's key, which seeds the envs' first reset
    # skrl's wrapper reads a finished episode's reset observation from the same step (gymnasium
    # 1.x vector envs default to NEXT_STEP, which would feed PPO one spurious transition an episode)
    same_step = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
    env = wrap_env(gym.make_vec(task.id, cfg.n_envs, vectorization_mode="sync", vector_kwargs=same_step),
                   wrapper="gymnasium", verbose=False)  # fmt: skip
    scaler = RunningStandardScaler
    agent_cfg = PPO_CFG(
        rollouts=cfg.rollouts, learning_epochs=cfg.n_epochs, mini_batches=cfg.mini_batches,
        learning_rate=cfg.lr, discount_factor=cfg.gamma, gae_lambda=cfg.gae_lambda,
        ratio_clip=cfg.clip_range, value_clip=cfg.clip_range_vf, entropy_loss_scale=cfg.ent_coef,
        value_loss_scale=cfg.vf_coef, grad_norm_clip=cfg.max_grad_norm, time_limit_bootstrap=True,
        observation_preprocessor=scaler if cfg.normalize_obs else None,
        observation_preprocessor_kwargs={"size": env.observation_space, "device": "cpu"},
        value_preprocessor=scaler if cfg.normalize_value else None,
        value_preprocessor_kwargs={"size": 1, "device": "cpu"},
    )  # fmt: skip
    agent_cfg.experiment.write_interval = 0  # bench records the run: no TensorBoard files
    agent_cfg.experiment.checkpoint_interval = 0  # and no checkpoints
    nets = models(env.observation_space, env.action_space, cfg)
    memory = RandomMemory(memory_size=cfg.rollouts, num_envs=env.num_envs, device="cpu")
    agent = PPO(models=nets, memory=memory, observation_space=env.observation_space,
                action_space=env.action_space, device="cpu", cfg=agent_cfg)  # fmt: skip
    timesteps = -(-env_steps // env.num_envs)  # vector steps; the last one may pass env_steps
    trainer_cfg = StepTrainerCfg(timesteps=timesteps, headless=True, disable_progressbar=True,
                                 close_environment_at_exit=False)  # fmt: skip
    trainer = StepTrainer(env=env, agents=agent, cfg=trainer_cfg)
    policy = SkrlAct(agent, task.continuous, seed)

    step = 0
    for t in range(timesteps):
        trainer.train(timestep=t, timesteps=timesteps)
        step = (t + 1) * env.num_envs
        if (t + 1) % cfg.rollouts == 0:  # skrl updated after this step
            losses = {"policy loss": agent.tracking_data["Loss / Policy loss"][-1],
                      "value loss": agent.tracking_data["Loss / Value loss"][-1]}  # fmt: skip
            check_finite(step, losses, nets)
            recorder.steps(step)
            recorder.curve(step, "train/policy_loss", losses["policy loss"])
            recorder.curve(step, "train/value_loss", losses["value loss"])
            agent.tracking_data.clear()  # nothing writes it out (write_interval 0), so it would grow
        if evaluator.due(step):
            evaluator(step, policy)
        if evaluator.stop:
            break
    recorder.steps(step)
    evaluator.final(step, policy)
    env.close()


class SkrlAct:
    """``act(obs, temperature)`` through a skrl agent in evaluation mode."""

    def __init__(self, agent, continuous: bool, seed: int):
        self.agent, self.continuous = agent, continuous
        self.generator = torch.Generator().manual_seed(seed + 1)

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, temperature: float) -> np.ndarray:
        training = self.agent.training
        self.agent.enable_training_mode(False)
        with torch.random.fork_rng():  # skrl samples an action too: keep training's random stream
            _, out = self.agent.act(torch.as_tensor(obs, dtype=torch.float32), None, timestep=0, timesteps=0)
        self.agent.enable_training_mode(training)
        if not self.continuous:
            logits = out["net_output"]
            if temperature == 0:
                return logits.argmax(-1).numpy()
            probs = torch.softmax(logits / temperature, -1)
            return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).numpy()
        mean = out["mean_actions"]
        if temperature == 0:
            return mean.numpy()
        noise = torch.randn(mean.shape, generator=self.generator)
        return (mean + out["log_std"].exp() * temperature * noise).numpy()


SKRL_PPO = Algorithm(
    name="skrl-ppo",
    config=SkrlPPOConfig,
    task_defaults=TASK_DEFAULTS,
    train=train,
    description="skrl PPO (Categorical or Gaussian MLP policy), wrapped as a plugin",
    version="1",
)
