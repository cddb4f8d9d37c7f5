"""`bench replicate` end to end on a tiny suite, and its refusals."""

import json

import pandas as pd
import pytest

from bench.cli import main
from tests.conftest import TINY


def test_replicate_refuses_what_it_cannot_do(tmp_path, capsys):
    assert main(["replicate", str(tmp_path)]) == 2
    assert "not a bench report folder (no report.json)" in capsys.readouterr().err
    assert main(["replicate", str(tmp_path), "--seeds", "1"]) == 2
    assert "--seeds: '1': must be >= 2" in capsys.readouterr().err
    report = tmp_path / "rep"
    report.mkdir()
    (report / "report.json").write_text(json.dumps({"suite": "tiny", "provenance": {"suite hash": "0"}}))
    assert main(["replicate", str(report)]) == 2
    assert "no final_scores.csv" in capsys.readouterr().err
    pd.DataFrame({"task": ["CartPole-v1"], "algorithm": ["ppo"], "seed": [0], "score": [1.0]}).to_csv(
        report / "final_scores.csv", index=False
    )
    (tmp_path / "tiny.yaml").write_text(TINY)
    assert main(["replicate", str(report), "--suite", str(tmp_path / "tiny.yaml"), "--seed-start", "0"]) == 2
    assert "seeds 0 were used by the report" in capsys.readouterr().err
    argv = ["replicate", str(report), "--suite", str(tmp_path / "tiny.yaml"), "--algorithms", "trpo"]
    assert main(argv) == 2 and "--algorithms 'trpo' matches no run label" in capsys.readouterr().err
    assert main(["replicate", str(report), "--suite", str(tmp_path / "tiny.yaml"), "--tasks", "Pong"]) == 2
    assert "--tasks Pong: not a task of suite tiny" in capsys.readouterr().err
    assert not (report / "replication").exists()


@pytest.mark.slow  # 30 s: 4 + 4 runs
def test_a_report_replicated_on_fresh_seeds(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY)
    store = tmp_path / "b.sqlite"
    assert main(["run", str(suite), "--store", str(store), "-q"]) == 0
    report = tmp_path / "report"
    assert main(["report", "--suite", "tiny", "--store", str(store), "-o", str(report), "-q"]) == 0
    # the suite as published: a shipped-suite lookup by name would find no 'tiny', so pass the file
    repl = tmp_path / "repl.sqlite"
    capsys.readouterr()
    rc = main(
        ["replicate", str(report), "--suite", str(suite), "--store", str(repl), "-q", "--algorithms", "ppo"]
    )
    out, err = capsys.readouterr()
    assert rc in (0, 1)
    assert "on seeds 2, 3: 2 runs" in err
    rows = pd.read_csv(report / "replication" / "rows.csv")
    assert rows.algorithm.tolist() == ["ppo"] and rows.here_seeds.tolist() == [2]
    assert (
        rows.status.iloc[0] in ("consistent", "differs", "inconclusive") and rows.published_seeds.iloc[0] == 2
    )
    published = pd.read_csv(report / "final_scores.csv")
    assert rows.published_mean.iloc[0] == pytest.approx(published[published.algorithm == "ppo"].score.mean())
    summary = json.loads((report / "replication" / "replication.json").read_text())
    assert summary["seeds"] == [2, 3] and summary["published_seeds"] == [0, 1] and summary["rows"] == 1
    assert "1 kind" in summary["machines_here"]
    assert (rc == 1) == (summary["rows_differ"] > 0)
    # the replication's own store holds only the fresh seeds; the published store is untouched
    assert main(["status", "--store", str(repl)]) == 0
    assert " 2 " in capsys.readouterr().out
    # again: nothing to train, the same verdicts
    assert (
        main(
            [
                "replicate",
                str(report),
                "--suite",
                str(suite),
                "--store",
                str(repl),
                "-q",
                "--algorithms",
                "ppo",
            ]
        )
        == rc
    )
    assert "2 already done, 0 to run" in capsys.readouterr().err
    # a store that holds the suite under other seeds is refused
    assert main(["replicate", str(report), "--suite", str(suite), "--store", str(store), "-q"]) == 2
    assert "a replication needs a store of its own" in capsys.readouterr().err
    # re-rendering the report keeps the replication and shows its section
    assert main(["report", "--suite", "tiny", "--store", str(store), "-o", str(report), "-q"]) == 0
    assert (report / "replication" / "index.html").is_file()
    assert "rows consistent" in (report / "index.html").read_text()
    # a second replication (its own store) takes seeds no replication used, and a folder of its own
    repl2 = tmp_path / "repl2.sqlite"
    args = [
        "replicate",
        str(report),
        "--suite",
        str(suite),
        "--store",
        str(repl2),
        "-q",
        "--algorithms",
        "ppo",
    ]
    assert main(args) in (0, 1)
    assert "on seeds 4, 5: 2 runs" in capsys.readouterr().err
    second = json.loads((report / "replication-seeds-4-5" / "replication.json").read_text())
    assert second["seeds"] == [4, 5] and summary["seeds"] == [2, 3]
    assert main(["report", "--suite", "tiny", "--store", str(store), "-o", str(report), "-q"]) == 0
    page = (report / "index.html").read_text()
    assert (
        page.count("Replication on fresh seeds</h2>") == 2
        and 'href="replication-seeds-4-5/index.html"' in page
    )
    assert json.loads((report / "replication-seeds-4-5" / "replication.json").read_text()) == second
