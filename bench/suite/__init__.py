"""Suites: versioned YAML data (no code) -> validated ``Suite`` -> grid of ``RunSpec``.

Three jobs, one module each: ``reader`` reads a suite file as untrusted plain data (and resolves
where an ``include:`` may point), ``schema`` is the pydantic schema with its error messages,
``grid`` expands a suite into its runs; ``load`` ties them together and checks what the schema
cannot.

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

from bench.suite.errors import SuiteError
from bench.suite.grid import MAX_RUNS, RunSpec, expand
from bench.suite.load import MAX_INCLUDE_DEPTH, MAX_LABEL_CHARS, load_suite
from bench.suite.reader import MAX_FILE_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, find_suite, shipped_suites
from bench.suite.schema import (
    LABEL_RE,
    MAX_STEPS,
    NAME_RE,
    AlgorithmEntry,
    Evaluation,
    Steps,
    Suite,
    SuiteFile,
)

__all__ = [
    "LABEL_RE",
    "MAX_FILE_BYTES",
    "MAX_INCLUDE_DEPTH",
    "MAX_LABEL_CHARS",
    "MAX_RUNS",
    "MAX_STEPS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "NAME_RE",
    "AlgorithmEntry",
    "Evaluation",
    "RunSpec",
    "Steps",
    "Suite",
    "SuiteError",
    "SuiteFile",
    "expand",
    "find_suite",
    "load_suite",
    "shipped_suites",
]
