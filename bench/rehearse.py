"""Rehearsal: every stage of a suite for a handful of steps, before the long run.

``bench run SUITE --rehearse`` runs what the real run would run, in the same code (loaders, device
placement, training batch shapes, completion lengths), only shorter:

* **stages** — each artifact builder, one seed's worth: on LM tasks the corpus and tokenizer, the
  prompts, π_SFT, its band check, the gold scorer, the preference data and every reward model the
  runs ask for; on classic control each task's reference policy and preference data. Each is timed
  and its peak memory read, in this process, one thread (as a worker builds it).
* **runs** — every run of the grid, with the suite's first seed, through the suite's executor.

What shrinks (``Scale``; ``scale_lm`` / ``scale_control``): training budgets (LM: 3 updates; control:
2% of the env steps and at least three rollouts of an on-policy method), π_SFT and reward-model
steps, the number of prompts and documents (enough for every batch the runs draw), evaluation
episodes (and test prompts where asked), reference-policy steps and the episodes preference
segments are cut from. What does not: batch sizes, sequence and completion
lengths, models, sweeps, temperatures.

Everything goes into a folder of its own, ``<store folder>/rehearsal/<suite>-<UTC time>/``: its store,
its artifact cache (``BENCH_CACHE`` is pointed there), the run logs and the rehearsal table
(``rehearsal.csv``, ``rehearsal.md``). The suite is named ``<suite>.rehearsal`` in that store: a
rehearsal's runs are never mistaken for results, and no real store or cache is touched.

The projection: each stage's and run's time per unit of work (SFT step, preference prompt, env
step, update, evaluation pass) times the real run's units; artifacts once per seed (or once per
suite where they are shared), runs once per seed. It is a linear estimate: fixed costs (loading,
the first iteration's warm-up) are multiplied too, so short budgets over-estimate.

Layer: runner (above the pipeline and the executors).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

SUFFIX = ".rehearsal"


@dataclasses.dataclass(frozen=True)
class Scale:
    """How far a rehearsal shrinks a suite."""

    updates: int = 3  # updates of an LM method, SFT steps and reward-model steps
    control_fraction: float = 0.02  # share of a control budget (env steps, reference-policy steps)
    eval_episodes: int = 4  # evaluation episodes per pass (control)
    test_prompts: int | None = None  # test prompts per evaluation pass (LM; None: the suite's)
    min_train_prompts: int = 64  # train prompts at least (preference data for the runs' batches)
    reference_episodes: int = 10  # reference episodes the preference segments are cut from (control)


DEFAULT = Scale()


@dataclasses.dataclass(frozen=True)
class Cell:
    """A run of the rehearsal and the real run it stands for."""

    spec: object  # RunSpec of the rehearsal
    full: object  # RunSpec of the real run (first seed)
    seeds: int  # seeds of this cell in the real suite


# -- scaling -------------------------------------------------------------------------------------


def _batch_need(configs: list[dict], recipe: dict, scale: Scale) -> int:
    """Train prompts the runs of one LM recipe need: enough for their largest batch and for their
    reward models' training pairs (``rm_pairs``)."""
    k = recipe["preferences"]["completions"]
    per_prompt = k * (k - 1) / 2 * (1 - recipe["preferences"]["held_out"])
    need = max(scale.min_train_prompts, recipe["reward_model"]["batch_size"])
    for cfg in configs:
        for name, value in cfg.items():
            if isinstance(value, int) and not isinstance(value, bool) and "batch" in name:
                need = max(need, value)
        if isinstance(cfg.get("rm_pairs"), int):  # ties drop some pairs: a quarter more prompts
            need = max(need, math.ceil(cfg["rm_pairs"] / per_prompt * 1.25))
    return need


def scale_lm(recipe: dict, configs: list[dict], scale: Scale = DEFAULT) -> dict:
    """The rehearsal's LM recipe (``LMSetup.for_task``'s dict) for runs with ``configs``."""
    r = json.loads(json.dumps(recipe))
    p = r["prompts"]
    p["train"] = min(p["train"], _batch_need(configs, recipe, scale))
    p["test"] = min(p["test"], scale.test_prompts or p["test"])
    r["corpus"]["documents"] = min(r["corpus"]["documents"], 2 * (p["train"] + p["test"]) + 256)
    r["sft"]["steps"] = min(r["sft"]["steps"], scale.updates)
    r["reward_model"]["steps"] = min(r["reward_model"]["steps"], scale.updates)
    return r


def scale_control(recipe: dict, scale: Scale = DEFAULT) -> dict:
    """The rehearsal's control alignment recipe (``Alignment.for_task``'s dict)."""
    r = json.loads(json.dumps(recipe))
    ref = r["reference"]
    ref["env_steps"] = max(1, math.ceil(ref["env_steps"] * scale.control_fraction))
    ref["check_every"] = min(ref.get("check_every", 5000), ref["env_steps"])
    ref["check_episodes"] = min(ref.get("check_episodes", 20), scale.eval_episodes)
    r["preferences"]["episodes"] = min(r["preferences"]["episodes"], scale.reference_episodes)
    return r


def _budget(spec, scale: Scale) -> int:
    """A rehearsed run's budget: LM, ``scale.updates`` updates; control, the scale's share of the env
    steps, and at least three rollouts of an on-policy method (``n_envs`` x ``n_steps``): its time
    per step is read between the first and the last, past the first one's warm-up."""
    if _is_lm(spec):
        return max(1, min(spec.env_steps, scale.updates))
    steps = math.ceil(spec.env_steps * scale.control_fraction)
    cfg = spec.config
    rollout = int(cfg.get("n_envs", 1) or 1) * int(cfg.get("n_steps", 0) or 0)
    return max(1, min(spec.env_steps, max(steps, 3 * rollout)))


def _is_lm(spec) -> bool:
    from bench.algos import ALGORITHMS

    return ALGORITHMS[spec.algo].domain == "lm"


def rehearsal_cells(suite, specs: list, scale: Scale = DEFAULT) -> list[Cell]:
    """The rehearsal's runs: every grid cell of ``specs`` at the suite's first seed, scaled."""
    from bench.suite.grid import _hash

    seed = suite.seeds[0]
    firsts = [s for s in specs if s.seed == seed]
    seeds = Counter((s.label, s.task, s.config_json, s.alignment_json) for s in specs)
    configs: dict[str, list[dict]] = {}
    for s in firsts:
        if s.alignment_json and _is_lm(s):
            configs.setdefault(s.alignment_json, []).append(s.config)
    cells = []
    for s in firsts:
        steps = _budget(s, scale)
        ev = json.loads(s.evaluation_json)
        ev["eval_every"] = steps
        if not _is_lm(s):
            ev["eval_episodes"] = min(ev.get("eval_episodes", 20), scale.eval_episodes)
        alignment = ""
        if s.alignment_json:
            scaled = (
                scale_lm(s.alignment, configs[s.alignment_json], scale)
                if _is_lm(s)
                else scale_control(s.alignment, scale)
            )
            alignment = json.dumps(scaled, sort_keys=True)
        ident = {"rehearsal_of": s.key, "env_steps": steps, "evaluation": ev, "alignment": alignment}
        spec = dataclasses.replace(
            s,
            key=_hash(ident),
            base_key=_hash({**ident, "code": None}),
            suite=s.suite + SUFFIX,
            env_steps=steps,
            evaluation_json=json.dumps(ev, sort_keys=True),
            alignment_json=alignment,
        )
        cells.append(Cell(spec, s, seeds[(s.label, s.task, s.config_json, s.alignment_json)]))
    return cells


# -- stages --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Stage:
    stage: str
    task: str
    status: str = "ok"
    error: str = ""
    seconds: float = 0.0
    units: float = 1.0  # work done in the rehearsal, in ``unit``
    unit: str = ""
    full_units: float = 1.0  # the real run's
    copies: int = 1  # how many the real suite builds (per seed, or one shared)
    peak_mb: float | None = None
    fixed: float | None = None  # its fixed cost, where measured apart (a build with fewer steps)

    @property
    def unit_s(self) -> float:
        """Seconds per unit of work (beyond the fixed cost, where that was measured)."""
        return max(0.0, self.seconds - (self.fixed or 0.0)) / max(self.units, 1e-9)

    @property
    def projected(self) -> float:
        return ((self.fixed or 0.0) + self.unit_s * self.full_units) * self.copies


_FINISHED: str | None = None  # in a stage worker: the file each finished stage is appended to


def _timed(stage: Stage, fn: Callable[[], object], log: Callable[[str], None]) -> object:
    from bench import memory

    log(f"stage {stage.stage} ({stage.task}): started")
    measured = memory.reset_peak()
    t0 = time.perf_counter()
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - a failed stage is a finding of the rehearsal
        stage.status, stage.error = "failed", f"{type(e).__name__}: {e}".splitlines()[0][:300]
        return None
    finally:
        stage.seconds = time.perf_counter() - t0
        stage.peak_mb = memory.peak_rss_mb() if measured else None
        log(f"stage {stage.stage} ({stage.task}): {stage.status} in {stage.seconds:.1f} s")
        if _FINISHED is not None:  # a stage worker: kept on disk, in case the worker is killed later
            with open(_FINISHED, "a") as fh:
                fh.write(json.dumps(dataclasses.asdict(stage)) + "\n")


def lm_stages(
    task, recipe: dict, full: dict, seed: int, seeds: int, rm_pairs: list[int], caps: dict, log
) -> list[Stage]:
    """Builds one LM recipe's artifacts for ``seed``, stage by stage (each timed). A reward model on
    more ``rm_pairs`` than the rehearsal's preference data holds is trained on all of them: ``caps``
    gets {rm_pairs: pairs used}, for the runs to do the same."""
    from bench.bands import BANDS
    from bench.pipeline.calibrate import check
    from bench.pipeline.lm import LMPipeline

    ctx = LMPipeline(task, recipe, seed, log=log)
    setup, fsetup = recipe, full
    shared_sft = setup["sft"].get("seed") is not None
    stages: list[Stage] = []

    def run(stage: Stage, fn: Callable[[], object], needs: Stage | None = None) -> object:
        stages.append(stage)
        if needs is not None and needs.status != "ok":
            stage.status, stage.error = "skipped", f"needs {needs.stage}"
            return None
        return _timed(stage, fn, log)

    base = setup["model"].get("base")
    corpus = Stage(
        "corpus + tokenizer",
        task.id,
        units=setup["corpus"]["documents"],
        unit="documents",
        full_units=fsetup["corpus"]["documents"],
    )
    run(corpus, lambda: (ctx.documents(), ctx.tokenizer()))
    if base:  # a pretrained tokenizer is loaded, not trained: its cost does not grow with the corpus
        corpus.units = corpus.full_units = 1
        corpus.unit = "load"
    n_r = setup["prompts"]["train"] + setup["prompts"]["test"]
    n_f = fsetup["prompts"]["train"] + fsetup["prompts"]["test"]
    prompts = Stage("prompts", task.id, units=n_r, unit="prompts", full_units=n_f)
    run(prompts, ctx.prompts, corpus)
    sft_steps, full_steps = setup["sft"]["steps"], fsetup["sft"]["steps"]
    sft = Stage(
        "pi_SFT",
        task.id,
        units=max(sft_steps, 1),
        unit="SFT steps" if sft_steps else "load",
        full_units=max(full_steps, 1),
        copies=1 if shared_sft else seeds,
    )
    from bench.cache import META

    def loop_s(path) -> float:  # the training loop's own time, from the artifact's metadata
        return float(json.loads((Path(path) / META).read_text())["seconds"])

    two_point = prompts.status == "ok" and full_steps > sft_steps >= 2
    if two_point:  # a warm-up build, then one with a single step: its loop time is the first step's
        warm = lambda c: (c.documents(), c.tokenizer())  # noqa: E731
        _variant(task, recipe, seed, "sft", 1, warm, lambda c: c.sft_path(), warm_up=True)
        first = loop_s(_variant(task, recipe, seed, "sft", 1, warm, lambda c: c.sft_path())[1])
    path = run(sft, ctx.sft_path, prompts)
    if two_point and path is not None:  # the marginal step: (k-step loop - 1-step loop) / (k - 1)
        per_step = max(0.0, loop_s(path) - first) / (sft_steps - 1)
        sft.fixed = max(0.0, sft.seconds - sft_steps * per_step)
    if task.id in BANDS:
        band = Stage(
            "pi_SFT band check",
            task.id,
            units=setup["prompts"]["test"],
            unit="test prompts",
            full_units=fsetup["prompts"]["test"],
            copies=sft.copies,
        )
        run(band, lambda: check(ctx), sft)
    gold = Stage("gold scorer", task.id, unit="load")
    run(gold, ctx.gold)
    tr, ftr = setup["prompts"]["train"], fsetup["prompts"]["train"]
    prefs = Stage("preferences", task.id, units=tr, unit="train prompts", full_units=ftr, copies=seeds)
    run(prefs, ctx.preferences, sft if gold.status == "ok" else gold)
    rm_r, rm_f = setup["reward_model"]["steps"], fsetup["reward_model"]["steps"]
    train_pairs = len(ctx.preferences().split()[0]) if prefs.status == "ok" else 0
    for n in [None, *sorted(set(rm_pairs))]:
        name = "reward model" if n is None else f"reward model (rm_pairs={n})"
        if n is not None and n > train_pairs > 0:  # a shortened π_SFT ties more often: fewer pairs
            caps[n] = train_pairs
            name += f", capped at the {train_pairs} rehearsal pairs"
        rm = Stage(name, task.id, units=rm_r, unit="RM steps", full_units=rm_f, copies=seeds)
        one = None
        if prefs.status == "ok" and rm_f > rm_r >= 2:  # a warm-up build, then one with a single step
            warm = lambda c: c.preferences()  # noqa: E731
            build = lambda c, n=n: c.reward_model(caps.get(n, n))  # noqa: E731
            _variant(task, recipe, seed, "reward_model", 1, warm, build, warm_up=True)
            one = _variant(task, recipe, seed, "reward_model", 1, warm, build)[0]
        run(rm, lambda n=n: ctx.reward_model(caps.get(n, n)), prefs)
        if one is not None and rm.status == "ok":  # the marginal step: (k-step - 1-step) / (k - 1)
            per_step = max(0.0, rm.seconds - one) / (rm_r - 1)
            rm.fixed = max(0.0, rm.seconds - rm_r * per_step)
    return stages


def _variant(task, recipe: dict, seed: int, part: str, steps: int, warm, build, warm_up: bool = False):
    """(seconds, result) of ``build`` on ``recipe`` with ``part``'s steps set to ``steps``, timed after
    ``warm`` (untimed) has loaded what it shares with the real build. ``warm_up``: a build that only
    warms the process up (imports, the first model of its kind), under a learning rate changed in
    its last digits so that it is not the timed build's cached artifact."""
    from bench.pipeline.lm import LMPipeline

    variant = json.loads(json.dumps(recipe))
    variant[part]["steps"] = steps
    if warm_up:
        variant[part]["lr"] *= 1 + 1e-9
    ctx = LMPipeline(task, variant, seed, log=lambda text: None)
    warm(ctx)
    t0 = time.perf_counter()
    result = build(ctx)
    return time.perf_counter() - t0, result


def control_stages(task, recipe: dict, full: dict, seed: int, seeds: int, log) -> list[Stage]:
    """Builds one control task's reference policy and preference data for ``seed`` (timed)."""
    from bench.pipeline.control import ControlPipeline

    ctx = ControlPipeline(task, recipe, seed, log=log)
    ref = Stage(
        "pi_ref",
        task.id,
        units=recipe["reference"]["env_steps"],
        unit="env steps",
        full_units=full["reference"]["env_steps"],
        copies=seeds,
    )
    _timed(ref, ctx.reference, log)
    prefs = Stage(
        "preferences",
        task.id,
        units=recipe["preferences"]["episodes"],
        unit="episodes",
        full_units=full["preferences"]["episodes"],
        copies=seeds,
    )
    if ref.status == "ok":
        _timed(prefs, ctx.preferences, log)
    else:
        prefs.status, prefs.error = "skipped", "needs pi_ref"
    return [ref, prefs]


def build_stages(cells: list[Cell], log) -> tuple[list[Stage], dict[str, dict[int, int]]]:
    """Every artifact stage of the rehearsal's runs, once per recipe; and per LM recipe, the
    ``rm_pairs`` counts capped to its preference data ({alignment_json: {asked: used}})."""
    import torch

    from bench.control.tasks import get_task
    from bench.lm import quiet_hf
    from bench.lm.tasks import get_lm_task

    torch.set_num_threads(1)  # as a worker builds them
    stages: list[Stage] = []
    seen: set = set()
    caps: dict[str, dict[int, int]] = {}
    for cell in cells:
        s = cell.spec
        if not s.alignment_json or (s.task, s.alignment_json) in seen:  # set for LM and aligned runs
            continue
        seen.add((s.task, s.alignment_json))
        if _is_lm(s):
            quiet_hf()
            rm_pairs = [
                c.spec.config["rm_pairs"]
                for c in cells
                if c.spec.alignment_json == s.alignment_json
                and isinstance(c.spec.config.get("rm_pairs"), int)
            ]
            caps[s.alignment_json] = {}
            stages += lm_stages(
                get_lm_task(s.task), s.alignment, cell.full.alignment, s.seed, cell.seeds, rm_pairs,
                caps[s.alignment_json], log,
            )  # fmt: skip
        else:
            stages += control_stages(
                get_task(s.task), s.alignment, cell.full.alignment, s.seed, cell.seeds, log
            )
    return stages, caps


def _stage_worker(cells: list[Cell], log_path: str, finished_path: str, quiet: bool):
    """``build_stages`` in a process of its own: its log lines appended to ``log_path`` as they come,
    each finished stage to ``finished_path`` (what is left of a worker that was killed)."""
    global _FINISHED
    from bench.runtime import die_with_parent

    die_with_parent()
    _FINISHED = finished_path

    def log(text: str) -> None:
        with open(log_path, "a") as fh:
            fh.write(text + "\n")
        if not quiet:
            print(f"  {text}", file=sys.stderr, flush=True)

    return build_stages(cells, log)


def recipes(cells: list[Cell]) -> list[list[Cell]]:
    """The cells grouped by the artifacts they share (task and recipe), in the order of the grid."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.spec.task, cell.spec.alignment_json), []).append(cell)
    return list(groups.values())


def stages_apart(cells: list[Cell], log_path: Path, quiet: bool) -> tuple[list[Stage], dict, set]:
    """``build_stages`` in a worker process, so that the models it loads do not stay in the memory
    of the process that then waits for the runs. A worker killed (for memory, most often) is
    reported as a ``killed`` stage (the one that had started last, after those that had finished)
    and a fresh worker builds the next recipe's stages. Returns the stages, the ``rm_pairs`` caps and
    the (task, recipe) keys whose stages were killed: their runs would be killed the same way."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    log_path.write_text("")
    finished_path = log_path.with_suffix(".finished.jsonl")
    stages: list[Stage] = []
    caps: dict = {}
    killed: set = set()
    pool = None
    try:
        for group in recipes(cells):
            if not group[0].spec.alignment_json:
                continue
            if pool is None:
                pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
            finished_path.write_text("")
            logged = len(log_path.read_text().splitlines())
            try:
                built, capped = pool.submit(
                    _stage_worker, group, str(log_path), str(finished_path), quiet
                ).result()
                stages += built
                caps.update(capped)
            except BrokenProcessPool:
                pool.shutdown(wait=False)
                pool = None
                killed.add((group[0].spec.task, group[0].spec.alignment_json))
                done = [Stage(**json.loads(line)) for line in finished_path.read_text().splitlines()]
                lines = log_path.read_text().splitlines()[logged:]
                started = [ln[len("stage ") : -len(": started")] for ln in lines if ln.endswith(": started")]
                name, _, task = started[-1].rpartition(" (") if started else ("", "", "")
                if not started:
                    name = "the first stage"
                elif any(d.stage == name for d in done):  # killed between stages (a timing build)
                    name = f"the stage after {name}"
                stages += done + [
                    Stage(
                        name,
                        task.rstrip(")") or group[0].spec.task,
                        status="killed",
                        error="its process was killed (out of memory?); the stages after it did not run",
                    )
                ]
    finally:
        if pool is not None:
            pool.shutdown()
        finished_path.unlink(missing_ok=True)
    return stages, caps, killed


def cap_rm_pairs(cells: list[Cell], caps: dict[str, dict[int, int]]) -> list[Cell]:
    """The cells with ``rm_pairs`` capped as their recipe's reward-model stage was (``build_stages``)."""
    from bench.suite.grid import _hash

    out = []
    for cell in cells:
        s, cap = cell.spec, caps.get(cell.spec.alignment_json, {})
        n = s.config.get("rm_pairs")
        if isinstance(n, int) and n in cap:
            config = json.dumps({**s.config, "rm_pairs": cap[n]}, sort_keys=True)
            key = _hash({"rehearsal_of": s.key, "config": config})
            cell = dataclasses.replace(
                cell, spec=dataclasses.replace(s, key=key, base_key=key, config_json=config)
            )
        out.append(cell)
    return out


# -- runs ----------------------------------------------------------------------------------------


def _passes(evals: pd.DataFrame) -> tuple[int, bool]:
    """(evaluation passes — one per step and temperature —, whether one was at step 0)."""
    if evals.empty:
        return 0, False
    pairs = evals[["step", "temperature"]].drop_duplicates()
    return len(pairs), bool((pairs.step == 0).any())


def _full_passes(full, at_zero: bool) -> int:
    ev = json.loads(full.evaluation_json)
    every, temps = ev["eval_every"], ev["temperatures"]
    final = ev.get("final_temperatures") or temps
    n = full.env_steps // every if full.env_steps else 0
    last_repeats = n > 0 and full.env_steps % every == 0
    finals = len([t for t in final if t not in temps]) if last_repeats else len(final)
    return n * len(temps) + finals + (len(temps) if at_zero else 0)


def _pass_scale(cell: Cell) -> float:
    """How much bigger one evaluation pass of the real run is (episodes or test prompts)."""
    if _is_lm(cell.spec):
        return cell.full.alignment["prompts"]["test"] / cell.spec.alignment["prompts"]["test"]
    full_ep = json.loads(cell.full.evaluation_json).get("eval_episodes", 20)
    return full_ep / json.loads(cell.spec.evaluation_json).get("eval_episodes", 20)


_PROGRESS = re.compile(r"env_steps=(\d+) env_steps_per_s=\S+ train_s=([0-9.]+)")


def marginal_step_s(log_path: str | None) -> float | None:
    """Seconds of training per step after a run's first iteration, from the progress lines of its
    log (a rehearsal's runs log every iteration: env steps and training seconds so far); None with
    fewer than two iterations."""
    try:
        text = Path(log_path).read_text() if log_path else ""
    except OSError:
        return None
    marks = sorted({int(a): float(b) for a, b in _PROGRESS.findall(text) if int(a) > 0}.items())
    if len(marks) < 2:
        return None
    (s0, t0), (s1, t1) = marks[0], marks[-1]
    return (t1 - t0) / (s1 - s0) if s1 > s0 else None


def run_rows(
    cells: list[Cell], runs: pd.DataFrame, evals: pd.DataFrame, killed: set = frozenset()
) -> list[dict]:
    """Per run of the rehearsal: what it did and the projection of its real run (training: the run's
    time plus its marginal time per step for the steps it did not do; evaluation: its time per pass
    times the real run's passes, each as large as the real run's). Runs of a recipe whose stages
    were ``killed`` ((task, recipe) keys) were not started: they are ``skipped``."""
    rows = []
    for cell in cells:
        s, r = cell.spec, runs[runs.key == cell.spec.key]
        row = {"label": s.label, "task": s.task, "seeds": cell.seeds, "budget": cell.full.env_steps}
        if (s.task, s.alignment_json) in killed:
            rows.append({**row, "status": "skipped", "error": "its artifact stages were killed"})
            continue
        if r.empty or r.iloc[0].status != "done":
            failed = not r.empty and r.iloc[0].status == "failed"
            err = (str(r.iloc[0].error or "").splitlines() or [""])[0][:300] if failed else ""
            rows.append({**row, "status": "failed" if failed else "not run", "error": err})
            continue
        r = r.iloc[0]
        steps, train = int(r.env_steps or 0), float(r.train_time or 0.0)
        other = max(0.0, float(r.wall_time) - train)
        done, at_zero = _passes(evals[evals.run_key == s.key])
        marginal = marginal_step_s(r.get("log_path"))
        if steps and marginal is not None:
            full_train = train + marginal * max(0, cell.full.env_steps - steps)
        else:
            full_train = train / steps * cell.full.env_steps if steps else train
        full_eval = other / max(done, 1) * _full_passes(cell.full, at_zero) * _pass_scale(cell)
        rows.append(
            {
                **row,
                "status": "ok",
                "error": "",
                "steps": steps,
                "train_s": train,
                "s_per_step": (marginal if marginal is not None else train / steps)
                if steps
                else float("nan"),
                "eval_s": other,
                "passes": done,
                "peak_mb": r.get("peak_rss_mb"),
                "projected_s": (full_train + full_eval) * cell.seeds,
            }
        )
    return rows


# -- the command ---------------------------------------------------------------------------------


def rehearsal_folder(store: str, suite: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(store).parent / "rehearsal" / f"{suite}-{stamp}"


def rehearse(args, suite, specs, execute: Callable) -> int:
    """``bench run --rehearse``: stages, then the runs (``execute(args, suite, specs)``, the real
    run's executor), then the table with the projection; exit 0 when everything ran, 1 otherwise."""
    folder = rehearsal_folder(args.store, suite.name)
    folder.mkdir(parents=True, exist_ok=False)
    before = os.environ.get("BENCH_CACHE")
    os.environ["BENCH_CACHE"] = str(folder / "cache")  # the workers inherit it
    try:
        return _rehearse(args, suite, specs, execute, folder)
    finally:
        if before is None:
            os.environ.pop("BENCH_CACHE", None)
        else:
            os.environ["BENCH_CACHE"] = before


def _rehearse(args, suite, specs, execute: Callable, folder: Path) -> int:
    scale = Scale(
        updates=args.rehearse_steps or DEFAULT.updates,
        test_prompts=args.rehearse_prompts,
    )
    cells = rehearsal_cells(suite, specs, scale)
    rsuite = suite.model_copy(update={"name": suite.name + SUFFIX, "seeds": [suite.seeds[0]]})
    print(
        f"rehearsing {suite.name} v{suite.version}: {len(cells)} runs (of {len(specs)}) at the first seed,"
        f" shortened; store and cache in {folder}",
        file=sys.stderr,
    )
    lm_recipes = {
        s.alignment_json: s.alignment for s in (c.spec for c in cells) if s.alignment_json and _is_lm(s)
    }
    if lm_recipes:
        from bench.lm.hub import HubError, preflight

        try:
            preflight(list(lm_recipes.values()))
        except HubError as e:
            from bench.runtime import fail

            return fail(f"{suite.path or suite.name}: {e}")
    t0 = time.perf_counter()
    stages, caps, killed = stages_apart(cells, folder / "stages.log", args.quiet)
    cells = cap_rm_pairs(cells, caps)
    stage_s = time.perf_counter() - t0
    rspecs = [c.spec for c in cells if (c.spec.task, c.spec.alignment_json) not in killed]
    run_args = argparse_copy(args, store=str(folder / "store.sqlite"), pin_code=False)
    t1 = time.perf_counter()
    code = execute(run_args, rsuite, rspecs) if rspecs else 0
    runs_s = time.perf_counter() - t1
    from bench.store import Store

    runs, evals = pd.DataFrame(columns=["key", "status"]), pd.DataFrame(columns=["run_key"])
    if rspecs:  # none when every recipe's stages were killed: no store was made
        store = Store(run_args.store, create=False)
        runs = store.runs(rsuite.name)
        evals = store.evals_of(list(runs.key)) if not runs.empty else evals
        store.close()
    rows = run_rows(cells, runs, evals, killed)
    table = summary(suite, stages, rows, stage_s, runs_s, args.jobs)
    write(folder, stages, rows, table)
    print(table, file=sys.stderr if args.quiet else sys.stdout)
    ok = all(s.status == "ok" for s in stages) and all(r["status"] == "ok" for r in rows)
    return 0 if ok and code == 0 else (code or 1)


def argparse_copy(args, **changes):
    import argparse

    return argparse.Namespace(**{**vars(args), **changes})


def _fmt_s(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x >= 3600:
        return f"{x / 3600:.1f} h"
    if x >= 60:
        return f"{x / 60:.1f} min"
    if x >= 0.1:
        return f"{x:.1f} s"
    return f"{x * 1000:.0f} ms" if x >= 1e-3 else f"{x * 1e6:.0f} µs"


def _mb(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"


def summary(suite, stages: list[Stage], rows: list[dict], stage_s: float, runs_s: float, jobs: int) -> str:
    """The rehearsal table (markdown): stages, runs grouped by label and task, the projection."""
    from bench import machine

    lines = [f"# Rehearsal of {suite.name} v{suite.version}", ""]
    fp = machine.fingerprint()
    one = {k: v for k, v in fp.items() if k != "kind"} | {"threads": 1}  # as the workers run (one thread)
    lines += [
        f"Machine: {fp['cpu_model']} ({fp['isa']}), kind {machine.kind_of(one)} (one thread); "
        f"torch {fp['torch']}. "
        f"Rehearsal wall time: stages {_fmt_s(stage_s)}, runs {_fmt_s(runs_s)} (--jobs {jobs}).",
        "",
    ]
    stage_head = ["stage", "task", "status", "rehearsed", "time", "per unit", "peak memory (MiB)",
                  "real run: units × copies", "projected"]  # fmt: skip
    lines += ["## Stages (artifact builders, one seed)", "", *_head(stage_head, "lll" + "l" + "rrr" + "lr")]
    for s in stages:
        status = s.status if s.status == "ok" else f"**{s.status}**: {s.error}"
        ran = s.status in ("ok", "failed")  # not: skipped, or killed (its work and time unknown)
        per = _fmt_s(s.unit_s) + ("" if s.fixed is None else f" + {_fmt_s(s.fixed)} fixed")
        lines.append(_line([
            s.stage, s.task, status, f"{s.units:g} {s.unit}" if s.unit else "—",
            _fmt_s(s.seconds) if ran else "—", per if ran else "—", _mb(s.peak_mb),
            f"{s.full_units:g} × {s.copies}" if s.unit else "—",
            _fmt_s(s.projected if s.status == "ok" else None),
        ]))  # fmt: skip
    run_head = ["run", "task", "status", "steps", "training", "per step", "evaluation", "peak memory (MiB)",
                "real run: budget × seeds", "projected"]  # fmt: skip
    lines += ["", "## Runs (the grid at the first seed)", "", *_head(run_head, "lll" + "rrrrr" + "lr")]
    for r in rows:
        budget = f"{r['budget']:g} × {r['seeds']}"
        if r["status"] != "ok":
            status = f"**{r['status']}**: {r['error']}"
            lines.append(_line([r["label"], r["task"], status, "", "", "", "", "", budget, "—"]))
            continue
        lines.append(_line([
            r["label"], r["task"], "ok", f"{r['steps']:g}", _fmt_s(r["train_s"]), _fmt_s(r["s_per_step"]),
            f"{_fmt_s(r['eval_s'])} ({r['passes']} passes)", _mb(r["peak_mb"]), budget,
            _fmt_s(r["projected_s"]),
        ]))  # fmt: skip
    art = sum(s.projected for s in stages if s.status == "ok")
    run = sum(r["projected_s"] for r in rows if r["status"] == "ok")
    failed = [s for s in stages if s.status != "ok"] + [r for r in rows if r["status"] != "ok"]
    lines += [
        "",
        "## Projection",
        "",
        f"- artifacts: {_fmt_s(art)}; runs: {_fmt_s(run)}; together {_fmt_s(art + run)} of one core's time",
        f"- wall time at --jobs {jobs}: about {_fmt_s(art + run / max(jobs, 1))} (artifact builds counted"
        " serially: runs wait for them)"
        if jobs > 1
        else f"- wall time at --jobs 1: about {_fmt_s(art + run)}",
        "- a linear estimate from the rehearsal's per-unit times (fixed costs are multiplied too);"
        " reference policies that stop at their target return take less",
    ]
    if failed:
        lines.append(
            f"- **{len(failed)} stages or runs did not run**: the projection leaves them out; fix them first"
        )
    return "\n".join(lines) + "\n"


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"


def _head(names: list[str], align: str) -> list[str]:
    return [_line(names), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]


def write(folder: Path, stages: list[Stage], rows: list[dict], table: str) -> None:
    stage_rows = [
        {**dataclasses.asdict(s), "kind": "stage", "unit_s": s.unit_s, "projected_s": s.projected}
        for s in stages
    ]
    frame = pd.concat(
        [pd.DataFrame(stage_rows), pd.DataFrame([{**r, "kind": "run"} for r in rows])], ignore_index=True
    )
    frame.to_csv(folder / "rehearsal.csv", index=False)
    (folder / "rehearsal.md").write_text(table)
