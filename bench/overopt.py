"""Reward-model over-optimisation (Gao, Schulman & Hilton 2023) measured on a suite's runs.

With d = √KL(π ‖ π_init), Gao et al. find the gold reward gained over π_init follows

* Best-of-N: R(d) = d (α − β d), maximal at d* = α / (2β);
* RL:        R(d) = d (α − β ln d), maximal at d* = exp(α / β − 1);

while the proxy (the learned reward being optimised) keeps rising, and reward models trained on
less data over-optimise sooner. Here:

* **points** (``points``): every T = 1 evaluation of a run that records a proxy beside the gold
  (``eval/proxy_reward`` on LM tasks, ``eval/proxy_return`` on control, set by the methods that
  optimise a learned reward) or of a Best-of-N run ranked by the reward model (not the gold
  oracle), with its KL (Best-of-N: the estimate, and the bound log N − (N − 1)/N too), gold and
  proxy. Gold is taken relative to π_init of the same seed (the ``sft`` run on LM, ``reference``
  on control; else Best-of-N with N = 1; else as recorded).
* **series**: the points one curve is fitted to — a run's checkpoints (RL), or a Best-of-N method's
  runs over N (one series per seed and reward-model data size). A series is named by its run label
  with ``n=…`` removed.
* **fits** (``fit_table``): per series and seed, α and β by least squares through the origin
  (R = α d − β d², or α d − β d ln d), then mean over seeds with t intervals; the held-out R²
  fits on the points with d at or below the series' median d (small N, early checkpoints) and
  scores the predictions at the larger d; d* from the fit on all points; for Best-of-N a row for
  each KL (estimate, bound).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bench import stats
from bench.results import Results, kl_records, method_of, run_configs

PROXY_METRICS = ("eval/proxy_reward", "eval/proxy_return")
FORMS = {
    "bon": "d (α − β d)",
    "rl": "d (α − β ln d)",
}
INIT_METHODS = ("sft", "reference")


def _design(d: np.ndarray, form: str) -> np.ndarray:
    if form == "bon":
        return np.column_stack([d, -(d**2)])
    return np.column_stack([d, -d * np.log(d)])


def fit_form(d, r, form: str) -> tuple[float, float]:
    """(α, β) of ``form`` fitted to gold gains ``r`` at ``d`` (> 0) by least squares through the
    origin; NaN with fewer than two points."""
    d, r = np.asarray(d, float), np.asarray(r, float)
    keep = d > 0
    if keep.sum() < 2:
        return np.nan, np.nan
    coef, *_ = np.linalg.lstsq(_design(d[keep], form), r[keep], rcond=None)
    return float(coef[0]), float(coef[1])


def predict(d, alpha: float, beta: float, form: str) -> np.ndarray:
    d = np.asarray(d, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _design(np.where(d > 0, d, 1.0), form) @ np.array([alpha, beta])
    return np.where(d > 0, out, 0.0)


def d_star(alpha: float, beta: float, form: str) -> float:
    """The d that maximises the fitted gold (NaN where the fit has no maximum: β ≤ 0)."""
    if not beta > 0:
        return np.nan
    return alpha / (2 * beta) if form == "bon" else float(np.exp(alpha / beta - 1))


# a held-out R² needs more fit points than the form's two parameters (two points through the
# origin are interpolated exactly and say nothing about the form) and at least two to predict
MIN_FIT_POINTS, MIN_HELDOUT_POINTS = 3, 2


def heldout_r2(d, r, form: str) -> float:
    """R² of the predictions at the points with d above the median d, from a fit on the others
    (d > 0); NaN with fewer than ``MIN_FIT_POINTS`` to fit or ``MIN_HELDOUT_POINTS`` to predict."""
    d, r = np.asarray(d, float), np.asarray(r, float)
    cut = np.median(d)
    train, test = (d <= cut) & (d > 0), d > cut
    if train.sum() < MIN_FIT_POINTS or test.sum() < MIN_HELDOUT_POINTS:
        return np.nan
    alpha, beta = fit_form(d[train], r[train], form)
    if not np.isfinite(alpha):
        return np.nan
    resid = r[test] - predict(d[test], alpha, beta, form)
    total = ((r[test] - r[test].mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / total) if total > 0 else np.nan


def series_name(label: str) -> str:
    """A run label without its ``n=…`` grid value (``best-of-n[n=4,rm_pairs=50]`` ->
    ``best-of-n[rm_pairs=50]``)."""
    m = re.fullmatch(r"(.*?)\[(.*)\]", label)
    if not m:
        return label
    rest = [p for p in m.group(2).split(",") if not p.startswith("n=")]
    return m.group(1) + (f"[{','.join(rest)}]" if rest else "")


def points(results: Results) -> pd.DataFrame:
    """Every T = 1 evaluation of a proxy-recording or Best-of-N run: task, algorithm, method,
    series, seed, step, n (Best-of-N's N), rm_pairs, kl, kl_bound, d, gold (relative to π_init of
    the seed), gold_raw, proxy, form (bon | rl)."""
    cols = ["task", "algorithm", "method", "series", "seed", "step", "n", "rm_pairs", "kl", "kl_bound", "d",
            "gold", "gold_raw", "proxy", "form"]  # fmt: skip
    runs = results.runs[results.runs.status == "done"]
    ev = results.evals[results.evals.temperature == 1.0]
    proxy = ev[ev.metric.isin(PROXY_METRICS)][["run_key", "step", "value"]].rename(columns={"value": "proxy"})
    cfg = run_configs(runs)
    # Best-of-N by a learned reward (not the oracle ranked by the gold itself)
    proxy_ranked = [
        a == "best-of-n" and c.get("ranker", "rm") != "gold" for a, c in zip(runs.algo, cfg, strict=True)
    ]
    bon_keys = set(runs.run_key[proxy_ranked])
    keys = (set(proxy.run_key) | bon_keys) & set(runs.run_key)
    if not keys:
        return pd.DataFrame(columns=cols)
    scores = results.scored_evals()
    scores = scores[(scores.temperature == 1.0) & scores.run_key.isin(keys | _init_keys(runs))]
    kl = kl_records(results)
    bound = ev[ev.metric == "eval/kl_bound"][["run_key", "step", "value"]].rename(
        columns={"value": "kl_bound"}
    )
    pts = scores[["run_key", "step", "value"]].rename(columns={"value": "gold_raw"})
    pts = pts.merge(kl[~kl.kl_is_bound][["run_key", "step", "kl"]], on=["run_key", "step"], how="left")
    pts = pts.merge(bound, on=["run_key", "step"], how="left").merge(
        proxy, on=["run_key", "step"], how="left"
    )
    cfg = run_configs(runs)
    info = runs.assign(
        n=[c.get("n", np.nan) if a == "best-of-n" else np.nan for c, a in zip(cfg, runs.algo, strict=True)],
        rm_pairs=[c.get("rm_pairs", c.get("n_pairs", np.nan)) or np.nan for c in cfg],
    )[["run_key", "task", "algorithm", "algo", "seed", "n", "rm_pairs"]]
    pts = pts.merge(info, on="run_key")
    pts = pts.assign(method=pts.algorithm.map(method_of))
    init = _init_gold(pts)
    body = pts[pts.run_key.isin(keys)].copy()
    if body.empty:
        return pd.DataFrame(columns=cols)
    body["series"] = body.algorithm.map(series_name)
    body["form"] = np.where(body.algo == "best-of-n", "bon", "rl")
    body.loc[body.form == "bon", "kl"] = body.loc[body.form == "bon", "kl"].fillna(0.0)
    base = body.apply(
        lambda r: init.get((r.task, r.seed, r.series), init.get((r.task, r.seed), np.nan)), axis=1
    )
    # without a π_init run (or N = 1) of the seed, the gold is taken as recorded
    body["gold"] = body.gold_raw - base.astype(float).fillna(0.0)
    body["d"] = np.sqrt(body.kl.clip(lower=0))
    return body[cols].sort_values(["task", "series", "seed", "d"], kind="stable").reset_index(drop=True)


def _init_keys(runs: pd.DataFrame) -> set:
    return set(runs.run_key[runs.algorithm.map(method_of).isin(INIT_METHODS)])


def _init_gold(pts: pd.DataFrame) -> dict:
    """π_init's gold per (task, seed): the sft / reference run's last T = 1 score; per (task, seed,
    series) of Best-of-N, its N = 1 point where it has one (the same samples' distribution)."""
    out = {}
    init = pts[pts.method.isin(INIT_METHODS)]
    for (task, seed), g in init.groupby(["task", "seed"]):
        out[(task, seed)] = float(g.sort_values("step").gold_raw.iloc[-1])
    one = pts[(pts.algo == "best-of-n") & (pts.n == 1)]
    for r in one.itertuples():
        out.setdefault((r.task, r.seed), float(r.gold_raw))
        out[(r.task, r.seed, series_name(r.algorithm))] = float(r.gold_raw)
    return out


FIT_COLUMNS = [
    "task", "series", "method", "form", "kl", "seeds", "points", "alpha", "alpha_lo", "alpha_hi", "beta",
    "beta_lo", "beta_hi", "r2_heldout", "r2_lo", "r2_hi", "d_star", "d_star_lo", "d_star_hi", "d_max",
    "interval",
]  # fmt: skip


def seed_fits(pts: pd.DataFrame) -> pd.DataFrame:
    """Per (task, series, kl kind, seed): α, β, held-out R², d*, the largest d and the points."""
    rows = []
    for (task, series, seed), g in pts.groupby(["task", "series", "seed"], sort=True):
        form = g.form.iloc[0]
        kinds = [("estimate", g.d.to_numpy(float))]
        if form == "bon" and g.kl_bound.notna().all():
            kinds.append(("bound", np.sqrt(g.kl_bound.to_numpy(float))))
        for kind, d in kinds:
            r = g.gold.to_numpy(float)
            ok = np.isfinite(d) & np.isfinite(r)
            alpha, beta = fit_form(d[ok], r[ok], form)
            rows.append(dict(
                task=task, series=series, method=g.method.iloc[0], form=form, kl=kind, seed=seed,
                points=int(ok.sum()), alpha=alpha, beta=beta, r2_heldout=heldout_r2(d[ok], r[ok], form),
                d_star=d_star(alpha, beta, form), d_max=float(np.nanmax(d)) if ok.any() else np.nan,
            ))  # fmt: skip
    return pd.DataFrame(rows)


def fit_table(results: Results, confidence: float = 0.95) -> pd.DataFrame:
    """Per (task, series, KL kind): α, β, held-out R² and d* as means over seeds with t intervals."""
    fits = seed_fits(points(results))
    if fits.empty:
        return pd.DataFrame(columns=FIT_COLUMNS)
    rows = []
    for (task, series, kind), g in fits.groupby(["task", "series", "kl"], sort=True):
        row = dict(task=task, series=series, method=g.method.iloc[0], form=FORMS[g.form.iloc[0]], kl=kind,
                   seeds=len(g), points=int(g.points.median()), d_max=float(g.d_max.max()))  # fmt: skip
        for name in ("alpha", "beta", "r2_heldout", "d_star"):
            values = g[name].dropna().to_numpy(float)
            short = {"r2_heldout": "r2"}.get(name, name)
            if len(values) == 0:
                row[name], row[f"{short}_lo"], row[f"{short}_hi"] = np.nan, np.nan, np.nan
                continue
            iv = stats.mean_interval(values, confidence)
            row[name], row[f"{short}_lo"], row[f"{short}_hi"] = iv.point, iv.lo, iv.hi
            if name == "alpha":
                row["interval"] = iv.label
        rows.append(row)
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def peak(d: np.ndarray, gold: np.ndarray) -> tuple[float, bool]:
    """(d at the highest gold, whether that is inside the grid — not its largest d)."""
    i = int(np.nanargmax(gold))
    return float(d[i]), i < len(d) - 1


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x (NaN with fewer than two distinct x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return np.nan
    return float(np.polyfit(x, y, 1)[0])
