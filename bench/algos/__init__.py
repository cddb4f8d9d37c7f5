"""Algorithm registry: name -> (config model, shipped per-task defaults, train function).

Every ``train`` has the signature ``train(task, cfg, env_steps, seed, evaluator, recorder)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pydantic import BaseModel

from bench.algos import external, pg, ppo


@dataclass(frozen=True)
class Algorithm:
    name: str
    config: type[BaseModel]
    task_defaults: dict[str, dict]
    train: Callable
    description: str


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm(
            "pg",
            pg.PGConfig,
            pg.TASK_DEFAULTS,
            pg.train,
            "REINFORCE with reward-to-go, optional value baseline (project's own)",
        ),
        Algorithm(
            "ppo",
            ppo.PPOConfig,
            ppo.TASK_DEFAULTS,
            ppo.train,
            "PPO, clipped or adaptive-KL objective, GAE (project's own)",
        ),
        Algorithm(
            "sb3-ppo",
            external.SB3Config,
            external.TASK_DEFAULTS["sb3-ppo"],
            partial(external.train, "sb3-ppo"),
            "stable-baselines3 PPO (rl-zoo defaults)",
        ),
        Algorithm(
            "sb3-a2c",
            external.SB3Config,
            external.TASK_DEFAULTS["sb3-a2c"],
            partial(external.train, "sb3-a2c"),
            "stable-baselines3 A2C (rl-zoo defaults)",
        ),
    ]
}
