"""What an alignment method receives from the pipeline, as the method sees it.

A run's context is built by the pipeline (``bench.pipeline``), which sits above the algorithms: its
builders train π_ref with the project's PPO and π_SFT and reward models with the project's loops.
So the methods (and the evaluators) see the context through the types here, defined below them,
and never import the pipeline: the protocols a context satisfies (``AlignmentContext`` on classic
control, ``LMContext`` on LM tasks) and the preference data they hand out (``SegmentPreferences``,
``CompletionPreferences``). The pipeline's ``ControlPipeline`` and ``LMPipeline`` implement them.

Layer: artifacts (below the algorithms and the evaluation protocols; imports tasks and the
pipeline's recipes, which are pure data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from bench.control.policies import PolicyAct
from bench.control.tasks import Task
from bench.lm.gold import Scorer
from bench.lm.tasks import LMTask
from bench.pipeline.recipes import LMSetup
from bench.recorder import Recorder

# -- classic control ----------------------------------------------------------------------------


@dataclass
class SegmentPreferences:
    """Segments and labelled pairs. ``winner``/``loser`` index ``obs``/``actions``/``mask``."""

    obs: torch.Tensor  # [S, H, obs_dim] as the reference sees them
    actions: torch.Tensor  # [S, H] (categorical) or [S, H, D] (Gaussian)
    mask: torch.Tensor  # [S, H] 1 on real steps, 0 after the episode ended
    returns: torch.Tensor  # [S] true segment returns
    winner: torch.Tensor  # [P] segment index of the preferred segment of each pair
    loser: torch.Tensor  # [P]
    n_train: int  # pairs [0, n_train) are for training, the rest held out

    def split(self, n_pairs: int | None = None) -> tuple[slice, slice]:
        """(train pairs — the first ``n_pairs`` of the training part —, held-out pairs)."""
        n = self.n_train if n_pairs is None else n_pairs
        if n > self.n_train:
            raise ValueError(f"n_pairs={n} exceeds the {self.n_train} training pairs of the dataset")
        return slice(0, n), slice(self.n_train, len(self.winner))


class AlignmentContext(Protocol):
    """An aligned control run's context: its task's reference policy and preference dataset for the
    run's seed (built on first use, then cached) and the place for derived artifacts."""

    task: Task
    seed: int
    log: Callable[[str], None]
    pref_hash: str  # the preference dataset's cache key: derived artifacts' keys build on it
    recorder: Recorder | None  # set once training starts: artifact build time is kept out of it

    def reference(self) -> PolicyAct:
        """π_ref, frozen."""

    def reference_reward_scale(self) -> float:
        """The reward scale π_ref's critic predicts in (1 if it was trained on raw rewards)."""

    def preferences(self) -> SegmentPreferences:
        """The preference dataset of the run's seed."""

    def artifact(self, kind: str, recipe_key: str) -> Path:
        """Where a derived artifact of this task and seed is cached (e.g. a reward model)."""

    def exclude(self, seconds: float) -> None:
        """Keeps ``seconds`` (an artifact build) out of the run's training time."""


# -- LM tasks -----------------------------------------------------------------------------------


class CompletionPreferences:
    """Completions of the train prompts and their labelled pairs."""

    def __init__(self, data: dict):
        self.prompt_text: list[str] = data["prompt_text"]
        self.prompt_ids: list[list[int]] = data["prompt_ids"]
        self.completion_text: list[list[str]] = data["completion_text"]
        self.completion_ids: list[list[list[int]]] = data["completion_ids"]
        self.gold: list[list[float]] = data["gold"]
        self.pairs: list[tuple[int, int, int]] = [tuple(p) for p in data["pairs"]]  # prompt, winner, loser
        self.n_train_prompts: int = data["n_train_prompts"]
        self.ties: int = data["ties"]

    def split(self) -> tuple[list, list]:
        train = [p for p in self.pairs if p[0] < self.n_train_prompts]
        return train, [p for p in self.pairs if p[0] >= self.n_train_prompts]

    def texts(self, pairs) -> tuple[list[str], list[str], list[str]]:
        """(prompt, chosen, rejected) texts of ``pairs``."""
        return (
            [self.prompt_text[p] for p, _, _ in pairs],
            [self.completion_text[p][w] for p, w, _ in pairs],
            [self.completion_text[p][lo] for p, _, lo in pairs],
        )


class LMContext(Protocol):
    """An LM run's context: its task's tokenizer, π_SFT, prompts, preference data, reward model and
    gold scorer for the run's seed (built on first use, then cached)."""

    task: LMTask
    seed: int
    setup: LMSetup  # the suite's lm: section
    recorder: Recorder | None  # set once training starts: artifact build time is kept out of it
    in_eval: bool  # set by the evaluator while it evaluates (it excludes its own time)

    def tokenizer(self):
        """The task's tokenizer (a transformers tokenizer, right-padded)."""

    def prompts(self) -> dict:
        """{"train": [(text, ids)], "test": [(text, ids)]}; tasks with references also have
        "train_refs" and "test_refs" (the reference completion texts)."""

    def sft_path(self) -> Path:
        """The folder of π_SFT (``save_pretrained``)."""

    def policy(self):
        """A fresh trainable copy of π_SFT, in eval mode (dropout off)."""

    def reference(self):
        """The frozen π_SFT (one per run)."""

    def gold(self) -> Scorer:
        """The gold scorer: (completion texts, prompt texts) -> scores."""

    def preferences(self) -> CompletionPreferences:
        """The preference data of the run's seed."""

    def reward_model_path(self, train_pairs: int | None = None) -> Path:
        """The folder of the reward model (``save_pretrained``)."""

    def reward_model(self, train_pairs: int | None = None) -> tuple[object, dict]:
        """The frozen reward model and its metadata (held-out accuracy, score mean and std); with
        ``train_pairs``, one trained on the first that many training pairs."""

    def derived(self, name: str, build: Callable[[], dict], code: str, tensors: bool = False) -> dict:
        """A per-seed artifact computed from the preference data and π_SFT by the code of module
        ``code``: built by the first run of the seed that needs it, loaded by the others."""

    def hold(self, name: str, model) -> None:
        """Notes a model the run holds (its parameters go into the run's summary)."""

    def exclude(self, seconds: float) -> None:
        """Keeps ``seconds`` (an artifact build) out of the run's training time."""
