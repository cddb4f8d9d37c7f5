"""How each kind of claim is decided on one task (the rules are ``bench.results.CLAIM_RULES`` and,
for ``difference``, its docstring). Every kind compares per-seed values with t intervals (paired
where both sides ran the same seeds, Welch's otherwise; none with one seed on a side) and takes a
method's sweep point leaving the seed out (``results.crossfit_choice``), so no seed both chooses
and reports.

A kind is ``fn(data: TaskData, claim) -> Decision | None`` (None: the task lacks what it reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import results as R
from bench import stats


@dataclass
class Decision:
    verdict: str  # holds | does not hold | inconclusive[: why]
    measured: str  # what was measured, with intervals and their kinds
    # the (difference, rule it met) pairs a decisive verdict rests on (for its replication chance)
    candidates: list[tuple[stats.Interval, str]]


@dataclass
class TaskData:
    """One task's final points and what the kinds read from them."""

    results: R.Results
    task: str
    points: pd.DataFrame  # R.final_points of this task
    confidence: float

    def __post_init__(self) -> None:
        self.methods = set(self.points.method)
        keys = set(self.results.runs.run_key[self.results.runs.task == self.task])
        ev = self.results.evals
        self.has_refs = bool(((ev.metric == R.WIN_METRIC) & ev.run_key.isin(keys)).any())
        self.scores = R._seed_table(self.points)

    @property
    def quantity(self) -> str:
        return "win rate" if self.has_refs else "score"

    def labels(self, method: str) -> list[str]:
        return sorted(self.points.algorithm[self.points.method == method].unique())

    def choice(self, method: str) -> dict:
        """seed -> the method's sweep point chosen on the other seeds (highest final score)."""
        return R.crossfit_choice(self.scores.loc[self.labels(method)])

    def chosen_scores(self, method: str) -> pd.Series:
        return R._crossfit_values(self.choice(method), self.scores)


def display(method: str) -> str:
    """A method as claims print it (``dpo`` -> DPO, ``rlhf-ppo`` -> RLHF-PPO, Best-of-N)."""
    return {"best-of-n": "Best-of-N"}.get(method, method.upper())


def frontier_dominance(data: TaskData, claim) -> Decision | None:
    """a's reward-vs-KL frontier dominates b's: at every b point, a's best point with KL in
    [k / kl_window, k] scores significantly higher (``CLAIM_RULES``)."""
    pts = data.points
    window = float(claim.params.get("kl_window", R.KL_WINDOW))
    verdict, text, decided = R._dominance(
        pts[pts.method == claim.a], pts[pts.method == claim.b], display(claim.a), display(claim.b),
        data.confidence, window,
    )  # fmt: skip
    if verdict == "holds":  # every point significantly higher: each must be again
        candidates = [(d, "above 0") for d in decided]
    else:  # one point significantly lower suffices: the clearest one
        lower = [d for d in decided if d.has_interval and d.hi < 0]
        candidates = [(min(lower, key=R._t_of), "below 0")] if lower else []
    return Decision(verdict, text, candidates)


def flatter_over_temperature(data: TaskData, claim) -> Decision | None:
    """a's win rate (score where the task has no references) moves less over the final temperature
    sweep than b's: per seed the range (highest minus lowest) at the chosen point; holds when a's
    mean range is significantly smaller, does not hold when significantly larger."""
    metric = R.WIN_METRIC if data.has_refs else data.results.score_metric(data.task)
    ranges, temps, choices = {}, [], {}
    for m in (claim.a, claim.b):
        tables = {lab: R._temperature_values(data.results, lab, metric) for lab in data.labels(m)}
        if any(t.shape[1] < 3 for t in tables.values()):
            return None
        temps = temps or list(next(iter(tables.values())).columns)
        per_seed = pd.DataFrame({lab: t.max(axis=1) - t.min(axis=1) for lab, t in tables.items()}).T
        choices[m] = data.choice(m)
        ranges[m] = R._crossfit_values(choices[m], per_seed).dropna()
    d = R._difference(ranges[claim.a], ranges[claim.b], data.confidence)
    verdict = "inconclusive"
    if d.has_interval and (d.hi < 0 or d.lo > 0):
        verdict = "holds" if d.hi < 0 else "does not hold"
    text = (
        f"range over T = {', '.join(f'{t:g}' for t in temps)} of each seed's {data.quantity}, mean over "
        f"seeds: {R._choice_text(choices[claim.a])} {ranges[claim.a].mean():.3f}, "
        f"{R._choice_text(choices[claim.b])} {ranges[claim.b].mean():.3f}; difference {d.text(signed=True)}"
    )
    return Decision(verdict, text, [(d, "below 0" if d.hi < 0 else "above 0")])


def strong_baseline(data: TaskData, claim) -> Decision | None:
    """a (a baseline such as Best-of-N) is strong: its chosen point is not significantly below b's and
    significantly above ``baseline``'s (π_SFT); does not hold otherwise — unless a's best point is
    the largest N its grid ran and that N is below the paper's (``params.paper_max_n``):
    inconclusive, the grid stops there."""
    choice = {m: data.choice(m) for m in (claim.a, claim.b)}
    a_vals, b_vals = data.chosen_scores(claim.a), data.chosen_scores(claim.b)
    d = R._difference(a_vals, b_vals, data.confidence)
    text = (f"{R._choice_text(choice[claim.a])} minus {R._choice_text(choice[claim.b])} (points chosen "
            f"leaving the seed out): score {d.text(signed=True)}")  # fmt: skip
    above, sd = None, None
    if claim.baseline and claim.baseline in data.methods:
        pts = data.points
        base = pts[pts.method == claim.baseline].set_index("seed").score.astype(float)
        sd = R._difference(a_vals, base, data.confidence)
        above = sd.has_interval and sd.lo > 0
        name = "π_SFT" if claim.baseline == "sft" else claim.baseline
        text += f"; minus {name}: {sd.text(signed=True)}"
    verdict = "holds" if d.has_interval and d.hi >= 0 and above else "does not hold"
    if not d.has_interval or above is None or (not above and not sd.has_interval):
        verdict = "inconclusive"
    if verdict == "holds":
        candidates = [(d, "not below 0"), (sd, "above 0")]
    else:
        candidates = [(d, "below 0")] if d.has_interval and d.hi < 0 else [(sd, "not above 0")]
    paper_n = claim.params.get("paper_max_n")
    ns = [n for n in map(R._n_of, data.labels(claim.a)) if n is not None]
    chosen = [R._n_of(v) for v in choice[claim.a].values()]
    if verdict == "does not hold" and paper_n and ns and max(ns) < paper_n and max(ns) in chosen:
        verdict = (f"inconclusive: the grid stops at N = {max(ns):g}, {display(claim.a)}'s best there "
                   f"(the paper goes to {paper_n})")  # fmt: skip
    return Decision(verdict, text, candidates)


def difference(data: TaskData, claim) -> Decision | None:
    """a scores higher (``params.direction: higher``, the default) or lower than b: final score at
    T = 1 of each method's chosen point (leaving the seed out); holds when the difference a − b is
    significantly on the stated side of 0, does not hold when significantly on the other side,
    else inconclusive. ``params.margin`` (default 0): the difference must clear it (higher: lo >
    margin; lower: hi < −margin)."""
    direction = claim.params.get("direction", "higher")
    if direction not in ("higher", "lower"):
        raise ValueError(f"claim {claim.id}: params.direction is 'higher' or 'lower', not {direction!r}")
    margin = float(claim.params.get("margin", 0.0))
    choice = {m: data.choice(m) for m in (claim.a, claim.b)}
    d = R._difference(data.chosen_scores(claim.a), data.chosen_scores(claim.b), data.confidence)
    text = (f"{R._choice_text(choice[claim.a])} minus {R._choice_text(choice[claim.b])} (points chosen "
            f"leaving the seed out): score {d.text(signed=True)}")  # fmt: skip
    if margin:
        text += f" (margin {margin:g})"
    higher, lower = d.has_interval and d.lo > margin, d.has_interval and d.hi < -margin
    stated, other = (higher, lower) if direction == "higher" else (lower, higher)
    rule_stated = "above 0" if direction == "higher" else "below 0"
    if stated:
        return Decision("holds", text, [(d, rule_stated)])
    if other:
        return Decision("does not hold", text, [(d, "below 0" if direction == "higher" else "above 0")])
    return Decision("inconclusive", text, [])


SIDES = ("both", "not-lower")


def equivalence(data: TaskData, claim) -> Decision | None:
    """a and b score the same within ±m (``params.side: both``, the default), or a is not worse than
    b by more than m (``not-lower``). m = ``params.margin`` (default 0.1) × the task's scale (its
    random-to-solved range where declared, else the spread of the task's method means:
    ``results.task_scale``). Two one-sided tests at 1 − confidence each: the (2·confidence − 1)
    interval of a − b (final scores of the points chosen leaving the seed out). both: holds when
    the interval lies inside ±m, does not hold when it lies entirely beyond one of them; not-lower:
    holds when its lower bound is above −m, does not hold when its upper bound is below −m; else
    inconclusive (an interval too wide to tell: more seeds)."""
    side = claim.params.get("side", "both")
    if side not in SIDES:
        raise ValueError(f"claim {claim.id}: params.side is one of {', '.join(SIDES)}, not {side!r}")
    fraction = float(claim.params.get("margin", 0.1))
    if not fraction > 0:
        raise ValueError(f"claim {claim.id}: params.margin must be above 0 (a fraction of the task's scale)")
    m = fraction * R.task_scale(data.task, data.scores.mean(axis=1))
    choice = {k: data.choice(k) for k in (claim.a, claim.b)}
    level = 2 * data.confidence - 1
    d = R._difference(data.chosen_scores(claim.a), data.chosen_scores(claim.b), level)
    text = (f"{R._choice_text(choice[claim.a])} minus {R._choice_text(choice[claim.b])} (points chosen "
            f"leaving the seed out): score {d.text(signed=True)} at {level:.0%} (two one-sided tests), "
            f"margin ±{m:.4g} ({fraction:g} of the task's scale)")  # fmt: skip
    if not d.has_interval:
        return Decision("inconclusive", text, [])
    above_low, below_high = (_shifted(d, -m), "above 0"), (_shifted(d, m), "below 0")
    if side == "not-lower":
        if d.lo > -m:
            return Decision("holds", text, [above_low])
        if d.hi < -m:
            return Decision("does not hold", text, [(_shifted(d, -m), "below 0")])
        return Decision("inconclusive", text, [])
    if d.lo > -m and d.hi < m:
        return Decision("holds", text, [above_low, below_high])
    if d.lo > m:
        return Decision("does not hold", text, [(_shifted(d, m), "above 0")])
    if d.hi < -m:
        return Decision("does not hold", text, [(_shifted(d, -m), "below 0")])
    return Decision("inconclusive", text, [])


# -- over-optimisation (Gao, Schulman & Hilton 2023; ``bench.overopt``) ---------------------------


def _shifted(iv: stats.Interval, by: float) -> stats.Interval:
    return stats.Interval(iv.point - by, iv.lo - by, iv.hi - by, iv.kind, iv.n, iv.confidence, iv.se, iv.df)


def _overopt_points(data: TaskData, method: str) -> pd.DataFrame:
    from bench import overopt

    if not hasattr(data, "_overopt"):
        data._overopt = overopt.points(data.results)
    pts = data._overopt
    return pts[(pts.task == data.task) & (pts.method == method)]


def law_fit(data: TaskData, claim) -> Decision | None:
    """a's gold follows its functional form (``params.form``: bon, d (α − β d); rl, d (α − β ln d);
    default by method: Best-of-N bon, others rl) with held-out R² ≥ ``params.r2`` (0.9): fitted per
    seed on the points with d at or below the median, scored on the rest; per series (one
    reward-model data size) the mean over seeds with its t interval. Holds when every series' interval
    lies at or above r2, does not hold when one lies below it, else inconclusive. ``params.kl``:
    estimate (default) or bound (Best-of-N's log N − (N − 1)/N)."""
    from bench import overopt

    pts = _overopt_points(data, claim.a)
    if pts.empty:
        return None
    form = claim.params.get("form", "bon" if claim.a == "best-of-n" else "rl")
    if form not in overopt.FORMS:
        raise ValueError(f"claim {claim.id}: params.form is one of {', '.join(overopt.FORMS)}, not {form!r}")
    thr, kl = float(claim.params.get("r2", 0.9)), claim.params.get("kl", "estimate")
    fits = overopt.seed_fits(pts.assign(form=form))
    fits = fits[fits.kl == kl]
    parts, above, below, candidates = [], 0, 0, []
    for series, g in fits.groupby("series", sort=True):
        values = g.r2_heldout.dropna().to_numpy(float)
        if len(values) == 0:
            parts.append(f"{series}: too few points for a held-out R² ({int(g.points.max())} per seed; it "
                         f"needs {overopt.MIN_FIT_POINTS} with d > 0 at or below the median d and "
                         f"{overopt.MIN_HELDOUT_POINTS} above)")  # fmt: skip
            continue
        iv = stats.mean_interval(values, data.confidence)
        ok, bad = iv.has_interval and iv.lo >= thr, iv.has_interval and iv.hi < thr
        above, below = above + ok, below + bad
        candidates.append((_shifted(iv, thr), "above 0" if ok else "below 0"))
        a, b = g.alpha.mean(), g.beta.mean()
        parts.append(f"{series}: held-out R² {iv.text()}, α {a:.3g}, β {b:.3g} (means over seeds)")
    n = len(candidates)
    if not n:
        return Decision("inconclusive: the grid has too few points for a held-out fit", "; ".join(parts), [])
    verdict = "holds" if above == n else "does not hold" if below else "inconclusive"
    text = f"gold = {overopt.FORMS[form]} (KL {kl}), held-out R² against {thr:g}: " + "; ".join(parts)
    keep = [c for c in candidates if c[1] == ("above 0" if verdict == "holds" else "below 0")]
    if verdict == "does not hold":
        keep = [min(keep, key=lambda c: c[0].hi)]
    return Decision(verdict, text, keep if verdict != "inconclusive" else [])


def kl_efficiency(data: TaskData, claim) -> Decision | None:
    """a (Best-of-N) gains more gold than b (RL) at the same d = √KL: per seed, at each b point whose
    d lies within a's range on that seed (and a's series of the same reward-model data size, where
    sizes are given), a's gold interpolated linearly in d minus b's gold; the mean of those per seed;
    paired t over seeds. Holds when significantly above 0, does not hold when significantly below."""
    pa, pb = _overopt_points(data, claim.a), _overopt_points(data, claim.b)
    if pa.empty or pb.empty:
        return None
    per_seed: dict = {}
    for seed in sorted(set(pa.seed) & set(pb.seed)):
        diffs = []
        b_seed = pb[pb.seed == seed].assign(size=pb.rm_pairs.fillna(-1))
        for (_, size), gb in b_seed.groupby(["series", "size"]):
            ga = pa[(pa.seed == seed) & (pa.rm_pairs.fillna(-1) == size)]
            ga = ga if len(ga) else pa[pa.seed == seed]
            for _, gs in ga.groupby("series"):
                gs = gs.sort_values("d")
                inside = gb[(gb.d >= gs.d.min()) & (gb.d <= gs.d.max())]
                diffs += list(np.interp(inside.d, gs.d, gs.gold) - inside.gold)
        if diffs:
            per_seed[seed] = float(np.mean(diffs))
    if not per_seed:
        return Decision("inconclusive: the d ranges do not overlap", f"no {display(claim.b)} point within "
                        f"{display(claim.a)}'s range of √KL", [])  # fmt: skip
    s = pd.Series(per_seed)
    d = stats.mean_interval(s.to_numpy(float), data.confidence)
    d = stats.Interval(
        d.point, d.lo, d.hi, "paired t" if d.has_interval else d.kind, d.n, d.confidence, d.se, d.df
    )
    text = (f"{display(claim.a)} minus {display(claim.b)} gold at matched √KL (a interpolated at b's "
            f"points inside a's range), mean per seed: {d.text(signed=True)}")  # fmt: skip
    if d.has_interval and d.lo > 0:
        return Decision("holds", text, [(d, "above 0")])
    if d.has_interval and d.hi < 0:
        return Decision("does not hold", text, [(d, "below 0")])
    return Decision("inconclusive", text, [])


def _ordinal(g: pd.DataFrame) -> pd.DataFrame:
    """The points of one series and seed in order (checkpoints by step, Best-of-N by N)."""
    key = "n" if g.form.iloc[0] == "bon" else "step"
    return g.sort_values(key).assign(ordinal=range(len(g)))


def proxy_gold_divergence(data: TaskData, claim) -> Decision | None:
    """Past the gold's peak the proxy keeps rising while the gold falls: per series, each seed's
    peak is the point (checkpoint, or N) where the *other* seeds' mean gold is highest (so no seed
    both places the peak and measures the fall); on that seed, the least-squares slopes of proxy and
    gold against d from the peak to the end. Holds when, in every series with points past its peak,
    the proxy slope is significantly above 0 and the gold slope significantly below (t over seeds);
    does not hold when a proxy slope is significantly below 0; inconclusive otherwise, or where the
    gold peaks at the last point (the grid does not reach the fall)."""
    from bench import overopt

    pts = _overopt_points(data, claim.a)
    pts = pts[pts.proxy.notna()]
    if pts.empty:
        return None
    parts, decided, holds, fails = [], [], 0, 0
    for series, g in pts.groupby("series", sort=True):
        curves = {seed: _ordinal(gs) for seed, gs in g.groupby("seed")}
        length = min(len(c) for c in curves.values())
        mean = {s: c.gold.to_numpy(float)[:length] for s, c in curves.items()}
        slopes = []
        for seed, c in curves.items():
            others = [v for s, v in mean.items() if s != seed] or [mean[seed]]
            at = int(np.argmax(np.mean(others, axis=0)))
            tail = c.iloc[at:length]
            if len(tail) >= 2:
                slopes.append((overopt.slope(tail.d, tail.proxy), overopt.slope(tail.d, tail.gold)))
        if not slopes:
            parts.append(f"{series}: the gold peaks at the last point (the grid does not reach a fall)")
            continue
        sp, sg = np.array(slopes).T
        ip, ig = stats.mean_interval(sp, data.confidence), stats.mean_interval(sg, data.confidence)
        parts.append(
            f"{series}: past the peak, proxy slope {ip.text(signed=True)}, gold slope {ig.text(signed=True)}"
        )
        if ip.has_interval and ip.lo > 0 and ig.has_interval and ig.hi < 0:
            holds += 1
            decided += [(ip, "above 0"), (ig, "below 0")]
        elif ip.has_interval and ip.hi < 0:
            fails += 1
            decided = [(ip, "below 0")]
    n = sum(1 for p in parts if "slope" in p)
    verdict = "does not hold" if fails else "holds" if n and holds == n else "inconclusive"
    if not n:
        verdict = "inconclusive: the gold peaks at the last point of every series"
    text = "slopes against d = √KL (per seed, from the peak the other seeds place): " + "; ".join(parts)
    return Decision(verdict, text, decided if verdict in ("holds", "does not hold") else [])


def rm_data_delays(data: TaskData, claim) -> Decision | None:
    """Reward models trained on more data over-optimise later: per seed, the d at which the gold
    peaks in each reward-model data size's series, and the least-squares slope of that d against
    log(data size); t over seeds. Holds when the slope is significantly above 0, does not hold
    when significantly below. A peak at a series' last point is censored (the true peak lies
    further): counted at that d and named."""
    from bench import overopt

    pts = _overopt_points(data, claim.a)
    pts = pts[pts.rm_pairs.notna()]
    if pts.rm_pairs.nunique() < 2:
        return None
    slopes, censored, peaks = [], set(), {}
    for _, g in pts.groupby("seed"):
        xs, ys = [], []
        for size, gs in g.groupby("rm_pairs"):
            c = _ordinal(gs)
            d, inside = overopt.peak(c.d.to_numpy(float), c.gold.to_numpy(float))
            if not inside:
                censored.add(int(size))
            xs.append(np.log(size))
            ys.append(d)
            peaks.setdefault(int(size), []).append(d)
        slopes.append(overopt.slope(xs, ys))
    iv = stats.mean_interval(np.array(slopes, float), data.confidence)
    means = ", ".join(f"{k}: {np.mean(v):.2f}" for k, v in sorted(peaks.items()))
    text = (f"√KL at the gold's peak by reward-model pairs (mean over seeds) {means}; slope against "
            f"log(pairs) {iv.text(signed=True)}")  # fmt: skip
    if censored:
        text += f"; at the grid's end (censored) for {', '.join(map(str, sorted(censored)))} pairs"
    if iv.has_interval and iv.lo > 0:
        return Decision("holds", text, [(iv, "above 0")])
    if iv.has_interval and iv.hi < 0:
        return Decision("does not hold", text, [(iv, "below 0")])
    return Decision("inconclusive", text, [])


# kind -> (decide, the parameters it takes)
KINDS: dict[str, tuple[Callable[[TaskData, object], Decision | None], tuple[str, ...]]] = {
    "frontier-dominance": (frontier_dominance, ("kl_window",)),
    "flatter-over-temperature": (flatter_over_temperature, ()),
    "strong-baseline": (strong_baseline, ("paper_max_n",)),
    "difference": (difference, ("direction", "margin")),
    "equivalence": (equivalence, ("margin", "side")),
    "law-fit": (law_fit, ("form", "r2", "kl")),
    "kl-efficiency": (kl_efficiency, ()),
    "proxy-gold-divergence": (proxy_gold_divergence, ()),
    "rm-data-delays": (rm_data_delays, ()),
}

# a claims table's columns, before the numbers
COLUMNS = ["paper", "id", "task", "claim", "verdict", "measured"]
# claims.csv's numbers behind each decisive verdict: the difference the verdict rests on (the one
# least likely to come out the same again; an equivalence's: the difference less or plus the margin
# its one-sided test is against), the rule it met, and the chance that a fresh seed set of the same
# size reproduces it (and the seeds that would make that chance 80%)
CLAIM_NUMBERS = ["effect", "lo", "hi", "se", "df", "seeds", "interval", "rule", "p_replicate", "seeds_for_80"]


def claim_replication(required: list[tuple[stats.Interval, str]], seeds_new: int | None = None) -> float:
    """The chance that every (difference, rule) a verdict rests on meets its rule again on a fresh
    set of ``seeds_new`` seeds (default: as many as before), treating them as independent
    (``stats.replication_probability``); NaN where there are none."""
    if not required:
        return np.nan
    p = 1.0
    for d, rule in required:
        p *= stats.replication_probability(
            d.point, d.se, d.df, stats.seeds_of(d), rule, seeds_new, confidence=d.confidence
        )
    return p


def claim_numbers(required: list[tuple[stats.Interval, str]]) -> dict:
    """claims.csv's numbers (``CLAIM_NUMBERS``) for a verdict resting on ``required``: the
    difference among them least likely to come out the same again, its rule, the chance that the
    whole verdict does, and the fewest seeds that give it 80% (empty above 200)."""
    if not required:
        return dict.fromkeys(CLAIM_NUMBERS, np.nan) | {"interval": "", "rule": ""}
    d, rule = min(required, key=lambda c: claim_replication([c]))
    n = stats.seeds_of(d)
    most = stats.fewest_seeds(lambda k: claim_replication(required, k))
    return dict(
        effect=d.point, lo=d.lo, hi=d.hi, se=d.se, df=d.df, seeds=n, interval=d.label, rule=rule,
        p_replicate=claim_replication(required), seeds_for_80=np.nan if most is None else most,
    )  # fmt: skip


def evaluate_claims(results: R.Results, claims: list, confidence: float = 0.95) -> pd.DataFrame:
    """Each claim on each task where its methods ran (and its ``tasks`` allow): one row per
    decision, columns ``bench.claims.COLUMNS`` + ``CLAIM_NUMBERS``. Over merged submissions
    (``Results.combine``) a claim compares methods within one submission, whose name heads it
    (``B: DPO dominates PPO-GT``): seeds of different submissions share nothing to pair them by."""
    cols = [*COLUMNS, *CLAIM_NUMBERS]
    if len(results.parts) > 1:
        tables = []
        for name, part in results.parts:
            table = evaluate_claims(part, claims, confidence)
            if len(table):
                tables.append(table.assign(claim=f"{name}: " + table.claim))
        if not tables:
            return pd.DataFrame(columns=cols)
        return pd.concat(tables, ignore_index=True).sort_values("task", kind="stable", ignore_index=True)
    pts = R.claim_points(results)
    rows = []
    for task, tp in pts.groupby("task", sort=True):
        data = TaskData(results, task, tp, confidence)
        for claim in claims:
            if not claim.methods() - {claim.baseline} <= data.methods:
                continue
            if claim.tasks is not None and task not in claim.tasks:
                continue
            decision = KINDS[claim.kind][0](data, claim)
            if decision is None:
                continue
            numbers = claim_numbers(R._deciding(decision.verdict, decision.candidates))
            rows.append(dict(paper=claim.paper, id=claim.id, task=task,
                             claim=claim.statement.format(quantity=data.quantity), verdict=decision.verdict,
                             measured=decision.measured, **numbers))  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
