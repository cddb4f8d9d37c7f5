"""Report building blocks: styles, natural order, method-level selection, hyperparameter tables,
figure formats and LM leaderboard columns."""

import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bench import results as R
from bench.report import figures, tables


def test_palette_gives_up_to_nineteen_methods_a_colour_of_their_own():
    names = [f"method-{i}" for i in range(22)]
    pal = figures.palette(names)
    styles = {(pal[n], pal.marker(n), pal.line(n)) for n in names}
    assert len(styles) == 22
    ordered = figures.natural(names)
    # the first 19 names: 19 different colours (no two methods of a figure share one); the first
    # nine from Tol's colour-blind-safe muted set, solid; the rest dashed
    assert len({pal[n] for n in ordered[:19]}) == 19
    muted = {tuple(round(c, 6) for c in plt.matplotlib.colors.to_rgb(h)) for h in figures.TOL_MUTED}
    assert {tuple(round(c, 6) for c in pal[n]) for n in ordered[:9]} == muted
    assert {pal.line(n) for n in ordered[:9]} == {"-"} and {pal.line(n) for n in ordered[9:]} == {"--"}
    # the 20th repeats the first colour with another marker
    assert pal[ordered[19]] == pal[ordered[0]] and pal.marker(ordered[19]) != pal.marker(ordered[0])


def test_palette_alias_and_update_keep_markers():
    pal = figures.palette(["a", "b"])
    pal.update(figures.palette(["dpo", "ppo"]))
    pal.alias("dpo[beta=0.1]", "dpo")
    assert pal["dpo[beta=0.1]"] == pal["dpo"] and pal.marker("dpo[beta=0.1]") == pal.marker("dpo")


def test_natural_order_sorts_numbers_by_value():
    labels = ["n=16", "n=1", "n=4", "n=64"]
    assert figures.natural(labels) == ["n=1", "n=4", "n=16", "n=64"]
    kl = ["target_kl=12", "target_kl=3", "target_kl=6", "target_kl=9"]
    assert figures.natural(kl) == ["target_kl=3", "target_kl=6", "target_kl=9", "target_kl=12"]
    assert figures.natural(["dpo[beta=0.5]", "dpo[beta=0.05]", "dpo[beta=5.0]"]) == [
        "dpo[beta=0.05]", "dpo[beta=0.5]", "dpo[beta=5.0]",
    ]  # fmt: skip


def _finals_results(rows, tasks=("CartPole-v1",), config=None) -> R.Results:
    """Results whose every run has one final evaluation: rows (task, label, algo, seed, score)."""
    runs = pd.DataFrame(
        [(f"k{i}", t, lab, algo, s, "done", 100, 1.0, 1.0) for i, (t, lab, algo, s, _) in enumerate(rows)],
        columns=["run_key", "task", "algorithm", "algo", "seed", "status", "env_steps", "train_time",
                 "wall_time"],
    )  # fmt: skip
    if config is not None:
        runs["config"] = [json.dumps(config(lab, t)) for t, lab, *_ in rows]
    ev = pd.DataFrame(
        [(f"k{i}", 100, 1.0, 1.0, 0.0, "eval/return", v, 10) for i, (*_, v) in enumerate(rows)],
        columns=["run_key", "step", "wall_time", "train_time", "temperature", "metric", "value", "n"],
    )
    return R.Results(runs, ev, "test", {"name": "t"})


def test_best_points_take_the_highest_mean_normalised_score_over_tasks():
    # CartPole normalises (s - 22) / (475 - 22); Pendulum (s + 1200) / (1200 - 200) ... by the task
    rows = []
    for seed in (0, 1):
        rows += [
            ("CartPole-v1", "dpo[beta=0.1]", "dpo", seed, 300.0),
            ("CartPole-v1", "dpo[beta=1.0]", "dpo", seed, 400.0),
            ("Pendulum-v1", "dpo[beta=0.1]", "dpo", seed, -200.0),
            ("Pendulum-v1", "dpo[beta=1.0]", "dpo", seed, -1400.0),
            ("CartPole-v1", "ppo", "ppo", seed, 100.0),
            ("Pendulum-v1", "ppo", "ppo", seed, -900.0),
        ]
    res = _finals_results(rows)
    by_hand = {}
    for label in ("dpo[beta=0.1]", "dpo[beta=1.0]"):
        cp = R.normalise("CartPole-v1", 300.0 if label.endswith("0.1]") else 400.0)
        pe = R.normalise("Pendulum-v1", -200.0 if label.endswith("0.1]") else -1400.0)
        by_hand[label] = (cp + pe) / 2
    expected = max(by_hand, key=by_hand.get)
    assert R.best_points(res) == {"dpo": expected, "ppo": "ppo"}
    assert R.has_sweeps(res)
    assert not R.has_sweeps(_finals_results([("CartPole-v1", "ppo", "ppo", 0, 1.0)]))


def test_best_points_scale_tasks_without_bounds_between_the_labels():
    rows = [
        ("sentiment", "lm-dpo[beta=0.1]", "lm-dpo", 0, 0.2),
        ("sentiment", "lm-dpo[beta=0.5]", "lm-dpo", 0, 0.7),
    ]
    assert R.best_points(_finals_results(rows)) == {"lm-dpo": "lm-dpo[beta=0.5]"}


def test_hyperparameter_table_marks_what_differs_from_the_task_defaults():
    from bench.algos import ALGORITHMS

    ppo = ALGORITHMS["ppo"]
    default = ppo.config.model_validate(dict(ppo.task_defaults.get("CartPole-v1", {}))).model_dump(
        mode="json"
    )
    changed = {**default, "lr": default["lr"] * 10}
    res = _finals_results(
        [("CartPole-v1", "ppo[lr=x]", "ppo", 0, 1.0), ("CartPole-v1", "ppo", "ppo", 0, 1.0)],
        config=lambda label, task: changed if "lr" in label else default,
    )
    table = R.hyperparameter_table(res)
    differs = table[table.differs]
    assert list(differs.algorithm) == ["ppo[lr=x]"] and list(differs.field) == ["lr"]
    assert float(differs.value.iloc[0]) == pytest.approx(default["lr"] * 10)
    assert float(differs.default.iloc[0]) == pytest.approx(default["lr"])
    board = pd.DataFrame({"algorithm": ["ppo", "ppo[lr=x]"], "code": ["1+abc", ""]})
    rows = {r["label"]: r for r in tables.hyperparameter_rows(table, board)}
    assert rows["ppo"]["settings"] == [("all at the defaults", False)] and rows["ppo"]["code"] == "1+abc"
    text, bold = rows["ppo[lr=x]"]["settings"][0]
    assert bold and text.startswith("lr=") and "(default " in text
    assert R.hyperparameter_table(_finals_results([("CartPole-v1", "ppo", "ppo", 0, 1.0)])).empty  # no config


def test_figures_are_written_in_the_chosen_formats(tmp_path):
    figures.setup(["pdf"])
    try:
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        shown = figures._save(fig, tmp_path / "f.png")
        assert shown == "f.png"  # no SVG written: the page shows the PNG
        assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF" and not (tmp_path / "f.svg").exists()
        figures.setup(["svg"])
        fig, ax = plt.subplots()
        assert figures._save(fig, tmp_path / "g.png") == "g.svg"
        with pytest.raises(ValueError, match="unknown figure format 'gif'"):
            figures.setup(["gif"])
    finally:
        figures.setup(figures.DEFAULT_FORMATS)


def test_lm_leaderboards_leave_out_control_only_columns():
    lm = [tables.LEADERBOARD_HEADER[i] for i in tables.leaderboard_columns("sentiment")]
    assert not set(tables.CONTROL_ONLY) & set(lm) and "wall time, peak memory" in lm
    assert tables.leaderboard_columns("CartPole-v1") == list(range(len(tables.LEADERBOARD_HEADER)))


def test_main_budget_and_robust_floor():
    ev = pd.DataFrame({"algorithm": ["ppo", "sb3-ppo", "pg"], "step": [100_000, 100_000, 500_000]})
    assert figures.main_budget(ev) == 100_000
    assert figures.main_budget(ev[ev.algorithm != "pg"]) is None
    import numpy as np

    curves = {"ppo": np.linspace(-200, 200, 50), "pg": np.r_[np.linspace(-200, 100, 45), [-2500] * 5]}
    floor = figures.robust_floor(curves)
    assert floor is not None and -2500 < floor < -200
    assert figures.robust_floor({"ppo": np.linspace(-200, 200, 50)}) is None
    # with the random-policy score: the collapse far below random is still clipped, below random
    assert -2500 < figures.robust_floor(curves, random=-185.5) <= -185.5 - 0.15 * (200 + 185.5)
    # CartPole-like: most evaluations near 500, a few early ones at the random policy's ~20. Without
    # the random score those starts are clipped away; with it nothing is.
    start = {"ppo": np.r_[[15.0, 60.0], [500.0] * 40], "pg": np.r_[[12.0], np.linspace(300, 500, 40)]}
    assert figures.robust_floor(start) is not None
    assert figures.robust_floor(start, random=22.7) is None
    fig, ax = figures.plt.subplots()
    ax.plot([0, 1_500_000], [0, 1])
    figures.step_ticks(ax)
    fmt = ax.xaxis.get_major_formatter()
    assert [fmt(v, 0) for v in (0, 500, 25_000, 200_000, 1_500_000)] == ["0", "500", "25k", "200k", "1.5M"]
    figures.plt.close(fig)


def test_data_efficiency_figure_ticks_every_pair_count(tmp_path, monkeypatch):
    table = pd.DataFrame({"method": ["dpo-pairs"] * 4, "n_pairs": [100, 200, 400, 800],
                          "mean": [1.0, 2, 3, 4], "lo": [0.5, 1, 2, 3], "hi": [1.5, 3, 4, 5]})  # fmt: skip
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path.name)
    colors = {"dpo-pairs": "C0"}
    figures.data_efficiency_figure(table, "CartPole-v1", "episode_return", colors, tmp_path / "e.png")
    (fig,) = drawn
    fig.canvas.draw()
    # 100-800 lies within one decade: every pair count gets its tick, not only 100
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["100", "200", "400", "800"]
    figures.plt.close(fig)


def test_caveat_lines_skip_tasks_without_caveats():
    """A claims table merged with the caveats of some tasks only: the others (plain control, NaN after
    the merge) get no 'Caveats' paragraph, rather than one reading 'nan'."""
    from bench.report.render import caveat_lines

    claims = pd.DataFrame({"task": ["CartPole-v1", "CartPole-v1", "sentiment"], "claim": ["a", "b", "c"],
                           "caveats": [float("nan"), float("nan"), "gold: VADER"]})  # fmt: skip
    assert caveat_lines(claims) == ["**Caveats, sentiment:** gold: VADER", ""]
    assert caveat_lines(claims.drop(columns="caveats")) == []
