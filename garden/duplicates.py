"""Duplicate patterns: two patterns of the library that are the same idea, a merge candidate.

Either proposer may say so (`DuplicateSuspected`): the offline one when the pair's cosine of the
ranking's TF-IDF vectors is at or above DUPLICATE_COSINE, a model in its answer's optional
`duplicates` list. A suspicion is never written into a block; a curator confirms it (`garden
accept ID`: a merge candidate) or dismisses it (`garden reject ID`: not the same idea).

A pair is one suspicion whichever side proposes it (`pair_key` sorts the two slugs): it is not
suspected again while one waits, nor once decided while both patterns' texts are as they were
when it was decided (the projection keeps the pair's text hashes then). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from garden.catalog import is_valid_slug
from garden.event import DuplicateSuspected, Event, ProposalRejected, event
from garden.proposal import ProposalRequest
from garden.validate import _score, clean_text

#: The cosine (of the ranking's TF-IDF vectors) at or above which the offline proposer suspects a
#: pair. Measured on the 600-pattern corpus (top-5 neighbours): 7 pairs at 0.5 or more, 1 at 0.6,
#: none at 0.7. Of the 7, 6 are one idea written twice (kanban / kanban-production, flexible-
#: manufacturing / flexible-manufacturing-systems-fms, cellular-manufacturing / cellular-
#: manufacturing-work-cell-design, the three blue-ocean pages) and one is a neighbour
#: (ltv-lifetime-value / ltvcac-ratio, 0.52); just below, at 0.43-0.49, most are neighbours
#: (industrial ecology / industrial symbiosis, vanity-metrics / vanity-metrics-in-finance,
#: just-in-time / lean-manufacturing), one a duplicate (agile-governance, 0.43). A suspicion only
#: asks a curator, so the line is drawn where nearly all are right and few are missed.
DUPLICATE_COSINE = 0.5
#: A duplicate's reason is at most this long (as a link's).
MAX_REASON = 300


def pair_key(a: str, b: str) -> str:
    """One key for a pair, whichever side names it."""
    return "|".join(sorted((a, b)))


def is_open(duplicates: Mapping[str, dict], a: str, b: str, text_hashes: Mapping[str, str | None]) -> bool:
    """Whether the pair may be suspected now: never suspected, or decided while either text was
    other than it is now (`text_hashes`: each pattern's current text hash)."""
    known = duplicates.get(pair_key(a, b))
    if known is None:
        return True
    if known["status"] == "pending":
        return False
    decided = known.get("hashes") or {}
    return any(decided.get(slug) != text_hashes.get(slug) for slug in (a, b))


def duplicate_confidence(cosine: float) -> float:
    """The offline proposer's confidence that a pair at this cosine is one idea: 6 of the 7 corpus
    pairs from DUPLICATE_COSINE up were (0.85), rising to 0.95 at a cosine of 0.7 and above."""
    return round(min(0.95, 0.85 + 0.5 * max(0.0, cosine - DUPLICATE_COSINE)), 2)


@dataclass(frozen=True, slots=True)
class Suspicion:
    target: str
    confidence: float
    reason: str
    evidence: dict[str, Any]


def shown_targets(request: ProposalRequest) -> set[str]:
    """The patterns a model was shown beside this one: its candidates, its existing links'
    targets and its curated relationships."""
    return ({c.slug for c in request.candidates} | {l.target for l in request.existing_links}
            | {slug for slugs in request.curated.values() for slug in slugs})


def check_duplicates(request: ProposalRequest, items: Any, garden_slugs: Collection[str],
                     shown: Collection[str] | None = None) -> tuple[list[Suspicion], list[tuple[str, Any]]]:
    """An answer's `duplicates` list sorted into suspicions and (reason, item) rejections.

    A target must be a pattern of the garden the proposer was shown (`shown`, by default
    `shown_targets`), not the pattern itself, named once; confidence in [0, 1]; a reason."""
    if items is None:
        return [], []
    if not isinstance(items, list):
        return [], [("duplicates is not a list", items)]
    shown = shown_targets(request) if shown is None else shown
    valid: list[Suspicion] = []
    invalid: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        problem = _problem(request.slug, item, garden_slugs, shown, seen)
        if problem:
            invalid.append((problem, item))
            continue
        seen.add(item["target"])
        evidence = dict(item.get("evidence") or {})
        valid.append(Suspicion(item["target"], _score(item["confidence"]),
                               clean_text(item["reason"], MAX_REASON), evidence))
    return valid, invalid


def _problem(slug: str, item: Any, garden_slugs: Collection[str], shown: Collection[str],
             seen: set[str]) -> str | None:
    if not isinstance(item, dict):
        return "a duplicate must be an object"
    target = item.get("target")
    if not isinstance(target, str) or not target.strip():
        return "a duplicate needs a target slug"
    if not is_valid_slug(target):
        return f"duplicate target {target!r} is not a valid slug"
    if target == slug:
        return "a pattern cannot be a duplicate of itself"
    if target not in garden_slugs:
        return f"duplicate target {target!r} is not in the garden"
    if target not in shown:
        return f"duplicate target {target!r} was not shown (not a candidate, a link's target or a curated relationship)"
    if target in seen:
        return f"duplicate target {target!r} named twice in one answer"
    if _score(item.get("confidence")) is None:
        return f"confidence {item.get('confidence')!r} is not a number in [0, 1]"
    reason = item.get("reason")
    if not isinstance(reason, str) or not clean_text(reason, MAX_REASON):
        return "empty reason"
    return None


def duplicate_events(request: ProposalRequest, items: Any, garden_slugs: Collection[str],
                     duplicates: Mapping[str, dict], text_hashes: Mapping[str, str | None],
                     proposer: str, model: str | None, run_id: str | None, actor: str,
                     prompt_version: str | None = None, shown: Collection[str] | None = None,
                     suspected: set[str] | None = None) -> list[Event]:
    """DuplicateSuspected for each valid, open pair of an answer's `duplicates` (one a pair:
    `suspected` collects the pairs suspected so far by the caller, across patterns), and a
    ProposalRejected ("invalid: ...") for each invalid item."""
    valid, invalid = check_duplicates(request, items, garden_slugs, shown)
    suspected = set() if suspected is None else suspected
    hashes = {**text_hashes, request.slug: request.text_hash}
    out: list[Event] = []
    for s in valid:
        key = pair_key(request.slug, s.target)
        if key in suspected or not is_open(duplicates, request.slug, s.target, hashes):
            continue
        suspected.add(key)
        out.append(event(DuplicateSuspected(other=s.target, confidence=s.confidence, reason=s.reason,
                                            proposer=proposer, model=model, prompt_version=prompt_version,
                                            evidence=s.evidence),
                         slug=request.slug, run_id=run_id, actor=actor))
    out += [event(ProposalRejected(proposal_id=None, reason=f"invalid: {reason}", item={"duplicate": item}),
                  slug=request.slug, run_id=run_id, actor=actor) for reason, item in invalid]
    return out


def summarise(duplicates: Mapping[str, dict], titles: Mapping[str, str] | None = None,
              examples: int = 10) -> dict[str, Any]:
    """Counts of suspected (pending), confirmed and dismissed pairs, with a few examples each."""
    titles = titles or {}
    found: dict[str, dict] = {status: {"count": 0, "examples": []}
                              for status in ("suspected", "confirmed", "dismissed")}
    names = {"pending": "suspected", "confirmed": "confirmed", "dismissed": "dismissed"}
    for key, entry in sorted(duplicates.items(), key=lambda kv: -kv[1]["confidence"]):
        bucket = found[names[entry["status"]]]
        bucket["count"] += 1
        if len(bucket["examples"]) < examples:
            a, b = entry["slugs"]
            bucket["examples"].append(f"{a} ({titles.get(a, a)}) ~ {b} ({titles.get(b, b)}), "
                                      f"{entry['confidence']:.2f} by {entry['proposer']}")
    return found
