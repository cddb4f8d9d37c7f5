"""The control reference policies' perturbation table: builds each task's π_ref of a control-alignment
suite under every perturbation this machine can make — run seeds (each run seed trains its own
π_ref), 1 and 2 threads — evaluates each as the suite's ``reference`` runs are scored (T = 1, the
suite's episodes, the run seed's evaluation generators) and appends the rows, with the machine's
fingerprint, to a CSV. ``--show`` prints the table and whether every build keeps the band's margin
(``bench.bands.CONTROL_REFERENCE``: normalised score within [0.20, 0.60]).

    python scripts/calibrate_reference.py control-alignment [--seeds 0,1,2,3,4] [--threads 1,2] [--show]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

from bench import machine
from bench.bands import CONTROL_REFERENCE as BAND
from bench.control.policies import PolicyAct
from bench.control.tasks import get_task
from bench.evaluation import Evaluator
from bench.pipeline.calibrate import append_row
from bench.pipeline.control import _train_reference, reference_from_artifact
from bench.recorder import Recorder
from bench.results import normalise
from bench.suite import SuiteError, find_suite, load_suite


def build_and_evaluate(suite, task_id: str, seed: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    task, recipe = get_task(task_id), suite.alignment.reference[task_id]
    data = _train_reference(task, recipe, seed)
    torch.set_num_threads(1)
    # scored as the suite's ``reference`` run of this seed is (bench.algos.aligned.train_reference)
    ev, rec = suite.evaluation, Recorder()
    evaluator = Evaluator(task, rec, seed, 10**12, ev.eval_episodes, ev.temperatures, ev.final_temperatures)
    ref = reference_from_artifact(data, seed)
    temps = sorted(set(evaluator.temperatures) | set(evaluator.final_temperatures))
    evaluator(0, PolicyAct(ref.model, ref.obs_norm, torch.Generator().manual_seed(seed + 1)), temps)
    score = next(v for _, _, _, t, m, v, _ in rec.evals if m == "eval/return" and t == 1.0)
    fp = {**machine.fingerprint(), "threads": threads}
    return dict(suite=f"{suite.name} v{suite.version}", task=task_id, seed=seed, threads=threads,
                env_steps=data["env_steps"], score=score, normalised=normalise(task_id, score),
                train_seconds=round(data["train_seconds"], 1), machine=machine.kind_of(fp),
                cpu=machine.label(fp))  # fmt: skip


def table_markdown(table: pd.DataFrame) -> str:
    lines = ["| suite | task | seed | threads | machine | PPO env steps | return, T = 1 | normalised |",
             "|---|---|---:|---:|---|---:|---:|---:|"]  # fmt: skip
    for r in table.itertuples():
        lines.append(f"| {r.suite} | {r.task} | {r.seed} | {r.threads} | {r.machine} | {r.env_steps:,} | "
                     f"{r.score:.1f} | {r.normalised:.3f} |")  # fmt: skip
    inner = f"[{BAND.lo + BAND.margin:g}, {BAND.hi - BAND.margin:g}]"
    lines += ["", f"| suite | task | builds | lowest | highest | every build within {inner} |",
              "|---|---|---:|---:|---:|---|"]  # fmt: skip
    for (suite, task), g in table.groupby(["suite", "task"], sort=False):
        ok = all(BAND.with_margin(v) for v in g.normalised)
        lines.append(f"| {suite} | {task} | {len(g)} | {g.normalised.min():.3f} | {g.normalised.max():.3f} | "
                     f"{'yes' if ok else 'no'} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python scripts/calibrate_reference.py", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("suite", help="a control-alignment suite (file or shipped name)")
    p.add_argument("--tasks", help="comma-separated tasks (default: every task with a reference recipe)")
    p.add_argument("--seeds", default="0,1,2,3,4", help="run seeds whose π_ref to build (default 0-4)")
    p.add_argument("--threads", default="1,2", help="thread counts; 2 threads only for the first seed")
    p.add_argument("--out", default="baselines/calibration-control.csv")
    p.add_argument("--show", action="store_true", help="print --out as the guide's tables; build nothing")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.show:
        print(table_markdown(pd.read_csv(out)))
        return 0
    try:
        suite = load_suite(find_suite(args.suite))
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if suite.alignment is None:
        print(f"error: suite {suite.name} has no alignment: section (no reference policies)", file=sys.stderr)
        return 2
    tasks = args.tasks.split(",") if args.tasks else list(suite.alignment.reference)
    seeds = [int(s) for s in args.seeds.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    todo = [(s, 1) for s in seeds] + [(seeds[0], t) for t in threads if t != 1]
    for task_id in tasks:
        for seed, n in todo:
            row = build_and_evaluate(suite, task_id, seed, n)
            print(", ".join(f"{k}={v}" for k, v in row.items() if k != "cpu"), file=sys.stderr, flush=True)
            append_row(out, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
