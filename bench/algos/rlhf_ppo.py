"""Online RL on LM tasks: RLHF-PPO with four models, and policy gradient (REINFORCE / RLOO).

**RLHF-PPO** (``rlhf-ppo``) follows the four-model layout of DeepSpeed-Chat's step 3 (Yao et al.
2023) and the PPO recipe of Ziegler et al. (2019) and Stiennon et al. (2020):

* *actor* — trained, initialised from π_SFT; *reference* — frozen π_SFT;
* *reward model* — frozen (``reward: rm``), or the gold reward itself (``reward: gold``: the DPO
  paper's PPO-GT, no reward model anywhere);
* *critic* — trained, a scalar head read at every token; initialised from the reward model
  (``reward: gold``: from π_SFT's transformer with a fresh head).

One iteration samples ``batch_size`` train prompts, one completion each from the actor at
``temperature``, and builds per-token rewards over the completion tokens (``token_rewards``):
−kl_coef·(log π − log π_ref) on every token, plus the sequence score — the reward model's score
or the gold reward, standardised by its mean and std over π_SFT's preference completions —
clipped to ±``clip_reward`` on the last token. GAE (γ, λ) runs over the completion tokens only
(``masked_gae``); returns = advantages + values. Then ``ppo_epochs`` passes of minibatches:
the clipped ratio loss averaged over completion tokens for the actor, the clipped value loss for
the critic, each with its own AdamW. With ``target_kl`` set, kl_coef follows the proportional
controller of Ziegler et al. on the rollouts' sequence KL (nats), the paper's target-KL sweep.
Three details of Huang et al. 2024 and Xu et al. 2024 are switches, off by default:
``missing_eos_penalty`` (subtracted from the score of a completion cut at the length limit),
``whiten_rewards`` (the per-token rewards scaled by their batch std) and ``ref_mixup_alpha`` (the
penalty's reference moved toward the actor after every iteration: an EMA reference).

**PG on language** (``lm-pg``) is REINFORCE with the KL-regularised sequence reward
R = score − kl_coef·Σ_t (log π − log π_ref): ``k`` completions per prompt and, with
``baseline: rloo``, the leave-one-out mean of the other k − 1 rewards of the same prompt as the
baseline (RLOO, Kool et al. 2019; Ahmadian et al. 2024); ``baseline: none`` is plain REINFORCE.
One optimizer update per batch of prompts.

The budget of both counts optimizer updates (of the actor), like every trained LM method.
"""

from __future__ import annotations

import copy
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.algos import losses
from bench.algos.guard import check_finite
from bench.algos.lm import Batches, optimizer_step, record_reward_model, reward_model
from bench.artifacts import LMContext
from bench.lm.generation import batch_pairs, rm_scores_batched, sample, score
from bench.lm.models import load_scalar_model, scalar_model_from
from bench.lm.tasks import LMTask
from bench.lm_evaluation import LMEvaluator
from bench.recorder import Recorder


class _OnlineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    reward: Literal["rm", "gold"] = Field("rm", description="reward model, or the gold reward (PPO-GT)")
    lr: float = Field(5e-5, gt=0, le=1, description="actor AdamW learning rate (constant)")
    kl_coef: float = Field(0.05, ge=0, description="KL penalty coefficient (initial, with target_kl)")
    clip_reward: float = Field(5.0, gt=0, description="the sequence score is clipped to ± this")
    temperature: float = Field(
        1.0,
        gt=0,
        description="sampling temperature of the rollouts; actor and reference log-probs (ratio, KL) are"
        " taken at the same temperature, as TRL's online trainers do",
    )
    max_grad_norm: float = Field(1.0, gt=0)
    rm_pairs: int | None = Field(
        None, ge=1, le=100_000_000, json_schema_extra={"when_set": True},
        description="reward: rm — a reward model trained on only the first rm_pairs training preference pairs"
        " (cached apart; None = all): reward-model data size sweeps (over-optimisation)",
    )  # fmt: skip


class RLHFPPOConfig(_OnlineConfig):
    batch_size: int = Field(64, gt=0, le=65536, description="prompts (one completion each) per iteration")
    minibatch_size: int = Field(16, gt=0, le=65536, description="completions per update")
    ppo_epochs: int = Field(4, gt=0, le=100, description="passes over each batch of experience")
    clip_range: float = Field(0.2, gt=0, description="policy ratio clip ε")
    clip_range_vf: float = Field(0.2, gt=0, description="value clip around the rollout values")
    critic_lr: float = Field(1e-4, gt=0, le=1, description="critic AdamW learning rate")
    gamma: float = Field(1.0, gt=0, le=1)
    lam: float = Field(0.95, ge=0, le=1, description="GAE λ")
    whiten_advantages: bool = True
    target_kl: float | None = Field(None, gt=0, description="adaptive kl_coef toward this sequence KL (nats)")
    horizon: int = Field(
        500, gt=0, le=10**12, description="controller horizon in samples (Ziegler et al.: 10k)"
    )
    # the implementation details of Huang et al. 2024 and Xu et al. 2024 (off by default: the run
    # keys of earlier runs stay as they were)
    whiten_rewards: bool = Field(
        False, description="scale the per-token rewards by their std over the batch, mean kept (TRL's"
        " whiten_rewards)", json_schema_extra={"when_set": True},
    )  # fmt: skip
    missing_eos_penalty: float | None = Field(
        None, ge=0, le=1e6, description="subtracted from the sequence score of a completion that ends"
        " without EOS (TRL's missing_eos_penalty)", json_schema_extra={"when_set": True},
    )  # fmt: skip
    ref_mixup_alpha: float | None = Field(
        None, gt=0, le=1, description="after every iteration the reference of the KL penalty moves to"
        " α·actor + (1 − α)·reference (an EMA reference; TRL's ref_model_mixup_alpha); evaluation KL"
        " stays against π_SFT", json_schema_extra={"when_set": True},
    )  # fmt: skip


class LMPGConfig(_OnlineConfig):
    baseline: Literal["rloo", "none"] = Field("rloo", description="leave-one-out baseline, or none")
    prompts_per_batch: int = Field(16, gt=0, le=65536, description="prompts per update")
    k: int = Field(4, ge=1, le=256, description="completions per prompt (RLOO needs k >= 2)")


# -- pure functions (tested against hand values) ------------------------------------------------


def token_rewards(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor,
                  kl_coef: float, clip_reward: float) -> torch.Tensor:  # fmt: skip
    """Per-token rewards [B, C]: −kl_coef·(log π − log π_ref) on every completion token, plus the
    sequence score clipped to ±clip_reward on the last one; zero on padding."""
    rewards = -kl_coef * (logp - ref_logp) * mask
    last = mask.sum(-1).long() - 1  # index of each row's last completion token
    rows = torch.arange(len(mask))
    rewards[rows, last] += scores.clamp(-clip_reward, clip_reward).to(rewards.dtype)
    return rewards * mask


def masked_gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
               lam: float) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """GAE over each row's completion tokens [B, C] (right-padded, ``mask`` marks real tokens):
    the episode ends at the row's last token (no bootstrap past it). Returns (advantages,
    returns = advantages + values), zero on padding."""
    B, C = rewards.shape
    lengths = mask.sum(-1).long()
    steps = torch.arange(C)[None, :]
    dones = steps >= (lengths[:, None] - 1)  # the last token ends the episode; padding stays done
    values = values * mask
    v_ext = torch.cat([values, torch.zeros(B, 1, dtype=values.dtype)], dim=1)
    adv, _ = losses.gae(rewards.T, v_ext.T, dones.T, gamma, lam)
    adv = adv.T * mask
    return adv, (adv + values) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(
    x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, shift_mean: bool = True
) -> torch.Tensor:
    """(x − mean) / std over the real tokens (population std), zero on padding; ``shift_mean``
    False adds the mean back (only the scale changes)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) / torch.sqrt(var + eps)
    return (out if shift_mean else out + mean) * mask


def missing_eos(completions: list[list[int]], eos_id: int) -> torch.Tensor:
    """[B] bool: the completions that did not end with EOS (they ran to the length limit)."""
    return torch.tensor([not c or c[-1] != eos_id for c in completions])


@torch.no_grad()
def mix_into(target: torch.nn.Module, source: torch.nn.Module, alpha: float) -> None:
    """target ← α·source + (1 − α)·target, parameter by parameter."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.mul_(1.0 - alpha).add_(s.to(t.device), alpha=alpha)


def rloo_baseline(rewards: torch.Tensor) -> torch.Tensor:
    """Leave-one-out baseline [P, k]: for sample i of a prompt, the mean reward of the other
    k − 1 samples of that prompt."""
    k = rewards.shape[-1]
    if k < 2:
        raise ValueError("RLOO needs k >= 2 completions per prompt")
    return (rewards.sum(-1, keepdim=True) - rewards) / (k - 1)


# -- models ----------------------------------------------------------------------------------------


def token_values(critic, prompts: list[list[int]], completions: list[list[int]], pad_id: int) -> torch.Tensor:
    """The critic's value of each completion token's state (read where the policy's logit for
    that token is read: the position before it). [B, C]"""
    ids, attn, index, _, _ = (t.to(critic.device) for t in batch_pairs(prompts, completions, pad_id))
    hidden = critic.base_model(input_ids=ids, attention_mask=attn).last_hidden_state
    rows = torch.arange(len(prompts), device=critic.device)[:, None]
    head = critic.score if hasattr(critic, "score") else critic.classifier
    return head(hidden[rows, index])[..., 0].float()


class SequenceScorer:
    """The score a rollout gets: the frozen reward model's, or the gold reward, standardised by
    its mean and std over π_SFT's preference completions (so both have the same scale)."""

    def __init__(self, ctx: LMContext, reward: str, recorder: Recorder, rm_pairs: int | None = None,
                 evaluator: LMEvaluator | None = None, standardise: bool = True):  # fmt: skip
        """``standardise=False``: only ``raw`` is used (a judge that ranks), so the gold's
        standardisation statistics are not computed."""
        self.ctx, self.reward = ctx, reward
        self.tok = ctx.tokenizer()
        if reward == "rm":
            self.rm, info = reward_model(ctx, rm_pairs)
            if evaluator is not None:  # the proxy reward beside the gold at every evaluation
                evaluator.proxy = lambda prompts, comps, texts, prompt_texts: self.raw(
                    prompt_texts, prompts, comps
                )
            self.mean, self.std = info["score_mean"], max(info["score_std"], 1e-6)
            record_reward_model(recorder, info)
        elif not standardise:
            self.mean, self.std = 0.0, 1.0
        else:
            # the gold reward gets the same standardisation, from π_SFT's preference completions
            gold = np.concatenate([np.asarray(g, dtype=float) for g in ctx.preferences().gold])
            self.mean, self.std = float(gold.mean()), max(float(gold.std()), 1e-6)

    def raw(
        self, prompt_texts: list[str], prompts: list[list[int]], completions: list[list[int]]
    ) -> np.ndarray:
        if self.reward == "rm":
            return rm_scores_batched(self.rm, prompts, completions, self.tok.pad_token_id)
        return self.ctx.gold()(self.tok.batch_decode(completions, skip_special_tokens=True), prompt_texts)

    def __call__(self, prompt_texts: list[str], prompts: list[list[int]], completions: list[list[int]]):
        """Standardised sequence scores [B]: (raw − mean) / std."""
        raw = self.raw(prompt_texts, prompts, completions)
        return torch.as_tensor((raw - self.mean) / self.std, dtype=torch.float32)


def _critic(ctx: LMContext, reward: str, rm_pairs: int | None = None):
    """The trainable critic: a copy of the reward model, or π_SFT's transformer with a new head."""
    if reward == "rm":
        reward_model(ctx, rm_pairs)
        path = ctx.reward_model_path() if rm_pairs is None else ctx.reward_model_path(rm_pairs)
        model = load_scalar_model(str(path))
    else:
        model = scalar_model_from(str(ctx.sft_path()), ctx.tokenizer().pad_token_id, ctx.seed)
    model.to(ctx.setup.torch_device()).eval()  # dropout off, as for the actor (LMContext.policy)
    ctx.hold("critic", model)
    return model


def _rollout(ctx: LMContext, actor, prompts: list[list[int]], temperature: float, g: torch.Generator):
    tok = ctx.tokenizer()
    return sample(actor, prompts, temperature, ctx.setup.max_new_tokens, tok.eos_token_id, tok.pad_token_id,
                  generator=g)  # fmt: skip


class PromptGroups:
    """The batches of the group methods (RLOO, GRPO, RRHF): per call, ``k`` completions sampled
    from the actor for each of ``prompts_per_batch`` training prompts (shuffled epochs, seeded)."""

    def __init__(self, ctx: LMContext, prompts_per_batch: int, k: int, temperature: float, seed: int):
        self.ctx, self.k, self.temperature = ctx, k, temperature
        self.train = ctx.prompts()["train"]  # (text, ids)
        self.batches = Batches(len(self.train), prompts_per_batch, seed)
        self.g = torch.Generator().manual_seed(seed)

    def sample(self, actor) -> tuple[list[str], list[list[int]], list[list[int]]]:
        """(prompt texts, prompt ids, completions), each prompt repeated ``k`` times in a row."""
        base = [self.train[i] for i in self.batches.next()]
        texts = [t for t, _ in base for _ in range(self.k)]
        prompts = [ids for _, ids in base for _ in range(self.k)]
        return texts, prompts, _rollout(self.ctx, actor, prompts, self.temperature, self.g)


def _logps(model, prompts, completions, pad, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    s = score(model, prompts, completions, pad, temperature=temperature)
    return s.token_logp.cpu(), s.mask.cpu()


def _tokens(t: torch.Tensor, idx: torch.Tensor, keep: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The real-token entries of rows ``idx`` of a batch tensor [B, C], as a flat tensor on
    ``like``'s device (``keep`` [len(idx), w] marks them; w <= C)."""
    return t[idx, : keep.shape[1]][keep].to(like.device)


# -- RLHF-PPO -----------------------------------------------------------------------------------


def train_rlhf_ppo(task: LMTask, cfg: RLHFPPOConfig, steps: int, seed: int, evaluator: LMEvaluator,
                   recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    tok = ctx.tokenizer()
    pad = tok.pad_token_id
    train_prompts = ctx.prompts()["train"]  # (text, ids)
    scorer = SequenceScorer(ctx, cfg.reward, recorder, cfg.rm_pairs, evaluator)
    actor, ref, critic = ctx.policy(), ctx.reference(), _critic(ctx, cfg.reward, cfg.rm_pairs)
    if cfg.ref_mixup_alpha is not None:  # a reference of the penalty's own (the evaluator keeps π_SFT)
        ref = copy.deepcopy(ref)
    models = {"actor": actor, "critic": critic}  # what the divergence guard checks
    actor_opt = torch.optim.AdamW(actor.parameters(), lr=cfg.lr, weight_decay=0.0)
    critic_opt = torch.optim.AdamW(critic.parameters(), lr=cfg.critic_lr, weight_decay=0.0)
    prompt_batches = Batches(len(train_prompts), cfg.batch_size, seed)
    g = torch.Generator().manual_seed(seed)
    kl_coef, update = cfg.kl_coef, 0
    mb = min(cfg.minibatch_size, cfg.batch_size)
    while update < steps:
        # -- experience
        batch = [train_prompts[i] for i in prompt_batches.next()]
        prompts = [ids for _, ids in batch]
        with torch.no_grad():
            completions = _rollout(ctx, actor, prompts, cfg.temperature, g)
            old_logp, mask = _logps(actor, prompts, completions, pad, cfg.temperature)
            ref_logp, _ = _logps(ref, prompts, completions, pad, cfg.temperature)
            old_values = token_values(critic, prompts, completions, pad).cpu() * mask
            seq_score = scorer([t for t, _ in batch], prompts, completions)
            no_eos = missing_eos(completions, tok.eos_token_id)
            optimised = seq_score
            if cfg.missing_eos_penalty is not None:
                optimised = seq_score - cfg.missing_eos_penalty * no_eos.to(seq_score)
            rewards = token_rewards(old_logp, ref_logp, mask, optimised, kl_coef, cfg.clip_reward)
            if cfg.whiten_rewards:
                rewards = masked_whiten(rewards, mask, shift_mean=False)
            adv, returns = masked_gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
            if cfg.whiten_advantages:
                adv = masked_whiten(adv, mask)
        seq_kl = ((old_logp - ref_logp) * mask).sum(-1)
        # -- PPO epochs over minibatches
        stats = {"policy_loss": [], "value_loss": [], "clipfrac": []}
        order_g = torch.Generator().manual_seed(seed * 100_003 + update)
        for _ in range(cfg.ppo_epochs):
            for idx in torch.randperm(len(prompts), generator=order_g).split(mb):
                if update >= steps:
                    break
                p = [prompts[i] for i in idx]
                c = [completions[i] for i in idx]
                new = score(actor, p, c, pad, with_grad=True, temperature=cfg.temperature).token_logp
                w = new.shape[1]  # this minibatch's longest completion (the batch may be wider)
                keep = mask[idx, :w].bool()
                new_flat = new[keep.to(new.device)]
                old_flat, adv_flat = _tokens(old_logp, idx, keep, new), _tokens(adv, idx, keep, new)
                pl = losses.clipped_surrogate_loss(new_flat, old_flat, adv_flat, cfg.clip_range)
                optimizer_step(actor_opt, actor, pl, cfg.max_grad_norm)
                values = token_values(critic, p, c, pad)
                values = values[keep.to(values.device)]
                vl = losses.value_loss(values, _tokens(old_values, idx, keep, values),
                                       _tokens(returns, idx, keep, values), cfg.clip_range_vf)  # fmt: skip
                optimizer_step(critic_opt, critic, vl, cfg.max_grad_norm)
                ratio = torch.exp(new_flat.detach() - old_flat)
                stats["policy_loss"].append(pl.item())
                stats["value_loss"].append(vl.item())
                stats["clipfrac"].append(float(((ratio - 1).abs() > cfg.clip_range).float().mean()))
                update += 1
                recorder.steps(update)
                evaluate = evaluator.due(update) and update < steps
                # a NaN / inf loss (every update) or parameter (before evaluating) stops the run
                last = {"policy loss": stats["policy_loss"][-1], "value loss": stats["value_loss"][-1]}
                check_finite(update, last, models if evaluate else None, unit="update")
                if evaluate:
                    evaluator(update, actor)
        check_finite(update, None, models, unit="update")  # before the next rollout samples from the actor
        # -- records and the KL controller
        mean_kl = float(seq_kl.mean())
        recorder.curve(update, "train/score", float(seq_score.mean()))
        recorder.curve(update, "train/kl", mean_kl)
        recorder.curve(update, "train/kl_coef", kl_coef)
        recorder.curve(update, "train/length", float(mask.sum(-1).mean()))
        recorder.curve(update, "train/missing_eos", float(no_eos.float().mean()))
        for name, vals in stats.items():
            if vals:
                recorder.curve(update, f"train/{name}", float(np.mean(vals)))
        if cfg.target_kl is not None:
            kl_coef = losses.adaptive_kl_coef(kl_coef, mean_kl, cfg.target_kl, len(prompts), cfg.horizon)
        if cfg.ref_mixup_alpha is not None:
            mix_into(ref, actor, cfg.ref_mixup_alpha)
    evaluator.final(steps, actor)


# -- policy gradient (REINFORCE / RLOO) ---------------------------------------------------------


def train_lm_pg(task: LMTask, cfg: LMPGConfig, steps: int, seed: int, evaluator: LMEvaluator,
                recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    if cfg.baseline == "rloo" and cfg.k < 2:
        raise ValueError("baseline: rloo needs k >= 2")
    pad = ctx.tokenizer().pad_token_id
    groups = PromptGroups(ctx, cfg.prompts_per_batch, cfg.k, cfg.temperature, seed)
    scorer = SequenceScorer(ctx, cfg.reward, recorder, cfg.rm_pairs, evaluator)
    actor, ref = ctx.policy(), ctx.reference()
    opt = torch.optim.AdamW(actor.parameters(), lr=cfg.lr, weight_decay=0.0)
    for update in range(1, steps + 1):
        texts, prompts, completions = groups.sample(actor)
        s = score(actor, prompts, completions, pad, with_grad=True, temperature=cfg.temperature)
        dev = s.token_logp.device
        with torch.no_grad():
            ref_logp, _ = _logps(ref, prompts, completions, pad, cfg.temperature)
            seq_score = scorer(texts, prompts, completions).to(dev)
        seq_logp = s.token_logp.sum(-1)  # token log-probs are zero on padding
        seq_kl = seq_logp.detach() - ref_logp.sum(-1).to(dev)
        reward = seq_score.clamp(-cfg.clip_reward, cfg.clip_reward) - cfg.kl_coef * seq_kl
        per_prompt = reward.view(-1, cfg.k)
        baseline = rloo_baseline(per_prompt) if cfg.baseline == "rloo" else torch.zeros_like(per_prompt)
        adv = (per_prompt - baseline).flatten()
        loss = losses.policy_gradient_loss(seq_logp, adv)
        optimizer_step(opt, actor, loss, cfg.max_grad_norm)
        recorder.steps(update)
        loss_value = loss.item()
        # the loss and the actor's parameters every update (the next one samples from the actor)
        check_finite(update, {"loss": loss_value}, actor, unit="update")
        if update % 5 == 0 or update == steps:
            recorder.curve(update, "train/loss", loss_value)
            recorder.curve(update, "train/score", float(seq_score.mean()))
            recorder.curve(update, "train/kl", float(seq_kl.mean()))
            recorder.curve(update, "train/reward", float(reward.mean()))
            recorder.curve(update, "train/length", float(s.mask.sum(-1).float().mean()))
        if evaluator.due(update) and update < steps:
            evaluator(update, actor)
    evaluator.final(steps, actor)


# -- GRPO / Dr. GRPO ----------------------------------------------------------------------------


class LMGRPOConfig(_OnlineConfig):
    """GRPO (Shao et al. 2024): k completions per prompt, advantages relative to the group, a
    token-level clipped ratio, and the KL to π_SFT as a loss term (k3 estimator, coefficient
    ``kl_coef`` = TRL's beta). Dr. GRPO (Liu et al. 2025): ``scale_rewards: none`` and
    ``aggregation: dr_grpo``."""

    prompts_per_batch: int = Field(8, gt=0, le=65536, description="prompts per batch of experience")
    k: int = Field(4, ge=2, le=256, description="completions per prompt (the group)")
    clip_range: float = Field(0.2, gt=0, description="ratio clip ε")
    iterations: int = Field(
        1, ge=1, le=100, description="updates on each batch of experience (TRL's num_iterations)"
    )
    scale_rewards: Literal["group", "none"] = Field(
        "group", description="divide the centred rewards by the group's std (GRPO) or not (Dr. GRPO)"
    )
    aggregation: Literal["grpo", "dr_grpo", "bnpo"] = Field(
        "grpo",
        description="token losses: mean per sequence then over sequences (grpo), sum over the batch / "
        "(completions x max_new_tokens) (dr_grpo), mean over the batch's tokens (bnpo)",
    )


def train_grpo(task: LMTask, cfg: LMGRPOConfig, steps: int, seed: int, evaluator: LMEvaluator,
               recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    """The budget counts optimizer updates: ``iterations`` per batch of experience."""
    pad = ctx.tokenizer().pad_token_id
    groups = PromptGroups(ctx, cfg.prompts_per_batch, cfg.k, cfg.temperature, seed)
    scorer = SequenceScorer(ctx, cfg.reward, recorder, cfg.rm_pairs, evaluator)
    actor, ref = ctx.policy(), ctx.reference()
    opt = torch.optim.AdamW(actor.parameters(), lr=cfg.lr, weight_decay=0.0)
    update = 0
    while update < steps:
        texts, prompts, completions = groups.sample(actor)
        with torch.no_grad():
            old_logp, mask = _logps(actor, prompts, completions, pad, cfg.temperature)
            ref_logp, _ = _logps(ref, prompts, completions, pad, cfg.temperature)
            seq_score = scorer(texts, prompts, completions)
        reward = seq_score.clamp(-cfg.clip_reward, cfg.clip_reward)
        adv = losses.group_advantages(reward.view(-1, cfg.k), cfg.scale_rewards).flatten()
        for _ in range(cfg.iterations):
            if update >= steps:
                break
            s = score(actor, prompts, completions, pad, with_grad=True, temperature=cfg.temperature)
            dev = s.token_logp.device
            loss = losses.grpo_loss(s.token_logp, old_logp.to(dev), ref_logp.to(dev), adv.to(dev), s.mask,
                                    cfg.clip_range, cfg.kl_coef, cfg.aggregation,
                                    ctx.setup.max_new_tokens)  # fmt: skip
            optimizer_step(opt, actor, loss, cfg.max_grad_norm)
            update += 1
            recorder.steps(update)
            loss_value = loss.item()
            check_finite(update, {"loss": loss_value}, actor, unit="update")
            if update % 5 == 0 or update == steps:
                seq_kl = ((old_logp - ref_logp) * mask).sum(-1)
                recorder.curve(update, "train/loss", loss_value)
                recorder.curve(update, "train/score", float(seq_score.mean()))
                recorder.curve(update, "train/kl", float(seq_kl.mean()))
                recorder.curve(update, "train/length", float(mask.sum(-1).float().mean()))
            if evaluator.due(update) and update < steps:
                evaluator(update, actor)
    evaluator.final(steps, actor)


# -- RRHF ---------------------------------------------------------------------------------------


class LMRRHFConfig(BaseModel):
    """RRHF (Yuan et al. 2023): rank k sampled responses per prompt by the reward and align the
    policy's length-normalised log-probabilities with that ranking, plus fine-tuning on the best."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    reward: Literal["rm", "gold"] = Field("rm", description="reward model, or the gold reward")
    lr: float = Field(5e-5, gt=0, le=1, description="AdamW learning rate (constant)")
    prompts_per_batch: int = Field(8, gt=0, le=65536, description="prompts per update")
    k: int = Field(4, ge=2, le=256, description="responses per prompt, sampled from the current policy")
    sft_weight: float = Field(1.0, ge=0, description="weight of the NLL of each prompt's best response")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the responses")
    max_grad_norm: float = Field(1.0, gt=0)
    rm_pairs: int | None = Field(
        None, ge=1, le=100_000_000, json_schema_extra={"when_set": True},
        description="reward: rm — a reward model trained on only the first rm_pairs training preference pairs"
        " (cached apart; None = all): reward-model data size sweeps (over-optimisation)",
    )  # fmt: skip


def train_rrhf(task: LMTask, cfg: LMRRHFConfig, steps: int, seed: int, evaluator: LMEvaluator,
               recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    pad = ctx.tokenizer().pad_token_id
    groups = PromptGroups(ctx, cfg.prompts_per_batch, cfg.k, cfg.temperature, seed)
    scorer = SequenceScorer(ctx, cfg.reward, recorder, cfg.rm_pairs, evaluator)
    actor = ctx.policy()
    opt = torch.optim.AdamW(actor.parameters(), lr=cfg.lr, weight_decay=0.0)
    for update in range(1, steps + 1):
        texts, prompts, completions = groups.sample(actor)
        with torch.no_grad():
            seq_score = scorer(texts, prompts, completions)
        # log-probs of the responses as sampled (T = 1: the model's own distribution)
        s = score(actor, prompts, completions, pad, with_grad=True)
        shape = (-1, cfg.k)
        logp = s.token_logp.sum(-1).view(shape)
        lengths = s.mask.sum(-1).float().view(shape)
        loss = losses.rrhf_loss(logp, lengths, seq_score.to(logp.device).view(shape), cfg.sft_weight)
        optimizer_step(opt, actor, loss, cfg.max_grad_norm)
        recorder.steps(update)
        loss_value = loss.item()
        check_finite(update, {"loss": loss_value}, actor, unit="update")
        if update % 5 == 0 or update == steps:
            recorder.curve(update, "train/loss", loss_value)
            recorder.curve(update, "train/score", float(seq_score.mean()))
            recorder.curve(update, "train/length", float(lengths.mean()))
        if evaluator.due(update) and update < steps:
            evaluator(update, actor)
    evaluator.final(steps, actor)
