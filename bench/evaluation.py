"""The shared evaluation protocol (shared/design.md §3), used by every algorithm.

Every ``eval_every`` env steps the policy plays ``eval_episodes`` episodes on evaluation envs
whose seeds are disjoint from the training seeds, at each temperature of the suite
(T = 0: greedy / mean action). Records ``eval/return`` (mean over episodes), ``eval/return_std``
with n = episodes. The last evaluation, at the end of training, is the run's final score.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from bench.control.tasks import Task
from bench.recorder import Recorder

# Evaluation env seeds start here; training envs use seeds seed .. seed + n_envs - 1.
EVAL_SEED_BASE = 1_000_000

ActFn = Callable[[np.ndarray, float], np.ndarray]


def episode_returns(act: ActFn, env, seed: int, temperature: float) -> np.ndarray:
    """Plays one episode in each sub-env of ``env`` (NEXT_STEP autoreset); returns [num_envs]."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    space = env.single_action_space
    bounds = (space.low, space.high) if hasattr(space, "low") else None
    totals = np.zeros(n)
    running = np.ones(n, dtype=bool)
    while running.any():
        action = act(obs, temperature)
        if bounds is not None:
            action = np.clip(action, *bounds)
        obs, reward, term, trunc, _ = env.step(action)
        totals += np.where(running, reward, 0.0)
        running &= ~(term | trunc)
    return totals


class Evaluator:
    """Runs the protocol on a schedule and writes the records; its time is not training time."""

    def __init__(
        self,
        task: Task,
        recorder: Recorder,
        seed: int,
        eval_every: int,
        eval_episodes: int,
        temperatures: list[float],
    ):
        self.task, self.recorder = task, recorder
        self.seed = EVAL_SEED_BASE + 1000 * seed
        self.eval_every, self.temperatures = eval_every, temperatures
        self.env = task.make_vec(eval_episodes)
        self.next_eval = eval_every
        self.last_step = -1

    def due(self, step: int) -> bool:
        return step >= self.next_eval

    def __call__(self, step: int, act: ActFn) -> dict[float, float]:
        """Evaluate now; returns mean return per temperature."""
        t0 = time.perf_counter()
        means = {}
        for temp in self.temperatures:
            returns = episode_returns(act, self.env, self.seed, temp)
            n = len(returns)
            self.recorder.eval(step, temp, "eval/return", returns.mean(), n)
            self.recorder.eval(step, temp, "eval/return_std", returns.std(), n)
            means[temp] = float(returns.mean())
        self.recorder.eval_seconds += time.perf_counter() - t0
        while self.next_eval <= step:
            self.next_eval += self.eval_every
        self.last_step = step
        return means

    def final(self, step: int, act: ActFn) -> None:
        """The end-of-training evaluation (skipped if one just ran at this step)."""
        if self.last_step != step:
            self(step, act)
        self.env.close()
