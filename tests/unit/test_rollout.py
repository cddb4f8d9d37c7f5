"""RolloutCollector against a deterministic fake vector env with NEXT_STEP autoreset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from bench.algos.rollout import RolloutCollector
from bench.control.policies import ActorCritic
from bench.recorder import Recorder


class FakeVecEnv:
    """Two envs. Env 0 terminates after 3 steps, env 1 is truncated after 2 steps.

    Episode ``e`` of env ``i``: after ``k`` steps the observation is ``100 i + 10 e + k`` and the
    reward of step ``k`` (1-based) is ``100 i + 10 e + k``. NEXT_STEP autoreset: the step after an
    episode end ignores the action and returns the reset observation, reward 0, term/trunc False.
    """

    num_envs = 2
    single_observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    single_action_space = spaces.Discrete(2)
    TERM_AFTER = {0: 3}
    TRUNC_AFTER = {1: 2}

    def __init__(self):
        self.episode = np.zeros(2, int)
        self.k = np.zeros(2, int)
        self.needs_reset = np.zeros(2, bool)
        self.actions: list[np.ndarray] = []
        self.episode_rewards: list[tuple[int, float]] = []  # (env, return) per finished episode
        self._ret = np.zeros(2)

    def _obs(self) -> np.ndarray:
        return (100 * np.arange(2) + 10 * self.episode + self.k).astype(np.float32)[:, None]

    def reset(self, seed=None):
        self.episode[:] = 0
        self.k[:] = 0
        self.needs_reset[:] = False
        self._ret[:] = 0.0
        return self._obs(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        assert actions.shape == (2,)
        assert all(self.single_action_space.contains(int(a)) for a in actions)
        self.actions.append(actions.copy())
        reward = np.zeros(2, np.float64)
        term = np.zeros(2, bool)
        trunc = np.zeros(2, bool)
        for i in range(2):
            if self.needs_reset[i]:
                self.episode[i] += 1
                self.k[i] = 0
                self.needs_reset[i] = False
                continue
            self.k[i] += 1
            reward[i] = 100 * i + 10 * self.episode[i] + self.k[i]
            self._ret[i] += reward[i]
            term[i] = self.k[i] == self.TERM_AFTER.get(i, -1)
            trunc[i] = self.k[i] == self.TRUNC_AFTER.get(i, -1)
            if term[i] or trunc[i]:
                self.needs_reset[i] = True
                self.episode_rewards.append((i, float(self._ret[i])))
                self._ret[i] = 0.0
        return self._obs(), reward, term, trunc, {}


# timeline over 6 steps (t = 0..5):
#   env 0: steps 1,2,3 (terminated at t=2), reset at t=3, steps 1,2 of episode 1 at t=4,5
#   env 1: steps 1,2 (truncated at t=1), reset at t=2, steps 1,2 (truncated at t=4), reset at t=5
EXPECTED_VALID = [[True, True], [True, True], [True, False], [False, True], [True, True], [True, False]]
EXPECTED_DONES = [[False, False], [False, True], [True, False], [False, False], [False, True], [False, False]]
EXPECTED_TRUNC = [
    [False, False],
    [False, True],
    [False, False],
    [False, False],
    [False, True],
    [False, False],
]
EXPECTED_REWARDS = [[1, 101], [2, 102], [3, 0], [0, 111], [11, 112], [12, 0]]
# observations the policy saw; on reset steps it is the final observation of the episode
EXPECTED_OBS = [[0, 100], [1, 101], [2, 102], [3, 110], [10, 111], [11, 112]]
# finished episodes in the order they end: env 1 (t=1), env 0 (t=2), env 1 (t=4)
EXPECTED_RETURNS = [101 + 102, 1 + 2 + 3, 111 + 112]


def _collector(env: FakeVecEnv, recorder: Recorder) -> RolloutCollector:
    torch.manual_seed(0)
    model = ActorCritic(1, 2, continuous=False)
    return RolloutCollector(
        env, model, seed=0, gamma=0.99, normalize_obs=False, normalize_reward=False, recorder=recorder
    )


def test_collect_six_steps():
    env, recorder = FakeVecEnv(), Recorder()
    collector = _collector(env, recorder)
    ro = collector.collect(6)

    assert ro.valid.tolist() == EXPECTED_VALID
    assert ro.dones.tolist() == EXPECTED_DONES
    assert ro.truncated.tolist() == EXPECTED_TRUNC
    assert ro.rewards.tolist() == EXPECTED_REWARDS
    assert ro.obs.squeeze(-1).tolist() == EXPECTED_OBS
    assert ro.values.shape == (7, 2)
    assert ro.actions.shape == ro.logp.shape == (6, 2)
    assert ro.params.shape == (6, 2, 2)
    # the actions stored are the ones sent to the env
    assert ro.actions.tolist() == [a.tolist() for a in env.actions]
    # the last value row is V of the current observation (bootstrap of unfinished tails)
    with torch.no_grad():
        last = collector.model.value(torch.tensor([[12.0], [120.0]]))
    torch.testing.assert_close(ro.values[-1], last)

    assert collector.env_steps == 9  # 5 valid steps of env 0 + 4 of env 1
    assert collector.env_steps == int(np.sum(EXPECTED_VALID))

    assert [r for _, r in env.episode_rewards] == EXPECTED_RETURNS
    assert collector.finished_returns == EXPECTED_RETURNS
    assert collector.finished_lengths == [2, 3, 2]  # valid steps of each finished episode
    collector.log_episodes()
    assert len(recorder.curves) == 2
    step, _, metric, value = recorder.curves[0]
    assert (step, metric) == (9, "train/episode_return")
    assert value == pytest.approx(np.mean(EXPECTED_RETURNS))
    assert value == pytest.approx((203 + 6 + 223) / 3)
    step, _, metric, value = recorder.curves[1]
    assert (step, metric) == (9, "train/episode_length")
    assert value == pytest.approx(7 / 3)
    # nothing finished since: no new point
    assert collector.finished_returns == []
    collector.log_episodes()
    assert len(recorder.curves) == 2


def test_collect_keeps_state_between_rollouts():
    env, recorder = FakeVecEnv(), Recorder()
    collector = _collector(env, recorder)
    first = collector.collect(3)
    assert collector.env_steps == 5
    second = collector.collect(3)
    assert collector.env_steps == 9
    assert torch.cat([first.valid, second.valid]).tolist() == EXPECTED_VALID
    assert torch.cat([first.dones, second.dones]).tolist() == EXPECTED_DONES
    assert torch.cat([first.truncated, second.truncated]).tolist() == EXPECTED_TRUNC
    assert torch.cat([first.rewards, second.rewards]).tolist() == EXPECTED_REWARDS
    # the bootstrap row of the first rollout is V of the first observation of the second
    torch.testing.assert_close(first.values[-1], second.values[0])
    collector.log_episodes()
    assert recorder.curves[0][0] == 9
    assert recorder.curves[0][3] == pytest.approx(np.mean(EXPECTED_RETURNS))
