"""What a proposer is asked and what it answers: the interface both proposers share.

The core sees a proposer only through `Proposer`: it hands over `ProposalRequest`s (one pattern,
its current block, its curated graph and a ranked list of candidates) and gets back one
`ProposerAnswer` per request, in any order. An answer holds the raw JSON object the proposer
produced (`{"inferred_links": [...], "entities": [...]}`), or the reason it has none; every
item is validated afterwards by one path (`garden.validate`), whichever proposer made it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from garden.model import Entity, GardenBlock, InferredLink


@dataclass(frozen=True, slots=True)
class Candidate:
    """Another pattern worth linking to, from the relevance ranking."""

    slug: str
    title: str
    summary: str
    score: float  # cosine similarity of the two patterns' TF-IDF vectors, in [0, 1]
    shared_terms: tuple[str, ...] = ()
    entity_labels: tuple[str, ...] = ()
    #: How the candidate's own curated graph links back to this pattern, if it does.
    curated_back: str | None = None


@dataclass(frozen=True, slots=True)
class PatternRef:
    """A pattern of the garden named by an existing link or a curated relationship, as a reader
    sees it: a slug alone says nothing about what the target is."""

    slug: str
    title: str
    summary: str


@dataclass(frozen=True, slots=True)
class ProposalRequest:
    slug: str
    title: str
    summary: str
    keywords: tuple[str, ...]
    text: str  # the pattern's prose (title, summary, body), for proposers that read it
    text_hash: str
    existing_links: tuple[InferredLink, ...]
    existing_entities: tuple[Entity, ...]
    curated: dict[str, tuple[str, ...]]
    candidates: tuple[Candidate, ...]
    #: Links ("target|type") and entities ("entity|id") a curator rejected for this text.
    declined: frozenset[str] = frozenset()
    #: Words in a large share of the garden's patterns (`garden.candidates.GENERIC_SHARE`): one of
    #: them alone names no concept that connects patterns ("Presence", "Resilience").
    common_terms: frozenset[str] = frozenset()
    #: The garden's patterns that the existing links and curated relationships name, by slug
    #: (a slug no pattern of the garden has is absent).
    references: dict[str, PatternRef] = field(default_factory=dict)
    #: The entity types the garden uses, with how many entities have each, most used first.
    entity_types: tuple[tuple[str, int], ...] = ()


def entity_type_counts(blocks: Iterable[GardenBlock | None]) -> tuple[tuple[str, int], ...]:
    """How many entities of the blocks have each type, most used first (ties by name)."""
    counts = Counter(e.type.strip() for block in blocks if block for e in block.entities
                     if isinstance(e.type, str) and e.type.strip())
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ProposerAnswer:
    """One pattern's answer. `items` is None when there is no usable answer; `error` says why.

    `deferred` marks a pattern not asked at all because the run's budget was spent.
    """

    slug: str
    items: dict[str, Any] | None
    error: str | None = None
    deferred: bool = False
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    cache_hit: bool = False
    requests: int = 0
    raw: str | None = None  # the model's text when it did not parse (truncated), for the log


@dataclass(frozen=True, slots=True)
class Budget:
    """Per-run limits; None means no limit."""

    max_requests: int | None = None
    max_tokens: int | None = None


class Proposer(Protocol):
    name: str
    model: str | None

    def propose(self, requests: Sequence[ProposalRequest], budget: Budget) -> Iterator[ProposerAnswer]:
        """One answer per request (any order); never raises for one pattern's failure."""
        ...


class ResponseCache(Protocol):
    """Where parsed model responses are kept between runs (the event database, in practice)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, model: str, response: dict[str, Any], usage: Usage) -> None: ...
