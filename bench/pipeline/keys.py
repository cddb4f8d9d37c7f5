"""The artifact cache keys: which recipe parts and which code each artifact depends on.

A key is the hash (``bench.cache.recipe_hash``) of the recipe parts that make the artifact, of the
key of the artifact it is made from, and of the code version of the module that builds it
(``bench.fingerprint.artifact_code``: the source hash of that module and every bench module it
imports), so that an artifact built by other code is built again instead of being reused:

* control: π_ref <- task + reference recipe + code of ``bench.pipeline.control``; preferences <-
  π_ref + preference recipe;
* LM: tokenizer and prompts <- task + corpus, tokenizer, base model and prompt recipes + code of
  ``bench.pipeline.lm``; π_SFT <- tokenizer + model and SFT recipes; preferences <- π_SFT +
  preference recipe, completion length and gold scorer; reward model <- preferences + its recipe;
  a method's derived artifacts <- preferences + name + code of the method's module.

Layer: pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.cache import recipe_hash
from bench.fingerprint import artifact_code

CONTROL_BUILDER = "bench.pipeline.control"
LM_BUILDER = "bench.pipeline.lm"


@dataclass(frozen=True)
class ControlKeys:
    reference: str
    preferences: str


def control_keys(task_id: str, recipe: dict) -> ControlKeys:
    """The keys of a control task's π_ref and preference data; ``recipe`` is the run's alignment
    recipe (``Alignment.for_task``)."""
    code = artifact_code(CONTROL_BUILDER)
    reference = recipe_hash({"task": task_id, "reference": recipe["reference"], "code": code})
    return ControlKeys(reference, recipe_hash({"ref": reference, "preferences": recipe["preferences"]}))


@dataclass(frozen=True)
class LMKeys:
    tokenizer: str  # the tokenizer and the prompts
    sft: str
    preferences: str
    reward_model: str


def lm_keys(task_id: str, setup: dict, gold: str) -> LMKeys:
    """The keys of an LM task's artifacts; ``setup`` is the run's ``LMSetup`` dumped as JSON,
    ``gold`` its gold scorer."""
    s = setup
    tokenizer = recipe_hash({"task": task_id, "corpus": s["corpus"], "tok": s["tokenizer"],
                             "base": s["model"]["base"], "prompts": s["prompts"],
                             "code": artifact_code(LM_BUILDER)})  # fmt: skip
    # a recipe field added later counts only when set, so the keys of recipes without it stay put
    sft_recipe = {k: v for k, v in s["sft"].items() if not (k == "label_smoothing" and v == 0)}
    sft = recipe_hash({"tok": tokenizer, "model": s["model"], "sft": sft_recipe})
    prefs = recipe_hash({"sft": sft, "prefs": s["preferences"], "new": s["max_new_tokens"], "gold": gold})
    return LMKeys(tokenizer, sft, prefs, recipe_hash({"prefs": prefs, "rm": s["reward_model"]}))


def derived_key(preferences: str, name: str, code: str) -> str:
    """The key of a method's per-seed artifact ``name`` computed from the preference data by the
    code of module ``code``."""
    return recipe_hash({"prefs": preferences, "name": name, "code": artifact_code(code)})
