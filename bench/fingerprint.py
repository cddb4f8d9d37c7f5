"""Code fingerprints: which code a run's numbers came from, part of the run's identity.

An algorithm's fingerprint is ``{version}+{source hash}``:

* built-in: the hash covers the module of its train function and every bench module that module
  imports, directly or not (read from the source with ``ast``: lazy imports count), so an edit
  anywhere on the algorithm's path — its loss, the rollout, the evaluation protocol — changes it,
  and an edit elsewhere (a report, the CLI) does not;
* plugin: the hash covers every Python file of the plugin's top-level package, plus the bench
  modules it reaches through ``bench.api``; the distribution's name and version and the package's
  git revision (where it lives in a git checkout) are recorded alongside.

The fingerprint enters the run key, so a changed algorithm's runs are new runs: ``bench run`` trains
them again and the old ones stay in the store beside them (``bench run --pin-code`` keeps using
runs done under an earlier fingerprint instead).
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from functools import cache, lru_cache
from pathlib import Path

import bench

BENCH_ROOT = Path(bench.__file__).resolve().parent


@lru_cache(maxsize=1)
def bench_modules() -> dict[str, Path]:
    """Every module of the bench package: dotted name -> file."""
    out = {}
    for path in sorted(BENCH_ROOT.rglob("*.py")):
        parts = list(path.relative_to(BENCH_ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_names(tree: ast.AST, prefix: str = "bench", types: bool = False) -> list[str]:
    """Dotted names of every import of ``prefix`` modules in ``tree`` (function-level ones too),
    skipping ``if TYPE_CHECKING:`` blocks unless ``types``."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if not types and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.extend(f"{child.module}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return [n for n in found if n == prefix or n.startswith(prefix + ".")]


@lru_cache(maxsize=2)
def import_graph(types: bool = False) -> dict[str, frozenset[str]]:
    """bench module -> the bench modules it imports (a package's ``__init__`` counts as the
    package; importing a name from a package is an edge to the package); ``types``: the imports
    under ``if TYPE_CHECKING:`` too (the layer rules count them, code versions do not)."""
    modules = bench_modules()

    def owner(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in map(owner, imported_names(ast.parse(path.read_text()), types=types)):
            if target != name:
                graph[name].add(target)
    return {k: frozenset(v) for k, v in graph.items()}


def closure(module: str) -> list[str]:
    """``module`` and every bench module it reaches, sorted."""
    graph = import_graph()
    seen, todo = {module}, [module]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return sorted(seen)


def _hash_files(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()


def bench_source_hash(module: str) -> str:
    """Hash of ``module``'s bench closure (module names and file contents)."""
    modules = bench_modules()
    return _hash_files([modules[m] for m in closure(module) if m in modules], BENCH_ROOT.parent)


def artifact_code(module: str) -> str:
    """The code version of the artifacts ``module`` builds (reference policies, preference data,
    reward models, tokenizers, π_SFT): part of their cache keys, so that an artifact built by
    other code is built again instead of being reused."""
    return bench_source_hash(module)[:12]


def _git_rev(folder: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _train_module(train) -> str:
    return getattr(getattr(train, "func", train), "__module__", None) or "?"


@cache
def _fingerprint(name: str, version: str, module: str, origin_kind: str, distribution, dist_version) -> dict:
    if module == "bench" or module.startswith("bench."):
        return {"version": version, "source": bench_source_hash(module)[:12], "origin": "built-in"}
    top = module.split(".")[0]
    spec_module = sys.modules.get(top)
    files: list[Path] = []
    root = Path(".")
    if spec_module is not None and getattr(spec_module, "__file__", None):
        path = Path(spec_module.__file__).resolve()
        if path.name == "__init__.py":  # a package: all its Python files
            root = path.parent.parent
            files = sorted(path.parent.rglob("*.py"))
        else:
            root, files = path.parent, [path]
    h = hashlib.sha256(_hash_files(files, root).encode() if files else b"no source")
    h.update(bench_source_hash("bench.api").encode())  # the building blocks it reaches
    out = {"version": version, "source": h.hexdigest()[:12], "origin": origin_kind, "module": module}
    if distribution:
        out["distribution"], out["distribution_version"] = distribution, dist_version
    rev = _git_rev(files[0].parent) if files else None
    if rev:
        out["git_rev"] = rev
    return out


def algorithm_fingerprint(algo) -> dict:
    """{version, source, origin[, module, distribution, distribution_version, git_rev]} of an
    ``Algorithm``; ``code_id`` of it is what enters run keys."""
    o = algo.origin
    fp = dict(
        _fingerprint(algo.name, algo.version, _train_module(algo.train), o.kind, o.distribution, o.version)
    )
    batched = getattr(algo, "train_seeds", None)
    if batched is not None and fp["origin"] == "built-in":  # the seed-batched trainer's code too
        both = fp["source"] + bench_source_hash(_train_module(batched))
        fp["source"] = hashlib.sha256(both.encode()).hexdigest()[:12]
    return fp


def code_id(fingerprint: dict) -> str:
    """The short form shown in tables and hashed into run keys: ``{version}+{source hash}``."""
    return f"{fingerprint['version']}+{fingerprint['source']}"


def dumps(fingerprint: dict) -> str:
    return json.dumps(fingerprint, sort_keys=True)
