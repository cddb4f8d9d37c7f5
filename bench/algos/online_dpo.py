"""Online DPO (Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback"; TRL's
``OnlineDPOTrainer``): DPO on pairs the policy samples as it trains, labelled by a judge.

Per update: ``prompts_per_batch`` train prompts, two completions each from the current policy
(temperature ``temperature``), both scored by the judge — the frozen reward model (``judge: rm``,
its data size ``rm_pairs``) or the gold reward itself (``judge: gold``, the oracle) — less
``missing_eos_penalty`` for a completion that never ended; the first completion is chosen where
its score is at least the second's (TRL's rule: ties go to the first). The loss is DPO's
−log σ(β h) (``loss: dpo``, TRL's ``sigmoid``) or IPO's (h − 1/2β)² (``ipo``, TRL's ``ipo``) with
h = (log π(y_w) − log π(y_l)) − (log π_SFT(y_w) − log π_SFT(y_l)), sequence log-probs summed over
the completion tokens (eos included) at temperature 1, averaged over the batch; one AdamW step.
``online_dpo_loss`` equals ``OnlineDPOTrainer.training_step``'s loss and gradient on identical
completions and scores (``tests/unit/test_online_dpo.py``).

Against offline DPO (``lm-dpo``: the fixed preference data, sampled once from π_SFT and labelled
by the gold): the data follow the policy (Tang et al. 2024 ask whether that is what makes online
methods better at the same KL).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses
from bench.algos.lm import (
    Batches,
    completion_logps,
    guard_update,
    optimizer_step,
)
from bench.algos.rlhf_ppo import SequenceScorer
from bench.artifacts import LMContext
from bench.lm.generation import sample
from bench.lm.tasks import LMTask
from bench.lm_evaluation import LMEvaluator
from bench.recorder import Recorder


class LMOnlineDPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    judge: Literal["rm", "gold"] = Field(
        "rm", description="who labels each sampled pair: reward model, or gold"
    )
    loss: Literal["dpo", "ipo"] = Field("dpo", description="dpo (TRL: sigmoid) or ipo, on summed log-ratios")
    beta: float = Field(0.1, gt=0, description="KL strength beta (ipo: tau)")
    lr: float = Field(5e-5, gt=0, le=1, description="AdamW learning rate (constant)")
    prompts_per_batch: int = Field(16, gt=0, le=65536, description="prompts per update, two completions each")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the two completions")
    missing_eos_penalty: float | None = Field(
        None, ge=0, description="subtracted from the score of a completion without eos (None: none)"
    )
    max_grad_norm: float = Field(1.0, gt=0)
    rm_pairs: int | None = Field(
        None, ge=1, le=100_000_000, json_schema_extra={"when_set": True},
        description="judge: rm — a reward model trained on the first rm_pairs training pairs (None = all)",
    )  # fmt: skip


def choose(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, rejected) indices into 2B scored completions (prompt i's are i and B + i): the first
    where its score is at least the second's."""
    b = len(scores) // 2
    first = scores[:b] >= scores[b:]
    rows = np.arange(b)
    return np.where(first, rows, rows + b), np.where(first, rows + b, rows)


def online_dpo_loss(policy, ref, prompts: list[list[int]], completions: list[list[int]], scores: np.ndarray,
                    cfg: LMOnlineDPOConfig, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The loss of one batch: ``prompts`` [B], their 2B ``completions`` (prompt i's are i and B + i)
    and the judge's ``scores`` [2B]; returns (loss, the log-ratio margins h, detached)."""
    chosen, rejected = choose(np.asarray(scores))
    order = [*chosen.tolist(), *rejected.tolist()]
    b = len(prompts)
    cr_prompts = [prompts[i % b] for i in order]
    cr = [completions[i] for i in order]
    logp = completion_logps(policy, cr_prompts, cr, pad_id)
    with torch.no_grad():
        ref_logp = completion_logps(ref, cr_prompts, cr, pad_id)
    h = (logp[:b] - logp[b:]) - (ref_logp[:b] - ref_logp[b:])
    loss = losses.PREFERENCE_LOSSES[cfg.loss](h, torch.zeros_like(h), cfg.beta, None, None)
    return loss, h.detach()


def train_online_dpo(task: LMTask, cfg: LMOnlineDPOConfig, steps: int, seed: int, evaluator: LMEvaluator,
                     recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    tok = ctx.tokenizer()
    pad, eos = tok.pad_token_id, tok.eos_token_id
    train = ctx.prompts()["train"]  # (text, ids)
    # the judge's raw score (the reward model's, which is also the evaluations' proxy; or the gold)
    judge = SequenceScorer(ctx, cfg.judge, recorder, cfg.rm_pairs, evaluator, standardise=False).raw
    policy, ref = ctx.policy(), ctx.reference()
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    batches = Batches(len(train), cfg.prompts_per_batch, seed)
    g = torch.Generator().manual_seed(seed + 17)
    for step in range(1, steps + 1):
        idx = batches.next()
        prompts, prompt_texts = [train[i][1] for i in idx], [train[i][0] for i in idx]
        completions = sample(policy, prompts + prompts, cfg.temperature, ctx.setup.max_new_tokens, eos, pad,
                             generator=g)  # fmt: skip
        scores = np.asarray(judge(prompt_texts + prompt_texts, prompts + prompts, completions), float)
        ended = np.array([bool(c) and c[-1] == eos for c in completions])
        if cfg.missing_eos_penalty is not None:
            scores = scores - cfg.missing_eos_penalty * ~ended
        loss, h = online_dpo_loss(policy, ref, prompts, completions, scores, cfg, pad)
        optimizer_step(opt, policy, loss, cfg.max_grad_norm)
        recorder.steps(step)
        loss_value = loss.item()
        record, evaluate = step % 10 == 0 or step == steps, evaluator.due(step) and step < steps
        guard_update(step, loss_value, policy, record or evaluate)
        if record:
            chosen, rejected = choose(scores)
            recorder.curve(step, "train/loss", loss_value)
            recorder.curve(step, "train/reward_margin", float(cfg.beta * h.mean()))
            recorder.curve(step, "train/reward_accuracy", float((h > 0).float().mean()))
            recorder.curve(step, "train/score", float(scores.mean()))
            recorder.curve(step, "train/score_margin", float((scores[chosen] - scores[rejected]).mean()))
            recorder.curve(step, "train/contain_eos", float(ended.mean()))
        if evaluate:
            evaluator(step, policy)
    evaluator.final(steps, policy)
