"""Paper claims as data: what a paper states, which methods and suites it reads, and how a store or
export decides it (holds / does not hold / inconclusive).

A claim names its paper, its statement, its ``kind`` (how it is decided, ``bench.claims.kinds``),
the two methods it compares (``a``, ``b``: run labels without their grid suffix, ``dpo`` for every
``dpo[beta=…]``), optionally a baseline method (``baseline``: π_SFT for "Best-of-N is a strong
baseline"), the tasks it is read on (default: every task where its methods ran) and the kind's
parameters. Claims come from the YAML files shipped in this package (``dpo-paper.yaml``: the DPO
paper's four), from a user's YAML file (``bench claims --claims FILE``) and from installed plugins
(entry-point group ``bench.claims``: a ``Claim``, a list of them, or the path of a YAML file).

    paper: Rafailov et al. 2023, "Direct Preference Optimization" (§6)
    claims:
      - id: dpo-frontier-rlhf-ppo
        statement: DPO's frontier dominates PPO's
        kind: frontier-dominance
        a: dpo
        b: rlhf-ppo

``evaluate(results)`` decides every registered claim a store or export can decide and returns one
table (``COLUMNS``): the paper, the claim, the task, the verdict, what was measured, and the
numbers the verdict rests on with the chance that it replicates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CLAIM_GROUP = "bench.claims"
# the kinds that compare two methods (the others read one: a fitted law, a trend)
TWO_METHOD_KINDS = (
    "frontier-dominance",
    "flatter-over-temperature",
    "strong-baseline",
    "difference",
    "equivalence",
    "kl-efficiency",
)
HERE = Path(__file__).resolve().parent


class ClaimError(ValueError):
    """A claim or claims file that cannot be used (one line)."""


class Claim(BaseModel):
    """One paper claim, decided by its ``kind`` (see ``kinds.KINDS`` for each kind's parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="unique name, lower-case words joined by '-'")
    paper: str = Field(description="the paper: authors, year, title (and section)")
    statement: str = Field(description="what the paper states; {quantity} becomes 'win rate' or 'score'")
    kind: str = Field(description="how it is decided: a key of bench.claims.kinds.KINDS")
    a: str = Field(description="the method the statement is about (a run label's method)")
    b: str | None = Field(None, description="the method it is compared with (kinds that compare two)")
    baseline: str | None = Field(
        None, description="a third method the kind measures against (strong-baseline)"
    )
    tasks: list[str] | None = Field(
        None, description="the tasks it is read on (default: every task with a and b)"
    )
    params: dict = Field(default_factory=dict, description="the kind's parameters")
    source: str = Field("built-in", description="where it was registered from (set by bench)")

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", v):
            raise ValueError(f"{v!r} is not an id (lower-case words joined by '-', e.g. dpo-frontier-ppo)")
        return v

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from bench.claims.kinds import KINDS

        if v not in KINDS:
            raise ValueError(f"unknown kind {v!r}; known: {', '.join(sorted(KINDS))}")
        return v

    @model_validator(mode="after")
    def _kind_params(self) -> Claim:
        from bench.claims.kinds import KINDS

        unknown = set(self.params) - set(KINDS[self.kind][1])
        if unknown:
            takes = ", ".join(KINDS[self.kind][1]) or "none"
            raise ValueError(
                f"kind {self.kind} takes no parameter {', '.join(sorted(unknown))} (it takes: {takes})"
            )
        return self

    def methods(self) -> set[str]:
        """The methods it reads (``a``, ``b`` and the baseline)."""
        return {m for m in (self.a, self.b, self.baseline) if m}

    def statements(self) -> set[str]:
        """Its statement as tables print it, for either quantity."""
        return {self.statement.format(quantity=q) for q in ("win rate", "score")}


@dataclass
class Registry:
    claims: dict[str, Claim] = field(default_factory=dict)
    loaded: bool = False


REGISTRY = Registry()


def register_claim(claim: Claim, source: str | None = None) -> Claim:
    """Adds ``claim`` (its id must be new); returns it as registered."""
    if source is not None:
        claim = claim.model_copy(update={"source": source})
    if claim.id in REGISTRY.claims:
        other = REGISTRY.claims[claim.id]
        raise ClaimError(f"claim id {claim.id!r} ({claim.source}) is already registered by {other.source}")
    REGISTRY.claims[claim.id] = claim
    return claim


def read_claims(path: str | Path, source: str | None = None) -> list[Claim]:
    """The claims of a YAML file: ``paper:`` (the default for each claim) and ``claims:`` (a list),
    or a bare list of claims each naming its paper. Raises ``ClaimError`` (one line)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ClaimError(f"cannot read claims file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ClaimError(f"claims file {path} is not valid YAML: {' '.join(str(e).split())}") from None
    paper = None
    if isinstance(data, dict):
        unknown = set(data) - {"paper", "claims"}
        if unknown:
            raise ClaimError(f"claims file {path}: unknown keys {', '.join(sorted(unknown))} (paper, claims)")
        paper, data = data.get("paper"), data.get("claims")
    if not isinstance(data, list) or not data:
        raise ClaimError(f"claims file {path}: expected a list of claims under 'claims:'")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ClaimError(f"claims file {path}: claim {i + 1} is not a mapping")
        item = {"paper": paper, **item} if paper and "paper" not in item else item
        try:
            out.append(Claim(**item, source=source or str(path)))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "claim"
            name = item.get("id", f"number {i + 1}")
            raise ClaimError(f"claims file {path}: claim {name}: {where}: {err['msg']}") from None
    return out


def load(extra_files: list[str | Path] = ()) -> list[Claim]:
    """The registry — the shipped claims files, then installed plugins' claims (loaded once) — and
    the claims of ``extra_files`` (a user's: used for this call, not registered; their ids must be
    new). Raises ``ClaimError`` (one line)."""
    if not REGISTRY.loaded:
        REGISTRY.loaded = True
        for path in sorted(HERE.glob("*.yaml")):
            for claim in read_claims(path, source="built-in"):
                register_claim(claim)
        _load_entry_points()
    out = dict(REGISTRY.claims)
    for path in extra_files:
        for claim in read_claims(path):
            if claim.id in out:
                raise ClaimError(
                    f"claim id {claim.id!r} ({claim.source}) is already registered by {out[claim.id].source}"
                )
            out[claim.id] = claim
    return list(out.values())


def _load_entry_points() -> None:
    """Claims of installed distributions (group ``bench.claims``); one that cannot be used goes to
    ``bench.registry.BROKEN`` and the others are registered."""
    from importlib import metadata

    from bench.registry import BROKEN, BrokenEntryPoint

    for ep in metadata.entry_points(group=CLAIM_GROUP):
        dist = getattr(ep, "dist", None)
        name, version = getattr(dist, "name", None), getattr(dist, "version", None)
        source = f"plugin {name} {version or ''}".strip() if name else f"entry point {ep.value}"
        try:
            obj = ep.load()
            if isinstance(obj, str | Path):
                claims = read_claims(obj, source)
            else:
                items = obj if isinstance(obj, list | tuple) else [obj]
                if not all(isinstance(c, Claim) for c in items):
                    raise ClaimError(
                        "an entry point of bench.claims gives a Claim, a list of them or a YAML path"
                    )
                claims = [c.model_copy(update={"source": source}) for c in items]
            for claim in claims:
                register_claim(claim)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure of plugin code is one line
            reason = " ".join(f"{type(e).__name__}: {e}".split()) if not isinstance(e, ClaimError) else str(e)
            BROKEN.append(BrokenEntryPoint(CLAIM_GROUP, ep.name, ep.value, name, version, reason))


from bench.claims.kinds import COLUMNS  # noqa: E402  (the kinds read bench.results, not this package)


def short_paper(paper) -> str:
    """A paper as tables name it: its authors and year, before the title (``Rafailov et al. 2023``).
    No paper (a claims.csv written before the registry, which held the DPO paper's claims only):
    the DPO paper."""
    if not isinstance(paper, str) or not paper:
        return "Rafailov et al. 2023"
    return re.split(r",\s*[\"'\u201c]", paper)[0].strip()


def evaluate(results, claims: list[Claim] | None = None, confidence: float = 0.95):
    """Every claim (default: the registry) that ``results`` can decide, on each task where its
    methods ran: a DataFrame of ``COLUMNS`` and the numbers of ``kinds.CLAIM_NUMBERS``."""
    from bench.claims.kinds import evaluate_claims

    return evaluate_claims(results, load() if claims is None else claims, confidence)


def claims_table(results, reps: int = 2000, confidence: float = 0.95, seed: int = 0):
    """Every registered claim measured on each task where its methods ran (``evaluate``), by the rules
    of ``bench.results.CLAIM_RULES`` and the kinds' docstrings; the table reports and ``bench plan``
    show. ``reps`` and ``seed`` are unused (the intervals are t intervals)."""
    return evaluate(results, confidence=confidence)


__all__ = [
    "CLAIM_GROUP", "COLUMNS", "Claim", "ClaimError", "claims_table", "evaluate", "load", "read_claims",
    "register_claim", "short_paper",
]  # fmt: skip
