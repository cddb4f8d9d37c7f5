"""Tiny GPT-2 policies and scalar-head (reward / critic) models, all transformers classes.

A policy is ``GPT2LMHeadModel`` from a small ``GPT2Config``; a reward model is
``GPT2ForSequenceClassification`` with one output (the score is read at the last non-pad token),
initialised from a policy's transformer. Both save and load with ``save_pretrained`` /
``from_pretrained`` on local paths, so paper-scale runs swap in a hub model name unchanged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ModelRecipe(BaseModel):
    """The policy: a pretrained model (``base``: hub name or local path) or a tiny GPT-2."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base: str | None = Field(
        None, max_length=1000, description="hub name or local path of a pretrained causal LM"
    )
    n_layer: int = Field(2, gt=0, le=48)
    n_embd: int = Field(64, gt=0, le=4096)
    n_head: int = Field(4, gt=0, le=64)
    n_positions: int = Field(128, gt=8, le=8192)
    dropout: float = Field(0.0, ge=0, lt=1)


def build_tiny_lm(recipe: ModelRecipe, tokenizer, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if recipe.n_embd % recipe.n_head:
        raise ValueError(f"n_embd {recipe.n_embd} is not a multiple of n_head {recipe.n_head}")
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=recipe.n_positions,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        resid_pdrop=recipe.dropout,
        embd_pdrop=recipe.dropout,
        attn_pdrop=recipe.dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def _safe(path: str) -> dict:
    """``from_pretrained`` arguments for ``path``: a local folder (the cache's ``save_pretrained``
    output, or a model given as a path) must hold safetensors weights (no pickled
    ``pytorch_model.bin`` is loaded from it); a hub name keeps transformers' default (safetensors
    where the repository has them, else ``torch.load(weights_only=True)``)."""
    return {"use_safetensors": True} if Path(path).is_dir() else {}


def load_lm(path: str, **kwargs):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, **{**_safe(path), **kwargs})


def scalar_model_from(policy_path: str, pad_token_id: int, seed: int):
    """A one-output sequence model on a saved policy's transformer (new head, seeded)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    safe = _safe(policy_path)
    model = AutoModelForSequenceClassification.from_pretrained(policy_path, num_labels=1, **safe)
    model.config.pad_token_id = pad_token_id
    return model


def load_scalar_model(path: str):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path, **_safe(path))
