"""The report's figures (seaborn theme over matplotlib), each written as PNG and SVG (PDF on request).

Every figure takes ``colors``, a ``Palette``: one colour and one marker per algorithm name (and per
method name for frontiers), built once per report so that an algorithm keeps its style in every
figure. The first nine colours are Paul Tol's colour-blind-safe "muted" set, the next ten his
"vibrant" set and one more (drawn dashed), so up to 19 names have a colour of their own; past that
colours repeat with another marker. Names are ordered naturally (``n=4`` before
``n=16``). Bands are computed by ``bench.stats`` with the report's seed, not by seaborn's bootstrap.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import matplotlib.colors

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench import stats  # noqa: E402
from bench.report.tables import fmt as number  # noqa: E402
from bench.report.tables import natural, natural_key, plain  # noqa: E402,F401
from bench.results import curve_grid, method_of  # noqa: E402

DPI = 110
ANCHOR_MARKERS = ["*", "P", "X", "D", "^", "v"]
FORMATS = ("png", "svg", "pdf")
DEFAULT_FORMATS = ("png", "svg")
SVG_LIMIT = 1_500_000  # bytes: the page shows a figure's SVG up to this size, its PNG above it
_formats: tuple[str, ...] = DEFAULT_FORMATS

# Paul Tol's "muted" qualitative scheme (colour-blind safe), and markers that tell repeats apart
TOL_MUTED = [
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
]
# past nine names: Tol's "vibrant" set and three more, so up to 19 names get colours of their own
# (a figure with 10-19 methods has no two in one colour); the second nine are drawn dashed
TOL_VIBRANT = ["#EE7733", "#0077BB", "#EE3377", "#CC3311", "#009988", "#33BBEE", "#BBBBBB", "#000000",
               "#AA3377"]  # fmt: skip
COLOURS = TOL_MUTED + TOL_VIBRANT + ["#77AADD"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*"]


def setup(formats: tuple[str, ...] | list[str] | None = None) -> None:
    """The figures' theme, and the file formats ``_save`` writes (PNG is always written: the
    Markdown summary and any viewer without SVG use it)."""
    global _formats
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.9)
    # names are data: a "$" in one must print as is, never start TeX or mathtext; SVG element ids
    # come from a fixed salt, so the same figure is the same file
    matplotlib.rcParams.update({"text.usetex": False, "text.parse_math": False, "svg.hashsalt": "bench"})
    if formats is not None:
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown:
            raise ValueError(f"unknown figure format {unknown[0]!r} (choose from {', '.join(FORMATS)})")
        _formats = tuple(f for f in FORMATS if f in {"png", *formats})


NAME_LIMIT = 48


def plain_log_ticks(axis) -> None:
    """Log-scale tick labels as plain numbers: matplotlib writes them as math text ($10^{2}$),
    which shows raw here because math text is off (names may contain '$')."""
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(mticker.FuncFormatter(lambda v, _: ""))


def short(name, limit: int = NAME_LIMIT) -> str:
    """A name as a figure label: one line without control characters (``tables.plain``), at
    most ``limit`` characters (longer names are cut with an ellipsis)."""
    text = plain(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Palette(dict):
    """name -> colour, with ``marker(name)`` and ``line(name)`` (solid for the first nine names,
    dashed where a colour repeats): the style of every name in a report."""

    def __init__(self, colors=(), markers=None, lines=None):
        super().__init__(colors)
        self.markers = dict(markers or {})
        self.lines = dict(lines or {})

    def marker(self, name) -> str:
        return self.markers.get(name, "o")

    def line(self, name) -> str:
        return self.lines.get(name, "-")

    def alias(self, name, like) -> None:
        """``name`` drawn in the style of ``like`` (a method's chosen sweep point as its method)."""
        self[name] = self[like]
        self.markers[name], self.lines[name] = self.marker(like), self.line(like)

    def update(self, other=(), **kw):  # merging palettes keeps their markers and line styles
        super().update(other, **kw)
        if isinstance(other, Palette):
            self.markers.update(other.markers)
            self.lines.update(other.lines)


def palette(names: list[str]) -> Palette:
    """A fixed colour and marker per name (in natural order, so the same names always get the same
    styles): colour i mod 19 (``COLOURS``: unique for up to 19 names), marker i mod 12."""
    names = natural(names)
    colors = {n: matplotlib.colors.to_rgb(COLOURS[i % len(COLOURS)]) for i, n in enumerate(names)}
    markers = {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(names)}
    return Palette(colors, markers, {n: "-" if i < len(TOL_MUTED) else "--" for i, n in enumerate(names)})


def _save(fig, path: Path) -> str:
    """Writes ``fig`` in the chosen formats beside ``path`` (its suffix replaced); returns the file
    name a page shows: the SVG when written and not over ``SVG_LIMIT``, else the PNG."""
    shown = path.with_suffix(".png")
    for fmt in _formats:
        target = path.with_suffix("." + fmt)
        metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
        fig.savefig(target, dpi=DPI, bbox_inches="tight", metadata=metadata)
        if fmt == "svg" and target.stat().st_size <= SVG_LIMIT:
            shown = target
    plt.close(fig)
    return shown.name


def _score_label(metric: str, task: str | None = None) -> str:
    from bench.registry import task_domain

    if metric == "eval/return" and task is not None and task_domain(task) == "lm":
        return "gold reward"  # LM tasks record their gold reward as the return
    return {
        "eval/return": "episode return",
        "eval/gold_reward": "gold reward",
        "eval/win_rate": "win rate",
    }.get(metric, metric)


def temperature_label(temperatures) -> str:
    """How the scores of a figure were sampled, from their temperatures: "greedy", "T = 1", or both."""
    temps = sorted({float(t) for t in temperatures if pd.notna(t)})
    if not temps:
        return "greedy"
    names = ["greedy" if t == 0 else f"T = {t:g}" for t in temps]
    return " / ".join(names)


def main_budget(ev: pd.DataFrame) -> float | None:
    """The x-range a task's learning curves share: the longest budget (last evaluated step) among
    the algorithms whose budgets are at most 2.5x the median algorithm's; None when no algorithm runs
    longer than that (nothing to cut)."""
    ends = ev.groupby("algorithm").step.max().astype(float)
    if len(ends) < 2:
        return None
    cut = float(ends[ends <= 2.5 * ends.median()].max())
    return cut if (ends > cut * 1.05).any() else None


def robust_floor(curves: dict[str, np.ndarray], random: float | None = None) -> float | None:
    """A lower y-limit that keeps one algorithm's collapse from flattening the others: the 5th
    percentile of all mean-curve values less a margin, or None when nothing lies far below it.
    With the task's random-policy score ``random``, the limit stays below it too (by 15% of the
    span to the best value), so a curve's start from random is drawn, and only a fall far below
    random is clipped."""
    values = np.concatenate([c[np.isfinite(c)] for c in curves.values()] or [np.array([])])
    if len(values) < 10:
        return None
    lo, top = np.percentile(values, 5), values.max()
    floor = lo - 0.15 * (top - lo)
    if random is not None and top > random:
        floor = min(floor, random - 0.15 * (top - random))
    far = values.min() < lo - 0.5 * (top - lo)
    return float(floor) if far and values.min() < floor else None


def step_ticks(ax) -> None:
    """Step axes in thousands and millions (100k, 1.5M): long tick labels overlap."""

    def fmt(x: float, _pos) -> str:
        if abs(x) >= 1e6:
            return f"{x / 1e6:g}M"
        return f"{x / 1e3:g}k" if abs(x) >= 1e3 else f"{x:g}"

    ax.xaxis.set_major_formatter(mticker.FuncFormatter(fmt))


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
    x_label: str = "env steps",
    protocols: dict | None = None,
    time_axis: str = "wall_time",
    random: float | None = None,
) -> str:
    """Three panels for one task: score against env steps (optimizer updates for LM tasks) and
    against wall time (mean over seeds, 95% bootstrap band), and the final score of every seed per
    algorithm with the published anchors beside them. The step axis ends at the main algorithms'
    budget (``main_budget``; longer runs are marked "continues to N" in the legend), and a curve
    that collapses far below the others is clipped at ``robust_floor`` (marked "clipped"). Runs
    measured under another protocol (``protocols``: label -> protocol, imported runs) are dotted
    lines with their protocol in the legend. ``time_axis``: ``wall_time``, or ``train_time`` (LM
    tasks: the seconds of training, without the π_SFT and reward-model builds a run may wait for);
    ``random``: the task's random-policy score, which the clipping keeps in view."""
    protocols = protocols or {}
    if time_axis not in ev or not np.isfinite(ev[time_axis].to_numpy(float)).any():
        time_axis = "wall_time"
    time_name = "training time" if time_axis == "train_time" else "wall time"
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    label = _score_label(metric, task)
    sampled = temperature_label(ev.temperature) if "temperature" in ev else "greedy"
    order = natural(ev.algorithm.unique())
    cut = main_budget(ev) if len(ev) else None
    for ax, x, xlabel in [(axes[0], "step", x_label), (axes[1], time_axis, f"{time_name} (s)")]:
        means: dict[str, np.ndarray] = {}
        for algo in order:
            g = ev[ev.algorithm == algo]
            g = g[np.isfinite(g[x].to_numpy(float))]  # an export without timing has no wall times
            if g.empty:
                continue
            grid, values = curve_grid(g, x)
            mean, lo, hi = stats.mean_band(values)
            means[algo] = mean if x != "step" or cut is None else mean[grid <= cut * 1.02]
            name = f"{short(algo)} (n={len(values)})"
            if algo in protocols:  # its protocol's first clause, e.g. "training-episode return"
                name += f" — {short(protocols[algo].split(',')[0], 40)}"
            if x == "step" and cut is not None and grid.max() > cut * 1.05:
                name += f", continues to {grid.max():,.0f}"
            ax.plot(grid, mean, color=colors[algo], label=name, lw=1.8, marker=colors.marker(algo),
                    ls=":" if algo in protocols else colors.line(algo), markevery=max(1, len(grid) // 6),
                    ms=5)  # fmt: skip
            ax.fill_between(grid, lo, hi, color=colors[algo], alpha=0.2, lw=0)
            end = np.flatnonzero(np.isfinite(mean))
            if len(end):  # each curve's last point marked: a run evaluated once is a point, not nothing
                ax.plot(
                    grid[end[-1]],
                    mean[end[-1]],
                    marker=colors.marker(algo),
                    ms=6,
                    color=colors[algo],
                    ls="none",
                )
        if threshold is not None:
            ax.axhline(threshold, color="0.4", ls="--", lw=1, label=f"threshold {threshold:g}")
        floor = robust_floor(means, random)
        if floor is not None:
            ax.set_ylim(bottom=floor)
            low = [a for a, m in means.items() if np.nanmin(m) < floor]
            ax.text(0.01, 0.01, "clipped below: " + ", ".join(short(a, 24) for a in low)
                    + f" (min {min(np.nanmin(means[a]) for a in low):,.0f})", transform=ax.transAxes,
                    fontsize=7, color="0.3", va="bottom")  # fmt: skip
        if x == "step" and cut is not None:
            ax.set_xlim(0, cut * 1.02)
        if x == "step":
            step_ticks(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{label} ({sampled}, mean and 95% t CI)")
    x_end = cut if cut is not None else (float(ev.step.max()) if len(ev) else None)
    for i, (_, a) in enumerate(anchors.iterrows()):
        name = f"{short(a.source, 24)}: {short(a.algorithm, 24)} at {a.budget:,.0f} steps"
        beyond = x_end is not None and a.budget > 1.05 * x_end
        axes[0].plot(
            np.nan if beyond else a.budget,  # beyond the runs' budgets: in the final-score panel only
            a.score,
            marker=ANCHOR_MARKERS[i % len(ANCHOR_MARKERS)],
            ms=11,
            ls="none",
            color="black",
            label=name + (" (off this axis)" if beyond else ""),
        )
    axes[0].set_title(f"{short(task)}: learning curves")
    timed = np.isfinite(ev[time_axis].to_numpy(float)).any()
    axes[1].set_title(f"{short(task)}: against {time_name}" + ("" if timed else " (not recorded)"))
    # final scores: one dot per seed (jittered by the report's seed, so the same report draws
    # the same figure), the mean as a bar, anchors as black markers with ± std
    order = natural(finals.algorithm.unique())
    ax = axes[2]
    if len(finals):
        rng = np.random.default_rng(seed)
        for j, algo in enumerate(order):
            s = finals.score[finals.algorithm == algo].to_numpy(float)
            y = j + (rng.uniform(-0.25, 0.25, len(s)) if len(s) > 1 else np.zeros(len(s)))
            ax.scatter(s, y, s=18, color=colors[algo], alpha=0.7, lw=0, marker=colors.marker(algo))
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
    ax.set_xlabel(f"final {label} ({sampled})")
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
    for algo in natural(matrices):
        point, lo, hi = stats.performance_profile_band(matrices[algo], taus, reps, seed=seed)
        ax.plot(taus, point, color=colors[algo], label=short(algo), lw=1.8, marker=colors.marker(algo),
                ls=colors.line(algo), markevery=10, ms=4)  # fmt: skip
        ax.fill_between(taus, lo, hi, color=colors[algo], alpha=0.2, lw=0)
    ax.set_xlabel("normalised score τ (0 = random policy, 1 = solved)")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title("Performance profiles (all tasks pooled)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="algorithm", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def frontier_figure(
    aligned: pd.DataFrame,
    task: str,
    metric: str,
    colors: dict,
    path: Path,
    fallen: pd.DataFrame | None = None,
) -> str:
    """(KL to reference, score) per method (a run label without its sweep suffix), from
    ``results.aligned_points``: small dots are seed means of one configuration at one checkpoint
    (hollow where the KL is only an upper bound), large edged markers each configuration's final
    point, and the line the method's Pareto front through those seed means, with the 95% t interval
    of each front point's score. ``fallen`` (``results.fallen_methods``) names the methods whose
    final point lies well below their front, in a note under the axes."""
    aligned = aligned.assign(method=aligned.algorithm.map(method_of))
    bound = aligned.kl_is_bound.astype(bool)
    fig, ax = plt.subplots(figsize=(11, 6.4))
    for method in natural(aligned.method.unique()):
        g = aligned[aligned.method == method]
        c, m = colors[method], colors.marker(method)
        measured, bounds = g[~bound[g.index]], g[bound[g.index]]
        ax.scatter(measured.kl, measured.score, s=14, color=c, alpha=0.45, lw=0, zorder=1)
        # a KL that is only an upper bound: hollow marker (the true point lies at or left of it)
        ax.scatter(bounds.kl, bounds.score, s=24, facecolors="none", edgecolors=c, lw=0.9, alpha=0.8)
        finals = g[g.final]
        ax.scatter(finals.kl, finals.score, s=60, color=c, marker=m, edgecolors="black", lw=0.8, zorder=4)
        front = g.iloc[stats.pareto_front(g.kl.to_numpy(), g.score.to_numpy())].sort_values("kl")
        note = ", KL: upper bound" if len(bounds) else ""
        k = g.algorithm.nunique()
        label = f"{short(method)} ({k} config{'s' if k != 1 else ''}, {len(g)} seed-mean points{note})"
        ax.plot(front.kl, front.score, color=c, lw=2.0, drawstyle="steps-post", zorder=3,
                ls=colors.line(method), label=label)  # fmt: skip
        err = np.vstack([front.score - front.lo, front.hi - front.score])
        if np.isfinite(err).any():
            ax.errorbar(front.kl, front.score, yerr=np.nan_to_num(err), fmt="none", ecolor=c, elinewidth=1.0,
                        capsize=2.5, zorder=3, alpha=0.9)  # fmt: skip
    symlog = (aligned.kl > 0).any() and aligned.kl.max() / max(aligned.kl[aligned.kl > 0].min(), 1e-9) > 100
    if symlog:
        ax.set_xscale("symlog", linthresh=0.1)
        plain_log_ticks(ax.xaxis)
    keep = aligned.score[aligned.final]  # final points (and most checkpoint means) set the y-range
    if len(keep):
        low = min(keep.min(), aligned.score.quantile(0.05))
        top = aligned.score.max()
        floor = low - 0.08 * max(top - low, 1e-9)
        if aligned.score.min() < floor:
            ax.set_ylim(bottom=floor)
            text = f"checkpoint means below {floor:,.3g} not shown (lowest {aligned.score.min():,.3g})"
            ax.text(0.01, 0.01, text, transform=ax.transAxes, fontsize=7, color="0.3", va="bottom")
    scale = " (symlog scale: linear below 0.1)" if symlog else ""
    ax.set_xlabel(f"sequence-level KL(π ‖ π_ref) (nats){scale}")
    ax.set_ylabel(f"{_score_label(metric, task)} at T = 1, mean over seeds")
    ax.set_title(f"{short(task)}: reward vs KL (line: Pareto front of seed means, bars: 95% t CI; "
                 "edged: final points)", fontsize=10)  # fmt: skip
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="method", fontsize=8)
    if fallen is not None and len(fallen):
        names = "; ".join(
            f"{short(r.algorithm)} ends at {number(r.score, 3)} (KL {number(r.kl, 3)}), its front reaches "
            f"{number(r.front_score, 3)}"
            for r in fallen.itertuples()
        )
        fig.text(0.01, 0.005, f"Final point well below the front: {names}", fontsize=7.5, color="#b2182b",
                 va="bottom", wrap=True)  # fmt: skip
        fig.tight_layout(rect=(0, 0.05, 1, 1))
    else:
        fig.tight_layout()
    return _save(fig, path)


def _method_panels(table: pd.DataFrame, colors: dict, height: float, legend_loc: str, draw):
    """A figure with one panel per method (run label stem) of ``table``: ``draw(axis, rows of one
    sweep point, shade, short label)`` draws each sweep point in its own shade of the method's
    colour. Returns the figure; the caller adds its labels."""
    table = table.assign(method=table.algorithm.map(method_of))
    methods = natural(table.method.unique())
    cols = min(4, len(methods))
    rows = -(-len(methods) // cols)
    # the extra inch holds the figure's title and axis labels above and beside one row of panels
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, height * rows + 1.0), sharex=True, sharey=True,
                             squeeze=False)  # fmt: skip
    for ax, method in zip(axes.flat, methods, strict=False):
        g = table[table.method == method]
        labels = natural(g.algorithm.unique())
        shades = sns.light_palette(colors[method], n_colors=len(labels) + 2)[2:]
        for label, shade in zip(labels, shades, strict=True):
            draw(ax, g[g.algorithm == label], shade, short(label[len(method) :].strip("[]") or method))
        ax.set_title(short(method), fontsize=10)
        ax.legend(fontsize=6, loc=legend_loc)
    for ax in axes.flat[len(methods) :]:
        ax.axis("off")
    return fig


def temperature_figure(
    table: pd.DataFrame, task: str, metric: str, colors: dict, path: Path, best: dict | None = None
) -> str:
    """Final score against sampling temperature with every method in one panel (the DPO paper's
    figure): per method the sweep point ``best`` names (``results.best_points``; a method's only
    label otherwise), mean over seeds with 95% CI."""
    table = table.assign(method=table.algorithm.map(method_of))
    fig, ax = plt.subplots(figsize=(11, 6))
    for method in natural(table.method.unique()):
        label = (best or {}).get(method)
        h = table[table.algorithm == label] if label else table[table.method == method]
        if h.algorithm.nunique() != 1:  # no best point named: the method's first label
            h = h[h.algorithm == natural(h.algorithm.unique())[0]]
        h, note = _without_greedy_repeats(h.sort_values("temperature"))
        c = colors[method]
        ax.plot(h.temperature, h["mean"], color=c, marker=colors.marker(method), ms=6, lw=1.8,
                ls=colors.line(method), label=short(h.algorithm.iloc[0]) + note)  # fmt: skip
        ax.fill_between(h.temperature, h.lo, h.hi, color=c, alpha=0.07, lw=0)
    ax.set_xlabel("sampling temperature T (0 = greedy)")
    ax.set_ylabel(f"final {_score_label(metric, task)} (mean over seeds, 95% t CI)")
    ax.set_title(f"{short(task)}: score vs sampling temperature (one sweep point per method)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="method (sweep point)", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def temperature_sweep_figure(table: pd.DataFrame, task: str, metric: str, colors: dict, path: Path) -> str:
    """Final score against sampling temperature, mean over runs with 95% CI: one panel per
    method (run label stem), one line per sweep point of the method."""

    def draw(ax, h, shade, name):
        h, note = _without_greedy_repeats(h.sort_values("temperature"))
        ax.plot(h.temperature, h["mean"], color=shade, marker="o", ms=3, lw=1.5, label=name + note)
        ax.fill_between(h.temperature, h.lo, h.hi, color=shade, alpha=0.15, lw=0)

    fig = _method_panels(table, colors, 2.9, "lower left", draw)
    fig.supxlabel("sampling temperature T (0 = greedy)")
    fig.supylabel(f"final {_score_label(metric, task)} (mean, 95% t CI)")
    fig.suptitle(f"{short(task)}: robustness to sampling temperature, every sweep point")
    fig.tight_layout()
    return _save(fig, path)


def _without_greedy_repeats(h: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Best-of-N at T = 0 decodes greedily N times: N copies of one sample, not a Best-of-N. Its
    T = 0 rows are left out of temperature figures; returns the rows and a legend note."""
    if len(h) and method_of(h.algorithm.iloc[0]).startswith("best-of-n") and (h.temperature == 0).any():
        return h[h.temperature != 0], " (T = 0 left out: greedy)"
    return h, ""


def win_rate_figure(
    table: pd.DataFrame, task: str, colors: dict, path: Path, best: dict | None = None
) -> str:
    """Win rate against the reference completions vs sampling temperature (the DPO paper's
    temperature-robustness figure, Fig. 2 right): per method, the sweep point ``best`` names (else
    its best mean win rate over temperatures), mean with its 95% interval as error bars, methods
    dodged a little along T so that the bars stay apart; the dashed line is a tie with the
    references. Best-of-N's T = 0 (greedy) is left out."""
    table = table.assign(method=table.algorithm.map(method_of))
    top = table.groupby(["method", "algorithm"])["mean"].mean().reset_index()
    top = top.loc[top.groupby("method")["mean"].idxmax()].set_index("method").algorithm.to_dict()
    top.update({m: a for m, a in (best or {}).items() if m in top and a in set(table.algorithm)})
    fig, ax = plt.subplots(figsize=(11, 6))
    methods = natural(top)
    temps = np.sort(table.temperature.unique())
    step = float(np.diff(temps).min()) if len(temps) > 1 else 1.0
    for k, method in enumerate(methods):
        h, note = _without_greedy_repeats(table[table.algorithm == top[method]].sort_values("temperature"))
        c = colors[method]
        x = h.temperature + (k - (len(methods) - 1) / 2) * 0.5 * step / max(len(methods), 1)
        ax.plot(x, h["mean"], color=c, marker=colors.marker(method), ms=5, lw=1.6,
                ls=colors.line(method), label=short(top[method]) + note)  # fmt: skip
        err = np.vstack([h["mean"] - h.lo, h.hi - h["mean"]])
        ax.errorbar(x, h["mean"], yerr=np.nan_to_num(err), fmt="none", ecolor=c, elinewidth=1.1, capsize=2.5)
    ax.axhline(0.5, color="0.4", ls="--", lw=1)
    ax.set_xticks(temps)
    ax.set_xlabel("sampling temperature T (0 = greedy; methods dodged slightly apart)")
    kinds = (
        sorted({str(c).split(",")[0] for c in table.ci if "no interval" not in str(c)})
        if "ci" in table
        else []
    )
    ci = f"; 95% {'/'.join(kinds)} CI" if kinds else "; one seed: no intervals"
    ax.set_ylabel(f"win rate vs reference (wins + ½ ties{ci})")
    ax.set_title(f"{short(task)}: win rate against the reference vs temperature (one sweep point per method)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="method")
    fig.tight_layout()
    return _save(fig, path)


def kl_curve_figure(
    curves: pd.DataFrame, task: str, colors: dict, path: Path, x_label: str = "env steps"
) -> str:
    """KL(π ‖ π_ref) at T = 1 over training, mean over seeds at each checkpoint (seeds matched by
    checkpoint ordinal, at their median step; only checkpoints every seed reached): one panel per
    method, one line per sweep point. ``x_label``: what the steps count (env steps on control,
    optimizer updates on LM tasks)."""

    def draw(ax, h, shade, name):
        seeds = h.seed.nunique()
        h = h.groupby("checkpoint").agg(step=("step", "median"), mean=("kl", "mean"), min=("kl", "min"),
                                        max=("kl", "max"), seeds=("seed", "nunique"))  # fmt: skip
        h = h[h.seeds == seeds]
        ax.plot(h.step, h["mean"], color=shade, lw=1.6, marker="o", ms=2.5, label=name)
        ax.fill_between(h.step, h["min"], h["max"], color=shade, alpha=0.15, lw=0)

    fig = _method_panels(curves, colors, 2.8, "upper left", draw)
    fig.supxlabel(x_label)
    fig.supylabel("KL(π ‖ π_ref) at T = 1, nats\n(mean; band: seed range)")
    fig.suptitle(f"{short(task)}: KL to the reference over training")
    fig.tight_layout()
    return _save(fig, path)


def data_efficiency_figure(table: pd.DataFrame, task: str, metric: str, colors: dict, path: Path) -> str:
    """Final T = 1 score against the number of training preference pairs, per method."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in natural(table.method.unique()):
        g = table[table.method == method].sort_values("n_pairs")
        ax.plot(g.n_pairs, g["mean"], color=colors[method], marker="o", lw=1.8, label=short(method))
        ax.fill_between(g.n_pairs, g.lo, g.hi, color=colors[method], alpha=0.2, lw=0)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    # a tick at every pair count: a sweep within one decade (100-800) has no decade ticks but 100
    ax.set_xticks(sorted(table.n_pairs.unique()))
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    ax.set_xlabel("training preference pairs")
    ax.set_ylabel(f"final {_score_label(metric, task)} at T = 1")
    ax.set_title(f"{short(task)}: data efficiency")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="method")
    fig.tight_layout()
    return _save(fig, path)


def scaling_figure(table: pd.DataFrame, task: str, colors: dict, path: Path) -> str:
    """Env-steps/s against workers (dashed: linear scaling from W = 1; bars: seed range), the
    efficiency against linear, and the wall time to the task's threshold (median over seeds; a
    method that never reaches it at some W is drawn as an open marker at the top, "never")."""
    fig, (ax, ax_eff, ax_ttt) = plt.subplots(1, 3, figsize=(16, 4.2))
    finite = table.wall_to_threshold_s[np.isfinite(table.wall_to_threshold_s.astype(float))]
    top = float(finite.max()) * 1.15 if len(finite) else 1.0
    for method in natural(table.method.unique()):
        g = table[table.method == method].sort_values("workers")
        c = colors.get(method, colors.get(method_of(method)))
        err = [g.env_steps_per_s - g.sps_min, g.sps_max - g.env_steps_per_s]
        ax.errorbar(g.workers, g.env_steps_per_s, yerr=err, color=c, marker="o", lw=2, capsize=3,
                    label=short(method))  # fmt: skip
        one = g[g.workers == 1].env_steps_per_s
        if len(one):
            ax.plot(g.workers, one.iloc[0] * g.workers, color=c, ls="--", lw=1, alpha=0.7)
            ax_eff.plot(g.workers, g.efficiency, color=c, marker="o", lw=2, label=short(method))
        ttt = g.wall_to_threshold_s.astype(float)
        if ttt.notna().any():
            reached = np.isfinite(ttt)
            ax_ttt.plot(g.workers[reached], ttt[reached], color=c, marker="o", lw=2, label=short(method))
            never = ~reached & ttt.notna()
            ax_ttt.scatter(g.workers[never], np.full(int(never.sum()), top), facecolors="none", edgecolors=c,
                           s=50, lw=1.5)  # fmt: skip
    ax_eff.axhline(1.0, color="0.4", ls="--", lw=1)
    for a in (ax, ax_eff, ax_ttt):
        a.set_xlabel("workers (W)")
        a.set_xticks(sorted(table.workers.unique()))
    ax.set_ylabel("env steps / s (training)")
    ax.set_title(f"{short(task)}: throughput (dashed: linear)")
    ax_eff.set_ylabel("efficiency: speed-up / W")
    ax_eff.set_ylim(0, max(1.1, float(table.efficiency.max()) * 1.1))
    ax_eff.set_title("efficiency against linear scaling")
    ax_ttt.set_ylabel("wall time to threshold (s, median over seeds)")
    ax_ttt.set_ylim(0, top * 1.08)
    ax_ttt.set_title("learning: time to threshold (open marker at top: never)")
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


def overoptimization_figure(
    pts: pd.DataFrame, fits: pd.DataFrame, task: str, colors: dict, path: Path
) -> str:
    """Gold (left) and proxy (right) reward against d = √KL(π ‖ π_init), one line per series (a
    run label over its checkpoints, or Best-of-N over N): means over seeds at each point (seeds
    matched by ordinal), band the seed range; dotted on the left, the fitted form through the seed
    means of α and β (``bench.overopt``)."""
    from bench import overopt

    has_proxy = pts.proxy.notna().any()
    fig, axes = plt.subplots(1, 2 if has_proxy else 1, figsize=(11, 4.3) if has_proxy else (6.5, 4.3))
    left, right = (axes[0], axes[1]) if has_proxy else (axes, None)
    shades = palette(list(natural(pts.series.unique())))
    for series in natural(pts.series.unique()):
        g = pts[pts.series == series].copy()
        key = "n" if g.form.iloc[0] == "bon" else "step"
        g["ordinal"] = g.groupby("seed")[key].rank(method="first")
        seeds = g.seed.nunique()
        m = g.groupby("ordinal").agg(d=("d", "mean"), gold=("gold", "mean"), lo=("gold", "min"),
                                     hi=("gold", "max"), proxy=("proxy", "mean"),
                                     seeds=("seed", "nunique"))  # fmt: skip
        m = m[m.seeds == seeds]
        color = shades[series]
        left.plot(m.d, m.gold, color=color, marker="o", ms=3, lw=1.6, label=short(series))
        left.fill_between(m.d, m.lo, m.hi, color=color, alpha=0.12, lw=0)
        fit = fits[(fits.series == series) & (fits.kl == "estimate")]
        if len(fit) and np.isfinite(fit.alpha.iloc[0]):
            form = "bon" if g.form.iloc[0] == "bon" else "rl"
            x = np.linspace(0, max(m.d.max(), 1e-6) * 1.05, 100)
            left.plot(
                x, overopt.predict(x, fit.alpha.iloc[0], fit.beta.iloc[0], form), color=color, ls=":", lw=1.2
            )
        if has_proxy and m.proxy.notna().any():
            right.plot(m.d, m.proxy, color=color, marker="o", ms=3, lw=1.6, label=short(series))
    left.axhline(0, color="0.6", lw=0.8)
    left.set_xlabel("d = √KL(π ‖ π_init)")
    left.set_ylabel("gold reward gain over π_init at T = 1\n(mean over seeds; band: seed range; dotted: fit)")
    left.set_title("gold" if has_proxy else "gold (these runs recorded no proxy)")
    if has_proxy:
        right.set_xlabel("d = √KL(π ‖ π_init)")
        right.set_ylabel("proxy (learned) reward at T = 1\n(mean over seeds)")
        right.set_title("proxy")
    handles, labels = left.get_legend_handles_labels()
    rows = -(-len(labels) // 4)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(f"{short(task)}: reward-model over-optimisation")
    fig.tight_layout(rect=(0, 0.04 + 0.04 * rows, 1, 1))
    return _save(fig, path)
