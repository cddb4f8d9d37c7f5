"""The shared evaluation protocol (shared/design.md §3), used by every algorithm.

Every ``eval_every`` env steps the policy plays ``eval_episodes`` episodes on evaluation envs
whose seeds are disjoint from the training seeds, at each temperature of the suite
(T = 0: greedy / mean action). Records ``eval/return`` (mean over episodes), ``eval/return_std``
with n = episodes. The last evaluation, at the end of training, is the run's final score; it runs
at ``final_temperatures`` (the temperature sweep) when the suite sets them.

With a reference policy π_ref (alignment suites), every evaluation at T = 1 also records the
sequence-level KL(π‖π_ref) over the same episodes: ``eval/kl`` is the mean over episodes of
Σ_t KL(π(·|s_t) ‖ π_ref(·|s_t)) computed exactly per step (categorical: over the actions;
Gaussian: closed form), ``eval/kl_k1`` the mean of Σ_t log π(a_t|s_t) − log π_ref(a_t|s_t), and
``eval/kl_std`` the standard deviation of the exact sum over episodes. A method that optimises a
learned reward sets ``Evaluator.proxy``: the learned reward's sum along each episode is recorded
too (``eval/proxy_return``, mean over episodes), the proxy beside the true return.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bench.control.policies import PolicyAct, categorical_kl, gaussian_kl, gaussian_log_prob_entropy
from bench.control.tasks import Task
from bench.recorder import Recorder

# Evaluation env seeds start here; training envs use seeds seed .. seed + n_envs - 1.
EVAL_SEED_BASE = 1_000_000

ActFn = Callable[[np.ndarray, float], np.ndarray]


@dataclass
class Episodes:
    """Per-episode totals of one evaluation batch (one episode per sub-env)."""

    returns: np.ndarray
    kl: np.ndarray | None = None  # exact per-step KL to the reference, summed
    kl_k1: np.ndarray | None = None  # k1 estimator, summed
    proxy: np.ndarray | None = None  # the learned reward's sum along each episode


def play_episodes(
    act: ActFn, env, seed: int, temperature: float, reference: PolicyAct | None = None, proxy=None
) -> Episodes:
    """Plays one episode in each sub-env of ``env`` (NEXT_STEP autoreset). A policy with a
    ``reset(n)`` method (a recurrent one) is reset first, for ``n`` new episodes.

    With ``reference``, ``act`` must be a ``PolicyAct`` sampled at ``temperature`` and the KL of
    the tempered policy to the reference (at T = 1) is summed along each episode. With ``proxy``
    (a learned reward r(obs as the policy sees them, action) -> per-step reward; ``act`` a
    ``PolicyAct``), its sum along each episode too."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    if callable(getattr(act, "reset", None)):  # a recurrent policy: fresh state for n new episodes
        act.reset(n)
    space = env.single_action_space
    bounds = (space.low, space.high) if hasattr(space, "low") else None
    totals = np.zeros(n)
    kl = np.zeros(n) if reference is not None else None
    k1 = np.zeros(n) if reference is not None else None
    learned = np.zeros(n) if proxy is not None else None
    running = np.ones(n, dtype=bool)
    while running.any():
        if reference is None:
            action = act(obs, temperature)
        else:
            action, step_kl, step_k1 = _act_with_kl(act, reference, obs, temperature)
            kl += np.where(running, step_kl, 0.0)
            k1 += np.where(running, step_k1, 0.0)
        if proxy is not None:
            with torch.no_grad():
                r = proxy(torch.as_tensor(act.obs_norm(obs)).float(), torch.as_tensor(action)).numpy()
            learned += np.where(running, r, 0.0)
        if bounds is not None:
            action = np.clip(action, *bounds)
        obs, reward, term, trunc, _ = env.step(action)
        totals += np.where(running, reward, 0.0)
        running &= ~(term | trunc)
    return Episodes(totals, kl, k1, learned)


@torch.no_grad()
def _act_with_kl(policy: PolicyAct, reference: PolicyAct, obs: np.ndarray, temperature: float):
    if not isinstance(policy, PolicyAct):
        raise TypeError("KL to the reference needs a PolicyAct policy")
    model = policy.model
    params = policy.dist(obs)
    ref_params = reference.dist(obs)
    if model.continuous:
        log_std = model.log_std + (np.log(temperature) if temperature > 0 else 0.0)
        step_kl = gaussian_kl(params, log_std, ref_params, reference.model.log_std)
        action = model.sample(params, temperature, policy.generator)
        logp, _ = gaussian_log_prob_entropy(params, log_std.expand_as(params), action)
        ref_logp, _ = gaussian_log_prob_entropy(ref_params, reference.model.log_std.expand_as(params), action)
    else:
        logits = params / temperature
        step_kl = categorical_kl(logits, ref_params)
        action = model.sample(params, temperature, policy.generator)
        logp = torch.log_softmax(logits, -1).gather(-1, action.unsqueeze(-1)).squeeze(-1)
        ref_logp = torch.log_softmax(ref_params, -1).gather(-1, action.unsqueeze(-1)).squeeze(-1)
    return action.numpy(), step_kl.numpy(), (logp - ref_logp).numpy()


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
        final_temperatures: list[float] | None = None,
        reference: PolicyAct | None = None,
        target_return: float | None = None,
        seed_base: int = EVAL_SEED_BASE,
    ):
        self.task, self.recorder = task, recorder
        self.seed = seed_base + 1000 * seed
        self.eval_every, self.temperatures = eval_every, temperatures
        self.final_temperatures = final_temperatures or temperatures
        self.reference = reference
        self.env = task.make_vec(eval_episodes)
        self.next_eval = eval_every
        self.last_step = -1
        self.last_temperatures: list[float] = []
        # training stops once the mean return at the first temperature reaches ``target_return``
        self.target_return, self.stop = target_return, False
        # the learned reward a method optimises (set by it): its episode sums are recorded beside
        # the true return at every evaluation (eval/proxy_return), over-optimisation's proxy
        self.proxy = None

    def due(self, step: int) -> bool:
        return step >= self.next_eval

    def __call__(self, step: int, act: ActFn, temperatures: list[float] | None = None) -> dict[float, float]:
        """Evaluate now; returns mean return per temperature."""
        t0 = time.perf_counter()
        temperatures = self.temperatures if temperatures is None else temperatures
        means = {}
        for temp in temperatures:
            reference = self.reference if temp == 1.0 else None
            ep = play_episodes(act, self.env, self.seed, temp, reference, self.proxy)
            n = len(ep.returns)
            self.recorder.eval(step, temp, "eval/return", ep.returns.mean(), n)
            self.recorder.eval(step, temp, "eval/return_std", ep.returns.std(), n)
            if ep.proxy is not None:
                self.recorder.eval(step, temp, "eval/proxy_return", ep.proxy.mean(), n)
            if ep.kl is not None:
                self.recorder.eval(step, temp, "eval/kl", ep.kl.mean(), n)
                self.recorder.eval(step, temp, "eval/kl_std", ep.kl.std(), n)
                self.recorder.eval(step, temp, "eval/kl_k1", ep.kl_k1.mean(), n)
            means[temp] = float(ep.returns.mean())
        if self.target_return is not None and means[temperatures[0]] >= self.target_return:
            self.stop = True
        self.recorder.eval_seconds += time.perf_counter() - t0
        while self.next_eval <= step:
            self.next_eval += self.eval_every
        self.last_step, self.last_temperatures = step, list(temperatures)
        return means

    def final(self, step: int, act: ActFn) -> None:
        """The end-of-training evaluation at the final temperatures (temperatures evaluated at
        this step already are not repeated)."""
        done = self.last_temperatures if self.last_step == step else []
        todo = [t for t in self.final_temperatures if t not in done]
        if todo:
            self(step, act, todo)
        self.env.close()
