"""Questions maintainers ask of the log: which runs, why is this link here, is the log sound."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from garden.catalog import Garden
from garden.errors import GardenError, UnknownPatternError, display_path
from garden.event import PAYLOAD, Event
from garden.precision import Label
from garden.upcast import upcast

from events.heads import GivenHead, check_given, check_published, read_heads
from events.projection import load_state
from events.replay import Difference, compare
from events.store import EventStore, MacCheck, row_to_event

_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


@dataclass
class RunSummary:
    run_id: str
    started: str | None = None
    ended: str | None = None
    status: str = "running"
    proposer: str | None = None
    model: str | None = None
    counts: dict = field(default_factory=dict)
    error: str | None = None
    reverted_by: str | None = None
    command: str = "tend"  # or the curator's command that made the run: accept, revert, ...
    by: str | None = None  # the curator a command ran for
    reverts: str | None = None  # a revert's run: the run it undid

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def list_runs(store: EventStore) -> list[RunSummary]:
    """The runs, newest first. A run with no end event is `running` (or was killed)."""
    runs: dict[str, RunSummary] = {}
    types = ("RunStarted", "RunCompleted", "RunFailed", "RunReverted")
    for row in store.rows(types=types):
        event = row_to_event(row)
        p = event.payload
        if p.type == "RunReverted":
            reverted = runs.get(p.reverted_run)
            if reverted:
                # reverting a revert restores the run the first revert undid
                undone = next((r for r in runs.values() if r.reverted_by == reverted.run_id), None)
                if undone:
                    undone.status, undone.reverted_by = "restored", None
                reverted.status, reverted.reverted_by = "reverted", event.run_id
            continue
        run = runs.setdefault(event.run_id or "?", RunSummary(event.run_id or "?"))
        if p.type == "RunStarted":
            run.started, run.proposer, run.model = event.recorded_at, p.proposer, p.model
            options = p.options or {}
            run.command, run.by = options.get("command") or "tend", options.get("by")
            run.reverts = options.get("run") if run.command == "revert" else None
        else:
            run.ended, run.counts = event.recorded_at, p.counts
            if run.status == "running":
                run.status = "completed" if p.type == "RunCompleted" else "failed"
            run.error = getattr(p, "error", None)
    return sorted(runs.values(), key=lambda r: r.started or "", reverse=True)


def history(store: EventStore, slug: str, target: str | None = None,
            entity: str | None = None) -> list[Event]:
    """Every event about a pattern, optionally narrowed to one link target or one entity.

    Decisions (accepted / rejected) are kept when the proposal they decide is in the list.
    """
    events = list(store.events(slug=slug))
    if not events:
        raise UnknownPatternError(slug)
    events = _with_duplicates_naming(store, slug, events)
    if target is None and entity is None:
        return events
    kept: list[Event] = []
    proposals: set[str] = set()
    for e in events:
        p = e.payload
        if target is not None:
            hit = getattr(p, "target", None) == target or _block_mentions(p, "inferred_links", "target", target)
        else:
            hit = getattr(p, "entity_id", None) == entity or _block_mentions(p, "entities", "id", entity)
        if hit and p.type in ("LinkProposed", "EntityProposed"):
            proposals.add(e.id)
        if hit or getattr(p, "proposal_id", None) in proposals:
            kept.append(e)
    return kept


def _with_duplicates_naming(store: EventStore, slug: str, events: list[Event]) -> list[Event]:
    """The pattern's events, with the duplicate suspicions another pattern's proposal made about
    it (DuplicateSuspected names it as `other`) and the decisions on them, in log order."""
    named = {e.id: e for e in store.events(types=["DuplicateSuspected"])
             if e.payload.other == slug and e.slug != slug}
    if not named:
        return events
    decisions = [e for e in store.events(types=["ProposalAccepted", "ProposalRejected"])
                 if e.payload.proposal_id in named and e.slug != slug]
    return sorted(events + list(named.values()) + decisions, key=lambda e: e.seq)


def _block_mentions(payload, key: str, field_name: str, value: str) -> bool:
    blocks = (getattr(payload, "block", None), getattr(payload, "merged", None))
    return any(block and any(i.get(field_name) == value for i in block.get(key) or []) for block in blocks)


def resolve_until(store: EventStore, until: str | None) -> int | None:
    """`--until` as a sequence number: given as one, as a run id, or as an ISO timestamp."""
    if until is None:
        return None
    text = until.strip()
    if text.isdigit():
        return int(text)
    if _ULID.fullmatch(text.upper()):
        end = store.run_end_seq(text.upper())
        if end is None:
            raise GardenError(f"no run {text} in the log; `garden runs` lists them")
        return end
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GardenError(
            f"--until {until!r}: give a sequence number, a run id, or a time like 2026-11-22T03:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return store.seq_at(moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"))


@dataclass
class VerifyReport:
    events: int
    chain: str | None = None
    schema: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    head_file: str = ""
    heads_checked: int = 0  # published heads compared with the log
    heads_given: int = 0  # heads given with --head
    heads: list[str] = field(default_factory=list)  # what the heads say against the log
    warnings: list[str] = field(default_factory=list)
    macs: MacCheck | None = None  # None: no key, not checked

    @property
    def ok(self) -> bool:
        return not (self.chain or self.schema or self.integrity or self.differences or self.heads
                    or (self.macs and self.macs.problem))

    def to_dict(self) -> dict:
        macs = None if self.macs is None else {"checked": self.macs.checked, "problem": self.macs.problem,
                                               "without_mac_before": self.macs.unmaced_before}
        return {"ok": self.ok, "events": self.events, "chain": self.chain, "schema": self.schema,
                "integrity": self.integrity,
                "differences": [d.to_dict() for d in self.differences],
                "head_file": self.head_file, "heads_checked": self.heads_checked,
                "heads_given": self.heads_given, "heads": self.heads, "macs": macs,
                "warnings": self.warnings}


def verify(store: EventStore, garden: Garden | None, given: list[GivenHead] | None = None) -> VerifyReport:
    """The hash chain, every payload against its schema, SQLite's integrity, projection vs files;
    the published heads and those `given` against the log; the MACs when the store has a key."""
    report = VerifyReport(events=store.head_seq())
    report.integrity = store.integrity_errors()
    broken = store.verify_chain()
    if broken:
        report.chain = f"event #{broken.seq} ({broken.type}, id {broken.id}): {broken.reason}"
    check_heads(store, report, given or [])
    report.macs = store.verify_macs()
    for row in store.rows():
        try:
            PAYLOAD.validate_json(row[8])
            if json.loads(row[8]).get("type") != row[2]:
                raise ValueError("payload type differs from the event's type")
        except (ValidationError, ValueError) as e:
            first = str(e).splitlines()[0]
            report.schema.append(f"event #{row[0]} ({row[2]}): payload does not match its schema: {first}")
            if len(report.schema) >= 20:
                break
    if garden is not None and not report.chain:
        report.differences = compare(load_state(store), garden)
    return report


def check_heads(store: EventStore, report: VerifyReport, given: list[GivenHead]) -> None:
    """Hold the log to the heads given by hand and to those in its head file."""
    end, path = report.events, store.heads
    report.head_file = display_path(path)
    for head in given:
        report.heads += check_given(head, end, store.hash_at)
    report.heads_given = len(given)
    try:
        published, malformed = read_heads(path)
    except FileNotFoundError:
        if not end:
            return
        if given:
            report.heads.append(f"the head file {report.head_file} is missing but the log has {end} "
                                "events: it was deleted or moved (every run that records publishes "
                                "a head there)")
        else:
            report.warnings.append(f"no head file ({report.head_file}): nothing shows whether events "
                                   "were removed from the end or the log rewritten; the next run "
                                   "that records publishes one")
        return
    except OSError as e:
        report.heads.append(f"{report.head_file}: cannot read the head file: {e.strerror}")
        return
    report.heads += malformed
    report.heads += check_published(published, end, store.hash_at)
    report.heads_checked = len(published)


def curator_labels(store: EventStore, proposer: str | None = None) -> list[Label]:
    """Every curator decision on a proposal as a label: the proposal's proposer, model, prompt
    version, kind and confidence (an entity's relevance) as the proposer said it (the raw value of
    a calibrated proposal, so a refit fits raw values), and whether the curator kept it. A later
    decision on the same proposal (a lifted rejection, then an accept) replaces the earlier one."""
    # Stored rows, their payloads read as JSON, and only those of curators' decisions and of the
    # proposals they decided: a big log holds tens of thousands of the policy's.
    kept: dict[str, bool] = {}  # proposal id -> the newest curator decision, in first-decided order
    for _, _, kind, _, _, actor, _, version, payload, _ in store.rows(types=["ProposalAccepted", "ProposalRejected"]):
        if actor.startswith("curator:"):
            p = upcast(kind, version, orjson.loads(payload))
            if p["proposal_id"]:
                kept[p["proposal_id"]] = kind == "ProposalAccepted"
    proposals: dict[str, Label] = {}
    for _, event_id, kind, _, _, _, _, version, payload, _ in store.rows(types=["LinkProposed", "EntityProposed"]):
        if event_id in kept:
            p = upcast(kind, version, orjson.loads(payload))
            link = kind == "LinkProposed"
            raw = p["raw_confidence"]
            said = raw if raw is not None else p["confidence"] if link else p["relevance"]
            proposals[event_id] = Label(p["proposer"], p["model"], "link" if link else "entity", said,
                                        kept[event_id], prompt_version=p["prompt_version"], proposal_id=event_id)
    decided = {pid: proposals[pid] for pid in kept if pid in proposals}
    return [label for label in decided.values() if proposer is None or label.proposer == proposer]
