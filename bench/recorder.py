"""In-memory collector of one run's records; the worker returns it, the driver stores it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Recorder:
    """Learning-curve points and evaluation records of one run.

    ``train_time`` is wall time spent outside evaluation: the clock env-steps/s is measured on.
    """

    curves: list[tuple[int, float, str, float]] = field(default_factory=list)
    evals: list[tuple[int, float, float, float, str, float, int]] = field(default_factory=list)
    samples: list[tuple[int, float, str, str, float]] = field(default_factory=list)
    outcomes: list[tuple[float, str, int, float]] = field(default_factory=list)
    env_steps: int = 0
    start: float = field(default_factory=time.perf_counter)
    eval_seconds: float = 0.0
    progress: object = None  # optional callable(env_steps, steps_per_s) for live progress
    held: dict = field(default_factory=dict)  # name -> parameter count of each model the run holds

    def hold(self, name: str, model) -> None:
        """Notes a model the run holds (its parameter count goes into the run's summary)."""
        from bench.memory import parameters

        self.held[name] = parameters(model)

    def wall_time(self) -> float:
        return time.perf_counter() - self.start

    def train_time(self) -> float:
        return self.wall_time() - self.eval_seconds

    def curve(self, step: int, metric: str, value: float) -> None:
        self.curves.append((int(step), self.wall_time(), metric, float(value)))

    def eval(self, step: int, temperature: float, metric: str, value: float, n: int) -> None:
        self.evals.append(
            (int(step), self.wall_time(), self.train_time(), float(temperature), metric, float(value), int(n))
        )

    def sample(self, step: int, temperature: float, prompt: str, completion: str, score: float) -> None:
        """A generated text sample (LM tasks): prompt, completion and its gold score."""
        self.samples.append((int(step), float(temperature), prompt, completion, float(score)))

    def outcome(self, temperature: float, metric: str, values) -> None:
        """Per-item outcomes of a final evaluation (one per test prompt, in prompt order), for
        confidence intervals over prompts as well as seeds (e.g. win against the reference)."""
        self.outcomes += [(float(temperature), metric, i, float(v)) for i, v in enumerate(values)]

    def steps(self, env_steps: int) -> None:
        """Report training progress (env steps so far); feeds the live progress bar."""
        self.env_steps = int(env_steps)
        if self.progress is not None:
            t = self.train_time()
            self.progress(self.env_steps, self.env_steps / t if t > 0 else 0.0)


class SeedBatchClock:
    """The clock of runs trained together in one process (``bench.algos.seed_batch``): they share
    the batch's wall time, and time any of them spends evaluating is kept out of every member's
    training time (the others wait for it)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.members: list[SeedBatchRecorder] = []

    def recorder(self, progress=None) -> SeedBatchRecorder:
        rec = SeedBatchRecorder(progress=progress)
        rec.clock = self
        self.members.append(rec)
        return rec


@dataclass
class SeedBatchRecorder(Recorder):
    """One run's records in a seed batch: its wall and training time are the batch's."""

    clock: SeedBatchClock | None = None

    def wall_time(self) -> float:
        return time.perf_counter() - self.clock.start

    def train_time(self) -> float:
        return self.wall_time() - sum(r.eval_seconds for r in self.clock.members)
