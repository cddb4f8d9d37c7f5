"""bench.lm.summaries: generated articles, fact extraction, the gold judge and ROUGE-L."""

import re
from collections import Counter

import numpy as np
import pytest

from bench.lm import summaries
from bench.lm.summaries import (
    SEPARATOR,
    Article,
    extract_facts,
    generate_articles,
    judge,
    judge_details,
    key_facts,
    rouge_l,
    split_article,
)

DOC = (
    "The city council approved a new bridge after a long meeting. "
    "The meeting was held at the old town hall in Marlow. "
    "The project is expected to cost 30 million over several years. "
    "Last year, Brindle spent 40 million on a similar project. "
    "The vote took place on Tuesday in front of a small crowd. "
    "Residents had waited a long time for news about the plan."
)
KEY = {"city council", "new bridge", "marlow", "30", "tuesday"}
PROMPT = DOC + SEPARATOR
# 17 words, every key fact
PERFECT = "The city council in Marlow approved a new bridge on Tuesday at a cost of 30 million."


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    return generate_articles(2000, seed=0)


@pytest.fixture(scope="module")
def details(articles) -> list[dict]:
    return [judge_details(a.prompt, a.reference) for a in articles]


def sentences(document: str) -> list[str]:
    return re.split(r"(?<=[.!?]) ", document)


# --- facts ----------------------------------------------------------------------------------


def test_extract_facts_normalises_mentions():
    text = "Mayor ADA  Fenn met 7 to 02 in Marlow's hall on tuesday; Fenn and Ada left the Water Board."
    assert extract_facts(text) == {"ada fenn", "7", "2", "marlow", "tuesday", "water board"}
    assert extract_facts("") == set()
    assert extract_facts("The meeting ran late into the evening.") == set()
    assert extract_facts("x007y 0 000") == {"7", "0"}


def test_key_facts_of_a_hand_written_document():
    assert key_facts(DOC) == KEY
    assert key_facts(PROMPT) == KEY
    assert extract_facts(DOC) == KEY | {"brindle", "40"}


def test_templates_hold_no_facts_of_their_own():
    templates = [
        *summaries._LEADS,
        *summaries._LEADS_WHEN,
        *(t for ts in summaries._KEY_SENTENCES.values() for t in ts),
        *summaries._FILLERS,
        *summaries._DISTRACTORS,
        *summaries._VOTE_PHRASES,
        *summaries._COST_PHRASES,
        *summaries._COUNT_PHRASES,
        *summaries._PAD_PREFIXES,
        *summaries._PAD_SUFFIXES,
        *(t for ts in summaries._BACKGROUND_PHRASES.values() for t in ts),
        *summaries._TITLES,
        *summaries._VERBS,
        *summaries._UNITS,
    ]
    for template in templates:
        assert extract_facts(re.sub(r"\{\w+\}", " ", template)) == set(), template


def test_lexicon_items_are_found_alone_and_whole():
    items = [
        *summaries._ORGS,
        *(obj for _, obj in summaries._OBJECTS),
        *summaries._TOWNS,
        *summaries._DAYS,
        *summaries._MONTHS,
    ]
    assert len(set(item.lower() for item in items)) == len(items)
    for item in items:
        assert extract_facts(f"Then {item}, again.") == {item.lower()}
    assert extract_facts("Ada Fenn") == {"ada fenn"}
    assert extract_facts("Ada or Fenn") == set()


# --- the judge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "score"),
    [
        (PERFECT, 1.0),
        ("The city council in Marlow approved a new bridge at a cost of 30 million.", 0.8),  # no day
        ("The city council in Marlow approved a new bridge on Tuesday for 30 million, like Brindle.", 0.75),
        ("The city council in Marlow approved a new bridge on Tuesday for 30 million, not Oskton.", 0.75),
        (
            "After a long debate, the city council in Marlow approved a new bridge on Tuesday "
            "at a cost of 30 million, as many had expected.",
            0.75,  # 25 words: 5 past the budget
        ),
        ("", 0.0),
        ("TL;DR: TL;DR: the the the", 0.0),
        ("Marlow Marlow Marlow Marlow", 0.2),
        ("zzz qqq 99 99 Friday", -0.5),  # two invented facts
        ("Marlow, 007 and 30", 0.4 - 0.25),  # 7 is invented
        ("word " * 1000, -1.0),  # clipped
    ],
)
def test_judge_hand_computed_scores(summary, score):
    assert judge([PROMPT], [summary])[0] == pytest.approx(score)
    assert judge_details(PROMPT, summary)["score"] == pytest.approx(score)


def test_judge_details():
    assert judge_details(PROMPT, PERFECT) == {
        "recall": 1.0,
        "precision": 1.0,
        "invented": 0,
        "distractors": 0,
        "words": 17,
        "score": 1.0,
    }
    noisy = judge_details(PROMPT, "In the end, " + PERFECT[:-1] + ", with Brindle and 40 in Oskton in June.")
    assert noisy["recall"] == 1.0 and noisy["distractors"] == 2 and noisy["invented"] == 2
    assert noisy["precision"] == pytest.approx(5 / 9)
    assert noisy["words"] == 28
    assert noisy["score"] == pytest.approx(1 - 0.25 * 2 - 0.25 * 2 - 0.05 * 8)
    empty = judge_details(PROMPT, "   ")
    assert empty == {
        "recall": 0.0,
        "precision": 0.0,
        "invented": 0,
        "distractors": 0,
        "words": 0,
        "score": 0.0,
    }


def test_judge_prompt_forms_budget_and_types():
    scores = judge([PROMPT, DOC, DOC + " TL;DR: " + PERFECT], [PERFECT] * 3)
    assert scores.dtype == np.float64 and scores.shape == (3,)
    assert scores.tolist() == [1.0, 1.0, 1.0]
    assert judge([PROMPT], [PERFECT], budget=10)[0] == pytest.approx(1 - 0.05 * 7)
    assert judge([], []).shape == (0,)
    assert judge(["no facts here."], ["none here either"])[0] == 0.0
    with pytest.raises(ValueError):
        judge([PROMPT], [])


def test_judge_repeated_facts_do_not_add_up():
    once = "Marlow new bridge"
    assert judge([PROMPT], [once])[0] == pytest.approx(0.4)
    assert judge([PROMPT], [" ".join([once] * 6)])[0] == pytest.approx(0.4)  # 18 words, inside the budget


# --- generated articles ---------------------------------------------------------------------


def test_deterministic_in_seed():
    first = generate_articles(200, seed=3)
    assert first == generate_articles(200, seed=3)
    assert first != generate_articles(200, seed=4)
    assert generate_articles(50, seed=3) == first[:50]
    assert generate_articles(0, seed=3) == []


def test_article_text_prompt_and_split(articles):
    for article in articles[:200]:
        assert article.prompt == article.document + " TL;DR:"
        assert article.text == article.prompt + " " + article.reference
        assert split_article(article.text) == (article.prompt, article.reference)
    assert split_article("no separator here") is None
    assert split_article("doc TL;DR:  sum ") == ("doc TL;DR:", "sum")


def test_document_format(articles):
    for article in articles:
        document = article.document
        assert document.isascii() and "  " not in document and "TL;DR" not in document
        parts = sentences(document)
        assert 4 <= len(parts) <= 6
        assert 45 <= len(document.split()) <= 80
        background = [s for s in parts if s.startswith(summaries._CUES)]
        assert 1 <= len(background) <= 2
        assert not parts[0].startswith(summaries._CUES)
        assert all(extract_facts(s) for s in background)


def test_key_facts_are_recorded_spread_and_distinct_from_background(articles):
    for article in articles:
        key = set(article.key_facts)
        assert key_facts(article.document) == key
        assert list(article.key_facts) == sorted(key)
        assert 5 <= len(key) <= 7
        assert extract_facts(article.document) - key  # background facts exist, and differ
        assert not key <= extract_facts(sentences(article.document)[0])  # first sentence is not enough


def test_references_never_invent_facts(articles):
    for article in articles:
        assert "None" not in article.reference
        assert extract_facts(article.reference) <= extract_facts(article.document)
        assert article.reference[0].isupper() and article.reference.endswith(".")


def test_reference_kind_shares(articles):
    shares = Counter(a.kind for a in articles)
    assert set(shares) == {"complete", "missing", "vague", "wordy", "distracted"}
    kinds = (("complete", 0.35), ("missing", 0.25), ("vague", 0.15), ("wordy", 0.125), ("distracted", 0.125))
    for kind, share in kinds:
        assert shares[kind] / len(articles) == pytest.approx(share, abs=0.04)


def test_reference_kinds_score_as_designed(articles, details):
    by_kind: dict[str, list[dict]] = {}
    for article, detail in zip(articles, details, strict=True):
        by_kind.setdefault(article.kind, []).append(detail)
        assert detail["invented"] == 0
        key = len(article.key_facts)
        if article.kind == "complete":
            assert detail["score"] == 1.0
        elif article.kind == "missing":
            missing = round(key * (1 - detail["recall"]))
            assert 1 <= missing <= 2 and detail["distractors"] == 0 and detail["words"] <= 20
        elif article.kind == "vague":
            assert round(key * detail["recall"]) <= 4 and detail["distractors"] == 0  # a vote is two
        elif article.kind == "wordy":
            assert detail["recall"] == 1.0 and detail["distractors"] == 0 and detail["words"] > 20
        else:
            assert detail["recall"] == 1.0 and detail["distractors"] == 1
    mean = {kind: np.mean([d["score"] for d in ds]) for kind, ds in by_kind.items()}
    assert mean["complete"] == 1.0
    assert mean["complete"] > mean["wordy"] > mean["missing"]
    assert mean["wordy"] > mean["distracted"]
    assert mean["missing"] == pytest.approx(mean["distracted"], abs=0.1)
    assert mean["vague"] < mean["missing"]


def test_judge_matches_details(articles, details):
    scores = judge([a.prompt for a in articles], [a.reference for a in articles])
    assert scores.tolist() == [d["score"] for d in details]


def test_small_vocabulary(articles):
    words = {w.strip(".,:;").lower() for a in articles for w in (a.document + " " + a.reference).split()}
    assert len({w for w in words if not w.isdigit()}) < 450


# --- ROUGE-L ---------------------------------------------------------------------------------


def test_rouge_l():
    scores = rouge_l(
        [PERFECT, "the city council", "alpha beta gamma delta", "abc"],
        [PERFECT, "a new bridge", "alpha gamma", ""],
    )
    assert scores.dtype == np.float64
    assert scores[0] == 1.0 and scores[1] == 0.0 and scores[3] == 0.0
    assert scores[2] == pytest.approx(2 * (2 / 2) * (2 / 4) / (2 / 2 + 2 / 4))
    with pytest.raises(ValueError):
        rouge_l(["a"], [])
