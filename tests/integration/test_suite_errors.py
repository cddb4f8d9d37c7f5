"""Malformed suites: one message naming the file and the field, exit status 2, nothing written."""

import pytest

from bench.cli import main

BASE = """
version: 1
tasks: [CartPole-v1]
seeds: 1
env_steps: 1000
algorithms:
  - algo: ppo
"""

CASES = [
    # (suite text, expected field in the message, expected words)
    (BASE.replace("CartPole-v1", "NoSuchTask-v0"), "tasks[0]", "unknown task"),
    (BASE.replace("algo: ppo", "algo: trpo-xl"), "algorithms[0].algo", "unknown algorithm"),
    (
        BASE.replace("algo: ppo", "algo: ppo\n    params: {lr: fast}"),
        "algorithms[0].params.lr",
        "valid number",
    ),
    (
        BASE.replace("algo: ppo", "algo: ppo\n    params: {learning_rate: 0.1}"),
        "algorithms[0].params.learning_rate",
        "unknown key",
    ),
    (BASE + "colour: blue\n", "colour", "unknown key"),
    # unknown keys name the valid ones, the closest first
    (
        BASE.replace("algo: ppo", "algo: ppo\n    params: {clip_rnage: 0.1}"),
        "algorithms[0].params.clip_rnage",
        "unknown key (did you mean 'clip_range', 'clip_range_vf'? valid keys: activation, batch_size,",
    ),
    (BASE + "evaluaton: {eval_every: 10}\n", "evaluaton", "did you mean 'evaluation'?"),
    (BASE + "evaluation: {eval_episdes: 3}\n", "evaluation.eval_episdes", "did you mean 'eval_episodes'"),
    (BASE.replace("seeds: 1", "seeds: many"), "seeds", ""),
    (BASE.replace("env_steps: 1000", "env_steps: -5"), "env_steps", "> 0"),
    (BASE.replace("version: 1\n", ""), "version", "missing"),
    (BASE + "include: missing.yaml\n", "include", "not found"),
    (BASE + "evaluation: {eval_every: 0}\n", "evaluation.eval_every", "greater than 0"),
    (BASE + "evaluation: {temperatures: [-1.0]}\n", "evaluation.temperatures", ">= 0"),
    ("- just\n- a list\n", "", "mapping"),
    ("tasks: [unclosed\n", "", "invalid YAML"),
    ("x: !!python/object/apply:os.system ['echo hi']\n", "", "invalid YAML"),
]


@pytest.mark.parametrize("text,field,words", CASES)
def test_malformed_suite_exit_2_names_file_and_field(write_suite, tmp_path, capsys, text, field, words):
    path = write_suite(text)
    store = tmp_path / "store" / "bench.sqlite"
    code = main(["run", str(path), "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {path}: {field}")
    assert words in err
    assert len(err.strip().splitlines()) == 1
    assert not store.exists() and not store.parent.exists()


def test_include_cycle(write_suite, tmp_path, capsys):
    write_suite(BASE + "include: b.yaml\n", "a.yaml")
    b = write_suite("include: a.yaml\n", "b.yaml")
    assert main(["run", str(b), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "include cycle" in capsys.readouterr().err


def test_include_merges_and_overrides(write_suite):
    from bench.suite import expand, load_suite

    write_suite(BASE, "base.yaml")
    variant = write_suite("include: base.yaml\nname: variant\nseeds: [3, 4]\n", "variant.yaml")
    suite = load_suite(variant)
    assert suite.name == "variant" and suite.seeds == [3, 4] and suite.tasks == ["CartPole-v1"]
    assert [s.seed for s in expand(suite)] == [3, 4]


def test_bad_param_in_include_names_the_included_file(write_suite, tmp_path, capsys):
    base = write_suite(BASE.replace("algo: ppo", "algo: ppo\n    bogus: 1"), "base.yaml")
    variant = write_suite("include: base.yaml\n", "variant.yaml")
    assert main(["run", str(variant), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert str(base) in capsys.readouterr().err


def test_unknown_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "file not found" in capsys.readouterr().err
