"""bench.lm.corpus: determinism, label shares, VADER polarity, neutral openings and diversity."""

import re
from collections import Counter

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from bench.lm import corpus
from bench.lm.corpus import Review, generate_reviews

POSITIVE_SLOTS = ("pos", "posverb", "negatable_pos", "mild_pos", "perf_pos")
NEGATIVE_SLOTS = ("neg", "negverb", "negnoun", "negatable_neg", "mild_neg", "perf_neg")


@pytest.fixture(scope="module")
def vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@pytest.fixture(scope="module")
def reviews() -> list[Review]:
    return generate_reviews(20_000, seed=0)


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!]) ", text, maxsplit=1)[0]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_deterministic_in_seed():
    assert generate_reviews(300, seed=3) == generate_reviews(300, seed=3)
    assert generate_reviews(300, seed=3) != generate_reviews(300, seed=4)
    assert generate_reviews(0, seed=3) == []


def test_sentiment_shares():
    shares = Counter(r.sentiment for r in generate_reviews(5000, seed=1))
    assert set(shares) == {"positive", "negative", "mixed"}
    assert shares["positive"] / 5000 == pytest.approx(0.45, abs=0.03)
    assert shares["negative"] / 5000 == pytest.approx(0.45, abs=0.03)
    assert shares["mixed"] / 5000 == pytest.approx(0.10, abs=0.03)


def test_format(reviews):
    for review in reviews:
        text = review.text
        assert text.isascii() and text == text.strip() and "  " not in text
        assert text[0].isupper() and text[-1] in ".!"
        assert 2 <= len(re.findall(r"[.!](?: |$)", text)) <= 5
        assert 20 <= len(text.split()) <= 60


def test_opinion_words_carry_the_right_vader_sign(vader):
    positive = [w for slot in POSITIVE_SLOTS for w in corpus._WORDS[slot]]
    negative = [w for slot in NEGATIVE_SLOTS for w in corpus._WORDS[slot]]
    positive += [w for ws in corpus._CATEGORY_POS.values() for w in ws]
    negative += [w for ws in corpus._CATEGORY_NEG.values() for w in ws]
    assert all(vader.polarity_scores(w)["compound"] > 0 for w in positive), positive
    assert all(vader.polarity_scores(w)["compound"] < 0 for w in negative), negative

    # negation flips them, which the "not ... at all" templates rely on
    def negated(word: str) -> float:
        return vader.polarity_scores(f"it was not {word}")["compound"]

    assert all(negated(w) < 0 for w in corpus._WORDS["negatable_pos"])
    assert all(negated(w) > 0 for w in corpus._WORDS["negatable_neg"])


def test_neutral_vocabulary_is_outside_the_vader_lexicon(vader):
    opinion_slots = set(POSITIVE_SLOTS + NEGATIVE_SLOTS)
    texts = [text for slot, options in corpus._WORDS.items() if slot not in opinion_slots for text in options]
    texts += [*corpus._OPENINGS, *corpus._PLOT, *(phrase for phrase, _, _ in corpus._ASPECTS)]
    scored = {w for text in texts for w in words(text) if w in vader.lexicon}
    assert not scored


def test_vader_agrees_with_labels(reviews, vader):
    for label, sign in (("positive", 1), ("negative", -1)):
        texts = [r.text for r in reviews if r.sentiment == label][:500]
        scores = [sign * vader.polarity_scores(t)["compound"] for t in texts]
        assert len(scores) == 500
        assert sum(scores) / len(scores) > 0.5
        assert sum(s > 0 for s in scores) / len(scores) >= 0.9


def test_first_sentence_is_mostly_neutral(reviews, vader):
    firsts = [first_sentence(r.text) for r in reviews[:3000]]
    neutral = sum(abs(vader.polarity_scores(s)["compound"]) < 0.05 for s in firsts)
    assert neutral / len(firsts) >= 0.8


def test_diversity(reviews):
    texts = [r.text for r in reviews]
    assert len(set(texts)) / len(texts) >= 0.95
    assert len({tuple(t.split()[:2]) for t in texts}) >= 300
    assert len({tuple(t.split()[:3]) for t in texts}) >= 1000
    assert len({w for t in texts for w in words(t)}) >= 500
