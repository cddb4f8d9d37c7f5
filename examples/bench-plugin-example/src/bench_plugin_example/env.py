"""LineWalk-v0: walk from the left end of a line of 8 cells to the right end. Actions: 0 left,
1 right; reward -1 per step, the episode ends at the right end (or after 50 steps). The optimum
takes 7 steps (return -7); a uniformly random walk rarely arrives (mean return -38.6 over 200
episodes, `python -m bench_plugin_example.env`)."""

import gymnasium as gym
import numpy as np

from bench.api import Task

LENGTH = 8


class LineWalk(gym.Env):
    def __init__(self):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (LENGTH,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0

    def _obs(self):
        obs = np.zeros(LENGTH, np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return self._obs(), {}

    def step(self, action):
        self.position = int(np.clip(self.position + (1 if action == 1 else -1), 0, LENGTH - 1))
        return self._obs(), -1.0, self.position == LENGTH - 1, False, {}


gym.register(id="LineWalk-v0", entry_point=LineWalk, max_episode_steps=50, reward_threshold=-8.0)

LINE_WALK = Task("LineWalk-v0", reward_threshold=-8.0, random_score=-38.6, solved_score=-7.0,
                 continuous=False)  # fmt: skip


if __name__ == "__main__":
    from bench.api import random_policy_score

    print(f"random policy: {random_policy_score(LINE_WALK):.1f}")
