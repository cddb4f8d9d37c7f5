"""Distributed PPO (DPPO; Heess et al. 2017): synchronous data-parallel PPO on torch.distributed.

W worker processes, each with its own ``n_envs`` vectorised environments and a replica of the
actor-critic. Every iteration each worker collects ``n_steps`` x ``n_envs`` steps (its share of
the rollout, W x n_envs x n_steps in all), computes GAE on its share, and runs the PPO epochs on
it; after every minibatch's backward pass DistributedDataParallel averages the gradients over the
workers with an all-reduce (``gloo``: the control policies train on CPU), so every replica takes
the same optimizer step and the replicas stay bit-identical (checked at the end of every run and
recorded as ``dist/replica_max_abs_diff``). The running observation and return statistics are
merged over the workers after each rollout, the env-step budget counts the steps of all workers,
and KL early stopping / the adaptive KL coefficient use the workers' mean KL.

``n_envs`` and ``batch_size`` are per worker, so each iteration makes the same number of optimizer
steps as PPO with the same settings while collecting W times the experience, and W = 1 is PPO
itself (the same records for the same seed). Worker r's environments are seeded
``seed + r * n_envs + i``.

Launching: inside ``bench run`` the run's own process is rank 0 (it evaluates and records, on the
shared protocol, exactly as ``ppo``) and spawns ranks 1..W-1. Under ``torchrun`` (several
machines) ``bench run``'s processes are the ranks (``bench.distributed``).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import traceback
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from pydantic import Field

from bench.algos import ppo
from bench.algos.guard import Diverged
from bench.algos.rollout import build_agent
from bench.control.tasks import Task, get_task
from bench.evaluation import Evaluator
from bench.recorder import Recorder

TIMEOUT = timedelta(minutes=30)  # longest a worker waits for the others (e.g. rank 0 evaluating)


class DPPOConfig(ppo.PPOConfig):
    """PPO hyperparameters (``n_envs`` and ``batch_size`` per worker) and the worker count."""

    workers: int = Field(2, ge=1, le=1024, description="synchronous worker processes (W)")


class Replicas:
    """This process's place among the W workers of one run, and the collectives PPO needs."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world
        self._snapshots: list[tuple] = []

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module under DistributedDataParallel: backward all-reduces (averages) gradients."""
        return torch.nn.parallel.DistributedDataParallel(module)

    def _all_reduce(self, values: list[float], op) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=op)
        return t.tolist()

    def mean(self, value: float) -> float:
        return self._all_reduce([value], dist.ReduceOp.SUM)[0] / self.world

    def max(self, value: int) -> int:
        return int(self._all_reduce([value], dist.ReduceOp.MAX)[0])

    def any(self, flag: bool) -> bool:
        return self._all_reduce([float(flag)], dist.ReduceOp.MAX)[0] > 0

    def first_reason(self, reason: str | None) -> str | None:
        """The divergence decision of all workers (collective): None if no worker has a reason,
        else the lowest-ranked worker's reason (marked with its rank if it is not this one)."""
        if not self.any(reason is not None):
            return None
        reasons: list[str | None] = [None] * self.world
        dist.all_gather_object(reasons, reason)
        rank, first = next((r, why) for r, why in enumerate(reasons) if why is not None)
        return first if rank == self.rank else f"{first} (worker {rank})"

    def total_steps(self, collector) -> int:
        """Env steps collected by all workers so far."""
        return int(self._all_reduce([collector.env_steps], dist.ReduceOp.SUM)[0])

    # running observation / return statistics: each worker updates its own during a rollout;
    # afterwards all of them take the merge of the pre-rollout state and every worker's new data

    @staticmethod
    def _stats(collector):
        return [s.rms for s in (collector.obs_norm, collector.reward_scaler) if s.enabled]

    def snapshot(self, collector) -> None:
        self._snapshots = [(r.mean.copy(), r.var.copy(), r.count) for r in self._stats(collector)]

    def merge_running_stats(self, collector) -> None:
        for rms, before in zip(self._stats(collector), self._snapshots, strict=True):
            n, mean, var = own_moments(before, rms)
            mine = np.concatenate([[n], mean.ravel(), var.ravel()])  # [count, mean..., var...]
            parts = [torch.zeros(len(mine), dtype=torch.float64) for _ in range(self.world)]
            dist.all_gather(parts, torch.from_numpy(mine))
            mean0, var0, count0 = before
            rms.mean, rms.var, rms.count = mean0.copy(), var0.copy(), count0
            for part in parts:  # in rank order, so every worker computes the same numbers
                p = part.numpy()
                k = (len(p) - 1) // 2
                rms.merge(p[1 : 1 + k].reshape(mean0.shape), p[1 + k :].reshape(mean0.shape), p[0])

    def finish(self, model: torch.nn.Module, step: int, recorder: Recorder) -> None:
        """Checks that the replicas are identical: records the largest parameter difference."""
        flat = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
        parts = [torch.zeros_like(flat) for _ in range(self.world)]
        dist.all_gather(parts, flat)
        diff = max(float((part - parts[0]).abs().max()) for part in parts)
        recorder.curve(step, "dist/replica_max_abs_diff", diff)
        recorder.curve(step, "dist/workers", self.world)


def own_moments(before: tuple, rms) -> tuple[float, np.ndarray, np.ndarray]:
    """(count, mean, variance) of the data a ``RunningMeanStd`` took in since ``before`` (its
    (mean, var, count) then), recovered from the two states (the inverse of its merge)."""
    mean0, var0, count0 = before
    n = rms.count - count0
    mean = (rms.count * rms.mean - count0 * mean0) / n
    m2 = rms.var * rms.count - var0 * count0 - (mean - mean0) ** 2 * count0 * n / rms.count
    return n, mean, m2 / n


class _Silent:
    """The evaluator of ranks 1..W-1: only rank 0 evaluates and records."""

    stop = False

    def due(self, step: int) -> bool:
        return False

    def final(self, step: int, act) -> None:
        pass


def train(task: Task, cfg: DPPOConfig, env_steps: int, seed: int, evaluator: Evaluator, recorder: Recorder):
    """Rank 0 of a run: joins the launch's process group (under torchrun) or spawns the others."""
    if dist.is_available() and dist.is_initialized():  # bench.distributed: already in a group
        world = dist.get_world_size()
        if world != cfg.workers:
            raise ValueError(f"this launch has {world} processes but the run asks for workers={cfg.workers}")
        return _train_rank(task, cfg, env_steps, seed, evaluator, recorder, dist.get_rank())
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    errors, ready = ctx.SimpleQueue(), ctx.SimpleQueue()
    with tempfile.TemporaryDirectory(prefix="bench-dppo-") as tmp:
        init = os.path.join(tmp, "rendezvous")
        workers = [
            ctx.Process(
                target=_worker_main,
                args=(rank, cfg.workers, init, task.id, cfg.model_dump(), env_steps, seed, errors, ready),
                name=f"dppo-rank{rank}",
            )
            for rank in range(1, cfg.workers)
        ]
        for w in workers:
            w.start()
        try:
            _await_workers(workers, ready)
            with _process_group(0, cfg.workers, init):
                # the training clock starts once every worker has joined, as a single-process
                # run's starts after its process is up; the start-up time is recorded apart
                startup = recorder.wall_time()
                recorder.start = time.perf_counter()
                recorder.curve(0, "dist/startup_s", startup)
                agent = _train_rank(task, cfg, env_steps, seed, evaluator, recorder, 0)
        except BaseException as e:
            for w in workers:  # a worker that stopped with rank 0 exits on its own; else it is ended
                w.join(timeout=5)
                if w.is_alive():
                    w.terminate()
                    w.join()
            details = [errors.get() for _ in range(cfg.workers) if not errors.empty()]
            if details and not isinstance(e, KeyboardInterrupt | Diverged):
                raise RuntimeError("a DPPO worker failed:\n" + "\n".join(details)) from e
            raise
        for w in workers:
            w.join()
        bad = [f"{w.name} exit code {w.exitcode}" for w in workers if w.exitcode != 0]
        if bad:
            raise RuntimeError("DPPO workers failed: " + "; ".join(bad))
    return agent


def _await_workers(workers: list, ready) -> None:
    """Waits until every spawned worker is about to join the group, so that a worker that dies
    while starting fails the run at once instead of leaving rank 0 at the rendezvous. (Once the
    group is formed, a dead worker breaks the next collective: gloo reports the closed peer.)"""
    joined = 0
    while joined < len(workers):
        if not ready.empty():
            ready.get()
            joined += 1
            continue
        dead = [f"{w.name} (exit code {w.exitcode})" for w in workers if not w.is_alive()]
        if dead:
            raise RuntimeError(f"DPPO worker died while starting: {', '.join(dead)}")
        time.sleep(0.05)


def _train_rank(task, cfg, env_steps, seed, evaluator, recorder, rank):
    """PPO as one of the W synchronous workers."""
    group = Replicas(rank, dist.get_world_size())
    agent = build_agent(task, cfg, seed, recorder)  # same initial weights on every worker
    if rank:  # worker-specific environment seeds and exploration noise
        offset = seed + rank * cfg.n_envs
        agent.collector.obs, _ = agent.env.reset(seed=offset)
        agent.collector.generator.manual_seed(offset)
    return ppo.train(task, cfg, env_steps, seed, evaluator, recorder, agent=agent, group=group)


@contextmanager
def _process_group(rank: int, world: int, init: str):
    """A gloo process group joined through the rendezvous file ``init``, for the ``with`` body."""
    url = f"file://{init}"
    dist.init_process_group("gloo", init_method=url, rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _worker_main(rank, world, init, task_id, config, env_steps, seed, errors, ready) -> None:
    """Entry point of a spawned worker (ranks 1..W-1)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's process handles Ctrl-C
    torch.set_num_threads(1)
    from bench.runtime import die_with_parent, warm_up

    die_with_parent()
    warm_up()  # before the rendezvous: rank 0's clock starts when every worker has joined
    ready.put(rank)
    try:
        with _process_group(rank, world, init):
            follow(task_id, config, env_steps, seed)
    except Diverged:
        pass  # every worker stopped together; rank 0 records the divergence
    except BaseException:
        errors.put(f"rank {rank}: " + traceback.format_exc(limit=-6))
        raise SystemExit(1) from None


def follow(task_id: str, config: dict, env_steps: int, seed: int) -> None:
    """A non-zero rank (spawned, or of a torchrun launch): trains one run alongside rank 0."""
    cfg = DPPOConfig(**config)
    _train_rank(get_task(task_id), cfg, env_steps, seed, _Silent(), Recorder(), dist.get_rank())
