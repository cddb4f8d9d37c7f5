"""``load_suite``: read a file (and its includes), validate it against the schema, check what the
schema cannot (known tasks and algorithms, safe labels, paths, the size of the grid)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.algos import ALGORITHMS
from bench.cache import cache_dir
from bench.control.tasks import TASKS, Task
from bench.lm.tasks import LM_TASKS
from bench.pipeline.recipes import LMSetup, PreferenceRecipe
from bench.plugins import load as load_plugins
from bench.registry import Origin, PluginError, broken_algorithm, register_task
from bench.suite.errors import _CONTROL, SuiteError, _show
from bench.suite.grid import MAX_RUNS, _cell_count, _grid
from bench.suite.reader import MAX_YAML_DEPTH, _include_target, _inside, _merge, _read_yaml
from bench.suite.schema import (
    LABEL_RE,
    MAX_STEPS,
    NAME_RE,
    Steps,
    Suite,
    SuiteFile,
    TaskDeclaration,
    _check_bools,
    _check_param_bools,
    _validation_error,
)

MAX_INCLUDE_DEPTH = 8


MAX_LABEL_CHARS = 200  # a label with its grid suffix


# never in a label, grid suffix included: path separators, markup, mathtext, control characters
_UNSAFE_LABEL = re.compile(r"[/\\<>$&\"`\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


# a hub repository id (``gpt2``, ``org/name``); anything else in a path-like field is a local path
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


def _load_raw(path: Path, chain: tuple[Path, ...], root: Path) -> dict[str, Any]:
    data = _read_yaml(path)
    _check_declarations(path, data.get("tasks"))  # a declared task's own message, not the union's
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
    try:  # the registry with the installed plugins' algorithms and tasks
        load_plugins()
    except PluginError as e:
        raise SuiteError(path, "", str(e)) from None
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
    _split_declarations(path, data)
    _check_bools(path, Suite, data, "")
    try:
        suite = Suite.model_validate({**data, "path": str(path)})
    except ValidationError as e:
        raise _validation_error(path, e, model=Suite) from None
    _check_semantics(path, suite, root)
    return suite


def _check_declarations(path: Path, tasks: Any) -> list[TaskDeclaration]:
    """The task declarations (mappings) of a ``tasks:`` list, validated."""
    declared = []
    for i, item in enumerate(tasks if isinstance(tasks, list) else []):
        if isinstance(item, dict):
            _check_bools(path, TaskDeclaration, item, f"tasks[{i}]")
            try:
                declared.append(TaskDeclaration.model_validate(item))
            except ValidationError as e:
                raise _validation_error(path, e, f"tasks[{i}]", TaskDeclaration) from None
    return declared


def _split_declarations(path: Path, data: dict) -> None:
    """Declared tasks (mappings in ``tasks:``) move to ``task_declarations``, their ids stay."""
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not any(isinstance(t, dict) for t in tasks):
        return
    declared = _check_declarations(path, tasks)
    data["task_declarations"] = [d.model_dump() for d in declared]
    data["tasks"] = [t["id"] if isinstance(t, dict) else t for t in tasks]


def declare_task(declaration: TaskDeclaration, where: str) -> Task:
    """Registers a task declared in a suite (``where``: the suite file): the environment must be
    known to gymnasium; whether its actions are continuous is read from it unless declared."""
    import gymnasium as gym

    try:
        spec = gym.spec(declaration.id)
    except gym.error.Error as e:
        raise PluginError(f"{declaration.id!r} is not a registered gymnasium environment ({e})") from None
    continuous = declaration.continuous
    if continuous is None:
        env = gym.make(spec.id)
        try:
            space = env.action_space
        finally:
            env.close()
        if not isinstance(space, gym.spaces.Discrete | gym.spaces.Box):
            raise PluginError(f"{declaration.id!r}: action space {space} is not Discrete or Box")
        continuous = isinstance(space, gym.spaces.Box)
    task = Task(declaration.id, declaration.reward_threshold, declaration.random_score,
                declaration.solved_score, continuous=continuous)  # fmt: skip
    return register_task(task, Origin("suite", module=where))


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
    for declaration in suite.task_declarations or []:
        i = suite.tasks.index(declaration.id)
        if declaration.id in LM_TASKS:
            raise SuiteError(
                path, f"tasks[{i}]", f"{declaration.id!r} is an LM task; declare gymnasium tasks only"
            )
        try:
            declare_task(declaration, path.name)
        except PluginError as e:
            raise SuiteError(path, f"tasks[{i}]", str(e)) from None
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
            why = (
                broken_algorithm(entry.algo)
                or f"unknown algorithm {_show(entry.algo)}; known: {', '.join(ALGORITHMS)}"
            )
            raise SuiteError(path, f"{where}.algo", why)
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
        lm_tasks = {t for e in suite.algorithms for t in (e.tasks or suite.tasks) if t in LM_TASKS}
        for task in sorted(lm_tasks):
            try:  # the recipe's checks against the task (e.g. sft.loss: completion needs references)
                suite.lm.for_task(LM_TASKS[task])
            except ValueError as e:
                raise SuiteError(path, "lm.sft.loss", str(e).removeprefix("sft.loss: ")) from None
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
