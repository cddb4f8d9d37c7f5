"""The LM pipeline of a suite (its ``lm:`` section) and the per-run context that builds it.

1. **Corpus** — the task's generated corpus (``source: generated``) or a ``datasets`` dataset
   (``source: hf``). The last ``prompts.train + prompts.test`` documents are kept for prompts;
   the rest is the SFT corpus.
2. **Tokenizer** — byte-level BPE trained on the SFT corpus, or the pretrained model's own.
3. **SFT** — π_SFT = π_ref: the tiny GPT-2 (or ``model.base``) fine-tuned on the SFT corpus,
   by next-token loss on every token (``loss: all``) or only on the reference after the prompt
   (``loss: completion``, tasks with references).
4. **Prompts** — a prefix of ``min_tokens``–``max_tokens`` tokens of each prompt document, cut
   before a token that starts a word; train prompts feed preference data, test prompts every
   evaluation.
5. **Preferences** — for each train prompt ``completions`` samples from π_SFT at
   ``temperature``, every pair of them labelled by Bradley–Terry on the gold reward (τ = 0:
   deterministic; pairs of equal gold reward carry no preference and are dropped). The last
   ``held_out`` fraction of prompts is held out.
6. **Reward model** — π_SFT's transformer with a scalar head, trained with the Bradley–Terry
   loss on the train pairs; its accuracy on the held-out pairs is stored with it.

Every artifact is cached (``bench.cache``) under its key (``bench.pipeline.keys``);
tokenizer and prompts are shared by all seeds, preferences and reward model are per seed, and
π_SFT is per seed unless ``sft.seed`` pins one π_SFT for every seed.

Layer: pipeline (its builders run SFT and reward-model training; methods see the run's pipeline as
a ``bench.artifacts.LMContext``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.algos.guard import check_finite
from bench.artifacts import CompletionPreferences
from bench.cache import cache_dir, cached, cached_dir, cached_json
from bench.lm.generation import rm_scores, rm_scores_batched, sample
from bench.lm.gold import Scorer, get_gold
from bench.lm.models import build_tiny_lm, load_lm, load_scalar_model, scalar_model_from
from bench.lm.tasks import LMTask
from bench.lm.tokenizer import encode, train_tokenizer
from bench.pipeline.keys import derived_key, lm_keys
from bench.pipeline.recipes import CorpusRecipe, LMSetup, PromptRecipe, SFTRecipe
from bench.recorder import Recorder

# -- pieces -----------------------------------------------------------------------------------


def load_corpus(task: LMTask, recipe: CorpusRecipe) -> list[str]:
    if recipe.source == "generated":
        return task.corpus(recipe.documents, recipe.seed)
    import datasets

    kwargs = {"data_files": recipe.data_files} if recipe.data_files else {}
    data = datasets.load_dataset(recipe.dataset, split=recipe.split, **kwargs)
    if recipe.text_field not in data.column_names:
        raise ValueError(f"dataset {recipe.dataset}: no field {recipe.text_field!r} ({data.column_names})")
    n = min(recipe.documents, len(data))
    rows = data.select(range(n))
    if recipe.reference_field is None:
        return [str(t) for t in rows[recipe.text_field]]
    if recipe.reference_field not in data.column_names:
        raise ValueError(
            f"dataset {recipe.dataset}: no field {recipe.reference_field!r} ({data.column_names})"
        )
    return [f"{t} {r}" for t, r in zip(rows[recipe.text_field], rows[recipe.reference_field], strict=True)]


def cut_prompts(tokenizer, docs: list[str], recipe: PromptRecipe, seed: int) -> list[tuple[str, list[int]]]:
    """A prefix of each document, cut before a token that starts a new word."""
    rng = random.Random(seed)
    out = []
    for ids in encode(tokenizer, docs):
        cuts = [
            k for k in range(recipe.min_tokens, min(recipe.max_tokens, len(ids) - 1) + 1)
            if tokenizer.decode(ids[k : k + 1]).startswith(" ")
        ]  # fmt: skip
        if not cuts:
            continue
        text = tokenizer.decode(ids[: rng.choice(cuts)])
        out.append((text, encode(tokenizer, [text])[0]))
    return out


def lm_loss(
    model, seqs: list[list[int]], pad_id: int, starts: list[int] | None = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean next-token NLL over the non-pad tokens of right-padded ``seqs``; with ``starts``, only
    over the tokens of each sequence from its start index on (its completion); with
    ``label_smoothing``, the cross-entropy against targets that put that mass uniformly over the
    vocabulary (torch's ``cross_entropy(label_smoothing=)``)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    scored = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        scored[i, (starts[i] if starts else 0) : len(s)] = 1
    # The full forward pass, although with ``starts`` only the completion positions' logits count:
    # the LM head applied there alone gives the same loss, but its gradient is summed in another
    # order, and π_SFT's calibration is that sensitive (docs/guides/lm-tasks.md: with the head at
    # the reference positions only, the summarisation π_SFT won 10.7% at T = 1 instead of 16.2%).
    labels = ids.masked_fill(scored == 0, -100)
    ids, attn, labels = ids.to(model.device), attn.to(model.device), labels.to(model.device)
    if not label_smoothing:  # transformers' own causal-LM loss (version 2's π_SFT is built with it)
        return model(input_ids=ids, attention_mask=attn, labels=labels).loss
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100,
        label_smoothing=label_smoothing,
    )  # fmt: skip


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warmup, then cosine decay to 10%."""
    if step < warmup:
        return (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def sft_sequences(tokenizer, docs: list[str], recipe: SFTRecipe, split=None) -> tuple[list, list | None]:
    """The SFT token sequences (each ending in EOS, cut to ``max_len``) and, for ``loss:
    completion``, the index of each sequence's first completion token. ``split`` (the task's)
    cuts a document into prompt and reference; the sequence is then the prompt's tokens followed by
    those of " " + reference, as a sampled completion follows its prompt. Documents it cannot cut
    are skipped."""
    eos = tokenizer.eos_token_id
    if recipe.loss == "all":
        return [(ids + [eos])[: recipe.max_len] for ids in encode(tokenizer, docs)], None
    if split is None:
        raise ValueError("sft.loss: completion needs a task with references")
    parts = [part for part in map(split, docs) if part is not None]
    prompts = encode(tokenizer, [p for p, _ in parts])
    completions = encode(tokenizer, [" " + r for _, r in parts])
    seqs, starts = [], []
    for p, c in zip(prompts, completions, strict=True):
        if len(p) < recipe.max_len:  # at least one completion token is scored
            seqs.append((p + c + [eos])[: recipe.max_len])
            starts.append(len(p))
    if not seqs:
        raise ValueError(f"sft.loss: completion: every prompt is max_len {recipe.max_len} tokens or longer")
    return seqs, starts


def train_sft(model, tokenizer, docs: list[str], recipe: SFTRecipe, seed: int, log, split=None) -> dict:
    pad = tokenizer.pad_token_id
    seqs, starts = sft_sequences(tokenizer, docs, recipe, split)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, recipe.steps, recipe.warmup))
    model.train()
    curve, t0 = [], time.perf_counter()
    for step in range(recipe.steps):
        idx = torch.randint(len(seqs), (recipe.batch_size,), generator=g).tolist()
        batch_starts = [starts[i] for i in idx] if starts else None
        loss = lm_loss(model, [seqs[i] for i in idx], pad, batch_starts, recipe.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == recipe.steps - 1:
            curve.append((step + 1, loss.item()))
            # a NaN / inf loss or parameter fails the run, and no diverged model is cached
            check_finite(step + 1, {"loss": curve[-1][1]}, model, unit="SFT update")
        if step % 500 == 0:
            log(f"  sft step {step}/{recipe.steps}: loss {loss.item():.3f}")
    model.eval()
    return {"loss_curve": curve, "seconds": time.perf_counter() - t0, "documents": len(seqs)}


def bradley_terry_pairs(scores: list[float], tau: float, rng: np.random.Generator) -> tuple[list, int]:
    """(winner, loser) for every pair of one prompt's completions, and the number of ties dropped."""
    pairs, ties = [], 0
    for i, j in combinations(range(len(scores)), 2):
        d = scores[i] - scores[j]
        if d == 0:
            ties += 1
            continue
        first_wins = d > 0 if tau == 0 else rng.random() < 1 / (1 + math.exp(-d / tau))
        pairs.append((i, j) if first_wins else (j, i))
    return pairs, ties


# -- one run's pipeline: the context an LM method gets -----------------------------------------


class LMPipeline:
    """Per run: the task's tokenizer, π_SFT, prompts, preference data, reward model and gold
    scorer for the run's seed (built on first use, then cached); a ``bench.artifacts.LMContext``."""

    def __init__(self, task: LMTask, recipe: dict, seed: int, log: Callable[[str], None] = print):
        self.task, self.seed, self.log = task, seed, log
        self.setup = LMSetup(**recipe)
        self.gold_name: str = recipe["gold"]
        # every artifact's key includes the code that builds it: other code builds it again
        keys = lm_keys(task.id, self.setup.model_dump(mode="json"), self.gold_name)
        self.tok_hash, self.sft_hash = keys.tokenizer, keys.sft
        self.pref_hash, self.rm_hash = keys.preferences, keys.reward_model
        self.root = cache_dir() / "lm" / task.id
        self.recorder: Recorder | None = None  # set: artifact build time is kept out of training time
        self._memo: dict = {}
        self._depth, self.in_eval = 0, False

    # -- bookkeeping
    def exclude(self, seconds: float) -> None:
        if self.recorder is not None:
            self.recorder.eval_seconds += seconds

    def _once(self, name: str, build: Callable):
        """Builds (or loads) an artifact once per run; the outermost build's time is excluded from
        training time (evaluations exclude their own time, builds inside them included)."""
        if name not in self._memo:
            t0 = time.perf_counter()
            self._depth += 1
            try:
                self._memo[name] = build()
            finally:
                self._depth -= 1
            if self._depth == 0 and not self.in_eval:
                self.exclude(time.perf_counter() - t0)
        return self._memo[name]

    # -- artifacts
    def documents(self) -> tuple[list[str], list[str]]:
        """(SFT documents, prompt documents)."""

        def build():
            docs = load_corpus(self.task, self.setup.corpus)
            n_prompt = self.setup.prompts.train + self.setup.prompts.test
            if len(docs) < 2 * n_prompt:
                raise ValueError(
                    f"corpus has {len(docs)} documents: too few for {n_prompt} prompts and an SFT corpus"
                )
            return docs[:-n_prompt], docs[-n_prompt:]

        return self._once("documents", build)

    def tokenizer(self):
        def build():
            from transformers import AutoTokenizer

            name = self.setup.tokenizer.name or self.setup.model.base
            if name:
                tok = AutoTokenizer.from_pretrained(name)
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token
                tok.padding_side = "right"
                return tok
            path = self.root / f"tokenizer-{self.tok_hash}"

            def train(tmp: Path) -> dict:
                sft_docs, _ = self.documents()
                tok = train_tokenizer(sft_docs, self.setup.tokenizer.vocab_size)
                tok.save_pretrained(tmp)
                return {"vocab_size": len(tok)}

            info, built = cached_dir(path, train)
            self.log(f"tokenizer {'trained' if built else 'loaded'} ({path}): {info['vocab_size']} tokens")
            return AutoTokenizer.from_pretrained(str(path))

        return self._once("tokenizer", build)

    def prompts(self) -> dict:
        """{"train": [(text, ids)], "test": [(text, ids)]}, the same for every seed; tasks with
        references also have "train_refs" and "test_refs" (the reference completion texts). Cached
        beside the tokenizer, so that a run whose π_SFT exists never generates or reads the corpus."""

        def load():
            path = self.root / f"prompts-{self.tok_hash}.json"
            data, _ = cached_json(path, build)
            return {k: [tuple(x) for x in v] if k in ("train", "test") else v for k, v in data.items()}

        def build():
            _, docs = self.documents()
            r, tok = self.setup.prompts, self.tokenizer()
            refs = None
            if self.task.has_references:
                parts = [part for part in map(self.task.split, docs) if part is not None]
                cut = list(zip([p for p, _ in parts], encode(tok, [p for p, _ in parts]), strict=True))
                refs = [ref for _, ref in parts]
            else:
                cut = cut_prompts(tok, docs, r, r.seed)
            if len(cut) < r.train + r.test:
                raise ValueError(f"only {len(cut)} prompt documents could be cut into prompts")
            longest = max(len(ids) for _, ids in cut[: r.train + r.test]) + self.setup.max_new_tokens
            if not self.setup.model.base and longest > self.setup.model.n_positions:
                raise ValueError(
                    f"prompts of up to {longest - self.setup.max_new_tokens} tokens plus max_new_tokens"
                    f" {self.setup.max_new_tokens} exceed model.n_positions {self.setup.model.n_positions}"
                )
            out = {"train": cut[: r.train], "test": cut[r.train : r.train + r.test]}
            if refs is not None:
                out["train_refs"], out["test_refs"] = refs[: r.train], refs[r.train : r.train + r.test]
            return out

        return self._once("prompts", load)

    def derived(self, name: str, build: Callable[[], dict], code: str, tensors: bool = False) -> dict:
        """A per-seed artifact computed from the preference data and π_SFT by the code of module
        ``code`` (the encoded pairs, π_SFT's log-probs of them): built by the first run of the seed
        that needs it, loaded by the others (the same numbers), and kept out of training time like
        every artifact. ``tensors``: saved with ``torch.save`` (else JSON)."""

        def load():
            key = derived_key(self.pref_hash, name, code)
            path = self.root / f"{name}-s{self.seed}-{key}.{'pt' if tensors else 'json'}"
            t0 = time.perf_counter()
            data, built = (cached if tensors else cached_json)(path, build)
            self.log(f"{name} {'built' if built else 'loaded'} ({path}) in {time.perf_counter() - t0:.1f} s")
            return data

        return self._once(name, load)

    @property
    def sft_seed(self) -> int:
        """The seed π_SFT is trained with: the recipe's, else the run's."""
        return self.seed if self.setup.sft.seed is None else self.setup.sft.seed

    def sft_path(self) -> Path:
        def build():
            seed = self.sft_seed
            path = self.root / f"sft-s{seed}-{self.sft_hash}"
            t0 = time.perf_counter()

            def train(tmp: Path) -> dict:
                tok = self.tokenizer()
                base = self.setup.model.base
                model = load_lm(base) if base else build_tiny_lm(self.setup.model, tok, seed)
                model.to(self.setup.torch_device())
                sft_docs, _ = self.documents()
                info = train_sft(model, tok, sft_docs, self.setup.sft, seed, self.log, self.task.split)
                model.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                return {**info, "parameters": sum(p.numel() for p in model.parameters())}

            info, built = cached_dir(path, train)
            self.log(
                f"pi_SFT {'trained' if built else 'loaded'} ({path}) in {time.perf_counter() - t0:.1f} s:"
                f" {info['parameters']} parameters, final loss {info['loss_curve'][-1][1]:.3f}"
                if info["loss_curve"] else f"pi_SFT loaded ({path})"
            )  # fmt: skip
            return path

        return self._once("sft", build)

    def policy(self):
        """A fresh trainable copy of π_SFT, in eval mode: dropout off, so the log-probabilities that
        enter a ratio, a KL or a loss are those of the policy itself, comparable with the reference's
        (which is in eval mode too) — as TRL's trainers disable dropout. Gradients flow as usual."""
        model = load_lm(str(self.sft_path())).to(self.setup.torch_device())
        model.eval()
        self.hold("policy", model)
        return model

    def hold(self, name: str, model) -> None:
        """Notes a model the run holds (its parameters go into the run's summary)."""
        if self.recorder is not None:
            self.recorder.hold(name, model)

    def reference(self):
        """The frozen π_SFT (one per run)."""

        def build():
            model = load_lm(str(self.sft_path())).to(self.setup.torch_device()).eval()
            model.requires_grad_(False)
            return model

        model = self._once("reference", build)
        self.hold("reference", model)
        return model

    def gold(self) -> Scorer:
        return self._once("gold", lambda: get_gold(self.gold_name))

    def preferences(self) -> CompletionPreferences:
        def build():
            path = self.root / f"prefs-s{self.seed}-{self.pref_hash}.json"
            t0 = time.perf_counter()
            data, built = cached_json(path, self._build_preferences)
            prefs = CompletionPreferences(data)
            self.log(
                f"preferences {'built' if built else 'loaded'} ({path}) in {time.perf_counter() - t0:.1f} s:"
                f" {len(prefs.pairs)} pairs over {len(prefs.prompt_ids)} prompts, {prefs.ties} ties dropped"
            )
            return prefs

        return self._once("preferences", build)

    def _build_preferences(self) -> dict:
        r, tok = self.setup.preferences, self.tokenizer()
        prompts = self.prompts()["train"]
        k = r.completions
        g = torch.Generator().manual_seed(self.seed)
        flat = [ids for _, ids in prompts for _ in range(k)]
        comps = sample(self.reference(), flat, r.temperature, self.setup.max_new_tokens,
                       tok.eos_token_id, tok.pad_token_id, generator=g)  # fmt: skip
        texts = tok.batch_decode(comps, skip_special_tokens=True)
        gold = self.gold()(texts, [t for t, _ in prompts for _ in range(k)]).tolist()
        rng = np.random.default_rng(self.seed)
        pairs, ties = [], 0
        for p in range(len(prompts)):
            got, t = bradley_terry_pairs(gold[p * k : (p + 1) * k], r.tau, rng)
            pairs += [(p, w, lo) for w, lo in got]
            ties += t
        return {
            "prompt_text": [t for t, _ in prompts],
            "prompt_ids": [ids for _, ids in prompts],
            "completion_text": [texts[p * k : (p + 1) * k] for p in range(len(prompts))],
            "completion_ids": [comps[p * k : (p + 1) * k] for p in range(len(prompts))],
            "gold": [gold[p * k : (p + 1) * k] for p in range(len(prompts))],
            "pairs": pairs,
            "n_train_prompts": len(prompts) - int(round(r.held_out * len(prompts))),
            "ties": ties,
        }

    def reward_model_path(self, train_pairs: int | None = None) -> Path:
        suffix = "" if train_pairs is None else f"-p{train_pairs}"
        return self.root / f"rm-s{self.seed}-{self.rm_hash}{suffix}"

    def reward_model(self, train_pairs: int | None = None) -> tuple[object, dict]:
        """The frozen reward model and its metadata (held-out accuracy, score mean and std); with
        ``train_pairs``, one trained on the first that many training pairs only (cached apart)."""

        def build():
            path = self.reward_model_path(train_pairs)
            t0 = time.perf_counter()
            info, built = cached_dir(path, lambda out: self._train_reward_model(out, train_pairs))
            model = load_scalar_model(str(path)).to(self.setup.torch_device()).eval()
            model.requires_grad_(False)
            self.log(
                f"reward model {'trained' if built else 'loaded'} ({path})"
                f" in {time.perf_counter() - t0:.1f} s:"
                f" held-out accuracy {info['heldout_accuracy']:.3f} on {info['heldout_pairs']} pairs"
            )
            return model, info

        name = "reward_model" if train_pairs is None else f"reward_model-p{train_pairs}"
        model, info = self._once(name, build)
        self.hold("reward model", model)
        return model, info

    def _train_reward_model(self, out: Path, train_pairs: int | None = None) -> dict:
        r, tok, prefs = self.setup.reward_model, self.tokenizer(), self.preferences()
        pad = tok.pad_token_id
        model = scalar_model_from(str(self.sft_path()), pad, self.seed).to(self.setup.torch_device())
        train, held = prefs.split()
        if not train:
            raise ValueError("no training preference pairs (every pair tied?)")
        if train_pairs is not None:
            if train_pairs > len(train):
                raise ValueError(f"rm_pairs={train_pairs} exceeds the {len(train)} training preference pairs")
            train = train[:train_pairs]

        def pair_ids(pairs):
            prompts = [prefs.prompt_ids[p] for p, _, _ in pairs]
            win = [prefs.completion_ids[p][w] for p, w, _ in pairs]
            lose = [prefs.completion_ids[p][lo] for p, _, lo in pairs]
            return prompts, win, lose

        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.0)
        model.train()
        t0, losses = time.perf_counter(), []
        for step in range(r.steps):
            idx = torch.randint(len(train), (min(r.batch_size, len(train)),), generator=g).tolist()
            prompts, win, lose = pair_ids([train[i] for i in idx])
            scores = rm_scores(model, prompts + prompts, win + lose, pad)
            loss = -F.logsigmoid(scores[: len(idx)] - scores[len(idx) :]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 50 == 0 or step == r.steps - 1:
                losses.append((step + 1, loss.item()))
                check_finite(step + 1, {"loss": losses[-1][1]}, model, unit="reward-model update")
        model.eval()

        def accuracy(pairs) -> float:
            if not pairs:
                return float("nan")
            prompts, win, lose = pair_ids(pairs)
            s = rm_scores_batched(model, prompts + prompts, win + lose, pad)
            return float(np.mean(s[: len(pairs)] > s[len(pairs) :]))

        flat_p = [prefs.prompt_ids[p] for p in range(len(prefs.prompt_ids)) for _ in prefs.completion_ids[p]]
        flat_c = [c for comps in prefs.completion_ids for c in comps]
        scores = rm_scores_batched(model, flat_p, flat_c, pad)
        model.save_pretrained(out)
        gold = prefs.gold
        return {
            "train_accuracy": accuracy(train),
            "heldout_accuracy": accuracy(held),
            # how often the gold reward itself agrees with the held-out labels (1 when tau = 0)
            "heldout_gold_accuracy": float(np.mean([gold[p][w] > gold[p][lo] for p, w, lo in held]))
            if held
            else float("nan"),
            "train_pairs": len(train),
            "heldout_pairs": len(held),
            "score_mean": float(scores.mean()),
            "score_std": float(scores.std()),
            "loss_curve": losses,
            "seconds": time.perf_counter() - t0,
        }
