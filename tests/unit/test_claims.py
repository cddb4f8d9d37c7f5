"""The claims registry (``bench.claims``): the shipped claims as data, a user's YAML file, a
plugin's entry point, the ``difference`` and ``equivalence`` kinds by hand, errors in one line, and
``bench claims``."""

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import bench.registry
from bench import claims
from bench.claims import Claim, ClaimError, read_claims
from bench.cli import main
from tests.unit.test_results import _claim_runs


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry of its own for the test (the process's is loaded once)."""
    monkeypatch.setattr(claims, "REGISTRY", claims.Registry())


def test_the_dpo_papers_claims_are_data(fresh_registry):
    known = {c.id: c for c in claims.load()}
    assert {"dpo-frontier-dominates-ppo", "dpo-dominates-ppo-gt", "dpo-flatter-over-temperature",
            "best-of-n-strong-baseline"} <= set(known)  # fmt: skip
    bon = known["best-of-n-strong-baseline"]
    assert (bon.kind, bon.a, bon.b, bon.baseline, bon.params) == (
        "strong-baseline",
        "best-of-n",
        "dpo",
        "sft",
        {"paper_max_n": 128},
    )
    assert claims.short_paper(bon.paper) == "Rafailov et al. 2023" and bon.source == "built-in"
    assert known["dpo-flatter-over-temperature"].statements() == {
        "DPO's win rate is flatter over temperature than PPO's",
        "DPO's score is flatter over temperature than PPO's",
    }


def _write(tmp_path, text: str, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_difference_kind_by_hand(tmp_path):
    # two sweep points of method "a"; its chosen point (on the other seeds) is a[hi] for every seed
    res = _claim_runs({
        "a[hi]": (1.0, [0.50, 0.52, 0.54]),
        "a[lo]": (1.0, [0.40, 0.41, 0.42]),
        "b": (1.0, [0.30, 0.30, 0.31]),
    })  # fmt: skip
    mine = read_claims(
        _write(
            tmp_path,
            """
        paper: Someone et al. 2025, "A paper"
        claims:
          - {id: a-beats-b, statement: A beats B, kind: difference, a: a, b: b}
          - {id: a-below-b, statement: A is below B, kind: difference, a: a, b: b, params: {direction: lower}}
          - {id: a-far-above, statement: A beats B by 0.2, kind: difference, a: a, b: b,
             params: {margin: 0.2}}
    """,
        )
    )
    table = claims.evaluate(res, mine).set_index("id")
    # paired differences 0.20, 0.22, 0.23: mean 0.21667, sd 0.015275, t(0.975, 2) = 4.3027
    d = np.array([0.20, 0.22, 0.23])
    half = sps.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    beats = table.loc["a-beats-b"]
    assert beats.verdict == "holds" and beats.rule == "above 0" and beats.interval == "paired t, 3 seeds"
    assert beats.effect == pytest.approx(d.mean()) and beats.lo == pytest.approx(d.mean() - half)
    assert beats.hi == pytest.approx(d.mean() + half) and beats.lo == pytest.approx(0.1787, abs=1e-4)
    assert "a[hi] minus b (points chosen leaving the seed out): score +0.217 [" in beats.measured
    assert beats.paper == 'Someone et al. 2025, "A paper"' and beats.task == "sentiment"
    below = table.loc["a-below-b"]
    assert below.verdict == "does not hold" and below.rule == "above 0"
    # the interval's lower end, 0.179, does not clear the margin 0.2: undecided
    far = table.loc["a-far-above"]
    assert far.verdict == "inconclusive" and np.isnan(far.p_replicate) and "(margin 0.2)" in far.measured
    # a claim whose methods did not both run is not decided at all
    other = Claim(id="c-vs-b", paper="X 2020", statement="C beats B", kind="difference", a="c", b="b")
    assert claims.evaluate(res, [other]).empty


def test_the_equivalence_kind_by_hand(tmp_path):
    """Two one-sided tests: the 90% paired t interval of a - b against ±m, m = 0.1 of the task's
    scale; sentiment declares no random-to-solved range, so the scale is the spread of the method
    means, 0.53 - 0.31 = 0.22 and m = 0.022."""
    from bench import stats

    res = _claim_runs({
        "a": (1.0, [0.50, 0.52, 0.54]),
        "b": (1.0, [0.50, 0.51, 0.53]),
        "c": (1.0, [0.30, 0.31, 0.32]),
        "n": (1.0, [0.47, 0.54, 0.58]),
    })  # fmt: skip
    mine = read_claims(
        _write(
            tmp_path,
            """
        paper: Someone et al. 2025, "A paper"
        claims:
          - {id: a-same-as-b, statement: A and B score the same, kind: equivalence, a: a, b: b}
          - {id: a-same-as-c, statement: A and C score the same, kind: equivalence, a: a, b: c}
          - {id: n-same-as-a, statement: N and A score the same, kind: equivalence, a: n, b: a}
          - {id: c-not-below-a, statement: C is no worse than A, kind: equivalence, a: c, b: a,
             params: {side: not-lower}}
          - {id: a-not-below-c, statement: A is no worse than C, kind: equivalence, a: a, b: c,
             params: {side: not-lower, margin: 0.05}}
    """,
        )
    )
    table = claims.evaluate(res, mine).set_index("id")
    m = 0.1 * (0.53 - 0.31)
    d = np.array([0.0, 0.01, 0.01])  # a - b per seed
    half = sps.t.ppf(0.95, 2) * d.std(ddof=1) / np.sqrt(3)  # the 90% interval: 0.0097
    same = table.loc["a-same-as-b"]
    assert same.verdict == "holds" and same.interval == "paired t, 3 seeds"
    assert "score +0.007 [-0.003, +0.016] (paired t, 3 seeds) at 90% (two one-sided tests)" in same.measured
    assert f"margin ±{m:.4g} (0.1 of the task's scale)" in same.measured
    # the numbers behind it: the one-sided test nearer to failing, a - b - m below 0
    assert same.rule == "below 0"
    shifted = (d.mean() - m, d.mean() - half - m, d.mean() + half - m)
    assert (same.effect, same.lo, same.hi) == pytest.approx(shifted)
    # its chance of replicating: both one-sided tests again, each a noncentral t tail at the 90% level
    se = d.std(ddof=1) / np.sqrt(3)
    p_low = stats.replication_probability(d.mean() + m, se, 2, 3, "above 0", confidence=0.9)
    p_high = stats.replication_probability(d.mean() - m, se, 2, 3, "below 0", confidence=0.9)
    assert same.p_replicate == pytest.approx(p_low * p_high) and 0 < same.p_replicate < 1
    assert table.loc["a-same-as-c", "verdict"] == "does not hold"  # +0.21, far beyond +m
    noisy = table.loc["n-same-as-a"]  # -0.03, +0.02, +0.04: [-0.05, +0.07] crosses both margins
    assert noisy.verdict == "inconclusive" and np.isnan(noisy.p_replicate)
    assert table.loc["c-not-below-a", "verdict"] == "does not hold"  # -0.21, below -m
    assert table.loc["a-not-below-c", "verdict"] == "holds"
    assert "margin ±0.011 (0.05 of the task's scale)" in table.loc["a-not-below-c", "measured"]


def test_an_equivalence_margin_on_a_control_task_is_a_fraction_of_its_range():
    from bench.results import task_scale

    # Pendulum declares random -1255.5 and solved -200: 0.1 of the range is 105.55, whatever the means
    assert 0.1 * task_scale("Pendulum-v1", pd.Series([-300.0, -900.0])) == pytest.approx(105.55)


@pytest.mark.parametrize(
    "text, message",
    [
        ("claims: [{id: x, paper: P, statement: S, kind: nope, a: a, b: b}]", "unknown kind 'nope'"),
        ("claims: [{id: x, paper: P, statement: S, kind: difference, a: a, b: b, params: {kl_window: 2}}]",
         "kind difference takes no parameter kl_window (it takes: direction, margin)"),
        ("claims: [{id: Bad Id, paper: P, statement: S, kind: difference, a: a, b: b}]", "is not an id"),
        ("claims: [{id: x, statement: S, kind: difference, a: a, b: b}]", "claim x: paper: Field required"),
        ("claim: []", "unknown keys claim"),
        ("claims: [", "is not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_claims_file_is_one_line(tmp_path, text, message):
    with pytest.raises(ClaimError, match="mine.yaml") as e:
        read_claims(_write(tmp_path, text))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_plugins_claims_come_through_its_entry_point(tmp_path, monkeypatch, fresh_registry):
    """An installed distribution (a .dist-info on sys.path) whose ``bench.claims`` entry point
    names a YAML file; a second, broken one is left out with its reason."""
    (tmp_path / "claimsplugin").mkdir()
    (tmp_path / "claimsplugin" / "__init__.py").write_text(
        "from pathlib import Path\nCLAIMS = Path(__file__).with_name('claims.yaml')\n"
    )
    _write(
        tmp_path / "claimsplugin",
        """
        paper: Plugin et al. 2024, "Their claim"
        claims: [{id: plugin-claim, statement: PPO beats PG, kind: difference, a: ppo, b: pg}]
    """,
        "claims.yaml",
    )
    dist = tmp_path / "claimsplugin-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: claimsplugin\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text(
        "[bench.claims]\nmine = claimsplugin:CLAIMS\nbroken = claimsplugin:MISSING\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bench.registry, "BROKEN", [])
    known = {c.id: c for c in claims.load()}
    assert known["plugin-claim"].source == "plugin claimsplugin 0.3"
    assert known["plugin-claim"].paper == 'Plugin et al. 2024, "Their claim"'
    broken = bench.registry.BROKEN
    assert [(b.name, b.distribution) for b in broken] == [("broken", "claimsplugin")]
    assert "AttributeError" in broken[0].reason
    sys.modules.pop("claimsplugin", None)


def test_bench_claims_decides_a_users_claims_on_a_store(tmp_path, capsys, fresh_registry):
    from bench.report.synthetic import write_synthetic
    from bench.store import Store

    store = tmp_path / "s.sqlite"
    write_synthetic(Store(store), labels=["ppo", "pg"], alignment=True, levels={"ppo": 0.9, "pg": 0.3})
    mine = _write(
        tmp_path,
        """
        paper: Someone et al. 2025, "A paper"
        claims:
          - {id: ppo-beats-pg, statement: PPO beats PG, kind: difference, a: ppo, b: pg}
          - {id: pg-beats-ppo, statement: PG beats PPO, kind: difference, a: pg, b: ppo}
    """,
    )
    args = ["claims", "--store", str(store), "--suite", "synthetic", "--claims", str(mine)]
    assert main([*args, "--format", "csv", "-o", str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv").set_index(["id", "task"]).sort_index()
    assert set(out.index) == {
        (i, t) for i in ("ppo-beats-pg", "pg-beats-ppo") for t in ("CartPole-v1", "Pendulum-v1")
    }
    assert (out.loc["ppo-beats-pg"].verdict == "holds").all()
    assert (out.loc["pg-beats-ppo"].verdict == "does not hold").all()
    assert (out.interval == "paired t, 5 seeds").all() and (out.p_replicate > 0.9).all()
    capsys.readouterr()
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Someone et al. 2025  CartPole-v1  PPO beats PG" in text and "(paired t, 5 seeds)" in text
    assert main(["claims", "--list", "--claims", str(mine)]) == 0
    assert "ppo-beats-pg" in capsys.readouterr().out
    # nothing the registry's own claims can decide here; a bad file: exit 2, one line
    assert main(["claims", "--store", str(store), "--suite", "synthetic"]) == 2
    assert "no registered claim can be decided" in capsys.readouterr().err
    bad = _write(tmp_path, "claims: [{id: x, paper: P, statement: S, kind: nope, a: a, b: b}]", "bad.yaml")
    assert main([*args[:5], "--claims", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown kind 'nope'" in err and len(err.strip().splitlines()) == 1
