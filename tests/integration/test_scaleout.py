"""Scale-out: Distributed PPO (torch.distributed) and the Ray executor.

Distributed PPO: W = 1 gives PPO's records; W = 2 keeps the replicas bit-identical, with merged
observation/return statistics, a global env-step budget and shared KL decisions; a torchrun launch
trains a suite's dppo runs and leaves the rest to a plain ``bench run``. Ray: the same records as
the local executor, resume after a killed driver, one clear message without Ray.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.algos.dppo import own_moments
from bench.cli import main
from bench.control.policies import RunningMeanStd
from bench.executors import run_one
from bench.store import Store
from bench.suite import expand, load_suite

ROOT = Path(__file__).resolve().parents[2]

DPPO = """
name: dppo-test
version: 1
tasks: [{task}]
seeds: [0]
env_steps: {steps}
evaluation: {{eval_every: {every}, eval_episodes: 2, temperatures: [0.0, 1.0]}}
algorithms:
  - algo: ppo
    params: {params}
  - algo: dppo
    params: {dparams}
"""


def _specs(write_suite, task="CartPole-v1", steps=4096, every=2048, params=None, **dparams):
    params = params or {"n_envs": 4, "n_steps": 128, "batch_size": 128, "n_epochs": 2}
    text = DPPO.format(task=task, steps=steps, every=every, params=params, dparams={**params, **dparams})
    return {s.algo: s for s in expand(load_suite(write_suite(text)))}


def _two_worker_suite(write_suite):
    """A CartPole suite of one ppo run and one dppo run with two workers, 2048 steps each."""
    params = {"n_envs": 4, "n_steps": 128, "batch_size": 128, "n_epochs": 2}
    return write_suite(
        DPPO.format(task="CartPole-v1", steps=2048, every=2048, params=params,
                    dparams={**params, "workers": 2})
    )  # fmt: skip


def _records(result):
    """Curves (without wall-clock metrics) and evaluations, without their timestamps."""
    curves = [(s, m, v) for s, _, m, v in result["curves"] if not m.startswith(("perf/", "dist/"))]
    return curves, [(s, t, m, v, n) for s, _, _, t, m, v, n in result["evals"]]


def _curve(result, metric):
    return [v for _, _, m, v in result["curves"] if m == metric]


def test_one_worker_equals_ppo(write_suite):
    specs = _specs(write_suite, workers=1)
    ppo, dppo = run_one(specs["ppo"]), run_one(specs["dppo"])
    assert ppo["status"] == dppo["status"] == "done", dppo["error"]
    assert _records(ppo) == _records(dppo)
    assert ppo["env_steps"] == dppo["env_steps"]
    assert _curve(dppo, "dist/workers") == [1.0]


def test_two_workers_keep_identical_replicas_with_merged_statistics(write_suite):
    # Pendulum: Gaussian policy (log-std parameter), observation and reward normalisation;
    # kl_penalty + target_kl: the workers share the KL coefficient and the early stop
    params = {"n_envs": 2, "n_steps": 256, "batch_size": 64, "n_epochs": 3, "normalize_obs": True,
              "normalize_reward": True, "objective": "kl_penalty", "target_kl": 0.02}  # fmt: skip
    specs = _specs(write_suite, "Pendulum-v1", steps=3000, every=3000, params=params, workers=2)
    result = run_one(specs["dppo"])
    assert result["status"] == "done", result["error"]
    assert _curve(result, "dist/replica_max_abs_diff") == [0.0]  # bit-identical parameters
    assert _curve(result, "dist/workers") == [2.0]
    # the budget counts both workers: 2 x 2 envs x 256 steps per iteration, less one autoreset
    # step per env (Pendulum's episodes are cut at 200 steps)
    lr_steps = sorted({s for s, _, m, _ in result["curves"] if m == "train/lr"})
    assert lr_steps == [1020, 2040, 3060]
    assert result["env_steps"] == 3060
    assert len(_curve(result, "train/kl_beta")) == 3
    finals = {(r[3], r[4]) for r in result["evals"] if r[0] == 3060}
    assert {(0.0, "eval/return"), (1.0, "eval/return")} <= finals


@pytest.mark.slow  # 17 s: two DPPO runs of two processes each (replica equality stays in the default tier)
def test_two_workers_same_seed_same_records(write_suite):
    specs = _specs(write_suite, workers=2)
    a, b = run_one(specs["dppo"]), run_one(specs["dppo"])
    assert a["status"] == b["status"] == "done"
    assert _records(a) == _records(b)
    # twice the experience per iteration of the single-process run with the same settings
    assert min(s for s, _, m, _ in a["curves"] if m == "train/lr") > 4 * 128


def test_own_moments_recover_a_workers_new_data_and_merge_in_any_split():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(50, 3)), rng.normal(2.0, 3.0, size=(70, 3)), rng.normal(size=(40, 3))
    rms = RunningMeanStd((3,))
    rms.update(a)
    before = (rms.mean.copy(), rms.var.copy(), rms.count)
    rms.update(b[:30])
    rms.update(b[30:])
    n, mean, var = own_moments(before, rms)
    assert n == pytest.approx(70)
    np.testing.assert_allclose(mean, b.mean(0), rtol=1e-10)
    np.testing.assert_allclose(var, b.var(0), rtol=1e-10)
    # the merge of the pre-rollout state and two workers' data = one pass over all of it
    merged = RunningMeanStd((3,))
    merged.update(a)
    for x in (b, c):
        merged.merge(x.mean(0), x.var(0), len(x))
    whole = RunningMeanStd((3,))
    whole.update(np.concatenate([a, b, c]))
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-9)
    np.testing.assert_allclose(merged.var, whole.var, rtol=1e-9)


@pytest.mark.slow  # 11 s
def test_dppo_in_a_suite_with_jobs_counts_its_workers_as_cores(write_suite, tmp_path):
    suite = _two_worker_suite(write_suite)
    specs = {s.algo: s for s in expand(load_suite(suite))}
    assert specs["dppo"].cpus == 2 and specs["ppo"].cpus == 1
    store = tmp_path / "s.sqlite"
    assert main(["run", str(suite), "--store", str(store), "-q", "--jobs", "2"]) == 0
    assert Store(store).status_counts()["done"].sum() == 2


def test_bad_worker_count_is_a_suite_error(write_suite, tmp_path, capsys):
    text = DPPO.format(task="CartPole-v1", steps=1024, every=512, params={}, dparams={"workers": 0})
    store = tmp_path / "s.sqlite"
    assert main(["run", str(write_suite(text)), "--store", str(store)]) == 2
    assert "workers" in capsys.readouterr().err
    assert not store.exists()


@pytest.mark.slow  # 13 s
def test_torchrun_launch_trains_the_dppo_runs_and_leaves_the_rest(write_suite, tmp_path):
    suite = _two_worker_suite(write_suite)
    store = tmp_path / "bench.sqlite"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "bench", "run", str(suite), "--store", str(store), "-q"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 dppo runs with workers=2" in proc.stderr
    runs = pd.read_sql("SELECT algo, status FROM runs", sqlite3.connect(store))
    assert dict(zip(runs.algo, runs.status, strict=True)) == {"dppo": "done", "ppo": "pending"}
    diff = (
        sqlite3.connect(store)
        .execute("SELECT value FROM curves WHERE metric = 'dist/replica_max_abs_diff'")
        .fetchall()
    )
    assert diff == [(0.0,)]
    # a plain bench run does the rest and keeps the distributed run
    assert main(["run", str(suite), "--store", str(store), "-q"]) == 0
    runs = pd.read_sql("SELECT algo, status FROM runs", sqlite3.connect(store))
    assert set(runs.status) == {"done"}


# -- Ray ---------------------------------------------------------------------------------------

SCALE_SMOKE = f"""
include: {ROOT / "suites" / "scale-smoke.yaml"}
name: scale-smoke-test
env_steps: 4096
evaluation: {{eval_every: 2048, eval_episodes: 2, temperatures: [0.0, 1.0]}}
"""


def _stored(store: Path) -> tuple[dict, pd.DataFrame]:
    db = sqlite3.connect(store)
    status = dict(db.execute("SELECT key, status FROM runs").fetchall())
    evals = pd.read_sql(
        "SELECT run_key, step, temperature, metric, value, n FROM evals"
        " ORDER BY run_key, step, temperature, metric",
        db,
    )
    return status, evals


@pytest.mark.slow  # 29 s: a Ray instance
def test_ray_gives_the_local_executors_records(write_suite, tmp_path):
    pytest.importorskip("ray")
    suite = write_suite(SCALE_SMOKE)
    local, ray_ = tmp_path / "local.sqlite", tmp_path / "ray.sqlite"
    assert main(["run", str(suite), "--store", str(local), "-q"]) == 0
    assert main(["run", str(suite), "--store", str(ray_), "-q", "--executor", "ray"]) == 0
    status_l, evals_l = _stored(local)
    status_r, evals_r = _stored(ray_)
    assert len(status_l) == 8 and status_l == status_r and set(status_r.values()) == {"done"}
    pd.testing.assert_frame_equal(evals_l, evals_r)
    # the driver wrote each run's log from the result that came back
    logs = sorted((tmp_path / "logs" / "scale-smoke-test").glob("*.log"))
    assert len(logs) == 8 and all("done in" in p.read_text() for p in logs)


@pytest.mark.slow  # 27 s: a Ray instance started twice
def test_ray_resumes_after_the_driver_is_killed(write_suite, tmp_path):
    pytest.importorskip("ray")
    suite = write_suite(SCALE_SMOKE)
    store = tmp_path / "bench.sqlite"
    cmd = [sys.executable, "-m", "bench", "run", str(suite), "--store", str(store), "-q", "--executor", "ray"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if store.exists():
            try:
                db = sqlite3.connect(store)
                done = db.execute("SELECT COUNT(*) FROM runs WHERE status='done'").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if done >= 2:
                break
    assert 2 <= done < 8, "the driver should be killed mid-suite"
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: its Ray instance cleans up after it
    proc.wait()
    before, evals_before = _stored(store)
    finished = {k for k, s in before.items() if s == "done"}
    assert main(["run", str(suite), "--store", str(store), "-q", "--executor", "ray"]) == 0
    after, evals_after = _stored(store)
    assert set(after.values()) == {"done"} and len(after) == 8
    # the runs done before the kill were kept, not repeated; no record is duplicated
    kept = evals_after[evals_after.run_key.isin(finished)].reset_index(drop=True)
    kept_before = evals_before[evals_before.run_key.isin(finished)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, kept_before)
    assert not evals_after.duplicated(["run_key", "step", "temperature", "metric"]).any()


@pytest.mark.slow  # 15 s
def test_ray_runs_a_distributed_ppo_run_with_its_workers(write_suite, tmp_path):
    pytest.importorskip("ray")
    suite = _two_worker_suite(write_suite)
    store = tmp_path / "bench.sqlite"
    assert main(["run", str(suite), "--store", str(store), "-q", "--executor", "ray"]) == 0
    db = sqlite3.connect(store)
    assert set(db.execute("SELECT status FROM runs").fetchall()) == {("done",)}
    rows = db.execute(
        "SELECT metric, value FROM curves WHERE metric IN ('dist/replica_max_abs_diff', 'dist/workers')"
    ).fetchall()
    assert sorted(rows) == [("dist/replica_max_abs_diff", 0.0), ("dist/workers", 2.0)]


def test_ray_missing_gives_one_clear_message(write_suite, tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    store = tmp_path / "s.sqlite"
    assert main(["run", str(write_suite(SCALE_SMOKE)), "--store", str(store), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[ray]"' in err and err.count("\n") == 1
    assert not store.exists()


def test_address_needs_the_ray_executor(write_suite, tmp_path, capsys):
    suite = str(write_suite(SCALE_SMOKE))
    assert main(["run", suite, "--store", str(tmp_path / "s"), "--address", "auto"]) == 2
    assert "--executor ray" in capsys.readouterr().err
