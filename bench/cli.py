"""The ``bench`` command line: run | list | status | export.

Exit status: 0 success; 1 some runs failed (``run``); 2 bad input (malformed suite, missing or
unreadable store, bad arguments) — with one message and nothing written; 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bench.store import DEFAULT_STORE

EPILOG = "Every command takes --store PATH (default: runs/bench.sqlite)."


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def cmd_run(args) -> int:
    from bench.executors import run_local
    from bench.store import Store, StoreError
    from bench.suite import SuiteError, expand, load_suite

    try:
        suite = load_suite(args.suite)
        specs = expand(suite)
    except SuiteError as e:
        return _fail(str(e))
    if args.jobs < 1:
        return _fail("--jobs must be >= 1")
    try:
        store = Store(args.store)
    except StoreError as e:
        return _fail(str(e))
    store.register(suite, specs)
    done = store.done_keys(s.key for s in specs)
    todo = [s for s in specs if s.key not in done]
    print(
        f"suite {suite.name} v{suite.version}: {len(specs)} runs, {len(done)} already done, "
        f"{len(todo)} to run (store {args.store})",
        file=sys.stderr,
    )
    log_dir = Path(args.store).parent / "logs"
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's SIGTERM stops cleanly, as Ctrl-C
    try:
        results = run_local(store, todo, min(args.jobs, max(len(todo), 1)), log_dir, args.quiet, suite.name)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished runs are stored; run the same command again to resume", file=sys.stderr
        )
        return 130
    failed = [r for r in results if r["status"] == "failed"]
    print(f"{len(results) - len(failed)} done, {len(failed)} failed; logs in {log_dir}", file=sys.stderr)
    for r in failed:
        first = (r["error"] or "").splitlines()[0] if r["error"] else "unknown error"
        print(f"  failed {r['key']}: {first} (log: {r.get('log_path')})", file=sys.stderr)
    return 1 if failed else 0


def cmd_list(args) -> int:
    from bench.algos import ALGORITHMS
    from bench.control.tasks import TASKS
    from bench.suite import SuiteError, expand, load_suite

    print("suites:")
    for path in sorted(Path(args.suites_dir).glob("*.yaml")):
        try:
            suite = load_suite(path)
            print(
                f"  {path}  {suite.name} v{suite.version}: {len(expand(suite))} runs"
                f"{' — ' + suite.description if suite.description else ''}"
            )
        except SuiteError as e:
            print(f"  {path}  INVALID: {e}")
    print("tasks:")
    for t in TASKS.values():
        print(
            f"  {t.id}  threshold {t.reward_threshold:g}, bounds "
            f"[{t.random_score:g} random, {t.solved_score:g} solved]"
        )
    print("algorithms:")
    for a in ALGORITHMS.values():
        print(f"  {a.name}  {a.description}")
    return 0


def cmd_status(args) -> int:
    import pandas as pd

    from bench.store import Store, StoreError
    from bench.summary import run_summary

    try:
        store = Store(args.store, create=False)
    except StoreError as e:
        return _fail(str(e))
    counts = store.status_counts()
    if args.suite:
        counts = counts[counts.suite == args.suite]
        if counts.empty:
            return _fail(f"no suite {args.suite!r} in {args.store}")
    if counts.empty:
        print("no suites in this store yet")
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(counts.to_string(index=False))
        if args.suite or args.runs:
            for name in counts.suite:
                table = run_summary(store, name)
                if not table.empty:
                    print(f"\n{name}: per algorithm x task (medians over seeds; final = last eval)")
                    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def cmd_export(args) -> int:
    from bench.store import Store, StoreError, tidy

    try:
        store = Store(args.store, create=False)
    except StoreError as e:
        return _fail(str(e))
    table = tidy(store, args.suite)
    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.format == "csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
        tmp.replace(out)  # atomic: never a half-written export
    except OSError as e:
        tmp.unlink(missing_ok=True)
        return _fail(f"cannot write {out}: {e.strerror or e}")
    print(f"wrote {len(table)} rows to {out}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Benchmark suite for policy-gradient and preference-alignment algorithms.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, fn) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EPILOG)
        p.add_argument(
            "--store",
            default=DEFAULT_STORE,
            metavar="PATH",
            help=f"results store, an SQLite file (default: {DEFAULT_STORE})",
        )
        p.set_defaults(fn=fn)
        return p

    p = add("run", "Run a suite: every run not already done in the store (resumable).", cmd_run)
    p.add_argument("suite", help="suite file, e.g. suites/smoke.yaml")
    p.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    p = add("list", "List the suites in a folder, the tasks and the algorithms.", cmd_list)
    p.add_argument("suites_dir", nargs="?", default="suites", help="folder of suite files")

    p = add("status", "Per suite: done / failed / running / pending runs.", cmd_status)
    p.add_argument("--suite", help="one suite, with a per algorithm x task summary")
    p.add_argument("--runs", action="store_true", help="per algorithm x task summaries of all suites")

    p = add("export", "Export the store as a tidy long table (columns in README.md).", cmd_export)
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="output file")
    p.add_argument("--suite", help="only this suite")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
