"""The ppo-details suites change one implementation detail at a time, and every claim of the two
papers they are built for has both its methods on some task of them."""

import json

import pytest

from bench import claims
from bench.suite import find_suite, load_suite
from bench.suite.grid import expand

SUITES = ["ppo-details", "ppo-details-continuous"]
PAPERS = ("Andrychowicz et al. 2021", "Engstrom et al. 2020")


@pytest.mark.parametrize("name", SUITES)
def test_each_variant_changes_one_setting_of_the_shipped_defaults(name):
    specs = [s for s in expand(load_suite(find_suite(name))) if s.seed == 0]
    by_task: dict[str, dict[str, dict]] = {}
    for s in specs:
        by_task.setdefault(s.task, {})[s.label] = json.loads(s.config_json)
    for task, labels in by_task.items():
        base = labels.pop("ppo")
        assert len(labels) == 8, (task, sorted(labels))  # eight details on every task
        for label, cfg in labels.items():
            changed = {k for k in {*cfg, *base} if cfg.get(k, "default") != base.get(k, "default")}
            assert len(changed) == 1, (task, label, changed)
            (key,) = changed
            # "+x" turns on what the task's defaults leave off; "-x" turns off what they have on
            if isinstance(cfg.get(key), bool):
                assert cfg[key] is label.startswith("ppo+"), (task, label)


def test_every_detail_claim_can_be_decided_on_the_suites():
    methods_by_task: dict[str, set] = {}
    for name in SUITES:
        for s in expand(load_suite(find_suite(name))):
            methods_by_task.setdefault(s.task, set()).add(s.label)
    detail = [c for c in claims.load() if claims.short_paper(c.paper) in PAPERS]
    assert len(detail) == 12
    for claim in detail:
        tasks = [t for t, m in methods_by_task.items() if claim.methods() <= m]
        assert tasks, f"{claim.id} has no task with both {claim.a} and {claim.b}"
    # each detail is decided on all four tasks, by one claim or by its default-on twin
    for stem in ("obs-norm-helps", "reward-scaling-helps", "lr-annealing-helps"):
        twins = [c for c in detail if c.id.endswith(stem) or c.id.endswith(stem + "-default-on")]
        covered = {t for c in twins for t, m in methods_by_task.items() if c.methods() <= m}
        assert covered == set(methods_by_task), (stem, covered)


def test_the_lm_detail_suite_changes_one_setting_of_rlhf_ppo_at_each_kl_coefficient():
    specs = [s for s in expand(load_suite(find_suite("lm-sentiment-ppo-details"))) if s.seed == 0]
    cfgs = {s.label: json.loads(s.config_json) for s in specs if s.algo == "rlhf-ppo"}
    for coef in (0.02, 0.1, 0.5):
        base = cfgs[f"rlhf-ppo[kl_coef={coef}]"]
        variants = {
            k: v
            for k, v in cfgs.items()
            if k.endswith(f"[kl_coef={coef}]") and k != f"rlhf-ppo[kl_coef={coef}]"
        }
        assert len(variants) == 5
        for label, cfg in variants.items():
            changed = {k for k in {*cfg, *base} if cfg.get(k, "default") != base.get(k, "default")}
            assert len(changed) == 1, (label, changed)
    # it shares lm-sentiment's pi_SFT, preference data and reward models (the same lm: section)
    (mine,) = {s.alignment_json for s in specs if s.algo == "rlhf-ppo"}
    (theirs,) = {
        s.alignment_json for s in expand(load_suite(find_suite("lm-sentiment"))) if s.algo == "rlhf-ppo"
    }
    assert mine == theirs
    xu = [c for c in claims.load() if claims.short_paper(c.paper) == "Xu et al. 2024"]
    labels = {s.label.split("[")[0] for s in specs}
    assert len(xu) == 3 and all(c.methods() <= labels for c in xu)
