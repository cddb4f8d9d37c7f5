"""The evaluation protocol on LM tasks (shared/design.md §3), on the task's test prompts.

Every ``eval_every`` updates, and at the end, one completion per test prompt is sampled from the
policy at each temperature (fixed generator seeds: every method sees the same random stream) and
scored by the gold reward: ``eval/return`` is the mean gold reward, ``eval/return_std`` its
standard deviation, n = prompts. At T = 1 the sequence-level KL(π‖π_SFT) is measured on the same
samples: ``eval/kl`` is the mean over completions of Σ_t KL(π(·|s_t) ‖ π_SFT(·|s_t)) computed
exactly over the vocabulary, ``eval/kl_k1`` the mean of Σ_t log π(y_t|s_t) − log π_SFT(y_t|s_t),
``eval/kl_std`` the standard deviation of the exact sum; ``eval/length`` is the mean completion
length in tokens. The final evaluation runs the temperature sweep and keeps the first
``keep_samples`` completions per temperature as text samples for the report.

On tasks whose prompts come with a reference completion (summarisation), each completion is
also compared with its prompt's reference by the gold reward: ``eval/win_rate`` is the mean of
1 (higher), ½ (equal) or 0 (lower) over the test prompts — the DPO paper's win rate, wins + ½
ties — and the task's reference metrics (``eval/rouge_l``) are recorded too. The final sweep
stores the per-prompt win outcomes and gold rewards (``Recorder.outcome``) so reports can give
intervals over prompts as well as seeds. A method that optimises a learned reward model sets
``proxy``: its raw score of the same completions is recorded as ``eval/proxy_reward`` (the proxy
beside the gold, for over-optimisation).

Best-of-N is evaluated by ``best_of_n``: N samples per prompt from π_SFT, the one the ranker
scores highest is kept. Its KL to π_SFT depends only on the distribution of the ranker's score
under π_SFT (Beirami et al. 2024): ``eval/kl`` is that exact KL for the score distribution
estimated from ``kl_samples`` samples per prompt at T = 1 (``best_of_n_kl_estimate``; repeated
scores are atoms — ties —, the rest a continuous part), ``eval/kl_bound`` the upper bound
log N − (N − 1)/N, which it equals when no two samples tie.

Layer: evaluation (the LM half; ``bench.evaluation`` is the control half). The evaluator reads the
run's context through ``bench.artifacts.LMContext``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from bench.artifacts import LMContext
from bench.lm.generation import sample, score, sequence_kl
from bench.recorder import Recorder

EVAL_SEED_BASE = 1_000_000  # generators of evaluation samples; pipeline samples use the run seed

# (prompt ids, completion ids, completion texts, prompt texts) -> one score per completion
Ranker = Callable[[list[list[int]], list[list[int]], list[str], list[str]], np.ndarray]


def best_of_n_kl_bound(n: int) -> float:
    """log N − (N − 1)/N: the KL(π_BoN ‖ π) of Best-of-N when the ranker's score has a continuous
    distribution (no ties); an upper bound in general (Beirami et al. 2024)."""
    return math.log(n) - (n - 1) / n


def best_of_n_kl_exact(masses, n: int) -> float:
    """KL(π_BoN ‖ π) for a ranker whose score takes finitely many values with probabilities
    ``masses`` (in increasing order of the score), ties among the N samples broken by sample
    order. With F the score's CDF and F⁻ its left limit, P(best score = v) = F(v)^N − F⁻(v)^N
    and, given it, the kept sample is π restricted to score v, so
    KL = Σ_v (F^N − F⁻^N) log((F^N − F⁻^N) / (F − F⁻))."""
    p = np.asarray(masses, np.float64)
    p = p / p.sum()
    F = np.cumsum(p)
    g = F**n - (F - p) ** n
    keep = (p > 0) & (g > 0)
    return float(np.sum(g[keep] * np.log(g[keep] / p[keep])))


def _continuous_part(u0: float, u1: float, n: int) -> float:
    """∫_{u0}^{u1} n u^{n−1} log(n u^{n−1}) du: the KL contribution of a continuous stretch of the
    score distribution between the quantiles u0 and u1 (all of [0, 1] gives the bound)."""

    def antiderivative(u: float) -> float:
        if u <= 0:
            return 0.0
        return u**n * math.log(n) + (n - 1) * (u**n * math.log(u) - u**n / n)

    return antiderivative(u1) - antiderivative(u0)


def best_of_n_kl_estimate(scores, n: int, decimals: int = 6) -> float:
    """KL(π_BoN ‖ π) estimated from M samples of the ranker's score under π (one prompt): a score
    value seen more than once (after rounding to ``decimals``) is an atom with its sample
    frequency (exact formula for ties), values seen once are a continuous part of the
    distribution (the tie-free formula on their stretch of quantiles). All values distinct: the
    bound log N − (N − 1)/N; all equal: 0; M → ∞ on a discrete score: the exact KL."""
    if n <= 1:
        return 0.0
    values, counts = np.unique(np.round(np.asarray(scores, np.float64), decimals), return_counts=True)
    m = counts.sum()
    kl, u0 = 0.0, 0.0
    for c in counts:
        u1 = u0 + c / m
        if c > 1:
            g = u1**n - u0**n
            kl += g * math.log(g / (c / m)) if g > 0 else 0.0
        else:
            kl += _continuous_part(u0, u1, n)
        u0 = u1
    return kl


class LMEvaluator:
    def __init__(
        self,
        ctx: LMContext,
        recorder: Recorder,
        seed: int,
        eval_every: int,
        temperatures: list[float],
        final_temperatures: list[float] | None = None,
        keep_samples: int = 8,
        kl_batch: int = 64,
    ):
        self.ctx, self.recorder = ctx, recorder
        self.seed = EVAL_SEED_BASE + 1000 * seed
        self.eval_every, self.temperatures = eval_every, temperatures
        self.final_temperatures = final_temperatures or temperatures
        self.keep_samples, self.kl_batch = keep_samples, kl_batch
        prompts = ctx.prompts()
        test = prompts["test"]
        self.prompt_text = [t for t, _ in test]
        self.prompt_ids = [ids for _, ids in test]
        self.references: list[str] | None = prompts.get("test_refs")
        self._reference_gold: np.ndarray | None = None
        tok = ctx.tokenizer()
        self.tok, self.eos, self.pad = tok, tok.eos_token_id, tok.pad_token_id
        self.next_eval = eval_every
        # the learned reward a method optimises (set by it): recorded beside the gold at every
        # evaluation as eval/proxy_reward, the over-optimisation analysis's proxy
        self.proxy: Ranker | None = None

    def due(self, step: int) -> bool:
        return step >= self.next_eval

    def _generator(self, temperature: float) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + int(round(temperature * 1000)))

    def _sample(self, model, prompts: list[list[int]], temperature: float) -> list[list[int]]:
        return sample(model, prompts, temperature, self.ctx.setup.max_new_tokens, self.eos, self.pad,
                      generator=self._generator(temperature))  # fmt: skip

    @torch.no_grad()
    def kl(self, policy, completions: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        ref = self.ctx.reference()
        was_training = policy.training
        policy.eval()
        exact, k1 = [], []
        for i in range(0, len(completions), self.kl_batch):
            p, c = self.prompt_ids[i : i + self.kl_batch], completions[i : i + self.kl_batch]
            kl, est = sequence_kl(score(policy, p, c, self.pad), score(ref, p, c, self.pad))
            exact.append(kl.cpu().numpy())
            k1.append(est.cpu().numpy())
        policy.train(was_training)
        return np.concatenate(exact), np.concatenate(k1)

    def reference_gold(self) -> np.ndarray:
        """Gold reward of each test prompt's reference completion (tasks with references)."""
        if self._reference_gold is None:
            self._reference_gold = self.ctx.gold()(self.references, self.prompt_text)
        return self._reference_gold

    def gold(self, texts: list[str]) -> np.ndarray:
        """Gold reward of one completion text per test prompt."""
        return self.ctx.gold()(texts, self.prompt_text)

    def _record(self, step, temp, completions, texts, gold, final: bool, proxy=None) -> None:
        n = len(gold)
        rec = self.recorder
        rec.eval(step, temp, "eval/return", gold.mean(), n)
        if proxy is None and self.proxy is not None:
            proxy = self.proxy(self.prompt_ids, completions, texts, self.prompt_text)
        if proxy is not None:
            rec.eval(step, temp, "eval/proxy_reward", float(np.mean(proxy)), n)
        rec.eval(step, temp, "eval/return_std", gold.std(), n)
        rec.eval(step, temp, "eval/length", float(np.mean([len(c) for c in completions])), n)
        if self.references is not None:
            ref = self.reference_gold()
            wins = np.where(np.isclose(gold, ref), 0.5, (gold > ref).astype(float))
            rec.eval(step, temp, "eval/win_rate", wins.mean(), n)
            for name, metric in self.ctx.task.reference_metrics.items():
                rec.eval(step, temp, name, float(np.mean(metric(self.references, texts))), n)
            if final:
                rec.outcome(temp, "eval/win_rate", wins)
        if final:
            rec.outcome(temp, "eval/return", gold)
            for prompt, text, g in zip(self.prompt_text, texts[: self.keep_samples], gold, strict=False):
                rec.sample(step, temp, prompt, text, float(g))

    def __call__(self, step: int, policy, temperatures: list[float] | None = None,
                 final: bool = False) -> dict[float, float]:  # fmt: skip
        """Evaluate ``policy`` now; returns the mean gold reward per temperature."""
        t0 = time.perf_counter()
        self.ctx.in_eval = True
        means = {}
        for temp in self.temperatures if temperatures is None else temperatures:
            completions = self._sample(policy, self.prompt_ids, temp)
            texts = self.tok.batch_decode(completions, skip_special_tokens=True)
            gold = self.gold(texts)
            self._record(step, temp, completions, texts, gold, final)
            if temp == 1.0:
                kl, k1 = self.kl(policy, completions)
                self.recorder.eval(step, temp, "eval/kl", kl.mean(), len(kl))
                self.recorder.eval(step, temp, "eval/kl_std", kl.std(), len(kl))
                self.recorder.eval(step, temp, "eval/kl_k1", k1.mean(), len(k1))
            means[temp] = float(gold.mean())
        self.ctx.in_eval = False
        self.recorder.eval_seconds += time.perf_counter() - t0
        while self.next_eval <= step:
            self.next_eval += self.eval_every
        return means

    def final(self, step: int, policy) -> None:
        """The end-of-training evaluation over the final temperatures (with text samples)."""
        self(step, policy, self.final_temperatures, final=True)

    def best_of_n(self, n: int, ranker: Ranker, kl_samples: int = 64, ranker_is_proxy: bool = False) -> None:
        """Best-of-``n`` from π_SFT at every final temperature. At T = 1 its KL: ``eval/kl`` estimated
        from max(n, ``kl_samples``) ranker scores per prompt (the n candidates and fresh samples),
        ``eval/kl_bound`` the tie-free bound. ``ranker_is_proxy``: the ranker is a learned reward,
        whose score of the kept samples is recorded as ``eval/proxy_reward``."""
        t0 = time.perf_counter()
        self.ctx.in_eval = True
        ref = self.ctx.reference()
        P = len(self.prompt_ids)
        for temp in self.final_temperatures:
            flat = [ids for ids in self.prompt_ids for _ in range(n)]
            flat_text = [t for t in self.prompt_text for _ in range(n)]
            comps = self._sample(ref, flat, temp)
            texts = self.tok.batch_decode(comps, skip_special_tokens=True)
            scores = np.asarray(ranker(flat, comps, texts, flat_text)).reshape(P, n)
            best = scores.argmax(axis=1)
            chosen = [comps[i * n + b] for i, b in enumerate(best)]
            chosen_text = [texts[i * n + b] for i, b in enumerate(best)]
            proxy = scores[np.arange(P), best] if ranker_is_proxy else None
            self._record(0, temp, chosen, chosen_text, self.gold(chosen_text), final=True, proxy=proxy)
            if temp == 1.0:
                pool = scores
                extra = max(0, kl_samples - n) if n > 1 else 0
                if extra:  # more samples of the score distribution, from a stream of their own
                    more_ids = [ids for ids in self.prompt_ids for _ in range(extra)]
                    more_text = [t for t in self.prompt_text for _ in range(extra)]
                    more = sample(ref, more_ids, temp, self.ctx.setup.max_new_tokens, self.eos, self.pad,
                                  generator=torch.Generator().manual_seed(self.seed + 7_777))  # fmt: skip
                    more_texts = self.tok.batch_decode(more, skip_special_tokens=True)
                    pool = np.concatenate(
                        [scores, np.asarray(ranker(more_ids, more, more_texts, more_text)).reshape(P, extra)],
                        1,
                    )
                kl = np.array([best_of_n_kl_estimate(row, n) for row in pool])
                self.recorder.eval(0, temp, "eval/kl", float(kl.mean()), len(kl))
                self.recorder.eval(0, temp, "eval/kl_std", float(kl.std()), len(kl))
                self.recorder.eval(0, temp, "eval/kl_bound", best_of_n_kl_bound(n), len(kl))
                self.recorder.eval(0, temp, "eval/kl_samples", float(pool.shape[1]), len(kl))
        self.ctx.in_eval = False
        self.recorder.eval_seconds += time.perf_counter() - t0
