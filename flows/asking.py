"""Asking the proposer, apart from recording its answers: the part of proposing that can run
anywhere.

A batch's question goes in (`AskJob`: its `ProposalRequest`s, the budget, and the part of the
ranking the proposer reads), the proposer's answers come out (`Asked`); nothing here touches the
log, the files or the garden's state. So the same step runs in the flow's own process (the
default task runner, and `garden propose`) or on a Dask worker (`garden tend --task-runner
dask`), and the answers come back to the flow, which alone validates and records them
(`flows.propose.record_answers`): one writer, and the log stays the single truth.

A job is shipped whole, so it carries only what its batch needs: each request already holds its
pattern's candidates, and the offline proposer's re-assessment and duplicate suspicions read the
rows of the ranking that `OfflineProposer.ranking_for` picks, not the garden's whole ranking.
A worker has no log, so no response cache either: the flow answers from its cache what it can
before shipping a batch (`cached_answers`), and stores what the worker's proposer would have
cached (`AskedBatch.cache_puts`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from garden.candidates import Ranking
from garden.proposal import Budget, Proposer, ProposalRequest, ProposerAnswer, Usage


@dataclass(frozen=True)
class AskJob:
    """One batch's question, whole and picklable."""

    requests: tuple[ProposalRequest, ...]
    budget: Budget
    #: What the proposer reads of the ranking (the offline one: re-assessment, duplicates).
    ranking: Ranking | None = None
    #: Whether to re-assess each pattern's existing items too (the tend does; `garden propose` not).
    reassess: bool = False


@dataclass(frozen=True)
class Asked:
    """One pattern's answer as the proposer gave it, before anything is validated or recorded."""

    answer: ProposerAnswer
    #: The duplicates a proposer suspects by itself (the offline one, from the ranking); None: a
    #: proposer that says so in its answer's items (a model's `duplicates`).
    duplicates: list[dict] | None = None
    #: The proposer's re-assessment of the pattern's existing links and entities, if it makes one.
    reassessed: dict | None = None


@dataclass(frozen=True)
class AskedBatch:
    """What a batch asked elsewhere sends back: its answers, and what to put in the flow's cache."""

    asked: list[Asked]
    cache_puts: list[tuple[str, str, dict[str, Any], Usage]] = field(default_factory=list)


class Parcel:
    """A job as one value that Prefect and Dask do not look inside: both walk a task's arguments
    (dataclasses, tuples) for futures, and Prefect walked a batch of 50 twice per submit, 60 ms
    against the 70 ms of asking it. (Prefect's `opaque` is a tuple, which Dask takes apart.)"""

    __slots__ = ("job",)

    def __init__(self, job: AskJob):
        self.job = job

    def __getstate__(self) -> AskJob:
        return self.job

    def __setstate__(self, job: AskJob) -> None:
        self.job = job


def ask(job: AskJob, proposer: Proposer) -> Iterator[Asked]:
    """The proposer's answer to each request, in the order it gives them (as they arrive)."""
    suspect = getattr(proposer, "suspect_duplicates", None)
    reassess = getattr(proposer, "reassess", None) if job.reassess else None
    by_slug = {r.slug: r for r in job.requests}
    for answer in proposer.propose(job.requests, job.budget):
        request = by_slug[answer.slug]
        duplicates = None
        if suspect is not None:
            duplicates = suspect(request, job.ranking) if job.ranking is not None and answer.items is not None else []
        reassessed = None
        if reassess is not None and (request.existing_links or request.existing_entities):
            reassessed = reassess(request, job.ranking)
        yield Asked(answer, duplicates, reassessed)


def ranking_for(proposer: Proposer, requests: Sequence[ProposalRequest], ranking: Ranking | None) -> Ranking | None:
    """The part of the ranking a proposer reads for these requests (none, for a model)."""
    pick = getattr(proposer, "ranking_for", None)
    return pick(requests, ranking) if pick is not None and ranking is not None else None


def cached_answers(proposer: Proposer, requests: Sequence[ProposalRequest]) -> list[ProposerAnswer]:
    """The answers the proposer's cache holds already (a model's), asked nowhere."""
    cached = getattr(proposer, "cached_answer", None)
    if cached is None:
        return []
    return [answer for answer in map(cached, requests) if answer is not None]


class KeptCache:
    """A response cache that keeps what is put in it, for the flow to store: a worker's."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, str, dict[str, Any], Usage]] = []

    def get(self, key: str) -> dict[str, Any] | None:
        return None

    def put(self, key: str, model: str, response: dict[str, Any], usage: Usage) -> None:
        self.puts.append((key, model, response, usage))
