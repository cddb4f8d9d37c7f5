"""Recipes of the alignment pipeline's artifacts: the suite's ``alignment:`` and ``lm:`` sections.

Pure data (pydantic models): the suite reader validates a suite against them and the run keys hold
their dumps, without importing anything that trains. The builders (``bench.pipeline.control``,
``bench.pipeline.lm``) read them; ``bench.pipeline.keys`` hashes them into the artifact cache keys.

Layer: artifacts (below the algorithms; imports tasks only).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench.lm.models import ModelRecipe
from bench.lm.tasks import LMTask

# -- classic control: reference policies and trajectory preferences ------------------------------


class ReferenceRecipe(BaseModel):
    """How a task's reference policy is trained (the project's PPO, shipped task defaults)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    env_steps: int = Field(gt=0, le=10**11, description="maximum PPO training budget")
    target_return: float | None = Field(None, description="stop once the T=1 mean return reaches this")
    check_every: int = Field(5000, gt=0, le=10**11, description="env steps between target checks")
    check_episodes: int = Field(20, gt=0, le=10_000, description="episodes per target check")
    params: dict[str, Any] = Field({}, description="PPO hyperparameters over the task defaults")


class PreferenceRecipe(BaseModel):
    """How a task's preference dataset is drawn from its reference policy."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    n_pairs: int = Field(1000, gt=0, le=1_000_000, description="pairs in the dataset (train + held out)")
    segment_length: int = Field(
        50, gt=0, le=1_000_000, description="H: steps per segment (fewer where the episode ends)"
    )
    label_temperature: float = Field(0.0, ge=0, description="Bradley-Terry tau (0 = deterministic)")
    episodes: int = Field(100, gt=0, le=1_000_000, description="reference episodes the segments are cut from")
    heldout: float = Field(0.2, gt=0, lt=1, description="held-out fraction of the pairs")


class Alignment(BaseModel):
    """A suite's ``alignment:`` section."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    reference: dict[str, ReferenceRecipe] = Field(description="reference recipe per task")
    preferences: PreferenceRecipe = Field(PreferenceRecipe(), description="preference data")
    task_preferences: dict[str, dict[str, Any]] = Field({}, description="per-task preference overrides")

    def for_task(self, task: str) -> dict:
        prefs = PreferenceRecipe(**{**self.preferences.model_dump(), **self.task_preferences.get(task, {})})
        return {"reference": self.reference[task].model_dump(mode="json"), "preferences": prefs.model_dump()}


# -- LM tasks: corpus, tokenizer, π_SFT, prompts, preferences, reward model ---------------------


class _Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=1000)


class CorpusRecipe(_Recipe):
    source: Literal["generated", "hf"] = Field("generated", description="task generator or a dataset")
    documents: int = Field(20_000, gt=0, le=10_000_000, description="documents to generate / read")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the generated corpus")
    dataset: str | None = Field(None, description="hf: load_dataset name or builder (csv, json, text)")
    data_files: str | None = Field(None, description="hf: local data files for a builder")
    split: str = "train"
    text_field: str = "text"
    reference_field: str | None = Field(
        None, description="hf: a field appended to text_field after a space (e.g. a reference summary)"
    )

    @model_validator(mode="after")
    def _dataset_given(self) -> CorpusRecipe:
        if self.source == "hf" and not self.dataset:
            raise ValueError("source: hf needs `dataset`")
        return self


class TokenizerRecipe(_Recipe):
    vocab_size: int = Field(1024, ge=300, le=200_000, description="BPE vocabulary trained on the corpus")
    name: str | None = Field(None, description="pretrained tokenizer (default: model.base's, if set)")


class SFTRecipe(_Recipe):
    steps: int = Field(2500, ge=0, le=10_000_000)
    batch_size: int = Field(32, gt=0, le=4096)
    lr: float = Field(1e-3, gt=0, le=1)
    warmup: int = Field(50, ge=0, le=10_000_000)
    max_len: int = Field(96, gt=4, le=8192, description="tokens per training document (truncated)")
    seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="None: one π_SFT per run seed; a number: one π_SFT, trained with this seed, for every"
        " run seed (as in the DPO paper, where every method starts from the same SFT model)",
    )
    loss: Literal["all", "completion"] = Field(
        "all",
        description="all: next-token loss on every token of a document; completion: only on the reference"
        " after the prompt (tasks with references; the prompt is tokenised as at generation)",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="label smoothing of the next-token loss (torch's cross_entropy(label_smoothing=)):"
        " the target puts this mass uniformly over the vocabulary; 0 = none",
    )


class PromptRecipe(_Recipe):
    train: int = Field(1024, gt=0, le=1_000_000, description="train prompts (preference data)")
    test: int = Field(128, gt=0, le=1_000_000, description="test prompts (every evaluation)")
    min_tokens: int = Field(2, gt=0, le=8192)
    max_tokens: int = Field(8, gt=0, le=8192)
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _range(self) -> PromptRecipe:
        if self.min_tokens > self.max_tokens:
            raise ValueError("min_tokens must be <= max_tokens")
        return self


class LMPreferenceRecipe(_Recipe):
    completions: int = Field(4, ge=2, le=16, description="samples per prompt (4 -> 6 pairs)")
    tau: float = Field(0.0, ge=0, description="Bradley-Terry temperature; 0 = deterministic")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the completions")
    held_out: float = Field(0.1, ge=0, lt=1, description="fraction of prompts held out")


class RewardModelRecipe(_Recipe):
    steps: int = Field(400, gt=0, le=10_000_000)
    batch_size: int = Field(32, gt=0, le=4096, description="pairs per step")
    lr: float = Field(3e-4, gt=0, le=1)


class LMSetup(_Recipe):
    """The ``lm:`` section of a suite."""

    corpus: CorpusRecipe = CorpusRecipe()
    tokenizer: TokenizerRecipe = TokenizerRecipe()
    model: ModelRecipe = ModelRecipe()
    sft: SFTRecipe = SFTRecipe()
    prompts: PromptRecipe = PromptRecipe()
    max_new_tokens: int = Field(48, gt=0, le=4096, description="completion length limit")
    preferences: LMPreferenceRecipe = LMPreferenceRecipe()
    reward_model: RewardModelRecipe = RewardModelRecipe()
    gold: str | None = Field(
        None, description="gold scorer: vader | summary-judge | hf:MODEL | hf-rm:MODEL (default: the task's)"
    )
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="where models run (auto: cuda if any)")

    @field_validator("gold")
    @classmethod
    def _known_gold(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"vader|summary-judge|hf:.+|hf-rm:.+", v):
            raise ValueError("must be vader, summary-judge, hf:MODEL or hf-rm:MODEL (hub name or local path)")
        return v

    def torch_device(self) -> str:
        if self.device == "auto":
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def for_task(self, task: LMTask) -> dict:
        """The recipe of ``task``'s runs (part of their run keys; the default device and an unset
        reference field are left out, so run keys from before those fields existed stay valid)."""
        data = {**self.model_dump(mode="json"), "gold": self.gold or task.gold}
        if data["device"] == "cpu":
            del data["device"]
        if data["corpus"]["reference_field"] is None:
            del data["corpus"]["reference_field"]
        if data["sft"]["seed"] is None:
            del data["sft"]["seed"]
        if data["sft"]["label_smoothing"] == 0:
            del data["sft"]["label_smoothing"]
        if data["sft"]["loss"] == "all":
            del data["sft"]["loss"]
        elif not task.has_references:
            raise ValueError(f"sft.loss: completion needs a task with references; {task.id!r} has none")
        return data
