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
keyed by task, seed and the hash of their recipe; a file lock makes concurrent workers build each
artifact once. Observations are stored as the reference sees them (its frozen normalisation),
which is also what every policy fine-tuned from it sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from bench.cache import cache_dir, cached, recipe_hash
from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct
from bench.control.tasks import Task
from bench.fingerprint import artifact_code
from bench.recorder import Recorder

# Reference-training checks use evaluation seeds of their own (disjoint from the suite's).
REFERENCE_CHECK_SEED_BASE = 500_000


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


# -- reference policy ---------------------------------------------------------------------------


def ppo_task_defaults(task_id: str) -> dict:
    from bench.algos import ppo

    return ppo.TASK_DEFAULTS.get(task_id, {})


def _train_reference(task: Task, recipe: ReferenceRecipe, seed: int) -> dict:
    from bench.algos import ppo
    from bench.algos.guard import Diverged
    from bench.evaluation import Evaluator

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


@dataclass
class Preferences:
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


@torch.no_grad()
def reference_episodes(task: Task, ref: PolicyAct, episodes: int, seed: int):
    """``episodes`` full episodes of a policy (π_ref, or a fine-tuned one) at T = 1: list of
    (obs [L, d] as the policy saw them, actions, rewards [L], ended by the time limit)."""
    n_envs = min(episodes, 16)
    env = task.make_vec(n_envs)
    space = env.single_action_space
    bounds = (space.low, space.high) if task.continuous else None
    obs, _ = env.reset(seed=seed)
    bufs: list[list] = [[] for _ in range(n_envs)]
    out = []
    prev_done = np.zeros(n_envs, bool)
    while len(out) < episodes:
        params = ref.dist(obs)
        action = ref.model.sample(params, 1.0, ref.generator).numpy()
        normed = ref.obs_norm(obs)
        env_action = np.clip(action, *bounds) if bounds is not None else action
        next_obs, reward, term, trunc, _ = env.step(env_action)
        for i in range(n_envs):
            if prev_done[i]:  # NEXT_STEP autoreset step: not part of any episode
                continue
            bufs[i].append((normed[i], action[i], float(reward[i])))
            if term[i] or trunc[i]:
                o, a, r = zip(*bufs[i], strict=True)
                out.append((np.stack(o), np.stack(a), np.asarray(r), bool(trunc[i] and not term[i])))
                bufs[i] = []
        prev_done = term | trunc
        obs = next_obs
    env.close()
    return out[:episodes]  # (obs, actions, rewards, ended by the time limit)


def _build_preferences(task: Task, ref: PolicyAct, recipe: PreferenceRecipe, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    eps = reference_episodes(task, ref, recipe.episodes, seed)
    lengths = np.array([len(e[2]) for e in eps])
    H = recipe.segment_length

    def segment():
        e = rng.choice(len(eps), p=lengths / lengths.sum())  # a uniformly random visited state
        # a segment may stop early only where its episode terminated: a time limit is not an
        # outcome, so there segments fit inside the episode
        last = lengths[e] - H + 1 if eps[e][3] and lengths[e] >= H else lengths[e]
        start = int(rng.integers(last))
        o, a, r = (x[start : start + H] for x in eps[e][:3])
        return o, a, r

    segments, winner, loser, redrawn = [], [], [], 0
    while len(winner) < recipe.n_pairs:
        s1, s2 = segment(), segment()
        r1, r2 = float(s1[2].sum()), float(s2[2].sum())
        if r1 == r2:
            redrawn += 1
            if redrawn > 100 * recipe.n_pairs:
                raise RuntimeError(f"{task.id}: reference segments almost always tie; no preferences")
            continue
        if recipe.label_temperature == 0:
            first_wins = r1 > r2
        else:
            z = np.clip((r1 - r2) / recipe.label_temperature, -500, 500)
            first_wins = rng.random() < 1.0 / (1.0 + np.exp(-z))
        i = len(segments)
        segments += [s1, s2]
        winner.append(i if first_wins else i + 1)
        loser.append(i + 1 if first_wins else i)
    S, obs_dim = len(segments), segments[0][0].shape[1]
    act_shape = segments[0][1].shape[1:]
    obs = np.zeros((S, H, obs_dim), np.float32)
    actions = np.zeros((S, H, *act_shape), np.float32 if task.continuous else np.int64)
    mask = np.zeros((S, H), np.float32)
    for k, (o, a, _) in enumerate(segments):
        obs[k, : len(o)], actions[k, : len(a)], mask[k, : len(o)] = o, a, 1.0
    returns = np.array([float(r.sum()) for _, _, r in segments], np.float32)
    n_heldout = max(1, int(round(recipe.heldout * recipe.n_pairs)))
    return {
        "obs": torch.from_numpy(obs),
        "actions": torch.from_numpy(actions),
        "mask": torch.from_numpy(mask),
        "returns": torch.from_numpy(returns),
        "winner": torch.tensor(winner),
        "loser": torch.tensor(loser),
        "n_train": recipe.n_pairs - n_heldout,
        "ties_redrawn": redrawn,
        "reference_episode_return": float(np.mean([e[2].sum() for e in eps])),
    }


# -- the context an aligned run gets ------------------------------------------------------------


class AlignmentContext:
    """Per run: the task's reference policy and preference dataset for the run's seed (built on
    first use, then cached) and the place for derived artifacts (reward models)."""

    def __init__(self, task: Task, recipe: dict, seed: int, log: Callable[[str], None] = print):
        self.task, self.seed, self.log = task, seed, log
        self.reference_recipe = ReferenceRecipe(**recipe["reference"])
        self.preference_recipe = PreferenceRecipe(**recipe["preferences"])
        code = artifact_code(__name__)  # π_ref and the preferences are rebuilt when their code changes
        self.ref_hash = recipe_hash({"task": task.id, "reference": recipe["reference"], "code": code})
        self.pref_hash = recipe_hash({"ref": self.ref_hash, "preferences": recipe["preferences"]})
        self.root = cache_dir() / task.id
        self._reference: PolicyAct | None = None
        self._reference_scale = 1.0
        self._preferences: Preferences | None = None
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

    def preferences(self) -> Preferences:
        if self._preferences is None:
            t0 = time.perf_counter()
            ref = self.reference()
            path = self.artifact("preferences", self.pref_hash)
            data, built = cached(
                path, lambda: _build_preferences(self.task, ref, self.preference_recipe, self.seed)
            )
            self._preferences = Preferences(
                data["obs"], data["actions"], data["mask"], data["returns"], data["winner"], data["loser"],
                data["n_train"],
            )  # fmt: skip
            self.exclude(time.perf_counter() - t0)
            self.log(
                f"preferences {'built' if built else 'loaded'} ({path}) in {time.perf_counter() - t0:.1f} s:"
                f" {len(data['winner'])} pairs ({data['n_train']} train), {data['ties_redrawn']} ties redrawn"
            )
        return self._preferences
