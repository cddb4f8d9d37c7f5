"""Batched sampling with a KV cache, and scoring of completions under a model.

``sample`` left-pads the prompts, runs the prompt once and then one token per step through the
model's key/value cache. Temperature T scales the logits (softmax(logits / T)); T = 0 is greedy.
A row stops at eos (which is kept in its completion) or after ``max_new_tokens``.

``score`` runs prompt + completion through a model in one right-padded forward pass and returns,
per completion token, the log-probability of that token and the full next-token log-softmax; the
sequence-level KL of shared/design.md §3 is built from these (``sequence_kl``). ``rm_scores``
reads a reward model's (scalar-head model's) score of prompt + completion at its last token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def sample(
    model,
    prompts: list[list[int]],
    temperature: float,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> list[list[int]]:
    """Completion token ids for each prompt (eos included where it was produced)."""
    out: list[list[int]] = []
    for i in range(0, len(prompts), batch_size):
        out += _sample_batch(
            model, prompts[i : i + batch_size], temperature, max_new_tokens, eos_id, pad_id, generator
        )
    return out


def _sample_batch(model, prompts, temperature, max_new_tokens, eos_id, pad_id, generator):
    was_training = model.training
    model.eval()
    device = model.device
    n, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        attn[i, width - len(p) :] = 1
    ids, attn = ids.to(device), attn.to(device)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    last = {"logits_to_keep": 1} if head_only_where_needed(model) else {}  # only the last position's logits
    res = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True, **last)
    past, logits, next_pos = res.past_key_values, res.logits[:, -1], pos[:, -1] + 1
    done = torch.zeros(n, dtype=torch.bool, device=device)
    tokens = []
    for step in range(max_new_tokens):
        if temperature == 0:
            tok = logits.argmax(-1)
        else:
            # drawn on the CPU, where the (CPU) generator lives: same stream on every device
            probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(device)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        tokens.append(tok)
        done |= tok == eos_id
        if done.all() or step == max_new_tokens - 1:
            break
        attn = torch.cat([attn, torch.ones((n, 1), dtype=torch.long, device=device)], dim=1)
        res = model(
            input_ids=tok[:, None], attention_mask=attn, position_ids=next_pos[:, None],
            past_key_values=past, use_cache=True,
        )  # fmt: skip
        past, logits, next_pos = res.past_key_values, res.logits[:, -1], next_pos + 1
    model.train(was_training)
    seqs = torch.stack(tokens, dim=1).cpu().tolist()
    completions = []
    for row in seqs:
        if eos_id in row:
            row = row[: row.index(eos_id) + 1]
        completions.append(row)
    return completions


@dataclass
class Scored:
    """Per completion token (``mask`` marks real tokens): log-prob of the token, log-softmax."""

    token_logp: torch.Tensor  # [B, C]
    logprobs: torch.Tensor  # [B, C, V]
    mask: torch.Tensor  # [B, C] float


def batch_pairs(prompts: list[list[int]], completions: list[list[int]], pad_id: int):
    """Right-padded prompt+completion ids, attention mask, and per-row completion positions."""
    n = len(prompts)
    width = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
    c_width = max(1, max(len(c) for c in completions))
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    # index of the logit that predicts completion token j of row i: len(prompt_i) - 1 + j
    index = torch.zeros((n, c_width), dtype=torch.long)
    targets = torch.full((n, c_width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, c_width))
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        seq = p + c
        ids[i, : len(seq)] = torch.tensor(seq)
        attn[i, : len(seq)] = 1
        index[i, : len(c)] = torch.arange(len(p) - 1, len(p) - 1 + len(c))
        targets[i, : len(c)] = torch.tensor(c, dtype=torch.long) if c else targets[i, :0]
        mask[i, : len(c)] = 1.0
    return ids, attn, index, targets, mask


def head_only_where_needed(model) -> bool:
    """Whether ``model`` is a GPT-2 LM (the tiny models, or a GPT-2 base), whose logits are its LM
    head applied to the last hidden state and nothing else: for it, the head is applied only at the
    positions whose logits are used. The logits there are the same up to float rounding (each row
    is the product of its own hidden state with the head; the matrix kernel may round differently
    for another number of rows), and the head, a vocabulary-wide matrix product, is skipped at
    prompt and padding positions. Other models get their full forward pass (some scale or cap their
    logits after the head)."""
    from transformers import GPT2LMHeadModel

    return type(model) is GPT2LMHeadModel


def completion_logits(model, prompts, completions, pad_id: int):
    """Logits predicting each completion token ([B, C, V]), its targets and mask."""
    ids, attn, index, targets, mask = (t.to(model.device) for t in batch_pairs(prompts, completions, pad_id))
    rows = torch.arange(len(prompts), device=model.device)[:, None]
    if head_only_where_needed(model):
        hidden = model.transformer(input_ids=ids, attention_mask=attn).last_hidden_state
        return model.lm_head(hidden[rows, index]), targets, mask
    logits = model(input_ids=ids, attention_mask=attn).logits
    return logits[rows, index], targets, mask


def score(
    model, prompts, completions, pad_id: int, with_grad: bool = False, temperature: float = 1.0
) -> Scored:
    """Log-probabilities of the completion tokens under ``model`` at sampling ``temperature``
    (softmax(logits / T): the distribution the completions were drawn from when sampled at T)."""
    with torch.set_grad_enabled(with_grad):
        logits, targets, mask = completion_logits(model, prompts, completions, pad_id)
        logits = logits.float() if temperature == 1.0 else logits.float() / temperature
        logprobs = F.log_softmax(logits, dim=-1)
        token_logp = logprobs.gather(-1, targets[..., None]).squeeze(-1) * mask
    return Scored(token_logp, logprobs, mask)


def sequence_kl(policy: Scored, reference: Scored) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: Σ_t KL(π(·|s_t) ‖ π_ref(·|s_t)) exactly over the vocabulary, and the k1
    estimate Σ_t log π(y_t|s_t) − log π_ref(y_t|s_t) (same completions, same mask)."""
    p = policy.logprobs.exp()
    per_token = (p * (policy.logprobs - reference.logprobs)).sum(-1) * policy.mask
    k1 = (policy.token_logp - reference.token_logp) * policy.mask
    return per_token.sum(-1), k1.sum(-1)


def rm_scores(model, prompts: list[list[int]], completions: list[list[int]], pad_id: int) -> torch.Tensor:
    """Reward-model score of each prompt + completion (read at its last token)."""
    ids, attn, *_ = batch_pairs(prompts, completions, pad_id)
    return model(input_ids=ids.to(model.device), attention_mask=attn.to(model.device)).logits[:, 0]


@torch.no_grad()
def rm_scores_batched(model, prompts, completions, pad_id: int, batch_size: int = 256) -> np.ndarray:
    model.eval()
    out = [
        rm_scores(model, prompts[i : i + batch_size], completions[i : i + batch_size], pad_id).cpu().numpy()
        for i in range(0, len(prompts), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0)
