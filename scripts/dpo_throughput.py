"""DPO training throughput, the project's ``lm-dpo`` against TRL's ``DPOTrainer``, side by side.

Both train the same π_SFT on the same preference pairs with the same batch size, optimizer and
hyperparameters, one torch thread each, one after the other in this process. Throughput is
preference pairs per second over the updates after ``warmup`` (the steady state; measured from
the end of one update to the end of the last, so data loading and collation are included), and
the one-off setup (tokenising the pairs, reference log-probs, building the trainer) is reported
separately. TRL runs twice: with ``precompute_ref_log_probs=True`` (what lm-dpo does) and with
its default (a reference forward pass every update). ``--fused-gelu`` adds lm-dpo with the policy's
MLP activation swapped for the one-kernel tanh GELU (``gelu_pytorch_tanh``) in place of GPT-2's
``gelu_new`` (eight elementwise kernels): the lever the speed page's LM profile names. Not shipped:
its floats differ from ``gelu_new``'s, so it would be a new version of the LM tasks.

    python scripts/dpo_throughput.py [--suite suites/lm-sentiment.yaml] [--steps 60] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial

import torch


def _fuse_gelu(model) -> None:
    from transformers.activations import ACT2FN

    for block in model.transformer.h:
        block.mlp.act = ACT2FN["gelu_pytorch_tanh"]


def _ours(ctx, cfg, steps: int, warmup: int, seed: int, fused: bool = False) -> dict:
    from bench.algos.lm import Batches, dpo_update, encoded_pairs, frozen_pair_logps

    pad = ctx.tokenizer().pad_token_id
    t0 = time.perf_counter()
    train, _ = encoded_pairs(ctx)
    policy, ref = ctx.policy(), ctx.reference()
    if fused:
        _fuse_gelu(policy)
    ref_w, ref_l = frozen_pair_logps(ref, train, pad)
    setup = time.perf_counter() - t0
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    batches = Batches(len(train), cfg.batch_size, seed)
    ends = []
    for _ in range(steps):
        idx = batches.next()
        dpo_update(policy, opt, cfg, [train[i] for i in idx], ref_w[idx], ref_l[idx], pad)
        ends.append(time.perf_counter())
    return {"setup_s": setup, "ends": ends}


def _trl(ctx, cfg, steps: int, seed: int, precompute: bool) -> dict:
    from transformers import PrinterCallback, TrainerCallback

    from bench.algos.trl_dpo import TRLDPOConfig, make_trainer

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    prefs = ctx.preferences()
    train, _ = prefs.split()
    tcfg = TRLDPOConfig(beta=cfg.beta, lr=cfg.lr, batch_size=cfg.batch_size, max_grad_norm=cfg.max_grad_norm,
                        precompute_ref=precompute)  # fmt: skip
    os.environ["TQDM_DISABLE"] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as out:
        t0 = time.perf_counter()
        trainer = make_trainer(ctx.policy(), ctx.reference(), ctx.tokenizer(), prefs.texts(train), tcfg,
                               steps, seed, out, [Clock()])  # fmt: skip
        trainer.remove_callback(PrinterCallback)
        setup = time.perf_counter() - t0
        trainer.train()
    return {"setup_s": setup, "ends": ends}


def _rate(ends: list[float], warmup: int, batch: int) -> float:
    span = ends[-1] - ends[warmup - 1]
    return (len(ends) - warmup) * batch / span


def main(argv: list[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python scripts/dpo_throughput.py", description=description)
    parser.add_argument("--suite", default="suites/lm-sentiment.yaml", help="suite whose lm: setup to use")
    parser.add_argument("--steps", type=int, default=60, help="updates per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="updates left out of the rate")
    parser.add_argument("--batch-size", type=int, default=32, help="preference pairs per update")
    parser.add_argument("--repeats", type=int, default=2, help="measurements of each, interleaved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fused-gelu", action="store_true", help="add lm-dpo, one-kernel GELU")
    parser.add_argument("--no-trl", action="store_true", help="leave TRL's two rows out")
    args = parser.parse_args(argv)
    if args.steps <= args.warmup or args.warmup < 1:
        print("error: need --steps > --warmup >= 1", file=sys.stderr)
        return 2

    from bench.algos.lm import LMDPOConfig
    from bench.lm import quiet_hf
    from bench.lm.tasks import LM_TASKS
    from bench.pipeline.lm import LMPipeline
    from bench.pipeline.recipes import LMSetup
    from bench.suite import SuiteError, load_suite

    try:
        suite = load_suite(args.suite)
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tasks = [t for t in suite.tasks if t in LM_TASKS]
    if not tasks:
        print(f"error: {args.suite} has no LM task", file=sys.stderr)
        return 2
    quiet_hf()
    torch.set_num_threads(1)
    task = LM_TASKS[tasks[0]]
    ctx = LMPipeline(
        task, (suite.lm or LMSetup()).for_task(task), args.seed, log=lambda m: print(m, file=sys.stderr)
    )
    ctx.preferences()  # build (or load) the pipeline before any clock starts
    cfg = LMDPOConfig(beta=0.1, batch_size=args.batch_size)
    steps, warmup, seed = args.steps, args.warmup, args.seed
    runs = [("lm-dpo (project)", partial(_ours, ctx, cfg, steps, warmup, seed))]
    if args.fused_gelu:
        runs.append(("lm-dpo, fused GELU (not shipped)", partial(_ours, ctx, cfg, steps, warmup, seed, True)))
    if not args.no_trl:
        runs.append(("trl-dpo, precomputed reference", partial(_trl, ctx, cfg, steps, seed, True)))
        runs.append(
            ("trl-dpo, TRL default (reference every update)", partial(_trl, ctx, cfg, steps, seed, False))
        )
    rows = []
    for r in range(args.repeats):
        for name, fn in runs:
            torch.manual_seed(args.seed)
            got = fn()
            rows.append((r, name, _rate(got["ends"], args.warmup, args.batch_size), got["setup_s"]))
            print(
                f"  repeat {r}: {name}: {rows[-1][2]:.1f} pairs/s, setup {rows[-1][3]:.2f} s", file=sys.stderr
            )
    print(f"DPO throughput on {task.id} ({args.suite}), batch {args.batch_size} pairs, updates "
          f"{args.warmup + 1}-{args.steps}, 1 thread, best of {args.repeats}:")  # fmt: skip
    best = {}
    for _, name, rate, setup in rows:
        if rate > best.get(name, (0.0, 0.0))[0]:
            best[name] = (rate, setup)
    ours = best["lm-dpo (project)"][0]
    print("| implementation | pairs/s | ratio to lm-dpo | one-off setup |")
    print("|---|---|---|---|")
    for name, (rate, setup) in best.items():
        print(f"| {name} | {rate:.1f} | {rate / ours:.2f} | {setup:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
