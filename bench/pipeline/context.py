"""The executor's one door into the pipeline: the context a run's method receives.

Layer: pipeline.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.artifacts import AlignmentContext, LMContext
from bench.bands import BANDS
from bench.control.tasks import Task
from bench.lm.tasks import LMTask
from bench.pipeline.calibrate import check
from bench.pipeline.control import ControlPipeline
from bench.pipeline.lm import LMPipeline


def run_context(
    task: Task | LMTask, recipe: dict, seed: int, log: Callable[[str], None] = print
) -> AlignmentContext | LMContext:
    """The pipeline of one run of ``task`` with the artifact recipe ``recipe`` (the run's
    ``alignment`` section) and ``seed``: its artifacts are built on first use, or loaded from the
    cache. On an LM task with a band (``bench.bands``), π_SFT's place in it is logged first, so the
    run's log shows where its starting point lies."""
    if isinstance(task, LMTask):
        context = LMPipeline(task, recipe, seed, log=log)
        if task.id in BANDS:
            _log_band_check(context, log)
        return context
    return ControlPipeline(task, recipe, seed, log=log)


def _log_band_check(context: LMPipeline, log: Callable[[str], None]) -> None:
    """π_SFT against its task's band (evaluated once per π_SFT, cached beside it). The evaluation
    draws from its own generators, so the run's records do not depend on it."""
    try:
        row = check(context)
    except Exception as e:  # noqa: BLE001 - a failed check is logged; the run goes on
        log(f"pi_SFT band check failed: {type(e).__name__}: {e}")
        return
    if row is not None:
        log(row["text"])
