"""Online DPO on control (``online-dpo``): pairs cut from the current policy's own episodes as the
offline dataset is cut from π_ref's, labelled by the true return or by the reward model, the DPO /
IPO loss to π_ref; the values checked by hand."""

import math
from types import SimpleNamespace

import torch

from bench.algos import online_dpo_control as od
from bench.algos import rollout, segments
from bench.artifacts import SegmentPreferences
from bench.control.policies import ActorCritic, ObsNormalizer, PolicyAct
from bench.control.tasks import get_task
from bench.evaluation import Evaluator
from bench.pipeline.control import _build_preferences
from bench.pipeline.recipes import PreferenceRecipe
from bench.recorder import Recorder

TASK = get_task("CartPole-v1")
RECIPE = PreferenceRecipe(n_pairs=40, segment_length=10, episodes=4, label_temperature=0.0)


def _context(seed: int = 0):
    torch.manual_seed(seed)
    model = ActorCritic(4, 2, False, (16,), "tanh", False).requires_grad_(False)
    ref = PolicyAct(model, ObsNormalizer((4,), False), torch.Generator().manual_seed(seed))
    data = _build_preferences(TASK, ref, RECIPE, seed)
    prefs = SegmentPreferences(*(data[k] for k in ("obs", "actions", "mask", "returns", "winner", "loser",
                                                    "n_train")))  # fmt: skip
    return SimpleNamespace(
        preference_recipe=RECIPE, preferences=lambda: prefs, reference=lambda: ref, seed=seed
    )


def _run(monkeypatch, updates: int, tied: int = 0, **params):
    """Runs online-dpo, recording every sampled batch (the policy that sampled it, its pairs); the
    first ``tied`` batches come out all ties (no pairs)."""
    batches = []
    real_episodes, real_pairs = rollout.reference_episodes, segments.segment_pairs

    def episodes(task, policy, n, seed):
        eps = real_episodes(task, policy, n, seed)
        batches.append({"model": policy.model, "steps": sum(len(e[2]) for e in eps)})
        return eps

    def pairs(*args, **kw):
        out = real_pairs(*args, **kw) if len(batches) > tied else None
        batches[-1]["pairs"] = out
        return out

    monkeypatch.setattr(od, "reference_episodes", episodes)
    monkeypatch.setattr(od, "segment_pairs", pairs)
    ctx = _context()
    cfg = od.OnlineDPOConfig(**{"eval_points": updates, "batch_size": 16, "pairs_per_batch": 32,
                                "episodes_per_batch": 2, **params})  # fmt: skip
    rec = Recorder()
    od.train_online_dpo(TASK, cfg, updates, 0, Evaluator(TASK, rec, 0, 1, 2, [1.0]), rec, ctx)
    curves = {}
    for step, _, metric, value in rec.curves:
        curves.setdefault(metric, []).append((step, value))
    return batches, curves, rec, ctx


def test_online_dpo_samples_from_the_policy_it_trains_and_its_first_loss_is_log_2(monkeypatch):
    batches, curves, rec, ctx = _run(monkeypatch, updates=6, updates_per_batch=2)
    # a new batch every 2 updates, sampled by the policy being trained (not π_ref)
    assert len(batches) == 3
    assert all(b["model"] is batches[0]["model"] is not ctx.reference().model for b in batches)
    # the gold judge with τ = 0: every winner has the higher true segment return
    for b in batches:
        p = b["pairs"]
        assert (p.returns[p.winner] > p.returns[p.loser]).all() and len(p.winner) == 32
    # at the first update π = π_ref, so every log-ratio is 0 and DPO's loss is −log σ(0) = log 2
    assert curves["train/loss"][0] == (1, float(torch.tensor(math.log(2))))  # in float32
    assert curves["train/pref_accuracy"][0] == (1, 0.0)  # margins all 0: none above
    # the environment steps sampled so far, after each update
    seen = [sum(b["steps"] for b in batches[: (u + 1) // 2 + (u + 1) % 2]) for u in range(6)]
    assert [v for _, v in curves["train/env_steps"]] == seen
    # the loss moves the policy: later losses differ, held-out accuracy on the offline pairs recorded
    assert curves["train/loss"][-1][1] != curves["train/loss"][0][1]
    assert any(e[4] == "eval/pref_accuracy" for e in rec.evals)


def test_ipo_first_loss_and_the_reward_model_judge_by_hand(monkeypatch):
    """IPO at π = π_ref: (0 − 1/(2β))². A stand-in reward model of −1 per step: the judge prefers
    the shorter segment (CartPole: where the pole fell sooner), against the true return."""
    beta = 0.25

    class MinusOne(torch.nn.Module):
        def forward(self, obs, actions):
            return -torch.ones(obs.shape[:-1])

    info = {"accuracy": 0.5, "gold_accuracy": 0.5, "train_accuracy": 0.5, "heldout_pairs": 8}
    monkeypatch.setattr(od, "load_reward_model", lambda ctx, n, cfg: (MinusOne(), info))
    batches, curves, rec, _ = _run(monkeypatch, updates=2, judge="rm", loss="ipo", beta=beta,
                                   updates_per_batch=1, episodes_per_batch=4)  # fmt: skip
    assert curves["train/loss"][0] == (1, (1 / (2 * beta)) ** 2)
    for b in batches:
        p = b["pairs"]
        assert (p.mask[p.winner].sum(1) < p.mask[p.loser].sum(1)).all()
    assert ("rm/accuracy", 0.5) in [(e[4], e[5]) for e in rec.evals]


def test_online_dpo_records_are_the_same_for_the_same_seed(monkeypatch):
    a = _run(monkeypatch, updates=4, updates_per_batch=2)[2]
    b = _run(monkeypatch, updates=4, updates_per_batch=2)[2]
    strip = lambda rec: ([(c[0], c[2], c[3]) for c in rec.curves if not c[2].startswith("perf/")],  # noqa: E731
                         [(e[0], e[3], e[4], e[5], e[6]) for e in rec.evals])  # fmt: skip
    assert strip(a) == strip(b) and len(a.evals) > 0


def test_a_batch_of_ties_skips_its_updates_and_the_run_goes_on(monkeypatch):
    """CartPole's segments all tie once the pole stays up: such a batch has no preference, so its
    updates take no optimizer step; the run samples the next batch and finishes."""
    batches, curves, rec, _ = _run(monkeypatch, updates=6, tied=1, updates_per_batch=2)
    assert len(batches) == 3 and batches[0]["pairs"] is None
    # updates 1 and 2 skipped: update 3 is the first, from π = π_ref, so DPO's loss is log 2
    assert [s for s, _ in curves["train/loss"]] == [3, 4, 5, 6]
    assert curves["train/loss"][0] == (3, float(torch.tensor(math.log(2))))
    assert curves["train/tied_batches"][0] == (3, 1.0)
    assert any(e[4] == "eval/return" and e[0] == 6 for e in rec.evals)  # the final evaluation ran


def test_dpo_on_online_data_trains_offline_on_exactly_the_pairs_the_online_run_sampled(monkeypatch):
    """Tang et al.'s coverage test: the online run of the same seed and settings is replayed (not
    recorded), its pairs become the dataset, and offline DPO trains on them from π_ref."""
    online, _, _, _ = _run(monkeypatch, updates=6, updates_per_batch=2)
    replayed, datasets = [], []
    real_episodes, real_pairs = rollout.reference_episodes, segments.segment_pairs
    monkeypatch.setattr(od, "reference_episodes", real_episodes)

    def pairs(*args, **kw):
        out = real_pairs(*args, **kw)
        replayed.append(out)
        return out

    monkeypatch.setattr(od, "segment_pairs", pairs)
    real_dataset = od.online_dataset

    def dataset(sampled, heldout_of):
        datasets.append(real_dataset(sampled, heldout_of))
        return datasets[-1]

    monkeypatch.setattr(od, "online_dataset", dataset)
    ctx = _context()
    cfg = od.OnlineDataDPOConfig(eval_points=6, batch_size=16, pairs_per_batch=32, episodes_per_batch=2,
                                 updates_per_batch=2)  # fmt: skip
    rec = Recorder()
    od.train_dpo_on_online_data(TASK, cfg, 6, 0, Evaluator(TASK, rec, 0, 1, 2, [1.0]), rec, ctx)
    # the same three batches as the online run's, pair for pair
    assert len(replayed) == len(online) == 3
    for a, b in zip(replayed, (b["pairs"] for b in online), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a[:6], b[:6], strict=True))
    # one dataset: their 96 pairs for training, then the offline dataset's held-out pairs
    (data,) = datasets
    offline = ctx.preferences()
    _, heldout = offline.split()
    assert data.n_train == 96 and len(data.winner) == 96 + len(offline.winner[heldout])
    for k, p in enumerate(replayed):  # pair i of batch k is the dataset's pair 32k + i, segment for segment
        for i in (0, 31):
            assert torch.equal(data.obs[data.winner[32 * k + i]], p.obs[p.winner[i]])
            assert torch.equal(data.actions[data.loser[32 * k + i]], p.actions[p.loser[i]])
    hw = offline.winner[heldout][0]
    assert torch.equal(data.obs[data.winner[96]], offline.obs[hw])
    # only the offline run is recorded: from π = π_ref, so its first DPO loss is log 2
    losses = [(s, v) for s, _, m, v in rec.curves if m == "train/loss"]
    assert losses[0] == (1, float(torch.tensor(math.log(2)))) and len(losses) == 6
    assert not any(m == "train/env_steps" for _, _, m, _ in rec.curves)  # no online sampling recorded
    evals = {e[4]: e[5] for e in rec.evals if e[0] == 0}
    assert evals["data/n_pairs"] == 96 and evals["data/online_batches"] == 3
    held = [e for e in rec.evals if e[4] == "eval/pref_accuracy"]
    assert held and all(e[6] == len(offline.winner[heldout]) for e in held)
