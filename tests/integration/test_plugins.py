"""Bring your own code: the example plugin installed (entry points), a ``--plugin`` module, tasks
declared in a suite, code fingerprints in run keys (an edited algorithm re-runs exactly its runs),
``--pin-code``, and one-line errors (exit 2, nothing written) for plugins that cannot be used.

Plugins are installed with ``pip install --target`` into a folder that only the ``bench``
subprocesses of a test see (``PYTHONPATH``), so the test environment's registry stays bench's own.
"""

import importlib.metadata
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bench-plugin-example"


def bench(cwd: Path, *args: str, site: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENCH_CACHE": str(cwd / "cache")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def install(source: Path, site: Path) -> None:
    """pip-installs a plugin package into ``site`` (no network, no build isolation)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), "--upgrade", str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def codes(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        query = "SELECT algo, task, status, code FROM runs ORDER BY algo, task, ended_at"
        return db.execute(query).fetchall()


TINY = """
name: plugin-tiny
version: 1
tasks: [CartPole-v1, LineWalk-v0]
seeds: 1
env_steps: 1024
evaluation: {eval_every: 512, eval_episodes: 2, temperatures: [0.0, 1.0]}
algorithms:
  - algo: dual-clip-ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: 2}
  - algo: ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: 2}
"""


@pytest.mark.slow  # 60 s: a pip install and eight bench processes
def test_installed_plugin_runs_and_an_edit_reruns_exactly_its_runs(tmp_path):
    source = tmp_path / "plugin"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp_path / "site"
    install(source, site)
    listed = bench(tmp_path, "list", site=site)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"dual-clip-ppo .*\[bench-plugin-example 0\.1\.0 \(entry point\)\]", listed.stdout)
    assert re.search(r"LineWalk-v0 .*\[bench-plugin-example 0\.1\.0 \(entry point\)\]", listed.stdout)

    (tmp_path / "s.yaml").write_text(TINY)
    first = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "-q", site=site)
    assert first.returncode == 0, first.stderr
    assert "4 done, 0 failed" in first.stderr
    rows = codes(tmp_path / "b.sqlite")
    assert [(a, t, s) for a, t, s, _ in rows] == [
        ("dual-clip-ppo", "CartPole-v1", "done"), ("dual-clip-ppo", "LineWalk-v0", "done"),
        ("ppo", "CartPole-v1", "done"), ("ppo", "LineWalk-v0", "done"),
    ]  # fmt: skip
    plugin_code = json.loads(rows[0][3])
    assert plugin_code["origin"] == "entry point" and plugin_code["distribution"] == "bench-plugin-example"
    assert plugin_code["distribution_version"] == "0.1.0" and plugin_code["version"] == "1"
    assert json.loads(rows[2][3])["origin"] == "built-in"

    # the same code again: nothing to run
    again = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "-q", site=site)
    assert "4 already done, 0 to run" in again.stderr

    before = bench(tmp_path, "export", "--suite", "plugin-tiny", "--store", "b.sqlite", "-o", "before.csv")
    assert before.returncode == 0, before.stderr

    # an edit of the plugin's (installed) source re-runs exactly its two runs; the old ones stay
    algo = site / "bench_plugin_example" / "algorithm.py"
    algo.write_text(algo.read_text().replace("dual_clip=3.0):", "dual_clip=3.0):  # edited"))
    edited = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "-q", site=site)
    assert edited.returncode == 0, edited.stderr
    assert "2 already done, 2 to run" in edited.stderr
    assert "2 of them were done under earlier code of dual-clip-ppo" in edited.stderr
    assert "2 done, 0 failed" in edited.stderr
    rows = codes(tmp_path / "b.sqlite")
    plugin_rows = [r for r in rows if r[0] == "dual-clip-ppo"]
    assert len(rows) == 6 and len(plugin_rows) == 4
    assert len({json.loads(r[3])["source"] for r in plugin_rows}) == 2  # two code versions, side by side

    # the status table names the code version each row comes from
    status = bench(tmp_path, "status", "--suite", "plugin-tiny", "--store", "b.sqlite", site=site)
    new = json.loads(plugin_rows[-1][3])
    assert f"{new['version']}+{new['source']}" in status.stdout

    # the two code versions set against each other by the gate
    gate = bench(tmp_path, "compare", "--suite", "plugin-tiny", "--store", "b.sqlite",
                 "--baseline", "before.csv", "-o", "gate", site=site)  # fmt: skip
    assert gate.returncode in (0, 1), gate.stderr
    assert (tmp_path / "gate" / "compare.csv").exists()
    assert "dual-clip-ppo" in (tmp_path / "gate" / "compare.csv").read_text()

    # --pin-code: after another edit, the done runs of the earlier code count as done
    algo.write_text(algo.read_text().replace("# edited", "# edited twice"))
    pinned = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "-q", "--pin-code", site=site)
    assert pinned.returncode == 0, pinned.stderr
    assert "4 already done, 0 to run" in pinned.stderr and "2 runs pinned" in pinned.stderr


@pytest.mark.slow  # 37 s: 6 runs in subprocesses
def test_a_plugin_module_and_tasks_declared_in_a_suite(tmp_path):
    (tmp_path / "myplugin.py").write_text(textwrap.dedent('''
        from bench.api import PPOConfig, Algorithm, ppo_train, register_algorithm

        def train(task, cfg, env_steps, seed, evaluator, recorder):
            return ppo_train(task, cfg, env_steps, seed, evaluator, recorder)

        register_algorithm(Algorithm("my-ppo", PPOConfig, {}, train, "PPO under another name"))
    '''))  # fmt: skip
    (tmp_path / "s.yaml").write_text(
        textwrap.dedent("""
        name: declared
        version: 1
        tasks:
          - {id: Acrobot-v1, reward_threshold: -100, random_score: -497.4, solved_score: -100}
          - {id: MountainCarContinuous-v0, reward_threshold: 90, random_score: -33.2, solved_score: 90}
        seeds: 1
        env_steps: 1024
        evaluation: {eval_every: 512, eval_episodes: 2, temperatures: [1.0]}
        algorithms:
          - algo: my-ppo
            params: {n_envs: 4, n_steps: 128, batch_size: 128, n_epochs: 2}
          - algo: pg
            params: {n_envs: 4, n_steps: 128}
          - algo: sb3-ppo
            params: {n_envs: 4, n_steps: 128, batch_size: 128, n_epochs: 2}
    """)
    )
    site = tmp_path  # myplugin.py is importable from here
    without = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", site=site)
    assert without.returncode == 2 and "unknown algorithm 'my-ppo'" in without.stderr
    assert not (tmp_path / "b.sqlite").exists()
    run = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "-q", "--plugin", "myplugin", site=site)
    assert run.returncode == 0, run.stderr
    assert "6 done, 0 failed" in run.stderr
    rows = codes(tmp_path / "b.sqlite")
    assert {(a, t) for a, t, s, _ in rows if s == "done"} == {
        (a, t) for a in ("my-ppo", "pg", "sb3-ppo") for t in ("Acrobot-v1", "MountainCarContinuous-v0")
    }
    mine = json.loads(next(r[3] for r in rows if r[0] == "my-ppo"))
    assert mine["origin"] == "plugin module" and mine["module"] == "myplugin"
    # the report normalises the declared tasks by their declared bounds
    status = bench(tmp_path, "status", "--suite", "declared", "--store", "b.sqlite", site=site)
    assert "aggregate over Acrobot-v1, MountainCarContinuous-v0 (normalised" in status.stdout


BAD_PLUGINS = {
    "clash": ("from bench.api import PPOConfig, Algorithm, register_algorithm\n"
              "register_algorithm(Algorithm('ppo', PPOConfig, {}, lambda *a: None, 'x'))\n",
              "algorithm 'ppo' from badplugin (plugin module) clashes with the one from built-in"),
    "import": ("import no_such_module_anywhere\n",
               "plugin badplugin cannot be imported: ModuleNotFoundError: No module named"),
    "signature": ("from bench.api import PPOConfig, Algorithm, register_algorithm\n"
                  "def train(task, cfg): pass\n"
                  "register_algorithm(Algorithm('two-args', PPOConfig, {}, train, 'x'))\n",
                  "train badplugin.train must take the positional parameters (task, cfg, env_steps, seed,"),
    "config": ("from bench.api import Algorithm, register_algorithm\n"
               "register_algorithm(Algorithm('dict-config', dict, {}, lambda *a: None, 'x'))\n",
               "config must be a pydantic BaseModel class"),
}  # fmt: skip


@pytest.fixture
def in_process(tmp_path, monkeypatch, capsys):
    """``bench ARGV`` in this process, in ``tmp_path`` (plugins importable from there), with the
    registry, the plugin bookkeeping and ``sys.modules`` restored afterwards; (exit status,
    stderr, stdout)."""
    import bench.algos  # noqa: F401 - the built-ins registered before the registry is kept
    from bench import registry
    from bench.cli import main
    from bench.control.tasks import TASKS

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    # restored in place: bench.algos and bench.cli hold the same objects
    kept = [(d, dict(d)) for d in (registry.ALGORITHMS, registry.TASK_ORIGINS, TASKS)]
    monkeypatch.setattr(registry, "_plugin_modules", list(registry._plugin_modules))
    monkeypatch.setattr(registry, "BROKEN", list(registry.BROKEN))
    modules = set(sys.modules)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(argv))
        out, err = capsys.readouterr()
        return rc, err, out

    yield run
    for d, before in kept:
        d.clear()
        d.update(before)
    for name in set(sys.modules) - modules:
        if name.startswith(("badplugin", "badeps")):
            del sys.modules[name]


def check_one_line_exit_2(rc: int, err: str, message: str, store: Path) -> None:
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err, err
    assert "Traceback" not in err and not store.exists()


def test_a_plugin_that_cannot_be_imported_stops_the_real_entry_point(tmp_path):
    """One case through ``python -m bench``: the exit status and stderr a shell sees."""
    code, message = BAD_PLUGINS["import"]
    (tmp_path / "badplugin.py").write_text(code)
    (tmp_path / "s.yaml").write_text(TINY.replace("LineWalk-v0", "Pendulum-v1"))
    out = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "--plugin", "badplugin", site=tmp_path)
    check_one_line_exit_2(out.returncode, out.stderr, message, tmp_path / "b.sqlite")


@pytest.mark.parametrize("case", sorted(BAD_PLUGINS))
def test_a_plugin_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, in_process, case):
    code, message = BAD_PLUGINS[case]
    (tmp_path / "badplugin.py").write_text(code)
    (tmp_path / "s.yaml").write_text(TINY.replace("LineWalk-v0", "Pendulum-v1"))
    rc, err, _ = in_process("run", "s.yaml", "--store", "b.sqlite", "--plugin", "badplugin")
    check_one_line_exit_2(rc, err, message, tmp_path / "b.sqlite")


PLAIN_CONFIG = """
from pydantic import BaseModel, Field
from bench.api import Algorithm, register_algorithm

class PlainConfig(BaseModel):  # no extra="forbid": pydantic alone would drop unknown keys
    lr: float = Field(1e-3, description="learning rate")
    n_envs: int = Field(4, description="parallel environments")

def train(task, cfg, env_steps, seed, evaluator, recorder):
    raise RuntimeError(f"trained with lr={cfg.lr}")

register_algorithm(Algorithm("plain", PlainConfig, {}, train, "a plain pydantic config"))
"""


def test_a_misspelled_plugin_parameter_is_refused_with_the_valid_keys(tmp_path, in_process):
    (tmp_path / "badplugin.py").write_text(PLAIN_CONFIG)
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "s.yaml").write_text(
        "name: typo\nversion: 1\ntasks: [CartPole-v1]\nseeds: 1\nenv_steps: 1024\n"
        "algorithms:\n  - algo: plain\n    params: {learning_rate: 0.1}\n"
    )
    message = "algorithms[0].params.learning_rate: unknown key (valid keys: lr, n_envs)"
    rc, err, _ = in_process("run", "suites/s.yaml", "--store", "b.sqlite", "--plugin", "badplugin")
    check_one_line_exit_2(rc, err, message, tmp_path / "b.sqlite")
    rc, err, out = in_process("list", "suites", "--plugin", "badplugin")
    assert rc == 0 and err == "", err
    assert re.search(r"s\.yaml  INVALID: .*" + re.escape(message), out), out


def fake_distribution(site: Path, entry_points: str, module: str) -> None:
    """An installed distribution ``badeps`` 0.1 in ``site``: its ``entry_points.txt`` and the
    module ``badeps_mod`` its entry points name."""
    info = site / "badeps-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badeps\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    (site / "badeps_mod.py").write_text(module)


ALGO_MODULE = """
from bench.api import PPOConfig, Algorithm, ppo_train
ALGO = Algorithm("real-name", PPOConfig, {}, ppo_train, "PPO under another name")
BOTH = [ALGO, Algorithm("second", PPOConfig, {}, ppo_train, "PPO again")]
"""
BROKEN_ENTRY_POINTS = {  # case: (entry_points.txt, badeps_mod.py, message)
    "import": ("[bench.algorithms]\nbroken-algo = badeps_mod:ALGO", "raise RuntimeError('boom')\n",
               "entry point 'broken-algo' = 'badeps_mod:ALGO' of group bench.algorithms: RuntimeError: boom"),
    "not-a-record": ("[bench.algorithms]\nnot-a-record = json:dumps", "",
                     "expected a bench.api.Algorithm record, got function"),
    "name-mismatch": ("[bench.algorithms]\nother-name = badeps_mod:ALGO", ALGO_MODULE,
                      "entry point 'other-name' = 'badeps_mod:ALGO' of group bench.algorithms: the entry"
                      " point's name 'other-name' differs from the algorithm's name 'real-name'"),
    "several": ("[bench.algorithms]\nboth = badeps_mod:BOTH", ALGO_MODULE,
                "of group bench.algorithms: got 2 records; an entry point provides one algorithm"),
    "task": ("[bench.tasks]\nmy-envs = badeps_mod:TASKS", "TASKS = [3]\n",
             "entry point 'my-envs' = 'badeps_mod:TASKS' of group bench.tasks: expected a bench.api.Task"
             " record, got int"),
}  # fmt: skip


@pytest.fixture
def broken_installed(tmp_path, monkeypatch):
    """``broken_installed(case)``: installs the distribution of ``BROKEN_ENTRY_POINTS[case]``,
    visible to the next ``in_process`` command; its expected message."""
    from bench import registry

    def install_case(case: str) -> str:
        entry_points, module, message = BROKEN_ENTRY_POINTS[case]
        site = tmp_path / "site"
        fake_distribution(site, entry_points + "\n", module)
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setattr(registry, "_entry_points_loaded", False)
        return message

    return install_case


@pytest.mark.parametrize("case", sorted(BROKEN_ENTRY_POINTS))
def test_a_broken_installed_plugin_is_a_warning_and_listed_as_broken(in_process, broken_installed, case):
    message = broken_installed(case)
    rc, err, out = in_process("describe", "ppo")
    assert rc == 0 and out.startswith("ppo — "), err
    assert err.count("\n") == 1 and err.startswith("warning: installed plugin badeps 0.1 "), err
    assert message in err and "pip uninstall badeps" in err, err
    rc, err, out = in_process("list")
    assert rc == 0 and err.count("\n") == 1 and err.startswith("warning: "), err
    assert "\nbroken plugins (pip uninstall to remove them):\n  badeps 0.1: " in out, out
    assert message in out.split("broken plugins")[1], out
    algorithms = out.split("\nalgorithms:\n")[1].split("\nbroken plugins")[0]
    assert "real-name" not in algorithms and "second" not in algorithms  # a broken entry point adds nothing


def test_a_suite_that_needs_a_broken_plugin_stops_with_a_clear_line(tmp_path, in_process, broken_installed):
    message = broken_installed("import")
    (tmp_path / "s.yaml").write_text(
        TINY.replace("dual-clip-ppo", "broken-algo").replace("LineWalk-v0", "Pendulum-v1")
    )
    rc, err, _ = in_process("run", "s.yaml", "--store", "b.sqlite")
    warning, error = err.splitlines()
    assert rc == 2 and not (tmp_path / "b.sqlite").exists()
    assert warning.startswith(
        "warning: installed plugin badeps 0.1 cannot be used; left out: algorithm 'broken-algo'"
    )
    assert message in warning
    assert error == (
        "error: s.yaml: algorithms[0].algo: algorithm 'broken-algo' is provided by installed plugin badeps"
        " 0.1, which cannot be used: RuntimeError: boom (fix it, or remove it: pip uninstall badeps)"
    ), err
    rc, err, _ = in_process("describe", "broken-algo")
    assert rc == 2 and err.splitlines()[1] == (
        "error: algorithm 'broken-algo' is provided by installed plugin badeps 0.1, which cannot be"
        " used: RuntimeError: boom (fix it, or remove it: pip uninstall badeps)"
    ), err


@pytest.mark.parametrize(
    "task, message",
    [
        ("{id: NoSuchEnv-v9, reward_threshold: 1, random_score: 0, solved_score: 1}",
         "tasks[0]: 'NoSuchEnv-v9' is not a registered gymnasium environment"),
        ("{id: CartPole-v1, reward_threshold: 1, random_score: 0, solved_score: 1}",
         "tasks[0]: task 'CartPole-v1' from s.yaml (suite) clashes with the one from built-in"),
        ("{id: Acrobot-v1, reward_threshold: -100, random_score: 0}",
         "tasks[0].solved_score: Field required"),
    ],
)  # fmt: skip
def test_a_bad_task_declaration_is_a_suite_error(tmp_path, in_process, task, message):
    (tmp_path / "s.yaml").write_text(TINY.replace("[CartPole-v1, LineWalk-v0]", f"[{task}]"))
    rc, err, _ = in_process("run", "s.yaml", "--store", "b.sqlite")
    assert rc == 2 and message in err, err
    assert not (tmp_path / "b.sqlite").exists()


HOSTILE = """
import os, time
from bench.api import PPOConfig, Algorithm, ppo_train, register_algorithm

def hang(task, cfg, env_steps, seed, evaluator, recorder):
    while True:
        time.sleep(0.01)

def spin(task, cfg, env_steps, seed, evaluator, recorder):
    while True:
        pass

def crash(task, cfg, env_steps, seed, evaluator, recorder):
    os._exit(3)

for name, fn in [("hang", hang), ("spin", spin), ("crash", crash)]:
    register_algorithm(Algorithm(name, PPOConfig, {}, fn, name))
"""


@pytest.mark.slow  # 30-60 s: runs wait for their 10 s limit
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_hanging_or_crashing_plugin_fails_only_its_run(tmp_path, jobs):
    (tmp_path / "hostile.py").write_text(HOSTILE)
    (tmp_path / "s.yaml").write_text(
        textwrap.dedent("""
        name: hostile
        version: 1
        tasks: [CartPole-v1]
        seeds: 1
        env_steps: 1024
        run_timeout: 10
        evaluation: {eval_every: 512, eval_episodes: 2, temperatures: [1.0]}
        algorithms:
          - algo: hang
          - algo: spin
          - algo: crash
          - algo: ppo
            env_steps: 256
            params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: 1}
    """)
    )
    out = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "-q", "-j", jobs, "--plugin", "hostile",
                site=tmp_path, timeout=300)  # fmt: skip
    assert out.returncode == 1, out.stderr  # some runs failed; the suite went on
    with sqlite3.connect(tmp_path / "b.sqlite") as db:
        rows = dict(db.execute("SELECT algo, status || ': ' || coalesce(error, '') FROM runs").fetchall())
    assert rows["ppo"] == "done: "
    assert rows["hang"] == "failed: timeout after 10 s"
    assert rows["spin"] == "failed: timeout after 10 s"
    assert rows["crash"].startswith("failed: worker process died")


@pytest.mark.slow  # 15 s
def test_a_wrapped_third_party_algorithm_runs_through_the_protocol(tmp_path):
    """sb3-contrib's RecurrentPPO, which bench did not write, as a plugin: its runs record the
    protocol's evaluations at both temperatures and its code version comes from the plugin."""
    pytest.importorskip("sb3_contrib")
    site = tmp_path / "site"
    install(ROOT / "examples" / "bench-sb3-contrib-plugin", site)
    (tmp_path / "s.yaml").write_text(
        textwrap.dedent("""
        name: recurrent
        version: 1
        tasks: [CartPole-v1]
        seeds: 1
        env_steps: 512
        evaluation: {eval_every: 256, eval_episodes: 2, temperatures: [0.0, 1.0]}
        algorithms:
          - algo: sb3-recurrent-ppo
            params: {n_envs: 2, n_steps: 64, batch_size: 64, n_epochs: 1, lstm_hidden_size: 16}
    """)
    )
    out = bench(tmp_path, "run", "s.yaml", "--store", "b.sqlite", "-q", site=site)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(tmp_path / "b.sqlite") as db:
        status, code, packages = db.execute("SELECT status, code, packages FROM runs").fetchone()
        evals = db.execute("SELECT step, temperature FROM evals WHERE metric = 'eval/return'").fetchall()
    assert status == "done" and json.loads(code)["distribution"] == "bench-sb3-contrib"
    # the run's package list names the plugin and the library it wraps, with their versions
    names = {name.lower().replace("_", "-"): v for name, v in json.loads(packages).items()}
    assert names["bench-sb3-contrib"] and names["sb3-contrib"] == importlib.metadata.version("sb3-contrib")
    assert {t for _, t in evals} == {0.0, 1.0} and max(s for s, _ in evals) >= 512
