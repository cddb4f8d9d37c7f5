"""The alignment pipeline on classic control: reference policies and trajectory preferences.

* **Reference policy π_ref** — the project's PPO trained on a reduced budget (and stopped early
  once its mean return at T = 1 reaches ``target_return``): a mediocre, still stochastic policy.
* **Preference dataset** — ``n_pairs`` pairs of trajectory segments of ``segment_length`` steps
  sampled from π_ref at T = 1, each from a random time of a random episode (so from varied
  states; a segment stops early where its episode terminates, never at a time limit),
  labelled by Bradley–Terry on the true segment return: P(first ≻ second) = σ((R1 − R2) / τ),
  τ = 0 deterministic. Pairs of equal return carry no preference and are redrawn. The last
  ``heldout`` fraction is held out (reward-model and implicit-reward accuracy); methods train
  on the first pairs.

Both are artifacts cached under the cache folder (``$BENCH_CACHE``, default ``.cache/bench``),
keyed by task, seed, their recipe and the code that builds them (``bench.pipeline.keys``); a file
lock makes concurrent workers build each artifact once. Observations are stored as the reference
sees them (its frozen normalisation), which is also what every policy fine-tuned from it sees.

Layer: pipeline (its builders run the project's PPO; methods see the run's pipeline as a
``bench.artifacts.AlignmentContext``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.algos import ppo
from bench.algos.guard import Diverged
from bench.algos.rollout import reference_episodes
from bench.algos.segments import segment_pairs
from bench.artifacts import SegmentPreferences
from bench.cache import cache_dir, cached
from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct
from bench.control.tasks import Task
from bench.evaluation import Evaluator
from bench.pipeline.keys import control_keys
from bench.pipeline.recipes import PreferenceRecipe, ReferenceRecipe
from bench.recorder import Recorder

# Reference-training checks use evaluation seeds of their own (disjoint from the suite's).
REFERENCE_CHECK_SEED_BASE = 500_000


# -- reference policy ---------------------------------------------------------------------------


def ppo_task_defaults(task_id: str) -> dict:
    return ppo.TASK_DEFAULTS.get(task_id, {})


def _train_reference(task: Task, recipe: ReferenceRecipe, seed: int) -> dict:
    cfg = ppo.PPOConfig(**{**ppo_task_defaults(task.id), **recipe.params})
    recorder = Recorder()
    evaluator = Evaluator(
        task,
        recorder,
        seed,
        recipe.check_every,
        recipe.check_episodes,
        [1.0],
        target_return=recipe.target_return,
        seed_base=REFERENCE_CHECK_SEED_BASE,
    )
    torch.manual_seed(seed)
    try:
        agent = ppo.train(task, cfg, recipe.env_steps, seed, evaluator, recorder)
    except Diverged as e:  # the run's own steps are not the reference's: say whose these are
        raise Diverged(e.step, e.reason, f"reference-policy {e.unit}") from None
    checks = [(s, v) for s, _, _, _, m, v, _ in recorder.evals if m == "eval/return"]
    model = agent.model
    return {
        "task": task.id,
        "seed": seed,
        "recipe": recipe.model_dump(mode="json"),
        "arch": dict(
            obs_dim=model.pi[0].in_features,
            action_dim=model.action_dim,
            continuous=model.continuous,
            hidden_sizes=list(cfg.hidden_sizes),
            activation=cfg.activation,
        ),
        "state_dict": model.state_dict(),
        "obs_norm": agent.collector.obs_norm.state(),
        # the reward scale its critic's outputs are in (the return scaler's divisor; 1: raw rewards)
        "reward_scale": agent.collector.reward_scaler.std(),
        "env_steps": agent.collector.env_steps,
        "checks": checks,
        "train_seconds": recorder.wall_time(),
    }


def reference_from_artifact(data: dict, seed: int) -> PolicyAct:
    a = data["arch"]
    model = ActorCritic(
        a["obs_dim"], a["action_dim"], a["continuous"], tuple(a["hidden_sizes"]), a["activation"], False
    )
    model.load_state_dict(data["state_dict"])
    model.requires_grad_(False)
    obs_norm = ObsNormalizer.from_state(data["obs_norm"], frozen=True)
    return PolicyAct(model, obs_norm, torch.Generator().manual_seed(seed + 7))


# -- preference data ----------------------------------------------------------------------------


def _build_preferences(task: Task, ref: PolicyAct, recipe: PreferenceRecipe, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    eps = reference_episodes(task, ref, recipe.episodes, seed)
    pairs = segment_pairs(eps, recipe.n_pairs, recipe.segment_length, recipe.label_temperature, rng)
    if pairs is None:
        raise RuntimeError(f"{task.id}: reference segments almost always tie; no preferences")
    n_heldout = max(1, int(round(recipe.heldout * recipe.n_pairs)))
    return {
        "obs": pairs.obs,
        "actions": pairs.actions,
        "mask": pairs.mask,
        "returns": pairs.returns,
        "winner": pairs.winner,
        "loser": pairs.loser,
        "n_train": recipe.n_pairs - n_heldout,
        "ties_redrawn": pairs.redrawn,
        "reference_episode_return": float(np.mean([e[2].sum() for e in eps])),
    }


# -- one run's pipeline: the context an aligned method gets ------------------------------------


class ControlPipeline:
    """Per run: the task's reference policy and preference dataset for the run's seed (built on
    first use, then cached) and the place for derived artifacts (reward models); a
    ``bench.artifacts.AlignmentContext``."""

    def __init__(self, task: Task, recipe: dict, seed: int, log: Callable[[str], None] = print):
        self.task, self.seed, self.log = task, seed, log
        self.reference_recipe = ReferenceRecipe(**recipe["reference"])
        self.preference_recipe = PreferenceRecipe(**recipe["preferences"])
        keys = control_keys(task.id, recipe)  # π_ref and the preferences are rebuilt when their code changes
        self.ref_hash, self.pref_hash = keys.reference, keys.preferences
        self.root = cache_dir() / task.id
        self._reference: PolicyAct | None = None
        self._reference_scale = 1.0
        self._preferences: SegmentPreferences | None = None
        self.recorder: Recorder | None = None  # set: artifact build time is kept out of training time

    def exclude(self, seconds: float) -> None:
        if self.recorder is not None:
            self.recorder.eval_seconds += seconds

    def artifact(self, kind: str, recipe_key: str) -> Path:
        return self.root / f"{kind}-s{self.seed}-{recipe_key}.pt"

    def reference(self) -> PolicyAct:
        if self._reference is None:
            t0 = time.perf_counter()
            path = self.artifact("reference", self.ref_hash)
            data, built = cached(path, lambda: _train_reference(self.task, self.reference_recipe, self.seed))
            if "reward_scale" not in data:  # cached before the scale was kept
                data = self._complete_reference(path, data)
            self._reference_scale = float(data["reward_scale"])
            self._reference = reference_from_artifact(data, self.seed)
            last = data["checks"][-1] if data["checks"] else (data["env_steps"], float("nan"))
            self.log(
                f"reference policy {'trained' if built else 'loaded'} ({path})"
                f" in {time.perf_counter() - t0:.1f} s:"
                f" {data['env_steps']} PPO env steps, T=1 check return {last[1]:.1f}"
            )
        return self._reference

    def _complete_reference(self, path: Path, data: dict) -> dict:
        """An artifact without its reward scale: 1 where π_ref was trained on raw rewards; otherwise
        it is trained again (deterministic: the same policy) to learn the scale."""
        cfg = {**ppo_task_defaults(self.task.id), **self.reference_recipe.params}
        if not cfg.get("normalize_reward", False):
            return {**data, "reward_scale": 1.0}
        path.unlink()
        data, _ = cached(path, lambda: _train_reference(self.task, self.reference_recipe, self.seed))
        return data

    def reference_reward_scale(self) -> float:
        """The reward scale π_ref's critic predicts in (1 if it was trained on raw rewards)."""
        self.reference()
        return self._reference_scale

    def preferences(self) -> SegmentPreferences:
        if self._preferences is None:
            t0 = time.perf_counter()
            ref = self.reference()
            path = self.artifact("preferences", self.pref_hash)
            data, built = cached(
                path, lambda: _build_preferences(self.task, ref, self.preference_recipe, self.seed)
            )
            self._preferences = SegmentPreferences(
                data["obs"], data["actions"], data["mask"], data["returns"], data["winner"], data["loser"],
                data["n_train"],
            )  # fmt: skip
            self.exclude(time.perf_counter() - t0)
            self.log(
                f"preferences {'built' if built else 'loaded'} ({path}) in {time.perf_counter() - t0:.1f} s:"
                f" {len(data['winner'])} pairs ({data['n_train']} train), {data['ties_redrawn']} ties redrawn"
            )
        return self._preferences
