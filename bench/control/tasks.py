"""Classic-control tasks: how to build their environments and how to normalise their scores.

Score bounds: ``random_score`` is the mean return of a uniformly random policy (measured with
``python -m bench.control.tasks`` over 200 episodes, seed 0) and ``solved_score`` the score at
which the task counts as solved (gymnasium's ``reward_threshold`` where it declares one).
A normalised score is ``(score - random_score) / (solved_score - random_score)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class Task:
    """A gymnasium task with its declared thresholds and normalisation bounds."""

    id: str
    reward_threshold: float
    random_score: float
    solved_score: float
    continuous: bool
    # numpy-vectorised implementation (``vector_entry_point``) exists for this env
    native_vector: bool = False

    def make_vec(self, num_envs: int) -> gym.vector.VectorEnv:
        """Vectorised env (autoreset mode NEXT_STEP); seed it with ``reset(seed=int)``."""
        mode = "vector_entry_point" if self.native_vector else "sync"
        return gym.make_vec(self.id, num_envs, vectorization_mode=mode)

    def normalise(self, score: float | np.ndarray) -> float | np.ndarray:
        return (score - self.random_score) / (self.solved_score - self.random_score)


TASKS: dict[str, Task] = {
    t.id: t
    for t in [
        Task("CartPole-v1", 475.0, 22.7, 500.0, continuous=False, native_vector=True),
        Task("LunarLander-v3", 200.0, -185.5, 200.0, continuous=False),
        Task("LunarLanderContinuous-v3", 200.0, -212.5, 200.0, continuous=True),
        # Pendulum declares no threshold; -200 is the customary "solved" level.
        Task("Pendulum-v1", -200.0, -1255.5, -200.0, continuous=True),
    ]
}


def get_task(task_id: str) -> Task:
    try:
        return TASKS[task_id]
    except KeyError:
        raise KeyError(f"unknown task {task_id!r}; known: {', '.join(TASKS)}") from None


def random_policy_score(task: Task, episodes: int = 200, seed: int = 0) -> float:
    """Mean return of a uniformly random policy over ``episodes`` episodes."""
    env = gym.make(task.id)
    env.action_space.seed(seed)
    returns = []
    for i in range(episodes):
        env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(r)
            done = term or trunc
        returns.append(total)
    return float(np.mean(returns))


if __name__ == "__main__":
    for t in TASKS.values():
        print(f"{t.id}: random policy mean return {random_policy_score(t):.1f}")
