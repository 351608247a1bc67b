"""The application: the operations people know (`tend`, `review`, `accept`, `revert`, ...) as
one method each, for every entry point (the CLI; next, a web page) to call. `tend` runs the
Prefect flow the nightly deployment runs.

A method opens the log, reads the garden, loads the log's state once, and keeps that one state
current by folding in what it appends (`flows.recording.catch_up`) rather than loading it again; a
point in the log's past (what a run changed) is loaded from the snapshot nearest before it. A
method that writes takes the garden's lock itself, so every caller gets the same exclusion. It
returns plain results (dataclasses with `to_dict`, dicts) and prints nothing: what a caller
shows is its own business. Expected failures are `GardenError`s whose `exit_code` (1 unless
said: 2 for a held lock) a CLI exits with.

`state_loads` lists the `until` of every state the log was folded into by this object's
commands (None for the current state): a command loads the current state once.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from events.parse_cache import open_parse_cache
from events.projection import load_state
from garden.state import PatternState, State
from events.queries import curator_labels, history as read_history, list_runs, resolve_until
from events.queries import verify as verify_log
from events.replay import compare, replay_into
from events.store import EventStore
from flows import calibration, curate
from flows.lock import garden_lock
from flows.prepare import Preparation
from flows.propose import ProposeTally, make_proposer, propose_garden
from flows.recording import catch_up, observe
from flows.report import html_report
from flows.run import recorded_run
from garden import precision
from garden.catalog import Garden, garden_as_logged, load_garden, pattern_files, read_files
from garden.collector import full_collections_paused
from garden.errors import GardenError, display_path
from garden.health import KnownLibrary, KnownPattern, garden_health
from garden.neighbours import Neighbourhood, neighbourhood
from garden.policy import load_policy
from garden.settings import Settings

# Prefect's temporary local server, quietly: no telemetry (there is no network), and only
# warnings from Prefect's own loggers. A user's own settings win.
PREFECT_QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
}


class _CountedStore:
    """The event store, counting the states folded from it (each fold asks once for the
    snapshot to start from): how `GardenApp.state_loads` knows, whoever called `load_state`."""

    def __init__(self, store: EventStore, loads: list[int | None]):
        self._store, self._loads = store, loads

    def latest_snapshot(self, fold_version: int, until: int | None = None):
        self._loads.append(until)
        return self._store.latest_snapshot(fold_version, until)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


# --- results ----------------------------------------------------------------------------------


@dataclass
class Review:
    """The pending proposals by pattern (each with the diff accepting them all would make),
    and the merge candidates (duplicate suspicions) narrowed the same way."""

    found: dict[str, dict[str, dict]]
    diffs: dict[str, list[str]]
    merges: list[dict]

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.found.values())

    def to_json(self) -> list[dict]:
        groups = {slug: {"slug": slug, "proposals": [{"id": pid, **p} for pid, p in ps.items()],
                         "diff": "\n".join(self.diffs[slug]), "merge_candidates": []}
                  for slug, ps in self.found.items()}
        for m in self.merges:  # with the pattern that suspected it, or the other, or a group of its own
            where = next((s for s in (m["slug"], m["other"]) if s in groups), m["slug"])
            groups.setdefault(where, {"slug": where, "proposals": [], "diff": "",
                                      "merge_candidates": []})["merge_candidates"].append(m)
        return list(groups.values())


@dataclass
class Sample:
    """A stratified sample of the machine's items, with each one's pattern as it is now."""

    items: list[curate.MachineItem]
    total: int
    strata: int
    seed: int
    patterns: dict[str, PatternState]

    def to_json(self) -> list[dict]:
        return [item.to_dict(self.patterns[item.slug]) for item in self.items]


@dataclass
class Queue:
    """Pending proposals one by one: (slug, id, proposal) of those shown, how many the filters
    keep in all, each shown one's diff by id, and the titles and summaries of the patterns named."""

    items: list[tuple[str, str, dict]]
    count: int
    diffs: dict[str, list[str]]
    about: dict[str, dict]
    seq: int = 0  # the log's event the queue was read at


@dataclass
class Lifted:
    run_id: str
    finished: curate.Finished | None = None

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "finished": self.finished and self.finished.to_dict()}


@dataclass
class RunDiff:
    run_id: str
    counts: dict[str, int]
    diffs: dict[str, list[str]]  # slug -> unified diff lines
    changed: int = 0  # patterns whose block the run changed (`diffs` may hold a page of them)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "counts": self.counts,
                "patterns": {slug: "\n".join(lines) for slug, lines in self.diffs.items()}}


@dataclass
class Reverted:
    plan: curate.RevertPlan
    result: curate.CuratorResult

    def to_dict(self) -> dict:
        plan = self.plan
        return {**self.result.to_dict(), "reverted_run": plan.run_id, "finishing": plan.finishing,
                "conflicts": plan.conflicts, "withdrawn": [pid for _, pid in plan.withdrawn],
                "withdrawn_suspicions": [pid for _, pid in plan.withdrawn_suspicions],
                "reopened": [pid for _, pid, _, _ in plan.reopened],
                "redecided": [d.payload.proposal_id for d in plan.redecided]}


@dataclass
class ReportPage:
    run_id: str
    html: str
    changed: int  # blocks the run changed
    pending: int  # proposals pending now


@dataclass
class Proposed:
    run_id: str
    proposer: str
    model: str | None
    tally: ProposeTally
    proposals: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "proposer": self.proposer, "model": self.model,
                "counts": self.tally.counts(), "errors": self.tally.errors, "proposals": self.proposals}


@dataclass
class Calibrated:
    result: dict[str, Any]  # what --json prints
    written: calibration.CalibrationWrite | None = None


@dataclass
class Replayed:
    seq: int
    out: Path | None = None
    written: int = 0
    differences: list = field(default_factory=list)  # with check: events.replay.Difference


_SHOWN_PROPOSALS = ("LinkProposed", "EntityProposed", "LinkRescored", "ProposalRejected")


def _narrowing(store: EventStore, state: State, pattern: str | None, run: str | None) -> str | None:
    """A review narrowed to a pattern or a run: both must exist (GardenErrors naming them if
    not); the run's id as the log spells it."""
    if pattern:
        curate.require_pattern(state, pattern)
    return curate.require_run(store, run) if run else None


class GardenApp:
    """One garden (the folder and its event log, as `settings` name them) and what can be done
    with it. Cheap to make; each method opens and closes what it needs."""

    def __init__(self, settings: Settings, on_note: Callable[[str], None] | None = None, *,
                 keep_state: bool = False):
        self.settings = settings
        self.on_note = on_note or (lambda text: None)  # said on the way, e.g. files left out
        self.state_loads: list[int | None] = []
        # With keep_state (a server answering many requests), the current state is loaded once and
        # kept: each call folds in only what was appended since, by this object or anyone else.
        self.keep_state = keep_state
        self._kept: State | None = None
        self._mark: tuple[int, str | None] | None = None  # (seq, hash) of the last event kept
        self._one_at_a_time = threading.RLock()  # a kept state is read and changed by one call at a time

    # --- resources ----------------------------------------------------------------------------

    def require_garden(self) -> None:
        if not self.settings.garden.is_dir():
            raise GardenError(f"{display_path(self.settings.garden)}: no such folder; pass --garden DIR")

    def read_garden(self) -> Garden:
        """The garden's files. A command that records or writes reads them holding the lock: read
        before, another command's writes would look like a person's edits."""
        self.require_garden()
        # Bodies are read from the files when asked for (a write, a proposal): most commands never do.
        garden = load_garden(self.settings.garden, keep_bodies=False, cache=open_parse_cache(self.settings))
        if garden.errors:
            self.on_note(f"{len(garden.failed_files())} file(s) with errors are left out (see `garden check`)")
        return garden

    @contextmanager
    def _log(self, create: bool = False) -> Iterator[EventStore]:
        if not self.keep_state:
            with EventStore(self.settings.db, create=create) as store:
                yield _CountedStore(store, self.state_loads)  # type: ignore[misc]
            return
        with self._one_at_a_time, EventStore(self.settings.db, create=create) as store:
            try:
                yield _CountedStore(store, self.state_loads)  # type: ignore[misc]
            except BaseException:
                self._kept = self._mark = None  # a call that failed may have left it half changed
                raise
            if self._kept is not None:
                self._mark = (self._kept.seq, store.hash_at(self._kept.seq))

    def _state(self, store: EventStore) -> State:
        """The log's current state: loaded (from the nearest snapshot), or with `keep_state` the
        one kept, caught up with what was appended since. A kept state is used only while the
        log still holds the event it was last folded to, with the same hash (the chain makes the
        whole prefix the same): a log replaced or rebuilt meanwhile is loaded afresh."""
        if not self.keep_state:
            return load_state(store)
        if self._kept is not None and self._mark is not None and store.hash_at(self._mark[0]) == self._mark[1]:
            return catch_up(store, self._kept)
        self._kept = load_state(store)
        self._mark = (self._kept.seq, store.hash_at(self._kept.seq))
        return self._kept

    @contextmanager
    def _locked(self, create: bool = False) -> Iterator[tuple[EventStore, Garden, State]]:
        """The lock, the log, the garden read holding the lock, and the state loaded once (the
        folder is checked before anything is locked or created)."""
        self.require_garden()
        with garden_lock(self.settings.db), self._log(create) as store:
            state = self._state(store)
            yield store, self._garden_as_logged(state) or self.read_garden(), state

    def _library_as_logged(self, state: State) -> KnownLibrary | None:
        """What health needs of every pattern, from the state, when every file is as the log last
        saw it and the log recorded those facts (observations from before they were: None)."""
        self.require_garden()
        if self._garden_as_logged(state) is None:
            return None
        patterns = {}
        for slug in state.patterns:
            known = state.patterns[slug]
            if known.title is None or known.curated is None:
                return None
            patterns[slug] = KnownPattern(known.title, known.domain, frozenset(known.curated))
        return KnownLibrary(patterns, set(patterns))

    def _garden_as_logged(self, state: State) -> Garden | None:
        """The garden without parsing it, when every file is as the log last saw or wrote it
        (the usual case for a curator's command: nothing to observe, a few blocks to write)."""
        known = {}
        for slug in state.patterns:
            pattern = state.patterns[slug]
            known[slug] = (pattern.path, pattern.content_hash)
        return garden_as_logged(self.settings.garden, known, open_parse_cache(self.settings))

    # --- the main job -------------------------------------------------------------------------

    def tend(self, *, limit: int | None = None, patterns: list[str] | None = None, today: str | None = None,
             dry_run: bool = False, progress: bool = False, task_runner: str = "default",
             dask_address: str | None = None, dask_workers: int = 2) -> dict[str, Any]:
        """One run of the Prefect flow (the nightly deployment's), here and now, on the configured
        Prefect server or a temporary one. The flow takes the lock; its expected failures come
        back as the `GardenError` it met (a held lock: `LockedError`, exit status 2).
        `task_runner="dask"`: proposal batches asked on a Dask cluster (`flows.cluster`)."""
        from flows.cluster import check_task_runner

        self.require_garden()
        check_task_runner(task_runner, dask_address, dask_workers)  # before Prefect starts
        make_proposer(self.settings)  # a missing key or model
        if patterns:  # said at once, before Prefect starts (the tend's own load hits the parse cache)
            load_garden(self.settings.garden, keep_bodies=False, cache=open_parse_cache(self.settings)).require(patterns)
        for key, value in PREFECT_QUIET.items():
            os.environ.setdefault(key, value)
        from flows.server import prefect_server

        # The garden is read while Prefect's server starts (`flows.prepare`); started
        # then, not before, so that it does not slow the imports the server's start waits for.
        preparation = Preparation(self.settings)
        try:
            with prefect_server(preparation.start):
                return self._tend_flow(limit, patterns, today, dry_run, progress, task_runner, dask_address,
                                       dask_workers)
        finally:
            preparation.close()

    def _tend_flow(self, limit, patterns, today, dry_run, progress, task_runner, dask_address,
                   dask_workers) -> dict[str, Any]:
        from flows.tend import tend_flow

        s = self.settings
        state = tend_flow(garden=str(s.garden), db=str(s.db), proposer=s.proposer, limit=limit,
                          patterns=patterns, today=today, dry_run=dry_run, progress=progress,
                          log_failures=False, task_runner=task_runner, dask_address=dask_address,
                          dask_workers=dask_workers, return_state=True)
        if state.is_failed():
            message = state.message or "the tend failed"
            try:
                state.result()
            except GardenError:
                raise
            except Exception:  # a bug, reported by the flow's own log
                raise GardenError(message) from None
            raise GardenError(message)
        return state.result()

    def propose(self, patterns: list[str] | None = None) -> Proposed:
        """Ask the proposer about the garden (or `patterns`) and record every proposal; nothing
        is decided or written."""
        proposals: list[dict] = []

        def collect(events) -> None:
            proposals.extend({"seq_id": e.id, "slug": e.slug, **e.payload.model_dump(mode="json")}
                             for e in events if e.type in _SHOWN_PROPOSALS)

        with self._locked(create=True) as (store, garden, state):
            chosen = make_proposer(self.settings, store)
            options = {"command": "propose", "patterns": patterns or "all"}
            with recorded_run(store, chosen.name, chosen.model, options=options) as run:
                observe(store, garden, state, run.run_id)
                tally = propose_garden(store, garden, state, self.settings, chosen,
                                       patterns or sorted(garden.patterns), run.run_id, collect)
                run.counts.update(tally.counts())
        return Proposed(run.run_id, chosen.name, chosen.model, tally, proposals)

    def observe(self) -> dict[str, int]:
        """Record what the files hold that the log does not know yet, and nothing else."""
        with self._locked(create=True) as (store, garden, state):
            result = observe(store, garden, state)
            kinds: dict[str, int] = {}
            if result.appended:
                for row in store.rows(after=result.first_seq - 1, until=result.last_seq):
                    kinds[row[2]] = kinds.get(row[2], 0) + 1
        return {"patterns": len(garden.patterns), "recorded": result.appended,
                "observed": kinds.get("GardenObserved", 0), "external_edits": kinds.get("ExternalEditObserved", 0)}

    def check(self) -> Garden:
        """Every file of the garden read and validated (its problems in `Garden.problems`)."""
        self.require_garden()
        return load_garden(self.settings.garden, cache=open_parse_cache(self.settings))

    # --- curators -----------------------------------------------------------------------------

    def review(self, pattern: str | None = None, run: str | None = None,
               min_confidence: float | None = None) -> Review:
        """The pending proposals by pattern, each pattern with the diff accepting them all would
        make (a page showing a few items asks `queue` instead)."""
        with self._log() as store:
            state = self._state(store)
            run = _narrowing(store, state, pattern, run)
            found = curate.pending_by_pattern(state, pattern, run, min_confidence)
            diffs = {slug: curate.review_diff(state, slug, ps) for slug, ps in found.items()}
        return Review(found, diffs, self._merge_candidates(state, pattern, run, min_confidence))

    def queue(self, *, pattern: str | None = None, run: str | None = None, min_confidence: float | None = None,
              max_confidence: float | None = None, kind: str | None = None, proposer: str | None = None,
              order: str = "pattern", limit: int | None = None, diffs: bool = True) -> Queue:
        """The pending proposals one by one (`curate.review_queue`), the first `limit` of them
        with the diff accepting that one alone would make (unless `diffs` is False: a diff costs
        about 0.4 ms), and their patterns' and targets' titles and summaries; `count`: all the
        filters keep."""
        with self._log() as store:
            state = self._state(store)
            run = _narrowing(store, state, pattern, run)
            queue = curate.review_queue(state, pattern, run, min_confidence, max_confidence, kind, proposer, order)
            shown = queue[:limit]
            made = {pid: curate.review_diff(state, slug, {pid: p}) for slug, pid, p in shown} if diffs else {}
            slugs = {slug for slug, _, _ in shown} | {p["target"] for _, _, p in shown if p.get("target")}
            about = self._about(state, slugs)
        return Queue(shown, len(queue), made, about, state.seq)

    def head(self) -> int:
        """The newest event of the log the state has folded (a page polls it to notice changes)."""
        with self._log() as store:
            return self._state(store).seq

    def about(self, slugs) -> dict[str, dict]:
        """Title, summary and domain of each of `slugs` the garden has (from its file, through
        the parse cache; the title as last observed when the file cannot be read)."""
        with self._log() as store:
            return self._about(self._state(store), set(slugs))

    def _about(self, state: State, slugs: set[str]) -> dict[str, dict]:
        slugs = {slug for slug in slugs if slug in state.patterns}
        if not slugs:
            return {}
        paths = [path for path in pattern_files(self.settings.garden) if path.stem in slugs]
        found = {slug: {"title": state.patterns[slug].title, "summary": "", "domain": state.patterns[slug].domain}
                 for slug in slugs}
        for _, read, _ in read_files(self.settings.garden, paths, open_parse_cache(self.settings), keep_bodies=False):
            if read is not None and read.slug in found:
                found[read.slug] = {"title": read.title, "summary": read.summary, "domain": read.domain}
        return found

    def _merge_candidates(self, state: State, pattern: str | None, run: str | None,
                          min_confidence: float | None) -> list[dict]:
        """Pending duplicate suspicions, narrowed as the review is, with both patterns' titles."""
        entries = [e for e in curate.pending_duplicates(state).values()
                   if (not pattern or pattern in e["slugs"]) and (not run or e["run_id"] == run)
                   and (min_confidence is None or e["confidence"] >= min_confidence)]
        if not entries:
            return []
        # Titles as last observed; a log from before titles were recorded reads them from the files.
        slugs = {slug for e in entries for slug in e["slugs"] if slug in state.patterns}
        titles = {slug: state.patterns[slug].title for slug in slugs}
        if None in titles.values() and self.settings.garden.is_dir():
            patterns = load_garden(self.settings.garden, keep_bodies=False, cache=open_parse_cache(self.settings)).patterns
            titles.update({slug: patterns[slug].title for slug in slugs if titles[slug] is None and slug in patterns})
        titles = {slug: title for slug, title in titles.items() if title is not None}
        return [curate.describe_duplicate(e, titles) for e in entries]

    def sample(self, n: int, seed: int | None = None, proposer: str | None = None) -> Sample:
        """A stratified sample of `n` of the machine's items (a new seed when none is given)."""
        seed = random.SystemRandom().randrange(10_000) if seed is None else seed
        with self._log() as store:
            state = self._state(store)
            items, total, strata = curate.sample_review(store, state, n, seed, proposer)
            patterns = {item.slug: state.patterns[item.slug] for item in items}
        return Sample(items, total, strata, seed, patterns)

    def accept(self, ids: list[str] | None = None, *, pattern: str | None = None, run: str | None = None,
               by: str | None = None, note: str | None = None, write: bool = True,
               on_finished: Callable[[curate.Finished], None] | None = None) -> curate.CuratorResult:
        """Accept proposals (by id, or all pending of a pattern or a run) and write the changed
        blocks (with `write` False, at the next tend)."""
        return self._decide(True, ids, pattern, run, by, note, write, on_finished)

    def reject(self, ids: list[str] | None = None, *, pattern: str | None = None, run: str | None = None,
               by: str | None = None, note: str | None = None,
               on_finished: Callable[[curate.Finished], None] | None = None) -> curate.CuratorResult:
        return self._decide(False, ids, pattern, run, by, note, True, on_finished)

    def _decide(self, accept: bool, ids, pattern, run, by, note, write, on_finished) -> curate.CuratorResult:
        """Take the lock, read the garden under it, finish what a killed command left unwritten
        (`on_finished` hears of it at once: the decision may still fail), and decide."""
        by = by or curate.default_curator()
        with self._locked() as (store, garden, state):
            finished = curate.finish_unfinished(store, garden, by, state)
            if finished is not None and on_finished is not None:
                on_finished(finished)
            result = curate.decide(store, garden, state, ids, pattern, run, accept, by, note, write=write)
        result.finished = finished
        return result

    def lift(self, slug: str, *, target: str | None = None, link_type: str | None = None,
             entity: str | None = None, by: str | None = None, note: str | None = None) -> Lifted:
        """Let a rejected link (target and link_type) or entity be proposed again."""
        if bool(entity) == bool(target and link_type):
            raise GardenError("give --target and --type for a link, or --entity for an entity")
        by = by or curate.default_curator()
        with self._locked() as (store, garden, state):
            finished = curate.finish_unfinished(store, garden, by, state)
            run_id = curate.lift_rejection(store, state, slug, target, link_type, entity, by, note)
        return Lifted(run_id, finished)

    def diff(self, run: str | None = None, *, offset: int = 0, limit: int | None = None) -> RunDiff:
        """What a run (default: the last) changed in every block, rebuilt from the log. With
        `offset` and `limit`, the diffs of those of its patterns only (a page showing a hundred
        need not emit the thousands a first tend changes: 1 s of 2.5 on 3,600 patterns)."""
        with self._log() as store:
            changes = curate.run_changes(store, run)
            shown = changes.slugs[offset:None if limit is None else offset + limit]
            return RunDiff(changes.run_id, changes.counts, curate.run_diff(replace(changes, slugs=shown)),
                           len(changes.slugs))

    def revert(self, run: str, *, by: str | None = None, note: str | None = None, force: bool = False,
               write: bool = True) -> Reverted:
        """Undo a run with compensating events, then write the files (see `curate.revert`)."""
        with self._locked() as (store, garden, state):
            plan, result = curate.revert(store, garden, run.upper(), by or curate.default_curator(), note,
                                         force, write=write, state=state)
        return Reverted(plan, result)

    # --- the garden's shape and the log ---------------------------------------------------------

    def health(self) -> dict[str, Any]:
        blocks: dict = {}
        tended: dict = {}
        reassessed: dict = {}
        labels: list = []
        duplicates: dict = {}
        garden: Garden | KnownLibrary
        if self.settings.db.exists():
            with self._log() as store:
                labels = curator_labels(store)
                state = self._state(store)
                garden = self._library_as_logged(state) or self.read_garden()
                duplicates = state.duplicates
                for slug in garden.patterns:
                    known = state.patterns.get(slug)
                    if known is not None:
                        blocks[slug], tended[slug] = known.block, known.tended
                        reassessed[slug] = known.reassessed
        else:  # no log yet: the files are all there is
            garden = self.read_garden()
            blocks = {s: p.block.model_dump(mode="json") if p.block else None for s, p in garden.patterns.items()}
        report = garden_health(garden, blocks, tended, reassessed, duplicates)
        report["measured_precision"] = precision.measured(labels, load_policy())
        return report

    def report(self, run: str | None = None) -> ReportPage:
        """One self-contained HTML page: a run's summary (default: the last tend), the diff of every
        block it changed, and the pending proposals."""
        with self._log() as store:
            chosen = curate.resolve_run(store, run) if run else curate.last_tend(store)
            changes = curate.run_changes(store, chosen)
            diffs = curate.run_diff(changes)
            state = self._state(store)
            pending = curate.pending_by_pattern(state)
            pending_diffs = {slug: curate.review_diff(state, slug, ps) for slug, ps in pending.items()}
            about = curate.describe_run(store, changes.run_id)
            measured = precision.measured(curator_labels(store), load_policy())
        which = about if run else f"the last tend: {about} (`garden report RUN` shows another run)"
        page = html_report(changes.run_id, changes.counts, diffs, pending, pending_diffs, which=which,
                           measured=measured)
        return ReportPage(changes.run_id, page, len(diffs), sum(len(p) for p in pending.values()))

    def calibrate(self, proposer: str | None = None, target: float = 0.9, write: bool = False,
                  set_policy: bool = False, by: str | None = None) -> Calibrated:
        """How right each proposer is, from the curators' decisions; with `write`, the fits
        recorded (and with `set_policy`, their thresholds put into garden.toml)."""
        if set_policy and not write:
            raise GardenError("--set-policy writes the thresholds of a new fit: give --write too")
        if not self.settings.db.exists():
            raise GardenError(f"no event log at {display_path(self.settings.db)}: run `garden tend` first")
        with self._log() as store:
            labels = curator_labels(store, proposer)
            written = (calibration.write_fits(store, labels, target, by or curate.default_curator(), set_policy)
                       if write and labels else None)
        recommended = {}
        for key, found in precision.groups(labels).items():
            p, m, v, k = key
            recommended[precision.key_name(key)] = {"proposer": p, "model": m, "prompt_version": v, "kind": k,
                                                    **precision.recommend(found, target)}
        result = {"labels": len(labels), "target_precision": target, "bands": precision.bands(labels),
                  "recommended": recommended, "policy_in_force": precision.policy_outcome(labels, load_policy())}
        if written is not None:
            result["written"] = written.to_dict()
        return Calibrated(result, written)

    def runs(self) -> list:
        with self._log() as store:
            return list_runs(store)

    def history(self, slug: str, target: str | None = None, entity: str | None = None) -> list:
        if target and entity:
            raise GardenError("give --target or --entity, not both")
        with self._log() as store:
            return read_history(store, slug, target, entity)

    def pattern(self, slug: str, target: str | None = None, entity: str | None = None) -> Neighbourhood:
        """A pattern as its page shows it: its block, its neighbours both ways (the machine's links
        and the curators', from the state: see `garden.neighbours`), and its history (narrowed
        to one link target or entity when asked)."""
        with self._log() as store:
            state = self._state(store)
            curate.require_pattern(state, slug)
            found = neighbourhood(state.patterns, slug)
        found.history = self.history(slug, target, entity)
        return found

    @full_collections_paused()
    def verify(self, heads: list | None = None):
        """The log's chain, schemas, integrity, heads and MACs, and the files against it."""
        garden = self.read_garden() if self.settings.garden.is_dir() else None
        with self._log() as store:
            return verify_log(store, garden, heads)

    @full_collections_paused()
    def replay(self, out: Path | None = None, until: str | None = None, check: bool = False) -> Replayed:
        """The garden rebuilt from the log as of `until` (default: now): written into `out`, or,
        with `check`, compared with the files in place."""
        if check == (out is not None):
            raise GardenError("give --out DIR to write a replay, or --check to compare (one of them)")
        garden = self.read_garden()
        with self._log() as store:
            seq = resolve_until(store, until)
            state = load_state(store, seq)
            now = self._state(store) if until and not check else state
        if check:
            return Replayed(state.seq, differences=compare(state, garden))
        # The files' blocks that came with a banner of ours: a replay to before them takes it out.
        banners = {slug for slug in now.patterns if now.patterns[slug].banner_added}
        return Replayed(state.seq, out, replay_into(state, garden, out, banners))

