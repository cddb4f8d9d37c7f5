"""LM preference tasks: a corpus to fine-tune on, prompts cut from it, and a default gold scorer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LMTask:
    id: str
    description: str
    corpus: Callable[[int, int], list[str]]  # the project's generated corpus: (documents, seed) -> texts
    gold: str  # default gold scorer (bench.lm.gold)
    reward_threshold = None  # no "solved" level: reports use the frontier instead


def _reviews(n: int, seed: int) -> list[str]:
    from bench.lm.corpus import generate_reviews

    return [r.text for r in generate_reviews(n, seed)]


LM_TASKS: dict[str, LMTask] = {
    "sentiment": LMTask(
        "sentiment",
        "controlled sentiment: continue a movie-review prefix positively (gold: VADER compound score)",
        _reviews,
        "vader",
    ),
}


def get_lm_task(name: str) -> LMTask:
    if name not in LM_TASKS:
        raise KeyError(f"unknown LM task {name!r}; known: {', '.join(LM_TASKS)}")
    return LM_TASKS[name]
