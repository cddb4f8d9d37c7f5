"""bench replicate's verdict logic, by hand on synthetic published and replicated numbers."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench import replicate as rp
from bench import stats


def finals(task: str, algorithm: str, scores, first_seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": task,
            "algorithm": algorithm,
            "seed": range(first_seed, first_seed + len(scores)),
            "score": scores,
        }
    )


def test_rows_consistent_differs_and_underpowered():
    """Pendulum-v1 declares a random-to-solved range, so the margin is 0.1 x that range; a task
    without one takes the spread of the published rows' means."""
    rng = np.random.default_rng(0)
    scale = rp.task_scale("Pendulum-v1", pd.Series([0.0]))
    assert scale > 100  # Pendulum: random about -1200, solved about -150
    m = 0.1 * scale
    pub = pd.concat([
        finals("Pendulum-v1", "same", -300 + rng.normal(0, 5, 10)),
        finals("Pendulum-v1", "moved", -300 + rng.normal(0, 5, 10)),
        finals("Pendulum-v1", "noisy", [-300, -700, -200]),
    ])  # fmt: skip
    here = pd.concat([
        finals("Pendulum-v1", "same", -301 + rng.normal(0, 5, 10), 10),  # the same distribution: equivalent
        finals("Pendulum-v1", "moved", -300 + 3 * m + rng.normal(0, 5, 10), 10),  # a true shift of 3 margins
        finals("Pendulum-v1", "noisy", [-500, -250, -650], 3),  # 3 seeds of a wide spread: cannot tell
    ])  # fmt: skip
    rows = rp.judge_rows(pub, here, margin=0.1).set_index("algorithm")
    assert rows.loc["same", "status"] == "consistent" and rows.loc["same", "p_consistent"] > 0.95
    assert rows.loc["moved", "status"] == "differs" and rows.loc["moved", "difference"] == pytest.approx(
        here[here.algorithm == "moved"].score.mean() - pub[pub.algorithm == "moved"].score.mean()
    )
    assert rows.loc["noisy", "status"] == "inconclusive" and rows.loc["noisy", "p_consistent"] < 0.05
    assert rows.loc["noisy", "interval"] == "Welch, 3 vs 3 seeds" and rows.loc[
        "noisy", "margin"
    ] == pytest.approx(m)
    # by hand: the Welch interval of the 'noisy' row
    a, b = np.array([-300.0, -700, -200]), np.array([-500.0, -250, -650])
    d = stats.difference_interval(b, a)
    assert (rows.loc["noisy", "diff_lo"], rows.loc["noisy", "diff_hi"]) == pytest.approx((d.lo, d.hi))
    # a task without bounds: the spread of the published means (here 0.2 - 0.0)
    assert rp.task_scale("sentiment", pd.Series([0.0, 0.2, 0.1])) == pytest.approx(0.2)
    # a row not run here
    missing = rp.judge_rows(finals("sentiment", "x", [0.1, 0.2]), finals("sentiment", "y", [0.1, 0.2]))
    assert missing.status.tolist() == ["not run here"]


def claim(verdict, effect=np.nan, se=np.nan, df=np.nan, seeds=np.nan, rule="", p=np.nan, task="t", text="c"):
    return dict(task=task, claim=text, verdict=verdict, measured="m", effect=effect, se=se, df=df,
                seeds=seeds, rule=rule, p_replicate=p)  # fmt: skip


def test_claims_replicated_not_replicated_inconclusive():
    published = pd.DataFrame([
        claim("holds", 0.5, 0.1, 4, 5, "above 0", 0.9, text="a"),
        claim("holds", 0.5, 0.1, 4, 5, "above 0", 0.9, text="b"),
        claim("does not hold", -0.3, 0.2, 4, 5, "below 0", 0.3, text="c"),
        claim("inconclusive: the grid does not cover every point", text="d"),
        claim("holds", 0.5, 0.1, 4, 5, "above 0", 0.9, text="e"),
    ])  # fmt: skip
    here = pd.DataFrame([
        dict(task="t", claim="a", verdict="holds", measured="x"),
        dict(task="t", claim="b", verdict="does not hold", measured="x"),
        dict(task="t", claim="c", verdict="inconclusive", measured="x"),
        dict(task="t", claim="d", verdict="holds", measured="x"),
    ])  # fmt: skip
    out = rp.judge_claims(published, here, seeds_here=5).set_index("claim")
    assert out.status.to_dict() == {
        "a": "replicated", "b": "not replicated", "c": "inconclusive here",
        "d": "inconclusive in the report (here: holds)", "e": "not measured here",
    }  # fmt: skip
    # at the report's own seed count the report's figure is used; at another, it is recomputed
    assert out.loc["a", "p_predicted"] == 0.9 and math.isnan(out.loc["d", "p_predicted"])
    ten = rp.judge_claims(published, here, seeds_here=10).set_index("claim")
    assert ten.loc["c", "p_predicted"] == pytest.approx(
        stats.replication_probability(-0.3, 0.2, 4, 5, "below 0", 10)
    )


def test_replication_counts_and_exit():
    pub = rp.Published(
        None, "s", "1", "h", finals("sentiment", "x", [0.1, 0.2]), pd.DataFrame(), "not recorded"
    )
    claims = pd.DataFrame({"status": ["replicated", "not replicated", "inconclusive", "inconclusive here"]})
    rows = pd.DataFrame({"status": ["consistent", "inconclusive", "differs", "not run here"]})
    rep = rp.Replication("s", pub, [2, 3], claims, rows, "1 kind", 0.1)
    assert rep.verdict() == (
        "claims replicated 1 of 3 decided in the report (1 NOT replicated); "
        "rows consistent 1 of 3 (1 DIFFER, 1 inconclusive)"
    )
    assert rep.fails
    rep.claims = claims.iloc[[0]]
    rep.rows = rows.iloc[[0, 1]]
    assert not rep.fails and rep.verdict() == (
        "claims replicated 1 of 1 decided in the report; rows consistent 1 of 2 (1 inconclusive)"
    )


def test_fresh_seeds_are_disjoint_and_claims_name_their_methods():
    assert rp.fresh_seeds([0, 1, 2], [0, 1, 2], 3) == [3, 4, 5]
    assert rp.fresh_seeds([0, 1], [0, 1, 2, 3, 4], 2) == [5, 6]
    assert rp.fresh_seeds([0, 1], [0, 1], 2, start=100) == [100, 101]
    with pytest.raises(rp.ReplicationError, match="seeds 1 were used by the report"):
        rp.fresh_seeds([0, 1], [0, 1], 2, start=1)
    assert rp.claim_methods(["DPO dominates PPO-GT"]) == {"dpo", "ppo-gt", "sft"}
    assert rp.claim_methods(["DPO's win rate is flatter over temperature than PPO's"]) == {
        "dpo",
        "rlhf-ppo",
        "sft",
    }
    assert rp.select(["dpo[beta=1]", "dpo[beta=5]", "ppo"], ["dpo"]) == {"dpo[beta=1]", "dpo[beta=5]"}
    assert rp.select(["dpo[beta=1]", "ppo"], ["*beta=1*", "ppo"]) == {"dpo[beta=1]", "ppo"}
    with pytest.raises(rp.ReplicationError, match="matches no run label"):
        rp.select(["ppo"], ["trpo"])


def test_a_moved_definition_hash_with_the_same_runs_is_the_same_suite(tmp_path):
    """A suite's definition hash moves when the schema gains a default; its runs' base keys do not.
    A report whose final_scores.csv carries base keys is replicable as long as every published run
    is still the suite's run of that label, task and seed."""
    from bench.suite import expand, load_suite
    from tests.conftest import TINY

    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    suite = load_suite(path)
    specs = expand(suite)
    rows = pd.DataFrame(
        [
            {"task": s.task, "algorithm": s.label, "seed": s.seed, "score": 1.0, "base_key": s.base_key}
            for s in specs
        ]
    )
    # as a report folder holds them: final_scores.csv untouched (a replication page is tied to its
    # digest), the base keys beside it in base_keys.csv; keys that look like numbers stay strings
    import json

    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text(json.dumps({"suite": "tiny", "provenance": {"suite hash": "0" * 16}}))
    rows = rows.assign(run_key=[f"{i:016d}" for i in range(len(rows))])
    rows.drop(columns="base_key").to_csv(report / "final_scores.csv", index=False)
    rows[["run_key", "base_key"]].to_csv(report / "base_keys.csv", index=False)
    pub = rp.read_published(report)
    assert pub.finals.base_key.tolist() == rows.base_key.tolist()
    assert rp.same_runs(pub, suite)
    # a changed hyperparameter is another run: refused
    path.write_text(TINY.replace("n_epochs: 2", "n_epochs: 3"))
    assert not rp.same_runs(pub, load_suite(path))
    # a report rendered before base keys were written cannot tell: refused as before
    assert not rp.same_runs(rp.Published(tmp_path, "tiny", "1", "0", rows.drop(columns="base_key"),
                                         pd.DataFrame(), ""), suite)  # fmt: skip


def _page(folder, seeds, machines_here="1 kind: 7816bf4d29 Intel · AMX (2 runs)"):
    folder.mkdir(parents=True)
    info = {"seeds": seeds, "machines_here": machines_here,
            "machines_published": "1 kind: 7816bf4d29 Intel(R) Xeon(R) Processor · AMX (2 runs)"}  # fmt: skip
    (folder / "replication.json").write_text(json.dumps(info), encoding="utf-8")
    return info


def test_replications_beside_a_report_keep_their_own_folders_and_seeds(tmp_path):
    """A replication on a machine kind the report did not run on goes to replication-KIND; one whose
    folder already holds other seeds gets -seeds-A-B; the default fresh seeds skip every seed the
    report's replications used."""
    from bench.report.tables import machine_kinds_in, replication_folders, replication_title

    machines = "1 kind: 7816bf4d29 Intel(R) Xeon(R) Processor · AMX · torch AVX512 · 1 thread (2 runs)"
    pub = rp.Published(tmp_path, "s", "1", "h", finals("t", "a", [1.0, 2.0]), pd.DataFrame(), machines)
    intel = pd.DataFrame({"machine": ["7816bf4d29"] * 2, "cpu": ["Intel"] * 2})
    amd = pd.DataFrame({"machine": ["9a46f20efd"] * 2, "cpu": ["AMD EPYC"] * 2})
    assert rp.default_output(pub, intel, [2, 3]) == tmp_path / "replication"
    assert rp.default_output(pub, amd, [2, 3]) == tmp_path / "replication-9a46f20efd"
    unknown = rp.Published(tmp_path, "s", "1", "h", pub.finals, pd.DataFrame(), "not recorded")
    assert (
        rp.new_kinds(unknown, amd) == []
        and rp.default_output(unknown, amd, [2, 3]) == tmp_path / "replication"
    )
    assert rp.new_kinds(pub, amd) == ["9a46f20efd"] and rp.new_kinds(pub, intel) == []
    sft = type("S", (), {"lm": type("L", (), {"sft": type("F", (), {"seed": 0})()})()})()
    assert (
        "built again here" in rp.pinned_notes(sft, True)[0] and "built again" not in rp.pinned_notes(sft)[0]
    )
    assert (
        rp.default_output(pub, pd.DataFrame({"seed": [2]}), [2]) == tmp_path / "replication"
    )  # none recorded
    _page(tmp_path / "replication", [2, 3])
    assert rp.default_output(pub, intel, [2, 3]) == tmp_path / "replication"  # the same seeds: judged again
    assert rp.default_output(pub, intel, [4, 5]) == tmp_path / "replication-seeds-4-5"
    _page(tmp_path / "replication-9a46f20efd", [6, 7], "1 kind: 9a46f20efd AMD EPYC · AVX-512 (2 runs)")
    (tmp_path / "replication-empty").mkdir()  # no replication.json: not a replication
    assert [p.name for p in replication_folders(tmp_path)] == ["replication", "replication-9a46f20efd"]
    assert rp.replicated_seeds(tmp_path) == [2, 3, 6, 7]
    assert rp.fresh_seeds([0, 1], [0, 1], 2, taken=rp.replicated_seeds(tmp_path)) == [8, 9]
    assert machine_kinds_in("2 kinds: 7816bf4d29 Intel (3 runs); 9a46f20efd AMD (2 runs)") == {
        "7816bf4d29", "9a46f20efd"}  # fmt: skip
    infos = [json.loads((p / "replication.json").read_text()) for p in replication_folders(tmp_path)]
    assert [replication_title(i) for i in infos] == [
        "Replication on fresh seeds", "Replication on fresh seeds and another machine kind"]  # fmt: skip
    assert replication_title(
        {"machines_here": "1 kind: 9a46f20efd AMD", "machines_published": "not recorded"}
    ) == ("Replication on fresh seeds (the report's machine kind not recorded)")
