"""Online DPO (``bench.algos.online_dpo``): which sampled completion is chosen, by hand; its loss and
gradient equal TRL's ``OnlineDPOTrainer.training_step`` on identical completions and scores (TRL's
generation replaced by given completions, its reward function returning given scores)."""

import numpy as np
import pytest
import torch

from bench.algos.online_dpo import LMOnlineDPOConfig, choose, online_dpo_loss
from tests.unit.test_relatives import tiny_lm  # noqa: F401  (the fixture)


def test_the_first_completion_is_chosen_unless_the_second_scores_higher():
    # prompt i's completions are i and B + i; ties go to the first (TRL's rule)
    chosen, rejected = choose(np.array([1.0, 2.0, 3.0, 3.0, 1.0, 5.0, 2.0, 2.0]))
    assert chosen.tolist() == [0, 5, 2, 3] and rejected.tolist() == [4, 1, 6, 7]


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_online_dpo_equals_trl_online_dpo_trainer(tiny_lm, tmp_path, loss):  # noqa: F811
    pytest.importorskip("trl.experimental.online_dpo")
    from bench.algos.trl_online_dpo import TRLOnlineDPOConfig, online_dpo_args, online_dpo_trainer
    from bench.lm.models import load_lm

    tok, path = tiny_lm
    pad, eos = tok.pad_token_id, tok.eos_token_id
    texts = ["I liked the", "The film was"]
    prompt_ids = tok(texts, add_special_tokens=False)["input_ids"]
    assert len(prompt_ids[0]) == len(prompt_ids[1])  # no left padding (TRL passes no position ids)
    g = torch.Generator().manual_seed(0)
    vocab = [t for t in range(20, 200) if t not in (pad, eos)]
    draw = lambda n: [vocab[int(i)] for i in torch.randint(len(vocab), (n,), generator=g)]  # noqa: E731
    completions = [draw(3) + [eos], draw(5), draw(2) + [eos], draw(4) + [eos]]  # prompt i: i and 2 + i
    scores = [0.3, 0.7, 0.5, 0.1]  # prompt 0: the second completion is chosen; prompt 1: the first

    cfg = TRLOnlineDPOConfig(beta=0.2, loss=loss, prompts_per_batch=2)
    args = online_dpo_args(cfg, steps=1, seed=0, out_dir=str(tmp_path), max_new_tokens=5, use_cpu=True)
    assert (args.beta, args.loss_type, args.top_k, args.top_p) == (
        0.2,
        {"dpo": "sigmoid", "ipo": "ipo"}[loss],
        0,
        1.0,
    )
    side = tok.padding_side
    try:
        trainer = online_dpo_trainer(load_lm(path), load_lm(path), tok, texts, args,
                                     lambda prompts, completions, **_: list(scores))  # fmt: skip
    finally:
        tok.padding_side = side
    width = max(map(len, completions))
    ids = torch.full((4, width), pad, dtype=torch.long)
    mask = torch.zeros((4, width), dtype=torch.long)
    for i, c in enumerate(completions):
        ids[i, : len(c)], mask[i, : len(c)] = torch.tensor(c), 1
    p = torch.tensor(prompt_ids).repeat(2, 1)
    trainer._generate = lambda model, prompts, images=None: (p, torch.ones_like(p), ids, mask, None)
    trainer.model.zero_grad()
    theirs = trainer.training_step(trainer.model, {"prompt": texts})

    policy, ref = load_lm(path).eval(), load_lm(path).eval()
    ours, h = online_dpo_loss(policy, ref, prompt_ids, completions, np.array(scores), cfg, pad)
    ours.backward()
    assert float(ours.detach()) == pytest.approx(float(theirs), rel=1e-6) and float(ours.detach()) > 0
    pairs = [(a.grad, b.grad) for a, b in zip(policy.parameters(), trainer.model.parameters(), strict=True)]
    assert len(pairs) == 16 and all(a is not None and b is not None for a, b in pairs)
    # equal to float32 rounding (the two sum the same terms in another order)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in pairs)
    assert max(float(a.abs().max()) for a, _ in pairs) > 1e-3  # a gradient, not zeros
    # by hand: h from the sequence log-probs of the chosen (2, 1) and rejected (0, 3) completions
    from bench.algos.lm import completion_logps

    with torch.no_grad():
        lp = completion_logps(policy, prompt_ids + prompt_ids, completions, pad)
        rl = completion_logps(ref, prompt_ids + prompt_ids, completions, pad)
    ratio = lp - rl
    expected = torch.stack([ratio[2] - ratio[0], ratio[1] - ratio[3]])
    assert torch.allclose(h, expected, atol=1e-6)


def test_config_defaults_match_the_trl_wrapper():
    from bench.algos.trl_online_dpo import TRLOnlineDPOConfig

    assert TRLOnlineDPOConfig().model_dump() == LMOnlineDPOConfig().model_dump()
