"""Gold rewards: scorers that no one here trained, chosen by name in the suite.

* ``vader`` — the compound score in [−1, 1] of VADER (Hutto & Gilbert 2014, ``vaderSentiment``),
  a lexicon-and-rules sentiment model, applied to the continuation alone (not the prompt).
* ``summary-judge`` — the summarisation task's deterministic judge (``bench.lm.summaries.judge``):
  fact recall and precision of a summary against its document, with penalties for invented
  facts and for length beyond a budget;
* ``hf-rm:NAME`` — a judge reward model (a transformers sequence-classification model with one
  output, e.g. ``OpenAssistant/reward-model-deberta-v3-large-v2``) scoring prompt and
  completion as a text pair; the paper-scale stand-in for the DPO paper's GPT-4 judge;
* ``hf:NAME`` — a transformers sequence classifier (hub name or local path), e.g. the DPO
  paper's ``hf:siebert/sentiment-roberta-large-english``; the score is
  P(positive) − P(negative) from its labels, also in [−1, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (completions, prompts) -> one score per completion; sentiment scorers read the completion only
Scorer = Callable[[list[str], list[str]], np.ndarray]


def vader() -> Scorer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def score(texts: list[str], prompts: list[str] | None = None) -> np.ndarray:
        return np.array([analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)

    return score


def hf_classifier(name: str, batch_size: int = 64) -> Scorer:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name)
    model = AutoModelForSequenceClassification.from_pretrained(name).eval()
    labels = {int(i): str(v).lower() for i, v in model.config.id2label.items()}
    pos = [i for i, v in labels.items() if v.startswith("pos")]
    neg = [i for i, v in labels.items() if v.startswith("neg")]
    if len(pos) != 1 or len(neg) != 1:
        raise ValueError(f"gold classifier {name}: needs one positive and one negative label, has {labels}")

    @torch.no_grad()
    def score(texts: list[str], prompts: list[str] | None = None) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], return_tensors="pt", padding=True, truncation=True)
            probs = model(**enc).logits.softmax(-1)
            out.append((probs[:, pos[0]] - probs[:, neg[0]]).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    return score


def hf_reward_model(name: str, batch_size: int = 16) -> Scorer:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name)
    model = AutoModelForSequenceClassification.from_pretrained(name).eval()
    if model.config.num_labels != 1:
        raise ValueError(f"judge reward model {name}: needs one output, has {model.config.num_labels}")

    @torch.no_grad()
    def score(texts: list[str], prompts: list[str] | None = None) -> np.ndarray:
        if prompts is None:
            raise ValueError("a judge reward model needs the prompts of the completions")
        out = []
        for i in range(0, len(texts), batch_size):
            enc = tok(prompts[i : i + batch_size], texts[i : i + batch_size], return_tensors="pt",
                      padding=True, truncation=True)  # fmt: skip
            out.append(model(**enc).logits[:, 0].float().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    return score


def summary_judge() -> Scorer:
    from bench.lm.summaries import judge

    def score(texts: list[str], prompts: list[str] | None = None) -> np.ndarray:
        if prompts is None:
            raise ValueError("the summary judge needs the prompts (documents) of the summaries")
        return judge(prompts, texts)

    return score


def get_gold(name: str) -> Scorer:
    if name == "vader":
        return vader()
    if name == "summary-judge":
        return summary_judge()
    if name.startswith("hf-rm:") and len(name) > 6:
        return hf_reward_model(name[6:])
    if name.startswith("hf:") and len(name) > 3:
        return hf_classifier(name[3:])
    raise ValueError(
        f"unknown gold scorer {name!r}: use 'vader', 'summary-judge', 'hf:MODEL' or 'hf-rm:MODEL'"
        " (hub name or local path)"
    )
