"""Suites: versioned YAML data (no code) -> validated ``Suite`` -> grid of ``RunSpec``.

A suite file may ``include:`` another (path relative to the including file): mappings merge
recursively with the including file winning, lists and scalars are replaced. A list given for a
scalar hyperparameter is a grid axis (for a list-valued one such as ``hidden_sizes``, a list of
lists is). Each grid cell x seed is a run; its key is a stable hash of its full resolved config.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.algos import ALGORITHMS
from bench.control.alignment import Alignment, PreferenceRecipe
from bench.control.tasks import TASKS
from bench.lm.setup import LMSetup
from bench.lm.tasks import LM_TASKS

MAX_INCLUDE_DEPTH = 8


class SuiteError(Exception):
    """A malformed suite: names the file and the field."""

    def __init__(self, path: str | Path, field: str, message: str):
        self.path, self.field, self.message = str(path), field, message
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + message)


class Evaluation(BaseModel):
    """The evaluation protocol of a suite (shared/design.md §3)."""

    model_config = ConfigDict(extra="forbid")
    eval_every: int | dict[str, int] = Field(
        10_000, description="env steps between evaluations (or per task)"
    )
    eval_episodes: int = Field(20, gt=0, le=1000, description="episodes per evaluation")
    temperatures: list[float] = Field([0.0, 1.0], min_length=1, description="sampling temperatures")
    final_temperatures: list[float] | None = Field(
        None, min_length=1, description="temperature sweep of the final policy (default: temperatures)"
    )

    @field_validator("eval_every")
    @classmethod
    def _positive(cls, v: int | dict[str, int]) -> int | dict[str, int]:
        if any(n <= 0 for n in (v.values() if isinstance(v, dict) else [v])):
            raise ValueError("eval_every must be greater than 0")
        return v

    def for_task(self, task: str) -> Evaluation:
        """This evaluation with a per-task ``eval_every`` resolved (10000 where not given)."""
        if not isinstance(self.eval_every, dict):
            return self
        return self.model_copy(update={"eval_every": self.eval_every.get(task, 10_000)})

    @field_validator("temperatures", "final_temperatures")
    @classmethod
    def _non_negative(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(t < 0 for t in v):
            raise ValueError("temperatures must be >= 0")
        return v


Steps = int | dict[str, int]


class AlgorithmEntry(BaseModel):
    """One algorithm of a suite, with its hyperparameters (lists = grid axes)."""

    model_config = ConfigDict(extra="forbid")
    algo: str = Field(description="registered algorithm: pg, ppo, sb3-ppo, sb3-a2c")
    label: str | None = Field(None, description="name in reports (default: algo)")
    tasks: list[str] | None = Field(None, description="subset of the suite's tasks")
    params: dict[str, Any] = Field({}, description="hyperparameters for every task")
    task_params: dict[str, dict[str, Any]] = Field({}, description="per-task hyperparameters")
    env_steps: Steps | None = Field(None, description="budget override (int or per task)")
    use_task_defaults: bool = Field(True, description="start from the shipped per-task defaults")


class SuiteFile(BaseModel):
    """One suite file before includes are resolved (every field optional)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="suite name (default: file stem)")
    version: str | int | None = Field(None, description="suite version, part of every run key")
    description: str | None = None
    include: str | None = Field(None, description="suite file this one extends")
    tasks: list[str] | None = None
    seeds: list[int] | int | None = Field(None, description="seed list, or N for 0..N-1")
    env_steps: Steps | None = Field(None, description="training budget (int or per task)")
    evaluation: Evaluation | None = None
    alignment: Alignment | None = Field(None, description="reference policies and preference data")
    lm: LMSetup | None = Field(None, description="LM tasks: corpus, tokenizer, model, SFT, preferences")
    algorithms: list[AlgorithmEntry] | None = None


class Suite(BaseModel):
    """A resolved, validated suite."""

    model_config = ConfigDict(extra="forbid")
    name: str
    version: str
    description: str = ""
    tasks: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    env_steps: Steps
    evaluation: Evaluation = Evaluation()
    alignment: Alignment | None = None
    lm: LMSetup | None = None
    algorithms: list[AlgorithmEntry] = Field(min_length=1)
    path: str = ""

    def hash(self) -> str:
        data = self.model_dump(mode="json", exclude={"path"}, exclude_none=True)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunSpec:
    """One run: a grid cell of the suite and a seed. Frozen and hashable."""

    key: str
    suite: str
    suite_version: str
    label: str
    algo: str
    task: str
    seed: int
    env_steps: int
    config_json: str  # the algorithm's full resolved hyperparameters
    evaluation_json: str
    alignment_json: str = ""  # this task's reference + preference recipes (alignment methods)

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)

    @property
    def evaluation(self) -> Evaluation:
        return Evaluation(**json.loads(self.evaluation_json))

    @property
    def alignment(self) -> dict | None:
        return json.loads(self.alignment_json) if self.alignment_json else None

    @property
    def cpus(self) -> int:
        """CPU cores the run occupies: its worker processes (Distributed PPO), else one."""
        return int(self.config.get("workers", 1))

    @property
    def gpus(self) -> int:
        """GPUs the run needs: one for an LM run on ``device: cuda``, else none."""
        return int((self.alignment or {}).get("device") == "cuda")


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validation_error(path: Path, err: ValidationError, prefix: str = "") -> SuiteError:
    first = err.errors()[0]
    loc = _format_loc(tuple(first["loc"]))
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    got = first.get("input")
    msg = first["msg"]
    if first["type"] not in ("missing", "extra_forbidden") and not isinstance(got, dict | list):
        msg += f" (got {got!r})"
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return SuiteError(path, field, msg)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(path, "", "file not found") from None
    except UnicodeDecodeError:
        raise SuiteError(path, "", "not UTF-8 text") from None
    except OSError as e:
        raise SuiteError(path, "", f"cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)  # safe: no tags, no code
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SuiteError(path, "", f"invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SuiteError(path, "", "a suite must be a YAML mapping of fields")
    return data


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _load_raw(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    data = _read_yaml(path)
    try:
        SuiteFile(**data)
    except ValidationError as e:
        raise _validation_error(path, e) from None
    include = data.pop("include", None)
    if include is None:
        return data
    target = (path.parent / include).resolve()
    if target in chain or target == path.resolve():
        raise SuiteError(path, "include", f"include cycle through {include!r}")
    if len(chain) >= MAX_INCLUDE_DEPTH:
        raise SuiteError(path, "include", f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
    if not target.is_file():
        raise SuiteError(path, "include", f"included file {include!r} not found")
    base = _load_raw(target, chain + (path.resolve(),))
    base.pop("name", None)  # a variant is its own suite
    return _merge(base, data)


def load_suite(path: str | Path) -> Suite:
    """Reads, merges includes and validates a suite file; raises SuiteError."""
    path = Path(path)
    data = _load_raw(path, ())
    data.setdefault("name", path.stem)
    if "version" not in data:
        raise SuiteError(path, "version", "missing (every suite declares a version)")
    data["version"] = str(data["version"])
    for key in ("tasks", "seeds", "env_steps", "algorithms"):
        if key not in data:
            raise SuiteError(path, key, "missing")
    if isinstance(data.get("seeds"), int) and not isinstance(data["seeds"], bool):
        if not 1 <= data["seeds"] <= 10_000:
            raise SuiteError(path, "seeds", f"must be between 1 and 10000 (got {data['seeds']})")
        data["seeds"] = list(range(data["seeds"]))
    try:
        suite = Suite(**data, path=str(path))
    except ValidationError as e:
        raise _validation_error(path, e) from None
    _check_semantics(path, suite)
    return suite


def _check_steps(path: Path, field: str, steps: Steps) -> None:
    # per-task keys need only be known tasks: a variant may narrow the task list
    if isinstance(steps, dict):
        for task, n in steps.items():
            if not _known(task):
                raise SuiteError(path, f"{field}.{task}", f"unknown task {task!r}")
            if n <= 0:
                raise SuiteError(path, f"{field}.{task}", f"must be > 0 (got {n})")
        return
    if steps <= 0:
        raise SuiteError(path, field, f"must be > 0 (got {steps})")


def _check_semantics(path: Path, suite: Suite) -> None:
    for i, task in enumerate(suite.tasks):
        if not _known(task):
            known = ", ".join([*TASKS, *LM_TASKS])
            raise SuiteError(path, f"tasks[{i}]", f"unknown task {task!r}; known: {known}")
    if len(set(suite.seeds)) != len(suite.seeds):
        raise SuiteError(path, "seeds", "seeds repeat")
    if any(not 0 <= s < 2**31 - 2_000_000 for s in suite.seeds):
        raise SuiteError(path, "seeds", "seeds must be in [0, 2**31 - 2e6)")
    _check_steps(path, "env_steps", suite.env_steps)
    if isinstance(suite.evaluation.eval_every, dict):
        for task in suite.evaluation.eval_every:
            if not _known(task):
                raise SuiteError(path, f"evaluation.eval_every.{task}", f"unknown task {task!r}")
    for i, entry in enumerate(suite.algorithms):
        where = f"algorithms[{i}]"
        if entry.algo not in ALGORITHMS:
            raise SuiteError(
                path, f"{where}.algo", f"unknown algorithm {entry.algo!r}; known: {', '.join(ALGORITHMS)}"
            )
        for j, task in enumerate(entry.tasks or []):
            if task not in suite.tasks:
                raise SuiteError(path, f"{where}.tasks[{j}]", f"{task!r} is not a task of this suite")
        for task in entry.task_params:
            if not _known(task):
                raise SuiteError(path, f"{where}.task_params.{task}", f"unknown task {task!r}")
        if entry.env_steps is not None:
            _check_steps(path, f"{where}.env_steps", entry.env_steps)
        domain = ALGORITHMS[entry.algo].domain
        for task in entry.tasks or suite.tasks:
            if (task in LM_TASKS) != (domain == "lm"):
                kind = "LM" if domain == "lm" else "control"
                raise SuiteError(
                    path,
                    f"{where}.algo",
                    f"{entry.algo!r} runs on {kind} tasks only, not on {task!r}"
                    + ("; give the entry a `tasks:` list" if not entry.tasks else ""),
                )
        if ALGORITHMS[entry.algo].aligned:
            if suite.alignment is None:
                raise SuiteError(
                    path, f"{where}.algo", f"{entry.algo!r} needs the suite's alignment: section"
                )
            for task in entry.tasks or suite.tasks:
                if task not in suite.alignment.reference:
                    raise SuiteError(path, "alignment.reference", f"no reference recipe for task {task}")
        for task in entry.tasks or suite.tasks:
            _grid(path, suite, i, entry, task)  # validates every cell
    if suite.alignment is not None:
        for task in [*suite.alignment.reference, *suite.alignment.task_preferences]:
            if task not in TASKS:
                raise SuiteError(path, f"alignment.{task}", f"unknown task {task!r}")
        for task, over in suite.alignment.task_preferences.items():
            try:
                PreferenceRecipe(**{**suite.alignment.preferences.model_dump(), **over})
            except ValidationError as e:
                raise _validation_error(path, e, f"alignment.task_preferences.{task}") from None
    # run labels (with their grid suffixes) must be unique per task; two entries may share a
    # label stem (e.g. a strength sweep and a data-size sweep of the same method)
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(suite.algorithms):
        for task in entry.tasks or suite.tasks:
            for label, _ in _grid(path, suite, i, entry, task):
                if (label, task) in seen:
                    raise SuiteError(
                        path, f"algorithms[{i}].label", f"label {label!r} repeats for task {task}"
                    )
                seen.add((label, task))


def _known(task: str) -> bool:
    return task in TASKS or task in LM_TASKS


def _is_sequence_field(config: type[BaseModel], name: str) -> bool:
    field = config.model_fields.get(name)
    if field is None:
        return False
    for ann in (field.annotation, *typing.get_args(field.annotation)):
        if typing.get_origin(ann) in (list, tuple) or ann in (list, tuple):
            return True
    return False


def _grid(path: Path, suite: Suite, i: int, entry: AlgorithmEntry, task: str):
    """Validated (label, config) cells of one algorithm entry on one task."""
    algo = ALGORITHMS[entry.algo]
    base = dict(algo.task_defaults.get(task, {})) if entry.use_task_defaults else {}
    user = {**entry.params, **entry.task_params.get(task, {})}
    axes: dict[str, list] = {}
    for name, value in user.items():
        is_axis = isinstance(value, list) and (
            not _is_sequence_field(algo.config, name) or all(isinstance(v, list) for v in value)
        )
        if is_axis:
            if not value:
                raise SuiteError(path, f"algorithms[{i}].params.{name}", "empty grid axis")
            axes[name] = value
        else:
            base[name] = value
    names = list(axes)
    cells = []
    for combo in itertools.product(*(axes[n] for n in names)):
        params = {**base, **dict(zip(names, combo, strict=True))}
        try:
            cfg = algo.config(**params)
        except ValidationError as e:
            origin = "task_params." + task if _from_task_params(e, entry, task) else "params"
            raise _validation_error(path, e, f"algorithms[{i}].{origin}") from None
        label = entry.label or entry.algo
        varying = [(n, v) for n, v in zip(names, combo, strict=True) if len(axes[n]) > 1]
        if varying:
            label += "[" + ",".join(f"{n}={v}" for n, v in varying) + "]"
        cells.append((label, cfg.model_dump(mode="json")))
    return cells


def _from_task_params(err: ValidationError, entry: AlgorithmEntry, task: str) -> bool:
    loc = err.errors()[0]["loc"]
    return bool(loc) and loc[0] in entry.task_params.get(task, {})


def _budget(steps: Steps, task: str, default: Steps | None = None) -> int | None:
    if isinstance(steps, dict):
        if task in steps:
            return steps[task]
        return _budget(default, task) if default is not None else None
    return steps


def expand(suite: Suite) -> list[RunSpec]:
    """The suite's runs: algorithms x tasks x grid cells x seeds, in a stable order."""
    path = Path(suite.path or suite.name)
    specs = []
    for i, entry in enumerate(suite.algorithms):
        for task in entry.tasks or suite.tasks:
            steps = _budget(entry.env_steps, task, suite.env_steps) if entry.env_steps else None
            steps = steps or _budget(suite.env_steps, task)
            if steps is None:
                raise SuiteError(path, "env_steps", f"no budget for task {task}")
            # unset optional fields stay out of the key, so adding a field keeps existing run keys
            evaluation = suite.evaluation.for_task(task).model_dump(mode="json", exclude_none=True)
            evaluation_json = json.dumps(evaluation, sort_keys=True)
            alignment = None
            if ALGORITHMS[entry.algo].aligned and suite.alignment is not None:
                alignment = suite.alignment.for_task(task)
            elif ALGORITHMS[entry.algo].domain == "lm":
                alignment = (suite.lm or LMSetup()).for_task(LM_TASKS[task])
            for label, config in _grid(path, suite, i, entry, task):
                config_json = json.dumps(config, sort_keys=True)
                for seed in suite.seeds:
                    ident = dict(
                        suite=suite.name,
                        version=suite.version,
                        label=label,
                        algo=entry.algo,
                        task=task,
                        seed=seed,
                        env_steps=steps,
                        config=config,
                        evaluation=json.loads(evaluation_json),
                    )
                    if alignment is not None:  # absent otherwise: earlier run keys stay valid
                        ident["alignment"] = alignment
                    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
                    specs.append(
                        RunSpec(
                            key,
                            suite.name,
                            suite.version,
                            label,
                            entry.algo,
                            task,
                            seed,
                            steps,
                            config_json,
                            evaluation_json,
                            json.dumps(alignment, sort_keys=True) if alignment is not None else "",
                        )
                    )
    return specs
