"""The docs site builds with --strict (no broken links, no warnings) and its generated reference
pages hold what the code holds; the README stays a newcomer's page."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_strict_with_the_generated_reference(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "bench describe" in cli and "--notes" in cli  # the commands' own --help texts
    params = (site / "reference" / "algorithms" / "index.html").read_text()
    from bench.algos import ALGORITHMS

    for name in ALGORITHMS:
        assert f"<code>{name}</code>" in params
    assert "kl_penalty" in params and "policy ratio clip epsilon" in params
    shutil.rmtree(site)


def test_readme_is_short_and_its_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    lines = readme.splitlines()
    command = lines[lines.index("Run the tests:") + 3]
    assert command.endswith("pytest") and "python3 -m venv .venv" in command
    assert "download.pytorch.org/whl/cpu" in command  # the CPU build of torch, also off this machine
    assert "Run the tests:" in (ROOT / ".ci" / "run").read_text()
