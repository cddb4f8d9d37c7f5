"""External baselines: stable-baselines3 PPO and A2C and sb3-contrib TRPO, trained by SB3 itself
and evaluated through the project's evaluation protocol, so their records sit beside the
project's own.

Unset hyperparameters (None) keep SB3's own defaults.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos.guard import Diverged, check_finite
from bench.control.policies import HiddenSizes
from bench.control.tasks import Task
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class SB3Config(BaseModel):
    """Hyperparameters passed to SB3 (None = SB3's default). PPO-only: n_epochs, clip_range,
    clip_schedule. PPO and TRPO: batch_size. A2C-only: use_rms_prop. TRPO-only: cg_damping,
    cg_max_steps, n_critic_updates, target_kl (lr is the value function's)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n_envs: int = Field(8, ge=1, le=4096, description="parallel environments (DummyVecEnv)")
    n_steps: int | None = Field(None, ge=1, le=1_000_000, description="steps per env per rollout")
    batch_size: int | None = Field(None, ge=1, le=10_000_000, description="minibatch size (PPO)")
    n_epochs: int | None = Field(None, ge=1, le=10_000, description="epochs per rollout (PPO)")
    lr: float | None = Field(None, gt=0, description="learning rate")
    lr_schedule: Literal["constant", "linear"] = Field("constant", description="lr annealing")
    gamma: float | None = Field(None, ge=0, le=1, description="discount factor")
    gae_lambda: float | None = Field(None, ge=0, le=1, description="GAE lambda")
    clip_range: float | None = Field(None, gt=0, description="clip epsilon (PPO)")
    clip_schedule: Literal["constant", "linear"] = Field("constant", description="clip annealing")
    ent_coef: float | None = Field(None, ge=0, description="entropy coefficient")
    vf_coef: float | None = Field(None, ge=0, description="value loss coefficient")
    max_grad_norm: float | None = Field(None, gt=0, description="gradient-norm clip")
    normalize_advantage: bool | None = Field(None, description="normalise advantages")
    use_rms_prop: bool | None = Field(None, description="RMSprop optimiser (A2C)")
    normalize: bool = Field(False, description="VecNormalize observations and rewards")
    use_sde: bool | None = Field(None, description="generalised state-dependent exploration")
    sde_sample_freq: int | None = Field(
        None, ge=-1, le=10_000_000, description="gSDE noise resample frequency"
    )
    cg_damping: float | None = Field(None, gt=0, description="conjugate-gradient damping (TRPO)")
    cg_max_steps: int | None = Field(None, ge=1, le=1000, description="conjugate-gradient iterations (TRPO)")
    n_critic_updates: int | None = Field(
        None, ge=1, le=10_000, description="value updates per rollout (TRPO)"
    )
    target_kl: float | None = Field(None, gt=0, description="KL trust-region radius (TRPO)")
    hidden_sizes: HiddenSizes | None = Field(None, description="pi and vf hidden layers")
    activation: Literal["tanh", "relu"] | None = Field(None, description="hidden activation")
    log_std_init: float | None = Field(None, description="initial log std")
    ortho_init: bool | None = Field(None, description="orthogonal initialisation")


# rl-zoo A2C with gSDE for continuous control (a2c.yml), shared by its two continuous tasks
_A2C_GSDE = dict(
    normalize=True,
    n_steps=8,
    gae_lambda=0.9,
    use_rms_prop=True,
    ent_coef=0.0,
    max_grad_norm=0.5,
    lr=7e-4,
    lr_schedule="linear",
    use_sde=True,
    log_std_init=-2.0,
    ortho_init=False,
)

# rl-baselines3-zoo hyperparameters (hyperparams/ppo.yml, a2c.yml) for the shipped tasks.
TASK_DEFAULTS: dict[str, dict[str, dict]] = {
    "sb3-ppo": {
        "CartPole-v1": dict(
            n_envs=8,
            n_steps=32,
            batch_size=256,
            n_epochs=20,
            lr=1e-3,
            lr_schedule="linear",
            gamma=0.98,
            gae_lambda=0.8,
            clip_range=0.2,
            clip_schedule="linear",
            ent_coef=0.0,
        ),
        "LunarLander-v3": dict(
            n_envs=16,
            n_steps=1024,
            batch_size=64,
            n_epochs=4,
            gamma=0.999,
            gae_lambda=0.98,
            ent_coef=0.01,
        ),
        "Pendulum-v1": dict(
            n_envs=4,
            n_steps=1024,
            batch_size=64,
            n_epochs=10,
            lr=1e-3,
            gamma=0.9,
            gae_lambda=0.95,
            clip_range=0.2,
            ent_coef=0.0,
            use_sde=True,
            sde_sample_freq=4,
        ),
    },
    "sb3-a2c": {
        "CartPole-v1": dict(n_envs=8, ent_coef=0.0),
        "LunarLander-v3": dict(
            n_envs=8, gamma=0.995, n_steps=5, lr=8.3e-4, lr_schedule="linear", ent_coef=1e-5
        ),
        "LunarLanderContinuous-v3": {**_A2C_GSDE, "n_envs": 4, "gamma": 0.99},
        "Pendulum-v1": {**_A2C_GSDE, "n_envs": 8, "gamma": 0.9},
    },
}

TASK_DEFAULTS["sb3-ppo"]["LunarLanderContinuous-v3"] = TASK_DEFAULTS["sb3-ppo"]["LunarLander-v3"]

# rl-baselines3-zoo hyperparams/trpo.yml
TASK_DEFAULTS["sb3-trpo"] = {
    "CartPole-v1": dict(n_envs=2, n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98, gamma=0.99,
                        lr=1e-3, n_critic_updates=20),
    "LunarLander-v3": dict(n_envs=2, n_steps=512, cg_damping=0.01, gae_lambda=0.98, gamma=0.99, lr=1e-3,
                           n_critic_updates=15),
    "Pendulum-v1": dict(n_envs=2, n_steps=1024, gamma=0.9, n_critic_updates=15, use_sde=True,
                        sde_sample_freq=4),
    "LunarLanderContinuous-v3": dict(normalize=True, n_envs=2, n_steps=1024, n_critic_updates=20),
}  # fmt: skip


def _schedule(kind: str, value: float):
    return (lambda progress: progress * value) if kind == "linear" else value


def sb3_kwargs(algo: str, cfg: SB3Config) -> dict:
    """Constructor keyword arguments for the SB3 class of ``algo``."""
    kw: dict = {}
    names = [
        "n_steps",
        "gamma",
        "gae_lambda",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
        "normalize_advantage",
        "use_sde",
        "sde_sample_freq",
    ]
    if algo == "sb3-ppo":
        names += ["batch_size", "n_epochs"]
        if cfg.clip_range is not None:
            kw["clip_range"] = _schedule(cfg.clip_schedule, cfg.clip_range)
    elif algo == "sb3-trpo":
        foreign = ["ent_coef", "vf_coef", "max_grad_norm", "n_epochs", "clip_range", "use_rms_prop"]
        given = [n for n in foreign if getattr(cfg, n) is not None]
        if given:
            raise ValueError(
                f"sb3-trpo has no parameter {', '.join(given)} (TRPO: a KL trust region, no clipping)"
            )
        names = [n for n in names if n not in foreign]
        names += ["batch_size", "cg_damping", "cg_max_steps", "n_critic_updates", "target_kl"]
    else:
        names += ["use_rms_prop"]
    for name in names:
        value = getattr(cfg, name)
        if value is not None:
            kw[name] = value
    if cfg.lr is not None:
        kw["learning_rate"] = _schedule(cfg.lr_schedule, cfg.lr)
    policy_kwargs: dict = {}
    if cfg.hidden_sizes is not None:
        policy_kwargs["net_arch"] = dict(pi=list(cfg.hidden_sizes), vf=list(cfg.hidden_sizes))
    if cfg.activation is not None:
        policy_kwargs["activation_fn"] = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[cfg.activation]
    for name in ("log_std_init", "ortho_init"):
        if getattr(cfg, name) is not None:
            policy_kwargs[name] = getattr(cfg, name)
    if policy_kwargs:
        kw["policy_kwargs"] = policy_kwargs
    return kw


def train(
    algo: str,
    task: Task,
    cfg: SB3Config,
    env_steps: int,
    seed: int,
    evaluator: Evaluator,
    recorder: Recorder,
) -> None:
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecNormalize

    venv = make_vec_env(task.id, n_envs=cfg.n_envs, seed=seed)
    if cfg.normalize:
        venv = VecNormalize(venv, gamma=cfg.gamma if cfg.gamma is not None else 0.99)
    if algo == "sb3-trpo":
        from sb3_contrib import TRPO as cls
    else:
        cls = PPO if algo == "sb3-ppo" else A2C
    model = cls("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **sb3_kwargs(algo, cfg))
    # a logger with no outputs: SB3's default one makes an empty tempdir/SB3-<time> folder per run
    model.set_logger(Logger(folder=None, output_formats=[]))
    policy = model.policy

    @torch.no_grad()
    def act(obs: np.ndarray, temperature: float) -> np.ndarray:
        if cfg.normalize:
            obs = venv.normalize_obs(obs)
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        dist = policy.get_distribution(obs_t).distribution
        if not task.continuous:
            logits = dist.logits
            if temperature == 0:
                return logits.argmax(-1).numpy()
            probs = torch.softmax(logits / temperature, -1)
            return torch.multinomial(probs, 1, generator=generator).squeeze(-1).numpy()
        mean = dist.mean
        if temperature == 0:
            return mean.numpy()
        noise = torch.randn(mean.shape, generator=generator)
        return (mean + dist.stddev * temperature * noise).numpy()

    generator = torch.Generator().manual_seed(seed + 1)

    class ProtocolCallback(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns: list[float] = []

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
            step = self.model.num_timesteps
            if evaluator.due(step):
                evaluator(step, act)
            return True

        def _on_rollout_start(self) -> None:
            # after SB3's last update, before the policy acts again: NaN / inf parameters stop the run
            check_finite(self.model.num_timesteps, None, policy)

        def _on_rollout_end(self) -> None:
            step = self.model.num_timesteps
            if self.returns:
                recorder.curve(step, "train/episode_return", float(np.mean(self.returns)))
                self.returns = []
            recorder.curve(step, "perf/env_steps_per_s", step / max(recorder.train_time(), 1e-9))
            recorder.steps(step)

    try:
        model.learn(total_timesteps=env_steps, callback=ProtocolCallback())
    except Diverged:
        raise
    except Exception:  # e.g. torch.distributions rejecting NaN logits: report the divergence
        check_finite(model.num_timesteps, None, policy)
        raise
    check_finite(model.num_timesteps, None, policy)
    recorder.env_steps = model.num_timesteps
    evaluator.final(model.num_timesteps, act)
    venv.close()
