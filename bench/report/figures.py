"""The report's figures (seaborn theme over matplotlib, written as PNG files).

Every figure takes ``colors``, one colour per algorithm name (and per method name for frontiers),
built once per report by ``palette`` so that an algorithm keeps its colour in every figure.
Bands are computed by ``bench.stats`` with the report's seed, not by seaborn's own bootstrap.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench import stats  # noqa: E402
from bench.report.tables import plain  # noqa: E402
from bench.results import curve_grid, method_of  # noqa: E402

DPI = 100
ANCHOR_MARKERS = ["*", "P", "X", "D", "^", "v"]


def setup() -> None:
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.9)
    # names are data: a "$" in one must print as is, never start TeX or mathtext
    matplotlib.rcParams.update({"text.usetex": False, "text.parse_math": False})


NAME_LIMIT = 48


def plain_log_ticks(axis) -> None:
    """Log-scale tick labels as plain numbers: matplotlib writes them as math text ($10^{2}$),
    which shows raw here because math text is off (names may contain '$')."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def short(name, limit: int = NAME_LIMIT) -> str:
    """A name as a figure label: one line without control characters (``tables.plain``), at
    most ``limit`` characters (longer names are cut with an ellipsis)."""
    text = plain(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def palette(names: list[str]) -> dict[str, tuple]:
    """A fixed colour per name (sorted, so the same names always get the same colours)."""
    names = sorted(set(names))
    colors = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path.name


def _score_label(metric: str, task: str | None = None) -> str:
    from bench.lm.tasks import LM_TASKS

    if metric == "eval/return" and task in LM_TASKS:
        return "gold reward"  # LM tasks record their gold reward as the return
    return {
        "eval/return": "episode return",
        "eval/gold_reward": "gold reward",
        "eval/win_rate": "win rate",
    }.get(metric, metric)


def task_figure(
    ev: pd.DataFrame,
    finals: pd.DataFrame,
    task: str,
    metric: str,
    colors: dict,
    anchors: pd.DataFrame,
    threshold: float | None,
    path: Path,
    reps: int,
    seed: int,
) -> str:
    """Three panels for one task: greedy score against env steps and against wall time (mean
    over seeds, 95% bootstrap band), and the final score of every seed per algorithm with the
    published anchors beside them."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    label = _score_label(metric, task)
    for ax, x, xlabel in [(axes[0], "step", "env steps"), (axes[1], "wall_time", "wall time (s)")]:
        for algo, g in ev.groupby("algorithm", sort=True):
            g = g[np.isfinite(g[x].to_numpy(float))]  # an export without timing has no wall times
            if g.empty:
                continue
            grid, values = curve_grid(g, x)
            mean, lo, hi = stats.mean_band(values, reps, seed=seed)
            ax.plot(grid, mean, color=colors[algo], label=f"{short(algo)} (n={len(values)})", lw=1.8)
            ax.fill_between(grid, lo, hi, color=colors[algo], alpha=0.2, lw=0)
        if threshold is not None:
            ax.axhline(threshold, color="0.4", ls="--", lw=1, label=f"threshold {threshold:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{label} (greedy, mean and 95% CI)")
    for i, (_, a) in enumerate(anchors.iterrows()):
        axes[0].plot(
            a.budget,
            a.score,
            marker=ANCHOR_MARKERS[i % len(ANCHOR_MARKERS)],
            ms=11,
            ls="none",
            color="black",
            label=f"{short(a.source, 24)}: {short(a.algorithm, 24)} at {a.budget:,.0f} steps",
        )
    axes[0].set_title(f"{short(task)}: learning curves")
    timed = np.isfinite(ev.wall_time.to_numpy(float)).any()
    axes[1].set_title(f"{short(task)}: against wall time" + ("" if timed else " (not recorded)"))
    # final scores: one dot per seed (jittered by the report's seed, so the same report draws
    # the same figure), the mean as a bar, anchors as black markers with ± std
    order = sorted(finals.algorithm.unique())
    ax = axes[2]
    if len(finals):
        rng = np.random.default_rng(seed)
        for j, algo in enumerate(order):
            s = finals.score[finals.algorithm == algo].to_numpy(float)
            y = j + (rng.uniform(-0.25, 0.25, len(s)) if len(s) > 1 else np.zeros(len(s)))
            ax.scatter(s, y, s=16, color=colors[algo], alpha=0.6, lw=0)
        means = finals.groupby("algorithm").score.mean().reindex(order)
        ax.scatter(means, range(len(order)), marker="|", s=500, color="black", zorder=3, label="mean")
    ticks = [short(a) for a in order]
    for i, (_, a) in enumerate(anchors.iterrows()):
        y = len(ticks)
        ticks.append(f"{short(a.source, 24)}: {short(a.algorithm, 24)}")
        err = a.get("std") if pd.notna(a.get("std", np.nan)) else None
        ax.errorbar(
            a.score, y, xerr=err, marker=ANCHOR_MARKERS[i % len(ANCHOR_MARKERS)], ms=10, color="black",
            capsize=3, ls="none",
        )  # fmt: skip
    ax.set_yticks(range(len(ticks)), ticks)
    ax.set_ylim(len(ticks) - 0.5, -0.5)
    if threshold is not None:
        ax.axvline(threshold, color="0.4", ls="--", lw=1)
    ax.set_xlabel(f"final {label} (greedy)")
    ax.set_ylabel("")
    ax.set_title(f"{short(task)}: final score per seed")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(4, len(labels)),
        frameon=False,
    )
    fig.tight_layout()
    return _save(fig, path)


def aggregate_figure(table: pd.DataFrame, colors: dict, path: Path) -> str:
    """IQM, mean, median and optimality gap of normalised scores, 95% stratified-bootstrap CIs."""
    names = [("iqm", "IQM"), ("mean", "Mean"), ("median", "Median"), ("optimality_gap", "Optimality gap")]
    algos = list(table.algorithm)
    fig, axes = plt.subplots(1, 4, figsize=(15, 0.45 * len(algos) + 1.6), sharey=True)
    for ax, (key, title) in zip(axes, names, strict=True):
        for i, row in table.reset_index(drop=True).iterrows():
            c = colors[row.algorithm]
            ax.barh(
                i, row[f"{key}_hi"] - row[f"{key}_lo"], left=row[f"{key}_lo"], height=0.6, color=c, alpha=0.6
            )
            ax.plot(row[key], i, marker="|", ms=20, mew=2, color="black")
        ax.margins(x=0.1)
        ax.set_title(title)
        ax.set_xlabel("normalised score" + (" (lower is better)" if key == "optimality_gap" else ""))
    axes[0].set_yticks(range(len(algos)), [short(a) for a in algos])
    axes[0].invert_yaxis()
    fig.tight_layout()
    return _save(fig, path)


def _heatmap(matrix: pd.DataFrame, ax) -> None:
    sns.heatmap(
        matrix.astype(float), annot=True, fmt=".2f", vmin=0, vmax=1, cmap="RdBu", center=0.5, square=True,
        cbar_kws={"label": "P(row algorithm > column algorithm)"}, ax=ax,
    )  # fmt: skip


def improvement_figure(matrix: pd.DataFrame, path: Path) -> str:
    """Heatmap of P(row > column) on normalised scores."""
    n = len(matrix)
    matrix = matrix.set_axis([short(a) for a in matrix.index], axis=0).set_axis(
        [short(a) for a in matrix.columns], axis=1
    )
    fig, ax = plt.subplots(figsize=(1.1 * n + 3, 0.8 * n + 1.5))
    with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib deprecates
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        _heatmap(matrix, ax)
    ax.set_xlabel("column algorithm Y")
    ax.set_ylabel("row algorithm X")
    ax.set_title("Probability of improvement P(X > Y)")
    fig.tight_layout()
    return _save(fig, path)


def profile_figure(matrices: dict[str, np.ndarray], colors: dict, path: Path, reps: int, seed: int) -> str:
    """Performance profiles: fraction of runs with normalised score above tau, 95% CI bands."""
    values = np.concatenate([m[~np.isnan(m)] for m in matrices.values()])
    taus = np.linspace(min(0.0, values.min()), max(1.0, values.max()), 101)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for algo, m in matrices.items():
        point, lo, hi = stats.performance_profile_band(m, taus, reps, seed=seed)
        ax.plot(taus, point, color=colors[algo], label=short(algo), lw=1.8)
        ax.fill_between(taus, lo, hi, color=colors[algo], alpha=0.2, lw=0)
    ax.set_xlabel("normalised score τ (0 = random policy, 1 = solved)")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title("Performance profiles (all tasks pooled)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="algorithm")
    fig.tight_layout()
    return _save(fig, path)


def frontier_figure(points: pd.DataFrame, task: str, metric: str, colors: dict, path: Path) -> str:
    """(KL to reference, score) of every checkpoint evaluation per method (a run label without
    its sweep suffix), each method's Pareto front drawn over all its sweep points and seeds."""
    points = points.assign(method=points.algorithm.map(method_of))
    if "kl_is_bound" not in points:
        points = points.assign(kl_is_bound=False)
    bound = points.kl_is_bound.astype(bool)
    fig, ax = plt.subplots(figsize=(8, 5))
    for method, g in points.groupby("method", sort=True):
        c = colors[method]
        measured, bounds = g[~bound[g.index]], g[bound[g.index]]
        ax.scatter(measured.kl, measured.score, s=14, color=c, alpha=0.35, lw=0)
        # a KL that is only an upper bound: hollow marker (the true point lies at or left of it)
        ax.scatter(bounds.kl, bounds.score, s=30, facecolors="none", edgecolors=c, lw=1.2)
        front = g.iloc[stats.pareto_front(g.kl.to_numpy(), g.score.to_numpy())].sort_values("kl")
        note = ", KL: upper bound" if len(bounds) else ""
        ax.plot(front.kl, front.score, color=c, lw=2, marker="o", ms=4, drawstyle="steps-post",
                label=f"{short(method)} ({len(g)} points{note})")  # fmt: skip
    if (points.kl > 0).any() and points.kl.max() / max(points.kl[points.kl > 0].min(), 1e-9) > 100:
        ax.set_xscale("symlog", linthresh=0.1)
        plain_log_ticks(ax.xaxis)
    ax.set_xlabel("sequence-level KL(π ‖ π_ref) (nats)")
    ax.set_ylabel(f"{_score_label(metric, task)} at T = 1")
    ax.set_title(f"{short(task)}: reward vs KL frontier (lines: Pareto fronts)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="method")
    fig.tight_layout()
    return _save(fig, path)


def _method_panels(table: pd.DataFrame, colors: dict, height: float, legend_loc: str, draw):
    """A figure with one panel per method (run label stem) of ``table``: ``draw(axis, rows of one
    sweep point, shade, short label)`` draws each sweep point in its own shade of the method's
    colour. Returns the figure; the caller adds its labels."""
    table = table.assign(method=table.algorithm.map(method_of))
    methods = sorted(table.method.unique())
    cols = min(4, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, height * rows), sharex=True, sharey=True,
                             squeeze=False)  # fmt: skip
    for ax, method in zip(axes.flat, methods, strict=False):
        g = table[table.method == method]
        labels = sorted(g.algorithm.unique())
        shades = sns.light_palette(colors[method], n_colors=len(labels) + 2)[2:]
        for label, shade in zip(labels, shades, strict=True):
            draw(ax, g[g.algorithm == label], shade, short(label[len(method) :].strip("[]") or method))
        ax.set_title(short(method), fontsize=10)
        ax.legend(fontsize=6, loc=legend_loc)
    for ax in axes.flat[len(methods) :]:
        ax.axis("off")
    return fig


def temperature_figure(table: pd.DataFrame, task: str, metric: str, colors: dict, path: Path) -> str:
    """Final score against sampling temperature, mean over runs with 95% CI: one panel per
    method (run label stem), one line per sweep point of the method."""

    def draw(ax, h, shade, name):
        h = h.sort_values("temperature")
        ax.plot(h.temperature, h["mean"], color=shade, marker="o", ms=3, lw=1.5, label=name)
        ax.fill_between(h.temperature, h.lo, h.hi, color=shade, alpha=0.15, lw=0)

    fig = _method_panels(table, colors, 2.9, "lower left", draw)
    fig.supxlabel("sampling temperature T (0 = greedy)")
    fig.supylabel(f"final {_score_label(metric, task)} (mean, 95% CI)")
    fig.suptitle(f"{short(task)}: robustness to sampling temperature")
    fig.tight_layout()
    return _save(fig, path)


def win_rate_figure(table: pd.DataFrame, task: str, colors: dict, path: Path) -> str:
    """Win rate against the reference completions vs sampling temperature (the DPO paper's
    temperature-robustness figure): per method, its sweep point with the best mean win rate over
    temperatures, mean with 95% CI; the dashed line is a tie with the references."""
    table = table.assign(method=table.algorithm.map(method_of))
    best = table.groupby(["method", "algorithm"])["mean"].mean().reset_index()
    best = best.loc[best.groupby("method")["mean"].idxmax()]
    fig, ax = plt.subplots(figsize=(8, 5))
    for _, b in best.sort_values("method").iterrows():
        h = table[table.algorithm == b.algorithm].sort_values("temperature")
        c = colors[b.method]
        ax.plot(h.temperature, h["mean"], color=c, marker="o", ms=4, lw=1.8, label=short(b.algorithm))
        ax.fill_between(h.temperature, h.lo, h.hi, color=c, alpha=0.15, lw=0)
    ax.axhline(0.5, color="0.4", ls="--", lw=1)
    ax.set_xlabel("sampling temperature T (0 = greedy)")
    ax.set_ylabel("win rate vs reference (wins + ½ ties, 95% CI)")
    ax.set_title(
        f"{short(task)}: win rate against the reference vs temperature (best sweep point per method)"
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="method")
    fig.tight_layout()
    return _save(fig, path)


def kl_curve_figure(curves: pd.DataFrame, task: str, colors: dict, path: Path) -> str:
    """KL(π ‖ π_ref) at T = 1 over training updates, mean over seeds: one panel per method, one
    line per sweep point."""

    def draw(ax, h, shade, name):
        h = h.groupby("step").kl.agg(["mean", "min", "max"]).reset_index()
        ax.plot(h.step, h["mean"], color=shade, lw=1.6, marker="o", ms=2.5, label=name)
        ax.fill_between(h.step, h["min"], h["max"], color=shade, alpha=0.15, lw=0)

    fig = _method_panels(curves, colors, 2.8, "upper left", draw)
    fig.supxlabel("optimizer updates")
    fig.supylabel("KL(π ‖ π_ref) at T = 1 (nats; mean, band = seed range)")
    fig.suptitle(f"{short(task)}: KL to the reference over training")
    fig.tight_layout()
    return _save(fig, path)


def data_efficiency_figure(table: pd.DataFrame, task: str, metric: str, colors: dict, path: Path) -> str:
    """Final T = 1 score against the number of training preference pairs, per method."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, g in table.groupby("method", sort=True):
        g = g.sort_values("n_pairs")
        ax.plot(g.n_pairs, g["mean"], color=colors[method], marker="o", lw=1.8, label=short(method))
        ax.fill_between(g.n_pairs, g.lo, g.hi, color=colors[method], alpha=0.2, lw=0)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel("training preference pairs")
    ax.set_ylabel(f"final {_score_label(metric, task)} at T = 1")
    ax.set_title(f"{short(task)}: data efficiency")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="method")
    fig.tight_layout()
    return _save(fig, path)


def scaling_figure(table: pd.DataFrame, task: str, colors: dict, path: Path) -> str:
    """Env-steps/s against workers (dashed: linear scaling from W = 1; bars: seed range) and the
    efficiency against linear, one line per method."""
    fig, (ax, ax_eff) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, g in table.groupby("method", sort=True):
        g = g.sort_values("workers")
        c = colors.get(method, colors.get(method_of(method)))
        err = [g.env_steps_per_s - g.sps_min, g.sps_max - g.env_steps_per_s]
        ax.errorbar(g.workers, g.env_steps_per_s, yerr=err, color=c, marker="o", lw=2, capsize=3,
                    label=short(method))  # fmt: skip
        one = g[g.workers == 1].env_steps_per_s
        if len(one):
            ax.plot(g.workers, one.iloc[0] * g.workers, color=c, ls="--", lw=1, alpha=0.7)
            ax_eff.plot(g.workers, g.efficiency, color=c, marker="o", lw=2, label=short(method))
    ax_eff.axhline(1.0, color="0.4", ls="--", lw=1)
    for a in (ax, ax_eff):
        a.set_xlabel("workers (W)")
        a.set_xticks(sorted(table.workers.unique()))
    ax.set_ylabel("env steps / s (training)")
    ax.set_title(f"{short(task)}: throughput (dashed: linear)")
    ax_eff.set_ylabel("efficiency: speed-up / W")
    ax_eff.set_ylim(0, max(1.1, float(table.efficiency.max()) * 1.1))
    ax_eff.set_title("efficiency against linear scaling")
    ax.legend(loc="upper left", title="method")
    fig.tight_layout()
    return _save(fig, path)


def figure_rows(table: pd.DataFrame, points: dict, scale: str) -> pd.DataFrame:
    """The comparisons the gate figure shows: those on ``scale`` that were judged by statistics
    (identical ones need no picture)."""
    keep = [(t, a) in points for t, a in zip(table.task, table.algorithm, strict=True)]
    return table[pd.Series(keep, index=table.index) & (table.scale == scale) & (table.verdict != "identical")]


def compare_figure(table: pd.DataFrame, points: dict, tolerance: float, scale: str, path: Path) -> str:
    """The gate at a glance for the comparisons on one ``scale`` (normalised or raw), one row
    each: left, both sides' per-seed final scores as dots (a grey line joins the two runs of a
    seed when the comparison is paired); right, the difference with its interval, the tolerance
    band and the minimum detectable drop. Comparisons judged ``identical`` are left out."""
    rows = [r for _, r in figure_rows(table, points, scale).iterrows()]
    setup()
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 0.55 * len(rows) + 1.4), sharey=True, gridspec_kw={"width_ratios": [1.1, 1]}
    )
    color = {"baseline": "#8a8a8a", "store": "#1f77b4"}
    verdict_color = {"regression": "#d62728", "improvement": "#2ca02c", "identical": "#1f77b4"}
    for y, r in enumerate(rows):
        store, base, paired = points[(r.task, r.algorithm)]
        if paired:
            for s, b in zip(store, base, strict=True):
                left.plot([b, s], [y + 0.12, y - 0.12], color="#cccccc", lw=0.8, zorder=1)
        left.scatter(base, np.full(len(base), y + 0.12), s=22, color=color["baseline"], zorder=2,
                     label="baseline" if y == 0 else None)  # fmt: skip
        left.scatter(store, np.full(len(store), y - 0.12), s=22, color=color["store"], zorder=2,
                     label="store" if y == 0 else None)  # fmt: skip
        c = verdict_color.get(r.verdict.split(" ")[0], "#444444")
        lo, hi = (r.diff_lo, r.diff_hi) if np.isfinite([r.diff_lo, r.diff_hi]).all() else (np.nan, np.nan)
        right.plot([lo, hi], [y, y], color=c, lw=2.5, solid_capstyle="butt")
        right.scatter([r.difference], [y], color=c, s=30, zorder=3)
        if r.method != "identical" and np.isfinite(r.mde):
            right.scatter([-r.mde], [y], marker="|", s=160, color="#9467bd", zorder=3,
                          label="could detect ≥ (80% power)" if y == 0 else None)  # fmt: skip
    right.axvspan(-tolerance, tolerance, color="#e8e8e8", zorder=0, label=f"tolerance ±{tolerance:g}")
    right.axvline(0, color="#999999", lw=0.8)
    labels = [short(f"{r.task} / {r.algorithm}", 40) for r in rows]
    left.set_yticks(range(len(rows)), labels)
    left.set_xlabel(f"final {'normalised score' if scale == 'normalised' else 'score'}, per seed")
    right.set_xlabel("store − baseline, with interval")
    left.set_ylim(len(rows) - 0.5, -0.5)
    for ax in (left, right):  # above the panels, never over a row
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, path)
