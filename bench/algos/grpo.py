"""GRPO on classic control (``grpo-gt``): the LM recipe with episodes for completions and start
states for prompts, fine-tuning π_ref on the true reward with a KL term to π_ref.

A group is ``k`` episodes that start from the same state: the ``k`` environments of a group are
reset with the same reset seed, so the group mean return is a baseline for that start state as
the mean reward of k completions is for a prompt. Per iteration: ``groups`` start states × ``k``
episodes run to their end under the current policy; each episode's return becomes an advantage
relative to its group (``losses.group_advantages``: divided by the group's std, or only centred
for Dr. GRPO); then ``iterations`` full-batch updates of ``losses.grpo_loss`` (the clipped ratio
per step, β × the k3 estimate of KL(π ‖ π_ref) per step, aggregated per episode then over
episodes, or Dr. GRPO's constant normaliser). No critic.
"""

from __future__ import annotations

import copy
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses
from bench.algos.guard import check_finite
from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class GRPOGTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    groups: int = Field(4, ge=1, le=4096, description="start states per batch")
    k: int = Field(8, ge=2, le=4096, description="episodes per start state (the group)")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    clip_range: float = Field(0.2, gt=0, description="ratio clip ε")
    iterations: int = Field(4, ge=1, le=1000, description="full-batch updates per batch of episodes")
    kl_coef: float = Field(0.05, ge=0, description="β: weight of the k3 KL(π ‖ π_ref) term per step")
    scale_rewards: Literal["group", "none"] = Field(
        "group", description="GRPO (group std) or Dr. GRPO (none)"
    )
    aggregation: Literal["grpo", "dr_grpo", "bnpo"] = Field(
        "grpo", description="step losses: mean per episode then over episodes, or Dr. GRPO's sum /"
        " (B · T_max), or"
        " mean over the batch's steps"
    )  # fmt: skip
    max_grad_norm: float = Field(0.5, gt=0, description="gradient-norm clip")


class Episodes:
    """A batch of episodes as [B, T] arrays (B = groups × k; T = the longest; ``mask`` marks real steps)."""

    def __init__(self, obs, actions, logp, mask, returns):
        self.obs, self.actions, self.logp, self.mask, self.returns = obs, actions, logp, mask, returns


class _Groups:
    """One batch of groups as it is played: episode i on ``envs[i]``, envs ``g·k … g·k + k − 1``
    reset with ``reset_seeds[g]``; the running envs' observations and returns, and the steps taken."""

    def __init__(self, envs: list[gym.Env], reset_seeds: list[int], k: int):
        self.envs = envs
        self.obs = np.stack([env.reset(seed=int(reset_seeds[i // k]))[0] for i, env in enumerate(envs)])
        self.alive = np.ones(len(envs), dtype=bool)
        self.returns = np.zeros(len(envs))
        self.taken: tuple[list, list, list, list] = ([], [], [], [])  # obs, actions, log-probs, mask

    def running(self) -> bool:
        return bool(self.alive.any())

    def take(self, o: torch.Tensor, model: ActorCritic, params: torch.Tensor, generator: torch.Generator):
        """Samples every env's action at distribution parameters ``params`` (of observations ``o``)
        and steps the envs still running."""
        with torch.no_grad():
            actions = model.sample(params, 1.0, generator)
            logp = model.log_prob(params, actions)
        for kept, x in zip(self.taken, (o, actions, logp, torch.as_tensor(self.alive.copy())), strict=True):
            kept.append(x)
        a = actions.numpy()
        for i in np.flatnonzero(self.alive):
            obs_i, r, terminated, truncated, _ = self.envs[i].step(a[i])
            self.returns[i] += float(r)
            self.obs[i] = obs_i
            if terminated or truncated:
                self.alive[i] = False

    def episodes(self) -> Episodes:
        stack = lambda xs: torch.stack(xs, 1)  # noqa: E731  [T] of [B, ...] -> [B, T, ...]
        return Episodes(*map(stack, self.taken), torch.as_tensor(self.returns, dtype=torch.float32))


def run_groups(envs: list[gym.Env], model: ActorCritic, obs_norm: ObsNormalizer, reset_seeds: list[int],
               k: int, generator: torch.Generator) -> Episodes:  # fmt: skip
    """Runs one episode per env, envs ``g·k … g·k + k − 1`` reset with ``reset_seeds[g]``."""
    groups = _Groups(envs, reset_seeds, k)
    while groups.running():
        o = torch.tensor(obs_norm(groups.obs), dtype=torch.float32)  # a copy: the obs are updated in place
        with torch.no_grad():
            params = model.policy(o)
        groups.take(o, model, params, generator)
    return groups.episodes()


class _Run:
    """One seed's GRPO-GT: its policy (a copy of its π_ref), optimizer, environments, start-state
    draws and sampling generator, and the steps it has taken."""

    def __init__(self, task, cfg: GRPOGTConfig, seed: int, alignment):
        self.cfg = cfg
        self.ref = alignment.reference()
        self.model = copy.deepcopy(self.ref.model).requires_grad_(True)
        self.policy = PolicyAct(self.model, self.ref.obs_norm, torch.Generator().manual_seed(seed + 1))
        log_std = [self.model.log_std] if self.model.continuous else []
        self.params = list(self.model.pi.parameters()) + log_std
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)
        self.envs = [gym.make(task.id) for _ in range(cfg.groups * cfg.k)]
        self.rng = np.random.default_rng(seed)
        self.sampling = torch.Generator().manual_seed(seed + 2)
        self.steps = 0

    def draw(self) -> list[int]:
        """The next batch's start states (one reset seed per group)."""
        return self.rng.integers(0, 2**31 - 1, size=self.cfg.groups).tolist()

    def learn(self, ep: Episodes, evaluator: Evaluator, recorder: Recorder) -> None:
        """``iterations`` full-batch updates on a batch of episodes, its records, and the evaluation
        when it is due."""
        cfg, model, ref = self.cfg, self.model, self.ref
        self.steps += int(ep.mask.sum())
        adv = losses.group_advantages(ep.returns.view(cfg.groups, cfg.k), cfg.scale_rewards).flatten()
        flat_obs, flat_actions = ep.obs.flatten(0, 1), ep.actions.flatten(0, 1)
        with torch.no_grad():
            ref_logp = ref.model.log_prob(ref.model.policy(flat_obs), flat_actions).view_as(ep.logp)
        for _ in range(cfg.iterations):
            logp = model.log_prob(model.policy(flat_obs), flat_actions).view_as(ep.logp)
            loss = losses.grpo_loss(logp, ep.logp, ref_logp, adv, ep.mask, cfg.clip_range, cfg.kl_coef,
                                    cfg.aggregation)  # fmt: skip
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
            self.opt.step()
        check_finite(self.steps, {"loss": float(loss.detach())}, model)
        with torch.no_grad():
            kl_k1 = float(((ep.logp - ref_logp) * ep.mask).sum(-1).mean())
        recorder.curve(self.steps, "train/loss", float(loss.detach()))
        recorder.curve(self.steps, "train/episode_return", float(ep.returns.mean()))
        recorder.curve(self.steps, "train/kl_k1", kl_k1)
        recorder.steps(self.steps)
        if evaluator.due(self.steps):
            evaluator(self.steps, self.policy)

    def finish(self, evaluator: Evaluator, recorder: Recorder) -> None:
        recorder.env_steps = self.steps
        evaluator.final(self.steps, self.policy)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def train_grpo_gt(
    task, cfg: GRPOGTConfig, env_steps, seed, evaluator: Evaluator, recorder: Recorder, alignment
):
    run = _Run(task, cfg, seed, alignment)
    try:
        while run.steps < env_steps and not evaluator.stop:
            reset_seeds = run.draw()
            ep = run_groups(run.envs, run.model, run.ref.obs_norm, reset_seeds, cfg.k, run.sampling)
            run.learn(ep, evaluator, recorder)
    finally:
        run.close()
    run.finish(evaluator, recorder)


def run_groups_seeds(runs: list[_Run], reset_seeds: list[list[int]], k: int) -> list[Episodes]:
    """``run_groups`` for several seeds at once: each seed's episodes and sampling as its own, the
    policies of all seeds evaluated in one batched call per step (``seed_batch``'s MLP: each seed's
    floats as ``F.linear``'s). A seed whose episodes have all ended samples no more; its rows are
    computed and ignored until every seed's have ended."""
    from bench.algos.seed_batch import _mlp

    first = runs[0].model
    layers = [
        (torch.stack([r.model._pi_linears[j].weight.detach() for r in runs]),
         torch.stack([r.model._pi_linears[j].bias.detach() for r in runs]))
        for j in range(len(first._pi_linears))
    ]  # fmt: skip
    groups = [_Groups(r.envs, seeds, k) for r, seeds in zip(runs, reset_seeds, strict=True)]
    while any(g.running() for g in groups):
        o = torch.stack(
            [
                torch.tensor(r.ref.obs_norm(g.obs), dtype=torch.float32)
                for r, g in zip(runs, groups, strict=True)
            ]
        )
        with torch.no_grad():
            params = _mlp(first._act_fn, layers, o)
        for j, (r, g) in enumerate(zip(runs, groups, strict=True)):
            if g.running():
                g.take(o[j], r.model, params[j], r.sampling)
    return [g.episodes() for g in groups]


def train_grpo_gt_seeds(task, cfg: GRPOGTConfig, env_steps, seeds, evaluators, recorders, alignments):
    """``train_grpo_gt`` for each of ``seeds`` in lockstep (``bench run --batch-seeds``): one batched
    rollout of every running seed's groups, then each seed's own updates, records and evaluation.
    Returns each seed's run (or the exception that failed it: a seed fails alone)."""
    outcome: list = [None] * len(seeds)
    runs: dict[int, _Run] = {}
    for j, (seed, ctx) in enumerate(zip(seeds, alignments, strict=True)):
        try:
            runs[j] = _Run(task, cfg, seed, ctx)
        except Exception as e:  # noqa: BLE001
            outcome[j] = e

    def finish(j: int) -> None:
        runs[j].close()
        try:
            runs[j].finish(evaluators[j], recorders[j])
            outcome[j] = runs[j]
        except Exception as e:  # noqa: BLE001
            outcome[j] = e

    active = []
    for j in runs:
        (active.append if env_steps > 0 and not evaluators[j].stop else finish)(j)
    while active:
        draws = [runs[j].draw() for j in active]
        try:
            episodes = run_groups_seeds([runs[j] for j in active], draws, cfg.k)
        except Exception as e:  # noqa: BLE001  the rollout as a whole failed: every seed in it did
            for j in active:
                runs[j].close()
                outcome[j] = e
            break
        still = []
        for j, ep in zip(active, episodes, strict=True):
            try:
                runs[j].learn(ep, evaluators[j], recorders[j])
            except Exception as e:  # noqa: BLE001
                runs[j].close()
                outcome[j] = e
                continue
            if runs[j].steps < env_steps and not evaluators[j].stop:
                still.append(j)
            else:
                finish(j)
        active = still
    return outcome
