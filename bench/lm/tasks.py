"""LM preference tasks: a corpus to fine-tune on, prompts cut from it, and a default gold scorer.

* ``sentiment`` — controlled sentiment (DPO paper §6.1): prompts are prefixes of generated movie
  reviews; the gold reward is the VADER sentiment of the continuation.
* ``summarization`` — summarisation (DPO paper §6.2, offline stand-in for TL;DR): prompts are
  generated news articles followed by ``TL;DR:``, each with an imperfect human-like reference
  summary; the gold reward is a deterministic judge of the summary against its document. Tasks
  with references (``split``) are also scored by win rate against the reference and ROUGE-L.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LMTask:
    id: str
    description: str
    corpus: Callable[[int, int], list[str]]  # the project's generated corpus: (documents, seed) -> texts
    gold: str  # default gold scorer (bench.lm.gold)
    # text -> (prompt, reference) for tasks whose prompts come with a reference completion;
    # None: prompts are prefixes cut from the documents (bench.pipeline.lm.cut_prompts)
    split: Callable[[str], tuple[str, str] | None] | None = None
    # record name -> f(references, completions) -> per-completion values (tasks with references)
    reference_metrics: dict[str, Callable[[list[str], list[str]], np.ndarray]] = field(default_factory=dict)
    reward_threshold = None  # no "solved" level: reports use the frontier instead

    @property
    def has_references(self) -> bool:
        return self.split is not None


def _reviews(n: int, seed: int) -> list[str]:
    from bench.lm.corpus import generate_reviews

    return [r.text for r in generate_reviews(n, seed)]


def _articles(n: int, seed: int) -> list[str]:
    from bench.lm.summaries import generate_articles

    return [a.text for a in generate_articles(n, seed)]


def _split_article(text: str):
    from bench.lm.summaries import split_article

    return split_article(text)


def _rouge_l(references: list[str], completions: list[str]) -> np.ndarray:
    from bench.lm.summaries import rouge_l

    return rouge_l(references, completions)


LM_TASKS: dict[str, LMTask] = {
    "sentiment": LMTask(
        "sentiment",
        "controlled sentiment: continue a movie-review prefix positively (gold: VADER compound score)",
        _reviews,
        "vader",
    ),
    "summarization": LMTask(
        "summarization",
        "summarise a generated news article after 'TL;DR:' (gold: fact judge; win rate vs the reference)",
        _articles,
        "summary-judge",
        split=_split_article,
        reference_metrics={"eval/rouge_l": _rouge_l},
    ),
}


def get_lm_task(name: str) -> LMTask:
    if name not in LM_TASKS:
        raise KeyError(f"unknown LM task {name!r}; known: {', '.join(LM_TASKS)}")
    return LM_TASKS[name]
