"""The chosen sweep point is reported without selection bias: each seed's value is taken at the
point chosen on the other seeds (``results.crossfit_choice``). Checked by simulation: when every
sweep point is equally good, the reported mean is unbiased, while choosing and reporting on the
same seeds is biased upward."""

import numpy as np
import pandas as pd
import pytest

from bench import results as R


def _simulate(points: int, seeds: int, sims: int, rng) -> tuple[float, float]:
    """Mean reported score of the chosen point (truth 0 for every point): cross-fitted and
    in-sample."""
    crossfit, insample = [], []
    for _ in range(sims):
        # a seed effect shared by every point (the seed's reference policy and data) plus noise
        # of each (point, seed) run
        scores = rng.normal(size=(1, seeds)) + rng.normal(size=(points, seeds))
        table = pd.DataFrame(scores, index=[f"m[x={i}]" for i in range(points)], columns=range(seeds))
        choice = R.crossfit_choice(table)
        crossfit.append(np.mean([table.at[label, s] for s, label in choice.items()]))
        insample.append(table.mean(axis=1).max())
    return float(np.mean(crossfit)), float(np.mean(insample))


@pytest.mark.slow  # a simulation of the null: 10-30 s
@pytest.mark.parametrize("points,seeds", [(4, 3), (8, 5)])
def test_crossfit_choice_is_unbiased_under_the_null(points, seeds):
    rng = np.random.default_rng(points * 10 + seeds)
    sims = 3000
    crossfit, insample = _simulate(points, seeds, sims, rng)
    se = np.sqrt(2 / seeds) / np.sqrt(sims)  # sd of one replicate's reported mean is below sqrt(2/seeds)
    assert abs(crossfit) < 4 * se, crossfit
    assert insample > 0.3  # the in-sample maximum of 4-8 equal points: biased well above 0


def test_crossfit_choice_by_hand():
    table = pd.DataFrame(
        {0: [1.0, 5.0, 0.0], 1: [2.0, 0.0, 0.0], 2: [3.0, 0.0, np.nan]}, index=["a", "b", "c"]
    )
    # seed 0 chooses on seeds 1, 2: a (2.5) over b (0) and c (0); seed 1 on seeds 0, 2: b (2.5) over a (2);
    # seed 2 on seeds 0, 1: a (1.5) over b (2.5)? no: b's mean is 2.5, a's 1.5 -> b (c: seed 2 has no run)
    assert R.crossfit_choice(table) == {0: "a", 1: "b", 2: "b"}
    one = pd.DataFrame({7: [1.0, 2.0]}, index=["a", "b"])
    assert R.crossfit_choice(one) == {7: "b"}  # one seed: in-sample
