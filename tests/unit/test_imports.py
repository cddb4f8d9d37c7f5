"""bench's imports run one way: cli -> executors -> suites -> algorithms -> tasks / evaluation ->
store, stats and utilities. Read from the source with ``ast``: every ``import`` of a bench module,
at the top of a file or inside a function (a lazy import is still a dependency), except those under
``if TYPE_CHECKING:``. A package's ``__init__`` importing its own submodules is not a cycle (Python
runs the package first); a submodule importing a *name* from its package's ``__init__`` is."""

from collections import defaultdict

from bench.fingerprint import import_graph as _import_graph


def import_graph() -> dict[str, set[str]]:
    """bench's import graph (the one code fingerprints follow), with every module a key."""
    return defaultdict(set, {k: set(v) for k, v in _import_graph().items()})


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


def _reaches(graph, source: str) -> set[str]:
    seen, todo = set(), [source]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_lower_layers_never_import_upper_ones():
    graph = import_graph()
    upper = {"bench.cli", "bench.executors", "bench.distributed"}
    for low in ("bench.store", "bench.stats", "bench.runtime", "bench.recorder", "bench.cache"):
        assert not _reaches(graph, low) & (upper | {"bench.suite", "bench.algos"}), low
    for module in [m for m in graph if m.startswith(("bench.algos", "bench.suite"))]:
        assert not _reaches(graph, module) & upper, module
    assert not graph["bench.runtime"], "bench.runtime is the bottom of the graph"
