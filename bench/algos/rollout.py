"""On-policy experience collection shared by PG and PPO, and whole episodes of a fixed policy
(``reference_episodes``: the segments of control preference data, reward-model checks).

Gymnasium vector envs autoreset in NEXT_STEP mode: the step after an episode ends is a reset
step whose action is ignored (reward 0). Such steps are marked ``valid = False`` and left out of
the losses. The observation stored at that step is the final observation of the episode, so a
truncated episode can bootstrap with its value (``losses.bootstrap_truncated``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct, ReturnScaler, policy_act_fn
from bench.control.tasks import Task
from bench.recorder import Recorder

POLICY_OUT_GAIN = 0.01  # ActorCritic's orthogonal gain for the policy's last layer


@dataclass
class Rollout:
    """Tensors of one rollout; T steps x N envs (``values`` has T+1 rows)."""

    obs: torch.Tensor  # [T, N, obs_dim] (normalised as the policy saw them)
    actions: torch.Tensor  # [T, N] or [T, N, D]
    logp: torch.Tensor  # [T, N]
    params: torch.Tensor  # [T, N, A] distribution parameters at collection time
    values: torch.Tensor  # [T + 1, N]
    rewards: torch.Tensor  # [T, N] (scaled if reward normalisation is on)
    dones: torch.Tensor  # [T, N] episode ended at t (terminated or truncated)
    truncated: torch.Tensor  # [T, N] ended by the time limit, not by termination
    valid: torch.Tensor  # [T, N] False on autoreset steps


class RolloutCollector:
    """Steps a vector env with the current policy, keeping env state between rollouts."""

    def __init__(
        self,
        env,
        model: ActorCritic,
        seed: int,
        gamma: float,
        normalize_obs: bool,
        normalize_reward: bool,
        recorder: Recorder,
    ):
        self.env, self.model, self.gamma, self.recorder = env, model, gamma, recorder
        self.n = env.num_envs
        self.obs_norm = ObsNormalizer(env.single_observation_space.shape, normalize_obs)
        self.reward_scaler = ReturnScaler(self.n, gamma, normalize_reward)
        self.generator = torch.Generator().manual_seed(seed)
        self.obs, _ = env.reset(seed=seed)
        self.prev_done = np.zeros(self.n, dtype=bool)
        self.episode_return = np.zeros(self.n)
        self.episode_length = np.zeros(self.n, np.int64)
        self.finished_returns: list[float] = []
        self.finished_lengths: list[int] = []
        self.env_steps = 0
        space = env.single_action_space
        self.continuous = model.continuous
        if self.continuous:
            self.low, self.high = space.low, space.high

    @torch.no_grad()
    def collect(self, num_steps: int) -> Rollout:
        """Only the policy runs per step; values and log-probabilities of the whole rollout are
        computed afterwards in one batch (same parameters, so the same numbers)."""
        self.begin(num_steps)
        for _ in range(num_steps):
            self.act(self.model.policy(self.observe()))
        obs = self.end()
        return self.rollout(self.model.value(obs.flatten(0, 1)), self.model.log_prob)

    # The pieces of ``collect``, so that a seed batch (``bench.algos.seed_batch``) can run the
    # policies of several collectors in one call per step: begin, then per step observe -> policy
    # -> act, then end -> values -> rollout.

    def begin(self, num_steps: int) -> None:
        """Starts a rollout of ``num_steps`` steps: draws its exploration noise."""
        n = self.n
        self._t, self._noise = 0, self.model.noise((num_steps, n), self.generator)
        self._obs_buf, self._act_buf, self._par_buf = [], [], []
        self._rew = np.zeros((num_steps, n), np.float32)
        self._done = np.zeros((num_steps, n), bool)
        self._trunc_only = np.zeros((num_steps, n), bool)
        self._valid = np.zeros((num_steps, n), bool)

    def observe(self) -> torch.Tensor:
        """The current observations [N, obs_dim], normalised (updating the running statistics)."""
        obs_t = torch.from_numpy(self.obs_norm(self.obs, update=True))
        self._obs_buf.append(obs_t)
        return obs_t

    def act(self, params: torch.Tensor) -> None:
        """Samples actions from the policy's distribution parameters [N, A] at the observations of
        ``observe`` and steps the env."""
        t = self._t
        action = self.model.sample(params, 1.0, noise=self._noise[t])
        self._act_buf.append(action)
        self._par_buf.append(params)
        env_action = action.numpy()
        if self.continuous:
            env_action = np.clip(env_action, self.low, self.high)
        self.obs, reward, term, trunc, _ = self.env.step(env_action)
        is_valid = ~self.prev_done
        ended = (term | trunc) & is_valid
        self.episode_return += np.where(is_valid, reward, 0.0)
        self.episode_length += is_valid
        if ended.any():
            self.finished_returns.extend(self.episode_return[ended].tolist())
            self.finished_lengths.extend(self.episode_length[ended].tolist())
            self.episode_return[ended] = 0.0
            self.episode_length[ended] = 0
        self._rew[t] = self.reward_scaler(reward, ended, is_valid)
        self._done[t] = ended
        self._trunc_only[t] = trunc & ~term & is_valid
        self._valid[t] = is_valid
        self.prev_done = term | trunc
        self._t = t + 1

    def end(self) -> torch.Tensor:
        """Ends the rollout's steps: the observations [T + 1, N, obs_dim] whose values it needs."""
        self.env_steps += int(self._valid.sum())
        self._obs_buf.append(torch.from_numpy(self.obs_norm(self.obs)))
        self._all_obs = torch.stack(self._obs_buf)
        return self._all_obs

    def rollout(self, values: torch.Tensor, log_prob) -> Rollout:
        """The rollout, from the values of ``end``'s observations [(T + 1) * N] and the policy's
        ``log_prob(params, actions)``."""
        num_steps, n, all_obs = self._t, self.n, self._all_obs
        actions, params = torch.stack(self._act_buf), torch.stack(self._par_buf)
        logp = log_prob(params.flatten(0, 1), actions.flatten(0, 1)).view(num_steps, n)
        out = Rollout(
            obs=all_obs[:-1],
            actions=actions,
            logp=logp,
            params=params,
            values=values.view(num_steps + 1, n),
            rewards=torch.from_numpy(self._rew),
            dones=torch.from_numpy(self._done),
            truncated=torch.from_numpy(self._trunc_only),
            valid=torch.from_numpy(self._valid),
        )
        self._obs_buf, self._act_buf, self._par_buf, self._all_obs = [], [], [], None
        return out

    def log_episodes(self, step: int | None = None) -> None:
        """Records the mean training return and length of episodes finished since the last call
        (at ``step``, default this collector's env steps)."""
        if self.finished_returns:
            step = self.env_steps if step is None else step
            self.recorder.curve(step, "train/episode_return", np.mean(self.finished_returns))
            self.recorder.curve(step, "train/episode_length", np.mean(self.finished_lengths))
            self.finished_returns, self.finished_lengths = [], []


class Shaping:
    """What a fine-tuning method changes in PG and PPO (the alignment methods' KL-regularised and
    reward-model objectives): the rewards that are optimised, and an extra policy-loss term."""

    def __call__(self, ro: Rollout) -> torch.Tensor:
        """The rewards to optimise instead of the env's [T, N] (zero on autoreset steps)."""
        return ro.rewards

    def policy_loss(self, index: torch.Tensor, params: torch.Tensor, adv_scale: torch.Tensor | float):
        """An extra term added to the policy loss of a minibatch, or None. ``index`` [B] are the
        minibatch's positions in the flattened last rollout, ``params`` [B, A] the policy's
        distribution parameters there (with gradients), ``adv_scale`` the factor the minibatch's
        advantages were divided by (so a coefficient in reward units keeps its meaning)."""
        return None

    def adds_policy_loss(self) -> bool:
        """Whether ``policy_loss`` may give a term at the next update (else it gives None)."""
        return False


@dataclass
class Agent:
    """What PG and PPO train: env, actor-critic, its collector and an evaluation ``act``."""

    env: object
    model: ActorCritic
    collector: RolloutCollector
    act: object


def build_agent(task: Task, cfg, seed: int, recorder: Recorder, init: PolicyAct | None = None) -> Agent:
    """Env, policy and collector from the policy fields shared by ``PGConfig`` and ``PPOConfig``;
    with ``init``, the policy starts as a copy of that one (its architecture fields are ignored)."""
    torch.manual_seed(seed)
    env = task.make_vec(cfg.n_envs)
    if init is not None:  # fine-tuning: the reference's network, log-std and observation scaling
        model = copy.deepcopy(init.model).requires_grad_(True)
        # the env's reward is never scaled here: what fine-tuning optimises (the shaped reward) is
        # normalised by the method's ``Shaping``
        collector = RolloutCollector(env, model, seed, cfg.gamma, False, False, recorder)
        collector.obs_norm = ObsNormalizer.from_state(init.obs_norm.state(), frozen=True)
        act = policy_act_fn(model, collector.obs_norm, torch.Generator().manual_seed(seed + 1))
        return Agent(env, model, collector, act)
    space = env.single_action_space
    action_dim = space.shape[0] if task.continuous else int(space.n)
    model = ActorCritic(
        env.single_observation_space.shape[0],
        action_dim,
        task.continuous,
        cfg.hidden_sizes,
        cfg.activation,
        cfg.ortho_init,
        cfg.log_std_init,
    )
    gain = getattr(cfg, "policy_init_gain", POLICY_OUT_GAIN)  # PPO's switch; PG and TRPO keep 0.01
    if cfg.ortho_init and gain != POLICY_OUT_GAIN:  # the policy's last layer drawn again at this gain
        torch.nn.init.orthogonal_(model._pi_linears[-1].weight, gain)
    collector = RolloutCollector(
        env, model, seed, cfg.gamma, cfg.normalize_obs, cfg.normalize_reward, recorder
    )
    act = policy_act_fn(model, collector.obs_norm, torch.Generator().manual_seed(seed + 1))
    return Agent(env, model, collector, act)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


@torch.no_grad()
def reference_episodes(task: Task, ref: PolicyAct, episodes: int, seed: int):
    """``episodes`` full episodes of a policy (π_ref, or a fine-tuned one) at T = 1: list of
    (obs [L, d] as the policy saw them, actions, rewards [L], ended by the time limit)."""
    n_envs = min(episodes, 16)
    env = task.make_vec(n_envs)
    space = env.single_action_space
    bounds = (space.low, space.high) if task.continuous else None
    obs, _ = env.reset(seed=seed)
    bufs: list[list] = [[] for _ in range(n_envs)]
    out = []
    prev_done = np.zeros(n_envs, bool)
    while len(out) < episodes:
        params = ref.dist(obs)
        action = ref.model.sample(params, 1.0, ref.generator).numpy()
        normed = ref.obs_norm(obs)
        env_action = np.clip(action, *bounds) if bounds is not None else action
        next_obs, reward, term, trunc, _ = env.step(env_action)
        for i in range(n_envs):
            if prev_done[i]:  # NEXT_STEP autoreset step: not part of any episode
                continue
            bufs[i].append((normed[i], action[i], float(reward[i])))
            if term[i] or trunc[i]:
                o, a, r = zip(*bufs[i], strict=True)
                out.append((np.stack(o), np.stack(a), np.asarray(r), bool(trunc[i] and not term[i])))
                bufs[i] = []
        prev_done = term | trunc
        obs = next_obs
    env.close()
    return out[:episodes]  # (obs, actions, rewards, ended by the time limit)
