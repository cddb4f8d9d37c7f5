"""Injected regressions: does the CI tier (suites/ci.yaml) catch a broken PPO, as often as its
power calculation says it should — and does it stay silent when nothing changed?

For each repetition r = 1..R, with a fresh seed set (seeds 100·r … 100·r + n − 1, n = the
tier's seed count; disjoint between repetitions and from the tier's own seeds):

1. **Baseline.** The unchanged tier on those seeds (a suite that ``include:``s ci.yaml and
   overrides ``seeds``), exported with ``bench export --no-timing --kind eval,run``.
2. **Degraded PPO.** Each variant re-runs only the ``ppo`` entry with one hyperparameter broken
   (the label stays ``ppo``, so the comparison pairs up by seed): learning rate × 0.1;
   clip_range 0.02; gae_lambda 0; normalize_advantage false; hidden layers halved. Its result
   table is the variant's PPO rows plus the baseline's non-PPO rows of the same repetition (the
   other algorithms are untouched by a PPO change), so ``bench compare`` sees the tier's full
   family of comparisons and applies the same Bonferroni level as the real gate (checked).
   ``bench compare --results variant.csv --baseline base.csv --suite ci --tolerance T``.
3. **Unchanged code, second run** (``--rerun-reps`` repetitions): the tier again on the same
   seeds in a fresh store with a fresh artifact cache; every comparison must come out
   ``identical``.

Measured per variant × task: the true drop (mean over repetitions of the mean paired normalised
difference, baseline − variant), how many repetitions the gate flagged a regression, and the
power ``bench.gate.power`` predicts at that drop with se = pooled sd of the per-seed differences
/ sqrt(n), df = n − 1, the per-comparison level compare used and the tolerance.

Writes under ``--out``: one folder per repetition (stores, CSVs, compare outputs), ``rows.csv``
(one row per repetition × variant × task), ``identical.csv`` (the unchanged-code comparisons)
and the markdown table (``--md``, default ``OUT/injected.md``).

    python examples/ci/injected_regressions.py --reps 3 --out /tmp/injected --tolerance 0.0

Needs about (R × (1 + 5 PPO-only variants) + reruns) tier runs of time; measure one repetition
first (``--reps 1``). Stores are resumable: a re-started script skips finished runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's bench, as the subprocesses below use it

from bench import gate  # noqa: E402
from bench.results import Results, final_scores, normalise  # noqa: E402
from bench.suite import expand, load_suite  # noqa: E402

PPO = "ppo"


def variants(configs: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """name -> per-task parameter overrides of the ppo entry (``configs``: its resolved config
    per task, so relative changes such as lr × 0.1 start from the tier's own values)."""
    return {
        "lr x0.1": {t: {"lr": c["lr"] * 0.1} for t, c in configs.items()},
        "clip_range 0.02": {t: {"clip_range": 0.02} for t in configs},
        "gae_lambda 0": {t: {"gae_lambda": 0.0} for t in configs},
        "normalize_advantage false": {t: {"normalize_advantage": False} for t in configs},
        "hidden_sizes halved": {
            t: {"hidden_sizes": [h // 2 for h in c["hidden_sizes"]]} for t, c in configs.items()
        },
    }


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")


def bench(*args: str, check: bool = True, cache: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m bench ARGS`` with this checkout first on the path (``cache``: its BENCH_CACHE)."""
    cmd = [sys.executable, "-m", "bench", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cache is not None:
        env["BENCH_CACHE"] = str(cache)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_and_export(
    suite: Path, store: Path, csv: Path, name: str, jobs: int, cache: Path | None = None
) -> float:
    """Runs a suite into its own store and exports it; returns the wall time of the run."""
    t0 = time.monotonic()
    bench("run", str(suite), "--store", str(store), "--jobs", str(jobs), "--quiet", cache=cache)
    took = time.monotonic() - t0
    bench(
        "export", "--store", str(store), "--suite", name, "--no-timing", "--kind", "eval,run", "-o", str(csv)
    )
    return took


def compare(results: Path, baseline: Path, out: Path, name: str, tolerance: float, effect: float,
            confidence: float) -> pd.DataFrame:  # fmt: skip
    proc = bench("compare", "--results", str(results), "--baseline", str(baseline), "--suite", name,
                 "--tolerance", str(tolerance), "--effect", str(effect), "--confidence", str(confidence),
                 "-o", str(out), check=False)  # fmt: skip
    if proc.returncode not in (0, 1):  # 1 = a regression was found: an answer, not an error
        raise SystemExit(
            f"bench compare failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return pd.read_csv(out / "compare.csv")


def per_seed(csv: Path, name: str) -> pd.DataFrame:
    """Normalised final score per (task, algorithm, seed), as compare computes it."""
    f = final_scores(Results.from_csv(csv, name))
    f["norm"] = [
        normalise(t, s) if normalise(t, s) is not None else s for t, s in zip(f.task, f.score, strict=True)
    ]
    return f.set_index(["task", "algorithm", "seed"]).norm


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reps", type=int, default=3, help="repetitions with fresh seed sets (default 3)")
    p.add_argument("--first-rep", type=int, default=1, help="number of the first repetition (seeds 100·r…)")
    p.add_argument("--out", type=Path, required=True, help="folder for stores, CSVs and tables")
    p.add_argument(
        "--suite", type=Path, default=REPO / "suites" / "ci.yaml", help="the tier (default suites/ci.yaml)"
    )
    p.add_argument(
        "--tolerance", type=float, default=0.0, help="gate tolerance, normalised units (default 0)"
    )
    p.add_argument(
        "--effect", type=float, default=0.10, help="the drop the gate must see (--effect of compare)"
    )
    p.add_argument("--confidence", type=float, default=0.95, help="family-wise confidence (default 0.95)")
    p.add_argument("--jobs", type=int, default=2, help="bench run --jobs (default 2)")
    p.add_argument(
        "--rerun-reps",
        type=int,
        default=1,
        help="repetitions that also re-run the unchanged tier (default 1)",
    )
    p.add_argument("--only", nargs="*", help="run only these variants (names as in the table)")
    p.add_argument("--md", type=Path, help="markdown table (default OUT/injected.md)")
    args = p.parse_args()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    suite_path = args.suite.resolve()
    raw = yaml.safe_load(suite_path.read_text())
    tier = load_suite(suite_path)
    name = tier.name
    n = len(tier.seeds)
    ppo_entries = [e for e in raw["algorithms"] if (e.get("label") or e["algo"]) == PPO]
    if len(ppo_entries) != 1:
        raise SystemExit(f"{suite_path}: expected one algorithm entry labelled {PPO!r}")
    entry = ppo_entries[0]
    configs = {s.task: s.config for s in expand(tier) if s.label == PPO and s.seed == tier.seeds[0]}
    todo = variants(configs)
    if args.only:
        todo = {k: v for k, v in todo.items() if k in args.only}

    rows, identical, timings = [], [], []
    for r in range(args.first_rep, args.first_rep + args.reps):
        rep = out / f"rep{r}"
        seeds = [100 * r + i for i in range(n)]
        base_yaml = write_yaml(rep / "base.yaml", {"include": str(suite_path), "name": name, "seeds": seeds})
        base_csv = rep / "base.csv"
        took = run_and_export(base_yaml, rep / "base.sqlite", base_csv, name, args.jobs)
        timings.append(dict(rep=r, what="baseline (full tier)", seconds=round(took, 1)))
        print(f"rep {r}: baseline done in {took:.0f} s (seeds {seeds[0]}..{seeds[-1]})", flush=True)
        base = pd.read_csv(base_csv)
        before = per_seed(base_csv, name)

        if r - args.first_rep < args.rerun_reps:  # the unchanged code again, same seeds
            again_csv = rep / "rerun.csv"
            # a store and an artifact cache of its own: reference policies, preferences and the LM
            # pipeline are rebuilt too, as in a fresh CI job
            took = run_and_export(
                base_yaml, rep / "rerun.sqlite", again_csv, name, args.jobs, rep / "rerun-cache"
            )
            timings.append(dict(rep=r, what="rerun (full tier)", seconds=round(took, 1)))
            cmp = compare(
                again_csv, base_csv, rep / "cmp-rerun", name, args.tolerance, args.effect, args.confidence
            )
            identical.append(cmp.assign(rep=r)[["rep", "task", "algorithm", "method", "exact", "verdict"]])
            print(f"rep {r}: rerun verdicts {cmp.verdict.value_counts().to_dict()}", flush=True)

        for vname, overrides in todo.items():
            changed = json.loads(json.dumps(entry))  # a copy of the tier's ppo entry
            task_params = changed.setdefault("task_params", {})
            for task, over in overrides.items():
                task_params[task] = {**task_params.get(task, {}), **over}
            variant = {"include": "base.yaml", "name": name, "algorithms": [changed]}
            var_yaml = write_yaml(rep / f"var-{slug(vname)}.yaml", variant)
            var_csv = rep / f"var-{slug(vname)}.csv"
            took = run_and_export(var_yaml, rep / f"var-{slug(vname)}.sqlite", var_csv, name, args.jobs)
            timings.append(dict(rep=r, what=f"variant {vname} (ppo only)", seconds=round(took, 1)))
            var = pd.read_csv(var_csv)
            combined = pd.concat([var[var.algorithm == PPO], base[base.algorithm != PPO]], ignore_index=True)
            combined_csv = rep / f"var-{slug(vname)}-combined.csv"
            combined.to_csv(combined_csv, index=False)
            cmp_dir = rep / f"cmp-{slug(vname)}"
            cmp = compare(combined_csv, base_csv, cmp_dir, name, args.tolerance, args.effect, args.confidence)
            compared = cmp[~cmp.verdict.isin(["missing", "new"])]
            full = int(base[["task", "algorithm"]].drop_duplicates().shape[0])
            if len(compared) != full:
                raise SystemExit(f"{vname}: {len(compared)} comparisons, the tier has {full}")
            level = 1 - (1 - args.confidence) / len(compared)
            after = per_seed(combined_csv, name)
            mine = compared[compared.algorithm == PPO]
            for _, c in mine.iterrows():
                d = (after.loc[c.task, PPO] - before.loc[c.task, PPO]).dropna()
                rows.append(
                    dict(
                        rep=r,
                        variant=vname,
                        task=c.task,
                        n=len(d),
                        comparisons=len(compared),
                        level=level,
                        mean_diff=float(d.mean()),
                        sd_diff=float(d.std(ddof=1)),
                        diff_lo=c.diff_lo,
                        diff_hi=c.diff_hi,
                        mde=c.mde,
                        verdict=c.verdict,
                        flagged=c.verdict == "regression",
                        baseline_mean=c.baseline_mean,
                        variant_mean=c.store_mean,
                    )  # fmt: skip
                )
            verdicts = dict(zip(mine.task, mine.verdict, strict=True))
            print(f"rep {r}: {vname}: {took:.0f} s; ppo verdicts {verdicts}", flush=True)
            pd.DataFrame(rows).to_csv(out / "rows.csv", index=False)
        pd.DataFrame(timings).to_csv(out / "timings.csv", index=False)
        if identical:
            pd.concat(identical).to_csv(out / "identical.csv", index=False)

    table = summarise(pd.DataFrame(rows), args.tolerance)
    md = render(table, identical, args, n)
    (args.md or out / "injected.md").write_text(md)
    print(md)
    return 0


def summarise(rows: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    out = []
    for (variant, task), g in rows.groupby(["variant", "task"], sort=False):
        n, level = int(g.n.iloc[0]), float(g.level.iloc[0])
        drop = -float(g.mean_diff.mean())
        sd = math.sqrt(float((g.sd_diff**2).mean()))  # pooled over repetitions (equal n)
        predicted = gate.power(drop, sd / math.sqrt(n), n - 1, level, tolerance)
        row = dict(variant=variant, task=task, reps=len(g), true_drop=drop, pooled_sd_diff=sd)
        row.update(flagged=int(g.flagged.sum()), detection_rate=float(g.flagged.mean()))
        out.append({**row, "predicted_power": predicted, "mde_median": float(g.mde.median())})
    return pd.DataFrame(out)


def render(table: pd.DataFrame, identical: list, args, n: int) -> str:
    lines = [
        f"# Injected PPO regressions in the CI tier ({args.suite.name})",
        "",
        f"{int(table.reps.max()) if len(table) else 0} repetitions with fresh seed sets of {n} seeds; "
        f"tolerance {args.tolerance:g}; {args.confidence:.0%} family-wise (Bonferroni over "
        f"the tier's comparisons). true drop = mean over repetitions of the mean paired normalised "
        "difference (baseline − variant); predicted power = bench.gate.power at that drop with "
        "se = pooled sd of per-seed differences / sqrt(n), df = n − 1.",
        "",
        "| variant | task | true drop | pooled sd of diffs | flagged / R | detection rate | predicted power"
        " | median MDE |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r.variant} | {r.task} | {r.true_drop:+.3f} | {r.pooled_sd_diff:.3f} | "
            f"{r.flagged}/{r.reps} | {r.detection_rate:.0%} | {r.predicted_power:.0%} | {r.mde_median:.3f} |"
        )
    if identical:
        ident = pd.concat(identical)
        ok = (ident.verdict == "identical").sum()
        lines += ["", f"Unchanged code, run twice on the same seeds: {ok}/{len(ident)} comparisons identical "
                  f"({', '.join(sorted(set(ident.verdict)))})."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
