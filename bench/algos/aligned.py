"""Alignment methods on classic control, each starting from the reference policy π_ref.

* ``reference``    — π_ref itself, evaluated (the origin of every frontier).
* ``dpo``          — offline on the preference pairs; log π(segment) = Σ_t log π(a_t|s_t) (the
                     dynamics cancel in π/π_ref); ``loss`` picks a row of
                     ``losses.PREFERENCE_LOSSES`` (dpo, ipo, ipo-mean, hinge) or a relative
                     (simpo, orpo, kto: ``losses.relative_loss``); strength ``beta``.
* ``preferred-bc`` — behaviour cloning on the preferred segment of each pair (the DPO paper's
                     "Preferred-FT"); its strength is how long it trains (every checkpoint is a
                     frontier point).
* ``ppo-gt`` / ``ppo-rm`` — the project's PPO on r_t − c·KL_t, where r_t is the true reward
                     (GT) or the learned reward model's (RM) and KL_t = KL(π(·|s_t) ‖ π_ref(·|s_t))
                     per step (exact, or the k1 sample log π − log π_ref); c fixed or adapted
                     towards a per-step KL target (Ziegler et al. 2019).
* ``pg-gt`` / ``pg-rm``   — REINFORCE on the same KL-regularised rewards.

Offline methods (dpo, preferred-bc) count their budget (the suite's ``env_steps``) in gradient
updates, and evaluate at ``eval_points`` checkpoints. Policies keep π_ref's network, log-std and
frozen observation normalisation; architecture fields in the configs are not used.
"""

from __future__ import annotations

import copy
import time
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses, pg, ppo, seed_batch
from bench.algos.guard import check_finite
from bench.algos.reward_model import RewardModelConfig, load_reward_model
from bench.algos.rollout import Rollout, Shaping, build_agent, reference_episodes
from bench.artifacts import AlignmentContext, SegmentPreferences
from bench.control.policies import ActorCritic, PolicyAct, ReturnScaler, categorical_kl, gaussian_kl
from bench.control.tasks import Task
from bench.evaluation import Evaluator
from bench.recorder import Recorder

# -- configs -------------------------------------------------------------------------------------


class ReferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OfflineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    lr: float = Field(1e-4, gt=0, description="Adam learning rate")
    batch_size: int = Field(64, ge=1, le=10_000_000, description="pairs per minibatch")
    n_pairs: int | None = Field(None, ge=1, le=100_000_000, description="training pairs used (None = all)")
    eval_points: int = Field(8, ge=1, le=100_000, description="evaluations over the run (checkpoints)")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient-norm clip")


class DPOConfig(OfflineConfig):
    loss: Literal["dpo", "ipo", "ipo-mean", "hinge", "simpo", "orpo", "kto"] = Field(
        "dpo",
        description="row of losses.PREFERENCE_LOSSES: ipo on summed segment log-ratios, ipo-mean on"
        " per-step means; or a relative (losses.relative_loss): simpo and orpo (reference-free, on"
        " per-step mean log-probs; orpo needs probabilities, so discrete actions), kto (each pair as"
        " a desirable and an undesirable segment)",
    )
    beta: float = Field(0.1, gt=0, description="KL strength beta (IPO: tau; SimPO: beta; ORPO: lambda)")
    gamma: float = Field(0.5, ge=0, description="SimPO's target reward margin gamma")
    desirable_weight: float = Field(1.0, gt=0, description="KTO: weight of desirable segments")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO: weight of undesirable segments")


class BCConfig(OfflineConfig):
    pass


class KLRegularised(BaseModel):
    """The KL-to-reference penalty of fine-tuning: where it acts and how strong it is."""

    kl_coef: float = Field(0.1, ge=0, description="c: initial / fixed KL coefficient (reward units per nat)")
    kl_mode: Literal["fixed", "adaptive"] = Field("fixed", description="fixed c, or adapted to ref_kl_target")
    ref_kl_target: float = Field(0.05, gt=0, description="adaptive: target mean per-step KL (nats)")
    kl_horizon: int = Field(10_000, gt=0, le=10**12, description="adaptive: controller horizon (env steps)")
    kl_penalty: Literal["reward", "loss"] = Field(
        "reward",
        description="reward: r_t − c·(log π(a_t|s_t) − log π_ref(a_t|s_t)), the sampled log-ratio (k1) in the"
        " reward (RLHF convention); loss: r_t alone, plus c·KL(π(·|s_t) ‖ π_ref(·|s_t)), exact, in the policy"
        " loss (its analytic gradient)",
    )
    rescale_critic: bool = Field(
        True,
        description="keep the critic copied from π_ref in the units of the normalised return: when the reward"
        " scale s changes, its output layer (and the rollout's values) is multiplied by s_old/s_new, PopArt's"
        " output-preserving step; the copied critic starts in π_ref's units (its own reward scale, 1 if raw)",
    )


class RewardModelFields(BaseModel):
    n_pairs: int | None = Field(
        None, ge=1, le=100_000_000, description="training pairs for the reward model (None = all)"
    )
    reward_model: RewardModelConfig = Field(RewardModelConfig(), description="reward-model recipe")


class PPOGTConfig(ppo.PPOConfig, KLRegularised):
    pass


class PPORMConfig(ppo.PPOConfig, KLRegularised, RewardModelFields):
    pass


class PGGTConfig(pg.PGConfig, KLRegularised):
    pass


class PGRMConfig(pg.PGConfig, KLRegularised, RewardModelFields):
    pass


def _online_defaults(base: dict[str, dict], **overrides) -> dict[str, dict]:
    """Fine-tuning defaults: the task defaults of the base algorithm with the optimised (shaped)
    reward normalised, and without entropy bonus or annealing."""
    out = {}
    for task, d in base.items():
        d = {k: v for k, v in d.items() if k not in ("normalize_obs", "log_std_init", "hidden_sizes")}
        out[task] = {**d, "normalize_reward": True, "ent_coef": 0.0, **overrides}
    return out


PPO_DEFAULTS = _online_defaults(ppo.TASK_DEFAULTS, lr_schedule="constant", clip_schedule="constant")
# CartPole's from-scratch PPO settings (lr 4e-3 annealed, gae_lambda 0.8) are tuned for speed from a
# random start; fine-tuning uses the generic PPO values (lr 1e-3, gamma 0.99, gae_lambda 0.95).
PPO_DEFAULTS["CartPole-v1"].update(lr=1e-3, gamma=0.99, gae_lambda=0.95)
PG_DEFAULTS = _online_defaults(pg.TASK_DEFAULTS)


# -- shared pieces -------------------------------------------------------------------------------


def sequence_logp(
    model: ActorCritic, prefs: SegmentPreferences, idx: torch.Tensor, actions_of: torch.Tensor | None = None
) -> torch.Tensor:
    """log π(segment) = Σ_t log π(a_t|s_t) over the real steps of segments ``idx`` [B]; with
    ``actions_of``, the actions of those other segments on the states of ``idx`` (KTO's
    mismatched pairs), over the steps both have."""
    obs, actions, mask = prefs.obs[idx], prefs.actions[idx], prefs.mask[idx]
    if actions_of is not None:
        actions, mask = prefs.actions[actions_of], mask * prefs.mask[actions_of]
    B, H = mask.shape
    params = model.policy(obs.flatten(0, 1))
    logp = model.log_prob(params, actions.flatten(0, 1)).view(B, H)
    return (logp * mask).sum(-1)


def _fine_tune_copy(ctx: AlignmentContext, seed: int) -> PolicyAct:
    ref = ctx.reference()
    model = copy.deepcopy(ref.model)
    model.requires_grad_(True)
    return PolicyAct(model, ref.obs_norm, torch.Generator().manual_seed(seed + 1))


# -- π_ref -----------------------------------------------------------------------------------


def train_reference(task, cfg, env_steps, seed, evaluator: Evaluator, recorder: Recorder, alignment):
    """No training: π_ref evaluated at step 0 (every protocol temperature)."""
    ref = alignment.reference()
    temps = sorted(set(evaluator.temperatures) | set(evaluator.final_temperatures))
    evaluator(0, PolicyAct(ref.model, ref.obs_norm, torch.Generator().manual_seed(seed + 1)), temps)
    evaluator.final(0, ref)


# -- offline: DPO and Preferred-BC -------------------------------------------------------------


def _offline_loop(cfg: OfflineConfig, updates: int, seed: int, policy: PolicyAct, evaluator: Evaluator,
                  recorder: Recorder, n_train: int, step_fn, on_eval=None) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    params = [p for p in policy.model.pi.parameters()] + (
        [policy.model.log_std] if policy.model.continuous else []
    )
    opt = torch.optim.Adam(params, lr=cfg.lr)
    every = max(1, updates // cfg.eval_points)
    for u in range(1, updates + 1):
        mb = torch.from_numpy(rng.integers(0, n_train, size=min(cfg.batch_size, n_train)))
        out = step_fn(mb)  # None: nothing to learn from at this update (no optimizer step)
        record, evaluate = u % max(1, every // 4) == 0 or u == updates, u % every == 0 and u != updates
        if out is not None:
            loss, info = out
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            loss_value = float(loss.detach())
            # a NaN / inf loss (every update) or parameter (where recorded or evaluated) stops the run
            check_finite(u, {"loss": loss_value}, policy.model if record or evaluate else None, unit="update")
            if record:
                recorder.curve(u, "train/loss", loss_value)
                for k, v in info.items():
                    recorder.curve(u, f"train/{k}", v)
        if record:
            recorder.steps(u)
        if evaluate:
            evaluator(u, policy)
            if on_eval:
                on_eval(u)
    evaluator.final(updates, policy)
    if on_eval:
        on_eval(updates)


def train_dpo(task, cfg: DPOConfig, env_steps, seed, evaluator, recorder, alignment: AlignmentContext):
    prefs = alignment.preferences()
    ref = alignment.reference()
    train, heldout = prefs.split(cfg.n_pairs)
    policy = _fine_tune_copy(alignment, seed)
    if cfg.loss == "orpo" and ref.model.continuous:
        raise ValueError("orpo needs action probabilities (odds of a sequence): discrete action spaces only")
    loss_fn = losses.PREFERENCE_LOSSES.get(cfg.loss)
    with torch.no_grad():
        ref_w = sequence_logp(ref.model, prefs, prefs.winner)
        ref_l = sequence_logp(ref.model, prefs, prefs.loser)
    w, lo = prefs.winner[train], prefs.loser[train]
    steps = prefs.mask.sum(-1)  # segment lengths (real steps)
    recorder.eval(0, 1.0, "data/n_pairs", train.stop, train.stop)

    def kl_ratio(mb):
        """KTO: log-ratios of mismatched pairs, each segment's states with the previous pair's actions."""
        with torch.no_grad():
            states, other = torch.cat([w[mb], lo[mb]]), torch.cat([w[mb].roll(1), lo[mb].roll(1)])
            return sequence_logp(policy.model, prefs, states, other) - sequence_logp(
                ref.model, prefs, states, other
            )

    def step(mb):
        logp_w, logp_l = sequence_logp(policy.model, prefs, w[mb]), sequence_logp(policy.model, prefs, lo[mb])
        ratio_w, ratio_l = logp_w - ref_w[train][mb], logp_l - ref_l[train][mb]
        margin = (ratio_w - ratio_l).detach()
        if loss_fn is None:
            loss = losses.relative_loss(
                cfg.loss, logp_w, logp_l, ref_w[train][mb], ref_l[train][mb], steps[w[mb]], steps[lo[mb]],
                cfg.beta, cfg.gamma, kl_ratio(mb) if cfg.loss == "kto" else None,
                (cfg.desirable_weight, cfg.undesirable_weight),
            )  # fmt: skip
        else:
            loss = loss_fn(ratio_w, ratio_l, cfg.beta, steps[w[mb]], steps[lo[mb]])
        return loss, {
            "reward_margin": float(cfg.beta * margin.mean()),
            "pref_accuracy": float((margin > 0).float().mean()),
        }

    def heldout_accuracy(u):
        with torch.no_grad():
            hw, hl = prefs.winner[heldout], prefs.loser[heldout]
            m = (sequence_logp(policy.model, prefs, hw) - ref_w[heldout]) - (
                sequence_logp(policy.model, prefs, hl) - ref_l[heldout]
            )
        recorder.eval(u, 1.0, "eval/pref_accuracy", float((m > 0).float().mean()), len(m))

    _offline_loop(cfg, env_steps, seed, policy, evaluator, recorder, train.stop, step, heldout_accuracy)


def train_preferred_bc(
    task, cfg: BCConfig, env_steps, seed, evaluator, recorder, alignment: AlignmentContext
):
    prefs = alignment.preferences()
    train, _ = prefs.split(cfg.n_pairs)
    policy = _fine_tune_copy(alignment, seed)
    w = prefs.winner[train]
    recorder.eval(0, 1.0, "data/n_pairs", train.stop, train.stop)

    def step(mb):
        idx = w[mb]
        nll = -sequence_logp(policy.model, prefs, idx).sum() / prefs.mask[idx].sum()
        return nll, {}

    _offline_loop(cfg, env_steps, seed, policy, evaluator, recorder, train.stop, step)


# -- online: PPO / PG on KL-regularised true or learned rewards ---------------------------------


class KLShaping(Shaping):
    """What PPO/PG fine-tuning from π_ref optimises: r_t (true or learned) with the KL penalty
    (in the reward, or as a loss term), normalised by the running std of its discounted return
    (``normalize_reward``, SB3 VecNormalize's rule; r and c·KL are divided alike, so c keeps its
    meaning and the learned reward keeps its level). Records per rollout the per-step KL to π_ref
    (exact and k1), c, the reward scale, and for a learned reward its mean/std per step and the
    correlation of its episode sums with the true returns; adapts c (adaptive mode, on the exact KL)."""

    def __init__(self, cfg, model: ActorCritic, ref: PolicyAct, recorder: Recorder, reward_model=None,
                 value_scale: float = 1.0):  # fmt: skip
        self.cfg, self.model, self.ref, self.recorder, self.rm = cfg, model, ref, recorder, reward_model
        self.coef = cfg.kl_coef
        self.env_steps = 0
        self.scaler = ReturnScaler(cfg.n_envs, cfg.gamma, cfg.normalize_reward)
        self.scale = 1.0  # the scaler's divisor after the last rollout
        self.value_scale = value_scale  # the reward scale the critic's outputs are in (π_ref's at the start)
        self.ref_params: torch.Tensor | None = None  # π_ref's distribution parameters, last rollout [T*N, A]
        self.episode_sums = np.zeros((2, cfg.n_envs))  # learned, true reward of the running episodes
        self.finished: list[tuple[float, float]] = []  # (learned, true) sums of finished episodes

    def per_step_kl(self, params: torch.Tensor, ref_params: torch.Tensor) -> torch.Tensor:
        """Exact KL(π(·|s) ‖ π_ref(·|s)) per state [B]."""
        if self.model.continuous:
            return gaussian_kl(params, self.model.log_std, ref_params, self.ref.model.log_std)
        return categorical_kl(params, ref_params)

    @torch.no_grad()
    def __call__(self, ro: Rollout) -> torch.Tensor:
        T, N = ro.rewards.shape
        ref_params = self.ref.model.policy(ro.obs.flatten(0, 1))
        exact = self.per_step_kl(ro.params.flatten(0, 1), ref_params).view(T, N)
        k1 = (ro.logp.flatten() - self.ref.model.log_prob(ref_params, ro.actions.flatten(0, 1))).view(T, N)
        self.ref_params = ref_params
        valid = ro.valid.float()
        base = ro.rewards if self.rm is None else self.rm(ro.obs, ro.actions)
        shaped = (base - self.coef * k1 if self.cfg.kl_penalty == "reward" else base) * valid
        dones, valid_np, shaped_np = ro.dones.numpy(), ro.valid.numpy(), shaped.numpy()
        out = np.stack([self.scaler(shaped_np[t], dones[t], valid_np[t]) for t in range(T)])
        self.scale = self.scaler.std()

        n_valid = max(float(valid.sum()), 1.0)
        mean_kl = float((exact * valid).sum() / n_valid)
        self.env_steps += int(n_valid)
        if self.cfg.rescale_critic:
            self._rescale_critic(ro)
        rec, step = self.recorder, self.env_steps
        rec.curve(step, "train/ref_kl_per_step", mean_kl)
        rec.curve(step, "train/ref_kl_k1_per_step", float((k1 * valid).sum() / n_valid))
        rec.curve(step, "train/kl_coef", self.coef)
        rec.curve(step, "train/reward_scale", self.scale)
        if self.rm is not None:
            b = base[ro.valid]
            rec.curve(step, "train/rm_reward", float(b.mean()) if len(b) else 0.0)
            rec.curve(step, "train/rm_reward_std", float(b.std()) if len(b) > 1 else 0.0)
            self._track_episodes(base.numpy(), ro.rewards.numpy(), dones, valid_np)
        if self.cfg.kl_mode == "adaptive":
            self.coef = losses.adaptive_kl_coef(self.coef, mean_kl, self.cfg.ref_kl_target, int(n_valid),
                                                self.cfg.kl_horizon)  # fmt: skip
        return torch.from_numpy(out).to(ro.rewards.dtype)

    def _rescale_critic(self, ro: Rollout) -> None:
        """PopArt's output preservation for a scale change s_old -> s_new: the critic's last layer and
        the values it gave this rollout are multiplied by s_old / s_new, so that s·V(s) is unchanged and
        V is in the units of the rewards just scaled (GAE mixes the two)."""
        factor = self.value_scale / self.scale
        self.value_scale = self.scale
        if factor == 1.0:
            return
        last = self.model._vf_linears[-1]
        last.weight.mul_(factor)
        last.bias.mul_(factor)
        ro.values.mul_(factor)
        self.recorder.curve(self.env_steps, "train/critic_rescale", factor)

    def _track_episodes(self, learned, true, dones, valid, window: int = 64) -> None:
        """Learned-reward sum vs true return of the training episodes: their Pearson correlation
        over the last ``window`` finished episodes (``train/rm_return_corr``)."""
        added = 0
        for t in range(len(learned)):
            self.episode_sums += np.stack([learned[t], true[t]]) * valid[t]
            for n in np.flatnonzero(dones[t]):
                self.finished.append((self.episode_sums[0, n], self.episode_sums[1, n]))
                self.episode_sums[:, n] = 0.0
                added += 1
        self.finished = self.finished[-window:]
        if len(self.finished) >= 8 and added:  # (a full window stays full: count what came in)
            corr = return_correlation(self.finished)
            if corr is not None:
                self.recorder.curve(self.env_steps, "train/rm_return_corr", corr)

    def adds_policy_loss(self) -> bool:
        return self.cfg.kl_penalty == "loss" and self.coef != 0

    def policy_loss(self, index, params, adv_scale):
        """kl_penalty: loss — (c / (s·σ_A)) · mean KL(π(·|s) ‖ π_ref(·|s)) over the minibatch, where s is
        the reward scale and σ_A the advantage scale: the same weight against the policy gradient as
        c has against r in the unscaled objective."""
        if self.cfg.kl_penalty != "loss" or self.coef == 0:
            return None
        kl = self.per_step_kl(params, self.ref_params[index])
        return self.coef / (self.scale * adv_scale) * kl.mean()


def return_correlation(pairs) -> float | None:
    """Pearson correlation of (learned-reward sum, true return) pairs; None where either is constant."""
    a = np.asarray(pairs, np.float64)
    if len(a) < 2 or a[:, 0].std() == 0 or a[:, 1].std() == 0:
        return None
    return float(np.corrcoef(a[:, 0], a[:, 1])[0, 1])


def _record_rm_correlation(task, policy: PolicyAct, rm, step: int, metric: str, seed: int, recorder,
                           alignment: AlignmentContext, episodes: int = 20) -> None:  # fmt: skip
    """Correlation of the learned reward's episode sums with the true returns on ``episodes``
    episodes of ``policy`` at T = 1 (kept out of the training time)."""
    t0 = time.perf_counter()
    eps = reference_episodes(task, policy, episodes, seed)
    with torch.no_grad():
        pairs = [(float(rm(torch.as_tensor(o).float(), torch.as_tensor(a)).sum()), float(r.sum()))
                 for o, a, r, _ in eps]  # fmt: skip
    corr = return_correlation(pairs)
    if corr is not None:
        recorder.eval(step, 1.0, metric, corr, len(pairs))
    alignment.exclude(time.perf_counter() - t0)


def _online_setup(task: Task, cfg, seed: int, evaluator: Evaluator, recorder: Recorder,
                  alignment: AlignmentContext, use_rm: bool):  # fmt: skip
    """An online fine-tuning run's start: (agent copied from π_ref, its ``KLShaping``, the reward
    model or None), the reward model's accuracies and its return correlation on π_ref recorded; the
    reward model is the evaluator's proxy (``eval/proxy_return`` at every evaluation)."""
    ref = alignment.reference()
    rm = None
    if use_rm:
        rm, info = load_reward_model(alignment, cfg.n_pairs, cfg.reward_model)
        for metric in ("accuracy", "gold_accuracy", "train_accuracy"):
            recorder.eval(0, 1.0, f"rm/{metric}", info[metric], info["heldout_pairs"])
        recorder.eval(0, 1.0, "data/n_pairs", info["n_pairs"], info["n_pairs"])
        ref_act = PolicyAct(ref.model, ref.obs_norm, torch.Generator().manual_seed(seed + 2))
        _record_rm_correlation(task, ref_act, rm, 0, "rm/return_corr_ref", seed + 20_000, recorder, alignment)
        evaluator.proxy = rm
    agent = build_agent(task, cfg, seed, recorder, init=ref)
    shaping = KLShaping(cfg, agent.model, ref, recorder, rm, alignment.reference_reward_scale())
    return agent, shaping, rm


def _online_finish(task: Task, agent, rm, seed: int, recorder: Recorder, alignment: AlignmentContext) -> None:
    """After training: the learned reward's return correlation on the final policy."""
    if rm is not None:
        final = PolicyAct(agent.model, agent.collector.obs_norm, torch.Generator().manual_seed(seed + 3))
        _record_rm_correlation(task, final, rm, agent.collector.env_steps, "rm/return_corr", seed + 30_000,
                               recorder, alignment)  # fmt: skip


def _online(base_train, use_rm: bool):
    def train(task: Task, cfg, env_steps, seed, evaluator, recorder, alignment: AlignmentContext):
        agent, shaping, rm = _online_setup(task, cfg, seed, evaluator, recorder, alignment, use_rm)
        base_train(task, cfg, env_steps, seed, evaluator, recorder, agent=agent, shaping=shaping)
        _online_finish(task, agent, rm, seed, recorder, alignment)

    return train


def _online_seeds(batched_train, use_rm: bool):
    """The seed-batched trainer of an online method (``bench.algos.seed_batch``): each seed's start
    and finish as ``_online``'s, their training in lockstep; a seed that fails fails alone."""

    def train_seeds(task: Task, cfg, env_steps, seeds, evaluators, recorders, alignments):
        outcome: list = [None] * len(seeds)
        setups = {}
        for j, (seed, ev, rec, ctx) in enumerate(zip(seeds, evaluators, recorders, alignments, strict=True)):
            try:
                setups[j] = _online_setup(task, cfg, seed, ev, rec, ctx, use_rm)
            except Exception as e:  # noqa: BLE001
                outcome[j] = e
        members = list(setups)
        if not members:
            return outcome
        pick = lambda xs: [xs[j] for j in members]  # noqa: E731
        trained = batched_train(task, cfg, env_steps, pick(seeds), pick(evaluators), pick(recorders),
                                agents=[setups[j][0] for j in members],
                                shapings=[setups[j][1] for j in members])  # fmt: skip
        for j, result in zip(members, trained, strict=True):
            if not isinstance(result, BaseException):
                try:
                    _online_finish(task, result, setups[j][2], seeds[j], recorders[j], alignments[j])
                except Exception as e:  # noqa: BLE001
                    result = e
            outcome[j] = result
        return outcome

    return train_seeds


train_ppo_gt = _online(ppo.train, use_rm=False)
train_ppo_rm = _online(ppo.train, use_rm=True)
train_pg_gt = _online(pg.train, use_rm=False)
train_pg_rm = _online(pg.train, use_rm=True)

ppo_gt_seeds = _online_seeds(seed_batch.ppo_train, use_rm=False)
ppo_rm_seeds = _online_seeds(seed_batch.ppo_train, use_rm=True)
pg_gt_seeds = _online_seeds(seed_batch.pg_train, use_rm=False)
pg_rm_seeds = _online_seeds(seed_batch.pg_train, use_rm=True)
