"""What bench can run: the algorithm and task registries, and how things get into them.

Built-in algorithms (``bench.algos``) and tasks (``bench.control.tasks``) register here through the
same ``register_algorithm`` / ``register_task`` a plugin uses (``bench.api`` exports them). The LM
tasks (``bench.lm.tasks``) are built in; ``task_domain`` tells a task's kind to those that read
results (reports, tables), so that they need no task module.
Plugins come in three ways:

* an installed distribution declares entry points in the groups ``bench.algorithms`` and
  ``bench.tasks``, loaded when bench first needs its registry (``load_plugins``): in
  ``bench.algorithms`` an entry point names one ``Algorithm`` record and its key is that
  algorithm's name; in ``bench.tasks`` it names a ``Task`` record or a list of them and its key is
  a label of the entry point only (a suite names tasks by their gymnasium ids);
* ``bench run SUITE --plugin mypkg.module`` imports a module that calls ``register_*`` itself;
* a suite declares a gymnasium environment as a task (``tasks: [{id: Acrobot-v1, ...}]``) — data,
  not code.

Every problem — a name clash, a plugin that fails to import, an entry point that is not a record,
a train function with the wrong parameters, a config that is not a pydantic model — is one
``PluginError`` with a one-line message. An installed entry point with such a problem registers
nothing and is kept in ``BROKEN`` (the CLI warns and goes on); a ``--plugin`` module's stops the
command. Every registered config refuses keys it does not declare.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

from pydantic import BaseModel

from bench.control.tasks import TASKS, Task
from bench.lm.tasks import LM_TASKS, LMTask

ALGORITHM_GROUP = "bench.algorithms"
TASK_GROUP = "bench.tasks"
DOMAINS = ("control", "lm")
# parameters of a train function, by kind: control, alignment on control (+ AlignmentContext),
# LM (+ LMContext); the contexts' types are in bench.artifacts
TRAIN_PARAMETERS = ("task", "cfg", "env_steps", "seed", "evaluator", "recorder")


class PluginError(Exception):
    """A plugin or a registration that cannot be used (one line)."""


@dataclass(frozen=True)
class Origin:
    """Where a registered algorithm or task comes from."""

    kind: str  # "built-in" | "entry point" | "plugin module" | "suite"
    distribution: str | None = None  # installed distribution providing it
    version: str | None = None  # its version
    module: str | None = None  # the module that defines it

    def describe(self) -> str:
        if self.kind == "built-in":
            return "built-in"
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip() + f" ({self.kind})"
        return f"{self.module} ({self.kind})" if self.module else self.kind


BUILT_IN = Origin("built-in", module="bench")


@dataclass(frozen=True)
class Algorithm:
    """An algorithm bench can run.

    ``train(task, cfg, env_steps, seed, evaluator, recorder[, context])``: trains for ``env_steps``
    (env steps; optimizer updates for LM and offline methods) from ``seed``; reports progress with
    ``recorder.steps(n)``, records curve points with ``recorder.curve(step, metric, value)``, hands
    ``evaluator(step, policy)`` a policy whenever ``evaluator.due(step)``, stops early when
    ``evaluator.stop`` is set, and ends with ``evaluator.final(step, policy)``. A policy is
    ``act(obs, temperature) -> actions``; for alignment tasks a ``PolicyAct``, whose distribution
    gives the KL to π_ref. ``aligned`` methods get the run's ``AlignmentContext`` (reference policy,
    preference data) and LM methods (``domain="lm"``) the run's ``LMContext`` as a seventh argument.

    ``version`` is part of every run's code fingerprint with a hash of the algorithm's source:
    bump it to mark a change of behaviour that the source hash alone would not show (a changed
    dependency, data file or default elsewhere).

    ``train_seeds(task, cfg, env_steps, seeds, evaluators, recorders)``, where given: trains the
    runs of several seeds together in one process (``bench run --batch-seeds``), the same
    computation as ``train`` per seed; returns per seed its policy, or the exception that failed it.
    ``aligned`` methods get the seeds' ``AlignmentContext`` list as a seventh argument.
    Its module is part of the code fingerprint.
    """

    name: str
    config: type[BaseModel]
    task_defaults: dict[str, dict]
    train: Callable
    description: str
    aligned: bool = False
    domain: str = "control"  # or "lm"
    version: str = "1"
    origin: Origin = field(default=BUILT_IN, compare=False)
    train_seeds: Callable | None = None


ALGORITHMS: dict[str, Algorithm] = {}
TASK_ORIGINS: dict[str, Origin] = {}


def _callable_name(fn: Callable) -> str:
    inner = getattr(fn, "func", fn)  # functools.partial
    return f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', repr(inner))}"


def check_algorithm(algo: object) -> Algorithm:
    """``algo`` as a usable ``Algorithm``, or a ``PluginError`` saying what is wrong with it."""
    if not isinstance(algo, Algorithm):
        raise PluginError(f"expected a bench.api.Algorithm record, got {type(algo).__name__}")
    name = algo.name
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise PluginError(f"algorithm name {name!r} must be letters, digits, '-', '_' or '.'")
    if not (isinstance(algo.config, type) and issubclass(algo.config, BaseModel)):
        raise PluginError(
            f"algorithm {name!r}: config must be a pydantic BaseModel class, got {algo.config!r}"
        )
    if algo.domain not in DOMAINS:
        raise PluginError(
            f"algorithm {name!r}: domain must be one of {', '.join(DOMAINS)}, got {algo.domain!r}"
        )
    if not isinstance(algo.task_defaults, dict) or not all(
        isinstance(v, dict) for v in algo.task_defaults.values()
    ):
        raise PluginError(f"algorithm {name!r}: task_defaults must map task ids to dicts of parameters")
    if not isinstance(algo.version, str) or not algo.version:
        raise PluginError(f"algorithm {name!r}: version must be a non-empty string")
    if not callable(algo.train):
        raise PluginError(f"algorithm {name!r}: train must be callable")
    expected = len(TRAIN_PARAMETERS) + (1 if algo.aligned or algo.domain == "lm" else 0)
    try:
        inspect.signature(algo.train).bind(*range(expected))
    except TypeError:
        context = {True: " and the run's context (7 in all)", False: ""}[expected > len(TRAIN_PARAMETERS)]
        raise PluginError(
            f"algorithm {name!r}: train {_callable_name(algo.train)} must take the positional parameters"
            f" ({', '.join(TRAIN_PARAMETERS)}){context}"
        ) from None
    except ValueError:  # no signature (a builtin): trust it
        pass
    return algo


def _refuse_unknown_keys(config: type[BaseModel]) -> None:
    """Makes ``config`` refuse keys it does not declare: pydantic's default drops them, so a
    misspelled parameter in a suite would train with the default without a word. Set on the
    plugin's own class, which stays the class its train function receives (and picklable)."""
    if config.model_config.get("extra") != "forbid":
        config.model_config = {**config.model_config, "extra": "forbid"}
        config.model_rebuild(force=True)


def register_algorithm(algo: Algorithm, origin: Origin | None = None) -> Algorithm:
    """Adds ``algo`` to the registry, its config made to refuse unknown keys; a second algorithm
    of the same name is a ``PluginError`` (registering the very same record again is a no-op)."""
    algo = check_algorithm(algo)
    origin = origin or (plugin_origin() if _current_plugin else None)
    if origin is not None:
        object.__setattr__(algo, "origin", origin)
    old = ALGORITHMS.get(algo.name)
    if old is not None and old is not algo:
        raise PluginError(
            f"algorithm {algo.name!r} from {algo.origin.describe()} clashes with the one from"
            f" {old.origin.describe()}: give it another name"
        )
    _refuse_unknown_keys(algo.config)
    ALGORITHMS[algo.name] = algo
    return algo


def find_task(task_id: str) -> Task | LMTask | None:
    """The task record of ``task_id`` (a control or an LM task), None for a task not known here
    (one of an imported or older store, a plugin's that is not loaded)."""
    return LM_TASKS.get(task_id) or TASKS.get(task_id)


def task_domain(task_id: str) -> str | None:
    """``"lm"`` for an LM task, ``"control"`` for a control task, None for a task not known here."""
    task = find_task(task_id)
    return None if task is None else "lm" if isinstance(task, LMTask) else "control"


def check_task(task: object) -> Task:
    if not isinstance(task, Task):
        raise PluginError(f"expected a bench.api.Task record, got {type(task).__name__}")
    if not isinstance(task.id, str) or not task.id:
        raise PluginError(f"task id {task.id!r} must be a gymnasium environment id")
    for attr in ("reward_threshold", "random_score", "solved_score"):
        value = getattr(task, attr)
        if not isinstance(value, int | float) or value != value or abs(value) == float("inf"):
            raise PluginError(f"task {task.id!r}: {attr} must be a finite number, got {value!r}")
    if task.solved_score == task.random_score:
        raise PluginError(f"task {task.id!r}: solved_score must differ from random_score")
    return task


def register_task(task: Task, origin: Origin | None = None) -> Task:
    """Adds a control task; the same id with other bounds is a ``PluginError``."""
    task = check_task(task)
    origin = origin or (plugin_origin() if _current_plugin else BUILT_IN)
    old = TASKS.get(task.id)
    if old is not None and old != task:
        raise PluginError(
            f"task {task.id!r} from {origin.describe()} clashes with the one from"
            f" {TASK_ORIGINS.get(task.id, BUILT_IN).describe()} (other bounds or settings)"
        )
    TASKS[task.id] = task
    TASK_ORIGINS.setdefault(task.id, origin)
    return task


# -- discovery --------------------------------------------------------------------------------

_entry_points_loaded = False
_plugin_modules: list[str] = []


def _distribution_of(module: str) -> tuple[str | None, str | None]:
    top = module.split(".")[0]
    names = metadata.packages_distributions().get(top, [])
    if not names:
        return None, None
    try:
        return names[0], metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return names[0], None


@dataclass(frozen=True)
class BrokenEntryPoint:
    """An installed distribution's entry point that cannot be used: what it provides is
    unavailable, and the rest of bench goes on."""

    group: str
    name: str  # its key: in ALGORITHM_GROUP, the name of the algorithm it provides
    value: str  # "module:object"
    distribution: str | None
    version: str | None
    reason: str  # one line

    @property
    def plugin(self) -> str:
        """The plugin as messages name it: its distribution and version."""
        return f"{self.distribution} {self.version or ''}".strip() if self.distribution else self.value

    @property
    def remedy(self) -> str:
        """What the user can do about it, e.g. ``fix it, or remove it: pip uninstall NAME``."""
        removal = f"pip uninstall {self.distribution}" if self.distribution else "uninstall its package"
        return f"fix it, or remove it: {removal}"

    @property
    def unavailable(self) -> str:
        """What bench goes without: the algorithm its key names, or the tasks it names."""
        return f"algorithm {self.name!r}" if self.group == ALGORITHM_GROUP else f"the tasks of {self.name!r}"

    def describe(self) -> str:
        """Which entry point and what is wrong with it (one line)."""
        return f"entry point {self.name!r} = {self.value!r} of group {self.group}: {self.reason}"


BROKEN: list[BrokenEntryPoint] = []


def broken_algorithm(name: str) -> str | None:
    """Why algorithm ``name`` is missing when an installed plugin that provides it cannot be used
    (one line with the remedy); None otherwise."""
    for broken in BROKEN:
        if broken.group == ALGORITHM_GROUP and broken.name == name:
            return (f"algorithm {name!r} is provided by installed plugin {broken.plugin}, which cannot be "
                    f"used: {broken.reason} ({broken.remedy})")  # fmt: skip
    return None


def broken_plugin_warnings() -> list[str]:
    """One line per installed plugin with entry points in ``BROKEN``: which, why, how to remove it."""
    by_plugin: dict[str, list[BrokenEntryPoint]] = {}
    for broken in BROKEN:
        by_plugin.setdefault(broken.plugin, []).append(broken)
    return [
        f"installed plugin {plugin} cannot be used; left out: {', '.join(b.unavailable for b in entries)}"
        f" ({'; '.join(b.describe() for b in entries)}); the rest goes on ({entries[0].remedy})"
        for plugin, entries in by_plugin.items()
    ]


def _register_entry_point(ep: metadata.EntryPoint, group: str, origin: Origin) -> None:
    """Loads ``ep`` and registers what it names; a ``PluginError`` (one line) if it cannot be used."""
    try:
        obj = ep.load()
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure of plugin code is one line
        raise PluginError(" ".join(f"{type(e).__name__}: {e}".split())) from None
    if group == TASK_GROUP:
        for task in [check_task(t) for t in (obj if isinstance(obj, list | tuple) else [obj])]:
            register_task(task, origin)
        return
    if isinstance(obj, list | tuple):
        raise PluginError(f"got {len(obj)} records; an entry point provides one algorithm, under its name")
    algo = check_algorithm(obj)
    if algo.name != ep.name:  # the key is how bench names an algorithm whose plugin is broken
        raise PluginError(
            f"the entry point's name {ep.name!r} differs from the algorithm's name {algo.name!r}"
        )
    register_algorithm(algo, origin)


def load_entry_points() -> None:
    """Registers the algorithms and tasks of every installed distribution's entry points (once).
    An entry point that cannot be used goes into ``BROKEN`` instead; the others are registered."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for group in (TASK_GROUP, ALGORITHM_GROUP):
        for ep in metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            name, version = getattr(dist, "name", None), getattr(dist, "version", None)
            try:
                _register_entry_point(ep, group, Origin("entry point", name, version, ep.module))
            except PluginError as e:
                BROKEN.append(BrokenEntryPoint(group, ep.name, ep.value, name, version, str(e)))


def import_plugin(module: str) -> None:
    """Imports ``module`` (``--plugin``), which registers algorithms or tasks when imported."""
    if module in _plugin_modules:
        return
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise PluginError(f"--plugin {module!r} is not a module name (e.g. mypkg.algorithms)")
    _current_plugin.append(module)
    try:
        importlib.import_module(module)
    except PluginError as e:
        raise PluginError(f"plugin {module}: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise PluginError(f"plugin {module} cannot be imported: {type(e).__name__}: {e}") from None
    except SystemExit as e:
        raise PluginError(f"plugin {module} exited while being imported (exit status {e.code})") from None
    finally:
        _current_plugin.pop()
    _plugin_modules.append(module)


_current_plugin: list[str] = []


def plugin_origin(module: str | None = None) -> Origin:
    """The origin of a registration made while ``module`` (default: the plugin being imported) runs."""
    module = module or (_current_plugin[-1] if _current_plugin else None)
    dist, version = _distribution_of(module) if module else (None, None)
    return Origin("plugin module", dist, version, module)
