"""The LM stack with exact values: tokenizer round trips, KV-cache sampling against a plain
forward pass, exact sequence KL against a hand computation, DPO against TRL's DPOTrainer on the
same batch, Bradley–Terry labels and the Best-of-N KL."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.algos.lm import LMDPOConfig, encode_pair, pair_logps, preference_loss
from bench.lm.corpus import generate_reviews
from bench.lm.generation import sample, score, sequence_kl
from bench.lm.gold import get_gold
from bench.lm.models import ModelRecipe, build_tiny_lm, load_lm
from bench.lm.tokenizer import EOS, PAD, train_tokenizer
from bench.lm_evaluation import best_of_n_kl_bound
from bench.pipeline.lm import bradley_terry_pairs, cut_prompts
from bench.pipeline.recipes import PromptRecipe

TEXTS = [r.text for r in generate_reviews(600, seed=3)]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS, vocab_size=400)


@pytest.fixture(scope="module")
def model(tok):
    m = build_tiny_lm(ModelRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64), tok, seed=0)
    return m.eval()


def test_tokenizer_has_pad_and_eos_and_round_trips(tok, tmp_path):
    assert tok.eos_token == EOS and tok.pad_token == PAD and tok.eos_token_id != tok.pad_token_id
    assert len(tok) == 400
    text = TEXTS[0]
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text  # byte-level: lossless
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(str(tmp_path))
    assert again(text)["input_ids"] == ids and again.pad_token_id == tok.pad_token_id


def test_model_saves_and_loads_from_a_local_path(model, tmp_path):
    model.save_pretrained(tmp_path)
    again = load_lm(str(tmp_path)).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    assert torch.equal(model(input_ids=ids).logits, again(input_ids=ids).logits)


def _greedy_without_cache(model, prompt: list[int], steps: int, eos: int) -> list[int]:
    ids = list(prompt)
    out = []
    for _ in range(steps):
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        t = int(logits.argmax())
        out.append(t)
        if t == eos:
            break
        ids.append(t)
    return out


def test_kv_cache_greedy_sampling_equals_plain_forward_passes_with_left_padding(model, tok):
    prompts = [tok(t)["input_ids"][:k] for t, k in zip(TEXTS[:4], [2, 5, 3, 8], strict=True)]
    got = sample(model, prompts, 0.0, 10, tok.eos_token_id, tok.pad_token_id)
    for p, c in zip(prompts, got, strict=True):
        assert c == _greedy_without_cache(model, p, 10, tok.eos_token_id)


def test_sampling_is_reproducible_and_temperature_matters(model, tok):
    prompts = [tok(t)["input_ids"][:3] for t in TEXTS[:16]]

    def run(temp, seed):
        g = torch.Generator().manual_seed(seed)
        return sample(model, prompts, temp, 8, tok.eos_token_id, tok.pad_token_id, g)

    assert run(1.0, 7) == run(1.0, 7)
    assert run(1.0, 7) != run(1.0, 8)
    assert all(len(c) <= 8 for c in run(1.0, 7))


def test_sequence_kl_is_exact_and_zero_against_itself(model, tok):
    other = build_tiny_lm(ModelRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64), tok, seed=1).eval()
    prompts, comps = [[5, 6, 7], [9, 10]], [[11, 12], [13, 14, 15]]
    pad = tok.pad_token_id
    p, q = score(model, prompts, comps, pad), score(other, prompts, comps, pad)
    kl, k1 = sequence_kl(p, q)
    # by hand for the second sequence: positions 1, 2, 3 of [9, 10, 13, 14, 15] predict 13, 14, 15
    with torch.no_grad():
        lp = F.log_softmax(model(input_ids=torch.tensor([[9, 10, 13, 14, 15]])).logits[0], -1)
        lq = F.log_softmax(other(input_ids=torch.tensor([[9, 10, 13, 14, 15]])).logits[0], -1)
    want = sum(float((lp[t].exp() * (lp[t] - lq[t])).sum()) for t in (1, 2, 3))
    want_k1 = sum(float(lp[t, y] - lq[t, y]) for t, y in zip((1, 2, 3), (13, 14, 15), strict=True))
    assert kl[1].item() == pytest.approx(want, rel=1e-5)
    assert k1[1].item() == pytest.approx(want_k1, rel=1e-5, abs=1e-6)
    self_kl, self_k1 = sequence_kl(p, score(model, prompts, comps, pad))
    assert torch.all(self_kl == 0) and torch.all(self_k1 == 0)


def test_bradley_terry_pairs_by_hand():
    rng = np.random.default_rng(0)
    pairs, ties = bradley_terry_pairs([0.5, -0.2, 0.5, 0.9], tau=0.0, rng=rng)
    assert ties == 1  # completions 0 and 2 tie
    assert sorted(pairs) == sorted([(0, 1), (2, 1), (3, 1), (3, 0), (3, 2)])
    # tau > 0: the better one wins with probability sigma(d / tau)
    wins = sum(bradley_terry_pairs([1.0, 0.0], tau=1.0, rng=rng)[0] == [(0, 1)] for _ in range(4000))
    assert wins / 4000 == pytest.approx(1 / (1 + math.exp(-1)), abs=0.03)


def test_best_of_n_kl_bound():
    assert best_of_n_kl_bound(1) == 0.0
    assert best_of_n_kl_bound(4) == pytest.approx(math.log(4) - 0.75)
    assert best_of_n_kl_bound(64) == pytest.approx(math.log(64) - 63 / 64)


def test_vader_gold_scores_the_sentiment_of_text():
    gold = get_gold("vader")
    s = gold(["The acting was wonderful and the story was great.", "A boring, awful mess.", "It is a film."])
    assert s[0] > 0.5 and s[1] < -0.5 and s[2] == 0.0
    with pytest.raises(ValueError, match="unknown gold scorer"):
        get_gold("nope")


def test_prompts_are_cut_before_a_word_within_the_length_range(tok):
    prompts = cut_prompts(tok, TEXTS[:200], PromptRecipe(min_tokens=2, max_tokens=8), seed=0)
    assert len(prompts) > 150
    starts = set()
    for text, ids in prompts:
        assert 2 <= len(ids) <= 8
        assert text == tok.decode(ids)
        starts.add(text)
    # each prompt is a document's prefix ending where a word ends
    assert all(any(d.startswith(t + " ") for d in TEXTS[:200]) for t in starts)


# -- DPO against TRL ---------------------------------------------------------------------------


def _pairs():
    prompts = ["I watched it", "The film was", "My sister and I"]
    chosen = [" and it was great.", " wonderful, I loved it.", " had a lovely time"]
    rejected = [" and it was awful.", " boring", " hated the ending, what a waste."]
    return prompts, chosen, rejected


def test_encode_pair_appends_eos_and_splits_at_the_prompt(tok):
    p, c, r = encode_pair(tok, "I watched it", " and it was great.", " boring")
    assert c[-1] == tok.eos_token_id and r[-1] == tok.eos_token_id
    assert tok.decode(p) == "I watched it" and tok.decode(c[:-1]) == " and it was great."


@pytest.mark.parametrize("loss", ["dpo", "ipo-mean", "hinge"])
def test_dpo_loss_equals_trl_dpotrainer_on_the_same_batch(model, tok, tmp_path, loss):
    """lm-dpo's loss rows against TRL's DPOTrainer loss types on the same batch: dpo = sigmoid,
    ipo-mean = ipo (TRL averages each log-ratio over the completion's tokens), hinge = hinge."""
    pytest.importorskip("trl")
    from bench.algos.trl_dpo import TRLDPOConfig, make_trainer

    policy = build_tiny_lm(ModelRecipe(n_layer=1, n_embd=32, n_head=2, n_positions=64), tok, seed=5)
    ref = model
    texts = _pairs()
    beta = 0.1 if loss != "ipo-mean" else 0.5
    cfg = TRLDPOConfig(loss=loss, beta=beta, batch_size=3, precompute_ref=False)
    trainer = make_trainer(policy, ref, tok, texts, cfg, steps=1, seed=0, out_dir=str(tmp_path))
    rows = [trainer.train_dataset[i] for i in range(3)]
    batch = trainer.data_collator(rows)
    policy.train()
    trl_loss = trainer.compute_loss(policy, batch).item()

    ours = [encode_pair(tok, *t) for t in zip(*texts, strict=True)]
    # the same token sequences as TRL's dataset preparation
    for row, (p, c, r) in zip(rows, ours, strict=True):
        assert (row["prompt_ids"], row["chosen_ids"], row["rejected_ids"]) == (p, c, r)
    pad = tok.pad_token_id
    with torch.no_grad():
        ref_w, ref_l = pair_logps(ref, ours, pad)
    logp_w, logp_l = pair_logps(policy, ours, pad)
    our_loss = float(preference_loss(LMDPOConfig(loss=loss, beta=beta), logp_w, logp_l, ref_w, ref_l, ours))
    assert our_loss == pytest.approx(trl_loss, abs=1e-5)
    # and by hand
    rw, rl = logp_w - ref_w, logp_l - ref_l
    lw = torch.tensor([float(len(c)) for _, c, _ in ours])
    ll = torch.tensor([float(len(r)) for _, _, r in ours])
    by_hand = {
        "dpo": -F.logsigmoid(beta * (rw - rl)).mean(),
        "ipo-mean": ((rw / lw - rl / ll) - 1 / (2 * beta)).pow(2).mean(),
        "hinge": torch.relu(1 - beta * (rw - rl)).mean(),
    }[loss]
    assert our_loss == pytest.approx(float(by_hand), abs=1e-6)
    if loss == "ipo-mean":  # and the summed form differs from TRL's on these inputs
        summed = float(
            preference_loss(LMDPOConfig(loss="ipo", beta=beta), logp_w, logp_l, ref_w, ref_l, ours)
        )
        assert abs(summed - trl_loss) > 1e-3


def test_run_keys_of_earlier_lm_suites_stay_valid():
    """Fields added to the lm: section after runs were stored (device, corpus.reference_field) are
    left out of the run recipe at their defaults, so stored runs keep their keys."""
    from bench.lm.tasks import get_lm_task
    from bench.pipeline.recipes import LMSetup

    recipe = LMSetup().for_task(get_lm_task("sentiment"))
    assert "device" not in recipe and "reference_field" not in recipe["corpus"]
    custom = LMSetup(corpus={"source": "hf", "dataset": "x", "reference_field": "label"}, device="auto")
    recipe = custom.for_task(get_lm_task("summarization"))
    assert recipe["device"] == "auto" and recipe["corpus"]["reference_field"] == "label"
    assert recipe["gold"] == "summary-judge"
    assert "loss" not in LMSetup().for_task(get_lm_task("summarization"))["sft"]
    completion = LMSetup(sft={"loss": "completion"})
    assert completion.for_task(get_lm_task("summarization"))["sft"]["loss"] == "completion"
    with pytest.raises(ValueError, match="needs a task with references"):
        LMSetup(sft={"loss": "completion"}).for_task(get_lm_task("sentiment"))
    # sft.seed: unset, each run seed trains its own pi_SFT; set, every run seed shares one
    from bench.pipeline.lm import LMPipeline

    task = get_lm_task("summarization")
    assert "seed" not in LMSetup().for_task(task)["sft"]
    pinned = LMSetup(sft={"seed": 0}).for_task(task)
    assert [LMPipeline(task, pinned, seed).sft_seed for seed in (0, 3)] == [0, 0]
    assert [LMPipeline(task, LMSetup().for_task(task), seed).sft_seed for seed in (0, 3)] == [0, 3]


def test_completion_only_sft_scores_the_reference_tokens_only(model, tok):
    """loss: completion — the sequence is the prompt's tokens then those of " " + reference (as a
    sampled completion follows its prompt), and the loss is the mean NLL of the reference tokens
    (and EOS) alone, by hand from the logits."""
    from bench.lm.summaries import split_article
    from bench.pipeline.lm import lm_loss, sft_sequences
    from bench.pipeline.recipes import SFTRecipe

    docs = ["It rained on Monday. TL;DR: Rain on Monday.", "no separator here"]
    seqs, starts = sft_sequences(tok, docs, SFTRecipe(loss="completion", max_len=64), split_article)
    prompt, completion = tok.encode("It rained on Monday. TL;DR:"), tok.encode(" Rain on Monday.")
    assert seqs == [prompt + completion + [tok.eos_token_id]] and starts == [len(prompt)]
    plain, none = sft_sequences(tok, docs, SFTRecipe(max_len=64))
    assert none is None and len(plain) == 2 and plain[0][-1] == tok.eos_token_id

    seq, start = seqs[0], starts[0]
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([seq])).logits[0], -1)
        nll = [-logp[t - 1, seq[t]].item() for t in range(start, len(seq))]
        every = [-logp[t - 1, seq[t]].item() for t in range(1, len(seq))]
        masked = lm_loss(model, seqs, tok.pad_token_id, starts).item()
        full = lm_loss(model, seqs, tok.pad_token_id).item()
    assert masked == pytest.approx(sum(nll) / len(nll), rel=1e-5)
    assert full == pytest.approx(sum(every) / len(every), rel=1e-5)
    # label smoothing eps: per token (1 - eps) * NLL + eps * mean over the vocabulary of -log p
    eps = 0.1
    smooth = [(1 - eps) * -logp[t - 1, seq[t]].item() - eps * logp[t - 1].mean().item()
              for t in range(start, len(seq))]  # fmt: skip
    with torch.no_grad():
        smoothed = lm_loss(model, seqs, tok.pad_token_id, starts, label_smoothing=eps).item()
        unsmoothed = lm_loss(model, seqs, tok.pad_token_id, starts, label_smoothing=0.0).item()
    assert smoothed == pytest.approx(sum(smooth) / len(smooth), rel=1e-5)
    assert unsmoothed == masked
    with pytest.raises(ValueError, match="needs a task with references"):
        sft_sequences(tok, docs, SFTRecipe(loss="completion"))


def test_gpt2_head_at_completion_positions_only_gives_the_full_forward_passes_logits(model, tok):
    """For GPT-2 the LM head runs only where a completion token is predicted; the logits there are
    those of the full forward pass (each row is its own product with the head; only the kernel's
    rounding may differ), and so are the gradients."""
    from bench.lm.generation import batch_pairs, completion_logits, head_only_where_needed

    assert head_only_where_needed(model)
    prompts = [tok(t)["input_ids"][:k] for t, k in zip(TEXTS[:5], [2, 9, 4, 12, 6], strict=True)]
    comps = [tok(t)["input_ids"][:k] for t, k in zip(TEXTS[5:10], [7, 1, 11, 3, 8], strict=True)]
    pad = tok.pad_token_id
    ids, attn, index, targets, mask = batch_pairs(prompts, comps, pad)
    rows = torch.arange(len(prompts))[:, None]
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=attn).logits[rows, index]
        got, got_targets, got_mask = completion_logits(model, prompts, comps, pad)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert torch.equal(got_targets, targets) and torch.equal(got_mask, mask)

    def grads(logits_fn):
        model.zero_grad()
        logits = logits_fn()
        (F.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1) * mask).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    full = grads(lambda: model(input_ids=ids, attention_mask=attn).logits[rows, index])
    part = grads(lambda: completion_logits(model, prompts, comps, pad)[0])
    model.zero_grad()
    for a, b in zip(full, part, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
