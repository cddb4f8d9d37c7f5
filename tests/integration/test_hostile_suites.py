"""Malformed and hostile suite files (property-based): every one gets one ``error:`` line naming
the file, exit status 2, no traceback, and nothing is written (no store, no log folder).

Every generated suite is malformed *by construction*: a small valid suite (``BASE``,
``ALIGN_BASE``, ``LM_BASE``; checked valid below) with one or more mutations that each make it
invalid on their own (wrong types, unknown keys, out-of-range or non-finite numbers, bad names
and labels, grid explosions, YAML tags, duplicate keys, alias bombs, deep nesting, control
characters, non-UTF-8 bytes, include chains, cycles and escapes, local paths outside the suite's
folder). So no example can start training. ``bench run`` is called in-process.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.algos.ppo import PPOConfig
from bench.cli import main
from bench.lm.models import ModelRecipe
from bench.pipeline.recipes import Alignment, LMSetup, ReferenceRecipe
from bench.suite import (
    LABEL_RE,
    MAX_RUNS,
    NAME_RE,
    AlgorithmEntry,
    Evaluation,
    SuiteError,
    SuiteFile,
    load_suite,
)

REPO = Path(__file__).resolve().parents[2]

SETTINGS = dict(
    deadline=None,
    derandomize=True,  # reproducible in CI
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

BASE = {
    "name": "hostile",
    "version": 1,
    "description": "malformed on purpose",
    "tasks": ["CartPole-v1"],
    "seeds": [0],
    "env_steps": 64,
    "evaluation": {"eval_every": 32, "eval_episodes": 1, "temperatures": [1.0]},
    "algorithms": [
        {
            "algo": "ppo",
            "label": "ppo-x",
            "params": {
                "n_envs": 2,
                "n_steps": 16,
                "batch_size": 32,
                "n_epochs": 1,
                "lr": 0.001,
                "hidden_sizes": [8],
            },
        }
    ],
}
ALIGN_BASE = {
    "name": "hostile-align",
    "version": 1,
    "tasks": ["CartPole-v1"],
    "seeds": 1,
    "env_steps": 4,
    "evaluation": {"eval_every": 2, "eval_episodes": 1, "temperatures": [1.0]},
    "alignment": {
        "reference": {"CartPole-v1": {"env_steps": 64, "params": {"n_envs": 2, "n_steps": 16}}},
        "preferences": {"n_pairs": 10, "segment_length": 5, "episodes": 2},
    },
    "algorithms": [{"algo": "dpo", "params": {"batch_size": 4}}],
}
LM_BASE = {
    "name": "hostile-lm",
    "version": 1,
    "tasks": ["sentiment"],
    "seeds": 1,
    "env_steps": 2,
    "evaluation": {"eval_every": 1, "eval_episodes": 1, "temperatures": [1.0]},
    "lm": {
        "corpus": {"documents": 100},
        "tokenizer": {"vocab_size": 300},
        "model": {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64},
        "sft": {"steps": 1, "batch_size": 2},
        "prompts": {"train": 4, "test": 4},
        "max_new_tokens": 4,
        "preferences": {"completions": 2},
        "reward_model": {"steps": 1, "batch_size": 2},
    },
    "algorithms": [{"algo": "lm-dpo", "params": {"batch_size": 2}}],
}
BASES = {"base": BASE, "align": ALIGN_BASE, "lm": LM_BASE}

NAN, INF = float("nan"), float("inf")
A0 = ("algorithms", 0)
P0 = (*A0, "params")

# (base, path, values): every value makes the base suite invalid at that path
WRONG = [
    ("base", ("name",), [5, "", "../evil", "a b", "a/b", "x" * 65, "-lead", [1], {"a": 1}, None, "<b>"]),
    ("base", ("version",), [None, [1], {"a": 1}, "", "has space", "../x", "x" * 65, True, 1.5]),
    ("base", ("description",), [[1], {"a": 1}, 5, "x" * 10_001, "red \x1b[31m", "a\x00b"]),
    (
        "base",
        ("tasks",),
        [[], "CartPole-v1", ["Nope-v0"], [5], None, {"a": 1}, ["CartPole-v1", "CartPole-v1"]],
    ),
    (
        "base",
        ("seeds",),
        [0, -1, 10_001, "many", [], [0, 0], [-1], [2**31], [0.5], None, {"a": 1}, True, [True]],
    ),
    (
        "base",
        ("env_steps",),
        [
            0,
            -5,
            "fast",
            [64],
            None,
            10**12,
            1e30,
            2.5,
            True,
            {},
            {"Nope-v0": 64},
            {"CartPole-v1": 0},
            {"CartPole-v1": "x"},
            {"CartPole-v1": True},
        ],
    ),
    ("base", ("evaluation",), ["x", [1], None, 5]),
    (
        "base",
        ("evaluation", "eval_every"),
        [0, -1, "x", 10**12, {"Nope-v0": 5}, {"CartPole-v1": 0}, [1], None, 2.5],
    ),
    ("base", ("evaluation", "eval_episodes"), [0, 1001, "x", 2.5, None, [1], True]),
    (
        "base",
        ("evaluation", "temperatures"),
        [[], [-1.0], "hot", [NAN], [INF], [1e9], None, [[1.0]], [1.0] * 101],
    ),
    ("base", ("evaluation", "final_temperatures"), [[], [-0.5], "x", [NAN], [True]]),
    ("base", ("algorithms",), [[], {}, "ppo", [1], [[]], None, [None]]),
    ("base", (*A0, "algo"), ["trpo", 5, [], "", None, "ppo-gt"]),  # ppo-gt needs an alignment: section
    (
        "base",
        (*A0, "label"),
        ["../x", "a/b", "<b>x</b>", "$x$", "a\tb", "", "x" * 65, 5, "-x", "a\\b", "a\nb"],
    ),
    ("base", (*A0, "tasks"), [["Pendulum-v1"], ["Nope-v0"], "CartPole-v1", [5], {"a": 1}, ["sentiment"]]),
    ("base", P0, [[1], "x", 5, None]),
    (
        "base",
        (*P0, "lr"),
        ["fast", -1, 0, NAN, INF, -INF, "nan", "inf", [], ["fast"], {"a": 1}, None, [0.1, "x"], True],
    ),
    ("base", (*P0, "n_envs"), [0, 10**9, -3, "many", 2.5, True, [0, 4], None, [], [[4]], [4, True]]),
    (
        "base",
        (*P0, "hidden_sizes"),
        [[0], [10**9], "big", [[-1]], [8] * 65, [[8], [0]], None, [1.5], [8, True]],
    ),
    ("base", (*P0, "gamma"), [1.5, -0.1, "x", NAN]),
    ("base", (*P0, "activation"), ["sigmoid", 5, ["tanh", "<b>"], True]),
    (
        "base",
        (*A0, "task_params"),
        [
            {"Nope-v0": {}},
            {"CartPole-v1": {"lr": "x"}},
            [1],
            {"CartPole-v1": [1]},
            {"CartPole-v1": {"bogus": 1}},
            {"CartPole-v1": {"n_envs": True}},
        ],
    ),
    ("base", (*A0, "use_task_defaults"), ["maybe", [1], {"a": 1}, None]),
    ("base", (*A0, "env_steps"), [0, "x", -1, 10**12, {"Nope-v0": 5}, True]),
    ("align", ("alignment",), ["x", [1], 5]),
    (
        "align",
        ("alignment", "reference"),
        [
            {},
            "x",
            {"Nope-v0": {"env_steps": 5}},
            {"CartPole-v1": {}},
            {"CartPole-v1": {"env_steps": 0}},
            {"CartPole-v1": {"env_steps": True}},
            {"CartPole-v1": {"env_steps": 64, "params": {"bogus": 1}}},
            {"CartPole-v1": {"env_steps": 64, "params": {"lr": NAN}}},
            {"CartPole-v1": {"env_steps": 64, "params": {"n_envs": 10**6}}},
        ],
    ),
    (
        "align",
        ("alignment", "preferences"),
        [
            {"n_pairs": 0},
            {"heldout": 1.0},
            {"segment_length": 10**9},
            {"label_temperature": NAN},
            {"bogus": 1},
            "x",
        ],
    ),
    (
        "align",
        ("alignment", "task_preferences"),
        [
            {"Nope-v0": {}},
            {"CartPole-v1": {"n_pairs": -1}},
            {"CartPole-v1": {"bogus": 1}},
            {"CartPole-v1": {"n_pairs": True}},
        ],
    ),
    ("align", (*A0, "params", "beta"), [0, -1, NAN, INF, "x"]),
    ("lm", ("lm",), ["x", [1]]),
    ("lm", ("lm", "corpus"), [{"source": "web"}, {"source": "hf"}, {"documents": 0}, {"documents": 10**9}]),
    (
        "lm",
        ("lm", "model"),
        [{"n_layer": 0}, {"n_embd": 10**6}, {"dropout": 1.0}, {"bogus": 1}, {"n_head": True}],
    ),
    ("lm", ("lm", "sft"), [{"steps": -1}, {"lr": INF}, {"batch_size": 10**6}, {"warmup": 10**9}]),
    ("lm", ("lm", "sft", "loss"), ["x", 5]),
    ("lm", ("lm", "sft", "seed"), [-1, "x", 2**40, 1.5]),
    ("lm", ("lm", "sft", "loss"), ["completion"]),  # sentiment has no references
    ("lm", ("lm", "gold"), ["nonsense", "hf:", 5, "hf-rm:"]),
    ("lm", ("lm", "device"), ["tpu", 5]),
    ("lm", ("lm", "max_new_tokens"), [0, 10**6]),
    ("lm", (*A0, "params", "beta"), [0, NAN, "x"]),
]

# (base, path, limit): integers above the limit are invalid there
INT_LIMITS = [
    ("base", ("env_steps",), 10**11),
    ("base", ("seeds", 0), 2**31 - 2_000_001),
    ("base", ("evaluation", "eval_every"), 10**11),
    ("base", ("evaluation", "eval_episodes"), 1000),
    ("base", (*P0, "n_envs"), 4096),
    ("base", (*P0, "n_steps"), 1_000_000),
    ("base", (*P0, "batch_size"), 10_000_000),
    ("base", (*P0, "n_epochs"), 10_000),
    ("base", (*P0, "hidden_sizes", 0), 65_536),
    ("base", (*A0, "env_steps"), 10**11),
    ("align", ("alignment", "reference", "CartPole-v1", "env_steps"), 10**11),
    ("align", ("alignment", "preferences", "n_pairs"), 1_000_000),
    ("align", ("alignment", "preferences", "episodes"), 1_000_000),
    ("lm", ("lm", "sft", "steps"), 10_000_000),
    ("lm", ("lm", "prompts", "train"), 1_000_000),
    ("lm", ("lm", "model", "n_positions"), 8192),
]
# (base, path): floats there must be finite
FLOATS = [
    ("base", (*P0, "lr")),
    ("base", (*P0, "gamma")),
    ("base", (*P0, "clip_range")),
    ("base", (*P0, "ent_coef")),
    ("base", (*P0, "log_std_init")),
    ("base", ("evaluation", "temperatures", 0)),
    ("align", ("alignment", "preferences", "label_temperature")),
    ("align", ("alignment", "reference", "CartPole-v1", "target_return")),
    ("align", (*A0, "params", "beta")),
    ("lm", ("lm", "preferences", "tau")),
    ("lm", ("lm", "sft", "lr")),
]
# (base, path to a mapping, the model whose fields are its keys): any other key is unknown there
MAPPINGS = [
    ("base", (), SuiteFile),
    ("base", ("evaluation",), Evaluation),
    ("base", A0, AlgorithmEntry),
    ("base", P0, PPOConfig),
    ("align", ("alignment",), Alignment),
    ("align", ("alignment", "reference", "CartPole-v1"), ReferenceRecipe),
    ("lm", ("lm",), LMSetup),
    ("lm", ("lm", "model"), ModelRecipe),
]


# -- helpers ------------------------------------------------------------------------------------


def set_in(data, path, value, strict: bool = True):
    """``data`` with ``value`` at ``path``. Where the path cannot be followed: an error (a
    mutation that did nothing would leave a valid suite), or with ``strict=False`` (several
    mutations: an earlier one replaced a container, which keeps the suite invalid) no change."""
    node = data
    for depth, key in enumerate(path):
        ok = (isinstance(key, int) and isinstance(node, list) and len(node) > key) or (
            isinstance(key, str) and isinstance(node, dict) and (key in node or depth == len(path) - 1)
        )
        if not ok:
            assert not strict, f"mutation path {path} does not exist"
            return data
        if depth == len(path) - 1:
            node[key] = value
        else:
            node = node[key]
    return data


def sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


@contextlib.contextmanager
def sandbox():
    """(suite folder, store path, outside folder) in a fresh temporary directory, with the
    artifact cache inside it."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp).resolve()
        folder, outside = tmp / "suites", tmp / "outside"
        folder.mkdir()
        outside.mkdir()
        (outside / "outside.yaml").write_text(dump(BASE))  # valid: only the escape is wrong
        with mock.patch.dict(os.environ, {"BENCH_CACHE": str(tmp / "cache")}):
            yield folder, tmp / "store" / "bench.sqlite", outside


def assert_rejected(path: Path, store: Path, folder: Path) -> str:
    """``bench run path``: exit 2, one ``error:`` line naming a file in ``folder``, no traceback,
    nothing written. Returns the line."""
    before = sorted(p.name for p in folder.rglob("*"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(path), "--store", str(store), "-q"])
    text = err.getvalue()
    assert code == 2, text
    assert "Traceback" not in text + out.getvalue()
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith(f"error: {folder}"), lines[0]
    assert not store.exists() and not store.parent.exists()
    assert sorted(p.name for p in folder.rglob("*")) == before
    return lines[0]


def check_text(text: str | bytes, name: str = "suite.yaml") -> str:
    with sandbox() as (folder, store, _):
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return assert_rejected(path, store, folder)


def check_data(data) -> str:
    return check_text(dump(data))


def base(kind: str):
    return copy.deepcopy(BASES[kind])


# -- strategies ---------------------------------------------------------------------------------

wrong_value = st.sampled_from(WRONG).flatmap(
    lambda row: st.tuples(st.just(row[0]), st.just(row[1]), st.sampled_from(row[2]))
)


@st.composite
def huge_int(draw):
    kind, path, limit = draw(st.sampled_from(INT_LIMITS))
    value = draw(
        st.one_of(
            st.integers(min_value=limit + 1, max_value=10**90),
            st.integers(min_value=limit + 1, max_value=limit + 1000),
            st.floats(min_value=max(float(limit) * 2, 1e12), max_value=1e300),  # integral floats
        )
    )
    return kind, path, value


@st.composite
def non_finite(draw):
    kind, path = draw(st.sampled_from(FLOATS))
    return kind, path, draw(st.sampled_from([NAN, INF, -INF, "nan", "inf", "-inf", "Infinity", "NaN"]))


@st.composite
def unknown_key(draw):
    kind, path, model = draw(st.sampled_from(MAPPINGS))
    known = set(model.model_fields)
    key = draw(
        st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=20).filter(
            lambda k: k not in known
        )
    )
    value = draw(st.one_of(st.integers(0, 10), st.text(max_size=5), st.just([1])))
    return kind, (*path, key), value


bad_name = st.one_of(
    st.text(max_size=80).filter(lambda s: not NAME_RE.fullmatch(s)),
    st.sampled_from(["..", ".", "../../etc", "a" * 65, "x/y", "x\\y", "x\x00y", "\u202ex", "é"]),
)
bad_label = st.one_of(
    st.text(max_size=80).filter(lambda s: not LABEL_RE.fullmatch(s)),
    st.tuples(st.text("abc", min_size=1, max_size=5), st.sampled_from(list('/\\<>$&"`\x00\n\t\x1b\x7f'))).map(
        lambda t: t[0] + t[1] + t[0]
    ),
)


@st.composite
def bad_name_or_label(draw):
    if draw(st.booleans()):
        return "base", ("name",), draw(bad_name)
    return "base", (*A0, "label"), draw(bad_label)


@st.composite
def grid_explosion(draw):
    """A grid of valid values whose cells x seeds exceed MAX_RUNS."""
    params = {
        "lr": [round(1e-4 * (i + 1), 6) for i in range(draw(st.integers(10, 60)))],
        "gamma": [round(0.9 + 0.001 * i, 4) for i in range(draw(st.integers(10, 60)))],
        "ent_coef": [round(0.001 * i, 4) for i in range(draw(st.integers(10, 60)))],
        "n_epochs": list(range(1, draw(st.integers(2, 30)) + 1)),
    }
    seeds = draw(st.integers(1, 100))
    cells = math.prod(len(v) for v in params.values())
    if cells * seeds <= MAX_RUNS:
        params["clip_range"] = [0.1 + 0.01 * i for i in range(MAX_RUNS // cells + 1)]
    data = base("base")
    data["seeds"] = seeds
    data["algorithms"][0]["params"].update(params)
    return data


mutation = st.one_of(wrong_value, huge_int(), non_finite(), unknown_key(), bad_name_or_label())


def mutated(kind: str, mutations, strict: bool = True) -> dict:
    data = base(kind)
    for m_kind, path, value in mutations:
        assert m_kind == kind or not strict
        if m_kind == kind:
            data = set_in(data, path, copy.deepcopy(value), strict)
    return data


# -- the bases are valid: every failure below comes from a mutation ------------------------------


@pytest.mark.parametrize("kind", sorted(BASES))
def test_bases_are_valid(kind, tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(dump(BASES[kind]))
    with mock.patch.dict(os.environ, {"BENCH_CACHE": str(tmp_path / "cache")}):
        assert load_suite(path).name == BASES[kind]["name"]


def test_shipped_suites_stay_valid():
    for path in sorted((REPO / "suites").glob("**/*.yaml")):
        load_suite(path)


# -- properties ---------------------------------------------------------------------------------


@settings(max_examples=150, **SETTINGS)
@given(wrong_value)
def test_wrong_types_and_values(m):
    kind, path, value = m
    check_data(mutated(kind, [m]))


@settings(max_examples=60, **SETTINGS)
@given(st.one_of(huge_int(), non_finite()))
def test_huge_and_non_finite_numbers(m):
    check_data(mutated(m[0], [m]))


@settings(max_examples=50, **SETTINGS)
@given(unknown_key())
def test_unknown_keys(m):
    assert "unknown key" in check_data(mutated(m[0], [m]))


@settings(max_examples=60, **SETTINGS)
@given(bad_name_or_label())
def test_bad_names_and_labels(m):
    line = check_data(mutated("base", [m]))
    assert ": name:" in line or "label" in line


@settings(max_examples=20, **SETTINGS)
@given(grid_explosion())
def test_grid_explosions_are_refused_before_any_grid_is_built(data):
    assert f"more than the limit of {MAX_RUNS}" in check_data(data)


@settings(max_examples=60, **SETTINGS)
@given(st.sampled_from(sorted(BASES)), st.lists(mutation, min_size=2, max_size=4))
def test_several_mutations(kind, mutations):
    mutations = [m for m in mutations if m[0] == kind]  # a mutation is invalid for its own base only
    if len(mutations) < 2:
        mutations += [(kind, ("name",), "../x"), (kind, ("version",), None)]
    check_data(mutated(kind, mutations, strict=False))


TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!foo bar",
    "!<tag:example.com,2000:x> 1",
    "!!binary aGVsbG8=",
    "!!set {{a, b}}",
    "!!omap [{{a: 1}}]",
    "!!pairs [{{a: 1}}]",
    "!!timestamp 2024-01-01",
]


@st.composite
def hostile_text(draw) -> bytes:
    """A valid suite's text, hostile at the YAML level."""
    text = dump(base("base"))
    kind = draw(
        st.sampled_from(
            [
                "tag",
                "tag-deep",
                "dup",
                "dup-nested",
                "bomb",
                "recursive",
                "deep",
                "control",
                "non-utf8",
                "long-number",
                "key",
                "multi",
                "empty",
                "not-mapping",
                "syntax",
                "huge",
            ]
        )
    )
    if kind == "tag":
        tag = draw(st.sampled_from(TAGS)).format(marker="/tmp/bench-hostile-marker")
        key = draw(st.sampled_from(["description", "version", "name", "env_steps"]))
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key}:")) + "\n"
        return (text + f"{key}: {tag}\n").encode()
    if kind == "tag-deep":
        tag = draw(st.sampled_from(TAGS)).format(marker="/tmp/bench-hostile-marker")
        return sub(text, "lr: 0.001", f"lr: {tag}").encode()
    if kind == "dup":
        key = draw(
            st.sampled_from(
                ["name: again", "version: 2", "seeds: 3", "env_steps: 128", "tasks: [CartPole-v1]"]
            )
        )
        return (text + key + "\n").encode()
    if kind == "dup-nested":
        return sub(text, "    lr: 0.001", "    lr: 0.001\n    lr: 0.002").encode()
    if kind == "bomb":
        width, depth = draw(st.integers(3, 10)), draw(st.integers(3, 12))
        while width**depth < 200_000:
            depth += 1
        out = [f"x0: &a0 [{', '.join(['lol'] * width)}]"]
        out += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
        body = sub(text, "description: malformed on purpose\n", "")
        return (body + "\n".join(out) + f"\ndescription: *a{depth - 1}\n").encode()
    if kind == "recursive":
        return sub(text, "description: malformed on purpose", "description: &r [1, *r]").encode()
    if kind == "deep":
        n = draw(st.integers(33, 5000))
        value = "[" * n + "]" * n if draw(st.booleans()) else "{a: " * n + "1" + "}" * n
        return sub(text, "malformed on purpose", value).encode()
    if kind == "control":
        char = draw(
            st.sampled_from(
                [*map(chr, [*range(0, 9), 11, 12, *range(14, 32), 127, 0x80, 0x9F]), "\ufffe", "\uffff"]
            )
        )
        at = draw(st.integers(0, len(text)))
        return (text[:at] + char + text[at:]).encode("utf-8", "surrogatepass")
    if kind == "non-utf8":
        raw = text.encode()
        bad = draw(
            st.sampled_from(
                [
                    b"\xff",
                    b"\xfe",
                    b"\xc3\x28",
                    b"\x80",
                    b"\xed\xa0\x80",
                    b"\xf8\x88\x80\x80\x80",
                    b"\xe2\x82",
                    b"\xc0\xaf",
                ]
            )
        )
        if draw(st.booleans()):
            return text.encode(draw(st.sampled_from(["utf-16", "utf-32", "utf-16-be", "latin-1"]))) + bad
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + bad + raw[at:]
    if kind == "long-number":
        digits = draw(st.integers(101, 6000))
        key = draw(st.sampled_from(["env_steps", "version"]))
        return sub(text, f"{key}: ", f"{key}: {'9' * digits}\nx_{key}: ").encode()
    if kind == "key":
        key = draw(st.sampled_from(["1", "2.5", "true", "null", "~", "[a, b]", "{a: 1}", "yes", "!!int 3"]))
        if key.startswith(("[", "{")):
            return (text + f"? {key}\n: 1\n").encode()
        return (text + f"{key}: 1\n").encode()
    if kind == "multi":
        return (text + "---\n" + text).encode()
    if kind == "empty":
        return draw(
            st.sampled_from([b"", b"\n", b"   \n", b"# only a comment\n", b"---\n", b"~\n", b"null\n"])
        )
    if kind == "not-mapping":
        return draw(
            st.sampled_from([b"- a\n- b\n", b"hello\n", b"42\n", b"[1, 2]\n", b"'x'\n", b"true\n", b"3.5\n"])
        )
    if kind == "syntax":
        return (
            text
            + draw(
                st.sampled_from(
                    [
                        "tasks: [unclosed\n",
                        "\tx: 1\n",
                        "a: b: c\n",
                        "- item\n",
                        "'open\n",
                        "x: {a: 1\n",
                        "  bad indent: 1\n",
                        "@reserved: 1\n",
                        "x: *undefined\n",
                    ]
                )
            )
        ).encode()
    pad = draw(st.integers(1 << 20, (1 << 20) + 4096))  # huge
    return (text + "x: '" + "x" * pad + "'\n").encode()


@settings(max_examples=150, **SETTINGS)
@given(hostile_text())
def test_hostile_yaml(text):
    marker = Path("/tmp/bench-hostile-marker")
    check_text(text)
    assert not marker.exists()


@st.composite
def include_case(draw):
    """(files to write: name -> text or None for a folder or ("link", target), the suite run)."""
    kind = draw(
        st.sampled_from(
            [
                "depth",
                "cycle",
                "escape",
                "escape-nested",
                "symlink",
                "missing",
                "type",
                "dir",
                "bad-included",
                "fifo",
            ]
        )
    )
    valid = dump(base("base"))
    if kind == "depth":
        n = draw(st.integers(9, 14))
        files = {f"f{i}.yaml": f"include: f{i + 1}.yaml\n" for i in range(n)}
        files[f"f{n}.yaml"] = valid
        return files, "f0.yaml"
    if kind == "cycle":
        k = draw(st.integers(1, 8))
        files = {f"c{i}.yaml": f"include: c{(i + 1) % k}.yaml\n" for i in range(k)}
        files["c0.yaml"] = "version: 1\n" + files["c0.yaml"]
        return files, "c0.yaml"
    if kind in ("escape", "escape-nested"):
        target = draw(
            st.sampled_from(
                [
                    "../outside/outside.yaml",
                    "{outside}/outside.yaml",
                    "sub/../../outside/outside.yaml",
                    "./../outside/outside.yaml",
                    "/etc/hostname",
                    "/etc/passwd",
                    "/dev/zero",
                    "../../../../../../../../etc/passwd",
                    "~/outside.yaml",
                    "/",
                ]
            )
        )
        files = {"sub": None, "suite.yaml": f"version: 1\ninclude: '{target}'\n"}
        if kind == "escape-nested":
            files = {
                "sub": None,
                "sub/inner.yaml": f"include: '{target}'\n",
                "suite.yaml": "include: sub/inner.yaml\n",
            }
            if target.startswith(("../", "./")):
                files["sub/inner.yaml"] = f"include: '../{target}'\n"
        return files, "suite.yaml"
    if kind == "symlink":
        link = draw(st.sampled_from(["file", "dir"]))
        if link == "file":
            return {
                "link.yaml": ("link", "{outside}/outside.yaml"),
                "suite.yaml": "include: link.yaml\n",
            }, "suite.yaml"
        return {"linked": ("link", "{outside}"), "suite.yaml": "include: linked/outside.yaml\n"}, "suite.yaml"
    if kind == "missing":
        return {"suite.yaml": dump({**base("base"), "include": draw(st.text(max_size=40))})}, "suite.yaml"
    if kind == "type":
        value = draw(st.sampled_from(["[a.yaml]", "5", "{a: 1}", "true", "1.5", "''"]))
        return {"suite.yaml": valid + f"include: {value}\n"}, "suite.yaml"
    if kind == "dir":
        return {"sub": None, "suite.yaml": valid + "include: sub\n"}, "suite.yaml"
    if kind == "fifo":
        return {"pipe.yaml": ("fifo", ""), "suite.yaml": valid + "include: pipe.yaml\n"}, "suite.yaml"
    # the included file's name is dropped (a variant is its own suite): no name mutations there
    kind_, path, value = draw(wrong_value.filter(lambda m: m[0] == "base" and m[1] != ("name",)))
    return {
        "inner.yaml": dump(mutated("base", [(kind_, path, value)])),
        "suite.yaml": "include: inner.yaml\n",
    }, "suite.yaml"


@settings(max_examples=80, **SETTINGS)
@given(include_case())
def test_hostile_includes(case):
    files, top = case
    with sandbox() as (folder, store, outside):
        for name, content in files.items():
            path = folder / name
            if content is None:
                path.mkdir(parents=True, exist_ok=True)
            elif isinstance(content, tuple) and content[0] == "link":
                path.symlink_to(content[1].format(outside=outside))
            elif isinstance(content, tuple):
                os.mkfifo(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content.replace("{outside}", str(outside)))
        assert_rejected(folder / top, store, folder)


LM_PATH_FIELDS = [
    ("lm", "model", "base"),
    ("lm", "tokenizer", "name"),
    ("lm", "gold"),
    ("lm", "corpus", "dataset"),
    ("lm", "corpus", "data_files"),
]


@st.composite
def lm_path_case(draw):
    field = draw(st.sampled_from(LM_PATH_FIELDS))
    value = draw(
        st.sampled_from(
            [
                "{outside}",
                "{outside}/model",
                "/etc",
                "/etc/passwd",
                "/",
                "../outside",
                "sub/../../outside",
                "~/.ssh/id_rsa",
                "http://example.com/x",
                "file:///etc/passwd",
                "{folder}/link/x",
                "a\x00b",
                "a\nb",
                " ",
                "/tmp/../etc/x",
                "x**",
                "a[b]c",
            ]
        )
    )
    return field, value


@settings(max_examples=50, **SETTINGS)
@given(lm_path_case())
def test_local_paths_cannot_escape_the_suite_folder(case):
    field, value = case
    with sandbox() as (folder, store, outside):
        (folder / "link").symlink_to(outside)
        value = value.replace("{outside}", str(outside)).replace("{folder}", str(folder))
        data = base("lm")
        if field == ("lm", "gold"):
            data["lm"]["gold"] = "hf:" + value
        elif field[1] == "corpus":
            data["lm"]["corpus"].update(source="hf", dataset="csv")
            data["lm"]["corpus"][field[2]] = value
        else:
            set_in(data, field, value)
        path = folder / "suite.yaml"
        path.write_text(dump(data))
        assert_rejected(path, store, folder)


# -- examples -----------------------------------------------------------------------------------


def test_local_paths_inside_the_suite_folder_or_cache_and_hub_names_are_fine(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    data = base("lm")
    data["lm"]["model"]["base"] = str(tmp_path / "models" / "base")
    data["lm"]["tokenizer"]["name"] = "org/tokenizer"
    data["lm"]["gold"] = f"hf:{tmp_path / 'cache' / 'judge'}"
    data["lm"]["corpus"].update(source="hf", dataset="csv", data_files=str(tmp_path / "data" / "*.csv"))
    path = tmp_path / "suite.yaml"
    path.write_text(dump(data))
    assert load_suite(path).lm.model.base == str(tmp_path / "models" / "base")
    data["lm"]["model"]["base"] = "gpt2"
    data["lm"]["corpus"]["dataset"] = "stanfordnlp/imdb"
    path.write_text(dump(data))
    load_suite(path)


def test_python_tag_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    for tag in ("!!python/object/apply:os.system", "!!python/object/apply:subprocess.call"):
        path = tmp_path / "suite.yaml"
        path.write_text(dump(BASE) + f"x: {tag} [['touch', '{marker}']]\n")
        assert main(["run", str(path), "--store", str(tmp_path / "s" / "b.sqlite")]) == 2
        err = capsys.readouterr().err
        assert "invalid YAML: tag '!!python/object/apply:" in err
        assert "is not allowed; a suite is plain data" in err
        assert not marker.exists() and not (tmp_path / "s").exists()


def test_include_outside_the_suite_folder_is_refused(tmp_path):
    (tmp_path / "base.yaml").write_text(dump(BASE))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "suite.yaml").write_text("include: ../base.yaml\n")
    with pytest.raises(SuiteError, match=r"include: include '../base.yaml' is outside the suite's folder"):
        load_suite(folder / "suite.yaml")
    (folder / "ok.yaml").write_text(dump(BASE))  # a sibling or a file below is fine
    (folder / "variant.yaml").write_text("include: ok.yaml\nname: variant\nseeds: 2\n")
    assert load_suite(folder / "variant.yaml").seeds == [0, 1]
    (folder / "mine.yaml").write_text(f"include: {REPO / 'suites' / 'smoke.yaml'}\nname: mine\n")
    assert load_suite(folder / "mine.yaml").name == "mine"  # and so are the shipped suites


def test_duplicate_key_names_key_and_lines(tmp_path):
    path = tmp_path / "suite.yaml"
    text = dump(BASE)
    first = text.splitlines().index("seeds:") + 1
    path.write_text(text + "seeds: 3\n")
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    again = len(text.splitlines()) + 1
    assert str(e.value) == f"{path}: seeds: duplicate key at line {again} (first at line {first})"


def test_run_count_cap(tmp_path):
    data = base("base")
    data["seeds"] = 100
    data["algorithms"][0]["params"].update(
        lr=[0.001 * (i + 1) for i in range(40)], gamma=[0.9, 0.95, 0.99], n_epochs=[1, 2, 3, 4, 5, 6, 7, 8, 9]
    )
    path = tmp_path / "suite.yaml"
    path.write_text(dump(data))
    with pytest.raises(SuiteError, match=r"algorithms\[0\].params: the suite expands to 1.08e\+05 runs"):
        load_suite(path)


def test_alias_bomb_and_deep_nesting_stop_early(tmp_path):
    bomb = "\n".join(
        [f"x0: &a0 [{', '.join(['lol'] * 9)}]"]
        + [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    )
    for text, words in (
        (dump(BASE) + bomb + "\ndescription2: *a8\n", "YAML values (aliases expanded)"),
        (dump(BASE).replace("malformed on purpose", "[" * 100_000 + "]" * 100_000), "nested deeper"),
    ):
        path = tmp_path / "suite.yaml"
        path.write_text(text)
        with pytest.raises(SuiteError, match=r"aliases expanded|nested deeper") as e:
            load_suite(path)
        assert words in str(e.value)


def test_bad_suite_through_the_real_entry_point(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(dump(BASE) + "x: !!python/object/apply:os.system ['echo hi']\n")
    store = tmp_path / "store" / "bench.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", str(path), "--store", str(store)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith(f"error: {path}: x: invalid YAML: tag")
    assert len(proc.stderr.splitlines()) == 1
    assert not store.parent.exists()
