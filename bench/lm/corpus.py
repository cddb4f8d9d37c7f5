"""A synthetic English movie-review corpus generated from a small hand-written grammar.

Each review has a sentiment label (``positive`` 45%, ``negative`` 45%, ``mixed`` 10%) and is built
from sentence kinds, in this order:

1. an opening — usually neutral: how, when and with whom the film was watched, or a line of plot
   (a few positive and negative reviews open with an opinion instead);
2. optionally, neutral filler about plot, setting and genre, with generated character names,
   places and professions;
3. one to three opinions about aspects of the film (acting, story, music, effects, ending, pacing,
   dialogue, direction, ...), including contrasts ("X, but Y") and negations ("not bad at all");
4. optionally, a closing verdict or a rating on a scale that matches the label.

Templates hold ``{slot}`` placeholders. A slot is bound once per review (film title, characters,
actors, director) or per opinion (the aspect under discussion and the adjectives that fit it); any
other slot is filled by a uniform draw from ``_WORDS``, whose options may hold further slots.
Opinion words all come from VADER's lexicon with the right sign, and every other word is outside
it, so neutral sentences score zero under VADER and a short prefix of a review rarely gives its
label away.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Review:
    text: str
    sentiment: str  # "positive" | "negative" | "mixed"


_MIN_WORDS, _MAX_WORDS = 20, 60
_MAX_SENTENCES = 5


def _alts(text: str) -> tuple[str, ...]:
    """The options of a slot, written as one string separated by ``|``."""
    return tuple(option.strip() for option in text.split("|"))


# Slot vocabulary; an option may hold further slots.
_WORDS: dict[str, tuple[str, ...]] = {
    # film titles
    "title": _alts(
        "The {tadj} {tnoun} | The {tadj} {tnoun} | {tnoun} of the {tplace} | A {tnoun} in {month} "
        "| {first}'s {tnoun} | After the {tnoun} | Beyond the {tplace} | The Last {tnoun}"
    ),
    "tadj": _alts(
        "Silent | Northern | Hidden | Long | Quiet | Paper | Glass | Iron | Winter | Copper | Distant "
        "| Salt | Crooked | Velvet | Midnight | Seventh | Narrow | Painted | Amber | Pale | Eastern "
        "| Second | Yellow | Tall | Hollow | Marble | Scarlet | Sunday"
    ),
    "tnoun": _alts(
        "Harbor | Road | Garden | Lighthouse | Orchard | Station | Tide | River | Mountain | Letter "
        "| Mirror | Compass | Archive | Signal | Frontier | Ferry | Valley | Bridge | Lantern | Season "
        "| Shore | Window | Crossing | Summer | Island | Clockmaker | Field | Hotel | Ballroom "
        "| Telegram | Violin | Passage | Tower | Canal | Orchestra"
    ),
    "tplace": _alts("North | Sea | Hills | Desert | Plains | Coast | Border | Lake | City | Forest"),
    "month": _alts("March | June | October | November | April | August | September"),
    # people and places
    "first": _alts(
        "Anna | Marcus | Elena | Tom | Rosa | David | Nadia | Oscar | Lena | Victor | Clara | Samuel "
        "| Iris | Felix | Maya | Jonah | Ruth | Leo | Hannah | Omar | Vera | Daniel | Julia | Arthur "
        "| Mira | Theo | Eva | Hugo | Nora | Paul | Ines | Walter | Greta | Frank | Lucia | Simon "
        "| Agnes | Kofi | Yuki | Pavel"
    ),
    "last": _alts(
        "Walsh | Moreno | Keller | Brandt | Okafor | Lindqvist | Russo | Hale | Novak | Castillo "
        "| Reyes | Mercer | Doyle | Fischer | Ito | Sorensen | Bishop | Quinn | Harlow | Vance "
        "| Abbott | Pryce | Delgado | Kowalski | Brennan | Sato | Adeyemi | Lambert | Ferreira | Olsen"
    ),
    "place": _alts(
        "Lisbon | a fishing village in Maine | rural Ohio | Chicago | a small town in Oregon "
        "| Marseille | Glasgow | northern Norway | the Scottish Highlands | Buenos Aires "
        "| a mining town in Wales | Detroit | Osaka | the Texas panhandle | a suburb of Toronto | Naples "
        "| Montana | Reykjavik | Cape Town | a Greek island | Vienna | New Orleans | a village in the Alps "
        "| Havana | Seoul | coastal Maine | a border town in Arizona"
    ),
    "profession": _alts(
        "nurse | taxi driver | piano teacher | ferry captain | baker | night watchman | journalist "
        "| architect | translator | park ranger | pastry chef | mechanic | librarian | fisherman "
        "| postal worker | astronomer | surgeon | carpenter | violinist | detective | lawyer "
        "| school principal | beekeeper | pilot | photographer | hotel manager | museum guard | farmer "
        "| engineer | truck driver | radio host | bus driver | watchmaker | geologist | tailor"
    ),
    "goal": _alts(
        "wants to open a bakery | is trying to finish a bridge before winter "
        "| has to drive a stranger across the country | returns home after twenty years "
        "| takes a job at a lighthouse | moves to a small island | inherits an old hotel "
        "| works the night shift at a diner | trains for a marathon | starts teaching at a village school "
        "| is trying to track down an old bandmate | builds a boat in the garage "
        "| tries to reopen the family restaurant "
        "| delivers mail in the mountains | keeps receiving letters from an unknown sender "
        "| has to look after a neighbor's dog | takes over a radio station "
        "| spends a summer fixing up an old cinema | plans a trip to see the northern lights "
        "| is writing a book about the town | has to sell the family house"
    ),
    "joint": _alts(
        "end up in the same car for a week | run a small hotel together | spend one summer repairing a boat "
        "| plan a reunion for their old class | open a bookshop on the same street "
        "| drive a van of furniture to {place} | take turns looking after an old farm"
    ),
    "pair": _alts(
        "old classmates | neighbors | siblings | cousins | business partners | former bandmates "
        "| roommates | coworkers | strangers"
    ),
    "setting": _alts(
        "on a cargo ship | inside a single apartment | in a roadside motel | at a boarding school "
        "| in a hospital over one night | on a long train journey | in the desert | on a small island "
        "| in a busy newsroom | at a ski resort | in an old cinema | at a remote research station "
        "| in a small bakery | on a farm in {place}"
    ),
    "decade": _alts("the 1950s | the 1970s | the 1980s | the early 1990s | the 1920s | the 1960s"),
    "genre": _alts(
        "drama | period drama | science fiction film | family film | mystery | road movie "
        "| coming-of-age story | heist film | quiet drama | musical | western | documentary "
        "| animated film | spy film | courtroom drama"
    ),
    "topic": _alts(
        "two brothers running a family farm | a marriage in its tenth year | a chess tournament "
        "| a small-town radio station | a group of retirees planning a road trip "
        "| a teenager spending the summer with her grandfather | an orchestra preparing for one concert "
        "| a family reunion | the first year of a new restaurant | a long-distance relationship "
        "| a neighborhood soccer team | a night shift at a city hospital | a crew building a dam"
    ),
    "source": _alts(
        "a story from the news | a short story by a {nationality} writer | a book from {decade} "
        "| a series of magazine articles | the memoir of a {profession}"
    ),
    "nationality": _alts("Irish | Brazilian | Japanese | Polish | Canadian | Swedish | Nigerian"),
    "opening": _alts(
        "arriving in {place} by train | packing up an old house | sitting on a bench "
        "| walking through a crowded market | reading a letter in the rain | driving at night "
        "| waking up on a ferry"
    ),
    # viewing circumstances
    "companion": _alts(
        "my wife | my husband | my sister | my brother | my dad | my mom | my parents | my roommate "
        "| my cousin | my kids | my girlfriend | my boyfriend | a coworker | my neighbor "
        "| my grandmother | my uncle | my partner | my son | my daughter | my flatmate | my aunt"
    ),
    "when": _alts(
        "last night | on Friday | over the weekend | yesterday | this afternoon | on a Sunday evening "
        "| last week | during a long flight | on a wet Tuesday | a few days ago | on opening night "
        "| on Saturday night | this morning | after work | on Thursday | over the long weekend"
    ),
    "venue": _alts(
        "at the local cinema | at a small theater downtown | at the drive-in | at the multiplex "
        "| at an old art house | at the mall | in a packed theater | at a late screening"
    ),
    "platform": _alts(
        "on a streaming service | on cable | on DVD | on Blu-ray | on TV | on the big screen | on a plane"
    ),
    "device": _alts("laptop | tablet | phone | projector | old TV"),
    "activity": _alts(
        "folding laundry | waiting for a train | cooking dinner | sitting on the couch "
        "| recovering from a cold | babysitting my nephew"
    ),
    "group": _alts("film club | book club | movie group | family | office"),
    "edition": _alts("theatrical release | extended edition | remastered version | director's edition"),
    "day": _alts("Monday | Tuesday | Wednesday | Thursday | Friday | Saturday | Sunday"),
    "reason": _alts(
        "the times worked | it was raining | {companion} wanted to go | I had a spare evening "
        "| the other film was sold out | it was the only thing showing"
    ),
    "year": tuple(str(year) for year in range(1978, 2025)),
    "ordinal": _alts("first | second | third | fourth | latest"),
    "minutes": _alts("95 | 100 | 105 | 110 | 118 | 125 | 130 | 140 | 150"),
    "span": _alts("three months | a year | two years | six weeks | a whole summer | ten days"),
    "rating": _alts("PG | PG-13 | R"),
    "moment": _alts(
        "in the final scene | in the opening minutes | in the middle hour | in the last act "
        "| during the scene at the station | in the dinner scene | whenever {char} is on screen"
    ),
    "intens": _alts("really | absolutely | genuinely | just | so | very | incredibly"),
    # opinion words, all scored by VADER with the sign their name says (checked by the tests)
    "pos": _alts(
        "great | wonderful | excellent | brilliant | superb | fantastic | outstanding | impressive "
        "| amazing | terrific | perfect | good | strong | awesome"
    ),
    "neg": _alts(
        "terrible | awful | bad | horrible | weak | disappointing | poor | dreadful | lame | pathetic "
        "| horrendous"
    ),
    "posverb": _alts("loved | enjoyed | adored | liked | really liked | really enjoyed"),
    "negverb": _alts("hated | disliked | did not enjoy | did not like | did not care for"),
    "negnoun": _alts("mess | disaster | failure | waste of time | disappointment"),
    # positive words that read naturally after "not" or "nothing", and negative ones after "not"
    "negatable_pos": _alts("good | funny | clever | great | impressive | exciting | fun"),
    "negatable_neg": _alts("bad | boring | dull | weak | awful | terrible"),
    # the weaker side of a contrast
    "mild_pos": _alts("fine | okay | nice | good | pleasant"),
    "mild_neg": _alts("confusing | messy | awkward | weak | dull | sluggish"),
}

# Adjectives that fit one category of aspect, on top of the general "pos" and "neg" words.
_CATEGORY_POS: dict[str, tuple[str, ...]] = {
    "performance": _alts("charming | delightful | powerful | hilarious | heartfelt | funny | lovely"),
    "writing": _alts("clever | smart | fresh | fascinating | engaging | funny | charming | heartfelt"),
    "sound": _alts("beautiful | lovely | gorgeous | magnificent | elegant | sweet"),
    "visual": _alts("beautiful | gorgeous | stunning | lovely | breathtaking | magnificent | elegant"),
    "craft": _alts("confident | thrilling | exciting | engaging | effective | elegant | bold"),
}
_CATEGORY_NEG: dict[str, tuple[str, ...]] = {
    "performance": _alts("embarrassing | annoying | dull | irritating | lazy | forced"),
    "writing": _alts("stupid | dumb | ridiculous | confusing | boring | dull | lazy | forced"),
    "sound": _alts("annoying | irritating | dull | forced | boring"),
    "visual": _alts("ugly | messy | lazy | boring | painful"),
    "craft": _alts("boring | dull | messy | confusing | frustrating | painful | sluggish"),
}
_WORDS["perf_pos"] = _WORDS["pos"] + _CATEGORY_POS["performance"]
_WORDS["perf_neg"] = _WORDS["neg"] + _CATEGORY_NEG["performance"]

# (phrase, plural, category) of the aspects that opinions are about
_Aspect = tuple[str, bool, str]
_ASPECTS: tuple[_Aspect, ...] = (
    ("the acting", False, "performance"),
    ("the cast", False, "performance"),
    ("the lead performance", False, "performance"),
    ("the rest of the cast", False, "performance"),
    ("the performances", True, "performance"),
    ("the story", False, "writing"),
    ("the script", False, "writing"),
    ("the plot", False, "writing"),
    ("the dialogue", False, "writing"),
    ("the ending", False, "writing"),
    ("the characters", True, "writing"),
    ("the final act", False, "writing"),
    ("the twist", False, "writing"),
    ("the screenplay", False, "writing"),
    ("the gags", True, "writing"),
    ("the score", False, "sound"),
    ("the soundtrack", False, "sound"),
    ("the music", False, "sound"),
    ("the songs", True, "sound"),
    ("the visual effects", True, "visual"),
    ("the cinematography", False, "visual"),
    ("the camera work", False, "visual"),
    ("the set design", False, "visual"),
    ("the costumes", True, "visual"),
    ("the action scenes", True, "visual"),
    ("the pacing", False, "craft"),
    ("the direction", False, "craft"),
    ("the editing", False, "craft"),
    ("the lighting", False, "visual"),
    ("the sound design", False, "sound"),
    ("the climax", False, "craft"),
)


def _pairs(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{a} and {b}" for a in words for b in words if a != b)


def _adjectives(category: str) -> tuple[tuple[str, ...], ...]:
    """Positive adjectives, their "x and y" pairs, negative adjectives and their pairs."""
    pos, neg = _WORDS["pos"] + _CATEGORY_POS[category], _WORDS["neg"] + _CATEGORY_NEG[category]
    return pos, _pairs(pos), neg, _pairs(neg)


_ADJECTIVES = {category: _adjectives(category) for category in _CATEGORY_POS}

_OPENINGS = _alts(
    "I watched {title} {when} with {companion}. | {companion} and I saw {title} {venue} {when}. "
    "| {when}, I finally sat down to watch {title}. | We rented {title} {when}. "
    "| I went to see {title} {venue} with {companion}. "
    "| {title} came out in {year}, and I caught it {platform} {when}. | So I saw {title} {when}. "
    "| {companion} picked {title} for movie night. "
    "| This is a {genre} from {year}, directed by {director}. "
    "| I had never heard of {title} until {companion} mentioned it. "
    "| {title} is the {ordinal} feature from director {director}. | Just got back from {title} {venue}. "
    "| I streamed {title} on my {device} {when}. | Went into {title} knowing almost nothing about it. "
    "| I read the book years ago, so I made time for {title}. "
    "| The trailer for {title} was on TV for weeks, so we went {when}. "
    "| {title} runs about {minutes} minutes and is rated {rating}. "
    "| I caught {title} {platform} while {activity}. | Our {group} chose {title} for this month. "
    "| It took me {span} to get around to {title}. | {title} is a {genre} starring {actor} and {actor2}. "
    "| Here are my thoughts on {title}. | This review is for the {edition} of {title}. "
    "| I saw {title} {venue} on {day}, mostly because {reason}. "
    "| {title} was showing {venue}, so {companion} and I went {when}. "
    "| Watched {title} {platform} with {companion}. | I finally got around to {title} {when}. "
    "| A couple of hours ago I came home from {title}."
)
_PLOT = _alts(
    "The story follows {char}, a {profession} from {place} who {goal}. | It is set in {place} in {decade}. "
    "| {actor} stars as {char}, a {profession} who {goal}. | Most of it takes place {setting}. "
    "| The plot is about a {profession} and a {profession} who {joint}. | It is a {genre} about {topic}. "
    "| {char} is a {profession} in {place} who {goal}. "
    "| The first half is set {setting}, and the second half moves to {place}. | It is based on {source}. "
    "| It was shot in {place} over {span}. | The film opens with {char} {opening}. "
    "| {char} and {char2} are {pair} who {joint}. | Along the way, {char} meets a {profession} from {place}. "
    "| It is told over {span}, mostly through the eyes of {char}."
)
_OPINION_OPENINGS: dict[str, tuple[str, ...]] = {
    "positive": _alts(
        "{title} is one of the best films I have seen in a while. "
        "| I loved {title} from the very first scene. "
        "| {title} is a {pos} little film. | What a {pos} surprise {title} turned out to be."
    ),
    "negative": _alts(
        "{title} is one of the worst films I have seen in a while. "
        "| I hated {title} from the very first scene. "
        "| {title} was a huge disappointment. | What a {neg} film {title} turned out to be."
    ),
}
_OPINIONS: dict[str, tuple[str, ...]] = {
    "positive": _alts(
        "{aspect} {was} {pos}. | {aspect} {was} {intens} {pos}. | {aspect} {was} {pos_pair}. "
        "| I {posverb} {aspect}. | I thought {aspect} {was} {pos}. "
        "| {aspect} {was} not {negatable_neg} at all. "
        "| I was never bored, and {aspect} {was} {pos}. | {aspect} {was} {pos}, especially {moment}. "
        "| Honestly, {aspect} {was} {intens} {pos}. "
        "| {aspect} {was} a bit {mild_neg}, but {other_aspect} {other_was} {other_pos}. "
        "| It is not perfect, but {aspect} {was} {pos}. "
        "| I expected {aspect} to be {negatable_neg}, but {it_was} {pos}. | {actor} is {perf_pos} as {char}. "
        "| Every scene with {actor} is {perf_pos}. | {actor} made me smile more than once. "
        "| I enjoyed every minute of it."
    ),
    "negative": _alts(
        "{aspect} {was} {neg}. | {aspect} {was} {intens} {neg}. | {aspect} {was} {neg_pair}. "
        "| I {negverb} {aspect}. | I thought {aspect} {was} {neg}. "
        "| {aspect} {was} not {negatable_pos} at all. "
        "| There is nothing {negatable_pos} about {aspect}. | {aspect} {was} a complete {negnoun}. "
        "| {aspect} {was} {mild_pos}, but {other_aspect} {other_was} {other_neg}. "
        "| I wanted to like it, but {aspect} {was} {neg}. | {actor} is {perf_neg} as {char}. "
        "| Even {actor} cannot save this film. | I was so bored {moment}. "
        "| {aspect} {was} {neg}, especially {moment}. "
        "| I expected {aspect} to be {negatable_pos}, but {it_was} {neg}. | I hated every minute of it."
    ),
    "mixed": _alts(
        "{aspect} {was} {pos}, but {other_aspect} {other_was} {other_neg}. "
        "| {aspect} {was} {neg}, but {other_aspect} {other_was} {other_pos}. "
        "| I {posverb} {aspect}, but {other_aspect} {other_was} {other_neg}. "
        "| {aspect} {was} {pos}, though {other_aspect} {other_was} {other_neg}."
    ),
}
_CLOSINGS: dict[str, tuple[str, ...]] = {
    "positive": _alts(
        "Highly recommended. | I would happily watch it again. | Definitely worth your time. "
        "| A real treat from start to finish. | One of the best films I have seen this year. "
        "| Go see it, you will not regret it. | Easily one of my favorite films of the year. "
        "| A great way to spend an evening. | I will be recommending it to everyone I know. "
        "| Do not miss this one!"
    ),
    "negative": _alts(
        "Avoid this one. | What a waste of an evening. | I would not recommend it. "
        "| One of the worst films I have seen in years. | I regret watching it. | A huge disappointment. "
        "| Skip this one, it is not worth it. | Just awful from start to finish. "
        "| I want those {minutes} minutes back, what a waste. "
        "| Stay home and watch something else, this one is terrible."
    ),
    "mixed": _alts(
        "Worth a look, but do not expect too much. | Some people will love it, others will hate it. "
        "| It has good moments and bad ones. | A mixed bag, but I am glad I saw it. | Flawed but interesting."
    ),
}
_RATINGS = _alts(
    "I give it {score} out of 10. | {score} out of 10 from me. | My rating: {score}/10. "
    "| {stars} out of 5 stars."
)
_SCORES: dict[str, dict[str, tuple[str, ...]]] = {
    "positive": {"score": _alts("7 | 8 | 9 | 10"), "stars": _alts("4 | 5")},
    "negative": {"score": _alts("1 | 2 | 3 | 4"), "stars": _alts("1 | 2")},
    "mixed": {"score": _alts("5 | 6"), "stars": _alts("3")},
}

_SLOT = re.compile(r"\{(\w+)\}")
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")

# A bound slot holds a fixed string or, drawn each time it is filled, a tuple of options.
_Bindings = dict[str, str | tuple[str, ...]]


def _expand(template: str, rng: random.Random, bound: _Bindings) -> str:
    """Fill every slot of ``template``, from ``bound`` first, else from ``_WORDS``."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = bound.get(name) or _WORDS[name]
        if isinstance(value, str):
            return value
        return _expand(rng.choice(value), rng, bound)

    return _SLOT.sub(fill, template)


def _sentence(templates: tuple[str, ...], rng: random.Random, bound: _Bindings, used: set[str]) -> str:
    """One sentence from a template not in ``used`` (which it joins), with "a" before a vowel as "an"."""
    template = rng.choice(templates)
    while template in used:
        template = rng.choice(templates)
    used.add(template)
    text = _ARTICLE.sub(r"\1n ", _expand(template, rng, bound))
    return text[0].upper() + text[1:]


def _aspect_slots(aspect: _Aspect, prefix: str = "") -> _Bindings:
    """Bindings for one aspect: the phrase, its verb agreement and the adjectives that fit it."""
    phrase, plural, category = aspect
    pos, pos_pairs, neg, neg_pairs = _ADJECTIVES[category]
    return {
        f"{prefix}aspect": phrase,
        f"{prefix}was": "were" if plural else "was",
        f"{prefix}pos": pos,
        f"{prefix}pos_pair": pos_pairs,
        f"{prefix}neg": neg,
        f"{prefix}neg_pair": neg_pairs,
    }


def _review(rng: random.Random, sentiment: str) -> list[str]:
    """The sentences of one review."""
    review: _Bindings = {
        "title": _expand("{title}", rng, {}),
        "char": rng.choice(_WORDS["first"]),
        "char2": rng.choice(_WORDS["first"]),
        "actor": _expand("{first} {last}", rng, {}),
        "actor2": _expand("{first} {last}", rng, {}),
        "director": _expand("{first} {last}", rng, {}),
    }
    used: set[str] = set()
    start = rng.random()
    if sentiment != "mixed" and start < 0.07:
        sentences = [_sentence(_OPINION_OPENINGS[sentiment], rng, review, used)]
    elif start < 0.25:
        sentences = [_sentence(_PLOT, rng, review, used)]
    else:
        sentences = [_sentence(_OPENINGS, rng, review, used)]
    if rng.random() < 0.5:
        sentences.append(_sentence(_PLOT, rng, review, used))

    if sentiment == "mixed":
        kinds = rng.choice(
            (("mixed",), ("positive", "negative"), ("negative", "positive"), ("mixed", "mixed"))
        )
    else:
        kinds = (sentiment,) * rng.choice((1, 2, 2, 3))
    aspects = rng.sample(_ASPECTS, 2 * len(kinds))
    for i, kind in enumerate(kinds):
        first, second = aspects[2 * i], aspects[2 * i + 1]
        bound = review | _aspect_slots(first) | _aspect_slots(second, prefix="other_")
        bound["it_was"] = "they were" if first[1] else "it was"
        text = _sentence(_OPINIONS[kind], rng, bound, used)
        if kind != "mixed" and text.endswith(".") and rng.random() < 0.08:
            text = text[:-1] + "!"
        sentences.append(text)

    if rng.random() < 0.65:
        if rng.random() < 0.35:
            sentences.append(_sentence(_RATINGS, rng, _SCORES[sentiment], used))
        else:
            sentences.append(_sentence(_CLOSINGS[sentiment], rng, review, used))
    return sentences


def generate_reviews(n: int, seed: int) -> list[Review]:
    """``n`` reviews, deterministic in ``seed``: all draws come from one ``random.Random(seed)``."""
    rng = random.Random(seed)
    reviews = []
    for _ in range(n):
        u = rng.random()
        sentiment = "positive" if u < 0.45 else "negative" if u < 0.9 else "mixed"
        while True:  # redraw the few reviews that come out too long or too short
            sentences = _review(rng, sentiment)
            text = " ".join(sentences)
            if len(sentences) <= _MAX_SENTENCES and _MIN_WORDS <= len(text.split()) <= _MAX_WORDS:
                break
        reviews.append(Review(text, sentiment))
    return reviews
