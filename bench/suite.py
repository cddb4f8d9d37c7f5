"""Suites: versioned YAML data (no code) -> validated ``Suite`` -> grid of ``RunSpec``.

A suite file may ``include:`` another (path relative to the including file): mappings merge
recursively with the including file winning, lists and scalars are replaced. A list given for a
scalar hyperparameter is a grid axis (for a list-valued one such as ``hidden_sizes``, a list of
lists is). Each grid cell x seed is a run; its key is a stable hash of its full resolved config.

Suite files are untrusted data. They are read as plain YAML (strings, numbers, booleans, null,
lists and mappings with string keys; no tags, no timestamps, no duplicate keys), at most
``MAX_FILE_BYTES`` large, ``MAX_YAML_NODES`` nodes with aliases expanded and ``MAX_YAML_DEPTH``
levels deep. An included file must lie inside the folder of the top-level suite file (or be
one of bench's shipped suites); local paths of the ``lm:`` section must lie
inside that folder or the artifact cache (hub names are names); a suite expands to at most
``MAX_RUNS`` runs; suite names are slugs and labels are free of path, markup and control
characters. Every problem is a ``SuiteError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import stat
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.algos import ALGORITHMS
from bench.cache import cache_dir
from bench.control.alignment import Alignment, PreferenceRecipe
from bench.control.tasks import TASKS
from bench.lm.setup import LMSetup
from bench.lm.tasks import LM_TASKS

MAX_INCLUDE_DEPTH = 8
MAX_FILE_BYTES = 1 << 20  # 1 MiB: suites are a few KB
MAX_YAML_NODES = 100_000  # YAML nodes of one file, aliases expanded (billion-laughs guard)
MAX_YAML_DEPTH = 32  # nesting levels of one file (suites need about 8)
MAX_NUMBER_CHARS = 100  # digits of one YAML number
MAX_RUNS = 100_000  # runs of one suite (grid cells x seeds), checked before any grid is built
MAX_LABEL_CHARS = 200  # a label with its grid suffix
MAX_STEPS = 10**11  # largest training budget / evaluation interval (env steps or updates)

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # suite names and versions: file-name safe
LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._+=,:()\[\]-]{0,63}")  # labels given in a suite
# never in a label, grid suffix included: path separators, markup, mathtext, control characters
_UNSAFE_LABEL = re.compile(r"[/\\<>$&\"`\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# a hub repository id (``gpt2``, ``org/name``); anything else in a path-like field is a local path
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


def _clean(text: str, limit: int = 2000) -> str:
    """``text`` on one line: control characters escaped, at most ``limit`` characters."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any, limit: int = 60) -> str:
    """A short repr of a user-supplied value for a message."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a message must never fail
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain_text(value: str | None) -> str | None:
    """Free text shown in listings and reports: no control characters but tabs and newlines
    (no terminal escape sequences)."""
    if value is not None and re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", value):
        raise ValueError("control characters are not allowed (tabs and newlines are)")
    return value


class SuiteError(Exception):
    """A malformed suite: names the file and the field (one line)."""

    def __init__(self, path: str | Path, field: str, message: str):
        self.path, self.field, self.message = _clean(str(path), 500), _clean(field, 160), _clean(message)
        where = f"{self.path}: {self.field}: " if self.field else f"{self.path}: "
        super().__init__(where + self.message)


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
    tasks: list[str] | None = None
    seeds: list[int] | int | None = Field(None, description="seed list, or N for 0..N-1")
    env_steps: Steps | None = Field(None, description="training budget (int or per task)")
    evaluation: Evaluation | None = None
    alignment: Alignment | None = Field(None, description="reference policies and preference data")
    lm: LMSetup | None = Field(None, description="LM tasks: corpus, tokenizer, model, SFT, preferences")
    algorithms: list[AlgorithmEntry] | None = None

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
    seeds: list[int] = Field(min_length=1)
    env_steps: Steps
    evaluation: Evaluation = Evaluation()
    alignment: Alignment | None = None
    lm: LMSetup | None = None
    algorithms: list[AlgorithmEntry] = Field(min_length=1)
    path: str = ""

    @field_validator("description")
    @classmethod
    def _plain_description(cls, v: str | None) -> str | None:
        return _plain_text(v)

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


# -- reading YAML: plain data only ------------------------------------------------------------

_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}
_NUMBER_TAGS = {_YAML + "int", _YAML + "float"}


class _SuiteLoader(yaml.SafeLoader):
    """PyYAML's safe loader without implicit timestamps (``2024-01-01`` stays a string) and
    YAML 1.1's ``=`` value key; ``_check_nodes`` rejects every tag outside ``_PLAIN_TAGS``."""


_SuiteLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in _PLAIN_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _child_field(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    key = key if re.fullmatch(r"[\w.:+-]+", key) else repr(key)
    return f"{parent}.{key}" if parent else key


def _check_nodes(path: Path, root: yaml.Node) -> None:
    """Plain data only, checked on the composed node graph before anything is constructed:
    allowed tags, string keys without repeats, numbers of sane length, no recursive aliases,
    at most ``MAX_YAML_NODES`` nodes with aliases expanded and ``MAX_YAML_DEPTH`` levels
    (iterative, and an alias bomb is stopped at the first node over the limit)."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes with aliases expanded, height)
    open_: set[int] = set()  # nodes on the current path (a repeat is a recursive alias)
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    while stack:
        node, field, finished = stack.pop()
        nid = id(node)
        children: list[yaml.Node]
        if isinstance(node, yaml.MappingNode):
            children = [v for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if finished:
            open_.discard(nid)
            size = 1 + sum(done[id(c)][0] for c in children)
            height = 1 + max((done[id(c)][1] for c in children), default=0)
            if size > MAX_YAML_NODES:
                raise SuiteError(
                    path, field, f"more than {MAX_YAML_NODES} YAML values (aliases expanded) at {_line(node)}"
                )
            if height > MAX_YAML_DEPTH:
                raise SuiteError(path, field, f"nested deeper than {MAX_YAML_DEPTH} levels at {_line(node)}")
            done[nid] = (size, height)
            continue
        if nid in done:
            continue
        if nid in open_:
            raise SuiteError(path, field, f"recursive alias at {_line(node)}")
        if node.tag not in _PLAIN_TAGS:
            raise SuiteError(
                path,
                field,
                f"invalid YAML: tag {_show(_short_tag(node.tag))} at {_line(node)} is not allowed; a suite"
                " is plain data (strings, numbers, booleans, lists and mappings)",
            )
        if isinstance(node, yaml.ScalarNode) and node.tag in _NUMBER_TAGS:
            if len(node.value) > MAX_NUMBER_CHARS:
                raise SuiteError(path, field, f"number at {_line(node)} is too long")
        keyed: list[str | int] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for key, _ in node.value:
                if key.tag == _YAML + "merge":
                    keyed.append("<<")
                    continue
                if not isinstance(key, yaml.ScalarNode) or key.tag != _YAML + "str":
                    shown = key.value if isinstance(key, yaml.ScalarNode) else "a list or mapping"
                    raise SuiteError(
                        path,
                        field,
                        f"key {_show(shown)} at {_line(key)} is not a string (keys are names; quote it)",
                    )
                if key.value in seen:
                    raise SuiteError(
                        path,
                        _child_field(field, key.value),
                        f"duplicate key at {_line(key)} (first at {_line(seen[key.value])})",
                    )
                seen[key.value] = key
                keyed.append(key.value)
        else:
            keyed = list(range(len(children)))
        open_.add(nid)
        stack.append((node, field, True))
        for key, child in zip(keyed, children, strict=True):
            if id(child) not in done:
                stack.append((child, _child_field(field, key) if key != "<<" else field, False))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise SuiteError(path, "", "is a directory, not a suite file")
        if not stat.S_ISREG(mode):
            raise SuiteError(path, "", "is not a regular file")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SuiteError(path, "", "file not found") from None
    except OSError as e:
        raise SuiteError(path, "", f"cannot read: {e.strerror or e}") from None
    except ValueError as e:  # e.g. a NUL byte in the name
        raise SuiteError(path, "", f"not a valid file name ({e})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SuiteError(path, "", f"larger than {MAX_FILE_BYTES // 1024} KiB; a suite is a few KB of YAML")
    try:
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark is fine
    except UnicodeDecodeError as e:
        bad = f"byte 0x{raw[e.start]:02x} at offset {e.start}"
        raise SuiteError(path, "", f"not UTF-8 text ({bad})") from None
    loader = None
    try:
        loader = _SuiteLoader(text)  # checks every character first
        node = loader.get_single_node()
        if node is None:
            raise SuiteError(path, "", "empty file: a suite is a YAML mapping of fields")
        _check_nodes(path, node)
        data = loader.construct_document(node)
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        code = ord(e.character) if isinstance(e.character, str) else e.character
        char = f"U+{code:04X}" if isinstance(code, int) else _show(code)
        raise SuiteError(path, "", f"invalid YAML at line {line}: character {char} is not allowed") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SuiteError(path, "", f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise SuiteError(path, "", f"invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise SuiteError(path, "", f"a suite must be a YAML mapping of fields (got a {_kind(data)})")
    return data


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _inside(target: Path, folder: Path | None) -> bool:
    return folder is not None and (target == folder or folder in target.parents)


def shipped_suites() -> Path:
    """bench's shipped suites (installed with the package; ``suites/`` of a source checkout
    links here). Variants anywhere may include them."""
    return Path(__file__).resolve().parent / "suites"


def find_suite(name_or_path: str) -> Path:
    """A suite file: the path itself when it exists, else the shipped suite of that name
    (``smoke`` or ``smoke.yaml``, ``paper/imdb-sentiment``), else the path (for the error)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    folder = shipped_suites()
    for candidate in (folder / name_or_path, folder / f"{name_or_path}.yaml"):
        try:
            if candidate.is_file() and _inside(candidate.resolve(), folder):
                return candidate
        except (OSError, ValueError):
            break
    return path


def _include_target(path: Path, include: str, root: Path) -> Path:
    """The resolved file ``include`` (from ``path``) names, which must lie inside ``root`` (the
    folder of the suite file run) or among the shipped suites."""
    if not include.strip():
        raise SuiteError(path, "include", "empty")
    if _CONTROL.search(include):
        raise SuiteError(path, "include", f"{_show(include)} is not a valid path (control characters)")
    try:
        target = (path.parent / include).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # symlink loop, name too long, NUL byte
        raise SuiteError(path, "include", f"{_show(include)} is not a valid path ({e})") from None
    if not (_inside(target, root) or _inside(target, shipped_suites())):
        raise SuiteError(
            path,
            "include",
            f"include {_show(include)} is outside the suite's folder {root} (an included file must"
            " lie in the folder of the suite file run or below it, or be one of bench's shipped suites)",
        )
    return target


def _load_raw(path: Path, chain: tuple[Path, ...], root: Path) -> dict[str, Any]:
    data = _read_yaml(path)
    try:
        SuiteFile.model_validate(data)
    except ValidationError as e:
        raise _validation_error(path, e, model=SuiteFile) from None
    include = data.pop("include", None)
    if include is None:
        return data
    target = _include_target(path, include, root)
    if target in chain or target == path.resolve():
        raise SuiteError(path, "include", f"include cycle through {_show(include)}")
    if len(chain) >= MAX_INCLUDE_DEPTH:
        raise SuiteError(path, "include", f"includes nested deeper than {MAX_INCLUDE_DEPTH}")
    try:
        if target.is_dir():
            raise SuiteError(path, "include", f"include {_show(include)} is a directory, not a suite file")
        if not target.exists():
            raise SuiteError(path, "include", f"included file {_show(include)} not found")
        if not target.is_file():
            raise SuiteError(path, "include", f"include {_show(include)} is not a regular file")
    except OSError as e:
        raise SuiteError(path, "include", f"cannot read {_show(include)}: {e.strerror or e}") from None
    base = _load_raw(target, chain + (path.resolve(),), root)
    base.pop("name", None)  # a variant is its own suite
    return _merge(base, data)


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


def _default_name(path: Path) -> str:
    """The file stem as a suite name: characters outside the slug set become ``-``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", path.stem).lstrip("._-")[:64]
    return name or "suite"


def load_suite(path: str | Path) -> Suite:
    """Reads, merges includes and validates a suite file; raises SuiteError (and nothing else)."""
    path = Path(path)
    try:
        return _load_suite(path)
    except SuiteError:
        raise
    except RecursionError:
        raise SuiteError(path, "", f"nested deeper than {MAX_YAML_DEPTH} levels") from None
    except Exception as e:  # noqa: BLE001 - a hostile file gets a message, never a traceback
        raise SuiteError(path, "", f"cannot be loaded ({type(e).__name__}: {e})") from None


def _load_suite(path: Path) -> Suite:
    try:
        root = path.absolute().parent.resolve()
    except (OSError, RuntimeError, ValueError) as e:
        raise SuiteError(path, "", f"not a valid path ({e})") from None
    data = _load_raw(path, (), root)
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise SuiteError(
                path,
                "name",
                "must be a short slug: letters, digits, '.', '_' and '-', starting with a letter or"
                f" digit, at most 64 characters (got {_show(name)})",
            )
    else:
        data["name"] = _default_name(path)
    if data.get("version") is None:
        raise SuiteError(path, "version", "missing (every suite declares a version)")
    if isinstance(data["version"], bool):
        raise SuiteError(path, "version", "expected a number or a string, not true/false")
    data["version"] = str(data["version"])
    if not NAME_RE.fullmatch(data["version"]):
        raise SuiteError(
            path,
            "version",
            "must be a number or a short slug (letters, digits, '.', '_', '-'; at most 64 characters)"
            f" (got {_show(data['version'])})",
        )
    for key in ("tasks", "seeds", "env_steps", "algorithms"):
        if key not in data:
            raise SuiteError(path, key, "missing")
    if isinstance(data.get("seeds"), int) and not isinstance(data["seeds"], bool):
        if not 1 <= data["seeds"] <= 10_000:
            raise SuiteError(path, "seeds", f"must be between 1 and 10000 (got {data['seeds']})")
        data["seeds"] = list(range(data["seeds"]))
    _check_bools(path, Suite, data, "")
    try:
        suite = Suite.model_validate({**data, "path": str(path)})
    except ValidationError as e:
        raise _validation_error(path, e, model=Suite) from None
    _check_semantics(path, suite, root)
    return suite


def _check_count(path: Path, field: str, n: int) -> None:
    if n <= 0:
        raise SuiteError(path, field, f"must be > 0 (got {n})")
    if n > MAX_STEPS:
        raise SuiteError(path, field, f"must be at most 1e11 (got {_show(n)})")


def _check_steps(path: Path, field: str, steps: Steps) -> None:
    # per-task keys need only be known tasks: a variant may narrow the task list
    if isinstance(steps, dict):
        for task, n in steps.items():
            if not _known(task):
                raise SuiteError(path, f"{field}.{task}", f"unknown task {task!r}")
            _check_count(path, f"{field}.{task}", n)
        return
    _check_count(path, field, steps)


def _check_semantics(path: Path, suite: Suite, root: Path | None = None) -> None:
    for i, task in enumerate(suite.tasks):
        if not _known(task):
            known = ", ".join([*TASKS, *LM_TASKS])
            raise SuiteError(path, f"tasks[{i}]", f"unknown task {_show(task)}; known: {known}")
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
                path,
                f"{where}.algo",
                f"unknown algorithm {_show(entry.algo)}; known: {', '.join(ALGORITHMS)}",
            )
        if entry.label is not None and not LABEL_RE.fullmatch(entry.label):
            raise SuiteError(
                path,
                f"{where}.label",
                "must start with a letter or digit and use only letters, digits, spaces and ._+=,:()[]-"
                f" (at most 64 characters; got {_show(entry.label)})",
            )
        for j, task in enumerate(entry.tasks or []):
            if task not in suite.tasks:
                raise SuiteError(path, f"{where}.tasks[{j}]", f"{_show(task)} is not a task of this suite")
        for task in entry.task_params:
            if not _known(task):
                raise SuiteError(path, f"{where}.task_params.{task}", f"unknown task {task!r}")
        if entry.env_steps is not None:
            _check_steps(path, f"{where}.env_steps", entry.env_steps)
        config = ALGORITHMS[entry.algo].config
        _check_param_bools(path, config, entry.params, f"{where}.params")
        for task, over in entry.task_params.items():
            _check_param_bools(path, config, over, f"{where}.task_params.{task}")
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
    if suite.alignment is not None:
        for task in [*suite.alignment.reference, *suite.alignment.task_preferences]:
            if task not in TASKS:
                raise SuiteError(path, f"alignment.{task}", f"unknown task {task!r}")
        for task, over in suite.alignment.task_preferences.items():
            _check_bools(path, PreferenceRecipe, over, f"alignment.task_preferences.{task}")
            try:
                PreferenceRecipe.model_validate({**suite.alignment.preferences.model_dump(), **over})
            except ValidationError as e:
                field = f"alignment.task_preferences.{task}"
                raise _validation_error(path, e, field, PreferenceRecipe) from None
        ppo = ALGORITHMS["ppo"]  # reference policies are the project's PPO on the task defaults
        for task, recipe in suite.alignment.reference.items():
            _check_bools(path, ppo.config, recipe.params, f"alignment.reference.{task}.params")
            try:
                ppo.config.model_validate({**ppo.task_defaults.get(task, {}), **recipe.params})
            except ValidationError as e:
                raise _validation_error(path, e, f"alignment.reference.{task}.params", ppo.config) from None
    if suite.lm is not None:
        _check_lm_paths(path, suite.lm, root or path.absolute().parent.resolve())
    # the run count, before any grid is built: a few list-valued params can make billions of cells
    counts = [
        (_cell_count(entry, task) * len(suite.seeds), i)
        for i, entry in enumerate(suite.algorithms)
        for task in entry.tasks or suite.tasks
    ]
    total = sum(n for n, _ in counts)
    if total > MAX_RUNS:
        largest, i = max(counts)
        raise SuiteError(
            path,
            f"algorithms[{i}].params" if largest * 2 > total else "algorithms",
            f"the suite expands to {total:.3g} runs (grid cells x tasks x seeds), more than the limit"
            f" of {MAX_RUNS}; split it or shorten its grid axes",
        )
    # every cell validates; run labels (with their grid suffixes) are safe and unique per task;
    # two entries may share a label stem (e.g. a strength sweep and a data-size sweep of a method)
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(suite.algorithms):
        for task in entry.tasks or suite.tasks:
            for label, _ in _grid(path, suite, i, entry, task):
                if len(label) > MAX_LABEL_CHARS:
                    raise SuiteError(
                        path,
                        f"algorithms[{i}].params",
                        f"run label {_show(label)} (label and grid values) is longer than {MAX_LABEL_CHARS}"
                        " characters",
                    )
                if _UNSAFE_LABEL.search(label):
                    raise SuiteError(
                        path,
                        f"algorithms[{i}].params",
                        f"run label {_show(label)} (label and grid values) has a character not allowed in"
                        ' labels (/ \\ < > $ & " ` or a control character)',
                    )
                if (label, task) in seen:
                    raise SuiteError(
                        path, f"algorithms[{i}].label", f"label {label!r} repeats for task {task}"
                    )
                seen.add((label, task))


def _check_lm_paths(path: Path, lm: LMSetup, root: Path) -> None:
    """Local paths in the ``lm:`` section (model, tokenizer, gold model, dataset, data files)
    must lie in the suite's folder or the artifact cache; hub names (``gpt2``, ``org/name``) are
    names. Paths are resolved as the loaders see them (from the working directory, symlinks
    followed)."""
    cache = cache_dir().absolute().resolve()
    fields: list[tuple[str, str | None, bool]] = [
        ("lm.model.base", lm.model.base, False),
        ("lm.tokenizer.name", lm.tokenizer.name, False),
    ]
    for prefix in ("hf:", "hf-rm:"):
        if lm.gold and lm.gold.startswith(prefix):
            fields.append(("lm.gold", lm.gold[len(prefix) :], False))
    if lm.corpus.source == "hf":
        fields.append(("lm.corpus.dataset", lm.corpus.dataset, False))
        fields.append(("lm.corpus.data_files", lm.corpus.data_files, True))
    for field, value, always_local in fields:
        if value is None:
            continue
        glob = not always_local and re.search(r"[*?\[\]]", value)  # data_files may be a glob
        if not value.strip() or _CONTROL.search(value) or glob:
            raise SuiteError(path, field, f"{_show(value)} is not a hub name or a path")
        if "://" in value:
            raise SuiteError(
                path, field, f"URLs are not allowed ({_show(value)}): name a hub resource or a local path"
            )
        try:
            hub_name = not always_local and _HUB_NAME.fullmatch(value) and not Path(value).exists()
            if hub_name:
                continue
            target = Path(value).absolute().resolve()
        except (OSError, RuntimeError, ValueError) as e:
            raise SuiteError(path, field, f"{_show(value)} is not a valid path ({e})") from None
        if not (_inside(target, root) or _inside(target, cache)):
            raise SuiteError(
                path,
                field,
                f"local path {_show(value)} is outside the suite's folder {root} and the artifact cache"
                f" {cache}: local models and data must lie in one of them (hub names such as org/name"
                " are fine)",
            )


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


def _axes(entry: AlgorithmEntry, task: str) -> tuple[dict[str, Any], dict[str, list]]:
    """(fixed params, grid axes) of one algorithm entry on one task."""
    algo = ALGORITHMS[entry.algo]
    base = dict(algo.task_defaults.get(task, {})) if entry.use_task_defaults else {}
    user = {**entry.params, **entry.task_params.get(task, {})}
    axes: dict[str, list] = {}
    for name, value in user.items():
        is_axis = isinstance(value, list) and (
            not _is_sequence_field(algo.config, name) or all(isinstance(v, list) for v in value)
        )
        if is_axis:
            axes[name] = value
        else:
            base[name] = value
    return base, axes


def _cell_count(entry: AlgorithmEntry, task: str) -> int:
    return math.prod(len(v) for v in _axes(entry, task)[1].values())


def _grid(path: Path, suite: Suite, i: int, entry: AlgorithmEntry, task: str):
    """Validated (label, config) cells of one algorithm entry on one task."""
    algo = ALGORITHMS[entry.algo]
    base, axes = _axes(entry, task)
    for name, values in axes.items():
        if not values:
            raise SuiteError(path, f"algorithms[{i}].params.{name}", "empty grid axis")
    if math.prod(len(v) for v in axes.values()) > MAX_RUNS:
        raise SuiteError(path, f"algorithms[{i}].params", f"the grid has more than {MAX_RUNS} cells")
    names = list(axes)
    cells = []
    for combo in itertools.product(*(axes[n] for n in names)):
        params = {**base, **dict(zip(names, combo, strict=True))}
        try:
            cfg = algo.config.model_validate(params)
        except ValidationError as e:
            origin = "task_params." + task if _from_task_params(e, entry, task) else "params"
            raise _validation_error(path, e, f"algorithms[{i}].{origin}", algo.config) from None
        label = entry.label or entry.algo
        varying = [(n, v) for n, v in zip(names, combo, strict=True) if len(axes[n]) > 1]
        if varying:
            label += "[" + ",".join(f"{n}={v}" for n, v in varying) + "]"
        cells.append((label, cfg.model_dump(mode="json")))
    return cells


def _from_task_params(err: ValidationError, entry: AlgorithmEntry, task: str) -> bool:
    try:
        loc = err.errors(include_url=False)[0]["loc"]
        return bool(loc) and loc[0] in entry.task_params.get(task, {})
    except Exception:  # noqa: BLE001
        return False


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
