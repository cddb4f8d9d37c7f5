"""bench's layers, as rules on its imports (docs/development.md draws them). Read from the source with
``ast``: every ``import`` of a bench module, at the top of a file or inside a function (a lazy import
is still a dependency). The cycle check follows the imports that run (those under ``if
TYPE_CHECKING:`` do not); the layer rules count those too (a type is a dependency of the reader). A
package's ``__init__`` importing its own submodules is not a cycle (Python runs the package first);
a submodule importing a *name* from its package's ``__init__`` is.

Layers, top to bottom; a module imports its own layer and those below, never one above:

    cli -> commands (compare, report, import, replicate) -> results (and the claims registry,
    over-optimisation) -> executors -> suite ->
    pipeline (builders, contexts, keys) -> algorithms (and their registry, the public API) ->
    evaluation -> artifacts (what a method receives; the pipeline's recipes) -> tasks -> foundation

and, beyond the order:

* the suite reader takes only the pipeline's recipes (pure data) from the pipeline, and the
  pipeline package's ``__init__`` imports nothing (importing the recipes runs it);
* the executors get a run's context through the pipeline's one door, ``bench.pipeline.context``;
* the commands and results learn a task's kind from the task registry, not from a task module.

``python -m tests.unit.test_imports`` prints the imports that break a rule, one a line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

from bench.fingerprint import BENCH_ROOT
from bench.fingerprint import import_graph as _import_graph

# top to bottom; a module belongs to the layer of its longest matching prefix ("bench" itself: exact)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("bench.cli", "bench.__main__")),
    ("commands", ("bench.compare", "bench.report", "bench.importer", "bench.replicate")),
    ("results", ("bench.results", "bench.gate", "bench.coverage", "bench.claims", "bench.overopt")),
    ("executors", ("bench.executors", "bench.distributed", "bench.rehearse")),
    ("suite", ("bench.suite",)),
    ("pipeline", ("bench.pipeline",)),
    ("algorithms", ("bench.algos", "bench.api", "bench.plugins", "bench.registry")),
    ("evaluation", ("bench.evaluation", "bench.lm_evaluation")),
    ("artifacts", ("bench.artifacts", "bench.pipeline.recipes")),
    ("tasks", ("bench.control", "bench.lm")),
    (
        "foundation",
        (
            "bench",
            "bench.store",
            "bench.cache",
            "bench.recorder",
            "bench.fingerprint",
            "bench.runtime",
            "bench.machine",
            "bench.memory",
            "bench.safeio",
            "bench.bands",
            "bench.stats",
        ),
    ),
]
PIPELINE_FOR_THE_SUITE = {"bench.pipeline.recipes"}
PIPELINE_FOR_THE_EXECUTORS = {"bench.pipeline.context"}
TASK_REGISTRY_USERS = ("bench.report", "bench.compare", "bench.importer", "bench.replicate", "bench.results")


def import_graph() -> dict[str, set[str]]:
    """bench's import graph (the one code fingerprints follow), with every module a key."""
    return defaultdict(set, {k: set(v) for k, v in _import_graph().items()})


def typed_import_graph() -> dict[str, set[str]]:
    """As ``import_graph``, with the imports under ``if TYPE_CHECKING:`` too."""
    return defaultdict(set, {k: set(v) for k, v in _import_graph(types=True).items()})


def _within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> int | None:
    """Index of ``module``'s layer in ``LAYERS`` (0 = top), None where no layer names it."""
    best, depth = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or (p != "bench" and module.startswith(p + "."))) and len(p) > depth:
                best, depth = i, len(p)
    return best


def broken_rules(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a layer rule, as ``importer -> imported: rule``, sorted."""
    out = []
    for module in sorted(graph):
        mine = layer_of(module)
        if mine is None:
            out.append(f"{module}: in no layer (add it to LAYERS)")
            continue
        for target in sorted(graph[module]):
            theirs = layer_of(target)
            if theirs is not None and theirs < mine:
                out.append(f"{module} -> {target}: {LAYERS[mine][0]} imports {LAYERS[theirs][0]}")
            if _within(module, ("bench.suite",)) and _within(target, ("bench.pipeline",)):
                if target not in PIPELINE_FOR_THE_SUITE:
                    out.append(f"{module} -> {target}: the suite takes only the recipes from the pipeline")
            if module == "bench.executors" and _within(target, ("bench.pipeline",)):
                if target not in PIPELINE_FOR_THE_EXECUTORS:
                    out.append(f"{module} -> {target}: executors ask bench.pipeline.context for a context")
            if _within(module, TASK_REGISTRY_USERS) and _within(target, ("bench.control", "bench.lm")):
                out.append(f"{module} -> {target}: a task's kind comes from bench.registry")
    for target in sorted(graph.get("bench.pipeline", ())):
        out.append(f"bench.pipeline -> {target}: the pipeline's __init__ imports nothing")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in list(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles(defaultdict(set, {"a": {"b"}, "b": set()})) == []


def test_bench_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_rule_checker_sees_each_kind_of_break():
    graph = defaultdict(
        set,
        {
            "bench.lm.gold": {"bench.algos.ppo"},  # a task reaching up to an algorithm
            "bench.suite.load": {"bench.pipeline.lm"},  # the suite reader taking a builder
            "bench.executors": {"bench.pipeline.control"},  # a context built past the door
            "bench.report.tables": {"bench.lm.tasks"},  # a report asking a task module
            "bench.store": {"bench.suite"},  # the foundation reaching up (types count)
            "bench.pipeline": {"bench.pipeline.lm"},  # a package init the suite's import runs
            "bench.newmodule": set(),
        },
    )
    assert broken_rules(graph) == [
        "bench.executors -> bench.pipeline.control: executors ask bench.pipeline.context for a context",
        "bench.lm.gold -> bench.algos.ppo: tasks imports algorithms",
        "bench.newmodule: in no layer (add it to LAYERS)",
        "bench.report.tables -> bench.lm.tasks: a task's kind comes from bench.registry",
        "bench.store -> bench.suite: foundation imports suite",
        "bench.suite.load -> bench.pipeline.lm: the suite takes only the recipes from the pipeline",
        "bench.pipeline -> bench.pipeline.lm: the pipeline's __init__ imports nothing",
    ]
    assert layer_of("bench") == layer_of("bench.stats") and layer_of("bench.pipeline.recipes") == 8


def test_every_import_follows_the_layers():
    assert broken_rules(typed_import_graph()) == []


def test_the_recipes_are_pure_data():
    """Importing the recipes, as the suite reader does, imports no builder, no algorithm, no torch."""
    path = os.pathsep.join([str(BENCH_ROOT.parent), os.environ.get("PYTHONPATH", "")])
    code = "import sys, bench.pipeline.recipes; print(*sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": path})  # fmt: skip
    loaded = done.stdout.split()
    assert "torch" not in loaded
    reached = [m for m in loaded if m.startswith(("bench.algos", "bench.pipeline."))]
    assert reached == ["bench.pipeline.recipes"]


def test_the_foundation_is_a_floor():
    graph = import_graph()
    assert not graph["bench.runtime"], "bench.runtime is the bottom of the graph"


if __name__ == "__main__":
    print("\n".join(broken_rules(typed_import_graph())) or "no import breaks a rule")
