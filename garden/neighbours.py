"""A pattern's neighbours in the graph: the patterns it links to and the patterns linking to it,
by the machine's links (a block's `inferred_links`) and the curators' (the file's
`relationships`, as the log last observed them: `PatternState.curated`), each with its title
when the log knows it.

Pure: the state's patterns in, one pattern's neighbourhood out. The incoming links take one pass
over every pattern's projected block and curated targets; no file is read, so the pattern page
stays fast on a garden of thousands of patterns.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from garden.event import Event
from garden.state import Block, PatternState


@dataclass(frozen=True)
class Neighbour:
    """One link between the pattern and another: `via` the machine ("inferred") or a curator
    ("curated"), `direction` "out" (the pattern links to `slug`) or "in" (`slug` links to it).
    An inferred link carries its type, confidence and reason; a curated one none of them."""

    slug: str
    title: str | None
    via: Literal["inferred", "curated"]
    direction: Literal["out", "in"]
    link_type: str | None = None
    confidence: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Neighbourhood:
    """A pattern as its page shows it: title, domain, projected block, its links both ways, and
    its history (the events about it, narrowed to one link or entity when asked)."""

    slug: str
    title: str | None
    domain: str | None
    block: Block | None
    curated: list[Neighbour]  # the curators' links from the pattern
    outgoing: list[Neighbour]  # the machine's links from the pattern, in the block's order
    incoming: list[Neighbour]  # every link to the pattern, inferred first, then by slug
    history: list[Event] = field(default_factory=list)

    @property
    def neighbours(self) -> list[Neighbour]:
        return self.outgoing + self.curated + self.incoming

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "domain": self.domain, "block": self.block,
                "curated": [n.to_dict() for n in self.curated],
                "outgoing": [n.to_dict() for n in self.outgoing],
                "incoming": [n.to_dict() for n in self.incoming],
                "history": [e.model_dump(mode="json") for e in self.history]}


def neighbourhood(patterns: Mapping[str, PatternState], slug: str,
                  history: list[Event] | None = None) -> Neighbourhood:
    """The neighbourhood of `slug` (which `patterns` must hold). Its block is a copy: a server's
    kept state changes under a page being drawn."""
    me = patterns[slug]

    def title(other: str) -> str | None:
        known = patterns.get(other)
        return None if known is None else known.title

    outgoing = [Neighbour(link["target"], title(link["target"]), "inferred", "out", link.get("type"),
                          link.get("confidence"), link.get("reason"))
                for link in (me.block or {}).get("inferred_links") or []]
    curated = [Neighbour(target, title(target), "curated", "out") for target in me.curated or []]
    incoming = []
    for other in patterns:
        if other == slug:
            continue
        known = patterns[other]
        for link in (known.block or {}).get("inferred_links") or []:
            if link["target"] == slug:
                incoming.append(Neighbour(other, known.title, "inferred", "in", link.get("type"),
                                          link.get("confidence"), link.get("reason")))
        if slug in (known.curated or ()):
            incoming.append(Neighbour(other, known.title, "curated", "in"))
    incoming.sort(key=lambda n: (n.via != "inferred", n.slug, n.link_type or ""))
    return Neighbourhood(slug, me.title, me.domain, copy.deepcopy(me.block), curated, outgoing, incoming, history or [])
