"""Synthetic results for testing and timing the report, leaderboard and compare commands.

Writes a real suite (registered like ``bench run`` does) and made-up but plausible runs into a
store: per algorithm a learning curve rising from the random score towards a target level, seed
noise, a few failed runs, and optionally the alignment records (KL to the reference at every
checkpoint and a final temperature sweep). Nothing is trained.

    python -m bench.report.synthetic --runs 10000 --store /tmp/synthetic.sqlite
    bench report --store /tmp/synthetic.sqlite --suite synthetic -o /tmp/synthetic-report
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from bench.registry import TASKS
from bench.store import Store, now
from bench.suite import AlgorithmEntry, Evaluation, Suite, expand

TEMPERATURE_SWEEP = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]


def make_suite(name: str, labels: list[str], tasks: list[str], seeds: int, env_steps: int) -> Suite:
    algos = ["ppo", "pg"]
    return Suite(
        name=name,
        version="1",
        description="synthetic results (bench.report.synthetic) — nothing was trained",
        tasks=tasks,
        seeds=list(range(seeds)),
        env_steps=env_steps,
        evaluation=Evaluation(eval_every=env_steps // 10, eval_episodes=10, temperatures=[0.0, 1.0]),
        algorithms=[AlgorithmEntry(algo=algos[i % 2], label=label) for i, label in enumerate(labels)],
    )


def write_synthetic(
    store: Store,
    name: str = "synthetic",
    labels: list[str] | None = None,
    tasks: list[str] | None = None,
    seeds: int = 5,
    env_steps: int = 100_000,
    evals: int = 10,
    alignment: bool = False,
    failed: int = 0,
    levels: dict[str, float] | None = None,
    seed: int = 0,
) -> Suite:
    """Registers the suite and writes one finished run per spec. ``levels``: final normalised
    score per label (default: spread between 0.3 and 1.0); ``failed``: runs stored as failed."""
    labels = labels or [f"algo-{i}" for i in range(4)]
    tasks = tasks or ["CartPole-v1", "Pendulum-v1"]
    suite = make_suite(name, labels, tasks, seeds, env_steps)
    specs = expand(suite)
    store.register(suite, specs)
    rng = np.random.default_rng(seed)
    levels = levels or {lab: 0.3 + 0.7 * i / max(len(labels) - 1, 1) for i, lab in enumerate(labels)}
    steps = np.linspace(env_steps / evals, env_steps, evals).astype(int)
    fail_at = set(rng.choice(len(specs), size=failed, replace=False).tolist()) if failed else set()
    eval_rows, run_rows = [], []
    stamp = now()
    for i, spec in enumerate(specs):
        task = TASKS[spec.task]
        level = levels[spec.label] + 0.05 * rng.standard_normal()
        speed = 0.15 + 0.3 * rng.random()
        frac = level * (1 - np.exp(-steps / (speed * env_steps)))
        score = task.random_score + frac * (task.solved_score - task.random_score)
        score = score + 0.02 * (task.solved_score - task.random_score) * rng.standard_normal(evals)
        if spec.task == "CartPole-v1":
            score = np.minimum(score, 500.0)
        sps = 5000.0 * (1 + labels.index(spec.label)) * (0.9 + 0.2 * rng.random())
        train = steps / sps
        wall = train * 1.1
        status = "failed" if i in fail_at else "done"
        n = 1 if status == "failed" else evals
        for j in range(n):
            for temp in (0.0, 1.0):
                value = score[j] - (0.0 if temp == 0 else 0.05 * abs(score[j]))
                eval_rows.append((spec.key, int(steps[j]), wall[j], train[j], temp, "eval/return", value, 10))
            if alignment:
                kl = float(frac[j] * 20 * (0.5 + rng.random()))
                eval_rows.append((spec.key, int(steps[j]), wall[j], train[j], 1.0, "eval/kl", kl, 10))
        if alignment and status == "done":
            for temp in TEMPERATURE_SWEEP[1:-2] + TEMPERATURE_SWEEP[-1:]:
                value = score[-1] - 0.2 * temp**2 * abs(score[-1])
                eval_rows.append(
                    (spec.key, int(steps[-1]), wall[-1], train[-1], temp, "eval/return", value, 10)
                )
        error = None
        if status == "failed":
            error = f"Traceback (most recent call last):\nRuntimeError: synthetic failure of run {i}"
        run_rows.append(
            (
                status,
                error,
                stamp,
                stamp,
                float(wall[n - 1]),
                float(train[n - 1]),
                int(steps[n - 1]),
                "0000000",
                json.dumps({"bench": "synthetic"}),
                "synthetic-host",
                spec.key,
            )
        )

    def write(db) -> None:
        db.executemany("INSERT INTO evals VALUES (?,?,?,?,?,?,?,?)", eval_rows)
        db.executemany(
            "UPDATE runs SET status=?, error=?, started_at=?, ended_at=?, wall_time=?, train_time=?,"
            " env_steps=?, git_rev=?, packages=?, host=? WHERE key=?",
            run_rows,
        )

    store._write(write, "cannot write synthetic runs")
    return suite


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write synthetic runs into a store (for timing `bench report`).")
    p.add_argument("--store", required=True)
    p.add_argument("--runs", type=int, default=10_000, help="about this many runs (default 10000)")
    p.add_argument("--algorithms", type=int, default=8)
    p.add_argument("--alignment", action="store_true", help="also write KL and temperature-sweep records")
    args = p.parse_args(argv)
    tasks = list(TASKS)
    seeds = math.ceil(args.runs / (len(tasks) * args.algorithms))
    labels = [f"algo-{i}" for i in range(args.algorithms)]
    write_synthetic(
        Store(args.store), labels=labels, tasks=tasks, seeds=seeds, alignment=args.alignment, failed=10
    )
    print(f"wrote {seeds * len(tasks) * args.algorithms} runs to {args.store} (suite 'synthetic')")


if __name__ == "__main__":
    main()
