"""``bench run --rehearse``: every stage of a small LM suite and a small control-alignment suite
runs, for a handful of steps, into a store and cache of their own; the real ones stay untouched."""

import json
import math
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import rehearse
from bench.cli import main

LM = """
name: tiny-lm
version: 1
tasks: [sentiment]
seeds: [3, 4]
env_steps: 40
evaluation: {eval_every: 10, temperatures: [1.0], final_temperatures: [0.0, 1.0]}
lm:
  corpus: {documents: 1500}
  tokenizer: {vocab_size: 400}
  model: {n_layer: 1, n_embd: 32, n_head: 2, n_positions: 96}
  sft: {steps: 200, batch_size: 16, lr: 0.003}
  prompts: {train: 200, test: 40}
  max_new_tokens: 12
  reward_model: {steps: 50, batch_size: 16}
algorithms:
  - algo: sft
  - algo: lm-dpo
    label: dpo
    params: {beta: [0.1, 1.0], batch_size: 8}
  - algo: rlhf-ppo
    params: {batch_size: 8, minibatch_size: 4, ppo_epochs: 2, rm_pairs: 90}
  - algo: best-of-n
    params: {n: 4, ranker: rm}
"""

CONTROL = """
name: tiny-align
version: 1
tasks: [CartPole-v1]
seeds: [0, 1, 2]
env_steps: 51200
evaluation: {eval_every: 25600, eval_episodes: 8, temperatures: [1.0], final_temperatures: [0.0, 1.0]}
alignment:
  reference:
    CartPole-v1: {env_steps: 102400, target_return: null, check_every: 51200, check_episodes: 8}
  preferences: {n_pairs: 64, episodes: 30, segment_length: 20}
algorithms:
  - algo: ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: 1}
  - algo: dpo
    env_steps: 600
    params: {beta: 0.1, eval_points: 2}
  - algo: ppo-gt
    params: {kl_coef: 1.0, n_envs: 4, n_steps: 128, batch_size: 128, n_epochs: 1}
"""


def _rehearse(tmp_path: Path, monkeypatch, text: str) -> tuple[int, Path, Path]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    real_cache = tmp_path / "real-cache"
    monkeypatch.setenv("BENCH_CACHE", str(real_cache))
    store = tmp_path / "runs" / "bench.sqlite"
    code = main(["run", str(suite), "--store", str(store), "--rehearse", "-q"])
    # the real store and cache are never made, and the environment is as before
    assert not store.exists() and not real_cache.exists()
    import os

    assert os.environ["BENCH_CACHE"] == str(real_cache)
    (folder,) = (tmp_path / "runs" / "rehearsal").iterdir()
    return code, folder, store


def _table(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "rehearsal.csv")


def test_lm_rehearsal_runs_every_stage_and_run_apart(tmp_path, monkeypatch):
    code, folder, _ = _rehearse(tmp_path, monkeypatch, LM)
    assert code == 0, (folder / "rehearsal.md").read_text()
    assert folder.name.startswith("tiny-lm-")
    table = _table(folder)
    stages = table[table.kind == "stage"]
    assert list(stages.stage)[:7] == [
        "corpus + tokenizer", "prompts", "pi_SFT", "pi_SFT band check", "gold scorer", "preferences",
        "reward model",
    ]  # fmt: skip
    # the reward model on rm_pairs: capped where a 3-step pi_SFT's completions tie too often
    assert len(stages) == 8 and stages.stage.iloc[7].startswith("reward model (rm_pairs=90")
    assert (stages.status == "ok").all()
    # shortened: 3 SFT steps for 200, 3 RM steps for 50, two seeds' worth of per-seed artifacts
    sft = stages[stages.stage == "pi_SFT"].iloc[0]
    assert (sft.units, sft.full_units, sft.copies) == (3, 200, 2)
    rm = stages[stages.stage == "reward model"].iloc[0]
    assert (rm.units, rm.full_units, rm.copies) == (3, 50, 2)
    # train prompts: enough for the RM's 90 pairs (6 per prompt, 10% held out, a quarter more for ties)
    prefs = stages[stages.stage == "preferences"].iloc[0]
    assert prefs.units == min(200, max(64, math.ceil(90 / (6 * 0.9) * 1.25))) and prefs.full_units == 200
    # its training loop timed apart from its fixed cost (corpus tokenised, model built and saved)
    assert 0 < sft.fixed < sft.seconds and sft.unit_s == pytest.approx((sft.seconds - sft.fixed) / 3)
    assert sft.projected_s == pytest.approx((sft.fixed + sft.unit_s * 200) * 2)  # per step x steps x seeds
    # every run of the grid at the first seed, 3 updates each, stored under the rehearsal's name
    runs = table[table.kind == "run"]
    assert sorted(runs.label) == ["best-of-n", "dpo[beta=0.1]", "dpo[beta=1.0]", "rlhf-ppo", "sft"]
    assert (runs.status == "ok").all() and (runs.seeds == 2).all()
    with sqlite3.connect(folder / "store.sqlite") as db:
        stored = db.execute("SELECT suite, seed, env_steps, status FROM runs").fetchall()
    assert {s for s, *_ in stored} == {"tiny-lm.rehearsal"} and {seed for _, seed, _, _ in stored} == {3}
    assert {st for *_, st in stored} == {"done"}
    assert max(n for _, _, n, _ in stored) == 3
    # the artifacts are in the rehearsal's own cache
    assert any((folder / "cache" / "lm" / "sentiment").glob("sft-s3-*"))
    assert "Projection" in (folder / "rehearsal.md").read_text()


def test_control_rehearsal_and_reports_refuse_it(tmp_path, monkeypatch, capsys):
    code, folder, _ = _rehearse(tmp_path, monkeypatch, CONTROL)
    assert code == 0, (folder / "rehearsal.md").read_text()
    table = _table(folder)
    stages = table[table.kind == "stage"]
    assert list(stages.stage) == ["pi_ref", "preferences"] and (stages.status == "ok").all()
    ref = stages.iloc[0]
    assert (ref.units, ref.full_units, ref.copies) == (2048, 102400, 3)  # 2% of its steps
    runs = table[table.kind == "run"].set_index("label")
    assert (runs.status == "ok").all()
    # PPO trains until its budget: 2% of 51,200 env steps -> iterations of 4 x 64 steps until 1,024
    assert 1024 <= runs.loc["ppo", "steps"] < 2048
    # projection: per-step time times the real budget, plus the real run's evaluation passes
    assert runs.loc["ppo", "projected_s"] >= runs.loc["ppo", "s_per_step"] * 51200 * 3
    with sqlite3.connect(folder / "store.sqlite") as db:
        (evaluation,) = db.execute("SELECT evaluation FROM runs WHERE algorithm = 'ppo'").fetchone()
    assert json.loads(evaluation)["eval_episodes"] == rehearse.DEFAULT.eval_episodes
    capsys.readouterr()
    code = main(["report", "--store", str(folder / "store.sqlite"), "--suite", "tiny-align.rehearsal",
                 "-o", str(tmp_path / "rep")])  # fmt: skip
    assert code == 2 and "is a rehearsal" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("steps,every,temps,final,at_zero,expected", [
    (400, 100, [1.0], [0.0, 0.25, 0.5, 0.75, 1.0], False, 4 + 4),  # 4 evals at T=1, final adds 4
    (400, 100, [1.0], [0.0, 0.25, 0.5, 0.75, 1.0], True, 1 + 4 + 4),  # and one at step 0
    (450, 100, [1.0], [0.0, 1.0], False, 4 + 2),  # the final step is not an evaluation step
    (0, 100, [1.0], [0.0, 1.0], False, 2),  # Best-of-N: the final sweep only
])  # fmt: skip
def test_full_run_evaluation_passes(steps, every, temps, final, at_zero, expected):
    from bench.suite.grid import RunSpec

    ev = json.dumps({"eval_every": every, "temperatures": temps, "final_temperatures": final})
    spec = RunSpec("k", "s", "1", "a", "ppo", "CartPole-v1", 0, steps, "{}", ev)
    assert rehearse._full_passes(spec, at_zero) == expected


TWO_TASKS = """
name: two-align
version: 1
tasks: [CartPole-v1, Pendulum-v1]
seeds: [0, 1]
env_steps: 51200
evaluation: {eval_every: 25600, eval_episodes: 8, temperatures: [1.0], final_temperatures: [1.0]}
alignment:
  reference:
    CartPole-v1: {env_steps: 102400, target_return: null, check_every: 51200, check_episodes: 8}
    Pendulum-v1: {env_steps: 50000000, target_return: null, check_every: 25000000, check_episodes: 8}
  preferences: {n_pairs: 64, episodes: 30, segment_length: 20}
algorithms:
  - algo: dpo
    env_steps: 600
    params: {beta: 0.1, eval_points: 2}
"""


def _spawned_children() -> list[int]:
    """This process's worker processes started by multiprocessing's spawn (not its resource tracker)."""
    import os

    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"spawn_main" in cmd:
            pids.append(int(stat.parent.name))
    return pids


def _kill_when(tmp_path: Path, line: str) -> tuple:
    """A thread that SIGKILLs this process's spawned workers once a rehearsal's stages.log holds
    ``line``; returns (thread, the pids it killed)."""
    import os
    import signal
    import threading

    hit: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not hit:
            for log in (tmp_path / "runs" / "rehearsal").glob("*/stages.log"):
                if line in log.read_text():
                    for pid in _spawned_children():
                        os.kill(pid, signal.SIGKILL)
                        hit.append(pid)
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, hit


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the stage worker")
def test_a_stage_killed_for_memory_is_reported_and_the_rest_goes_on(tmp_path, monkeypatch):
    """The kernel's out-of-memory killer sends SIGKILL; here the test sends it to the stage worker
    when Pendulum's pi_ref starts (its 1M rehearsal steps take far longer than the watch's poll).
    CartPole's stages and run are reported as they finished; Pendulum's pi_ref as killed, its
    preferences never built and its run skipped (it would build the same pi_ref and die the same
    way); the exit status is 1."""
    watcher, hit = _kill_when(tmp_path, "stage pi_ref (Pendulum-v1): started")
    code, folder, _ = _rehearse(tmp_path, monkeypatch, TWO_TASKS)
    watcher.join(timeout=1)
    assert hit, "the watch never saw Pendulum's pi_ref start"
    assert code == 1
    table = _table(folder)
    stages = table[table.kind == "stage"]
    assert list(zip(stages.stage, stages.task, stages.status, strict=True)) == [
        ("pi_ref", "CartPole-v1", "ok"),
        ("preferences", "CartPole-v1", "ok"),
        ("pi_ref", "Pendulum-v1", "killed"),
    ]
    # the finished stages keep what they measured, though the worker that built them is gone
    assert (stages.seconds.iloc[:2] > 0).all() and stages.units.iloc[0] == 2048
    runs = table[table.kind == "run"].set_index("task")
    assert runs.loc["CartPole-v1", "status"] == "ok" and runs.loc["Pendulum-v1", "status"] == "skipped"
    with sqlite3.connect(folder / "store.sqlite") as db:
        stored = db.execute("SELECT task, status FROM runs").fetchall()
    assert stored == [("CartPole-v1", "done")]  # Pendulum's run was never started
    md = (folder / "rehearsal.md").read_text()
    assert "**killed**: its process was killed (out of memory?)" in md
    assert "2 stages or runs did not run" in md
    assert not (folder / "stages.finished.jsonl").exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the stage worker")
def test_a_rehearsal_whose_only_recipe_was_killed_still_writes_its_table(tmp_path, monkeypatch):
    """Every recipe killed: no run starts, no store is made, and the table says what happened
    (the paper-scale TL;DR rehearsal's reward model, killed for memory, once ended in a traceback)."""
    one_task = TWO_TASKS.replace("tasks: [CartPole-v1, Pendulum-v1]", "tasks: [Pendulum-v1]")
    watcher, hit = _kill_when(tmp_path, "stage pi_ref (Pendulum-v1): started")
    code, folder, _ = _rehearse(tmp_path, monkeypatch, one_task)
    watcher.join(timeout=1)
    assert hit and code == 1
    table = _table(folder)
    assert list(table.status) == ["killed", "skipped"] and list(table.kind) == ["stage", "run"]
    assert not (folder / "store.sqlite").exists()
