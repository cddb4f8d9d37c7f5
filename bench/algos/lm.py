"""Preference methods on LM tasks: SFT (the reference itself), DPO and its loss variants,
Preferred-FT and Best-of-N. The budget of the trained methods counts optimizer updates.

DPO follows Rafailov et al. (2023): the sequence log-probability of a completion is the sum of
its token log-probabilities given the prompt, and the loss is a row of
``losses.PREFERENCE_LOSSES`` applied to the log-ratios against π_SFT (computed once, up front).
Pairs are tokenised the way TRL's DPOTrainer tokenises non-chat data (``encode_pair``) so that
``trl-dpo`` trains on exactly the same token sequences.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from bench.algos.guard import check_finite
from bench.algos.losses import PREFERENCE_LOSSES, RELATIVES, relative_loss
from bench.artifacts import LMContext
from bench.lm.generation import completion_logits, rm_scores_batched
from bench.lm.tasks import LMTask
from bench.lm_evaluation import LMEvaluator
from bench.recorder import Recorder


class SFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OfflineLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    lr: float = Field(5e-5, gt=0, le=1, description="AdamW learning rate (constant)")
    batch_size: int = Field(32, gt=0, le=4096, description="preference pairs per update")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient-norm clip")


class LMDPOConfig(OfflineLMConfig):
    loss: Literal["dpo", "ipo", "ipo-mean", "hinge", "simpo", "orpo", "kto"] = Field(
        "dpo",
        description="row of losses.PREFERENCE_LOSSES: ipo on summed completion log-ratios, ipo-mean on"
        " per-token means (TRL's ipo); or a relative (losses.relative_loss): simpo and orpo"
        " (reference-free, on per-token mean log-probs; orpo in the ORPO paper's form, its NLL term"
        " over the chosen response's tokens only, where TRL's ORPOTrainer averages it over the prompt"
        " and response tokens), kto (each pair as a desirable and an undesirable example)",
    )
    beta: float = Field(0.1, gt=0, description="KL strength beta (IPO: tau; SimPO: beta; ORPO: lambda)")
    gamma: float = Field(0.5, ge=0, description="SimPO's target reward margin gamma")
    desirable_weight: float = Field(1.0, gt=0, description="KTO: weight of desirable examples")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO: weight of undesirable examples")


class PreferredFTConfig(OfflineLMConfig):
    pass


class BestOfNConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n: int = Field(4, ge=1, le=4096, description="samples per prompt")
    ranker: Literal["rm", "gold"] = Field("rm", description="reward model, or the gold reward (oracle)")
    kl_samples: int = Field(
        64, ge=1, le=4096, description="ranker scores per prompt (at least n) for the KL estimate (eval/kl)"
    )
    rm_pairs: int | None = Field(
        None, ge=1, le=100_000_000, json_schema_extra={"when_set": True},
        description="ranker: rm — a reward model trained on only the first rm_pairs training preference pairs"
        " (cached apart; None = all)",
    )  # fmt: skip


# -- tokenised pairs ------------------------------------------------------------------------


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_pairs(tok, prompts: list[str], chosen: list[str], rejected: list[str]) -> list[tuple]:
    """(prompt, chosen, rejected) token ids as TRL's DPOTrainer makes them for non-chat text: eos
    appended to each completion, prompt + completion tokenised together, the completion starting
    where the two tokenisations of the prompt diverge. One batched tokenizer call per column."""
    eos = tok.eos_token

    def ended(texts: list[str]) -> list[str]:
        return [t if t.endswith(eos) else t + eos for t in texts]

    chosen, rejected = ended(chosen), ended(rejected)
    ids_p = tok(prompts)["input_ids"]
    ids_c = tok([p + c for p, c in zip(prompts, chosen, strict=True)])["input_ids"]
    ids_r = tok([p + r for p, r in zip(prompts, rejected, strict=True)])["input_ids"]
    out = []
    for p, pc, pr in zip(ids_p, ids_c, ids_r, strict=True):
        n = min(_common_prefix(p, pc), _common_prefix(p, pr))
        out.append((p[:n], pc[n:], pr[n:]))
    return out


def encode_pair(tok, prompt: str, chosen: str, rejected: str) -> tuple[list[int], list[int], list[int]]:
    return encode_pairs(tok, [prompt], [chosen], [rejected])[0]


def completion_nll(model, prompts: list[list[int]], completions: list[list[int]], pad_id: int):
    """Per-token negative log-likelihood of each completion ([B, C], zero on padding) and its mask."""
    logits, targets, mask = completion_logits(model, prompts, completions, pad_id)
    nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    return nll.view_as(mask) * mask, mask


def completion_logps(
    model, prompts: list[list[int]], completions: list[list[int]], pad_id: int
) -> torch.Tensor:
    """Σ_t log π(y_t | x, y_<t) over each completion. [B]"""
    return -completion_nll(model, prompts, completions, pad_id)[0].sum(-1)


def pair_logps(model, batch: list[tuple], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen and rejected sequence log-probs of a batch of encoded pairs (one forward pass)."""
    prompts = [p for p, _, _ in batch]
    logps = completion_logps(
        model, prompts + prompts, [c for _, c, _ in batch] + [r for _, _, r in batch], pad_id
    )
    return logps[: len(batch)], logps[len(batch) :]


@torch.no_grad()
def frozen_pair_logps(model, pairs: list[tuple], pad_id: int, batch_size: int = 128):
    """``pair_logps`` over many pairs in batches, without gradients (the reference, evaluations)."""
    out_w, out_l = [], []
    for i in range(0, len(pairs), batch_size):
        w, lo = pair_logps(model, pairs[i : i + batch_size], pad_id)
        out_w.append(w)
        out_l.append(lo)
    return torch.cat(out_w), torch.cat(out_l)


def completion_lengths(batch: list[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token counts of the chosen and rejected completions of encoded pairs (eos included). [B], [B]"""
    return (
        torch.tensor([float(len(c)) for _, c, _ in batch]),
        torch.tensor([float(len(r)) for _, _, r in batch]),
    )


def mismatched(batch: list[tuple]) -> list[tuple]:
    """KTO's mismatched pairs: prompt i with the completions of pair i - 1 (cyclically), the way
    TRL's KTOTrainer pairs each prompt with another example's completion."""
    shifted = batch[-1:] + batch[:-1]
    return [(p, c, r) for (p, _, _), (_, c, r) in zip(batch, shifted, strict=True)]


@torch.no_grad()
def kto_kl_ratio(policy, ref, batch: list[tuple], pad_id: int) -> torch.Tensor:
    """Log-ratios log π - log π_ref of the mismatched pairs of a batch (chosen and rejected)."""
    pairs = mismatched(batch)
    w, lo = pair_logps(policy, pairs, pad_id)
    rw, rl = pair_logps(ref, pairs, pad_id)
    return torch.cat([w - rw, lo - rl])


def preference_loss(cfg: LMDPOConfig, logp_w, logp_l, ref_w, ref_l, batch: list[tuple],
                    kl_ratio: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    if cfg.loss in RELATIVES:
        len_w, len_l = (x.to(logp_w.device) for x in completion_lengths(batch))
        return relative_loss(cfg.loss, logp_w, logp_l, ref_w, ref_l, len_w, len_l, cfg.beta, cfg.gamma,
                             kl_ratio, (cfg.desirable_weight, cfg.undesirable_weight))  # fmt: skip
    len_w, len_l = completion_lengths(batch) if PREFERENCE_LOSSES[cfg.loss].per_token else (None, None)
    if len_w is not None:
        len_w, len_l = len_w.to(logp_w.device), len_l.to(logp_w.device)
    return PREFERENCE_LOSSES[cfg.loss](logp_w - ref_w, logp_l - ref_l, cfg.beta, len_w, len_l)


def optimizer_step(opt, model, loss: torch.Tensor, max_grad_norm: float) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    opt.step()


def dpo_update(policy, opt, cfg: LMDPOConfig, batch: list[tuple], ref_w, ref_l, pad_id: int, ref=None):
    """One DPO update on encoded pairs with their reference log-probs; returns the loss and the
    log-ratio margins (detached). KTO also needs π_ref itself (``ref``), for its mismatched pairs."""
    kl_ratio = kto_kl_ratio(policy, ref, batch, pad_id) if cfg.loss == "kto" else None
    logp_w, logp_l = pair_logps(policy, batch, pad_id)
    loss = preference_loss(cfg, logp_w, logp_l, ref_w, ref_l, batch, kl_ratio)
    optimizer_step(opt, policy, loss, cfg.max_grad_norm)
    return loss, ((logp_w - ref_w) - (logp_l - ref_l)).detach()


def guard_update(step: int, loss: float, model, with_parameters: bool) -> None:
    """The divergence check of an LM update: the loss every update; the parameters where the
    loop records or evaluates (a NaN parameter makes the next loss NaN anyway)."""
    check_finite(step, {"loss": loss}, model if with_parameters else None, unit="update")


class Batches:
    """Epochs of shuffled indices (seeded), cut into batches of ``size``."""

    def __init__(self, n: int, size: int, seed: int):
        self.n, self.size = n, min(size, n)
        self.g = torch.Generator().manual_seed(seed)
        self.order: list[int] = []

    def next(self) -> list[int]:
        if len(self.order) < self.size:
            self.order += torch.randperm(self.n, generator=self.g).tolist()
        out, self.order = self.order[: self.size], self.order[self.size :]
        return out


def encoded_pairs(ctx: LMContext) -> tuple[list[tuple], list[tuple]]:
    """Encoded (prompt, chosen, rejected) of the train and held-out preference pairs (a per-seed
    artifact: the same for every preference method of a seed)."""

    def build() -> dict:
        tok, prefs = ctx.tokenizer(), ctx.preferences()
        train, held = prefs.split()
        return {
            name: encode_pairs(tok, *prefs.texts(pairs)) if pairs else []
            for name, pairs in (("train", train), ("held", held))
        }

    data = ctx.derived("pairs", build, __name__)
    return tuple([tuple(pair) for pair in data[name]] for name in ("train", "held"))


def reference_logps(ctx: LMContext, train: list[tuple], held: list[tuple]) -> dict[str, torch.Tensor]:
    """π_SFT's chosen and rejected log-probs of the train and held-out pairs ("train_w", "train_l",
    "held_w", "held_l"): a per-seed artifact, computed by the first DPO-family run of a seed and
    loaded, as the same numbers, by the others."""
    pad = ctx.tokenizer().pad_token_id

    def build() -> dict:
        ref, out = ctx.reference(), {}
        for name, pairs in (("train", train), ("held", held)):
            w, lo = frozen_pair_logps(ref, pairs, pad) if pairs else (torch.zeros(0), torch.zeros(0))
            out[f"{name}_w"], out[f"{name}_l"] = w.cpu(), lo.cpu()
        return out

    data = ctx.derived("reference-logps", build, __name__, tensors=True)
    device = ctx.setup.torch_device()
    return {k: v.to(device) for k, v in data.items()}


# -- methods ----------------------------------------------------------------------------------


def train_sft(task: LMTask, cfg: SFTConfig, steps: int, seed: int, evaluator: LMEvaluator,
              recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    """π_SFT itself: the origin of every frontier (KL 0)."""
    evaluator.final(0, ctx.reference())


def train_dpo(task: LMTask, cfg: LMDPOConfig, steps: int, seed: int, evaluator: LMEvaluator,
              recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    pad = ctx.tokenizer().pad_token_id
    train, held = encoded_pairs(ctx)
    if not train:
        raise ValueError("no training preference pairs")
    policy, ref = ctx.policy(), ctx.reference()
    reference = reference_logps(ctx, train, held)
    ref_w, ref_l = reference["train_w"], reference["train_l"]
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    batches = Batches(len(train), cfg.batch_size, seed)
    for step in range(1, steps + 1):
        idx = batches.next()
        loss, margin = dpo_update(policy, opt, cfg, [train[i] for i in idx], ref_w[idx], ref_l[idx], pad, ref)
        recorder.steps(step)
        loss_value = loss.item()
        record, evaluate = step % 10 == 0 or step == steps, evaluator.due(step) and step < steps
        guard_update(step, loss_value, policy, record or evaluate)
        if record:
            recorder.curve(step, "train/loss", loss_value)
            recorder.curve(step, "train/reward_accuracy", float((margin > 0).float().mean()))
            recorder.curve(step, "train/reward_margin", float(cfg.beta * margin.mean()))
        if evaluate:
            evaluator(step, policy)
    if held:
        t0 = time.perf_counter()
        held_ref_w, held_ref_l = reference["held_w"], reference["held_l"]
        held_w, held_l = frozen_pair_logps(policy.eval(), held, pad)
        acc = float(((held_w - held_ref_w) > (held_l - held_ref_l)).float().mean())
        recorder.eval(steps, 1.0, "eval/pref_accuracy", acc, len(held))
        recorder.eval_seconds += time.perf_counter() - t0
    evaluator.final(steps, policy)


def train_preferred_ft(task: LMTask, cfg: PreferredFTConfig, steps: int, seed: int, evaluator: LMEvaluator,
                       recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    """Preferred-FT (DPO paper §6): supervised fine-tuning on the chosen completions only."""
    pad = ctx.tokenizer().pad_token_id
    train, _ = encoded_pairs(ctx)
    if not train:
        raise ValueError("no training preference pairs")
    policy = ctx.policy()
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    batches = Batches(len(train), cfg.batch_size, seed)
    for step in range(1, steps + 1):
        batch = [train[i] for i in batches.next()]
        nll, mask = completion_nll(policy, [p for p, _, _ in batch], [c for _, c, _ in batch], pad)
        loss = nll.sum() / mask.sum()
        optimizer_step(opt, policy, loss, cfg.max_grad_norm)
        recorder.steps(step)
        loss_value = loss.item()
        record, evaluate = step % 10 == 0 or step == steps, evaluator.due(step) and step < steps
        guard_update(step, loss_value, policy, record or evaluate)
        if record:
            recorder.curve(step, "train/loss", loss_value)
        if evaluate:
            evaluator(step, policy)
    evaluator.final(steps, policy)


def record_reward_model(recorder: Recorder, info: dict) -> None:
    """The reward-model records the report's reward-model table reads (as on control tasks)."""
    recorder.eval(0, 1.0, "rm/accuracy", info["heldout_accuracy"], info["heldout_pairs"])
    recorder.eval(0, 1.0, "rm/gold_accuracy", info["heldout_gold_accuracy"], info["heldout_pairs"])
    recorder.eval(0, 1.0, "rm/train_pairs", info["train_pairs"], info["train_pairs"])


def reward_model(ctx: LMContext, rm_pairs: int | None = None):
    """The run's frozen reward model and its metadata; with ``rm_pairs``, the one trained on the first
    that many training pairs (contexts without that option serve the default)."""
    return ctx.reward_model() if rm_pairs is None else ctx.reward_model(rm_pairs)


def train_best_of_n(task: LMTask, cfg: BestOfNConfig, steps: int, seed: int, evaluator: LMEvaluator,
                    recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    """Best-of-N from π_SFT, ranked by the reward model (or the gold reward: the oracle)."""
    if cfg.ranker == "gold":
        gold = ctx.gold()

        def ranker(prompts, completions, texts, prompt_texts):
            return gold(texts, prompt_texts)
    else:
        rm, info = reward_model(ctx, cfg.rm_pairs)
        record_reward_model(recorder, info)
        pad = ctx.tokenizer().pad_token_id

        def ranker(prompts, completions, texts, prompt_texts):
            return rm_scores_batched(rm, prompts, completions, pad)

    evaluator.best_of_n(cfg.n, ranker, cfg.kl_samples, ranker_is_proxy=cfg.ranker == "rm")
    recorder.steps(0)
