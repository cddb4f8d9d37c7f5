"""The schema of a suite: its fields, their bounds and descriptions (pydantic models), and the
translation of a validation error into one ``SuiteError`` naming the file and the field."""

from __future__ import annotations

import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.pipeline.recipes import Alignment, LMSetup
from bench.suite.errors import SuiteError, _child_field, _show

MAX_STEPS = 10**11  # largest training budget / evaluation interval (env steps or updates)


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # suite names and versions: file-name safe


LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+=,:()\[\]-]{0,63}")  # labels given in a suite


def _plain_text(value: str | None) -> str | None:
    """Free text shown in listings and reports: no control characters but tabs and newlines
    (no terminal escape sequences)."""
    if value is not None and re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", value):
        raise ValueError("control characters are not allowed (tabs and newlines are)")
    return value


PLUGIN_TIMEOUT_S = 6 * 3600  # a run of plugin code with no run_timeout: stopped after 6 hours
RUN_TIMEOUT_HELP = (
    "wall-clock limit of one run in seconds: a run still going is stopped and stored failed"
    " ('timeout after N s'); default: none for bench's algorithms, 6 hours for plugins'"
)


class Evaluation(BaseModel):
    """The evaluation protocol of a suite (shared/design.md §3)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    eval_every: int | dict[str, int] = Field(
        10_000, description="env steps between evaluations (or per task)"
    )
    eval_episodes: int = Field(20, gt=0, le=1000, description="episodes per evaluation")
    temperatures: list[float] = Field(
        [0.0, 1.0], min_length=1, max_length=100, description="sampling temperatures"
    )
    final_temperatures: list[float] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="temperature sweep of the final policy (default: temperatures)",
    )

    @field_validator("eval_every")
    @classmethod
    def _positive(cls, v: int | dict[str, int]) -> int | dict[str, int]:
        if any(n <= 0 for n in (v.values() if isinstance(v, dict) else [v])):
            raise ValueError("eval_every must be greater than 0")
        if any(n > MAX_STEPS for n in (v.values() if isinstance(v, dict) else [v])):
            raise ValueError("eval_every must be at most 1e11")
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
        if v is not None and any(t > 1000 for t in v):
            raise ValueError("temperatures must be <= 1000")
        return v


Steps = int | dict[str, int]


class TaskDeclaration(BaseModel):
    """A gymnasium environment declared as a task in a suite's ``tasks:`` list: its id and the
    bounds its scores are normalised by (data, not code: the environment must be registered with
    gymnasium, by gymnasium itself or by an installed package)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    id: str = Field(description="gymnasium environment id, e.g. Acrobot-v1")
    reward_threshold: float = Field(
        description="the return at which the task counts as solved (time to threshold)"
    )
    random_score: float = Field(description="mean return of a uniformly random policy (normalised score 0)")
    solved_score: float = Field(description="normalised score 1 (usually the reward threshold)")
    continuous: bool | None = Field(
        None, description="continuous actions (default: read from the environment)"
    )

    @field_validator("id")
    @classmethod
    def _env_id(cls, v: str) -> str:
        if not re.fullmatch(r"([A-Za-z0-9_.-]+/)?[A-Za-z0-9_.:-]{1,100}", v):
            raise ValueError("must be a gymnasium environment id such as Acrobot-v1 or ns/Name-v0")
        return v


class AlgorithmEntry(BaseModel):
    """One algorithm of a suite, with its hyperparameters (lists = grid axes)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    algo: str = Field(description="a registered algorithm (`bench list`; `bench describe NAME`: its params)")
    label: str | None = Field(None, description="name in reports (default: algo)")
    tasks: list[str] | None = Field(None, description="subset of the suite's tasks")
    params: dict[str, Any] = Field({}, description="hyperparameters for every task")
    task_params: dict[str, dict[str, Any]] = Field({}, description="per-task hyperparameters")
    env_steps: Steps | None = Field(None, description="budget override (int or per task)")
    use_task_defaults: bool = Field(True, description="start from the shipped per-task defaults")


class SuiteFile(BaseModel):
    """One suite file before includes are resolved (every field optional)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str | None = Field(None, description="suite name (default: file stem)")
    version: str | int | None = Field(None, description="suite version, part of every run key")
    description: str | None = Field(None, max_length=10_000)
    include: str | None = Field(None, description="suite file this one extends")
    tasks: list[str | TaskDeclaration] | None = Field(
        None,
        description="task ids, or {id, reward_threshold, random_score, solved_score} for any gymnasium env",
    )
    seeds: list[int] | int | None = Field(None, description="seed list, or N for 0..N-1")
    env_steps: Steps | None = Field(None, description="training budget (int or per task)")
    evaluation: Evaluation | None = None
    alignment: Alignment | None = Field(None, description="reference policies and preference data")
    lm: LMSetup | None = Field(None, description="LM tasks: corpus, tokenizer, model, SFT, preferences")
    algorithms: list[AlgorithmEntry] | None = None
    run_timeout: int | None = Field(None, gt=0, le=10**7, description=RUN_TIMEOUT_HELP)

    @field_validator("description")
    @classmethod
    def _plain_description(cls, v: str | None) -> str | None:
        return _plain_text(v)


class Suite(BaseModel):
    """A resolved, validated suite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str
    version: str
    description: str = Field("", max_length=10_000)
    tasks: list[str] = Field(min_length=1)
    task_declarations: list[TaskDeclaration] | None = Field(None, description="tasks declared in this suite")
    seeds: list[int] = Field(min_length=1)
    env_steps: Steps
    evaluation: Evaluation = Evaluation()
    alignment: Alignment | None = None
    lm: LMSetup | None = None
    algorithms: list[AlgorithmEntry] = Field(min_length=1)
    run_timeout: int | None = Field(None, gt=0, le=10**7, description=RUN_TIMEOUT_HELP)
    path: str = ""

    @field_validator("description")
    @classmethod
    def _plain_description(cls, v: str | None) -> str | None:
        return _plain_text(v)

    def hash(self) -> str:
        data = self.model_dump(mode="json", exclude={"path"}, exclude_none=True)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


_UNION_TAG = re.compile(r"(int|str|float|bool|none|[a-z][a-z-]*\[.*\]|constrained-[a-z]+|function-[a-z]+)")


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
            continue
        part = str(part)
        if _UNION_TAG.fullmatch(part):  # pydantic's name of a union member, not a field
            continue
        part = part if re.fullmatch(r"[\w.:+-]+", part) else repr(part)
        out += f".{part}" if out else part
    return out


def _model_at(model, loc: tuple):
    """The pydantic model class reached from ``model`` along the field names in ``loc`` (list
    indices and dict keys skipped), or None."""
    import pydantic

    def models_in(annotation):
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            return [annotation]
        return [m for a in typing.get_args(annotation) for m in models_in(a)]

    current = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            continue  # an index, a dict key or a union tag
        found = models_in(current.model_fields[part].annotation)
        current = found[0] if found else None
    return current


def _unknown_key(key: str, model) -> str:
    """'unknown key', with the closest valid keys first and then the others."""
    if model is None:
        return "unknown key"
    import difflib

    names = sorted(model.model_fields)
    close = difflib.get_close_matches(str(key), names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return f"unknown key ({hint}valid keys: {', '.join(names)})"


def _validation_error(path: Path, err: ValidationError, prefix: str = "", model=None) -> SuiteError:
    """One SuiteError for the first problem of a pydantic error; ``model``: the class validated,
    so an unknown key's message can list the valid ones."""
    try:
        first = err.errors(include_url=False)[0]
        raw_loc = tuple(first.get("loc", ()))
        loc = _format_loc(raw_loc)
        field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        got = first.get("input")
        msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        kind = first.get("type")
        if kind == "extra_forbidden":
            where = _model_at(model, raw_loc[:-1]) if model else None
            msg = _unknown_key(raw_loc[-1] if raw_loc else "", where)
        elif kind == "finite_number":
            msg = "must be a finite number (no nan or inf)"
        elif kind != "missing" and not isinstance(got, dict | list | tuple):
            msg += f" (got {_show(got)})"
        return SuiteError(path, field, msg)
    except Exception:  # noqa: BLE001 - reporting an error must never raise
        return SuiteError(path, prefix, "invalid value")


def _is_sequence_field(config: type[BaseModel], name: str) -> bool:
    field = config.model_fields.get(name)
    if field is None:
        return False
    for ann in (field.annotation, *typing.get_args(field.annotation)):
        if typing.get_origin(ann) in (list, tuple) or ann in (list, tuple):
            return True
    return False


def _bool_ok(ann: Any) -> bool:
    if ann is Any or ann is bool or ann is object:
        return True
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _bool_ok(args[0])
    if origin is typing.Literal:
        return any(isinstance(a, bool) for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(_bool_ok(a) for a in args)
    return False


def _find_bool(ann: Any, value: Any, field: str) -> str | None:
    """The field where ``value`` holds a boolean that ``ann`` does not admit: pydantic would read
    ``true`` as the number 1 (``env_steps: true``); a suite gets a message instead."""
    if isinstance(value, bool):
        return None if _bool_ok(ann) else field
    if not isinstance(value, dict | list) or ann is Any:
        return None
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _find_bool(args[0], value, field)
    if origin in (typing.Union, types.UnionType):
        for member in args:  # the first member of the value's kind
            kind = typing.get_origin(member) or member
            is_model = isinstance(kind, type) and issubclass(kind, BaseModel)
            if isinstance(value, dict) and (kind is dict or is_model):
                return _find_bool(member, value, field)
            if isinstance(value, list) and kind in (list, tuple):
                return _find_bool(member, value, field)
        return None
    if isinstance(value, list) and origin in (list, tuple) and args:
        for j, item in enumerate(value):
            item_ann = args[0] if origin is list or args[-1] is Ellipsis else args[min(j, len(args) - 1)]
            if (found := _find_bool(item_ann, item, f"{field}[{j}]")) is not None:
                return found
        return None
    if isinstance(value, dict) and origin is dict and len(args) == 2:
        for key, item in value.items():
            if (found := _find_bool(args[1], item, _child_field(field, str(key)))) is not None:
                return found
        return None
    if isinstance(value, dict) and isinstance(ann, type) and issubclass(ann, BaseModel):
        for key, item in value.items():
            spec = ann.model_fields.get(key) if isinstance(key, str) else None
            if spec is not None and (found := _find_bool(spec.annotation, item, _child_field(field, key))):
                return found
    return None


def _check_bools(path: Path, ann: Any, value: Any, field: str) -> None:
    found = _find_bool(ann, value, field)
    if found is not None:
        raise SuiteError(path, found, "expected a number or a string, not true/false")


def _check_param_bools(path: Path, config: type[BaseModel], params: dict, field: str) -> None:
    """``_check_bools`` for hyperparameters, whose list values may be grid axes."""
    for name, value in params.items():
        spec = config.model_fields.get(name) if isinstance(name, str) else None
        if spec is None:
            continue
        axis = isinstance(value, list) and (
            not _is_sequence_field(config, name) or all(isinstance(v, list) for v in value)
        )
        for j, v in enumerate(value if axis else [value]):
            _check_bools(path, spec.annotation, v, _child_field(field, name) + (f"[{j}]" if axis else ""))
