"""π_SFT's perturbation table: builds a suite's π_SFT under every perturbation this machine can make
— 1 and 2 threads, the loss with the LM head at the reference positions only (the same loss, its
gradient summed in another order), SFT seeds 0–4 — evaluates each against the references, and
appends the rows, with the machine's fingerprint, to a CSV (``bench.pipeline.calibrate`` explains
why). Another CPU kind adds its own rows by running the same command there.

    python scripts/calibrate_sft.py lm-summarization [--only 1] [--show]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench.lm.tasks import LM_TASKS
from bench.pipeline.calibrate import append_row, build_and_evaluate, table_markdown, variants
from bench.pipeline.lm import LMPipeline
from bench.suite import SuiteError, expand, find_suite, load_suite


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python scripts/calibrate_sft.py",
        description="Build a suite's π_SFT under every perturbation this machine can make and evaluate "
        "each against the references (the LM guide's perturbation table); rows are appended to --out.",
    )
    p.add_argument("suite", help="suite file or shipped suite name (its lm: section is the recipe)")
    p.add_argument("--task", default="summarization", help="LM task (default summarization)")
    p.add_argument("--label", help="the recipe's name in the table (default: suite name and version)")
    p.add_argument("--sft-seeds", default="0,1,2,3,4", help="SFT seeds to try (default 0-4)")
    p.add_argument(
        "--only",
        help="comma-separated variant numbers to build (1 = as specified, 2 = 2 threads, 3 = head-only loss, "
        "4.. = the other seeds)",
    )
    p.add_argument("--out", help="CSV the rows are appended to (default baselines/calibration-TASK.csv)")
    p.add_argument(
        "--show", action="store_true", help="print --out as the guide's Markdown tables; build nothing"
    )
    args = p.parse_args(argv)
    args.out = args.out or f"baselines/calibration-{args.task}.csv"
    if args.show:
        print(table_markdown(pd.read_csv(args.out), args.task))
        return 0
    try:
        suite = load_suite(find_suite(args.suite))
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    specs = [s for s in expand(suite) if s.task == args.task and s.alignment_json]
    if args.task not in LM_TASKS or not specs:
        print(f"error: suite {suite.name} has no LM runs on task {args.task!r}", file=sys.stderr)
        return 2
    ctx = LMPipeline(LM_TASKS[args.task], specs[0].alignment, 0, log=lambda m: print(m, file=sys.stderr))
    base = ctx.setup.sft.seed if ctx.setup.sft.seed is not None else 0
    todo = variants([int(s) for s in args.sft_seeds.split(",")], base)
    if args.only:
        todo = [todo[int(i) - 1] for i in args.only.split(",")]
    label = args.label or f"{suite.name} v{suite.version}"
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        for v in todo:
            print(f"{label}: {v['variant']} ...", file=sys.stderr)
            row = build_and_evaluate(ctx, label, v, Path(tmp), lambda m: None)
            shown = ", ".join(f"{k}={v}" for k, v in row.items() if k != "cpu")
            print(f"  {shown}", file=sys.stderr)
            append_row(out, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
