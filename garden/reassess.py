"""Re-assessment: every machine-written item of a tended pattern judged afresh, as a new one is.

A garden inherits links and entities an earlier pipeline wrote, with confidences nothing
measured; a threshold never prunes them. Each tend therefore asks the proposer that runs to
score every existing link and entity of the patterns it tends on the scale of a new proposal,
records the new value with its evidence (LinkRescored / EntityRescored), and lets the policy's
prune step decide. Here: the evidence for a pair of patterns from the ranking's own vectors
(so any target is scored, not only the top candidates), and the events for a proposer's
re-assessment. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


from garden.candidates import Ranking
from garden.event import EntityRescored, Event, LinkRescored, event
from garden.proposal import ProposalRequest
from garden.proposals import calibrate_score


def pair_evidence(ranking: Ranking, slug: str, target: str, terms: int = 4) -> dict[str, Any]:
    """The pair's cosine, the target's rank among `slug`'s candidates (1 = best; None beyond the
    ranked neighbours) and their shared terms; a target not in the garden: cosine 0, missing."""
    return pair_evidences(ranking, slug, [target], terms)[0]


def pair_evidences(ranking: Ranking, slug: str, targets: Sequence[str], terms: int = 4) -> list[dict[str, Any]]:
    """`pair_evidence` of `slug` with each of `targets`, the overlaps in one pass
    (`Ranking.overlaps`)."""
    scored = [t for t in targets if slug in ranking and t in ranking and t != slug]
    overlaps = dict(zip(scored, ranking.overlaps(slug, scored, terms))) if scored else {}
    i = ranking.index(slug) if scored else -1
    neighbours = ranking.neighbours[i].tolist() if scored else []
    found = []
    for target in targets:
        if target not in overlaps:
            found.append({"cosine": 0.0, "rank": None, "shared_terms": [], "missing": target not in ranking})
            continue
        j = ranking.index(target)
        rank = neighbours.index(j) + 1 if j in neighbours else None
        cosine, shared = overlaps[target]
        if rank is not None:  # the very number a proposal of this candidate was scored by
            cosine = float(ranking.scores[i][rank - 1])
        found.append({"cosine": round(max(0.0, cosine), 4), "rank": rank, "shared_terms": shared})
    return found


def describe_evidence(evidence: dict[str, Any]) -> str:
    """One line a curator reads: what the new value rests on."""
    if "occurrences" in evidence:
        return f"{evidence['occurrences']} occurrences in the pattern's text"
    if evidence.get("missing"):
        return "the target is not in the garden"
    parts = [f"cosine {evidence['cosine']:.2f}",
             f"rank {evidence['rank']}" if evidence.get("rank") else "not among the ranked candidates"]
    if evidence.get("shared_terms"):
        parts.append("shared terms: " + ", ".join(evidence["shared_terms"]))
    return "; ".join(parts)


def rescore_events(request: ProposalRequest, answer: dict[str, list[dict]], proposer: str,
                   actor: str, run_id: str | None, model: str | None = None,
                   fits: Mapping[str, dict] | None = None) -> list[Event]:
    """LinkRescored / EntityRescored for a proposer's `reassess` answer ({"inferred_links":
    [{"target", "type", "confidence", "evidence"}], "entities": [{"id", "relevance", "evidence"}]}).
    With a calibration fit for the proposer/model (`fits`, the state's), the new value is the
    calibrated one, as a new proposal's is, and the evidence keeps the raw one."""
    old_links = {(l.target, l.type): l for l in request.existing_links}
    old_entities = {e.id: e for e in request.existing_entities}
    out: list[Event] = []
    for item in answer.get("inferred_links") or []:
        old = old_links.get((item["target"], item["type"]))
        if old is None:
            continue
        evidence = dict(item.get("evidence") or {})
        if old.confidence is None and "strength" in old.extras():
            evidence["type_default"] = True  # a legacy strength: link; its type is the reader's default
        new, raw = calibrate_score(item["confidence"], fits, proposer, model, None, "link")
        if raw is not None:
            evidence["raw_confidence"] = raw
        out.append(event(LinkRescored(target=old.target, link_type=old.type or "complementary",
                                      old_confidence=old.confidence, new_confidence=new,
                                      reason=describe_evidence(evidence), proposer=proposer,
                                      evidence=evidence), slug=request.slug, run_id=run_id, actor=actor))
    for item in answer.get("entities") or []:
        old = old_entities.get(item["id"])
        if old is None:
            continue
        evidence = dict(item.get("evidence") or {})
        new, raw = calibrate_score(item["relevance"], fits, proposer, model, None, "entity")
        if raw is not None:
            evidence["raw_confidence"] = raw
        out.append(event(EntityRescored(entity_id=old.id, old_relevance=old.relevance,
                                        new_relevance=new, reason=describe_evidence(evidence),
                                        proposer=proposer, evidence=evidence),
                         slug=request.slug, run_id=run_id, actor=actor))
    return out

