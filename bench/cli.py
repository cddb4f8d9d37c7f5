"""The ``bench`` command line: run | list | status | export | import | report | leaderboard | compare.

Exit status: 0 success; 1 some runs failed (``run``) or a regression was found (``compare``);
2 bad input (malformed suite, missing or unreadable store or file, bad arguments) — with one
message and nothing written; 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys
import tempfile
from pathlib import Path

from bench.runtime import fail as _fail
from bench.store import DEFAULT_STORE, TIMING_METRICS, TIMING_PREFIXES, TIMING_SUFFIXES

DEFAULT_PUBLISHED = "baselines/published.csv"

EPILOG = "Every command takes --store PATH (default: runs/bench.sqlite)."


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _lm_tasks() -> dict:
    from bench.lm.tasks import LM_TASKS

    return LM_TASKS


def cmd_run(args) -> int:
    from bench.executors import RAY_MISSING
    from bench.suite import SuiteError, expand, find_suite, load_suite

    args.suite = str(find_suite(args.suite))  # a path, or the name of a shipped suite
    if args.address and args.executor != "ray":
        return _fail("--address is for --executor ray")
    if not args.rehearse and (args.rehearse_steps or args.rehearse_prompts):
        return _fail("--rehearse-steps and --rehearse-prompts are for --rehearse")
    if args.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            return _fail(RAY_MISSING)
    from bench import distributed

    if distributed.launched():  # under torchrun: this process is one rank of a distributed launch
        return distributed.cmd_run(args)
    try:
        suite = load_suite(args.suite)
        specs = expand(suite)
    except SuiteError as e:
        return _fail(str(e))
    if args.plugin:  # the workers import them too
        specs = [dataclasses.replace(s, plugins=tuple(args.plugin)) for s in specs]
    if args.rehearse:
        from bench.rehearse import rehearse

        return rehearse(args, suite, specs, _execute)
    return _execute(args, suite, specs)


def _execute(args, suite, specs) -> int:
    """``bench run``'s work once the runs are known: checks, registers the plan in ``args.store``,
    trains what is not done yet (``args.jobs``, ``args.executor``, ``args.quiet``, ``args.pin_code``)
    and prints the outcome; the exit status."""
    from bench.compare import earlier_settings
    from bench.executors import ExecutorError, Session, run_local, run_ray
    from bench.store import Store, StoreError

    lm_recipes = {s.alignment_json: s.alignment for s in specs if s.task in _lm_tasks() and s.alignment_json}
    if lm_recipes:
        from bench.lm.hub import HubError, preflight

        try:
            preflight(list(lm_recipes.values()))
        except HubError as e:
            return _fail(f"{suite.path or suite.name}: {e}")
    try:
        store = Store(args.store)
        done = store.done_keys(s.key for s in specs)
        earlier = store.done_under_other_code([s for s in specs if s.key not in done])
        if args.pin_code:  # the plan takes the earlier code's runs in their place
            specs = [
                dataclasses.replace(s, key=earlier[s.base_key][0], code_json="")
                if s.key not in done and s.base_key in earlier
                else s
                for s in specs
            ]
        store.register(suite, specs)
        done = store.done_keys(s.key for s in specs)
        # runs whose (label, task, seed) was done under other settings (a changed default, say)
        rerun = {s.key for s in specs if s.key not in done and s.base_key not in earlier}
        resettled: dict[str, tuple[int, list[str]]] = {}
        if rerun and len(older := store.earlier_runs(suite.name)):
            plan = store.runs(suite.name)
            resettled = earlier_settings(plan[plan.key.isin(rerun)], older)
    except StoreError as e:
        return _fail(str(e))
    todo = [s for s in specs if s.key not in done]
    print(
        f"suite {suite.name} v{suite.version}: {len(specs)} runs, {len(done)} already done, "
        f"{len(todo)} to run (store {args.store})",
        file=sys.stderr,
    )
    if earlier:
        changed = sorted({s.algo for s in specs if s.base_key in earlier})
        if args.pin_code:
            print(
                f"{len(earlier)} runs pinned to results of earlier code ({', '.join(changed)})",
                file=sys.stderr,
            )
        else:
            print(
                f"{len(earlier)} of them were done under earlier code of {', '.join(changed)}: they run again"
                " under the current code (the earlier results stay in the store; --pin-code keeps them)",
                file=sys.stderr,
            )
    if resettled:
        what = ", ".join(f"{label} ({'; '.join(diffs)})" for label, (_, diffs) in sorted(resettled.items()))
        print(
            f"{sum(n for n, _ in resettled.values())} of them were done under earlier settings of {what}: "
            "they run again (the earlier results stay in the store)",
            file=sys.stderr,
        )
    log_dir = Path(args.store).parent / "logs"
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's SIGTERM stops cleanly, as Ctrl-C
    session = Session(store, len(todo), log_dir, args.quiet, suite.name)
    try:
        if args.executor == "ray":
            results = run_ray(session, todo, args.address)
        else:
            jobs = min(args.jobs, max(sum(s.cpus for s in todo), 1))
            # a rehearsal runs every run in a worker: one killed for memory is a finding, not the end
            in_process = not getattr(args, "rehearse", False)
            results = run_local(session, todo, jobs, getattr(args, "batch_seeds", 1), in_process)
    except ExecutorError as e:
        return _fail(str(e))
    except StoreError as e:
        return _fail(
            f"{e}\n{len(session.results)} runs were stored before this; fix the store and run the same "
            "command again to resume"
        )
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished runs are stored; run the same command again to resume", file=sys.stderr
        )
        return 130
    finally:
        session.close()
    failed = [r for r in results if r["status"] == "failed"]
    print(f"{len(results) - len(failed)} done, {len(failed)} failed; logs in {log_dir}", file=sys.stderr)
    if session.elsewhere:
        owners = sorted({o.split(":")[1] for o in session.elsewhere.values() if o.count(":") >= 2})
        print(
            f"{len(session.elsewhere)} runs skipped: another bench process (pid {', '.join(owners)}) "
            "was running them on this store; `bench status` shows their state",
            file=sys.stderr,
        )
    for r in failed:
        first = (r["error"] or "").splitlines()[0] if r["error"] else "unknown error"
        log = f" (log: {r['log_path']})" if r.get("log_path") else ""
        print(f"  failed {r['key']}: {first}{log}", file=sys.stderr)
    return 1 if failed else 0


def cmd_list(args) -> int:
    from bench.algos import ALGORITHMS
    from bench.control.tasks import TASKS
    from bench.suite import SuiteError, expand, load_suite, shipped_suites

    folder = Path(args.suites_dir) if args.suites_dir else shipped_suites()
    if not folder.is_dir():
        return _fail(f"{args.suites_dir}: no such folder (bench list [FOLDER of suite files])")
    print("suites:" if args.suites_dir else "shipped suites (bench run NAME):")
    for path in sorted(folder.glob("**/*.yaml")):
        shown = path if args.suites_dir else path.relative_to(folder).with_suffix("")
        try:
            suite = load_suite(path)
            print(
                f"  {shown}  {suite.name} v{suite.version}: {len(expand(suite))} runs"
                f"{' — ' + suite.description if suite.description else ''}"
            )
        except SuiteError as e:
            print(f"  {shown}  INVALID: {e}")
    from bench.registry import BROKEN, BUILT_IN, TASK_ORIGINS

    print("tasks:")
    for t in TASKS.values():
        origin = TASK_ORIGINS.get(t.id, BUILT_IN)
        where = "" if origin is BUILT_IN else f"  [{origin.describe()}]"
        print(
            f"  {t.id}  threshold {t.reward_threshold:g}, bounds "
            f"[{t.random_score:g} random, {t.solved_score:g} solved]{where}"
        )
    for t in _lm_tasks().values():
        print(f"  {t.id}  LM task: {t.description}")
    print("algorithms:")
    for a in ALGORITHMS.values():
        where = "" if a.origin.kind == "built-in" else f"  [{a.origin.describe()}]"
        print(f"  {a.name}  {a.description}{where}")
    if BROKEN:
        print("broken plugins (pip uninstall to remove them):")
        for broken in BROKEN:
            print(f"  {broken.plugin}: {broken.describe()}")
    return 0


def describe_fields(model) -> list[tuple[str, str, str, str, str]]:
    """(name, type, default, bounds, description) of every field of a config model."""
    import typing

    import annotated_types as at

    rows = []
    for name, f in model.model_fields.items():
        if typing.get_origin(f.annotation) is typing.Literal:
            kind = " | ".join(str(v) for v in typing.get_args(f.annotation))
        else:
            kind = getattr(f.annotation, "__name__", None) or str(f.annotation).replace("typing.", "")
        bounds = []
        for m in f.metadata:
            for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
                if isinstance(m, getattr(at, attr.capitalize())) or hasattr(m, attr):
                    value = getattr(m, attr, None)
                    if value is not None:
                        bounds.append(f"{sym} {value:g}" if isinstance(value, float) else f"{sym} {value}")
        default = "required" if f.is_required() else repr(f.get_default(call_default_factory=True))
        rows.append((name, kind, default, ", ".join(bounds), f.description or ""))
    return rows


def cmd_describe(args) -> int:
    from bench.algos import ALGORITHMS
    from bench.registry import broken_algorithm
    from bench.report.tables import text_table

    algo = ALGORITHMS.get(args.algorithm)
    broken = broken_algorithm(args.algorithm)
    if algo is None and broken:
        return _fail(broken)
    if algo is None:
        import difflib

        close = difflib.get_close_matches(args.algorithm, list(ALGORITHMS), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        return _fail(f"unknown algorithm {args.algorithm!r} ({hint}algorithms: {', '.join(ALGORITHMS)})")
    needs = ", needs a suite's alignment: section" if algo.aligned else ""
    print(f"{algo.name} — {algo.description}")
    from bench.fingerprint import algorithm_fingerprint, code_id

    fp = algorithm_fingerprint(algo)
    print(f"domain: {algo.domain}{needs}; config: {algo.config.__module__}.{algo.config.__name__}")
    print(f"from: {algo.origin.describe()}; code version {code_id(fp)} (runs are keyed by it)\n")
    rows = describe_fields(algo.config)
    print(text_table(["field", "type", "default", "bounds", "description"], rows))
    if algo.task_defaults:
        print("\nshipped per-task defaults (used with use_task_defaults: true, the default):")
        for task, values in algo.task_defaults.items():
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "(none)"
            print(f"  {task}: {shown}")
    return 0


def cmd_status(args) -> int:
    import pandas as pd

    from bench.report.tables import leaderboard_document
    from bench.results import Results, leaderboard
    from bench.store import Store, StoreError

    try:
        store = Store(args.store, create=False)
        counts = store.status_counts()
        if args.suite:
            counts = counts[counts.suite == args.suite]
            if counts.empty:
                return _fail(store.unknown_suite(args.suite))
        machines = store.machines()
        machines = machines[machines.suite.isin(counts.suite)]
        kinds = machines[machines.machine != ""].groupby("suite").machine.nunique()
        counts["machines"] = counts.suite.map(kinds).fillna(0).astype(int)
        boards = []  # read everything before printing anything
        if args.suite or args.runs:
            for name in counts.suite:
                results = Results.from_store(store, name)
                boards.append(leaderboard_document(results, leaderboard(results), None, "text"))
    except StoreError as e:
        return _fail(str(e))
    if counts.empty:
        print("no suites in this store yet")
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(counts.to_string(index=False))
        if len(machines):
            print("\nmachine kinds of the finished runs (runs of one kind are bitwise-comparable):")
            for kind, g in machines.groupby("machine", sort=True):
                name = (
                    f"{kind}  {g.cpu.iloc[0]}" if kind else "not recorded (runs stored before fingerprints)"
                )
                suites = ", ".join(f"{r.suite} {r.runs}" for r in g.itertuples())
                print(f"  {name}: {suites}")
        for board in boards:
            print(f"\n{board}")
    return 0


def cmd_export(args) -> int:
    from bench.store import Store, StoreError, tidy

    try:
        store = Store(args.store, create=False)
    except StoreError as e:
        return _fail(str(e))
    kinds = {k.strip() for k in args.kind.split(",") if k.strip()}
    if not kinds or kinds - {"eval", "curve", "run"}:
        return _fail(f"--kind: choose from eval, curve, run (got {args.kind!r})")
    out = Path(args.output)
    fmt = args.format or ("parquet" if out.suffix.lower() in (".parquet", ".pq") else "csv")
    try:
        _refuse_inputs(args, out)
    except _BadInput as e:
        return _fail(str(e))
    try:
        if args.suite is not None and args.suite not in store.suite_names():
            return _fail(store.unknown_suite(args.suite))
        table = tidy(store, args.suite, kinds, timing=not args.no_timing)
    except StoreError as e:
        return _fail(str(e))
    from bench.safeio import csv_safe, write_file

    try:  # atomic: never a half-written export
        if fmt == "csv":
            write_file(out, lambda tmp: csv_safe(table).to_csv(tmp, index=False))
        else:
            write_file(out, lambda tmp: table.to_parquet(tmp, index=False))
    except OSError as e:
        return _fail(f"cannot write {out}: {e.strerror or e}")
    print(f"wrote {len(table)} rows to {out} ({fmt})", file=sys.stderr)
    return 0


def _load_results(args):
    """The suite's results from ``--results FILE`` (a `bench export` CSV) or from the store."""
    from bench.results import Results
    from bench.store import Store

    given = getattr(args, "results", None)
    if given:
        items = given if isinstance(given, list) else [given]
        parts = [_one_result(item, args.suite) for item in items]
        return parts[0][1] if len(parts) == 1 and not isinstance(given, list) else Results.combine(parts)
    if not args.suite:
        raise _BadInput("--suite is required (or --results FILE)")
    _not_rehearsal(args.suite)
    return Results.from_store(Store(args.store, create=False), args.suite)


def _not_rehearsal(suite: str | None) -> None:
    from bench.rehearse import SUFFIX

    if suite and suite.endswith(SUFFIX):
        raise _BadInput(
            f"suite {suite} is a rehearsal (`bench run --rehearse`): its runs are a few steps long and are"
            " not results; run the suite itself"
        )


def _one_result(item: str, suite: str | None):
    """(submission name, results) of one ``--results [NAME=]PATH``: a `bench export` CSV (or a
    ``bench import`` table), or an SQLite store (``--suite`` names the suite in it)."""
    from bench.results import Results
    from bench.store import Store

    name, path = _split_result(item)
    path_ = Path(path)
    if path_.suffix in (".sqlite", ".db", ".sqlite3"):
        if not suite:
            raise _BadInput(f"{path}: a store needs --suite to say which suite to read")
        _not_rehearsal(suite)
        return name, Results.from_store(Store(path_, create=False), suite)
    return name, Results.from_csv(path_, suite)


def _split_result(item: str) -> tuple[str, str]:
    """``[NAME=]PATH`` as (submission name, path); the name defaults to the file's stem."""
    name, _, path = item.rpartition("=") if "=" in item and not Path(item).exists() else ("", "", item)
    return name or Path(path).stem, path


class _BadInput(Exception):
    pass


def _refuse_inputs(args, *outputs: Path) -> None:
    """Refuses (``_BadInput``) an output file that is one of the command's inputs: the store, a
    ``--results``, ``--baseline``, ``--published`` or ``--notes`` file."""
    from bench.safeio import OutputError, refuse_inputs

    given = getattr(args, "results", None) or []
    store = getattr(args, "store", None)
    inputs = [("results store", store)]
    if store:  # and its journal files: a CSV written over the WAL would corrupt the store
        inputs += [("results store's journal", f"{store}{suffix}") for suffix in ("-wal", "-shm", "-journal")]
    inputs += [
        ("--results file", _split_result(item)[1]) for item in ([given] if isinstance(given, str) else given)
    ]
    for option in ("baseline", "published", "notes"):
        inputs.append((f"--{option} file", getattr(args, option, None)))
    if hasattr(args, "published") and not args.published:
        inputs.append(("--published file", DEFAULT_PUBLISHED))
    try:
        for out in outputs:
            refuse_inputs(out, inputs, "-o" if len(outputs) == 1 else f"-o ({out.name})")
    except OutputError as e:
        raise _BadInput(str(e)) from None


def _published(args):
    """Published anchors: --published PATH, default baselines/published.csv when it exists."""
    from bench.results import read_published

    if args.no_published:
        return None, ""
    path = Path(args.published or DEFAULT_PUBLISHED)
    if not args.published and not path.is_file():
        return None, ""
    return read_published(path), str(path)  # a ResultsError names what is wrong with the file


def _input_errors():
    from bench.results import ResultsError
    from bench.store import StoreError

    return (_BadInput, ResultsError, StoreError)


def cmd_report(args) -> int:
    from bench.report.render import ReportError, build, check_destination, folder_name, read_notes

    try:
        results = _load_results(args)
        published, source = _published(args)
        notes = read_notes(args.notes) if args.notes else None
        formats = _figure_formats(args.format)
        out = Path(args.output or Path("reports") / folder_name(results.name))
        check_destination(out)
    except (*_input_errors(), ReportError) as e:
        return _fail(str(e))
    try:
        info = build(results, out, published, source, reps=args.reps, seed=args.seed, progress=not args.quiet,
                     notes=notes, formats=formats)  # fmt: skip
    except ReportError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"cannot write {out}: {e.strerror or e}")
    kept = info["kept"]
    print(
        f"wrote {out}/index.html and summary.md: {info['tasks']} tasks, {info['runs']} runs, "
        f"{info['figures']} figures"
        + (
            f"; kept {len(kept)} file{'s' if len(kept) != 1 else ''} bench did not write ({_names(kept)})"
            if kept
            else ""
        ),
        file=sys.stderr,
    )
    return 0


def _names(names: list[str], limit: int = 3) -> str:
    from bench.report.tables import plain

    shown = ", ".join(plain(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _figure_formats(text: str) -> tuple[str, ...]:
    from bench.report.figures import FORMATS

    chosen = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise _BadInput(
            f"--format: unknown figure format {(unknown or [text])[0]!r} (choose from {', '.join(FORMATS)})"
        )
    return chosen


def cmd_import(args) -> int:
    from bench.importer import describe, discover, import_runs, shown
    from bench.safeio import OutputError, csv_text, refuse_inputs, write_file

    try:
        refuse_inputs(args.output, [("file to import", f) for f in discover([Path(p) for p in args.paths])])
        seeds = None
        if args.seeds:
            try:
                seeds = [int(s) for s in args.seeds.split(",")]
            except ValueError:
                raise _BadInput(f"--seeds {args.seeds!r}: expected integers separated by commas") from None
        table, dropped = import_runs([Path(p) for p in args.paths], args.task, args.algorithm, args.suite,
                                     args.source, args.tag, seeds)  # fmt: skip
    except (*_input_errors(), OutputError) as e:
        return _fail(shown(e))
    out = Path(args.output)
    try:
        write_file(out, csv_text(table))  # atomic; no text cell starts a spreadsheet formula
    except OSError as e:
        return _fail(f"cannot write {shown(out)}: {e.strerror or e}")
    runs = table.run_key.nunique()
    print(f"wrote {shown(out)}: {runs} run{'s' if runs != 1 else ''} of suite {shown(args.suite)!r}\n"
          f"{describe(table, dropped)}", file=sys.stderr)  # fmt: skip
    return 0


def cmd_leaderboard(args) -> int:
    from bench import results as R
    from bench.report import tables
    from bench.safeio import csv_text, write_file

    try:
        if args.output:
            _refuse_inputs(args, Path(args.output))
        results = _load_results(args)
        published, _ = _published(args)
    except _input_errors() as e:
        return _fail(str(e))
    board = R.leaderboard(results, reps=args.reps, seed=args.seed)
    if args.format == "csv":
        text = csv_text(board)
    elif args.format == "html":
        from bench.report.render import generated_at, leaderboard_page

        text = leaderboard_page(results, board, generated_at(), args.reps, args.seed)
    else:
        text = (
            tables.leaderboard_document(results, board, published, args.format, args.reps, args.seed) + "\n"
        )
    if not args.output:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    try:
        write_file(out, text)  # never a half-written page
    except OSError as e:
        return _fail(f"cannot write {out}: {e.strerror or e}")
    print(f"wrote {out}: {len(board)} rows", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    import jinja2

    from bench.compare import (
        HEADER,
        NOT_COMPARED,
        VERDICT_CLASSES,
        compare,
        display_rows,
        machine_note,
        protocol_mismatches,
        settings_note,
        summary,
        summary_class,
    )
    from bench.report.figures import compare_figure, figure_rows
    from bench.report.render import _env, folder_name, generated_at
    from bench.report.tables import markdown_table, md_escape, plain, text_table
    from bench.results import Results
    from bench.safeio import csv_text

    try:
        effect = _gate_effect(args)
        if (args.baseline is None) == (args.baseline_version is None):
            raise _BadInput("give exactly one of --baseline CSV and --baseline-version V")
        results = _load_results(args)
        if args.baseline is not None:
            baseline = Results.from_csv(args.baseline, args.baseline_suite or results.name)
            against = args.baseline
        else:
            if getattr(args, "results", None):
                raise _BadInput(
                    "--baseline-version compares runs of one store: it cannot be used with --results"
                )
            baseline = version_baseline(args.store, results.name, args.baseline_version)
            against = f"code {args.baseline_version} in the same store"
        out = Path(args.output or Path(args.store).parent / "compare" / folder_name(results.name))
        _refuse_inputs(args, *(out / name for name in COMPARE_FILES))
        mismatched = protocol_mismatches(results, baseline)
        if mismatched and not args.protocols_match:
            task, algo, mine, theirs = mismatched[0]
            more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
            raise _BadInput(
                f"{task} / {algo}: the two sides measure different things — store: {mine}; baseline: "
                f"{theirs}{more}. A gate across protocols compares unlike numbers; pass --protocols-match "
                "if they measure the same thing"
            )
    except _input_errors() as e:
        return _fail(str(e))
    one_store = args.baseline_version is not None
    table, level, points = compare(results, baseline, args.tolerance, args.confidence, effect, one_store)
    rows = display_rows(table)
    compared = int((~table.verdict.isin(NOT_COMPARED)).sum())
    if compared == 0 and not (table.verdict == "missing").any():
        return _fail(
            f"nothing to compare: no (task, algorithm) has finished runs in both the store and {against}"
        )
    verdict, fails = summary(table, args.allow_missing)
    method = (
        "Exact check first: runs matched by seed (and config) whose evaluation records are all equal are "
        "'identical'. Otherwise the difference of mean final scores (at the lowest evaluated temperature, "
        "greedy where T = 0 is evaluated; T = 1 for alignment runs), store "
        "minus baseline, on normalised scores where the task declares bounds: a paired t interval over seeds "
        "where both sides ran the same seeds, Welch's t interval otherwise; "
        f"{level:.2%} intervals ({args.confidence:.0%} family-wise, Bonferroni over {max(compared, 1)} "
        f"comparisons). Regression = interval entirely below {-args.tolerance if args.tolerance else 0:g}, "
        "or more failed runs than "
        "the baseline. 'could detect ≥' = the drop flagged with 80% power given the observed seed spread; "
        f"a green verdict that could not detect a drop of {effect:g} is marked under-powered."
    )
    if one_store:
        method = (
            "Runs paired by label, task and seed, whichever code and settings they ran; a (task, algorithm) "
            f"with the same runs on both sides is 'unchanged'. {method}"
        )
    method = " ".join(filter(None, [machine_note(results, baseline), settings_note(table), method]))
    print(text_table(HEADER, rows))
    print(f"\n{verdict}. {plain(method)}")
    for _, r in table[table.verdict == "missing"].iterrows():
        print(f"{'warning' if args.allow_missing else 'error'}: {plain(r.task)} / {plain(r.algorithm)}: "
              "in the baseline but no finished run in the store", file=sys.stderr)  # fmt: skip
    title = f"bench compare — {results.name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures = {}
            for scale, name in [("normalised", "compare.png"), ("raw", "compare-raw.png")]:
                if len(figure_rows(table, points, scale)):
                    compare_figure(table, points, args.tolerance, scale, Path(tmp) / name)
                    figures[name] = (Path(tmp) / name).read_bytes()
        images = "".join(f"![the gate per comparison]({name})\n\n" for name in figures)
        head = f"# {md_escape(title)}\n\n**{md_escape(verdict)}**\n\n{md_escape(method)}\n\n"
        md = f"{head}{images}{markdown_table(HEADER, rows)}\n"
        html = _env().get_template("compare.html.j2").render(
            title=title, verdict=verdict, store=results.source, baseline=against,
            verdict_class=summary_class(table, fails), generated=generated_at(), method=method,
            header=HEADER, rows=rows, figures=list(figures),
            classes=[VERDICT_CLASSES.get(v, "") for v in table.verdict],
        )  # fmt: skip
        files = {"compare.csv": csv_text(table), "compare.md": md, "compare.html": html, **figures}
        _write_all(out, files)
    except (OSError, jinja2.TemplateError) as e:
        return _fail(f"cannot write {out}: {getattr(e, 'strerror', None) or e}")
    print(f"wrote {out}/compare.md, compare.html, compare.csv", file=sys.stderr)
    return 1 if fails else 0


COMPARE_FILES = ("compare.csv", "compare.md", "compare.html", "compare.png", "compare-raw.png")


def _gate_effect(args) -> float:
    """``compare`` and ``plan``: checks --confidence, --tolerance and --effect; the effect (its
    default when not given)."""
    from bench.compare import default_effect

    effect = args.effect if args.effect is not None else default_effect(args.tolerance)
    if effect <= args.tolerance:
        raise _BadInput(
            "--effect must be larger than --tolerance (a drop within the tolerance is never flagged)"
        )
    return effect


def cmd_plan(args) -> int:
    from bench.compare import PLAN_HEADER, plan, plan_rows
    from bench.report.tables import text_table
    from bench.safeio import csv_text

    try:
        effect = _gate_effect(args)
        results = _load_results(args)
    except _input_errors() as e:
        return _fail(str(e))
    table, level = plan(results, args.tolerance, effect, args.confidence)
    if table.empty:
        return _fail(f"suite {results.name!r} has no finished runs to estimate seed spread from")
    if args.format == "csv":
        sys.stdout.write(csv_text(table))
        return 0
    print(text_table(PLAN_HEADER, plan_rows(table)))
    print(
        f"\nSeeds per side for the gate (`bench compare --tolerance {args.tolerance:g}`) to flag a drop of "
        f"{effect:g} with 80% power: paired t interval at {level:.2%} per comparison ({args.confidence:.0%} "
        f"family-wise over {len(table)} comparisons), seed spread as observed in {results.source}, the two "
        "sides' seeds taken as uncorrelated. Scores normalised where the task declares bounds."
    )
    claims = claim_plan(results)
    if len(claims):
        print()
        print(
            text_table(
                ["task", "claim", "verdict", "seeds", "replicates (predicted)", "seeds for 80%"], claims
            )
        )
        print(
            "\nPer claim: the chance that a fresh, disjoint seed set of the suite's size gives the same "
            "verdict (`bench replicate`), if the measured difference is the true one and the spread per seed "
            "stays as it was, and the fewest seeds that make it 80% (noncentral t; where a verdict rests on "
            "several differences, the product of their chances). An inconclusive verdict has nothing to "
            "replicate."
        )
    return 0


def cmd_claims(args) -> int:
    """Decides every registered paper claim that a store or export can decide (or lists them)."""
    from bench import claims as registry
    from bench.report.tables import text_table
    from bench.safeio import csv_safe, csv_text, write_file

    try:
        known = registry.load(args.claims or [])
    except registry.ClaimError as e:
        return _fail(str(e))
    if args.list:
        rows = [
            [c.id, registry.short_paper(c.paper), c.kind, c.a, c.b, c.baseline or "", c.source] for c in known
        ]
        print(text_table(["id", "paper", "kind", "a", "b", "baseline", "source"], rows))
        print(
            "\n" + "\n".join(f"{registry.short_paper(p)}: {p}" for p in dict.fromkeys(c.paper for c in known))
        )
        return 0
    try:
        if args.output:
            _refuse_inputs(args, Path(args.output))
        results = _load_results(args)
    except _input_errors() as e:
        return _fail(str(e))
    table = registry.evaluate(results, known, confidence=args.confidence)
    if table.empty:
        methods = ", ".join(sorted({m for c in known for m in c.methods()}))
        return _fail(f"no registered claim can be decided on {results.source}: the claims compare {methods}")
    if args.format == "csv":
        text = csv_text(csv_safe(table))
    else:
        rows = []
        for r in table.itertuples():
            decided = r.p_replicate == r.p_replicate
            diff = f"{r.effect:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}] ({r.interval})" if decided else "—"
            rows.append([registry.short_paper(r.paper), r.task, r.claim, r.verdict, diff,
                         f"{100 * r.p_replicate:.0f}%" if decided else "—"])  # fmt: skip
        text = text_table(["paper", "task", "claim", "verdict", "difference it rests on", "replicates"], rows)
        text += (
            "\n\nVerdicts by the rules of each claim's kind (`bench claims --list`; the reports guide); the "
            "difference is the one the verdict rests on, with its interval and kind; 'replicates' is the "
            "chance that a fresh seed set of the same size gives the same verdict (`bench plan`). "
            "`--format csv` has what was measured for every verdict.\n"
        )
    if not args.output:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    try:
        write_file(args.output, text)
    except OSError as e:
        return _fail(f"cannot write {args.output}: {e.strerror or e}")
    print(f"wrote {len(table)} verdicts to {args.output}", file=sys.stderr)
    return 0


def claim_plan(results) -> list[list[str]]:
    """``bench plan``'s claims section: per paper claim of the suite, its verdict, seeds, predicted
    replication chance and the seeds for 80% (empty where the suite has no claims)."""
    from bench.claims import claims_table

    table = claims_table(results)
    rows = []
    for r in table.to_dict("records"):
        p, need = r.get("p_replicate"), r.get("seeds_for_80")
        decided = isinstance(p, float) and p == p
        rows.append([
            r["task"], r["claim"], r["verdict"], "—" if not decided else f"{int(r['seeds'])}",
            "—" if not decided else f"{100 * p:.0f}%",
            "—" if not decided else ("more than 200" if need != need else f"{int(need)}"),
        ])  # fmt: skip
    return rows


def version_baseline(store_path, suite: str, version: str):
    """The suite's runs under code ``version`` (as ``bench status`` shows it, ``1+3fa2c1d09b7e``, or
    a prefix of its source hash) from the store, paired with its plan by (label, task, seed) across
    code and settings (``bench.compare.version_runs``): the baseline of ``--baseline-version``."""
    import pandas as pd

    from bench.compare import version_runs
    from bench.results import Results, ResultsError
    from bench.store import Store, code_short

    store = Store(store_path, create=False)
    if suite not in store.suite_names():
        raise ResultsError(store.unknown_suite(suite))
    current, older = store.runs(suite), store.earlier_runs(suite)
    cells = current[["algorithm", "task", "seed"]].drop_duplicates()
    runs = (pd.concat([current, older], ignore_index=True) if len(older) else current).merge(cells)
    short = runs["code"].map(code_short) if "code" in runs else pd.Series("", index=runs.index)
    match = (
        (short == version) | short.str.split("+").str[-1].str.startswith(version) if version else short == ""
    )
    if not match.any():
        known = ", ".join(sorted(set(short) - {""})) or "none recorded"
        raise ResultsError(
            f"no runs of suite {suite!r} under code {version!r} (code versions in the store: {known})"
        )
    if len(set(short[match])) > 1:
        found = ", ".join(sorted(set(short[match])))
        raise ResultsError(
            f"code {version!r} is ambiguous in suite {suite!r}: it matches {found}; give one in full"
        )
    runs = version_runs(runs, match, set(current.key))
    runs = runs.rename(columns={"key": "run_key"}).reset_index(drop=True)
    evals = store.evals_of(list(runs.run_key))
    return Results(runs, evals, f"store {Path(store_path).name}, code {version}", {"name": suite})


def cmd_replicate(args) -> int:
    from bench import replicate as rp
    from bench.report.render import folder_name, generated_at
    from bench.report.tables import text_table
    from bench.results import Results, ResultsError, method_of
    from bench.store import Store, StoreError
    from bench.suite import SuiteError, expand, find_suite, load_suite

    try:
        pub = rp.read_published(args.report)
        path = find_suite(args.suite or pub.suite)
        try:
            suite = load_suite(path)
        except SuiteError as e:
            return _fail(str(e))
        if suite.name != pub.suite:
            return _fail(f"{path}: suite {suite.name!r}, but the report is of suite {pub.suite!r}")
        moved = not args.suite and pub.hash and suite.hash() != pub.hash
        if moved and rp.same_runs(pub, suite):
            print(
                f"suite {suite.name}: its definition hash moved ({pub.hash} -> {suite.hash()}) but every "
                "published run is still the suite's run of that label, task and seed (their base keys are "
                "equal): defaults were added, the definition did not change",
                file=sys.stderr,
            )
        elif moved:
            return _fail(
                f"suite {suite.name} is now version {suite.version} (hash {suite.hash()}), the report was "
                f"made from version {pub.version or '?'} (hash {pub.hash}): a replication would run another "
                "suite. "
                "Re-publish the report first, or pass --suite FILE with the report's definition"
            )
        store_path = Path(args.store or Path("runs") / "replicate" / f"{folder_name(suite.name)}.sqlite")
        seeds = rp.resumed_seeds(store_path, suite, pub.seeds) if args.seed_start is None else None
        if seeds is None or (args.seeds and args.seeds != len(seeds)):
            seeds = rp.fresh_seeds(pub.seeds, suite.seeds, args.seeds or len(suite.seeds), args.seed_start,
                                   rp.replicated_seeds(pub.folder))  # fmt: skip
        fresh = suite.model_copy(update={"seeds": seeds})
        specs = expand(fresh)
        tasks = set(suite.tasks)
        if args.tasks:
            wanted = [t.strip() for t in args.tasks.split(",") if t.strip()]
            unknown = [t for t in wanted if t not in tasks]
            if unknown:
                return _fail(
                    f"--tasks {', '.join(unknown)}: not a task of suite {suite.name} "
                    f"({', '.join(sorted(tasks))})"
                )
            tasks = set(wanted)
        if args.claims:
            chosen = rp.pick_claims(pub.claims, [c.strip() for c in args.claims.split(",") if c.strip()])
            tasks &= set(chosen.task)
            methods = rp.claim_methods(list(chosen.claim))
            specs = [s for s in specs if method_of(s.label) in methods]
        if args.algorithms:
            keep = rp.select(
                sorted({s.label for s in specs}), [a.strip() for a in args.algorithms.split(",") if a.strip()]
            )
            specs = [s for s in specs if s.label in keep]
        specs = [s for s in specs if s.task in tasks]
        if not specs:
            return _fail("the selection leaves no runs to replicate")
    except rp.ReplicationError as e:
        return _fail(str(e))
    try:
        if store_path.exists():
            row = Store(store_path, create=False).suite_row(suite.name)
            if row and row[2] != fresh.hash():
                return _fail(
                    f"{store_path}: holds other runs of suite {suite.name} (another seed set or definition); "
                    "a replication needs a store of its own (--store)"
                )
        store_path.parent.mkdir(parents=True, exist_ok=True)
    except (StoreError, OSError) as e:
        return _fail(str(e))
    print(
        f"replicating {pub.folder} ({suite.name} v{suite.version}, published seeds "
        f"{', '.join(map(str, pub.seeds))}) on seeds {', '.join(map(str, seeds))}: {len(specs)} runs",
        file=sys.stderr,
    )
    if not args.no_run:
        ns = argparse.Namespace(store=str(store_path), jobs=args.jobs, executor="local", address=None,
                                quiet=args.quiet, pin_code=False, batch_seeds=args.batch_seeds)  # fmt: skip
        rc = _execute(ns, fresh, specs)
        if rc not in (0, 1):
            return rc
    try:
        here = Results.from_store(Store(store_path, create=False), suite.name)
    except (StoreError, ResultsError) as e:
        return _fail(str(e))
    other_kind = bool(rp.new_kinds(pub, here.runs))
    rep = rp.replicate(pub, here, seeds, args.margin, notes=rp.pinned_notes(suite, other_kind))
    out = Path(args.output) if args.output else rp.default_output(pub, here.runs, seeds)
    if len(rep.claims):
        print(text_table(rp.CLAIM_HEADER[:-1], [r[:-1] for r in rp.claim_display(rep)]))
        print()
    print(text_table(rp.ROW_HEADER, rp.row_display(rep)))
    print(f"\n{rep.verdict()}")
    try:
        _write_all(out, rp.page_files(rep, generated_at()))
    except OSError as e:
        return _fail(f"cannot write {out}: {e.strerror or e}")
    print(f"wrote {out}/index.html, replication.md, claims.csv, rows.csv", file=sys.stderr)
    return 1 if rep.fails else 0


def _write_all(folder: Path, files: dict[str, str | bytes]) -> None:
    """Writes every file or none: each goes to a temporary name first, and all are renamed into
    place once all are written (a full disk leaves the previous files as they were)."""
    from bench.safeio import temporary

    folder.mkdir(parents=True, exist_ok=True)
    tmps = {name: temporary(folder / name) for name in files}
    try:
        for name, content in files.items():
            if isinstance(content, bytes):
                tmps[name].write_bytes(content)
            else:
                tmps[name].write_text(content, encoding="utf-8")
        for name, tmp in tmps.items():
            tmp.replace(folder / name)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)


def _number(kind: type = float, low: float | None = None, high: float | None = None, low_open: bool = False,
            high_open: bool = False, why: str = ""):  # fmt: skip
    """An argparse type: a finite ``kind`` within [low, high] (open ends where asked), so that a
    NaN, an infinity or an absurd size is refused with the usage line and exit 2, never a hang."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {'>' if low_open else '>='} {low:g}{why}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {'<' if high_open else '<='} {high:g}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


PROBABILITY = _number(float, 0, 1, low_open=True, high_open=True)
JOBS = _number(int, 1, 4096)
SEED = _number(int, 0, 2**32 - 1)
REPS = _number(int, 1, 1_000_000)
TOLERANCE = _number(float, 0, 1e12)  # raw score units at most; beyond, the gate's arithmetic loses the drop


class _Parser(argparse.ArgumentParser):
    """argparse with bench's error form: one line ``error: bench CMD: what is wrong (see bench CMD
    --help)`` and exit status 2, as for every other bad input."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bench",
        description="Benchmark suite for policy-gradient and preference-alignment algorithms.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add_plugin(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--plugin", action="append", default=[], metavar="MODULE",
            help="import MODULE first: a module that registers algorithms or tasks with bench.api"
            " (repeatable; installed packages' entry points are loaded without it)",
        )  # fmt: skip

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

    p = add(
        "run",
        "Run a suite: every run not already done in the store. Resumable after Ctrl-C, a crash or a "
        "kill; several `bench run` processes may share one store (each run is trained by one of them).",
        cmd_run,
    )
    p.add_argument("suite", help="suite file, e.g. suites/smoke.yaml, or a shipped suite's name, e.g. smoke")
    p.add_argument(
        "--jobs", "-j", type=JOBS, default=1,
        help="local executor: CPU cores to keep busy (default 1); a run takes one, a Distributed "
        "PPO run one per worker",
    )  # fmt: skip
    p.add_argument(
        "--batch-seeds", type=JOBS, default=1, metavar="S",
        help="local executor: train up to S runs that differ only in their seed together in one process, "
        "their networks' arithmetic batched (PPO, PG, and PPO/PG fine-tuning: ppo-gt, ppo-rm, pg-gt, "
        "pg-rm; the same computation as one at a time, float for float: see the running guide); default 1",
    )  # fmt: skip
    p.add_argument(
        "--executor", choices=["local", "ray"], default="local",
        help="local: processes on this machine (default); ray: one Ray task per run, with its "
        "CPU/GPU needs (needs the [ray] extra)",
    )  # fmt: skip
    p.add_argument(
        "--address", metavar="ADDR",
        help="Ray cluster to join (e.g. ray://head:10001 or auto); default: start a local Ray instance",
    )  # fmt: skip
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument(
        "--rehearse", action="store_true",
        help="rehearse the suite before the long run: every artifact stage and every run of the grid (first "
        "seed) for a handful of steps, into a store and cache of their own under STORE's folder/rehearsal/; "
        "prints per stage whether it ran, its time per step and peak memory, and the projected time of the "
        "real run (docs: running guide)",
    )  # fmt: skip
    p.add_argument(
        "--rehearse-steps", type=JOBS, metavar="N",
        help="with --rehearse: updates of each LM run and SFT / reward-model steps (default 3)",
    )  # fmt: skip
    p.add_argument(
        "--rehearse-prompts", type=JOBS, metavar="N",
        help="with --rehearse: test prompts per LM evaluation (default: the suite's; fewer for big models "
        "on CPU, where Best-of-N samples N completions per prompt; its time is then scaled up linearly)",
    )  # fmt: skip
    p.add_argument(
        "--pin-code", action="store_true",
        help="count runs done under an earlier code version of their algorithm as done (keep published "
        "results) instead of training them again under the current code",
    )  # fmt: skip
    add_plugin(p)

    p = add("list", "List the suites in a folder, the tasks and the algorithms.", cmd_list)
    p.add_argument(
        "suites_dir", nargs="?", default=None, help="folder of suite files (default: bench's shipped suites)"
    )
    add_plugin(p)

    p = add(
        "describe",
        "Show an algorithm's hyperparameters: type, default, bounds, description, per-task defaults.",
        cmd_describe,
    )
    p.add_argument("algorithm", help="an algorithm name (see `bench list`)")
    add_plugin(p)

    p = add(
        "status",
        "Per suite: done / failed / running / interrupted (its bench run died; re-run by the next) / "
        "pending runs.",
        cmd_status,
    )
    p.add_argument("--suite", help="one suite, with a per algorithm x task summary")
    p.add_argument("--runs", action="store_true", help="per algorithm x task summaries of all suites")

    p = add("export", "Export the store as a tidy long table (columns in README.md).", cmd_export)
    p.add_argument(
        "--format",
        choices=["csv", "parquet"],
        default=None,
        help="file format (default: from the output's extension, .parquet or else csv)",
    )
    p.add_argument("--output", "-o", required=True, metavar="PATH", help="output file")
    p.add_argument("--suite", help="only this suite")
    p.add_argument(
        "--kind",
        default="eval,curve,run",
        help="record kinds to export, comma-separated from eval,curve,run (default: all); "
        "baselines keep eval,run",
    )
    p.add_argument(
        "--no-timing", action="store_true",
        help="leave out what measures time or speed, so that two runs of the same suite export "
        "byte-identical tables: the wall_time and train_time columns and the timing metrics "
        f"({', '.join(sorted(TIMING_METRICS))}, and any metric starting with "
        f"{' or '.join(TIMING_PREFIXES)} or ending with {', '.join(TIMING_SUFFIXES)})",
    )  # fmt: skip

    def stats_args(p, results=True):
        p.add_argument("--suite", help="suite name in the store")
        if results:
            p.add_argument(
                "--results", metavar="[NAME=]FILE", action="append",
                help="read a `bench export` CSV (or a `bench import` table, or another SQLite store with "
                "--suite) instead of the store; repeat to put several submissions in one report or "
                "leaderboard, each named NAME (default: the file's name)",
            )  # fmt: skip
        p.add_argument("--reps", type=REPS, default=2000, help="bootstrap resamples (default 2000)")
        p.add_argument("--seed", type=SEED, default=0, help="bootstrap seed (default 0)")

    def published_args(p):
        p.add_argument(
            "--published",
            metavar="CSV",
            help="published anchor numbers to show beside the suite's "
            f"(default: {DEFAULT_PUBLISHED} if present)",
        )
        p.add_argument("--no-published", action="store_true", help="leave published anchors out")

    p = add(
        "report",
        "Render a suite's comparison report: index.html, figures, CSV tables and summary.md in one folder.",
        cmd_report,
    )
    stats_args(p)
    published_args(p)
    p.add_argument("--output", "-o", metavar="DIR", help="report folder (default: reports/SUITE)")
    p.add_argument(
        "--notes",
        metavar="FILE",
        help="the author's findings, shown first (UTF-8 text: paragraphs, '- ' lists), e.g. "
        "reports/SUITE/NOTES.txt",
    )
    p.add_argument(
        "--format",
        default="png,svg",
        metavar="LIST",
        help="figure files to write, comma-separated from png, svg, pdf (default png,svg; PNG is always "
        "written). The page shows the SVG where one is written and not over 1.5 MB",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "import",
        help="Read others' runs — TensorBoard event files (SB3's and CleanRL's tags), SB3 Monitor files, "
        "another bench export — into a table that reports and leaderboards take with --results.",
        description="Read others' runs into a `bench export` table with each run's protocol (what its "
        "scores measure) and source. TensorBoard: rollout/ep_rew_mean (SB3: training-episode return, mean "
        "of the last 100 episodes), eval/mean_reward (SB3 EvalCallback) or charts/episodic_return "
        "(CleanRL: per episode, averaged here over the last 100 as SB3 does). Monitor files: the same "
        "running mean against cumulative env steps. One file is one run; seeds 0, 1, ... in file order.",
        epilog="example: bench import runs/cleanrl/ --task CartPole-v1 --algorithm cleanrl-ppo "
        "-o imported.csv && bench report --results bench.csv --results imported.csv -o reports/mine",
    )
    p.add_argument("paths", nargs="+", help="event files, Monitor files, bench exports or folders of them")
    p.add_argument("--task", required=True, help="the task the runs trained on, e.g. CartPole-v1")
    p.add_argument("--algorithm", required=True, help="the label the runs get, e.g. cleanrl-ppo")
    p.add_argument("--suite", default="imported", help="suite name in the table (default imported)")
    p.add_argument("--source", help="where the runs come from (default: the writer and file name)")
    p.add_argument("--tag", help="the TensorBoard scalar tag to read (default: the first standard one found)")
    p.add_argument("--seeds", help="seeds of the runs in file order, comma-separated (default 0, 1, ...)")
    p.add_argument("--output", "-o", required=True, metavar="CSV", help="the table to write")
    p.set_defaults(fn=cmd_import)

    p = add(
        "leaderboard",
        "Print a suite's leaderboard per task (and aggregate) for a README or PR.",
        cmd_leaderboard,
    )
    stats_args(p)
    published_args(p)
    p.add_argument(
        "--format",
        choices=["text", "md", "csv", "html"],
        default="text",
        help="output format (default text); html: one page whose table a reader sorts and filters in the "
        "browser (plain JavaScript, no network), with every submission's provenance",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")

    p = add(
        "claims",
        "Paper claims as data: decide every registered claim (the DPO paper's, installed plugins' "
        "(entry-point group bench.claims), and --claims files) on a suite's runs, one table with each "
        "verdict, the difference it rests on with its interval, and its chance to replicate.",
        cmd_claims,
    )
    p.add_argument("--suite", help="suite name in the store")
    p.add_argument(
        "--results", metavar="[NAME=]FILE", action="append",
        help="read a `bench export` CSV (or a published report's export) instead of the store; repeat "
        "for several submissions (a claim compares methods within one)",
    )  # fmt: skip
    p.add_argument(
        "--claims", metavar="FILE", action="append",
        help="a YAML file of your own claims (paper:, claims: [{id, statement, kind, a, b, ...}]), "
        "added to the registry; repeatable",
    )  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the registered claims and exit")
    p.add_argument("--confidence", type=PROBABILITY, default=0.95, help="interval confidence (default 0.95)")
    p.add_argument("--format", choices=["text", "csv"], default="text", help="output format (default text)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")

    p = add(
        "plan",
        "How many seeds the regression gate needs: per (task, algorithm), the drop a rerun could detect "
        "now and the seeds that detect --effect, from the seed spread of a suite's runs.",
        cmd_plan,
    )
    p.add_argument("--suite", help="suite name in the store")
    p.add_argument("--results", metavar="CSV", help="read a `bench export` CSV instead of the store")
    p.add_argument("--tolerance", type=TOLERANCE, default=0.05, help="the gate's tolerance (default 0.05)")
    p.add_argument(
        "--effect",
        type=_number(float, 0, 1e12, low_open=True),
        help="the drop to detect, in the tolerance's units (default: twice the tolerance; 0.1 for "
        "tolerance 0)",
    )
    p.add_argument(
        "--confidence", type=PROBABILITY, default=0.95, help="family-wise confidence (default 0.95)"
    )
    p.add_argument("--format", choices=["text", "csv"], default="text", help="output format (default text)")

    p = add(
        "compare",
        "Regression gate: compare a suite's runs with a baseline (a `bench export` CSV, or the same store's "
        "runs under an earlier code version): an exact check, then paired or Welch t intervals with the "
        "smallest drop each comparison could detect; exit 1 on a regression or a missing comparison.",
        cmd_compare,
    )
    p.add_argument("--suite", help="suite name in the store")
    p.add_argument("--results", metavar="CSV", help="read a `bench export` CSV instead of the store")
    p.add_argument("--baseline", metavar="CSV", help="baseline in `bench export` format")
    p.add_argument(
        "--baseline-version",
        metavar="V",
        help="compare with the same store's runs under code version V (as `bench status` shows it, "
        "e.g. 1+3fa2c1d09b7e, or a prefix of its source hash) instead of a CSV",
    )
    p.add_argument("--baseline-suite", help="suite name inside the baseline (default: --suite)")
    p.add_argument(
        "--tolerance",
        type=TOLERANCE,
        default=0.05,
        help="a drop counts only if the interval lies entirely below -TOLERANCE, in normalised score units "
        "(fraction of the random-to-solved range; raw units for tasks without bounds); default 0.05",
    )
    p.add_argument(
        "--effect",
        type=_number(float, 0, 1e12, low_open=True),
        help="the drop the gate must be able to see: a green verdict whose minimum detectable effect "
        "(80%% power) is larger is marked under-powered (default: twice the tolerance; 0.1 for tolerance 0)",
    )
    p.add_argument(
        "--protocols-match",
        action="store_true",
        help="gate even where the two sides' runs were measured under different protocols (e.g. an "
        "imported training-episode return against bench's evaluation); refused by default",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="let a (task, algorithm) of the baseline be absent from the store (a subset run); "
        "by default a missing comparison fails the gate",
    )
    p.add_argument(
        "--confidence", type=PROBABILITY, default=0.95, help="family-wise confidence (default 0.95)"
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="where to write compare.md/.html/.csv (default: next to the store)",
    )
    p = sub.add_parser(
        "replicate",
        help="Re-derive a published report on a fresh, disjoint seed set: re-run its suite (or the part a "
        "claim, algorithm or task needs) into a store of its own, then judge each claim (replicated / not "
        "replicated / inconclusive) and each leaderboard row (consistent / differs / inconclusive, at a "
        "stated margin) beside the chance the published numbers predict; exit 1 on a claim not "
        "replicated or a row that differs.",
        description="Re-derive a published report on seeds it did not use. Claims are judged by the "
        "report's own rules; rows by Welch intervals of here minus published, equivalence by two "
        "one-sided tests at ±margin. Writes index.html, replication.md, claims.csv, rows.csv and "
        "replication.json into REPORT/replication, or REPORT/replication-KIND when the runs here were made "
        "on a machine kind the report's were not (-seeds-A-B added where that folder holds other seeds; the "
        "report shows each when re-rendered). Resumable: "
        "run the same command again after an interruption.",
        epilog="example: bench replicate reports/lm-sentiment --jobs 2   |   bench replicate "
        "reports/control-alignment --claims 'DPO dominates' --tasks Pendulum-v1",
    )
    p.add_argument("report", help="a report folder written by `bench report` (e.g. reports/lm-sentiment)")
    p.add_argument(
        "--store", metavar="PATH",
        help="the replication's own store (default runs/replicate/SUITE.sqlite; refused if it holds other "
        "runs of the suite)",
    )  # fmt: skip
    p.add_argument(
        "--suite", metavar="FILE", help="the suite file to run (default: the shipped suite the report names)"
    )
    p.add_argument(
        "--seeds",
        type=_number(int, 2, 10_000, why=" (a verdict needs an interval, and an interval two seeds)"),
        help="how many fresh seeds (default: as many as the suite runs)",
    )
    p.add_argument(
        "--seed-start", type=_number(int, 0, 2**31 - 1),
        help="the first fresh seed (default: the seeds the replication's store already holds, to resume or "
        "judge again; else one past the largest seed the suite, the report or a replication beside it uses)",
    )  # fmt: skip
    p.add_argument("--claims", help="only what these claims need: comma-separated parts of their text")
    p.add_argument("--algorithms", help="only these run labels: comma-separated labels, methods or patterns")
    p.add_argument("--tasks", help="only these tasks, comma-separated")
    p.add_argument(
        "--margin", type=_number(float, 0, 10, low_open=True), default=0.1,
        help="equivalence margin for rows, as a fraction of the task's scale (random-to-solved range where "
        "declared, else the spread of the published rows' means); default 0.1",
    )  # fmt: skip
    p.add_argument("--jobs", "-j", type=JOBS, default=1, help="CPU cores to keep busy (default 1)")
    p.add_argument(
        "--batch-seeds", type=JOBS, default=1, metavar="S",
        help="train up to S of the fresh seeds together in one process (as `bench run --batch-seeds`)",
    )  # fmt: skip
    p.add_argument(
        "--no-run", action="store_true", help="judge what the replication store holds; train nothing"
    )
    p.add_argument(
        "--output", "-o", metavar="DIR",
        help="the page's folder (default REPORT/replication; REPORT/replication-KIND on another machine "
        "kind; never over a replication of other seeds)",
    )  # fmt: skip
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_replicate)
    return parser


def _not_text(argv: list[str]) -> str | None:
    """The first argument that is not UTF-8 text (bytes the file system gave as surrogates), shown
    with its bytes escaped; None when all are text."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return None


def main(argv: list[str] | None = None) -> int:
    bad = _not_text(sys.argv[1:] if argv is None else argv)
    if bad is not None:  # stored names and printed messages are UTF-8: refused before anything is written
        return _fail(f"argument '{bad}' is not UTF-8 text; rename the file or folder (or pass another path)")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0), or argparse's usage line and one error (2)
        return e.code if isinstance(e.code, int) else 2
    from bench.plugins import PluginError
    from bench.plugins import load as load_plugins

    try:  # the registry, installed plugins included: their tasks' bounds normalise scores
        load_plugins(getattr(args, "plugin", []))
    except PluginError as e:
        if hasattr(args, "plugin"):  # run, list, describe: a plugin that cannot be used stops them
            return _fail(str(e))
        print(f"warning: {e}", file=sys.stderr)  # reading results goes on without it
    from bench.registry import broken_plugin_warnings

    for warning in broken_plugin_warnings():  # an installed plugin that cannot be used is left out
        print(f"warning: {warning}", file=sys.stderr)
    try:
        return args.fn(args)
    except BrokenPipeError:  # `bench list | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
