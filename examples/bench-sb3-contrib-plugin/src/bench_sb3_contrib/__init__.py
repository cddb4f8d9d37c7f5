"""sb3-contrib's RecurrentPPO (PPO with an LSTM policy) as a bench algorithm.

The wrapper does what bench's train contract asks of any algorithm: train for ``env_steps`` from
``seed``, report steps, hand the evaluator a policy when it is due and at the end. The policy is
recurrent, so it keeps one LSTM state per episode and has ``reset(n)``, which the evaluator calls
before each batch of episodes. Temperature scales the logits (or the Gaussian's std) of the
action distribution the LSTM policy gives for the current state.
"""

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.api import Algorithm, check_finite


class RecurrentPPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_envs: int = Field(8, ge=1, le=256, description="parallel environments")
    n_steps: int = Field(128, ge=2, description="steps per env per rollout")
    batch_size: int = Field(128, ge=2, description="minibatch size")
    n_epochs: int = Field(4, ge=1, description="epochs per rollout")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus")
    lstm_hidden_size: int = Field(64, ge=1, le=4096, description="LSTM units")
    policy: Literal["MlpLstmPolicy"] = Field("MlpLstmPolicy", description="sb3-contrib policy class")


def train(task, cfg, env_steps, seed, evaluator, recorder):
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import Logger

    venv = make_vec_env(task.id, n_envs=cfg.n_envs, seed=seed)
    model = RecurrentPPO(
        cfg.policy, venv, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
        learning_rate=cfg.lr, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, ent_coef=cfg.ent_coef,
        policy_kwargs={"lstm_hidden_size": cfg.lstm_hidden_size}, seed=seed, device="cpu", verbose=0,
    )  # fmt: skip
    model.set_logger(Logger(folder=None, output_formats=[]))
    policy = RecurrentAct(model.policy, task.continuous, seed)

    class Protocol(BaseCallback):
        def _on_step(self) -> bool:
            step = self.model.num_timesteps
            if evaluator.due(step):
                evaluator(step, policy)
            return not evaluator.stop

        def _on_rollout_end(self) -> None:
            check_finite(self.model.num_timesteps, None, model.policy)
            recorder.steps(self.model.num_timesteps)

    model.learn(total_timesteps=env_steps, callback=Protocol())
    evaluator.final(model.num_timesteps, policy)
    venv.close()


class RecurrentAct:
    """``act(obs, temperature)`` over an LSTM policy, one state per episode (``reset(n)``)."""

    def __init__(self, policy, continuous: bool, seed: int):
        self.policy, self.continuous = policy, continuous
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.state, self.starts = None, None

    def reset(self, n: int) -> None:
        self.state, self.starts = None, torch.ones(n)

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, temperature: float) -> np.ndarray:
        n = len(obs)
        if self.state is None or self.state[0].shape[1] != n:
            shape = (self.policy.lstm_actor.num_layers, n, self.policy.lstm_actor.hidden_size)
            self.state = (torch.zeros(shape), torch.zeros(shape))
            self.starts = torch.ones(n)
        dist, self.state = self.policy.get_distribution(torch.as_tensor(obs, dtype=torch.float32), self.state,
                                                        self.starts)  # fmt: skip
        self.starts = torch.zeros(n)
        d = dist.distribution
        if not self.continuous:
            if temperature == 0:
                return d.logits.argmax(-1).numpy()
            probs = torch.softmax(d.logits / temperature, -1)
            return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1).numpy()
        if temperature == 0:
            return d.mean.numpy()
        noise = torch.randn(d.mean.shape, generator=self.generator)
        return (d.mean + d.stddev * temperature * noise).numpy()


RECURRENT_PPO = Algorithm(
    name="sb3-recurrent-ppo",
    config=RecurrentPPOConfig,
    task_defaults={},
    train=train,
    description="sb3-contrib RecurrentPPO (LSTM policy), wrapped as a plugin",
    version="1",
)
