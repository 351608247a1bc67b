"""Turning one proposer answer, once checked, into the events that record it."""

from __future__ import annotations

from garden.event import (
    EntityProposed,
    Event,
    LinkProposed,
    LinkRescored,
    ProposalDeferred,
    ProposalRejected,
    ProposerCalled,
    event,
)
from garden.proposal import ProposalRequest, ProposerAnswer
from garden.validate import Checked


def actor_of(name: str, model: str | None) -> str:
    return f"proposer:{name}/{model or 'default'}"


def answer_events(request: ProposalRequest, answer: ProposerAnswer, checked: Checked | None,
                  proposer: str, model: str | None, run_id: str | None) -> list[Event]:
    """ProposerCalled (or ProposalDeferred), then every proposal, re-assessment and rejection."""
    actor = actor_of(proposer, model)

    def make(payload) -> Event:
        return event(payload, slug=request.slug, run_id=run_id, actor=actor)

    if answer.deferred:
        return [make(ProposalDeferred(proposer=proposer, reason=answer.error or "deferred"))]
    ok = answer.items is not None and checked is not None
    out = [make(ProposerCalled(
        proposer=proposer, model=model, text_hash=request.text_hash,
        outcome="ok" if ok else "failed", error=None if ok else answer.error,
        raw=None if ok else answer.raw, cache_hit=answer.cache_hit, requests=answer.requests,
        prompt_tokens=answer.usage.prompt_tokens, completion_tokens=answer.usage.completion_tokens,
        latency_ms=round(answer.latency_ms, 1),
        proposed=len(checked.links) + len(checked.entities) if ok else 0,
        rejected=len(checked.invalid) if ok else 0,
    ))]
    if not ok:
        return out
    for link in checked.links:
        out.append(make(LinkProposed(target=link.target, link_type=link.type,
                                     confidence=link.confidence, reason=link.reason,
                                     proposer=proposer, model=model)))
    for entity in checked.entities:
        out.append(make(EntityProposed(entity_id=entity.id, entity_type=entity.type,
                                       label=entity.label, relevance=entity.relevance,
                                       proposer=proposer, model=model)))
    for rescore in checked.rescores:
        out.append(make(LinkRescored(target=rescore.target, link_type=rescore.type,
                                     old_confidence=rescore.old, new_confidence=rescore.new,
                                     reason=rescore.reason, proposer=proposer)))
    for invalid in checked.invalid:
        out.append(make(ProposalRejected(proposal_id=None, reason=f"invalid: {invalid.reason}",
                                         item=invalid.item)))
    return out
