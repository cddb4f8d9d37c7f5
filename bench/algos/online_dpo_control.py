"""Online DPO on classic control (``online-dpo``): DPO on segment pairs the policy samples as it
trains, labelled by a judge — the control counterpart of ``lm-online-dpo``, for Tang et al.
(2024)'s question whether online methods beat offline ones at the same KL because their data
follow the policy.

Everything but who samples the data is offline ``dpo``'s: the pairs are cut from the policy's own
episodes at T = 1 exactly as the suite's preference dataset is cut from π_ref's
(``rollout.segment_pairs``: segments of the recipe's length from uniformly random visited states,
ties drawn again), and labelled as it is — by Bradley–Terry on the true segment return with the
recipe's label temperature (``judge: gold``), or on the trajectory reward model's segment sum,
trained on the offline pairs (``judge: rm``). Per batch: ``episodes_per_batch`` episodes of the
current policy (reset seeds drawn from the run's seed), ``pairs_per_batch`` pairs, then
``updates_per_batch`` minibatch updates of the loss on them (1: strictly on-policy) before the
next batch is sampled. log π(segment) = Σ_t log π(a_t|s_t) (the dynamics cancel in π/π_ref).

The budget (the suite's ``env_steps``) counts gradient updates, as offline ``dpo``'s does, so both
train equally long; the environment steps the sampling took are recorded (``train/env_steps``).
A batch whose segments all tie (CartPole's, once the policy keeps the pole up for every segment: the
true return of each is its length) holds no preference: its updates are skipped, not taken, and
counted (``train/tied_batches``); the next batch is sampled as usual.
Held-out accuracy is measured on the offline dataset's held-out pairs, as for ``dpo``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from bench.algos import losses
from bench.algos.aligned import (
    OfflineConfig,
    RewardModelFields,
    _fine_tune_copy,
    _offline_loop,
    sequence_logp,
)
from bench.algos.reward_model import load_reward_model
from bench.algos.rollout import reference_episodes
from bench.algos.segments import SegmentPairs, segment_pairs
from bench.artifacts import AlignmentContext, SegmentPreferences
from bench.control.policies import PolicyAct
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class OnlineDPOConfig(OfflineConfig, RewardModelFields):
    judge: Literal["gold", "rm"] = Field(
        "gold",
        description="who labels the sampled pairs: the true segment return (gold), or the reward model",
    )
    loss: Literal["dpo", "ipo", "ipo-mean"] = Field(
        "dpo", description="row of losses.PREFERENCE_LOSSES (as offline dpo's)"
    )
    beta: float = Field(0.1, gt=0, description="KL strength beta (IPO: tau)")
    episodes_per_batch: int = Field(
        4, ge=1, le=100_000, description="episodes of the current policy per batch"
    )
    pairs_per_batch: int = Field(256, ge=1, le=1_000_000, description="segment pairs cut from them")
    updates_per_batch: int = Field(
        4,
        ge=1,
        le=100_000,
        description="minibatch updates on a batch before the next is sampled (1: on-policy)",
    )


def train_online_dpo(task, cfg: OnlineDPOConfig, env_steps, seed, evaluator: Evaluator, recorder: Recorder,
                     alignment: AlignmentContext, sampled: list | None = None) -> None:  # fmt: skip
    """Trains online DPO; with ``sampled``, appends to it each batch of pairs it samples (the
    batches it trains on; a batch of ties, which it skips, is not one)."""
    recipe = alignment.preference_recipe  # the ControlPipeline's PreferenceRecipe (segment length, labels)
    prefs = alignment.preferences()
    ref = alignment.reference()
    _, heldout = prefs.split()
    policy = _fine_tune_copy(alignment, seed)
    score = None
    if cfg.judge == "rm":
        rm, info = load_reward_model(alignment, cfg.n_pairs, cfg.reward_model)
        for metric in ("accuracy", "gold_accuracy", "train_accuracy"):
            recorder.eval(0, 1.0, f"rm/{metric}", info[metric], info["heldout_pairs"])

        def score(o, a, r):
            with torch.no_grad():
                return float(rm(torch.as_tensor(o).float(), torch.as_tensor(a)).sum())

    with torch.no_grad():
        ref_heldout = (sequence_logp(ref.model, prefs, prefs.winner[heldout]),
                       sequence_logp(ref.model, prefs, prefs.loser[heldout]))  # fmt: skip
    sampler = np.random.default_rng([seed, 1])  # reset seeds and cuts; the minibatches use the seed's own
    actor = PolicyAct(
        policy.model, policy.obs_norm, torch.Generator().manual_seed(seed + 4)
    )  # not the evaluator's
    state = {"calls": 0, "env_steps": 0, "tied_batches": 0}
    batch: dict = {}

    def resample() -> None:
        eps = reference_episodes(task, actor, cfg.episodes_per_batch, int(sampler.integers(2**31 - 1)))
        state["env_steps"] += sum(len(e[2]) for e in eps)
        pairs = segment_pairs(eps, cfg.pairs_per_batch, recipe.segment_length, recipe.label_temperature,
                              sampler, score)  # fmt: skip
        if pairs is None:  # every segment ties (CartPole's once the pole stays up): no preference to learn
            state["tied_batches"] += 1
            batch.clear()
            return
        with torch.no_grad():
            ref_w = sequence_logp(ref.model, pairs, pairs.winner)
            ref_l = sequence_logp(ref.model, pairs, pairs.loser)
        batch.update(pairs=pairs, ref_w=ref_w, ref_l=ref_l, redrawn=pairs.redrawn)
        if sampled is not None:
            sampled.append(pairs)

    def step(mb):
        if state["calls"] % cfg.updates_per_batch == 0:
            resample()
        state["calls"] += 1
        if not batch:  # this batch's segments all tied: its updates are skipped
            return None
        pairs: SegmentPairs = batch["pairs"]
        w, lo = pairs.winner[mb], pairs.loser[mb]
        ratio_w = sequence_logp(policy.model, pairs, w) - batch["ref_w"][mb]
        ratio_l = sequence_logp(policy.model, pairs, lo) - batch["ref_l"][mb]
        steps = pairs.mask.sum(-1)
        loss = losses.PREFERENCE_LOSSES[cfg.loss](ratio_w, ratio_l, cfg.beta, steps[w], steps[lo])
        margin = (ratio_w - ratio_l).detach()
        return loss, {
            "reward_margin": float(cfg.beta * margin.mean()),
            "pref_accuracy": float((margin > 0).float().mean()),
            "env_steps": float(state["env_steps"]),
            "ties_redrawn": float(batch["redrawn"]),
            "tied_batches": float(state["tied_batches"]),
        }

    def heldout_accuracy(u):
        with torch.no_grad():
            m = (sequence_logp(policy.model, prefs, prefs.winner[heldout]) - ref_heldout[0]) - (
                sequence_logp(policy.model, prefs, prefs.loser[heldout]) - ref_heldout[1]
            )
        recorder.eval(u, 1.0, "eval/pref_accuracy", float((m > 0).float().mean()), len(m))

    _offline_loop(
        cfg, env_steps, seed, policy, evaluator, recorder, cfg.pairs_per_batch, step, heldout_accuracy
    )


# -- offline DPO on the online run's data (Tang et al.'s coverage test) ------------------------


class OnlineDataDPOConfig(OnlineDPOConfig):
    """The online run whose pairs become the dataset (every field as ``online-dpo``'s), then offline
    DPO on them with the same loss, β, learning rate, minibatch size and number of updates."""


class _Silent:
    """Recorder and evaluator of the data-collecting online run: its records are not this run's."""

    def __call__(self, *args, **kwargs) -> None:
        pass

    def __getattr__(self, name):
        return self


class _WithPreferences:
    """An alignment context whose preference dataset is replaced (everything else is the run's)."""

    def __init__(self, ctx: AlignmentContext, prefs):
        self._ctx, self._prefs = ctx, prefs

    def preferences(self):
        return self._prefs

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def online_dataset(sampled: list[SegmentPairs], heldout_of) -> SegmentPreferences:
    """The pairs an online run sampled, batch after batch, as one offline dataset (all of them for
    training), followed by ``heldout_of``'s held-out pairs (held-out accuracy is then measured on
    the same pairs as offline ``dpo``'s)."""
    _, heldout = heldout_of.split()
    offsets = np.cumsum([0] + [len(p.returns) for p in sampled])
    parts = [(p.obs, p.actions, p.mask, p.returns) for p in sampled]
    parts.append((heldout_of.obs, heldout_of.actions, heldout_of.mask, heldout_of.returns))
    obs, actions, mask, returns = (torch.cat(x) for x in zip(*parts, strict=True))
    winner = [p.winner + int(o) for p, o in zip(sampled, offsets, strict=False)]
    loser = [p.loser + int(o) for p, o in zip(sampled, offsets, strict=False)]
    winner.append(heldout_of.winner[heldout] + int(offsets[-1]))
    loser.append(heldout_of.loser[heldout] + int(offsets[-1]))
    n_train = sum(len(p.winner) for p in sampled)
    return SegmentPreferences(obs, actions, mask, returns, torch.cat(winner), torch.cat(loser), n_train)


def train_dpo_on_online_data(task, cfg: OnlineDataDPOConfig, env_steps, seed, evaluator: Evaluator,
                             recorder: Recorder, alignment: AlignmentContext) -> None:  # fmt: skip
    """Tang et al. (2024, §4)'s coverage test: is online DPO ahead because its data cover where its
    policy goes? First the online run of the same seed and settings, not evaluated or recorded,
    keeping every batch of pairs it sampled and trained on; then offline DPO from π_ref on all of
    them at once (uniform minibatches), as long as the online run trained."""
    from bench.algos.aligned import DPOConfig, train_dpo

    sampled: list[SegmentPairs] = []
    silent = _Silent()
    train_online_dpo(task, cfg, env_steps, seed, silent, silent, alignment, sampled)
    if not sampled:
        raise ValueError("the online run sampled no pair that was not a tie: there is no dataset to train on")
    prefs = online_dataset(sampled, alignment.preferences())
    recorder.eval(0, 1.0, "data/online_batches", len(sampled), len(sampled))
    offline = DPOConfig(loss=cfg.loss, beta=cfg.beta, lr=cfg.lr, batch_size=cfg.batch_size,
                        eval_points=cfg.eval_points, max_grad_norm=cfg.max_grad_norm)  # fmt: skip
    train_dpo(task, offline, env_steps, seed, evaluator, recorder, _WithPreferences(alignment, prefs))
