"""Turning one proposer answer, once checked, into the events that record it.

A garden's calibration fits (`State.fits`, from CalibrationFitted) map a proposer's confidences
to the share its curators keep: a proposal of a proposer/model/prompt version/kind with a fit is
recorded with the calibrated value (the one the policy decides by) and the raw one beside it."""

from __future__ import annotations

from collections.abc import Mapping

from garden.event import (
    EntityProposed,
    EntityRescored,
    Event,
    LinkProposed,
    LinkRescored,
    ProposalDeferred,
    ProposalRejected,
    ProposerCalled,
    event,
)
from garden.precision import calibrated, fit_key
from garden.proposal import ProposalRequest, ProposerAnswer
from garden.validate import Checked, EntityRescore


def actor_of(name: str, model: str | None) -> str:
    return f"proposer:{name}/{model or 'default'}"


def calibrate_score(value: float, fits: Mapping[str, dict] | None, proposer: str, model: str | None,
                    prompt_version: str | None, kind: str) -> tuple[float, float | None]:
    """(the value to record, the raw value or None): through the fit for this proposer/model/
    prompt version/kind when the garden has one, else the value as it is."""
    fit = (fits or {}).get(fit_key((proposer, model, prompt_version, kind)))
    if fit is None:
        return value, None
    return round(calibrated(value, fit["breakpoints"]), 4), value


def answer_events(request: ProposalRequest, answer: ProposerAnswer, checked: Checked | None,
                  proposer: str, model: str | None, run_id: str | None,
                  prompt_version: str | None = None, fits: Mapping[str, dict] | None = None) -> list[Event]:
    """ProposerCalled (or ProposalDeferred), then every proposal, re-assessment and rejection;
    proposals calibrated by `fits` (the state's) where one applies."""
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
        confidence, raw = calibrate_score(link.confidence, fits, proposer, model, prompt_version, "link")
        out.append(make(LinkProposed(target=link.target, link_type=link.type,
                                     confidence=confidence, reason=link.reason, proposer=proposer,
                                     model=model, prompt_version=prompt_version, raw_confidence=raw)))
    for entity in checked.entities:
        relevance, raw = calibrate_score(entity.relevance, fits, proposer, model, prompt_version, "entity")
        out.append(make(EntityProposed(entity_id=entity.id, entity_type=entity.type,
                                       label=entity.label, relevance=relevance, proposer=proposer,
                                       model=model, prompt_version=prompt_version, raw_confidence=raw)))
    for rescore in checked.rescores:  # on the scale of a new proposal: the same fit
        if isinstance(rescore, EntityRescore):
            new, raw = calibrate_score(rescore.new, fits, proposer, model, prompt_version, "entity")
            out.append(make(EntityRescored(entity_id=rescore.id, old_relevance=rescore.old,
                                           new_relevance=new, reason=rescore.reason, proposer=proposer,
                                           evidence={} if raw is None else {"raw_confidence": raw})))
            continue
        new, raw = calibrate_score(rescore.new, fits, proposer, model, prompt_version, "link")
        out.append(make(LinkRescored(target=rescore.target, link_type=rescore.type,
                                     old_confidence=rescore.old, new_confidence=new,
                                     reason=rescore.reason, proposer=proposer,
                                     evidence={} if raw is None else {"raw_confidence": raw})))
    for invalid in checked.invalid:
        out.append(make(ProposalRejected(proposal_id=None, reason=f"invalid: {invalid.reason}",
                                         item=invalid.item)))
    return out
