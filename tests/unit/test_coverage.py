"""Coverage of every t-interval kind the reports and the gate use, by simulation (design §7):
a nominal 95% interval must cover the truth at least 93% of the time at 3, 5 and 10 seeds, on
normal data and on skewed data (gamma, shape 4: skewness 1). The bootstrap kinds' coverage is
measured too (slow) and printed in the reports guide, where it falls short at 3 seeds."""

import re
from pathlib import Path

import pytest

from bench import coverage

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", coverage.T_KINDS)
@pytest.mark.parametrize("dist", coverage.TESTED)
def test_t_intervals_cover_at_least_93_percent(kind, dist):
    got = {n: coverage.coverage(kind, dist, n, sims=20000) for n in coverage.SEEDS}
    assert min(got.values()) >= 0.93, got


def test_the_old_percentile_bootstrap_would_fail_the_mark():
    """The check can fail: the independent-resampling percentile bootstrap of a difference that
    the reports used before covers well under 93% at 3 seeds."""
    import numpy as np

    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        a, b = rng.normal(size=3), rng.normal(size=3)
        ma = a[rng.integers(0, 3, (500, 3))].mean(1)
        mb = b[rng.integers(0, 3, (500, 3))].mean(1)
        lo, hi = np.percentile(ma - mb, [2.5, 97.5])
        hits += lo <= 0 <= hi
    assert hits / 2000 < 0.85


def test_coverage_is_deterministic():
    assert coverage.coverage("t", "skewed", 3, sims=500) == coverage.coverage("t", "skewed", 3, sims=500)


@pytest.mark.slow
def test_reports_guide_prints_the_measured_coverage_table():
    """The table in docs/guides/reports.md is what ``python -m bench.coverage`` prints."""
    text = (ROOT / "docs/guides/reports.md").read_text()
    match = re.search(r"<!-- coverage: begin -->\n(.*?)\n<!-- coverage: end -->", text, re.S)
    assert match, "docs/guides/reports.md has no coverage table"
    assert match.group(1).strip() == coverage.markdown(coverage.coverage_table()).strip()
