"""DPO's relatives without a paired log-ratio: SimPO and ORPO (reference-free) and KTO (unpaired),
by hand and against TRL's own loss code on identical log-probabilities."""

import math
from types import SimpleNamespace

import pytest
import torch

from bench.algos import losses

AVG_W = torch.tensor([-0.8, -1.5, -0.2, -3.0])
AVG_L = torch.tensor([-1.1, -1.2, -0.9, -2.5])


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_simpo_by_hand():
    beta, gamma = 2.0, 0.5
    expected = -sum(
        math.log(_sigmoid(beta * (w - lo) - gamma))
        for w, lo in zip(AVG_W.tolist(), AVG_L.tolist(), strict=True)
    )
    assert float(losses.simpo_loss(AVG_W, AVG_L, beta, gamma)) == pytest.approx(expected / 4, rel=1e-6)


def test_orpo_by_hand():
    # one pair: P_w = e^-0.5, P_l = e^-1; odds = P / (1 - P)
    pw, pl = math.exp(-0.5), math.exp(-1.0)
    log_or = math.log(pw / (1 - pw)) - math.log(pl / (1 - pl))
    ratio = float(losses.orpo_log_odds_ratio(torch.tensor([-0.5]), torch.tensor([-1.0])))
    assert ratio == pytest.approx(math.log(_sigmoid(log_or)), rel=1e-6)
    loss = losses.orpo_loss(torch.tensor([-0.5]), torch.tensor([-1.0]), torch.tensor(0.7), lam=0.1)
    assert float(loss) == pytest.approx(0.7 - 0.1 * math.log(_sigmoid(log_or)), rel=1e-6)
    # log(1 - e^x) stays finite and accurate on both sides of its branch point
    x = torch.tensor([-1e-8, -0.5, -0.7, -30.0], dtype=torch.float64)
    expected = [math.log(-math.expm1(v)) for v in x.tolist()]
    assert losses.log1mexp(x).tolist() == pytest.approx(expected, rel=1e-12)


def test_kto_by_hand():
    beta = 0.5
    ratio_w, ratio_l = torch.tensor([0.4, -0.2]), torch.tensor([-0.6, 0.1, 0.3])
    kl_ratio = torch.tensor([0.3, -0.1, 0.4])  # z = mean = 0.2
    z = 0.2
    desirable = [1 - _sigmoid(beta * (r - z)) for r in ratio_w.tolist()]
    undesirable = [1 - _sigmoid(beta * (z - r)) for r in ratio_l.tolist()]
    expected = (sum(desirable) * 1.0 + sum(undesirable) * 1.33) / 5
    got = losses.kto_loss(ratio_w, ratio_l, kl_ratio, beta, desirable_weight=1.0, undesirable_weight=1.33)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # the reference point is never negative, and carries no gradient
    kl = torch.tensor([-1.0, -2.0], requires_grad=True)
    w = torch.tensor([0.1], requires_grad=True)
    losses.kto_loss(w, torch.tensor([0.0]), kl, beta).backward()
    assert kl.grad is None and w.grad is not None
    no_z = losses.kto_loss(torch.tensor([0.1]), torch.tensor([0.0]), torch.tensor([0.0]), beta)
    assert float(
        losses.kto_loss(torch.tensor([0.1]), torch.tensor([0.0]), torch.tensor([-1.0, -2.0]), beta)
    ) == float(no_z)


# -- against TRL's code -------------------------------------------------------------------------


def _trainer_self(**attrs):
    """The attributes TRL's loss methods read from their trainer."""
    return SimpleNamespace(accelerator=SimpleNamespace(device=torch.device("cpu")), **attrs)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A tokenizer and a tiny GPT-2 saved to a local folder (TRL's GRPOTrainer loads its
    reference model from the policy's checkpoint)."""
    from bench.lm.corpus import generate_reviews
    from bench.lm.models import ModelRecipe, build_tiny_lm
    from bench.lm.tokenizer import train_tokenizer

    tok = train_tokenizer([r.text for r in generate_reviews(300, seed=3)], vocab_size=320)
    path = tmp_path_factory.mktemp("tiny-lm")
    model = build_tiny_lm(ModelRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64), tok, seed=0)
    model.save_pretrained(path)
    return tok, str(path)


def test_simpo_equals_trl_cpo_trainer_simpo_loss():
    cpo = pytest.importorskip("trl.experimental.cpo.cpo_trainer")
    beta, gamma = 2.0, 0.5
    me = _trainer_self(beta=beta, alpha=0.0, loss_type="simpo", simpo_gamma=gamma, label_smoothing=0.0)
    trl_losses = cpo.CPOTrainer.cpo_loss(me, AVG_W, AVG_L)[0]
    ours = losses.simpo_loss(AVG_W, AVG_L, beta, gamma)
    assert float((ours - trl_losses.mean()).abs()) < 1e-7


def test_orpo_equals_trl_orpo_trainer_odds_ratio_loss():
    orpo = pytest.importorskip("trl.experimental.orpo.orpo_trainer")
    lam, nll = 0.1, torch.tensor(1.7)
    trl_losses = orpo.ORPOTrainer.odds_ratio_loss(_trainer_self(beta=lam), AVG_W, AVG_L)[0]
    # ORPOTrainer.get_batch_loss_metrics, on a given NLL term (TRL's own NLL also covers the prompt
    # tokens: see the next test)
    trl_loss = nll - trl_losses.mean()
    ours = losses.orpo_loss(AVG_W, AVG_L, nll, lam)
    assert float((ours - trl_loss).abs()) < 1e-7


def test_orpo_is_the_papers_form_trl_orpo_trainer_adds_the_prompt_to_the_nll(tiny_lm, tmp_path):
    """TRL's ORPOTrainer (trl.experimental.orpo) run on a tiny model and a batch of three pairs
    with 1–6-token prompts, against lm-dpo's ``loss: orpo`` on the same token sequences: the
    odds-ratio terms are equal, and so are the NLL terms once TRL's labels mask the prompt (ours:
    the chosen response's tokens, as the ORPO paper writes it). TRL's own NLL averages over the
    prompt and response tokens; it exceeds ours by exactly the prompt tokens' share, computed here
    by hand from the model's logits."""
    pytest.importorskip("trl.experimental.orpo")
    import torch.nn.functional as F
    from datasets import Dataset
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    from bench.algos.lm import LMDPOConfig, completion_lengths, encode_pair, pair_logps, preference_loss
    from bench.lm.models import load_lm

    tok, path = tiny_lm
    policy = load_lm(path).eval()
    lam = 0.1
    texts = (["I", "It was", "The acting was"],
             [" loved it.", " great fun, really.", " excellent."],
             [" hated it.", " dull.", " just forced, especially in the middle hour."])  # fmt: skip
    args = ORPOConfig(output_dir=str(tmp_path), beta=lam, max_length=64, per_device_train_batch_size=3,
                      report_to="none", use_cpu=True, disable_dropout=True, remove_unused_columns=False,
                      dataloader_num_workers=0, bf16=False, fp16=False)  # fmt: skip
    data = Dataset.from_dict({"prompt": texts[0], "chosen": texts[1], "rejected": texts[2]})
    trainer = ORPOTrainer(model=policy, args=args, train_dataset=data, processing_class=tok)
    rows = [trainer.train_dataset[i] for i in range(3)]
    batch = trainer.data_collator(rows)

    # the same token sequences: TRL's tokenisation is lm-dpo's with a bos (= eos here) before the prompt
    pairs = []
    for row, text in zip(rows, zip(*texts, strict=True), strict=True):
        p, c, r = encode_pair(tok, *text)
        assert row["prompt_input_ids"] == [tok.bos_token_id, *p]
        assert row["chosen_input_ids"] == row["prompt_input_ids"] + c
        assert row["rejected_input_ids"] == row["prompt_input_ids"] + r
        assert row["chosen_labels"] == [-100] * len(row["prompt_input_ids"]) + c
        pairs.append((row["prompt_input_ids"], c, r))
    assert [len(p) - 1 for p, _, _ in pairs] == [1, 3, 6]  # prompt tokens after the bos

    with torch.no_grad():
        trl_w, trl_l, _, _, trl_nll = trainer.concatenated_forward(policy, batch)
        trl_or = trainer.odds_ratio_loss(trl_w, trl_l)[0]  # λ log σ(log odds ratio), per pair
        trl_loss = trainer.compute_loss(policy, batch)  # trl_nll − mean(trl_or)

        logp_w, logp_l = pair_logps(policy, pairs, tok.pad_token_id)
        len_w, len_l = completion_lengths(pairs)
        avg_w, avg_l = logp_w / len_w, logp_l / len_l
        zeros = torch.zeros_like(logp_w)  # ORPO is reference-free
        ours = preference_loss(LMDPOConfig(loss="orpo", beta=lam), logp_w, logp_l, zeros, zeros, pairs)
        our_nll = -logp_w.sum() / len_w.sum()

        # the odds-ratio term: equal
        torch.testing.assert_close(avg_w, trl_w, rtol=0, atol=1e-5)
        torch.testing.assert_close(avg_l, trl_l, rtol=0, atol=1e-5)
        torch.testing.assert_close(lam * losses.orpo_log_odds_ratio(avg_w, avg_l), trl_or, rtol=0, atol=1e-6)
        assert float(ours) == pytest.approx(float(our_nll - trl_or.mean()), abs=1e-6)

        # the NLL over the response only: TRL's token log-probs with its prompt-masked labels
        logits = policy(batch["chosen_input_ids"], attention_mask=batch["chosen_attention_mask"]).logits
        labels = batch["chosen_labels"]
        response_logp = ORPOTrainer.get_batch_logps(logits, labels, average_log_prob=False)
        n_response = int((labels[:, 1:] != -100).sum())
        assert n_response == int(len_w.sum())
        assert float(-response_logp.sum() / n_response) == pytest.approx(float(our_nll), abs=1e-6)

        # TRL's NLL: every token after the first, prompt and response, by hand
        logprobs = F.log_softmax(logits[:, :-1].float(), dim=-1)
        prompt_nll, n_prompt = 0.0, 0
        for i, (p, _, _) in enumerate(pairs):
            targets = torch.tensor(p[1:])
            prompt_nll -= float(logprobs[i, : len(p) - 1].gather(-1, targets[:, None]).sum())
            n_prompt += len(p) - 1
        response_nll = -float(logp_w.sum())
        expected = (response_nll + prompt_nll) / (n_response + n_prompt)
        assert float(trl_nll) == pytest.approx(expected, abs=1e-5)

        # the two losses differ by the NLL terms only, by the prompt tokens' share of TRL's mean
        gap = expected - response_nll / n_response
        assert float(trl_loss - ours) == pytest.approx(gap, abs=1e-5)
        assert abs(gap) > 1e-3


def test_kto_equals_trl_kto_trainer_on_identical_log_probs():
    """TRL's KTOTrainer._compute_loss (its loss is inline in it) run on a stand-in model that
    returns given per-token log-probabilities: the same loss as ours on the same sequences, and
    the same gradient with respect to the policy's log-probabilities."""
    import types
    from collections import defaultdict

    kto = pytest.importorskip("trl.trainer.kto_trainer")
    B, L = 5, 4
    desirable = torch.tensor([True, False, True, True, False])
    ref = torch.tensor([-3.2, -4.0, -2.5, -5.0, -1.0])
    kl_policy, kl_ref = (
        torch.tensor([-5.0, -4.0, -6.5, -3.0, -2.0]),
        torch.tensor([-5.5, -4.2, -6.0, -3.9, -2.1]),
    )
    ones = torch.ones(B, L, dtype=torch.long)
    batch = dict(input_ids=0 * ones, attention_mask=ones, completion_mask=ones, KL_input_ids=ones,
                 KL_attention_mask=ones, KL_completion_mask=ones, label=desirable, ref_logps=ref,
                 ref_KL_logps=kl_ref)  # fmt: skip

    def run(beta, weights):
        policy = torch.tensor([-3.0, -4.5, -2.0, -6.0, -1.5], requires_grad=True)

        def model(input_ids, **_):  # the sequence log-prob sits on the first completion token
            seq = kl_policy if bool((input_ids == 1).all()) else policy
            per_token = torch.cat([seq[:, None], torch.zeros(B, L - 2)], dim=1)
            return SimpleNamespace(
                log_probs=per_token, entropy=torch.zeros(B, L - 1), mean_logits=torch.zeros(B, L - 1)
            )

        me = SimpleNamespace(
            model=SimpleNamespace(training=True), calculate_KL=True, aux_loss_enabled=False,
            precompute_ref_logps=True, loss_type="kto", beta=beta, desirable_weight=weights[0],
            undesirable_weight=weights[1], _metrics=defaultdict(lambda: defaultdict(list)),
            _total_train_tokens=0, _tp_size=1,
            accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x),
        )  # fmt: skip
        me._compute_kl_logps = types.MethodType(kto.KTOTrainer._compute_kl_logps, me)
        trl_loss = kto.KTOTrainer._compute_loss(me, model, batch, False)
        (trl_grad,) = torch.autograd.grad(trl_loss, policy)
        ratio = policy - ref
        ours = losses.kto_loss(ratio[desirable], ratio[~desirable], kl_policy - kl_ref, beta, *weights)
        (our_grad,) = torch.autograd.grad(ours, policy)
        return float((ours - trl_loss).detach().abs()), float((our_grad - trl_grad).abs().max())

    for beta, weights in [(0.1, (1.0, 1.0)), (2.0, (1.0, 1.33))]:
        loss_diff, grad_diff = run(beta, weights)
        assert loss_diff < 1e-7 and grad_diff < 1e-7


# -- GRPO / Dr. GRPO ------------------------------------------------------------------------------


def test_group_advantages_by_hand_and_with_trl_nanstd():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 6.0], [0.5, 0.5, 0.5, 0.5]])
    # group 0: mean 3, unbiased std sqrt(14/3); group 1: constant -> 0
    std0 = math.sqrt(14 / 3)
    expected = torch.tensor([[-2 / (std0 + 1e-4), -1 / (std0 + 1e-4), 0.0, 3 / (std0 + 1e-4)], [0.0] * 4])
    torch.testing.assert_close(losses.group_advantages(rewards, "group"), expected)
    torch.testing.assert_close(
        losses.group_advantages(rewards, "none"), rewards - rewards.mean(1, keepdim=True)
    )
    utils = pytest.importorskip("trl.trainer.utils")
    torch.testing.assert_close(rewards.std(dim=1), utils.nanstd(rewards, dim=1))


def test_grpo_loss_by_hand():
    logp = torch.tensor([[-1.0, -2.0, 0.0]])
    old = torch.tensor([[-1.5, -1.9, 0.0]])
    ref = torch.tensor([[-1.2, -2.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv, eps, beta = torch.tensor([2.0]), 0.2, 0.1
    per_token = []
    for lp, o, r in [(-1.0, -1.5, -1.2), (-2.0, -1.9, -2.5)]:
        rho = math.exp(lp - o)
        surrogate = -min(rho * 2.0, min(max(rho, 1 - eps), 1 + eps) * 2.0)
        per_token.append(surrogate + beta * (math.exp(r - lp) - (r - lp) - 1))
    got = losses.grpo_loss(logp, old, ref, adv, mask, eps, beta, "grpo")
    assert float(got) == pytest.approx(sum(per_token) / 2, rel=1e-6)
    got = losses.grpo_loss(logp, old, ref, adv, mask, eps, beta, "dr_grpo", max_len=12)
    assert float(got) == pytest.approx(sum(per_token) / 12, rel=1e-6)


@pytest.mark.parametrize("aggregation", ["grpo", "dr_grpo", "bnpo"])
def test_grpo_loss_equals_trl_grpo_trainer(aggregation):
    """TRL's GRPOTrainer._compute_loss on a stand-in for its log-prob computation: the same loss
    and gradient as ours on identical token log-probabilities, several iterations into a batch
    (old log-probs differ from the current ones)."""
    grpo = pytest.importorskip("trl.trainer.grpo_trainer")
    from collections import defaultdict

    g = torch.Generator().manual_seed(0)
    B, T, max_len, beta, eps = 6, 5, 7, 0.04, 0.2
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0],
                         [1, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.long)  # fmt: skip
    old = -torch.rand(B, T, generator=g) * 3
    ref = old + 0.3 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)
    inputs = dict(prompt_ids=torch.zeros(B, 2, dtype=torch.long),
                  prompt_mask=torch.ones(B, 2, dtype=torch.long),
                  completion_ids=torch.zeros(B, T, dtype=torch.long), completion_mask=mask, advantages=adv,
                  old_per_token_logps=old, ref_per_token_logps=ref)  # fmt: skip

    def run(theirs: bool):
        logp = (old + 0.25 * torch.randn(B, T, generator=torch.Generator().manual_seed(1))).requires_grad_(
            True
        )
        if not theirs:
            loss = losses.grpo_loss(logp, old, ref, adv, mask, eps, beta, aggregation, max_len)
        else:
            me = SimpleNamespace(
                beta=beta, epsilon_low=eps, epsilon_high=eps, loss_type=aggregation,
                max_completion_length=max_len,
                top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token",
                use_vllm=False, aux_loss_enabled=False, _entropy_bonus_enabled=False,
                current_gradient_accumulation_steps=1, model=SimpleNamespace(training=True),
                args=SimpleNamespace(use_bias_correction_kl=False, delta=None),
                _metrics=defaultdict(lambda: defaultdict(list)),
                accelerator=SimpleNamespace(gather=lambda x: x, gather_for_metrics=lambda x: x,
                                            reduce=lambda x, reduction: x, num_processes=1),
                _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros(B, T), None),
            )  # fmt: skip
            loss = grpo.GRPOTrainer._compute_loss(me, None, inputs)
        (grad,) = torch.autograd.grad(loss, logp)
        return loss.detach(), grad

    (ours, our_grad), (trl, trl_grad) = run(False), run(True)
    assert float((ours - trl).abs()) < 1e-7
    assert float((our_grad - trl_grad).abs().max()) < 1e-7


@pytest.mark.parametrize("aggregation", ["grpo", "dr_grpo", "bnpo"])
def test_trl_grpo_config_gives_lm_grpos_kl_gradient(tiny_lm, tmp_path, aggregation):
    """``trl-grpo``'s own ``GRPOConfig`` (``trl_grpo.grpo_args``) in a real ``GRPOTrainer`` on a
    tiny model, its per-token log-prob computation replaced by given log-probabilities: with β ≠ 0
    and off-policy ratios, TRL's loss and its gradient equal ``lm-grpo``'s on identical inputs.
    With TRL's default ``use_bias_correction_kl=True`` (the KL term times the ratio π/π_old) the
    gradients differ, off-policy and on-policy alike (on-policy the losses are still equal)."""
    pytest.importorskip("trl")
    from dataclasses import fields

    from trl import GRPOConfig

    from bench.algos.trl_grpo import TRLGRPOConfig, grpo_args, grpo_trainer
    from bench.lm.models import load_lm

    tok, path = tiny_lm
    P, k, T, max_len, beta, eps = 2, 3, 5, 7, 0.1, 0.2
    B = P * k
    cfg = TRLGRPOConfig(prompts_per_batch=P, k=k, kl_coef=beta, clip_range=eps, aggregation=aggregation)
    args = grpo_args(cfg, steps=1, seed=0, out_dir=str(tmp_path), max_completion_length=max_len, use_cpu=True)
    assert args.use_bias_correction_kl is False
    assert {f.name: f.default for f in fields(GRPOConfig)}["use_bias_correction_kl"] is True  # TRL's default
    assert (args.beta, args.epsilon, args.loss_type) == (beta, eps, aggregation)
    assert args.importance_sampling_level == "token"
    prompts = [(t, tok(t)["input_ids"]) for t in ("I liked", "The film")]
    side = tok.padding_side

    def no_reward(completions, **_):
        return [0.0] * len(completions)

    try:
        trainer = grpo_trainer(load_lm(path), tok, prompts, args, no_reward)
    finally:
        tok.padding_side = side
    assert trainer.args is args and trainer.beta == beta and trainer.ref_model is not None
    trainer.current_gradient_accumulation_steps = args.gradient_accumulation_steps  # set by its training loop
    trainer.model.train()

    g = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0],
                         [1, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.long)  # fmt: skip
    old = -torch.rand(B, T, generator=g) * 3
    ref = old + 0.3 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)
    current = old + 0.25 * torch.randn(B, T, generator=g)  # a few updates into the batch: ratio ≠ 1
    assert float(((current - old).exp() - 1).abs().max()) > 0.1

    def grads(old_logp: torch.Tensor, bias_correction: bool):
        logp = current.clone().requires_grad_(True)
        ours = losses.grpo_loss(logp, old_logp, ref, adv, mask, eps, beta, aggregation, max_len)
        (our_grad,) = torch.autograd.grad(ours, logp)
        inputs = dict(prompt_ids=torch.zeros(B, 2, dtype=torch.long),
                      prompt_mask=torch.ones(B, 2, dtype=torch.long),
                      completion_ids=torch.zeros(B, T, dtype=torch.long), completion_mask=mask,
                      advantages=adv, old_per_token_logps=old_logp, ref_per_token_logps=ref)  # fmt: skip
        trainer.args.use_bias_correction_kl = bias_correction
        trainer._get_per_token_logps_and_entropies = lambda *a, **kw: (logp, torch.zeros(B, T), None)
        try:
            theirs = trainer._compute_loss(trainer.model, inputs)
        finally:
            trainer.args.use_bias_correction_kl = False
        (trl_grad,) = torch.autograd.grad(theirs, logp)
        loss_diff = float((ours - theirs).detach().abs())
        return loss_diff, float((our_grad - trl_grad).abs().max())

    # trl-grpo's config, off-policy: the same loss and gradient
    loss_diff, grad_diff = grads(old, bias_correction=args.use_bias_correction_kl)
    assert loss_diff < 1e-7 and grad_diff < 1e-7
    # TRL's default: the KL gradient is weighted by the ratio
    loss_diff, grad_diff = grads(old, bias_correction=True)
    assert loss_diff > 1e-4 and grad_diff > 1e-4
    # ... and on-policy (old = current) the losses agree but the gradients do not
    loss_diff, grad_diff = grads(current, bias_correction=True)
    assert loss_diff < 1e-7 and grad_diff > 1e-4


def test_rrhf_loss_by_hand():
    # one query, three responses: scores 1 < 3 < 2 ranks them 0 < 2 < 1
    logp = torch.tensor([[-2.0, -6.0, -3.0]])
    lengths = torch.tensor([[2.0, 4.0, 3.0]])  # p = [-1, -1.5, -1]
    scores = torch.tensor([[1.0, 3.0, 2.0]])
    # pairs (worse i, better j): (0, 1): max(0, -1 + 1.5) = 0.5; (0, 2): 0; (2, 1): 0.5
    rank = 0.5 + 0.0 + 0.5
    nll_best = 6.0
    assert float(losses.rrhf_loss(logp, lengths, scores, sft_weight=1.0)) == pytest.approx(rank + nll_best)
    assert float(losses.rrhf_loss(logp, lengths, scores, sft_weight=0.0)) == pytest.approx(rank)
    # a second query is averaged in; ties rank nothing
    two = losses.rrhf_loss(torch.cat([logp, logp]), torch.cat([lengths, lengths]),
                           torch.tensor([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]]), sft_weight=0.0)  # fmt: skip
    assert float(two) == pytest.approx(rank / 2)


def test_rloo_step_equals_trl_rloo_trainer_on_policy():
    """lm-pg's RLOO step against TRL's RLOOTrainer._compute_loss on identical sequences: with the
    same advantages (k1 sequence KL in the reward, leave-one-out baseline, TRL's
    normalize_advantages off) and on-policy experience (old log-probs = current, TRL's one
    iteration per batch), the two losses have the same gradient with respect to the token
    log-probabilities. (TRL's value is the clipped ratio times A; ours log-prob times A: equal
    gradients, different values. The leave-one-out baseline is tested by hand in test_rlhf_ppo.)"""
    rloo = pytest.importorskip("trl.trainer.rloo_trainer")
    from collections import defaultdict

    from bench.algos.rlhf_ppo import rloo_baseline

    g = torch.Generator().manual_seed(0)
    P, k, T, kl_coef = 2, 3, 5, 0.1
    B = P * k
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0],
                         [1, 0, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.long)  # fmt: skip
    token_logp = (-torch.rand(B, T, generator=g) * 3) * mask
    ref_seq = (token_logp + 0.3 * torch.randn(B, T, generator=g) * mask).sum(-1)
    score = torch.randn(B, generator=g)

    logp = token_logp.clone().requires_grad_(True)
    seq_logp = (logp * mask).sum(-1)
    reward = score - kl_coef * (seq_logp.detach() - ref_seq)  # TRL: rewards - beta * sum(old - ref)
    per_prompt = reward.view(P, k)
    adv = (per_prompt - rloo_baseline(per_prompt)).flatten()
    (ours,) = torch.autograd.grad(losses.policy_gradient_loss(seq_logp, adv), logp)

    logp_trl = token_logp.clone().requires_grad_(True)
    me = SimpleNamespace(
        epsilon_low=0.2, epsilon_high=0.2, aux_loss_enabled=False, model=SimpleNamespace(training=True),
        _metrics=defaultdict(lambda: defaultdict(list)),
        accelerator=SimpleNamespace(gather=lambda x: x, reduce=lambda x, reduction: x),
        _get_per_token_logps_and_entropies=lambda *a, **kw: (logp_trl, torch.zeros(B, T), None),
    )  # fmt: skip
    inputs = dict(prompt_ids=torch.zeros(B, 2, dtype=torch.long),
                  prompt_mask=torch.ones(B, 2, dtype=torch.long),
                  completion_ids=torch.zeros(B, T, dtype=torch.long), completion_mask=mask,
                  old_logps=(token_logp * mask).sum(-1), advantages=adv)  # fmt: skip
    (theirs,) = torch.autograd.grad(rloo.RLOOTrainer._compute_loss(me, None, inputs), logp_trl)
    assert float(ours.abs().max()) > 0.01  # the step is not trivially zero
    assert float((ours - theirs).abs().max()) < 1e-7
