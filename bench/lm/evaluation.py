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
intervals over prompts as well as seeds.

Best-of-N is evaluated by ``best_of_n``: N samples per prompt from π_SFT, the one the ranker
scores highest is kept; its KL to π_SFT is the analytic log N − (N − 1)/N.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from bench.lm.generation import sample, score, sequence_kl
from bench.lm.setup import EVAL_SEED_BASE, LMContext
from bench.recorder import Recorder

# (prompt ids, completion ids, completion texts, prompt texts) -> one score per completion
Ranker = Callable[[list[list[int]], list[list[int]], list[str], list[str]], np.ndarray]


def best_of_n_kl(n: int) -> float:
    """KL(π_BoN ‖ π_ref) for Best-of-N: log N − (N − 1)/N (Stiennon et al. 2020; Beirami et al. 2024
    show it is an upper bound)."""
    return math.log(n) - (n - 1) / n


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

    def _record(self, step, temp, completions, texts, gold, final: bool) -> None:
        n = len(gold)
        rec = self.recorder
        rec.eval(step, temp, "eval/return", gold.mean(), n)
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

    def best_of_n(self, n: int, ranker: Ranker) -> None:
        """Best-of-``n`` from π_SFT at every final temperature; KL analytic (recorded at T = 1)."""
        t0 = time.perf_counter()
        self.ctx.in_eval = True
        ref = self.ctx.reference()
        for temp in self.final_temperatures:
            flat = [ids for ids in self.prompt_ids for _ in range(n)]
            flat_text = [t for t in self.prompt_text for _ in range(n)]
            comps = self._sample(ref, flat, temp)
            texts = self.tok.batch_decode(comps, skip_special_tokens=True)
            scores = np.asarray(ranker(flat, comps, texts, flat_text)).reshape(len(self.prompt_ids), n)
            best = scores.argmax(axis=1)
            chosen = [comps[i * n + b] for i, b in enumerate(best)]
            chosen_text = [texts[i * n + b] for i, b in enumerate(best)]
            self._record(0, temp, chosen, chosen_text, self.gold(chosen_text), final=True)
            if temp == 1.0:
                self.recorder.eval(0, temp, "eval/kl", best_of_n_kl(n), len(chosen))
        self.ctx.in_eval = False
        self.recorder.eval_seconds += time.perf_counter() - t0
