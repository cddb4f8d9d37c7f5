"""``bench run`` under ``torchrun``: Distributed PPO runs whose workers span several machines.

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HEAD:29500 \\
        -m bench run SUITE --store runs/bench.sqlite

Every process of the launch runs this command; together they train the suite's ``dppo`` runs
whose ``workers`` equals the launch's world size, one run after another, each process being one
worker. Rank 0 is the driver: it alone opens the store (on its machine), evaluates, records and
writes the results; it decides which runs are due (not yet done) and tells the others. Runs of
other algorithms, or with another worker count, are left for a plain ``bench run``. A run that
fails stops the launch (it is stored as failed; run the same command again to retry it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def launched() -> bool:
    """True in a process started by torchrun with more than one process in the launch."""
    return "TORCHELASTIC_RUN_ID" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def cmd_run(args) -> int:
    import torch
    import torch.distributed as dist

    from bench.algos import dppo
    from bench.algos.guard import Diverged
    from bench.runtime import warm_up

    torch.set_num_threads(1)
    warm_up()
    dist.init_process_group("gloo", timeout=dppo.TIMEOUT)
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        code, specs, store = _plan(args, world) if rank == 0 else (None, None, None)
        plan = [(code, specs)]
        dist.broadcast_object_list(plan, src=0)
        code, specs = plan[0]
        if code is not None:
            return code
        for spec in specs:
            # rank 0 claims the run in the store; another bench process may hold it already
            path = [_claim(args, store, spec) if rank == 0 else None]
            dist.broadcast_object_list(path, src=0)
            if path[0] is None:
                continue
            if rank == 0:
                if not _lead(store, spec, path[0]):
                    return 1
            else:
                try:
                    dppo.follow(spec.task, spec.config, spec.env_steps, spec.seed)
                except Diverged:  # every rank stopped together; rank 0 stores the run as failed
                    return 1
        return 0
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _plan(args, world: int):
    """Rank 0: (exit code or None, the runs this launch trains, the store)."""
    from bench.runtime import fail as _fail
    from bench.store import Store, StoreError
    from bench.suite import SuiteError, expand, load_suite

    try:
        suite = load_suite(args.suite)
        specs = expand(suite)
        store = Store(args.store)
    except (SuiteError, StoreError) as e:
        return _fail(str(e)), [], None
    store.register(suite, specs)
    done = store.done_keys(s.key for s in specs)
    mine = [s for s in specs if s.algo == "dppo" and s.cpus == world]
    todo = [s for s in mine if s.key not in done]
    print(
        f"suite {suite.name} v{suite.version} on {world} processes: {len(mine)} dppo runs with "
        f"workers={world}, {len(mine) - len(todo)} already done, {len(todo)} to run; "
        f"{len(specs) - len(mine)} other runs are left for a plain `bench run`",
        file=sys.stderr,
    )
    return None, todo, store


def _claim(args, store, spec) -> str | None:
    """Rank 0: the run's log path if this launch now holds the run, else None (skip it)."""
    from bench.executors import log_path_for

    path = str(log_path_for(Path(args.store).parent / "logs", spec))
    why = store.claim(spec.key, path)
    if why is not None and why not in ("done", "gone"):
        print(f"run {spec.key} is being run by another bench process ({why}); skipped", file=sys.stderr)
    return path if why is None else None


def _lead(store, spec, path: str) -> bool:
    """Rank 0: trains one run with the others and stores it; False if it failed."""
    from bench.executors import run_one

    try:
        result = run_one(spec, path)
    except KeyboardInterrupt:
        store.mark_pending([spec.key])
        raise
    store.write_result(result)
    if result["status"] == "failed":
        first = (result["error"] or "").splitlines()[0]
        print(f"run {spec.key} failed: {first} (log: {path}); stopping the launch", file=sys.stderr)
        return False
    print(f"run {spec.key} ({spec.label}, seed {spec.seed}) done", file=sys.stderr)
    return True
