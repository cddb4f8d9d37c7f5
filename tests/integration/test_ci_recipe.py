"""The CI recipe (examples/ci/gate.sh, the commands the GitHub workflow runs) on a tiny suite:
`baseline` on "main", then `gate` on unchanged code passes as identical and writes the page;
a changed algorithm is compared run by run; without a cached baseline the committed one is used."""

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GATE = ROOT / "examples" / "ci" / "gate.sh"

TINY = """
name: ci-tiny
version: 1
tasks: [CartPole-v1]
seeds: 2
env_steps: 1024
evaluation: {eval_every: 512, eval_episodes: 2}
algorithms:
  - algo: ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: 2}
"""


def gate(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENCH_CACHE": str(cwd / "cache"), "BENCH_CI_SUITE": "tiny.yaml",
           "BENCH_CI_JOBS": "1", **env}  # fmt: skip
    return subprocess.run(
        ["bash", str(GATE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow  # 30-70 s: eleven bench processes
def test_the_ci_recipe_gates_a_change(tmp_path):
    main_branch, pr = tmp_path / "main", tmp_path / "pr"
    for folder in (main_branch, pr):
        folder.mkdir()
        (folder / "tiny.yaml").write_text(TINY)
    out = gate(main_branch, "baseline")
    assert out.returncode == 0, out.stderr
    shutil.copy(main_branch / "ci-baseline.csv", pr / "ci-baseline.csv")  # what the workflow's cache restores
    out = gate(pr, "gate")
    assert out.returncode == 0, out.stderr
    assert "no regression in 1 comparisons; 1 identical" in out.stdout
    assert (pr / "bench-compare" / "compare.html").is_file()
    # the pull request changes PPO (here through its suite: a 100x smaller learning rate)
    changed = yaml.safe_load(TINY)
    changed["algorithms"][0]["params"]["lr"] = 3e-6
    (pr / "tiny.yaml").write_text(yaml.safe_dump(changed))
    out = gate(pr, "gate")
    row = pd.read_csv(pr / "bench-compare" / "compare.csv").iloc[0]
    assert row.exact.startswith("differs: seed 0, ") and row.exact.endswith(" (configs differ)"), row.exact
    assert row.method == "paired t"
    assert out.returncode == (1 if row.verdict == "regression" else 0), out.stdout
    assert (pr / "bench-compare" / "compare.png").is_file()
    # no cached baseline: the committed one (here a copy of main's)
    (pr / "ci-baseline.csv").rename(pr / "committed.csv")
    out = gate(pr, "gate", BENCH_CI_FALLBACK="committed.csv")
    assert "no ci-baseline.csv from the main branch; comparing with committed.csv" in out.stderr
    assert gate(pr, "nonsense").returncode == 2
