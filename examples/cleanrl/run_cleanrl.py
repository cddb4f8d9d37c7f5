"""Runs CleanRL's own PPO script (the installed ``cleanrl`` package, in its own virtual environment)
once per seed, records what ran in ``OUT/manifest.json`` and prints the `bench import` command
that sets the runs beside bench's. No CleanRL code is copied here: each seed is

    PYTHON -m cleanrl.ALGO --env-id ENV --seed K --total-timesteps N \
        --track False --capture-video False [EXTRA]

run in ``OUT/ENV/ALGO/seedK/`` (CleanRL writes ``runs/<run name>/events.out.tfevents.*`` under its
working folder), its output in ``cleanrl.log`` there. Flags after ``--`` go to CleanRL as they are:

    python examples/cleanrl/run_cleanrl.py --algo ppo --env-id CartPole-v1 --seeds 0 1 2 \\
        --total-timesteps 100000 --out runs/cleanrl --python /work/venvs/cleanrl/bin/python -- --ent-coef 0
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ALGOS = ("ppo", "ppo_continuous_action")
VERSIONS = (  # what a run's numbers depend on, read in CleanRL's environment
    "import importlib.metadata as m, json, platform\n"
    "def v(p):\n"
    "    try: return m.version(p)\n"
    "    except m.PackageNotFoundError: return None\n"
    "print(json.dumps({'python': platform.python_version(),"
    " **{p: v(p) for p in ('cleanrl', 'torch', 'gym', 'gymnasium', 'numpy', 'tensorboard')}}))"
)


def command(python: str, algo: str, env_id: str, seed: int, steps: int, extra: list[str]) -> list[str]:
    """CleanRL's script for one seed, tracking and video off (they need wandb and moviepy)."""
    off = ["--track", "False", "--capture-video", "False"]
    return [python, "-m", f"cleanrl.{algo}", "--env-id", env_id, "--seed", str(seed),
            "--total-timesteps", str(steps), *off, *extra]  # fmt: skip


def import_command(args: argparse.Namespace, folders: list[Path]) -> str:
    """The `bench import` of these runs: the seed folders in seed order, ``--seeds`` to match."""
    return shlex.join(["bench", "import", *map(str, folders), "--task", args.env_id, "--algorithm",
                       args.label or "cleanrl-ppo", "--seeds", ",".join(map(str, args.seeds)),
                       "--suite", args.suite, "-o", f"cleanrl-{args.env_id}.csv"])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", choices=ALGOS, default="ppo")
    p.add_argument("--env-id", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--total-timesteps", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--python", default="python", help="the interpreter of CleanRL's environment")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run (OMP_NUM_THREADS)")
    p.add_argument("--suite", default="classic-control", help="the suite the import sets the runs beside")
    p.add_argument("--label", help="algorithm label in the import (default cleanrl-ppo)")
    p.add_argument("--force", action="store_true", help="replace a seed's earlier run")
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    found = subprocess.run([args.python, "-c", VERSIONS], capture_output=True, text=True)
    if found.returncode != 0:
        print(f"error: {args.python} cannot report its packages:\n{found.stderr}", file=sys.stderr)
        return 2
    versions = json.loads(found.stdout)
    if not versions.get("cleanrl"):
        print(f"error: cleanrl is not installed for {args.python}", file=sys.stderr)
        return 2
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"runs": []}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    folders, failed = [], 0
    for seed in args.seeds:
        folder = args.out / args.env_id / args.algo / f"seed{seed}"
        if folder.exists() and any(folder.iterdir()):
            if not args.force:
                print(f"error: {folder} holds an earlier run (--force replaces it)", file=sys.stderr)
                return 2
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cmd = command(args.python, args.algo, args.env_id, seed, args.total_timesteps, extra)
        start = time.monotonic()
        with open(folder / "cleanrl.log", "w") as log:
            rc = subprocess.run(cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        wall = time.monotonic() - start
        events = sorted(str(f.relative_to(args.out)) for f in folder.rglob("events.out.tfevents*"))
        print(f"{args.env_id} {args.algo} seed {seed}: exit {rc}, {wall:.1f} s, {len(events)} event file(s)")
        failed += rc != 0 or len(events) != 1
        key = (args.env_id, args.algo, seed)
        manifest["runs"] = [r for r in manifest["runs"] if (r["env_id"], r["algo"], r["seed"]) != key]
        manifest["runs"].append({
            "env_id": args.env_id, "algo": args.algo, "seed": seed, "total_timesteps": args.total_timesteps,
            "command": shlex.join(cmd), "cwd": str(folder), "threads": args.threads, "returncode": rc,
            "wall_time_s": round(wall, 3), "event_files": events, "versions": versions,
        })  # fmt: skip
        folders.append(folder)
        args.out.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    if failed:
        print(f"error: {failed} run(s) failed; see cleanrl.log in their folders", file=sys.stderr)
        return 1
    print(f"cleanrl {versions['cleanrl']}; manifest: {manifest_path}\nbring the runs in with:")
    print(import_command(args, folders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
