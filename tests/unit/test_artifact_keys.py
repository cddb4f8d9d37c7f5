"""The artifact cache keys (``bench.pipeline.keys``) by value: with the code version held fixed, a
recipe's keys are pinned, so a change to how keys are derived (a recipe part left out or renamed, a
default dumped differently) shows here instead of as every cached π_ref and π_SFT built again."""

import pytest

import bench.pipeline.keys as keys
from bench.lm.tasks import get_lm_task
from bench.pipeline.recipes import Alignment, LMSetup, ReferenceRecipe

CODE = "0123456789ab"


@pytest.fixture
def fixed_code(monkeypatch):
    seen = []
    monkeypatch.setattr(keys, "artifact_code", lambda module: seen.append(module) or CODE)
    return seen


def test_control_keys_are_pinned_and_follow_the_builder(fixed_code):
    reference = ReferenceRecipe(env_steps=20_000, target_return=100.0)
    recipe = Alignment(reference={"CartPole-v1": reference}).for_task("CartPole-v1")
    assert keys.control_keys("CartPole-v1", recipe) == keys.ControlKeys("f1d3838b33b7", "5ac54867b747")
    assert fixed_code == ["bench.pipeline.control"]  # the code of the module that builds them


@pytest.mark.parametrize(
    "task, pinned",
    [
        ("sentiment", ("b7640e4a00fc", "5438b5eefc3a", "0c387196633f", "86e514764384", "ee40b0a04726")),
        ("summarization", ("18f914d0ff85", "af42950da0b0", "4f0ef25c2b40", "cca4d3ca81a7", "8718383e2a79")),
    ],
)
def test_lm_keys_are_pinned_and_follow_the_builder(fixed_code, task, pinned):
    lm_task = get_lm_task(task)
    recipe = LMSetup().for_task(lm_task)
    got = keys.lm_keys(task, LMSetup(**recipe).model_dump(mode="json"), recipe["gold"])
    assert (got.tokenizer, got.sft, got.preferences, got.reward_model) == pinned[:4]
    assert keys.derived_key(got.preferences, "pairs", "bench.algos.lm") == pinned[4]
    assert fixed_code == ["bench.pipeline.lm", "bench.algos.lm"]


def test_label_smoothing_counts_in_the_sft_key_only_when_set(fixed_code):
    lm_task = get_lm_task("summarization")
    base = LMSetup().for_task(lm_task)
    smoothed = LMSetup(sft={"label_smoothing": 0.05}).for_task(lm_task)
    assert "label_smoothing" not in base["sft"] and smoothed["sft"]["label_smoothing"] == 0.05
    a = keys.lm_keys("summarization", LMSetup(**base).model_dump(mode="json"), base["gold"])
    b = keys.lm_keys("summarization", LMSetup(**smoothed).model_dump(mode="json"), smoothed["gold"])
    assert a.tokenizer == b.tokenizer and a.sft != b.sft and a.preferences != b.preferences
