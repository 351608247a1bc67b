"""Proposing: read files -> rank -> proposer -> validate -> store. No Prefect here.

`propose_garden` is `garden propose`'s whole pipeline; the nightly tend makes the same calls
(`build_requests`, `propose_requests`) a batch of patterns at a time, each batch a Prefect task.
Asking and recording are two steps: asking (`flows.asking.ask`) touches nothing of ours and can
run anywhere, a Dask worker included (`ask_elsewhere`); recording (`record_answers`) validates
each answer and appends its events, in the flow's process alone. Each pattern's events are
appended as one batch as soon as its answer arrives, so a crash loses at most the answers in
flight, and those are asked again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from events.cache import SqliteResponseCache
from garden.state import State
from events.store import EventStore
from flows.asking import AskJob, Asked, AskedBatch, KeptCache, ask
from flows.recording import recorder
from garden.candidates import Ranking, make_request, rank_patterns
from garden.catalog import Garden
from garden.duplicates import duplicate_events
from garden.errors import SettingsError
from garden.proposal import Budget, Proposer, ProposalRequest
from garden.proposals import actor_of, answer_events
from garden.settings import Settings
from garden.validate import check_answer
from proposers.offline import OfflineProposer


def make_proposer(settings: Settings, store: EventStore | None = None, name: str | None = None) -> Proposer:
    """The proposer the settings ask for; the LLM one needs a key and a model."""
    name = name or settings.proposer
    if name == "offline":
        return OfflineProposer()
    if name != "llm":
        raise SettingsError(f"unknown proposer {name!r}: use offline or llm")
    from proposers.llm import LLMProposer

    return LLMProposer(
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url,
        model=settings.model,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        concurrency=settings.concurrency,
        requests_per_minute=settings.requests_per_minute,
        cache=SqliteResponseCache(store) if store is not None else None,
    )


def budget_of(settings: Settings) -> Budget:
    return Budget(max_requests=settings.max_requests, max_tokens=settings.max_tokens)


@dataclass
class ProposeTally:
    """What one propose pass did, for summaries."""

    asked: int = 0
    answered: int = 0
    failed: int = 0
    deferred: int = 0
    cache_hits: int = 0
    requests: int = 0
    links: int = 0
    entities: int = 0
    rescored: int = 0
    invalid: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: "ProposeTally") -> None:
        for key, value in other.__dict__.items():
            if key == "errors":
                self.errors.extend(value)
            else:
                setattr(self, key, getattr(self, key) + value)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


def propose_garden(store: EventStore, garden: Garden, state: State, settings: Settings, proposer: Proposer,
                   slugs: Sequence[str], run_id: str | None,
                   on_events: Callable[[list], None] | None = None) -> ProposeTally:
    """Rank the garden, ask `proposer` about `slugs`, and record every answer's events, folding
    them into `state` as they are appended (it stays the log's current state)."""
    ranking = rank_patterns(garden.patterns.values(), k=settings.candidates)
    requests = build_requests(garden, state, ranking, slugs, settings.candidates)
    return propose_requests(recorder(store, state), requests, proposer, garden.patterns.keys(),
                            budget_of(settings), run_id, on_events, fits=state.fits, state=state,
                            ranking=ranking)


def build_requests(garden: Garden, state: State, ranking: Ranking, slugs: Sequence[str],
                   k: int = 20) -> list[ProposalRequest]:
    garden.require(slugs)
    types = garden.entity_types()  # the files': no block built
    return [make_request(garden.patterns[s], state.block(s), ranking, garden.patterns, k,
                         declined=declined_for(state, s, garden.patterns[s].text_hash), entity_types=types)
            for s in slugs]


def declined_for(state: State, slug: str, text_hash: str) -> frozenset[str]:
    """What a curator rejected for this pattern while its text was as it is now."""
    known = state.patterns.get(slug)
    declined = known.declined if known is not None else {}
    return frozenset(key for key, seen in declined.items() if seen == text_hash)


def propose_requests(record: Callable[[list], None], requests: Sequence[ProposalRequest],
                     proposer: Proposer, garden_slugs: Collection[str], budget: Budget, run_id: str | None,
                     on_events: Callable[[list], None] | None = None,
                     fits: Mapping[str, dict] | None = None, state: State | None = None,
                     ranking: Ranking | None = None) -> ProposeTally:
    """Ask the proposer about each request, here, and `record` every answer's events as one batch
    as it arrives (`record_answers`)."""
    job = AskJob(tuple(requests), budget, ranking)
    return record_answers(record, job.requests, ask(job, proposer), proposer, garden_slugs, run_id,
                          on_events, fits, state)


def ask_elsewhere(job: AskJob, settings: Settings) -> AskedBatch:
    """Ask a batch where this runs (a Dask worker): the proposer the settings ask for, built here,
    without the log's response cache; what it would have cached comes back for the flow to store."""
    proposer = make_proposer(settings)
    kept = KeptCache()
    if hasattr(proposer, "cache"):
        proposer.cache = kept
    try:
        asked = list(ask(job, proposer))
    finally:
        close = getattr(proposer, "close", None)
        if close is not None:
            close()
    return AskedBatch(asked, kept.puts)


def record_answers(record: Callable[[list], None], requests: Sequence[ProposalRequest], answers: Iterable[Asked],
                   proposer: Proposer, garden_slugs: Collection[str], run_id: str | None,
                   on_events: Callable[[list], None] | None = None,
                   fits: Mapping[str, dict] | None = None, state: State | None = None) -> ProposeTally:
    """Validate each answer and `record` its events as one batch, as the answers come.

    `proposer`: whose answers they are (its name, model and prompt version are recorded; it is
    not asked here). `garden_slugs`: the slugs a link may target, those of the patterns that
    loaded without errors (`Garden.patterns`), not every slug some file claims. `fits`: the
    state's calibration fits (`State.fits`); a proposal with one is recorded on its calibrated
    scale. `state`: for duplicate suspicions (`garden.duplicates`), one per pair."""
    prompt_version = getattr(proposer, "prompt_version", None)
    tally = ProposeTally(asked=len(requests))
    suspected: set[str] = set()  # pairs suspected by this call (a store.append does not fold them)
    by_slug = {r.slug: r for r in requests}
    for asked in answers:
        answer = asked.answer
        request = by_slug[answer.slug]
        checked = None
        if answer.items is not None:
            checked = check_answer(request, answer.items, garden_slugs)
        events = answer_events(request, answer, checked, proposer.name, proposer.model, run_id,
                               prompt_version, fits)
        suspicions = [] if checked is None else suspected_events(
            request, *_found(asked, garden_slugs), proposer, garden_slugs, run_id, state, suspected)
        events += suspicions
        record(events)
        if on_events:
            on_events(events)
        _count(tally, answer, checked)
        tally.invalid += sum(e.type == "ProposalRejected" for e in suspicions)  # a run's rejected count them
    return tally


def _found(asked: Asked, garden_slugs: Collection[str]) -> tuple[list | None, Collection[str] | None]:
    """The duplicates suspected, and the slugs the suspecting side was shown (the whole garden,
    for a proposer that suspects from the ranking; None for a model's answer)."""
    if asked.duplicates is not None:
        return asked.duplicates, garden_slugs
    return asked.answer.items.get("duplicates"), None


def suspicion_events(request: ProposalRequest, items: dict, proposer: Proposer, garden_slugs: Collection[str],
                     run_id: str | None, state: State | None, ranking: Ranking | None,
                     suspected: set[str]) -> list:
    """DuplicateSuspected for a pattern: the offline proposer's from the ranking, a model's from
    its answer's `duplicates`; a pair suspected, waiting or decided on these texts is skipped."""
    suspect = getattr(proposer, "suspect_duplicates", None)
    if suspect is not None:
        if ranking is None:
            return []
        found, shown = suspect(request, ranking), garden_slugs
    else:
        found, shown = items.get("duplicates"), None
    return suspected_events(request, found, shown, proposer, garden_slugs, run_id, state, suspected)


def suspected_events(request: ProposalRequest, found: list | None, shown: Collection[str] | None,
                     proposer: Proposer, garden_slugs: Collection[str], run_id: str | None,
                     state: State | None, suspected: set[str]) -> list:
    """DuplicateSuspected for the duplicates `found` of a pattern (see `suspicion_events`)."""
    if not found:
        return []
    duplicates = state.duplicates if state is not None else {}
    targets = [i["target"] for i in found if isinstance(i, dict) and isinstance(i.get("target"), str)]
    hashes = {t: state.patterns[t].text_hash if state is not None and t in state.patterns else None for t in targets}
    return duplicate_events(request, found, garden_slugs, duplicates, hashes, proposer.name, proposer.model,
                            run_id, actor_of(proposer.name, proposer.model),
                            getattr(proposer, "prompt_version", None), shown, suspected)


def _count(tally: ProposeTally, answer, checked) -> None:
    if answer.deferred:
        tally.deferred += 1
        return
    tally.cache_hits += answer.cache_hit
    tally.requests += answer.requests
    tally.prompt_tokens += answer.usage.prompt_tokens
    tally.completion_tokens += answer.usage.completion_tokens
    if checked is None:
        tally.failed += 1
        tally.errors.append(f"{answer.slug}: {answer.error}")
        return
    tally.answered += 1
    tally.links += len(checked.links)
    tally.entities += len(checked.entities)
    tally.rescored += len(checked.rescores)
    tally.invalid += len(checked.invalid)
