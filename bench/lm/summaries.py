"""A generated news-article summarisation task, judged by a deterministic gold judge.

This is the offline stand-in for the TL;DR summarisation task of the DPO paper: a small model is
fine-tuned on ``document TL;DR: reference`` and methods are compared by how often the gold judge
prefers their summary to the reference. Everything is generated from a small grammar (a few hundred
words), so a byte-level BPE of about 1024 tokens covers it with mostly whole-word tokens.

Documents
---------
Each article reports one event, in 4–6 sentences and 45–80 words. The event fills these slots:

* WHO — an organisation (``the city council``), a person (``Ada Fenn``, with a title such as
  ``Mayor`` when acting alone) or both (the person then leads or comments on the decision);
* WHAT — a verb (``approved``, ``rejected``, ...) and an event object (``a new bridge``);
* WHERE — an invented town (``Marlow``, ``Oskton``, ...);
* WHEN — a weekday or a month (never ``May``, which is also an ordinary word);
* NUMBER — a vote (``7 to 2``), a cost (``40 million``), a count (``300 homes``), or two of them.

The first sentence names who did what (sometimes also where or when); the other slots follow in
their own sentences, so copying the first sentence is never a complete summary. Mixed in are one or
two *distractor* sentences about other towns, people, costs and years, and up to two *filler*
sentences with no facts. A distractor sentence always opens with one of the background cues in
``_CUES`` ("Last year,", "In a separate matter,", "By comparison,", "Years ago,", "Elsewhere,",
"Back in"), which is how the judge tells it apart; no other sentence opens with a cue. Every fact of
a distractor sentence differs from every key fact.

Facts
-----
``extract_facts`` finds fact mentions in any text, case-insensitively, and normalises them:

* a person: a lexicon first name followed by a lexicon surname, as ``"ada fenn"`` (one fact; a bare
  first name or surname is not a fact, and titles such as ``Mayor`` are ignored);
* an organisation without its article: ``"city council"``;
* an event object without its article: ``"new bridge"``;
* a town, weekday or month: ``"marlow"``, ``"tuesday"``, ``"june"``;
* every run of digits, without leading zeros: ``"7 to 2"`` is two facts, ``"7"`` and ``"2"``;
  ``"40 million"`` is ``"40"``; a year is a number like any other.

Verbs are not facts. ``key_facts(document)`` is the union of the facts of the document's
non-distractor sentences: 5–7 per article (who 1–2, object, town, when, 1–3 numbers).

The gold judge
--------------
For a summary ``s`` of document ``d``, with ``K = key_facts(d)``, ``D = extract_facts(d)`` (facts
anywhere in ``d``, distractor sentences included) and ``M = extract_facts(s)``::

    recall      = |M ∩ K| / |K|                 (0 when K is empty)
    distractors = |M ∩ (D \\ K)|                 background facts pulled into the summary
    invented    = |M \\ D|                       facts the document never mentions
    words       = len(s.split())
    score       = clip(recall − 0.25·distractors − 0.25·invented − 0.05·max(0, words − budget), −1, 1)

with ``budget = 20`` words by default. Facts are sets, so repeating a fact gains nothing, and an
empty summary scores 0. A complete summary within the budget scores exactly 1; missing one of five
key facts costs 0.2, a background or an invented fact 0.25, every word past the budget 0.05.
``precision = |M ∩ K| / |M|`` (0 when M is empty) is reported by ``judge_details`` but not scored.

References
----------
Each article has one imperfect "human-written" reference summary of one sentence, built from
several word orders (active, passive, fronted time, headline style), whose ``kind`` is drawn as:

* ``complete`` (35%) — every key fact, at most ``budget`` words: scores 1;
* ``missing`` (25%) — one or two key facts left out (a vote counts as two), within the budget;
* ``vague`` (15%) — a lazy summary: who, the object and one more fact only;
* ``wordy`` (12.5%) — every key fact, padded with phrases without facts past the budget;
* ``distracted`` (12.5%) — every key fact plus one fact of a distractor sentence.

References never mention a fact absent from their document. Generation is deterministic in the
seed: all draws come from one ``random.Random(seed)``, article after article, so the first ``k`` of
``generate_articles(n, seed)`` are ``generate_articles(k, seed)``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SEPARATOR = " TL;DR:"

_BUDGET = 20
_DISTRACTOR_PENALTY = 0.25
_INVENTED_PENALTY = 0.25
_LENGTH_PENALTY = 0.05
_MIN_WORDS, _MAX_WORDS = 45, 80
_MIN_SENTENCES, _MAX_SENTENCES = 4, 6


@dataclass(frozen=True)
class Article:
    document: str  # the news article
    reference: str  # the imperfect "human-written" reference summary
    key_facts: tuple[str, ...]  # sorted, normalised as extract_facts writes them
    kind: str  # "complete" | "missing" | "wordy" | "distracted"

    @property
    def text(self) -> str:
        """The SFT training text: document, separator and reference."""
        return f"{self.document}{SEPARATOR} {self.reference}"

    @property
    def prompt(self) -> str:
        """The document and the separator; a summary follows after a space."""
        return f"{self.document}{SEPARATOR}"


def _alts(text: str) -> tuple[str, ...]:
    """The options of a lexicon, written as one string separated by ``|``."""
    return tuple(option.strip() for option in text.split("|"))


# Lexicons of facts. No item is a word or a run of words of another, nor of any template.
_FIRST = _alts("Ada | Bram | Cora | Dov | Edda | Finn | Greta | Hal")
_LAST = _alts("Fenn | Albright | Brask | Corvin | Dunmore | Ekland | Farrow | Gilder")
_TOWNS = _alts(
    "Marlow | Brindle | Oskton | Averly | Bexham | Calder | Dunwick | Elsford | Fallowby | Garrick "
    "| Halden | Kelby"
)
_ORGS = _alts(
    "city council | school board | planning board | water board | parks committee | housing committee "
    "| library trust | port authority"
)
# (article, object)
_OBJECTS: tuple[tuple[str, str], ...] = tuple(("a", o) for o in _alts(
    "new bridge | new school | new clinic | new library | bus route | skate park | sports hall | flood wall"
)) + tuple(("the", o) for o in _alts(
    "road budget | parking plan | housing plan | speed limit"
))  # fmt: skip
_DAYS = _alts("Monday | Tuesday | Wednesday | Thursday | Friday | Saturday | Sunday")
_MONTHS = _alts(
    "January | February | March | April | June | July | August | September | October | November | December"
)
_VERBS = _alts("approved | rejected | delayed | backed | blocked | postponed")
_TITLES = _alts("Mayor | Councillor | Planning Chief | Board Chair | Town Manager")
_UNITS = _alts("homes | families | residents | pupils")

# The openers that mark a background (distractor) sentence.
_CUES = ("Last year,", "In a separate matter,", "By comparison,", "Years ago,", "Elsewhere,", "Back in")

# Document sentences. Slots: {who} subject, {verb}, {obj} with its article, {town}, {when} ("on
# Tuesday", "in June"), {a} to {b} a vote, {cost} millions, {n} {unit} a count, {person}.
_LEADS = _alts(
    "{who} {verb} {obj} at a public meeting this week. | {who} has {verb} {obj}, ending months of doubt. "
    "| {who} {verb} {obj} after a long and sometimes tense meeting. "
    "| After weeks of debate, {who} {verb} {obj}. "
    "| {who} narrowly {verb} {obj} in a decision that surprised few. "
    "| In a move that drew a large crowd, {who} {verb} {obj}."
)
_LEADS_WHEN = _alts(
    "{who} {verb} {obj} {when}, after hearing from local residents. "
    "| {when}, {who} {verb} {obj} at a packed public meeting. "
    "| {who} {verb} {obj} late {when}, ending a long debate."
)
_KEY_SENTENCES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("town",): _alts(
        "The decision affects families across the whole of {town}. "
        "| The meeting was held at the old town hall in {town}. "
        "| The plan covers the north side of {town}, near the river. "
        "| It is the biggest decision in {town} for quite some time. "
        "| Many people in {town} had followed the story closely."
    ),
    ("when",): _alts(
        "The vote took place {when} in front of a small crowd. "
        "| The result was announced {when} after a short break. | The final decision was made {when}. "
        "| Members met to settle the matter once and for all {when}."
    ),
    ("town", "when"): _alts(
        "The meeting in {town} took place {when} and ran for hours. "
        "| People in {town} heard the news {when}. | The town hall in {town} was full {when}."
    ),
    ("vote",): _alts(
        "The vote was {a} to {b}, with little debate at the end. | Members split {a} to {b} on the question. "
        "| The final count was {a} to {b} after a long evening. "
        "| After a long debate, members voted {a} to {b}."
    ),
    ("cost",): _alts(
        "The project is expected to cost {cost} million over several years. "
        "| Officials put the total cost at {cost} million. "
        "| The work carries a price of {cost} million, paid from local taxes. "
        "| The plan would cost about {cost} million in total."
    ),
    ("count",): _alts(
        "About {n} {unit} would be affected by the change. "
        "| The plan would serve some {n} {unit} in the area. "
        "| Officials say {n} {unit} stand to benefit from it."
    ),
    ("cost", "vote"): _alts(
        "The vote was {a} to {b} on a plan that would cost {cost} million. "
        "| Members voted {a} to {b}, with the cost put at {cost} million."
    ),
    ("cost", "count"): _alts(
        "The work would cost {cost} million and serve {n} {unit}. "
        "| At {cost} million, the plan would reach about {n} {unit}."
    ),
    ("person",): _alts(
        "{person} led the push for the plan from the start. "
        "| {person}, who chairs the group, called the result fair. "
        "| The idea was first put forward by {person} last spring. "
        "| {person} said the decision was long overdue for the town."
    ),
}
_FILLERS = _alts(
    "Residents had waited a long time for news about the plan. | Several people spoke at the meeting. "
    "| Not everyone was pleased with the outcome of the long debate. "
    "| Local shops have followed the debate closely. | Officials said more details would follow soon. "
    "| The meeting ran late into the evening. | Some residents called the result overdue. "
    "| Others said they needed more time to read the plans. | The debate has gone on for many months."
)
# Background sentences; slots {dtown}, {dperson}, {dcost} (millions) and {year}.
_DISTRACTORS = _alts(
    "Last year, {dtown} spent {dcost} million on a similar project. "
    "| Last year, {dperson} pushed for a similar plan in {dtown}, without success. "
    "| In a separate matter, {dperson} was thanked for years of work in {dtown}. "
    "| In a separate matter, police in {dtown} reported a quiet week. "
    "| By comparison, {dtown} paid {dcost} million for its own plan in {year}. "
    "| By comparison, a similar plan in {dtown} failed in {year}. "
    "| Years ago, {dperson} led a similar effort that came to nothing. "
    "| Years ago, {dtown} built a ferry for {dcost} million. "
    "| Elsewhere, {dtown} held its own vote on the question in {year}. "
    "| Back in {year}, {dperson} first raised the idea at a public meeting. "
    "| Back in {year}, {dtown} had no such plan."
)

# Reference phrases. Number phrases open with a space or a comma; padding and background phrases
# hold no facts but the one in their slot.
_VOTE_PHRASES = _alts("by {a} to {b} | in a {a} to {b} vote | by a vote of {a} to {b}")
_COST_PHRASES = _alts("at a cost of {cost} million | , costing {cost} million | for {cost} million")
_COUNT_PHRASES = _alts("for {n} {unit} | , affecting {n} {unit} | to serve {n} {unit}")
_PAD_PREFIXES = _alts("In the end, | After much talk, | As many had expected, | After a long debate,")
_PAD_SUFFIXES = _alts(
    ", it was reported | , to the relief of many | , after a long debate | , as many had expected "
    "| , though some details remain unclear"
)
_BACKGROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "dtown": _alts(", as {x} did before | , like {x} before it | ; {x} did the same"),
    "dperson": _alts(", as {x} once urged | ; {x} also spoke"),
    "dcost": _alts(", up from {x} million | , against {x} million elsewhere"),
    "year": _alts(", the first since {x} | , a first since {x}"),
}

_Slots = dict[str, str]


def _words_pattern(phrase: str) -> str:
    return r"\s+".join(re.escape(word) for word in phrase.lower().split())


_LEXICON_ITEMS = sorted(
    {*_ORGS, *(obj for _, obj in _OBJECTS), *_TOWNS, *_DAYS, *_MONTHS}, key=len, reverse=True
)
_FACT = re.compile(
    r"\b(?:(?:"
    + "|".join(_words_pattern(w) for w in _FIRST)
    + r")\s+(?:"
    + "|".join(_words_pattern(w) for w in _LAST)
    + r")|"
    + "|".join(_words_pattern(item) for item in _LEXICON_ITEMS)
    + r")\b|[0-9]+"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _normalise(mention: str) -> str:
    if mention[0].isdigit():
        return mention.lstrip("0") or "0"
    return " ".join(mention.split())


def extract_facts(text: str) -> set[str]:
    """Every fact mention in ``text``, normalised (see the module docstring)."""
    return {_normalise(m.group(0)) for m in _FACT.finditer(text.lower())}


def _document_of(prompt: str) -> str:
    """The document of a prompt: the text before ``TL;DR:``, or all of it when there is none."""
    cut = prompt.find(SEPARATOR.strip())
    return (prompt if cut < 0 else prompt[:cut]).strip()


def _is_background(sentence: str) -> bool:
    return sentence.startswith(_CUES)


def key_facts(document: str) -> set[str]:
    """The facts of the document's non-distractor sentences (a trailing ``TL;DR:`` is ignored)."""
    facts: set[str] = set()
    for sentence in _SENTENCE_END.split(_document_of(document)):
        if not _is_background(sentence):
            facts |= extract_facts(sentence)
    return facts


def split_article(text: str) -> tuple[str, str] | None:
    """``text`` as (prompt up to and including the first ``TL;DR:``, stripped reference), or None.
    (Generated articles use ``SEPARATOR``; the TL;DR dataset's prompts end in a newline and it.)"""
    marker = SEPARATOR.strip()
    cut = text.find(marker)
    if cut < 0:
        return None
    end = cut + len(marker)
    return text[:end], text[end:].strip()


def _details(key: set[str], every: set[str], summary: str, budget: int) -> dict:
    found = extract_facts(summary)
    hits = len(found & key)
    recall = hits / len(key) if key else 0.0
    distractors = len(found & (every - key))
    invented = len(found - every)
    words = len(summary.split())
    raw = (
        recall
        - _DISTRACTOR_PENALTY * distractors
        - _INVENTED_PENALTY * invented
        - _LENGTH_PENALTY * max(0, words - budget)
    )
    return {
        "recall": recall,
        "precision": hits / len(found) if found else 0.0,
        "invented": invented,
        "distractors": distractors,
        "words": words,
        "score": min(1.0, max(-1.0, raw)),
    }


def _analyse(prompt: str) -> tuple[set[str], set[str]]:
    document = _document_of(prompt)
    return key_facts(document), extract_facts(document)


def judge_details(prompt: str, summary: str, budget: int = _BUDGET) -> dict:
    """Recall, precision, invented, distractors, words and score of one summary of ``prompt``."""
    return _details(*_analyse(prompt), summary, budget)


def judge(prompts: list[str], summaries: list[str], budget: int = _BUDGET) -> np.ndarray:
    """The gold score of each summary of its prompt (document, optionally with ``SEPARATOR``)."""
    if len(prompts) != len(summaries):
        raise ValueError(f"judge: {len(prompts)} prompts but {len(summaries)} summaries")
    analysed: dict[str, tuple[set[str], set[str]]] = {}
    scores = np.empty(len(summaries), dtype=np.float64)
    for i, (prompt, summary) in enumerate(zip(prompts, summaries, strict=True)):
        if prompt not in analysed:
            analysed[prompt] = _analyse(prompt)
        scores[i] = _details(*analysed[prompt], summary, budget)["score"]
    return scores


def rouge_l(references: list[str], summaries: list[str]) -> np.ndarray:
    """ROUGE-L F-measure of each summary against its reference (``rouge_score``, no stemming)."""
    from rouge_score import rouge_scorer

    if len(references) != len(summaries):
        raise ValueError(f"rouge_l: {len(references)} references but {len(summaries)} summaries")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return np.array(
        [scorer.score(ref, summ)["rougeL"].fmeasure for ref, summ in zip(references, summaries, strict=True)],
        dtype=np.float64,
    )


# ---------------------------------------------------------------------------------------------
# Generation


@dataclass(frozen=True)
class _Event:
    """The main event of one article: its slots, as written in the text."""

    org: str | None  # "city council"
    person: str | None  # "Ada Fenn"
    title: str  # the person's title when acting alone
    verb: str
    obj: str  # "a new bridge"
    town: str
    when: str  # "on Tuesday" | "in June"
    vote: tuple[int, int] | None
    cost: int | None
    count: int | None
    unit: str

    def slots(self) -> set[str]:
        """The slots with facts that this event fills, besides the object (always there)."""
        named = {
            "org": self.org,
            "person": self.person,
            "vote": self.vote,
            "cost": self.cost,
            "count": self.count,
        }
        return {"town", "when"} | {slot for slot, value in named.items() if value is not None}

    def facts(self, slot: str) -> set[str]:
        """The normalised facts of one slot."""
        if slot == "vote":
            assert self.vote is not None
            return {str(self.vote[0]), str(self.vote[1])}
        value = {
            "org": self.org,
            "person": self.person,
            "object": self.obj.split(" ", 1)[1],
            "town": self.town,
            "when": self.when.split(" ", 1)[1],
            "cost": self.cost,
            "count": self.count,
        }[slot]
        return {str(value).lower()}

    def fills(self) -> _Slots:
        a, b = self.vote or (0, 0)
        return {
            "verb": self.verb,
            "obj": self.obj,
            "town": self.town,
            "when": self.when,
            "a": str(a),
            "b": str(b),
            "cost": str(self.cost),
            "n": str(self.count),
            "unit": self.unit,
            "person": self.person or "",
        }


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _event(rng: random.Random) -> _Event:
    who = rng.random()  # 45% an organisation, 30% both, 25% a person
    org = rng.choice(_ORGS) if who < 0.75 else None
    person = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" if who >= 0.45 else None
    if org is None:
        numbers = rng.choice(("cost", "count", "cost count"))
    elif person is None:
        numbers = rng.choice(("vote", "cost", "count", "vote cost", "cost count"))
    else:  # at most seven key facts
        numbers = rng.choice(("vote", "cost", "count", "cost count"))
    vote = None
    if "vote" in numbers:
        members = rng.choice((5, 7, 9, 11))
        against = rng.randrange(0, (members + 1) // 2)
        vote = (members - against, against)
    day = rng.random() < 0.6
    return _Event(
        org=org,
        person=person,
        title=rng.choice(_TITLES),
        verb=rng.choice(_VERBS),
        obj=" ".join(rng.choice(_OBJECTS)),
        town=rng.choice(_TOWNS),
        when=f"on {rng.choice(_DAYS)}" if day else f"in {rng.choice(_MONTHS)}",
        vote=vote,
        cost=5 * rng.randrange(2, 13) if "cost" in numbers else None,
        count=100 * rng.randrange(1, 10) if "count" in numbers else None,
        unit=rng.choice(_UNITS),
    )


def _lead(event: _Event, rng: random.Random) -> tuple[str, set[str]]:
    """The first sentence and the slots it covers."""
    covered = {"org"} if event.org else {"person"}
    who = f"the {event.org}" if event.org else f"{event.title} {event.person}"
    u = rng.random()
    if u < 0.2:
        who += f" in {event.town}" if event.org else f" of {event.town}"
        covered.add("town")
    if event.org and event.person and rng.random() < 0.3:
        who += f", led by {event.person},"
        covered.add("person")
    if 0.2 <= u < 0.4:
        template = rng.choice(_LEADS_WHEN)
        covered.add("when")
    else:
        template = rng.choice(_LEADS)
    text = template.format(who=who, **event.fills())
    return _cap(text.replace(",,", ",")), covered


def _background(rng: random.Random, event: _Event, count: int) -> tuple[list[str], list[tuple[str, str]]]:
    """``count`` distractor sentences and their facts as (slot, text), none of them a key fact."""
    towns = [t for t in _TOWNS if t != event.town]
    first, last = event.person.split() if event.person else ("", "")
    firsts = [f for f in _FIRST if f != first]
    lasts = [name for name in _LAST if name != last]
    numbers = {event.cost, event.count, *(event.vote or ())}
    costs = [c for c in range(12, 96) if c not in numbers]
    templates = rng.sample(_DISTRACTORS, count)
    while count == 2 and templates[0][:8] == templates[1][:8]:  # two different cues
        templates = rng.sample(_DISTRACTORS, count)
    slots = {
        "dtown": rng.sample(towns, count),
        "dperson": [
            f"{f} {s}" for f, s in zip(rng.sample(firsts, count), rng.sample(lasts, count), strict=True)
        ],
        "dcost": [str(c) for c in rng.sample(costs, count)],
        "year": [str(y) for y in rng.sample(range(1985, 2020), count)],
    }
    sentences, facts = [], []
    for i, template in enumerate(templates):
        fills = {slot: values[i] for slot, values in slots.items()}
        sentences.append(template.format(**fills))
        facts += [(slot, fills[slot]) for slot in slots if "{" + slot + "}" in template]
    return sentences, facts


def _document(event: _Event, rng: random.Random) -> tuple[list[str], list[tuple[str, str]]] | None:
    """The sentences of one article and its background facts, or None when the draw misses the sizes."""
    lead, covered = _lead(event, rng)
    left = (event.slots() & {"town", "when", "vote", "cost", "count", "person"}) - covered
    groups = []
    for pair in (("town", "when"), ("cost", "vote"), ("cost", "count")):
        if left.issuperset(pair) and rng.random() < 0.6:
            groups.append(pair)
            left -= set(pair)
    groups += [(slot,) for slot in sorted(left)]
    fills = event.fills()
    sentences = [_cap(rng.choice(_KEY_SENTENCES[group]).format(**fills)) for group in groups]

    n_background = rng.choice((1, 2))
    n_filler = rng.choice((0, 0, 1, 2))
    while 1 + len(sentences) + n_background + n_filler > _MAX_SENTENCES and n_filler:
        n_filler -= 1
    while 1 + len(sentences) + n_background + n_filler > _MAX_SENTENCES and n_background > 1:
        n_background -= 1
    n_filler += max(0, _MIN_SENTENCES - (1 + len(sentences) + n_background + n_filler))
    if 1 + len(sentences) + n_background + n_filler > _MAX_SENTENCES:
        return None
    background, facts = _background(rng, event, n_background)
    sentences += background + rng.sample(_FILLERS, n_filler)
    rng.shuffle(sentences)
    sentences.insert(0, lead)
    if not _MIN_WORDS <= len(" ".join(sentences).split()) <= _MAX_WORDS:
        return None
    return sentences, facts


def _summary(event: _Event, include: set[str], rng: random.Random, prefix: str = "", extra: str = "") -> str:
    """One reference sentence naming the facts of the slots in ``include`` (and the object)."""
    fills = event.fills()
    town = event.town if "town" in include else None
    org = event.org if "org" in include else None
    person = event.person if "person" in include else None
    headline = town is not None and not prefix and rng.random() < 0.15
    place = "" if town is None or headline else f" in {town}"
    if org and person:
        if rng.random() < 0.5:
            subject = f"{person} and the {org}{place}"
        else:
            subject = f"the {org}{place}, led by {person},"
    elif org:
        subject = f"the {town} {org}" if place and rng.random() < 0.3 else f"the {org}{place}"
    else:
        name = person if rng.random() < 0.6 else f"{event.title} {person}"
        subject = f"{name}{place.replace(' in ', ' of ')}"
    numbers = [
        rng.choice(phrases).format(**fills)
        for slot, phrases in (("vote", _VOTE_PHRASES), ("cost", _COST_PHRASES), ("count", _COUNT_PHRASES))
        if slot in include
    ]
    tail = "".join(p if p.startswith(",") else (", " if i else " ") + p for i, p in enumerate(numbers))
    tail += extra
    when = f" {event.when}" if "when" in include else ""
    form = rng.random()
    if headline:
        text = f"{town}: {subject} {event.verb} {event.obj}{when}{tail}"
    elif when and form < 0.3:
        text = f"{prefix}{event.when}, {subject} {event.verb} {event.obj}{tail}"
    elif form < 0.55:
        text = f"{prefix}{event.obj} was {event.verb} by {subject}{when}{tail}"
    else:
        text = f"{prefix}{subject} {event.verb} {event.obj}{when}{tail}"
    return _cap(text.replace(",,", ",")).removesuffix(",") + "."


def _fitted(draw: Callable[[], str], budget: int, tries: int = 30) -> str:
    """The first of ``draw()`` within ``budget`` words, else the shortest of ``tries`` draws."""
    best = draw()
    for _ in range(tries):
        if len(best.split()) <= budget:
            return best
        text = draw()
        if len(text.split()) < len(best.split()):
            best = text
    return best


def _reference(event: _Event, kind: str, background: list[tuple[str, str]], rng: random.Random) -> str:
    full = event.slots()
    if kind == "missing":
        both = event.org is not None and event.person is not None
        choices = sorted(full if both else full - {"org", "person"})
        first, second = rng.sample(choices, 2)
        dropped = {first}  # now and then a second slot, if at most two facts go and someone is left
        if rng.random() < 0.3 and "vote" not in (first, second) and {first, second} != {"org", "person"}:
            dropped.add(second)
        return _fitted(lambda: _summary(event, full - dropped, rng), _BUDGET)
    if kind == "vague":  # someone, the object and one more fact
        who = [s for s in ("org", "person") if s in full]
        keep = {rng.choice(who)} if who else set()
        rest = sorted(full - {"org", "person"})
        if rest:
            keep.add(rng.choice(rest))
        return _fitted(lambda: _summary(event, keep, rng), _BUDGET)
    if kind == "distracted":
        slot, value = rng.choice(background)
        extra = rng.choice(_BACKGROUND_PHRASES[slot]).format(x=value)
        return _fitted(lambda: _summary(event, full, rng, extra=extra), _BUDGET)
    if kind == "complete":
        return _fitted(lambda: _summary(event, full, rng), _BUDGET)
    prefix, extra = "", ""  # wordy: pad with phrases without facts until past the budget
    while True:
        if rng.random() < 0.4 and not prefix:
            prefix = rng.choice(_PAD_PREFIXES) + " "
        else:
            extra += rng.choice([s for s in _PAD_SUFFIXES if s not in extra])
        text = _summary(event, full, rng, prefix=prefix, extra=extra)
        if len(text.split()) > _BUDGET:
            return text


# reference kinds with their cumulative shares
_KINDS = (("complete", 0.35), ("missing", 0.60), ("vague", 0.75), ("wordy", 0.875), ("distracted", 1.0))


def generate_articles(n: int, seed: int) -> list[Article]:
    """``n`` articles, deterministic in ``seed``: all draws come from one ``random.Random(seed)``."""
    rng = random.Random(seed)
    articles = []
    for _ in range(n):
        while True:  # redraw the few articles that come out too long, too short or too crowded
            event = _event(rng)
            drawn = _document(event, rng)
            if drawn is not None:
                break
        sentences, background = drawn
        u = rng.random()
        kind = next(name for name, upper in _KINDS if u < upper)
        facts = set().union(*(event.facts(slot) for slot in event.slots() | {"object"}))
        reference = _reference(event, kind, background, rng)
        articles.append(Article(" ".join(sentences), reference, tuple(sorted(facts)), kind))
    return articles
