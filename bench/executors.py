"""Executing runs: ``run_one`` (in a worker) and the executors that drive it: local (a process
pool on this machine) and Ray (tasks on a Ray cluster, ``run_ray``).

Workers never touch the store: each returns its records as a plain dict and the driver writes
it in one transaction. A run that raises comes back ``failed`` with its traceback; the rest of
the suite goes on. Ctrl-C (or SIGTERM) stops the workers and leaves unfinished runs ``pending``.
A run occupies ``spec.cpus`` cores (its worker processes, for Distributed PPO): the local
executor keeps at most ``--jobs`` cores busy, Ray schedules each run with its CPU/GPU needs.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import multiprocessing as mp
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from bench import machine, memory
from bench.runtime import die_with_parent, warm_up
from bench.store import Store, now
from bench.suite import RunSpec

PACKAGES = ["bench", "torch", "numpy", "gymnasium", "stable-baselines3", "pydantic", "transformers", "trl"]


@lru_cache(maxsize=1)
def provenance() -> dict:
    """git revision (with ``-dirty`` for uncommitted changes), package versions, host."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        rev = (rev + ("-dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        rev = "unknown"
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"git_rev": rev, "packages": versions, "host": socket.gethostname()}


def log_path_for(log_dir: Path, spec: RunSpec) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in f"{spec.label}-{spec.task}")
    return log_dir / spec.suite / f"{safe}-s{spec.seed}-{spec.key}.log"


_progress_queue = None  # set in pool workers by _init_worker


def _init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C
    die_with_parent()


def run_one(spec: RunSpec, log_path: str | None = None, progress=None, capture_log: bool = False) -> dict:
    """Trains and evaluates one run; returns its records. Never raises for a failing run.

    ``capture_log``: the log goes into the result (``log_text``) instead of a file, for workers
    that do not share the driver's filesystem (Ray)."""
    import torch

    from bench.recorder import Recorder

    torch.set_num_threads(1)  # determinism and no oversubscription with --jobs
    warm_up()
    logger, handler = _run_logger(spec, log_path, capture_log)
    started = now()
    recorder = Recorder(progress=_on_progress(spec, logger, progress))
    status, error = "done", None
    alarm = _Alarm(spec.timeout_s)
    measured = memory.reset_peak()
    try:
        alarm.start()
        algo, cfg = _algorithm(spec)
        (_train_lm if algo.domain == "lm" else _train_control)(spec, algo, cfg, recorder, logger)
    except Exception as e:  # noqa: BLE001 - recorded as a failed run
        status, error = _failure(e, recorder, logger)
    finally:
        alarm.stop()
    return _finished(spec, recorder, logger, handler, started, log_path, status, error, measured)


def run_batch(specs: list[RunSpec], log_paths: list[str | None], progress=None) -> list[dict]:
    """Trains runs that differ only in their seed together in this process, with their algorithm's
    seed-batched trainer (``Algorithm.train_seeds``); returns each run's records, as ``run_one``
    would. Never raises for a failing run: a seed that fails fails alone; an error of the batch as
    a whole fails every run of it."""
    import torch

    from bench.control.tasks import get_task
    from bench.evaluation import Evaluator
    from bench.pipeline.context import run_context
    from bench.recorder import SeedBatchClock

    torch.set_num_threads(1)
    warm_up()
    logs = [_run_logger(spec, path, False) for spec, path in zip(specs, log_paths, strict=True)]
    seeds = [s.seed for s in specs]
    for logger, _ in logs:
        logger.info("seed batch of %d runs (seeds %s)", len(specs), ", ".join(map(str, seeds)))
    started = now()
    clock = SeedBatchClock()
    recorders = [
        clock.recorder(_on_progress(s, log[0], progress)) for s, log in zip(specs, logs, strict=True)
    ]
    first = specs[0]
    alarm = _Alarm(first.timeout_s)
    measured = memory.reset_peak()
    try:
        alarm.start()
        algo, cfg = _algorithm(first)
        task, ev = get_task(first.task), first.evaluation
        contexts = []
        if algo.aligned:  # each seed's reference policy and preference data (built or cached)
            contexts = [
                run_context(task, s.alignment, s.seed, log=log[0].info)
                for s, log in zip(specs, logs, strict=True)
            ]
        evaluators = [
            Evaluator(task, rec, seed, ev.eval_every, ev.eval_episodes, ev.temperatures,
                      ev.final_temperatures, reference=contexts[j].reference() if contexts else None)
            for j, (seed, rec) in enumerate(zip(seeds, recorders, strict=True))
        ]  # fmt: skip
        for context, rec in zip(contexts, recorders, strict=False):  # (no contexts: none)
            context.recorder = rec
        clock.start = time.perf_counter()
        extra = (contexts,) if contexts else ()
        outcomes = algo.train_seeds(task, cfg, first.env_steps, seeds, evaluators, recorders, *extra)
    except Exception as e:  # noqa: BLE001 - the batch as a whole failed: every run of it did
        outcomes = [e] * len(specs)
    finally:
        alarm.stop()
    results = []
    parts = zip(specs, log_paths, logs, recorders, outcomes, strict=True)
    for spec, path, (logger, handler), rec, outcome in parts:
        failed = isinstance(outcome, BaseException)
        status, error = _failure(outcome, rec, logger) if failed else ("done", None)
        results.append(_finished(spec, rec, logger, handler, started, path, status, error, measured))
    return results


def _algorithm(spec: RunSpec):
    """(algorithm, validated config) of a run, with this worker's registry set up as the driver's."""
    from bench.algos import ALGORITHMS

    _registry_for(spec)
    algo = ALGORITHMS[spec.algo]
    return algo, algo.config(**spec.config)


def _run_logger(spec: RunSpec, log_path: str | None, capture_log: bool):
    """The run's logger and its handler (a file, or a string for ``capture_log``), with the run's
    first lines written."""
    logger = logging.getLogger(f"bench.run.{spec.key}")
    logger.propagate = False
    handler = None
    if capture_log:
        handler = logging.StreamHandler(io.StringIO())
    elif log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_path, mode="w")
    if handler is not None:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    logger.info(
        "run %s: %s on %s, seed %d, %d env steps", spec.key, spec.label, spec.task, spec.seed, spec.env_steps
    )
    logger.info("config %s", spec.config_json)
    return logger, handler


def _on_progress(spec: RunSpec, logger, progress):
    """The recorder's progress callback: a log line every 5 s (every call in a rehearsal, whose
    time per step is read back from them), and the live progress bar."""
    from bench.rehearse import SUFFIX

    last_log = [0.0]
    every = 0.0 if spec.suite.endswith(SUFFIX) else 5.0

    def on_progress(env_steps: int, sps: float) -> None:
        t = time.monotonic()
        if t - last_log[0] > every:
            last_log[0] = t
            train_s = env_steps / sps if sps > 0 else 0.0
            logger.info("env_steps=%d env_steps_per_s=%.0f train_s=%.4f", env_steps, sps, train_s)
        if progress is not None:
            progress(spec.key, env_steps, sps)
        elif _progress_queue is not None:
            try:
                _progress_queue.put_nowait((spec.key, env_steps, sps))
            except Exception:  # noqa: BLE001 - a full progress queue must never fail a run
                pass

    return on_progress


def _failure(e: BaseException, recorder, logger) -> tuple[str, str]:
    """(status, error) of a run stopped by ``e``, logged."""
    from bench.algos.guard import Diverged

    if isinstance(e, RunTimeout):
        error = f"timeout after {e.args[0] if e.args else '?'} s"
        logger.info("FAILED: %s\n%s", error, _trace(e, 3))
    elif isinstance(e, Diverged):  # NaN / inf loss or parameter: failed, with the step and the quantity
        error = str(e)  # one line: "diverged at env step 12288: policy loss is nan"
        if e.unit in ("env step", "update"):
            recorder.env_steps = max(recorder.env_steps, e.step)
        logger.info("FAILED: %s\n%s", error, _trace(e, 3))
    else:
        error = f"{type(e).__name__}: {e}\n" + _trace(e, 8)
        logger.info("FAILED\n%s", error)
    return "failed", error


def _trace(e: BaseException, limit: int) -> str:
    return "".join(traceback.format_exception(type(e), e, e.__traceback__, limit=-limit))


def _finished(spec, recorder, logger, handler, started, log_path, status, error, measured) -> dict:
    peak = memory.peak_rss_mb() if measured else None
    if peak is not None:
        logger.info("peak resident memory %.0f MiB", peak)
    if recorder.held:
        logger.info("models held: %s", ", ".join(f"{k} {v:,} parameters" for k, v in recorder.held.items()))
    result = _result(spec, recorder, logger, handler, started, log_path, status, error)
    result["peak_rss_mb"] = peak
    result["parameters"] = sum(recorder.held.values()) if recorder.held else None
    result["packages"] = packages_for(spec)
    return result


def packages_for(spec: RunSpec) -> dict:
    """The run's package versions: bench's own list, and for a run of plugin code (algorithm or
    task) every installed distribution whose package the process has imported — the plugin's own
    and what it wraps (tianshou, say)."""
    from bench.algos import ALGORITHMS
    from bench.registry import BUILT_IN, TASK_ORIGINS

    versions = dict(provenance()["packages"])
    algo = ALGORITHMS.get(spec.algo)
    plugin = (algo is None or algo.origin.kind != "built-in") or TASK_ORIGINS.get(
        spec.task, BUILT_IN
    ).kind not in (
        "built-in",
        "suite",
    )
    if not plugin:
        return versions
    owners = metadata.packages_distributions()
    for top in sorted({name.split(".")[0] for name in list(sys.modules)}):
        if top.startswith("_") or top in sys.stdlib_module_names:
            continue
        for dist in owners.get(top, []):
            if dist not in versions:
                try:
                    versions[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
    return versions


class RunTimeout(Exception):
    """Raised in a run when its wall-clock limit (``RunSpec.timeout_s``) is reached."""


class _Alarm:
    """The run's wall-clock limit, as SIGALRM raising ``RunTimeout`` in the run's (main) thread:
    it stops Python code that loops or waits. Code that hangs inside C without returning to Python
    is stopped from outside instead: plugin runs have a process of their own, which the local
    executor kills ``HARD_GRACE_S`` after the limit."""

    def __init__(self, seconds: int | None):
        self.seconds = seconds
        self.armed = False

    def start(self) -> None:
        if not self.seconds or threading.current_thread() is not threading.main_thread():
            return
        if not hasattr(signal, "setitimer"):  # Windows: only the outside kill
            return

        def ring(signum, frame):
            raise RunTimeout(self.seconds)

        self.previous = signal.signal(signal.SIGALRM, ring)
        signal.setitimer(signal.ITIMER_REAL, float(self.seconds))
        self.armed = True

    def stop(self) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            signal.signal(signal.SIGALRM, self.previous)
            self.armed = False


HARD_GRACE_S = 30.0


def isolated(spec: RunSpec) -> bool:
    """Whether a run executes plugin code, which gets a worker process of its own (a crash or a
    hang in C then ends only that run)."""
    from bench.algos import ALGORITHMS

    algo = ALGORITHMS.get(spec.algo)
    return algo is None or algo.origin.kind != "built-in"


def _registry_for(spec: RunSpec) -> None:
    """This worker's registry as the driver's: the installed plugins, the run's ``--plugin``
    modules, and the task when the suite declares it."""
    from bench.plugins import load

    load(spec.plugins)
    if spec.task_json:
        import json

        from bench.suite.load import declare_task
        from bench.suite.schema import TaskDeclaration

        declare_task(TaskDeclaration(**json.loads(spec.task_json)), spec.suite)


def _train_control(spec: RunSpec, algo, cfg, recorder, logger) -> None:
    """A classic-control run (with the task's reference and preferences for alignment methods)."""
    import torch

    from bench.control.tasks import get_task
    from bench.evaluation import Evaluator
    from bench.pipeline.context import run_context

    ev = spec.evaluation
    task = get_task(spec.task)
    extra, reference = (), None
    if algo.aligned:
        # reference policy and preference data: built once per (task, seed, recipe), cached;
        # their build time is not part of this run's time
        context = run_context(task, spec.alignment, spec.seed, log=logger.info)
        reference = context.reference()
        extra = (context,)
    evaluator = Evaluator(task, recorder, spec.seed, ev.eval_every, ev.eval_episodes, ev.temperatures,
                          ev.final_temperatures, reference=reference)  # fmt: skip
    torch.manual_seed(spec.seed)
    recorder.start = time.perf_counter()
    if extra:
        context.recorder = recorder
    algo.train(task, cfg, spec.env_steps, spec.seed, evaluator, recorder, *extra)


def _train_lm(spec: RunSpec, algo, cfg, recorder, logger) -> None:
    """An LM run: the task's pipeline context (built or loaded from the cache) and evaluator."""
    import torch

    from bench.lm import quiet_hf
    from bench.lm.tasks import get_lm_task
    from bench.lm_evaluation import LMEvaluator
    from bench.pipeline.context import run_context

    quiet_hf()
    task = get_lm_task(spec.task)
    ev = spec.evaluation
    context = run_context(task, spec.alignment, spec.seed, log=logger.info)
    evaluator = LMEvaluator(
        context, recorder, spec.seed, ev.eval_every, ev.temperatures, ev.final_temperatures
    )
    torch.manual_seed(spec.seed)
    recorder.start = time.perf_counter()
    context.recorder = recorder  # from here on, artifact build time is kept out of training time
    algo.train(task, cfg, spec.env_steps, spec.seed, evaluator, recorder, context)


def _result(spec, recorder, logger, handler, started, log_path, status, error) -> dict:
    wall, train = recorder.wall_time(), recorder.train_time()
    for step, _, _, temp, metric, value, n in recorder.evals:
        if metric == "eval/return":
            logger.info("eval step=%d T=%g return=%.2f (n=%d)", step, temp, value, n)
    logger.info("%s in %.1f s (%.1f s training), %d env steps", status, wall, train, recorder.env_steps)
    log_text = None
    if handler:
        if isinstance(handler.stream, io.StringIO):
            log_text = handler.stream.getvalue()
        handler.close()
        logger.removeHandler(handler)
    return {
        "key": spec.key,
        "status": status,
        "error": error,
        "started_at": started,
        "ended_at": now(),
        "wall_time": wall,
        "train_time": train,
        "env_steps": recorder.env_steps,
        "curves": recorder.curves,
        "evals": recorder.evals,
        "samples": recorder.samples,
        "outcomes": recorder.outcomes,
        "log_path": log_path,
        "log_text": log_text,
        **provenance(),
        "machine": machine.fingerprint(),
    }


class Progress:
    """tqdm bar over runs with the current aggregate env-steps/s in its postfix."""

    def __init__(self, total: int, desc: str, disable: bool):
        self.bar = tqdm(
            total=total, desc=desc, unit="run", disable=disable, dynamic_ncols=True, mininterval=0.5
        )
        self.live: dict[str, float] = {}
        self.failed = 0
        self.done_steps, self.done_train_time = 0, 0.0  # of the runs finished so far

    def update_live(self, key: str, env_steps: int, sps: float) -> None:
        self.live[key] = sps
        self._postfix()

    def finished(self, result: dict) -> None:
        self.live.pop(result["key"], None)
        self.failed += result["status"] == "failed"
        self.done_steps += int(result.get("env_steps") or 0)
        self.done_train_time += float(result.get("train_time") or 0.0)
        self.bar.update(1)
        self._postfix()

    def _postfix(self) -> None:
        if self.live:  # the runs in flight, together
            rate = f"{sum(self.live.values()) / 1000:.1f}k env-steps/s"
        elif self.done_train_time > 0:  # between runs and at the end: the finished runs' mean rate
            rate = f"{self.done_steps / self.done_train_time / 1000:.1f}k env-steps/s per run"
        else:
            rate = "starting"
        self.bar.set_postfix_str(f"{rate}, {self.failed} failed", refresh=False)

    def close(self) -> None:
        self.bar.close()


class Session:
    """One driver's side of a suite run, shared by the executors: claims runs in the store
    before starting them, writes every result as it comes back, and on an interruption gives
    back its claims on unfinished runs. Runs another live ``bench run`` holds are skipped
    (``elsewhere``); runs whose owner died are taken over."""

    def __init__(self, store: Store, total: int, log_dir: Path, quiet: bool, desc: str):
        self.store, self.log_dir = store, log_dir
        self.progress = Progress(total, desc, quiet)
        self.results: list[dict] = []
        self.running: set[str] = set()
        self.log_paths: dict[str, str] = {}  # run key -> its log file (claimed runs)
        self.elsewhere: dict[str, str] = {}  # run key -> the owner running it

    def claim(self, spec: RunSpec) -> str | None:
        """The run's log path if this driver now holds the run, else None (skip it)."""
        path = str(log_path_for(self.log_dir, spec))
        why = self.store.claim(spec.key, path)
        if why is None:
            self.running.add(spec.key)
            self.log_paths[spec.key] = path
            return path
        if why not in ("done", "gone"):
            self.elsewhere[spec.key] = why
        self.progress.bar.total -= 1
        self.progress.bar.refresh()
        return None

    def finish(self, result: dict) -> None:
        if not result.get("log_path"):  # a worker that died wrote no result: its log is still there
            result["log_path"] = self.log_paths.get(result["key"])
        self.store.write_result(result)
        self.running.discard(result["key"])
        self.results.append(result)
        self.progress.finished(result)

    def interrupted(self) -> None:
        self.close()
        self.store.mark_pending(self.running)

    def close(self) -> None:
        """Closes the progress bar (the caller that made the session does, when it ends)."""
        self.progress.close()


def seed_batches(specs: list[RunSpec], size: int) -> list[list[RunSpec]]:
    """``specs`` as units of work: runs that differ only in their seed, of an algorithm with a
    seed-batched trainer, in groups of at most ``size`` (in the order of their first run); every
    other run alone."""
    from bench.algos import ALGORITHMS

    groups: dict = {}
    for spec in specs:
        algo = ALGORITHMS.get(spec.algo)
        alone = size <= 1 or algo is None or algo.train_seeds is None or isolated(spec) or spec.cpus != 1
        same = dataclasses.replace(spec, key="", base_key="", seed=0)  # the run but for its seed
        groups.setdefault(spec.key if alone else same, []).append(spec)
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), max(size, 1))]


def run_local(
    session: Session, specs: list[RunSpec], jobs: int, batch_seeds: int = 1, in_process: bool = True
) -> list[dict]:
    """Runs ``specs`` with ``jobs`` processes (1 = in this process, unless ``in_process`` is False:
    then in a worker process, so that a run killed for memory fails alone); writes each result.
    With ``batch_seeds`` > 1, runs that differ only in their seed train together, up to that many
    in one process (``seed_batches``)."""
    units = seed_batches(specs, batch_seeds)
    try:
        if jobs == 1 and in_process and not any(map(isolated, specs)):
            for unit in units:
                claimed = _claim(session, unit)
                if claimed:
                    for result in _run_unit(claimed, session.progress.update_live):
                        session.finish(result)
        else:
            _run_pool(session, units, jobs)
    except KeyboardInterrupt:
        session.interrupted()
        raise
    return session.results


def _claim(session: Session, unit: list[RunSpec]) -> list[tuple[RunSpec, str]]:
    """The runs of ``unit`` this driver now holds, with their log paths."""
    return [(spec, path) for spec in unit if (path := session.claim(spec)) is not None]


def _run_unit(claimed: list[tuple[RunSpec, str]], progress=None) -> list[dict]:
    """Runs one unit of work (a run, or a seed batch) in this process; its results."""
    if len(claimed) == 1:
        return [run_one(claimed[0][0], claimed[0][1], progress)]
    return run_batch([spec for spec, _ in claimed], [path for _, path in claimed], progress)


def _run_pool(session: Session, units: list[list[RunSpec]], jobs: int) -> None:
    """At most ``jobs`` units in flight; a worker that dies fails only the runs it could hold."""
    ctx = mp.get_context("spawn")
    progress_queue = ctx.Queue(maxsize=10_000)
    todo = list(reversed(units))

    def new_pool(n: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(progress_queue,))

    while todo:
        with new_pool(jobs) as pool:
            in_flight: dict = {}  # future -> the specs it runs
            own: dict = {}  # future of a plugin run -> the pool of its own process
            started: dict = {}
            try:
                while todo or in_flight:
                    # a unit takes cpus(unit) of the ``jobs`` cores; a bigger one runs on its own
                    while todo and (not in_flight or busy(in_flight) + cpus(todo[-1]) <= jobs):
                        claimed = _claim(session, todo.pop())
                        if not claimed:
                            continue
                        spec = claimed[0][0]
                        if isolated(spec):
                            single = new_pool(1)
                            fut = single.submit(_run_unit, claimed)
                            own[fut] = single
                        else:
                            fut = pool.submit(_run_unit, claimed)
                        in_flight[fut], started[fut] = [s for s, _ in claimed], time.monotonic()
                    done, _ = wait(set(in_flight), timeout=0.5, return_when=FIRST_COMPLETED)
                    _drain(progress_queue, session.progress)
                    shared_broken = False
                    for fut in done:
                        unit = in_flight.pop(fut)
                        started.pop(fut)
                        try:
                            results = fut.result()
                        except BrokenProcessPool:
                            results = [_died(spec) for spec in unit]
                            shared_broken |= fut not in own
                        if fut in own:
                            own.pop(fut).shutdown(wait=False)
                        for result in results:
                            session.finish(result)
                    for fut in [f for f in own if _overdue(in_flight[f][0], started[f])]:
                        spec = in_flight.pop(fut)[0]
                        _kill(own.pop(fut))
                        session.finish(
                            _died(spec, f"timeout after {spec.timeout_s} s (killed: it did not stop)")
                        )
                    if shared_broken:
                        for fut in [f for f in in_flight if f not in own]:
                            for spec in in_flight.pop(fut):
                                session.finish(_died(spec))
                        if not in_flight:
                            break  # start a fresh pool for the rest
                        _finish_own(session, in_flight, own)
                        break
            except BaseException:  # Ctrl-C, or the store failing: stop the workers now
                for p in [pool, *own.values()]:
                    _kill(p)
                raise


def _overdue(spec: RunSpec, started: float) -> bool:
    return bool(spec.timeout_s) and time.monotonic() - started > spec.timeout_s + HARD_GRACE_S


def _kill(pool: ProcessPoolExecutor) -> None:
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _finish_own(session, in_flight: dict, own: dict) -> None:
    """Waits for the plugin runs still in their own processes (the shared pool is being replaced)."""
    for fut in list(own):
        spec = in_flight.pop(fut)[0]
        try:
            remaining = spec.timeout_s + HARD_GRACE_S if spec.timeout_s else None
            results = fut.result(timeout=remaining)
        except BrokenProcessPool:
            results = [_died(spec)]
        except FutureTimeout:
            results = [_died(spec, f"timeout after {spec.timeout_s} s (killed: it did not stop)")]
        _kill(own.pop(fut))
        for result in results:
            session.finish(result)


def busy(in_flight: dict) -> int:
    """Cores taken by the work in flight (values: a spec, or the specs of one unit)."""
    return sum(cpus(v) for v in in_flight.values())


def cpus(work) -> int:
    """Cores a run or a unit of runs takes: a unit runs in one process (a seed batch: one core)."""
    return max(s.cpus for s in work) if isinstance(work, list) else work.cpus


def _died(spec: RunSpec, error: str = "worker process died (killed or out of memory)") -> dict:
    t = now()
    return {
        "key": spec.key,
        "status": "failed",
        "error": error,
        "started_at": t,
        "ended_at": t,
        "wall_time": 0.0,
        "train_time": 0.0,
        "env_steps": 0,
        "curves": [],
        "evals": [],
        **provenance(),
        "machine": machine.fingerprint(),
    }


def _drain(progress_queue, progress: Progress) -> None:
    while True:
        try:
            key, steps, sps = progress_queue.get_nowait()
        except (queue.Empty, OSError, EOFError):
            return
        progress.update_live(key, steps, sps)


# -- Ray -------------------------------------------------------------------------------------


class ExecutorError(Exception):
    """The executor cannot start (e.g. Ray missing or its cluster unreachable)."""


RAY_MISSING = 'the Ray executor needs Ray, an optional extra: pip install -e ".[ray]"'


def _ray_task(spec: RunSpec, progress_queue) -> dict:
    """One run as a Ray task: the log comes back in the result (the driver writes it); live
    progress goes to the driver through a Ray queue, at most once a second."""
    last = [0.0]

    def progress(key: str, env_steps: int, sps: float) -> None:
        t = time.monotonic()
        if t - last[0] >= 1.0:
            last[0] = t
            try:
                progress_queue.put_nowait((key, env_steps, sps))
            except Exception:  # noqa: BLE001 - a full or gone progress queue must never fail a run
                pass

    return run_one(spec, None, progress, capture_log=True)


def run_ray(session: Session, specs: list[RunSpec], address: str | None) -> list[dict]:
    """Runs ``specs`` as Ray tasks, each with its CPU/GPU needs; the driver writes every result
    to the store as it comes back (workers never open it: a cluster needs no shared filesystem).
    Without ``address`` a local Ray instance is started (and stopped at the end). At most as
    many runs are in flight as the cluster has CPUs, so the store's ``running`` is honest."""
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError:
        raise ExecutorError(RAY_MISSING) from None
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            # a private instance: its start-up notices (e.g. about token authentication) are noise
            ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                     object_store_memory=128 * 1024**2)  # fmt: skip
    except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, ...: one message
        raise ExecutorError(f"cannot start Ray{f' at {address}' if address else ''}: {e}") from None
    in_flight: dict = {}  # object ref -> spec
    try:
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue_ = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        task = ray.remote(max_retries=0)(_ray_task)
        todo = list(reversed(specs))
        while todo or in_flight:
            while todo and (not in_flight or busy(in_flight) + todo[-1].cpus <= capacity):
                spec = todo.pop()
                if session.claim(spec) is not None:
                    ref = task.options(num_cpus=spec.cpus, num_gpus=spec.gpus).remote(spec, queue_)
                    in_flight[ref] = spec
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
            _drain_ray(queue_, session.progress)
            for ref in done:
                spec = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - the worker or node died: the run failed
                    result = _died(spec, f"Ray task failed: {type(e).__name__}: {e}")
                _write_log(result, log_path_for(session.log_dir, spec))
                session.finish(result)
    except BaseException as e:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        if isinstance(e, KeyboardInterrupt):
            session.interrupted()
        raise
    finally:
        ray.shutdown()
    return session.results


def _write_log(result: dict, path: Path) -> None:
    """Writes a log that came back in the result to the driver's log folder."""
    text = result.pop("log_text", None)
    if text is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        result["log_path"] = str(path)


def _drain_ray(queue_, progress: Progress) -> None:
    try:
        items = queue_.get_nowait_batch(queue_.qsize()) if queue_.qsize() else []
    except Exception:  # noqa: BLE001 - progress is best effort
        return
    for key, steps, sps in items:
        progress.update_live(key, steps, sps)


def ray_worker_setup() -> None:
    """Ray's ``worker_process_setup_hook``: imports and warms up a Ray worker as it starts."""

    warm_up()
