"""Throughput of seed-batched training: env steps per second of S seeds trained together in one
process (``bench.algos.seed_batch``, what ``bench run --batch-seeds S`` does) for S = 1, 2, 4, 8, 16,
beside the same algorithm one seed at a time and stable-baselines3's nearest peer in the same run
(PPO: SB3 PPO; PG: SB3 A2C, SB3 has no REINFORCE; GRPO-GT: SB3 PPO, SB3 has no GRPO), one thread
each, training only: no evaluation. GRPO-GT fine-tunes a stand-in π_ref per seed (the task's
policy network with random weights, a seed's own): its episode lengths, and so its speed per env
step, are a random policy's, not a trained reference's.

    python scripts/seed_batch_throughput.py [--algo ppo|pg|grpo-gt]
        [--tasks CartPole-v1,Pendulum-v1,LunarLander-v3] [--steps 10000] [--sizes 1,2,4,8,16]

Prints a Markdown table (the speed guide's); the ratios are what it is for: this machine's absolute
speed moves with its load.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from bench.algos import ALGORITHMS, grpo, pg, ppo, seed_batch
from bench.control.tasks import get_task
from bench.evaluation import Evaluator
from bench.recorder import Recorder


def _no_eval(task, rec: Recorder, seed: int) -> Evaluator:
    return Evaluator(task, rec, seed, 10**12, 1, [1.0])


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _stand_in_reference(task, seed: int):
    """An alignment context whose π_ref is the task's policy network with random weights (seed's own)."""
    from types import SimpleNamespace

    import gymnasium as gym

    from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct

    env = gym.make(task.id)
    obs_dim, space = env.observation_space.shape[0], env.action_space
    env.close()
    continuous = not hasattr(space, "n")
    torch.manual_seed(1000 + seed)
    model = ActorCritic(obs_dim, space.shape[0] if continuous else int(space.n), continuous)
    ref = PolicyAct(model.requires_grad_(False), ObsNormalizer((obs_dim,), False), torch.Generator())
    return SimpleNamespace(reference=lambda: ref)


def _grpo_one(task, cfg, steps, seed, ev, rec):
    grpo.train_grpo_gt(task, cfg, steps, seed, ev, rec, _stand_in_reference(task, seed))


def _grpo_many(task, cfg, steps, seeds, evs, recs):
    return grpo.train_grpo_gt_seeds(task, cfg, steps, seeds, evs, recs,
                                    [_stand_in_reference(task, s) for s in seeds])  # fmt: skip


# algorithm: (its config for a task, one seed's trainer, the seed-batched trainer, name, warm-up env
# steps, stable-baselines3 peer and its name)
ALGOS = {
    "ppo": (lambda t: ppo.PPOConfig(**ppo.TASK_DEFAULTS.get(t, {})), ppo.train, seed_batch.ppo_train, "PPO",
            lambda c: c.n_steps * c.n_envs, "sb3-ppo", "stable-baselines3 PPO"),
    "pg": (lambda t: pg.PGConfig(**pg.TASK_DEFAULTS.get(t, {})), pg.train, seed_batch.pg_train, "PG",
           lambda c: c.n_steps * c.n_envs, "sb3-a2c", "stable-baselines3 A2C"),
    "grpo-gt": (lambda t: grpo.GRPOGTConfig(), _grpo_one, _grpo_many, "GRPO-GT", lambda c: 2000, "sb3-ppo",
                "stable-baselines3 PPO"),
}  # fmt: skip


def measure(task_id: str, steps: int, sizes: list[int], algo: str = "ppo") -> list[tuple[str, float]]:
    """(what, env steps per second) for one task."""
    config, train, batched, name, warm_steps, peer, peer_name = ALGOS[algo]
    task = get_task(task_id)
    cfg = config(task_id)
    rows = []

    def alone(seeds):
        for s in seeds:
            rec = Recorder()
            train(task, cfg, steps, s, _no_eval(task, rec, s), rec)

    warm = Recorder()  # first calls (imports, kernels, allocator) kept out of the timings
    train(task, cfg, warm_steps(cfg), 99, _no_eval(task, warm, 99), warm)
    rows.append((f"bench {name}, one seed at a time", 2 * steps / _timed(lambda: alone([0, 1]))))
    for size in sizes:
        seeds = list(range(size))

        def batch(seeds=seeds):
            recs = [Recorder() for _ in seeds]
            out = batched(
                task,
                cfg,
                steps,
                seeds,
                [_no_eval(task, r, s) for r, s in zip(recs, seeds, strict=True)],
                recs,
            )
            assert not any(isinstance(o, BaseException) for o in out), out

        rows.append((f"bench {name}, seed batch of {size}", size * steps / _timed(batch)))
    sb3 = ALGORITHMS[peer]
    sb3_cfg = sb3.config(**sb3.task_defaults.get(task_id, {}))

    def reference(budget=steps):
        rec = Recorder()
        sb3.train(task, sb3_cfg, budget, 0, _no_eval(task, rec, 0), rec)

    reference(2048)  # warm-up

    rows.append((f"{peer_name} (rl-zoo settings), one seed", steps / _timed(reference)))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python scripts/seed_batch_throughput.py", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--algo", choices=sorted(ALGOS), default="ppo", help="bench's PPO (default), PG or GRPO-GT"
    )
    p.add_argument("--tasks", default="CartPole-v1,Pendulum-v1,LunarLander-v3")
    p.add_argument("--steps", type=int, default=10_000, help="env steps per seed (default 10,000)")
    p.add_argument("--sizes", default="1,2,4,8,16", help="seed-batch sizes (default 1,2,4,8,16)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| task | execution | env-steps/s | ratio to one seed at a time | ratio to SB3 |")
    print("|---|---|---:|---:|---:|")
    for task_id in args.tasks.split(","):
        rows = measure(task_id, args.steps, sizes, args.algo)
        base, sb3 = rows[0][1], rows[-1][1]
        for what, rate in rows:
            print(f"| {task_id} | {what} | {rate:,.0f} | {rate / base:.2f} | {rate / sb3:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
