"""RLHF-PPO and PG-on-language pieces against hand-computed values: per-token rewards, GAE over a
masked response, the clipped value loss on response tokens, the RLOO baseline, the two-way
bootstrap of win rates."""

import numpy as np
import pytest
import torch

from bench import stats
from bench.algos import losses
from bench.algos.rlhf_ppo import (
    _tokens,
    masked_gae,
    masked_mean,
    masked_whiten,
    missing_eos,
    mix_into,
    rloo_baseline,
    token_rewards,
)

MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_token_rewards_kl_on_every_token_score_on_the_last_padding_zero():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -7.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -1.0, -1.0]])
    scores = torch.tensor([2.0, -10.0])
    r = token_rewards(logp, ref, MASK, scores, kl_coef=0.1, clip_reward=5.0)
    # row 0: -0.1 * (0.5, 0, -1) and +2 on token 2; row 1: -0.1 * (1, 0), clip(-10) = -5 on token 1
    expected = torch.tensor([[-0.05, 0.0, 0.1 + 2.0], [-0.1, -5.0, 0.0]])
    torch.testing.assert_close(r, expected)


def test_gae_over_a_masked_response_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 0.5, 0.5], [1.0, 1.0, 9.0]])  # 9 sits on padding: ignored
    adv, ret = masked_gae(rewards, values, MASK, gamma=1.0, lam=0.5)
    # row 0: deltas (0, 0, 0.5) -> A = (0.125, 0.25, 0.5); row 1: deltas (0, 1) -> A = (0.5, 1)
    torch.testing.assert_close(adv, torch.tensor([[0.125, 0.25, 0.5], [0.5, 1.0, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[0.625, 0.75, 1.0], [1.5, 2.0, 0.0]]))


def test_gae_discount_and_no_bootstrap_past_the_last_token():
    rewards = torch.tensor([[1.0, 1.0]])
    values = torch.tensor([[0.0, 0.0]])
    adv, _ = masked_gae(rewards, values, torch.ones(1, 2), gamma=0.5, lam=1.0)
    torch.testing.assert_close(adv, torch.tensor([[1.5, 1.0]]))  # 1 + 0.5 * 1, then 1


def test_clipped_value_loss_on_response_tokens():
    values = torch.tensor([[1.0, 0.0, 5.0]])
    old = torch.tensor([[0.5, 0.5, 0.0]])
    returns = torch.tensor([[2.0, 0.0, 0.0]])
    keep = torch.tensor([[True, True, False]])  # the third entry is padding
    idx = torch.tensor([0])
    v = values[keep]
    loss = losses.value_loss(v, _tokens(old, idx, keep, v), _tokens(returns, idx, keep, v), 0.2)
    # token 0: max((1-2)^2, (0.7-2)^2) = 1.69; token 1: max(0, (0.3-0)^2) = 0.09
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.09) / 2)


def test_masked_mean_and_whitening_ignore_padding():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]])
    assert masked_mean(x, MASK).item() == pytest.approx(3.0)
    w = masked_whiten(x, MASK)
    real = w[MASK.bool()]
    assert real.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert real.pow(2).mean().item() == pytest.approx(1.0, abs=1e-5)
    assert w[1, 2].item() == 0.0


def test_whitening_rewards_keeps_their_mean():
    """TRL's whiten_rewards (shift_mean=False): the real tokens' std becomes 1, their mean stays."""
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]])
    w = masked_whiten(x, MASK, shift_mean=False)
    real = w[MASK.bool()]
    assert real.mean().item() == pytest.approx(3.0, abs=1e-6)
    assert (real - 3.0).pow(2).mean().item() == pytest.approx(1.0, abs=1e-5)
    # 1, 2, 3, 4, 5: mean 3, population std sqrt(2) -> 3 + (x - 3) / sqrt(2)
    assert w[0, 0].item() == pytest.approx(3 - 2 / 2**0.5, abs=1e-5) and w[1, 2].item() == 0.0


def test_missing_eos_marks_completions_cut_at_the_length_limit():
    eos = 2
    got = missing_eos([[5, 7, eos], [5, 6], [], [eos]], eos)
    assert got.tolist() == [False, True, True, False]


def test_an_ema_reference_moves_alpha_of_the_way_to_the_actor():
    ref, actor = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        ref.weight.fill_(1.0), ref.bias.fill_(-1.0), actor.weight.fill_(3.0), actor.bias.fill_(1.0)
    mix_into(ref, actor, 0.25)
    assert ref.weight.tolist() == [[1.5, 1.5]] and ref.bias.tolist() == [-0.5]
    assert actor.weight.tolist() == [[3.0, 3.0]]  # the actor is untouched


def test_rloo_baseline_is_the_mean_of_the_other_samples():
    r = torch.tensor([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 0.0, 0.0]])
    b = rloo_baseline(r)
    torch.testing.assert_close(b, torch.tensor([[11 / 3, 10 / 3, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close((r - b)[0], torch.tensor([-8 / 3, -4 / 3, 0.0, 4.0]))
    with pytest.raises(ValueError, match="k >= 2"):
        rloo_baseline(torch.ones(2, 1))


def test_two_way_interval_covers_prompt_variation():
    # two seeds that agree exactly: a seed-only interval would have zero width
    m = np.array([[1.0, 0.0, 1.0, 0.5] * 8, [1.0, 0.0, 1.0, 0.5] * 8])
    mean, lo, hi = stats.two_way_interval(m)
    assert mean == pytest.approx(0.625)
    assert lo < 0.6 and hi > 0.65
    const = stats.two_way_interval(np.full((3, 5), 0.5))
    assert tuple(const) == pytest.approx((0.5, 0.5, 0.5))
