import textwrap
from pathlib import Path

import pytest


def run_in_cache(tmp: Path, suite: Path, *args: str) -> Path:
    """``bench run suite`` into ``tmp/bench.sqlite`` with the artifact cache in ``tmp/cache``
    (for module-scoped fixtures, which cannot use the ``monkeypatch`` fixture); returns the store."""
    from bench.cli import main

    store = tmp / "bench.sqlite"
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE", str(tmp / "cache"))
    try:
        assert main(["run", str(suite), "--store", str(store), "-q", *args]) == 0
    finally:
        mp.undo()
    return store


@pytest.fixture
def write_suite(tmp_path: Path):
    """Writes a suite file from a YAML string; returns its path."""

    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


TINY = """
name: tiny
version: 1
tasks: [CartPole-v1]
seeds: [0, 1]
env_steps: 1024
evaluation: {eval_every: 512, eval_episodes: 2, temperatures: [0.0, 1.0]}
algorithms:
  - algo: ppo
    params: {n_envs: 4, n_steps: 64, batch_size: 128, n_epochs: 2}
  - algo: pg
    params: {n_envs: 4, n_steps: 64}
"""


def pytest_terminal_summary(terminalreporter):
    """Say so when the browser tests were skipped for lack of Chromium (they would otherwise
    vanish into the skip count)."""
    skipped = terminalreporter.stats.get("skipped", [])
    n = sum(1 for report in skipped if "chromium" in str(report.longrepr))
    if n:
        terminalreporter.write_line(
            f"{n} browser tests skipped: they need Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run installs them)",
            yellow=True,
        )
