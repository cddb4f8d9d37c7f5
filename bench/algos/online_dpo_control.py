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
from bench.artifacts import AlignmentContext
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
                     alignment: AlignmentContext) -> None:  # fmt: skip
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
