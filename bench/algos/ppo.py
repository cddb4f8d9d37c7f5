"""Proximal Policy Optimization (Schulman et al. 2017), both objectives of the paper.

``objective: clip``        — clipped surrogate (eq. 7).
``objective: kl_penalty``  — KL-penalised surrogate (eq. 8) with the adaptive coefficient of sec. 4.
``objective: unclipped``   — the surrogate r·A with neither (eq. 6): PPO with its clip removed and
every other detail kept (Engstrom et al. 2020's question), an ablation, not a method.

Loop: collect ``n_steps`` x ``n_envs`` on-policy steps -> learning rate / clip range at the
progress including this rollout's steps (1 - steps / budget, SB3's order) -> GAE(lambda) ->
``n_epochs`` passes of shuffled minibatches (advantage normalisation, clipped value loss, entropy
bonus, gradient-norm clipping) -> evaluate on the shared protocol when due.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses
from bench.algos.guard import check_finite
from bench.algos.rollout import Agent, Shaping, build_agent, set_lr
from bench.control.policies import HiddenSizes
from bench.control.tasks import Task
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class PPOConfig(BaseModel):
    """PPO hyperparameters (defaults: a generic starting point; see TASK_DEFAULTS)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n_envs: int = Field(8, ge=1, le=4096, description="parallel environments")
    n_steps: int = Field(128, ge=1, le=1_000_000, description="steps per env per rollout")
    batch_size: int = Field(256, ge=1, le=10_000_000, description="minibatch size")
    n_epochs: int = Field(10, ge=1, le=10_000, description="passes over each rollout")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate")
    lr_schedule: Literal["constant", "linear"] = Field("constant", description="lr annealing")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    objective: Literal["clip", "kl_penalty", "unclipped"] = Field(
        "clip", description="surrogate objective (unclipped: r·A, the clip removed)"
    )
    clip_range: float = Field(0.2, gt=0, description="policy ratio clip epsilon")
    clip_schedule: Literal["constant", "linear"] = Field("constant", description="clip annealing")
    clip_range_vf: float | None = Field(None, gt=0, description="value clip (None = off)")
    kl_target: float = Field(0.01, gt=0, description="target KL for the adaptive beta")
    kl_beta: float = Field(1.0, gt=0, description="initial KL penalty coefficient")
    target_kl: float | None = Field(
        None, gt=0, description="stop the epochs before a minibatch step whose approx KL exceeds 1.5 x this"
    )
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    value_loss: Literal["ppo2", "mse"] = Field(
        "ppo2",
        description="ppo2: 0.5 mean(max(unclipped², clipped²)) (OpenAI baselines);"
        " mse: mean((clipped V − R)²) (SB3)",
    )
    max_grad_norm: float = Field(0.5, gt=0, description="gradient-norm clip")
    normalize_advantage: bool = Field(True, description="normalise advantages per minibatch")
    normalize_obs: bool = Field(False, description="running observation normalisation")
    normalize_reward: bool = Field(False, description="scale rewards by return std")
    hidden_sizes: HiddenSizes = Field((64, 64), description="MLP hidden layers")
    activation: Literal["tanh", "relu"] = Field("tanh", description="hidden activation")
    ortho_init: bool = Field(True, description="orthogonal initialisation")
    policy_init_gain: float = Field(
        0.01,
        gt=0,
        le=100,
        description="orthogonal gain of the policy's last layer (with ortho_init)",
        json_schema_extra={"when_set": True},  # added after runs were published: their keys stay
    )
    log_std_init: float = Field(0.0, description="initial log std (Gaussian policies)")
    time_limit_bootstrap: bool = Field(
        True,
        description="at a time-limit truncation, add γ·V(final observation) to the last reward"
        " (off: truncation ends the episode's return, as CleanRL's scripts do)",
        json_schema_extra={"when_set": True},  # added after runs were published: their keys stay
    )


# Shipped per-task defaults (overridden by a suite's params).
TASK_DEFAULTS: dict[str, dict] = {
    "CartPole-v1": dict(
        n_envs=16,
        n_steps=32,
        batch_size=512,
        n_epochs=10,
        lr=4e-3,
        lr_schedule="linear",
        gamma=0.98,
        gae_lambda=0.8,
        clip_schedule="linear",
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
        n_envs=8,
        n_steps=512,
        batch_size=64,
        n_epochs=10,
        lr=3e-4,
        lr_schedule="linear",
        gamma=0.9,
        gae_lambda=0.95,
        normalize_obs=True,
        normalize_reward=True,
        log_std_init=0.0,
    ),
}

TASK_DEFAULTS["LunarLanderContinuous-v3"] = TASK_DEFAULTS["LunarLander-v3"]


def train(
    task: Task,
    cfg: PPOConfig,
    env_steps: int,
    seed: int,
    evaluator: Evaluator,
    recorder: Recorder,
    agent: Agent | None = None,
    shaping: Shaping | None = None,
    group=None,
    surrogate=None,
) -> Agent:
    """Trains until ``env_steps`` (or until ``evaluator.stop``); returns the agent.

    ``agent``: start from this one (e.g. a copy of a reference policy) instead of a fresh one.
    ``shaping``: the rewards to optimise instead of the env's, and an extra policy-loss term
    (the KL-regularised and reward-model objectives of the alignment methods).
    ``group``: this process's ``bench.algos.dppo.Replicas`` when it is one of several
    synchronous workers (Distributed PPO): gradients are averaged over the workers, the env-step
    budget and the early-stopping decisions are global. ``None``: plain single-process PPO.
    ``surrogate(logp, old_logp, adv, clip_range) -> loss``: the policy loss of the clip objective
    (default ``losses.clipped_surrogate_loss``, PPO's); a PPO variant passes its own."""
    rng = np.random.default_rng(seed + 7919 * (group.rank if group is not None else 0))
    agent = agent or build_agent(task, cfg, seed, recorder)
    env, model, collector, act = agent.env, agent.model, agent.collector, agent.act
    parameters = list(model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=cfg.lr, eps=1e-5, fused=True)
    beta = cfg.kl_beta
    head = PPOHead(model) if group is None else group.wrap(PPOHead(model))
    steps, stop = 0, False  # env steps so far (over all workers); stop: evaluator's early stop

    while steps < env_steps and not stop:
        if group is not None:
            group.snapshot(collector)
        ro = collector.collect(cfg.n_steps)
        if group is not None:
            group.merge_running_stats(collector)  # one observation / return scaling for all
        step = steps = collector.env_steps if group is None else group.total_steps(collector)
        batch, idx, lr, clip, ret = prepare(task, cfg, ro, model, steps, env_steps, optimizer, shaping)
        # workers must take the same number of minibatch steps (each is an all-reduce), but their
        # valid-step counts differ by the autoreset steps: the shorter ones cycle their shuffle
        length = len(idx) if group is None else group.max(len(idx))
        stats = update(head, optimizer, parameters, batch, cfg, clip, beta,
                       _epoch_orders(rng, idx, length, cfg.n_epochs), group, shaping, surrogate)  # fmt: skip
        beta = after_update(task, cfg, agent, stats, step, batch, idx, ro, ret, lr, beta, evaluator, recorder,
                            group)  # fmt: skip
        stop = evaluator.stop if group is None else group.any(evaluator.stop)
    evaluator.final(steps, act)
    if group is not None:
        group.finish(model, steps, recorder)
    env.close()
    return agent


def prepare(task: Task, cfg: PPOConfig, ro, model, steps: int, env_steps: int, optimizer,
            shaping: Shaping | None):  # fmt: skip
    """After a rollout: the learning rate (set on ``optimizer``) and clip range at this progress,
    GAE advantages and returns, the valid step indices and the flattened ``Batch``."""
    # the schedules read the progress after the rollout's steps are counted, as SB3's
    # OnPolicyAlgorithm.learn does (collect_rollouts, then _update_current_progress_remaining)
    remaining = max(0.0, 1.0 - steps / env_steps)
    lr = losses.schedule(cfg.lr_schedule, cfg.lr, remaining)
    set_lr(optimizer, lr)
    clip = losses.schedule(cfg.clip_schedule, cfg.clip_range, remaining)
    rewards = ro.rewards if shaping is None else shaping(ro)
    if cfg.time_limit_bootstrap:
        rewards = losses.bootstrap_truncated(rewards, ro.values, ro.truncated, cfg.gamma)
    adv, ret = losses.gae(rewards, ro.values, ro.dones, cfg.gamma, cfg.gae_lambda)
    idx = torch.nonzero(ro.valid.flatten()).squeeze(-1).numpy()
    flat = lambda x: x.flatten(0, 1)  # noqa: E731  [T, N, ...] -> [T*N, ...]
    old_log_std = model.log_std.detach().clone() if task.continuous else None
    batch = Batch(flat(ro.obs), flat(ro.actions), flat(ro.logp), flat(ro.params), flat(ro.values[:-1]),
                  flat(adv), flat(ret), old_log_std)  # fmt: skip
    return batch, idx, lr, clip, ret


def after_update(task: Task, cfg: PPOConfig, agent: Agent, stats: dict, step: int, batch: Batch, idx, ro,
                 ret, lr: float, beta: float, evaluator: Evaluator, recorder: Recorder,
                 group=None) -> float:  # fmt: skip
    """After the epochs on one rollout: the divergence check (raises), the KL-penalty coefficient's
    adaptation, the training curves and the evaluation when due; returns the next coefficient."""
    model = agent.model
    means = {key: float(np.mean(v)) if v else float("nan") for key, v in stats.items()}
    # a NaN / inf loss or parameter stops the run (every DPPO worker together)
    named = {"policy loss": "pg", "value loss": "vf", "entropy": "ent"}
    check_finite(step, {name: means[k] for name, k in named.items() if stats[k]}, model, group=group)
    if cfg.objective == "kl_penalty":
        with torch.no_grad():
            new_params = model.policy(batch.obs[idx])
            batch_kl = float(model.kl(batch.old_params[idx], new_params, batch.old_log_std).mean())
        if group is not None:
            batch_kl = group.mean(batch_kl)  # one penalty coefficient for all workers
        recorder.curve(step, "train/kl", batch_kl)
        recorder.curve(step, "train/kl_beta", beta)
        beta = losses.adaptive_kl_beta(beta, batch_kl, cfg.kl_target)

    agent.collector.log_episodes(step)
    ev = explained_variance(ro.values[:-1], ret, ro.valid)
    if ev == ev:  # not NaN (constant returns)
        recorder.curve(step, "train/explained_variance", ev)
    for name, key in [
        ("policy_loss", "pg"),
        ("value_loss", "vf"),
        ("entropy", "ent"),
        ("approx_kl", "kl"),
        ("clip_fraction", "clipfrac"),
    ]:
        recorder.curve(step, f"train/{name}", means[key])
    recorder.curve(step, "train/lr", lr)
    recorder.curve(step, "perf/env_steps_per_s", step / max(recorder.train_time(), 1e-9))
    recorder.steps(step)
    if evaluator.due(step):
        evaluator(step, agent.act)
    return beta


class PPOHead(torch.nn.Module):
    """What the PPO loss needs from the actor-critic for a minibatch, in one ``forward``:
    distribution parameters, values, log pi(a|s) and entropy. One module call, so that
    DistributedDataParallel (DPPO) sees every parameter used, the log-std included."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, obs: torch.Tensor, actions: torch.Tensor):
        params, values = self.model(obs)
        logp, entropy = self.model.log_prob_entropy(params, actions)
        return params, values, logp, entropy


@dataclass
class Batch:
    """One rollout, flattened to [B, ...] (B = T x N; autoreset steps included, never indexed)."""

    obs: torch.Tensor
    actions: torch.Tensor
    old_logp: torch.Tensor
    old_params: torch.Tensor  # distribution parameters at collection time
    old_values: torch.Tensor
    adv: torch.Tensor
    ret: torch.Tensor
    old_log_std: torch.Tensor | None = None  # Gaussian policies: log-std at collection time


def _epoch_orders(rng: np.random.Generator, idx: np.ndarray, length: int, n_epochs: int):
    """A fresh shuffle of the valid indices ``idx`` per epoch (cycled to ``length``), drawn lazily:
    epochs cut short by early stopping draw nothing."""
    for _ in range(n_epochs):
        rng.shuffle(idx)
        yield idx if length == len(idx) else np.resize(idx, length)


def update(head, optimizer, parameters, batch: Batch, cfg: PPOConfig, clip: float, beta: float,
           orders, group=None, shaping: Shaping | None = None,
           surrogate=None) -> dict[str, list[float]]:  # fmt: skip
    """The PPO epochs on one rollout: for each index order in ``orders`` (one per epoch),
    minibatches of ``cfg.batch_size`` -> surrogate (clip or KL penalty) + vf_coef x value loss −
    ent_coef x entropy (+ the shaping's policy-loss term) -> one clipped-gradient Adam step.

    With ``target_kl``, the epochs stop before the step of the first minibatch whose approximate
    KL (Schulman's k3 estimate, the workers' mean under DPPO) exceeds 1.5 x target_kl, as SB3 and
    Spinning Up do. ``surrogate``: the clip objective's policy loss (default PPO's clipped
    surrogate). Returns the per-minibatch statistics."""
    model = head.module.model if hasattr(head, "module") else head.model
    stats: dict[str, list[float]] = {k: [] for k in ("pg", "vf", "ent", "kl", "clipfrac")}
    vf_fn = losses.VALUE_LOSSES[cfg.value_loss]
    surrogate = surrogate or losses.clipped_surrogate_loss
    for order in orders:
        for start in range(0, len(order), cfg.batch_size):
            mb = torch.from_numpy(order[start : start + cfg.batch_size])
            params, values, logp, entropy = head(batch.obs[mb], batch.actions[mb])
            with torch.no_grad():
                log_ratio = logp - batch.old_logp[mb]
                approx_kl = float(((log_ratio.exp() - 1) - log_ratio).mean())
                if group is not None and cfg.target_kl is not None:
                    approx_kl = group.mean(approx_kl)  # every worker stops at the same point
            if cfg.target_kl is not None and approx_kl > 1.5 * cfg.target_kl:
                stats["kl"].append(approx_kl)
                return stats
            mb_adv, adv_scale = batch.adv[mb], 1.0
            if cfg.normalize_advantage and len(mb) > 1:
                mb_adv, adv_scale = losses.normalize_with_scale(mb_adv)
            if cfg.objective == "clip":
                pg_loss = surrogate(logp, batch.old_logp[mb], mb_adv, clip)
            elif cfg.objective == "unclipped":
                pg_loss = losses.ratio_surrogate_loss(logp, batch.old_logp[mb], mb_adv)
            else:
                kl = model.kl(batch.old_params[mb], params, batch.old_log_std)
                pg_loss = losses.kl_penalty_loss(logp, batch.old_logp[mb], mb_adv, kl, beta)
            extra = shaping.policy_loss(mb, params, adv_scale) if shaping is not None else None
            if extra is not None:
                pg_loss = pg_loss + extra
            vf_loss = vf_fn(values, batch.old_values[mb], batch.ret[mb], cfg.clip_range_vf)
            loss = pg_loss + cfg.vf_coef * vf_loss - cfg.ent_coef * entropy.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            losses.clip_grad_norm_([p.grad for p in parameters if p.grad is not None], cfg.max_grad_norm)
            optimizer.step()
            stats["clipfrac"].append(float(((log_ratio.exp() - 1).abs() > clip).float().mean()))
            stats["pg"].append(float(pg_loss.detach()))
            stats["vf"].append(float(vf_loss.detach()))
            stats["ent"].append(float(entropy.detach().mean()))
            stats["kl"].append(approx_kl)
    return stats


def explained_variance(
    values: torch.Tensor, returns: torch.Tensor, valid: torch.Tensor | None = None
) -> float:
    """1 − Var(R − V) / Var(R) over the valid steps (as SB3 logs it): 1 = the critic predicts the
    returns it is trained on, 0 = no better than their mean, NaN when the returns are constant."""
    v, r = (values, returns) if valid is None else (values[valid], returns[valid])
    var = float(r.var()) if len(r) > 1 else 0.0
    return float("nan") if var == 0 else 1.0 - float((r - v).var()) / var
