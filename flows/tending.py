"""One tend, as plain steps: observe, choose, propose, decide, prune, write, finish.

The Prefect flow in `flows/tend.py` calls these steps (the propose step once per batch, as a
task); nothing here imports Prefect, so every step is tested and reused on its own.

Every step records what it does through a `Recorder`, which appends the events to the store and
folds them into the in-memory projection, so later steps see the effect of earlier ones without
reading the log again. In a dry run the Recorder folds but does not append: the same steps run,
and nothing is recorded or written.

Crash safety comes from the order of things. Each pattern's answer is appended as one batch. A
pattern already asked in a run is not asked again when a batch is retried, and a re-run after a
crash does not ask again about patterns tended recently (see `garden.schedule`). Every file write
is announced (BlockWriteStarted), made atomically, then confirmed (BlockWritten); the next
observation settles a write whose confirmation a crash cut off.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from events.parse_cache import open_parse_cache
from events.observe import observe_garden
from events.projection import load_state, save_snapshot_if_due
from garden.state import PatternState, State, apply_event, proposal_key
from events.store import EventStore
from flows.prepare import prepared_for
from flows.asking import AskJob, Asked, ask, cached_answers, ranking_for
from flows.helper import Helper, failure_note, wanted
from flows.propose import ProposeTally, budget_of, build_requests, make_proposer, record_answers
from garden.candidates import Ranking, rank_patterns
from garden.catalog import Garden, load_garden
from garden.collector import full_collections_paused
from garden.errors import GardenError, display_path
from garden.event import Event, new_id
from garden.policy import Policy, cap_prunes, decide, prune
from garden.proposal import ProposalRequest, Proposer
from garden.proposals import actor_of
from garden.reassess import rescore_events
from garden.schedule import choose_patterns
from garden.settings import Settings
from flows.run import close_orphaned_runs, complete_run, fail_run, start_run
from flows.writing import write_changed_blocks
from garden.writer import remove_stale_temp_files


#: Inside `Recorder.holding`, events are appended at most this often (seconds) and when this many
#: wait: one transaction per answer cost a first tend of 3,600 patterns 7,300 commits (about 2 s);
#: answers that arrive seconds apart (a model's) are still appended one by one as they come.
HOLD_SECONDS = 0.5
HOLD_MOST = 5_000


@dataclass
class Recorder:
    store: EventStore
    state: State
    dry_run: bool = False
    counts: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)
    held: list[Event] | None = None  # folded, not appended yet (inside `holding`)
    appended_at: float = 0.0

    def record(self, events: list[Event]) -> None:
        if not events:
            return
        if self.held is None:
            if not self.dry_run:
                self.store.append(events)
        else:
            self.held += events
            if len(self.held) >= HOLD_MOST or time.monotonic() - self.appended_at >= HOLD_SECONDS:
                self.append_held()
        self.fold(events)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Gather what is recorded inside into few appends (see HOLD_SECONDS), each folded at
        once. Everything recorded is appended by the end, when an error ends it too: a crash
        loses at most the last half second of answers, which the response cache or a re-run
        gives again (a pattern whose answer is not in the log is asked again)."""
        if self.held is not None:
            yield
            return
        self.held, self.appended_at = [], time.monotonic()
        try:
            yield
        finally:
            try:
                self.append_held()
            finally:
                self.held = None

    def append_held(self) -> None:
        held, self.held = self.held, []
        self.appended_at = time.monotonic()
        if held and not self.dry_run:
            self.store.append(held)

    def fold(self, events: list[Event]) -> None:
        for e in events:
            apply_event(self.state, e)
            kind = e.type
            self.counts[kind] += 1
            if kind.endswith("Pruned"):
                self.rules[e.payload.rule.split(".")[0]] += 1


@dataclass
class Tend:
    """Everything one tend works with; built by `start_tend`."""

    run_id: str
    settings: Settings
    policy: Policy
    today: dt.date
    store: EventStore
    garden: Garden
    recorder: Recorder
    proposer: Proposer
    explicit: list[str] | None
    limit: int | None
    tally: ProposeTally = field(default_factory=ProposeTally)
    chosen: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said, not counted as errors
    timings: dict[str, float] = field(default_factory=dict)
    ranking: Ranking | None = None
    deferred_prunes: Counter = field(default_factory=Counter)  # by rule, held back by max_prunes_per_run
    runner: dict | None = None  # the task runner's options (None: the default runner)
    helper: Helper | None = None  # the second process (`flows.helper`), while it runs
    helped: bool = False  # whether this tend started one

    @property
    def state(self) -> State:
        return self.recorder.state

    def record(self, events: list[Event]) -> None:
        self.recorder.record(events)


def start_tend(settings: Settings, policy: Policy, store: EventStore, *, today: dt.date,
               limit: int | None = None, patterns: list[str] | None = None,
               dry_run: bool = False, run_id: str | None = None, runner: dict | None = None) -> Tend:
    """Load the garden and the projection, close runs a killed process left open, RunStarted.
    `runner`: the task runner's options, recorded with the run's (none: the default runner)."""
    if not settings.garden.is_dir():
        raise GardenError(f"{display_path(settings.garden)}: no such folder; pass --garden DIR")
    prepared = prepared_for(settings.garden)  # read while Prefect's server started, if unchanged
    garden = prepared.garden() if prepared is not None else None
    if garden is None:
        garden = load_garden(settings.garden, keep_bodies=False, cache=open_parse_cache(settings))
    if not dry_run:  # before the state is loaded: the in-memory state must count these events too
        close_orphaned_runs(store)
        remove_stale_temp_files(settings.garden)
    state = load_state(store)
    proposer = make_proposer(settings, store)
    tend = Tend(run_id or new_id(), settings, policy, today, store, garden,
                Recorder(store, state, dry_run), proposer, patterns,
                limit if limit is not None else policy.nightly_limit, runner=runner)
    for problem in garden.errors:
        tend.errors.append(str(problem))
    for slug in sorted(garden.read_only):  # never chosen, decided, pruned or written
        tend.notes.append(garden.read_only[slug])
    options = {"garden": str(settings.garden), "db": str(settings.db), "limit": tend.limit,
               "patterns": patterns, "today": today.isoformat(), "dry_run": dry_run, **(runner or {})}
    start_run(tend.record, tend.run_id, proposer.name, proposer.model, policy.model_dump(), options)
    return tend


def observe_step(tend: Tend) -> int:
    events = observe_garden(tend.garden, tend.state, tend.run_id)
    tend.record(events)
    return len(events)


def choose_step(tend: Tend) -> list[str]:
    if tend.explicit:
        tend.garden.require(tend.explicit)
    hashes = {slug: p.text_hash for slug, p in tend.garden.patterns.items() if slug not in tend.garden.read_only}
    known = tend.state.patterns
    tended = {slug: known[slug].tended for slug in hashes if slug in known}
    chosen = choose_patterns(hashes, tended, tend.today, tend.limit,
                             tend.policy.retend_after_days, tend.explicit)
    tend.chosen = [c.slug for c in chosen if c.slug not in tend.garden.read_only]
    return tend.chosen


def choose_and_rank_step(tend: Tend) -> int:
    """Choose the patterns to ask about, and rank the candidates when there are any. A helper
    process, when it pays, starts in between, to import its modules while the flow ranks
    (`flows.helper`); one that cannot start leaves the tend to one process, and a note."""
    choose_step(tend)
    if tend.runner is None and tend.helper is None and wanted(tend.settings, tend.proposer.name, len(tend.chosen)):
        try:
            tend.helper = Helper(tend.settings)
            tend.helped = True
        except Exception as e:  # no working semaphores or /dev/shm, no process to spare, ...
            tend.notes.append(f"no second process ({type(e).__name__}: {e}); the flow did all the work itself")
    tend.ranking = rank_step(tend) if tend.chosen else None
    return len(tend.chosen)


def rank_step(tend: Tend) -> Ranking:
    """Rank the patterns that loaded without errors (`Garden.patterns`): a file `check` rejects
    is never anyone's candidate. With a helper, the two processes share the tokenising; a
    helper that fails or dies leaves the rest of it, and of the tend, to this process."""
    failed: list[BaseException] = []
    share = None if tend.helper is None else partial(tend.helper.share, on_failure=failed.append)
    ranking = rank_patterns(tend.garden.patterns.values(), k=tend.settings.candidates, share=share)
    if failed:
        tend.notes.append(failure_note(failed[0], "tokenised the rest and did the rest of the tend"))
        close_helper(tend, wait=False)
    return ranking


#: Patterns per Prefect task when neither the policy (`Policy.batch_size`) nor the proposer
#: (its `batch_size`) says: a model's answers take seconds each. The offline proposer's take
#: about 3 ms, so a batch of 50 cost it as much in task runs as in answers (a first tend of
#: 3,600: 72 tasks, 1.3 s more than 8); it asks for 500.
BATCH_SIZE = 50


def batches(tend: Tend) -> list[list[str]]:
    size = tend.policy.batch_size or getattr(tend.proposer, "batch_size", BATCH_SIZE)
    return [tend.chosen[i : i + size] for i in range(0, len(tend.chosen), size)]


def propose_batch(tend: Tend, slugs: list[str], ranking: Ranking) -> ProposeTally:
    """Ask about one batch here, or in the tend's helper process, and record each answer as it
    arrives. Patterns already asked in this run (a retried batch) are skipped."""
    if tend.helper is not None:
        return _propose_in_helper(tend, tend.helper, slugs, ranking)
    job = ask_job(tend, slugs, ranking)
    return record_batch(tend, job, ask(job, tend.proposer))


def _propose_in_helper(tend: Tend, helper: Helper, slugs: list[str], ranking: Ranking) -> ProposeTally:
    """The batch's answers from the helper, the next batch's question sent to it before they are
    recorded (as `flows.cluster.propose_on` sends a window ahead). A helper that failed or died:
    this batch and the rest are asked here."""
    following = batches(tend)
    after = next((following[i + 1] for i, batch in enumerate(following[:-1]) if batch == slugs), None)
    jobs = {tuple(batch): ask_job(tend, batch, ranking)
            for batch in (slugs, after) if batch is not None and not helper.sent(tuple(batch))}
    try:
        for key, job in jobs.items():
            helper.send(key, job, *shipped_job(tend, job))
        job, cached, answers = helper.take(tuple(slugs))
        batch = answers.result()
    except Exception as e:  # what the helper raised, or BrokenProcessPool: ask here, as without it
        tend.notes.append(failure_note(e))
        close_helper(tend, wait=False)
        job = ask_job(tend, slugs, ranking)
        return record_batch(tend, job, ask(job, tend.proposer))
    return record_batch(tend, job, cached + batch.asked, batch.cache_puts)


def close_helper(tend: Tend, wait: bool = True) -> None:
    if tend.helper is not None:
        tend.helper.close(wait)
        tend.helper = None


def ask_job(tend: Tend, slugs: list[str], ranking: Ranking) -> AskJob:
    """One batch's question: the patterns of `slugs` this run has not asked about yet."""
    todo = [s for s in slugs if not _asked_in(tend, s)]
    requests = build_requests(tend.garden, tend.state, ranking, todo, tend.settings.candidates)
    return AskJob(tuple(requests), budget_of(tend.settings), ranking, reassess=True)


def shipped_job(tend: Tend, job: AskJob) -> tuple[AskJob, list[Asked]]:
    """A batch to ask elsewhere (a Dask worker): its question with only the part of the ranking
    the proposer reads and without what the flow's cache answers, and the answers the cache gave."""
    hits = cached_answers(tend.proposer, job.requests)
    answered = {answer.slug for answer in hits}
    requests = tuple(r for r in job.requests if r.slug not in answered)
    shipped = replace(job, requests=requests, ranking=ranking_for(tend.proposer, requests, job.ranking))
    return shipped, [Asked(answer) for answer in hits]


def record_batch(tend: Tend, job: AskJob, answers: Iterable[Asked],
                 cache_puts: Iterable[tuple] = ()) -> ProposeTally:
    """Record one batch's answers as they come, then its re-assessments, in few appends
    (`Recorder.holding`); `cache_puts`: what a worker's proposer would have cached."""
    with tend.recorder.holding():
        return _record_batch(tend, job, answers, cache_puts)


def _record_batch(tend: Tend, job: AskJob, answers: Iterable[Asked], cache_puts: Iterable[tuple]) -> ProposeTally:
    reassessed: dict[str, dict] = {}

    def keep(answers: Iterable[Asked]) -> Iterator[Asked]:
        for asked in answers:
            if asked.reassessed is not None:
                reassessed[asked.answer.slug] = asked.reassessed
            yield asked

    tally = record_answers(tend.recorder.record, job.requests, keep(answers), tend.proposer,
                           tend.garden.patterns.keys(), tend.run_id, fits=tend.state.fits, state=tend.state)
    tend.tally.add(tally)
    reassess_requests(tend, job.requests, reassessed)
    cache = getattr(tend.proposer, "cache", None)
    for put in cache_puts if cache is not None else ():
        cache.put(*put)
    return tally


def reassess_requests(tend: Tend, requests: Sequence[ProposalRequest], reassessed: dict[str, dict]) -> None:
    """Record the re-assessment of every existing link and entity of each pattern asked, by a
    proposer that re-assesses on its own (the offline one: `Asked.reassessed`); the LLM
    re-assesses inside its answer instead."""
    if not reassessed:
        return
    actor = actor_of(tend.proposer.name, tend.proposer.model)
    events = []  # one append for the batch: a crash loses at most a batch of re-assessments,
    for request in requests:  # and a retried batch scores the same items the same way
        if request.slug in reassessed:
            events += rescore_events(request, reassessed[request.slug], tend.proposer.name, actor,
                                     tend.run_id, tend.proposer.model, tend.state.fits)
    tend.record(events)


def decide_step(tend: Tend) -> None:
    """Apply the policy to every pending proposal in the garden."""
    with tend.recorder.holding():
        for slug in sorted(tend.state.patterns):
            pending = tend.state.patterns[slug].pending
            if pending and slug not in tend.garden.read_only:
                tend.record(decide(slug, dict(pending), tend.policy, tend.run_id))


def decide_and_prune_step(tend: Tend) -> None:
    decide_step(tend)
    prune_step(tend)


def prune_step(tend: Tend) -> None:
    """Prune by the policy; a curator's item becomes a proposed prune; at most
    `max_prunes_per_run` prunes (the lowest scores first), the rest left for the next runs."""
    events = []
    for slug, pattern in sorted(tend.garden.patterns.items()):
        known = tend.state.patterns.get(slug)
        if not known or slug in tend.garden.read_only:
            continue
        events += prune(slug, known.block, pattern.curated_targets(), tend.garden.known_slugs,
                        tend.policy, tend.run_id, tend.today, known.refreshed,
                        owned=known.owned, asked=_asked_prunes(known, pattern.text_hash))
    events, deferred = cap_prunes(events, tend.policy.max_prunes_per_run)
    for e in deferred:
        tend.deferred_prunes[e.payload.rule.split(".")[0]] += 1
    tend.record(events)


def _asked_in(tend: Tend, slug: str) -> bool:
    """Whether this run has asked about the pattern already (a retried batch)."""
    known = tend.state.patterns.get(slug)
    return known is not None and known.tended is not None and known.tended.run_id == tend.run_id


def _asked_prunes(known: PatternState, text_hash: str) -> set[str]:
    """Proposed prunes waiting for a curator, or declined by one for this text."""
    asked = {proposal_key(p) for p in known.pending.values() if p["kind"] == "prune"}
    asked |= {key for key, seen in known.declined.items()
              if key.startswith("prune|") and seen == text_hash}
    return asked


def write_step(tend: Tend) -> list[str]:
    """Write every block whose content the log changed; stamp last_pruned with the run's date."""
    written, errors = write_changed_blocks(tend.record, tend.garden, tend.state, tend.today,
                                           tend.run_id, dry_run=tend.recorder.dry_run,
                                           cache=open_parse_cache(tend.settings), helper=tend.helper,
                                           notes=tend.notes)
    close_helper(tend)
    tend.written.extend(written)
    tend.errors.extend(errors)
    return tend.written


STEPS = ("observe", "choose_and_rank", "propose", "decide_and_prune", "write")


def steps_of(tend: Tend) -> tuple[str, ...]:
    """The steps of this tend, in order (a dry run writes nothing): the Prefect flow runs each
    as its task (proposing as one task per batch), `run_steps` in this process."""
    return STEPS[:-1] if tend.recorder.dry_run else STEPS


def run_steps(tend: Tend, stop_before: str | None = None) -> None:
    """Every step in order, in this process, as the Prefect flow runs them (without Prefect):
    for tests, benchmarks, and a tend that must not need a server."""
    with collector_for(tend.settings):
        _run_steps(tend, stop_before)


def collector_for(settings: Settings) -> AbstractContextManager:
    """No full garbage collections during a tend that works all the time (the offline proposer:
    minutes of building and keeping); a model's tend waits on HTTP for hours, and its clients'
    cyclic garbage is collected as usual."""
    return full_collections_paused() if settings.proposer == "offline" else nullcontext()


def _run_steps(tend: Tend, stop_before: str | None) -> None:
    calls = {"observe": observe_step, "choose_and_rank": choose_and_rank_step,
             "propose": lambda t: [propose_batch(t, batch, t.ranking) for batch in batches(t)],
             "decide_and_prune": decide_and_prune_step, "write": write_step}
    try:
        for step in steps_of(tend):
            if step == stop_before:
                break
            calls[step](tend)
    finally:
        close_helper(tend)  # the write step closed it, unless it failed or did not run


def summary(tend: Tend) -> dict[str, Any]:
    c = tend.recorder.counts
    prepared, prepare_timing = _prepared(tend)
    pending = sum(len(p.pending) for p in tend.state.patterns.values())
    return {
        "run_id": tend.run_id,
        "dry_run": tend.recorder.dry_run,
        "proposer": tend.proposer.name,
        "model": tend.proposer.model,
        "today": tend.today.isoformat(),
        "patterns": len(tend.garden.patterns),
        "tended": len(tend.chosen),
        "observed": c["GardenObserved"],
        "external_edits": c["ExternalEditObserved"],
        "proposed": c["LinkProposed"] + c["EntityProposed"],
        "rescored": c["LinkRescored"] + c["EntityRescored"],
        "accepted": c["ProposalAccepted"],
        "pending": pending,
        "rejected": c["ProposalRejected"],
        "invalid": tend.tally.invalid,
        "failed": tend.tally.failed,
        "deferred": tend.tally.deferred,
        "pruned": dict(sorted(tend.recorder.rules.items())),
        "prunes_proposed": c["PruneProposed"],
        "prunes_deferred": dict(sorted(tend.deferred_prunes.items())),
        "files_written": len(tend.written),
        "errors": len(tend.errors) + tend.tally.failed,
        "requests": tend.tally.requests,
        "cache_hits": tend.tally.cache_hits,
        "tokens": tend.tally.prompt_tokens + tend.tally.completion_tokens,
        "cost": _cost(tend),
        "timings": {k: round(v, 3) for k, v in tend.timings.items()} | prepare_timing,
        "prepared": prepared,
        "second_process": tend.helped,
    }


def _prepared(tend: Tend) -> tuple[list[str], dict[str, float]]:
    """What the tend took from a `Preparation` (read while Prefect's server started: "garden"),
    and the timing of that, "prepare", beside the start."""
    prepared = prepared_for(tend.settings.garden)
    if prepared is None or not prepared.taken:
        return [], {}
    return ["garden"], {"prepare": round(prepared.seconds, 3)}


def _cost(tend: Tend) -> float | None:
    s = tend.settings
    if s.price_prompt_per_1k is None and s.price_completion_per_1k is None:
        return None
    return round(tend.tally.prompt_tokens / 1000 * (s.price_prompt_per_1k or 0)
                 + tend.tally.completion_tokens / 1000 * (s.price_completion_per_1k or 0), 6)


def finish_tend(tend: Tend) -> dict[str, Any]:
    close_helper(tend)
    result = summary(tend)
    counts = {k: v for k, v in result.items() if k not in ("run_id", "timings")}
    head = complete_run(tend.record, None if tend.recorder.dry_run else tend.store, tend.run_id, counts)
    if head is not None:
        result["head"] = {"seq": head.seq, "hash": head.hash, "published_at": head.published_at,
                          "file": display_path(tend.store.heads)}
        # Save the night's state as a snapshot now (past 20,000 new events, as load_state
        # would), so the morning's first `garden review` or `health` does not fold them again.
        # The tend's own state is the log's, folded as appended; else it is loaded from the log.
        started = time.perf_counter()
        if not save_snapshot_if_due(tend.store, tend.state):
            load_state(tend.store)
        result["timings"]["snapshot"] = round(time.perf_counter() - started, 3)
    return result


def fail_tend(tend: Tend, error: BaseException) -> None:
    close_helper(tend, wait=False)
    if not tend.recorder.dry_run:  # straight to the store: the in-memory state ends with the tend
        fail_run(tend.store.append, tend.store, tend.run_id, error, summary(tend))
