"""The events: everything the pipeline and its people do to the machine-written graph.

An `Event` is an envelope (id, type, pattern slug, run, actor, time, schema version) around one
payload; the payloads form one discriminated union on `type`. Payloads are complete enough that
the projection never reads a file: an observation carries the whole normalised block and its
original text, a write carries the file's new hash.

Event ids are ULIDs, so they sort by creation time and can be made before the event is stored
(appending the same event twice stores it once).

Validation happens where data comes in: a file's block (`garden.model`), a model's answer
(`garden.validate`), a row read from the log (`Event(...)` in `events.store.row_to_event`, after
the upcasters). `event(...)` puts the envelope around a payload our own code made without
validating it again (tests/test_event_speed.py holds it to the row `Event(...)` stores). A
payload is still built by its validating constructor: pydantic-core checks a payload in about
2 us, less than `model_construct` or any Python-level constructor takes to skip the check.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 2  # see garden.upcast: how events of older versions are read

# Crockford's base32, ten bits (two characters) at a time
_PAIRS = tuple(a + b for a in "0123456789ABCDEFGHJKMNPQRSTVWXYZ" for b in "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def _seed_ids() -> None:
    global _base, _count
    _base = int.from_bytes(os.urandom(10), "big") >> 1  # 79 bits: adding the count stays in 80
    _count = itertools.count()


_seed_ids()
os.register_at_fork(after_in_child=_seed_ids)  # a forked child must not make its parent's ids
_stamp = (-1, "")  # the last millisecond an id was made in, encoded


def new_id() -> str:
    """A new ULID: 48 bits of milliseconds since the epoch, then 80 bits: a random number drawn
    once per process plus a count of the ids it has made, so ids sort in the order they were
    made, as python-ulid's monotonic ones do within a millisecond. No lock: `next()` on the
    count is atomic, so no thread, and no signal handler that makes an event (a Ctrl-C's
    RunFailed), can wait on another; python-ulid's lock could be left held by a KeyboardInterrupt.
    Encoded here: `str(ULID())` costs four times as much."""
    global _stamp
    r = _base + next(_count)
    ms = time.time_ns() // 1_000_000
    known = _stamp
    if known[0] != ms:
        known = _stamp = ms, (f"{_PAIRS[ms >> 40 & 1023]}{_PAIRS[ms >> 30 & 1023]}{_PAIRS[ms >> 20 & 1023]}"
                              f"{_PAIRS[ms >> 10 & 1023]}{_PAIRS[ms & 1023]}")
    p = _PAIRS
    return (f"{known[1]}{p[r >> 70]}{p[r >> 60 & 1023]}{p[r >> 50 & 1023]}{p[r >> 40 & 1023]}"
            f"{p[r >> 30 & 1023]}{p[r >> 20 & 1023]}{p[r >> 10 & 1023]}{p[r & 1023]}")


_second = (-1, "")  # the last second now_iso wrote, and its text


def now_iso() -> str:
    """The time now in UTC, as `datetime.now(timezone.utc).isoformat(timespec="microseconds")`
    writes it; the date and time to the second are written once a second."""
    global _second
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    known = _second
    if second != known[0]:
        known = _second = second, dt.datetime.fromtimestamp(second, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{known[1]}.{micros:06d}+00:00"


_set = object.__setattr__


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- observing files -----------------------------------------------------------------------


class GardenObserved(Payload):
    """The first sight of a pattern: its block as it stood (None if it had none)."""

    type: Literal["GardenObserved"] = "GardenObserved"
    path: str
    format: str
    content_hash: str
    text_hash: str
    block: dict[str, Any] | None
    block_text: str | None
    # What the file says of the pattern besides its block (None: an event from before these were
    # recorded): its title and domain, and the slugs its curated relationships link to.
    title: str | None = None
    domain: str | None = None
    curated: list[str] | None = None


class ExternalEditObserved(Payload):
    """A file changed outside graph-garden; its block becomes the projection (the person wins).

    When the log had changes to the block not yet in the file (an item accepted during the tend
    whose write the edit refused, say), those the person left alone are put on top of their
    block (`garden.merge`): `kept` names them, `merged` is the block the projection takes (and
    the next write puts in the file), `yielded` names the log's changes to items the person
    changed or removed too. Without `kept`, the person's `block` is the projection as it is.
    """

    type: Literal["ExternalEditObserved"] = "ExternalEditObserved"
    path: str
    content_hash: str
    previous_hash: str | None
    text_hash: str
    block: dict[str, Any] | None
    block_text: str | None
    block_changed: bool  # the person changed the block (not only the rest of the file)
    merged: dict[str, Any] | None = None
    kept: list[str] = Field(default_factory=list)
    yielded: list[str] = Field(default_factory=list)
    title: str | None = None  # as for GardenObserved
    domain: str | None = None
    curated: list[str] | None = None


# --- proposals and decisions ---------------------------------------------------------------


class LinkProposed(Payload):
    """A link proposed. `prompt_version`: the LLM prompt that asked for it (None for the offline
    proposer, and in events from before it was recorded). When the garden has a calibration fit
    for this proposer/model/prompt version (CalibrationFitted), `confidence` is the calibrated
    value the policy decides by and `raw_confidence` what the proposer said; else None."""

    type: Literal["LinkProposed"] = "LinkProposed"
    target: str
    link_type: str
    confidence: float
    reason: str
    proposer: str
    model: str | None = None
    prompt_version: str | None = None
    raw_confidence: float | None = None


class EntityProposed(Payload):
    """An entity proposed; `raw_confidence` is the relevance the proposer said when `relevance` is
    a calibrated one (see LinkProposed)."""

    type: Literal["EntityProposed"] = "EntityProposed"
    entity_id: str
    entity_type: str
    label: str
    relevance: float
    proposer: str
    model: str | None = None
    prompt_version: str | None = None
    raw_confidence: float | None = None


class ProposalAccepted(Payload):
    """A proposal accepted: by the policy or by a curator.

    A curator may also decide a proposal the policy had already decided (a sampled review):
    `policy` says what the policy had done ("accepted": this confirms it, the block stays as it
    is; "rejected": this overrules it, the item goes into the block), and `proposal` carries the
    proposal as the projection held it when pending, as it holds it no longer."""

    type: Literal["ProposalAccepted"] = "ProposalAccepted"
    proposal_id: str
    rule: str  # e.g. "auto_accept >= 0.85" or "curator"
    note: str | None = None
    policy: Literal["accepted", "rejected"] | None = None
    proposal: dict[str, Any] | None = None


class ProposalRejected(Payload):
    """A proposal turned down: by the policy, by a curator, or invalid on arrival (no id then)."""

    type: Literal["ProposalRejected"] = "ProposalRejected"
    proposal_id: str | None
    reason: str
    item: Any = None
    note: str | None = None
    # A curator's decision on a proposal the policy had decided, as for ProposalAccepted. Over
    # the policy's accept, the item is pruned by an event of its own (LinkPruned, rule "curator").
    policy: Literal["accepted", "rejected"] | None = None
    proposal: dict[str, Any] | None = None


class LinkRescored(Payload):
    """An existing link judged afresh by the proposer that ran, on the scale of a new proposal.

    `evidence` says what the new value rests on: for the offline proposer the pair's `cosine`,
    the target's `rank` among the pattern's candidates (None: not among them), the `shared_terms`,
    and `missing: true` for a target that is not in the garden (it scores 0). A link whose type
    the file did not give (a legacy `strength:` link, read as complementary) says so with
    `type_default: true`: the type is the reader's default, not a judgement.
    """

    type: Literal["LinkRescored"] = "LinkRescored"
    target: str
    link_type: str
    old_confidence: float | None
    new_confidence: float
    reason: str | None = None
    proposer: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


class EntityRescored(Payload):
    """An existing entity judged afresh from the pattern's own text (see LinkRescored)."""

    type: Literal["EntityRescored"] = "EntityRescored"
    entity_id: str
    old_relevance: float | None
    new_relevance: float
    reason: str | None = None
    proposer: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


class PruneProposed(Payload):
    """A prune the policy may not make alone: the item is a curator's (accepted by one, or
    written by hand) and its re-assessment fell below the threshold. It waits in `garden review`:
    accepting it prunes the item, rejecting it keeps it (and it is not proposed again while the
    pattern's text is unchanged)."""

    type: Literal["PruneProposed"] = "PruneProposed"
    item: Literal["link", "entity"]
    target: str | None = None
    link_type: str | None = None
    entity_id: str | None = None
    rule: str
    values: dict[str, Any] = Field(default_factory=dict)
    score: float | None = None  # the item's re-assessed confidence (relevance for an entity)
    owner: str  # "curator" (accepted by one) or "hand" (a person wrote it into the file)


class DuplicateSuspected(Payload):
    """A proposer's claim that the pattern (the event's slug) and `other` are the same idea: a
    merge candidate for a curator, never written into a block (the format has no place for it).

    A pair is one suspicion whichever side proposes it (`garden.duplicates`). `evidence`: for
    the offline proposer the pair's body `cosine` and `shared_terms`; for a model, its words.
    A curator decides it with `garden accept` (a confirmed duplicate: a merge candidate) or
    `garden reject` (not the same idea), by the same ProposalAccepted / ProposalRejected as a
    proposal; the files never change."""

    type: Literal["DuplicateSuspected"] = "DuplicateSuspected"
    other: str
    confidence: float
    reason: str
    proposer: str
    model: str | None = None
    prompt_version: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


class ProposerCalled(Payload):
    """One proposer call for one pattern: its cost, and whether it gave a usable answer.

    A failed call (malformed JSON, a refusal, an empty answer, an HTTP error) leaves the
    pattern to be asked again next run.
    """

    type: Literal["ProposerCalled"] = "ProposerCalled"
    proposer: str
    model: str | None = None
    text_hash: str
    outcome: Literal["ok", "failed"]
    error: str | None = None
    raw: str | None = None
    cache_hit: bool = False
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    proposed: int = 0
    rejected: int = 0


class ProposalDeferred(Payload):
    """A pattern not asked this run (the budget was spent); it comes first next run."""

    type: Literal["ProposalDeferred"] = "ProposalDeferred"
    proposer: str
    reason: str


# --- pruning and writing -------------------------------------------------------------------


class LinkPruned(Payload):
    type: Literal["LinkPruned"] = "LinkPruned"
    target: str
    link_type: str
    rule: str
    values: dict[str, Any] = Field(default_factory=dict)
    # The pruned link's confidence. One prune removes one item: a block holding the same link
    # twice loses the first copy with this confidence. `scored` is False for a prune recorded
    # before the score was (schema 1 without it): it removes the first copy with the key.
    confidence: float | None = None
    scored: bool = True


class EntityPruned(Payload):
    type: Literal["EntityPruned"] = "EntityPruned"
    entity_id: str
    rule: str
    values: dict[str, Any] = Field(default_factory=dict)
    relevance: float | None = None  # of the pruned copy, as for LinkPruned
    scored: bool = True


class CommunityPruned(Payload):
    type: Literal["CommunityPruned"] = "CommunityPruned"
    community_id: str
    rule: str
    values: dict[str, Any] = Field(default_factory=dict)
    confidence: float | None = None  # of the pruned copy, as for LinkPruned
    scored: bool = True


class _BlockWrite(Payload):
    path: str
    content_hash: str  # the file's hash with the new block
    previous_hash: str | None
    last_pruned: dt.date | None  # the new block's stamp; None when it has none or was removed
    banner_added: bool = False  # the write put a GROUP 6 banner in with a new block


class BlockWriteStarted(_BlockWrite):
    """About to replace a file's block: if the process dies before BlockWritten, the next
    observation tells a finished write (the file has `content_hash`) from one that never
    happened (it still has `previous_hash`) and from a person's edit (neither)."""

    type: Literal["BlockWriteStarted"] = "BlockWriteStarted"


class BlockWritten(_BlockWrite):
    type: Literal["BlockWritten"] = "BlockWritten"


# --- calibration ---------------------------------------------------------------------------


class FitLabel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    proposal_id: str
    confidence: float  # as the proposer said it (the raw value of a calibrated proposal)
    kept: bool


class CalibrationFitted(Payload):
    """A curator's fit of one proposer/model/prompt version/kind's confidences to the share kept
    (`garden calibrate --write`): the labels it used, the fit's breakpoints (raw confidence,
    calibrated value; linear between them), and the thresholds recommended for
    `target_precision`, raw and calibrated. From then on that proposer's new proposals are
    recorded with the calibrated value (and the raw one beside it). The event has no slug: it is
    about the garden."""

    type: Literal["CalibrationFitted"] = "CalibrationFitted"
    proposer: str
    model: str | None = None
    prompt_version: str | None = None
    kind: Literal["link", "entity"]
    labels: list[FitLabel]
    breakpoints: list[tuple[float, float]]
    recommended: dict[str, Any] = Field(default_factory=dict)
    target_precision: float


# --- runs ----------------------------------------------------------------------------------


class RunStarted(Payload):
    type: Literal["RunStarted"] = "RunStarted"
    proposer: str
    model: str | None = None
    policy: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class RunCompleted(Payload):
    type: Literal["RunCompleted"] = "RunCompleted"
    counts: dict[str, Any] = Field(default_factory=dict)


class RunFailed(Payload):
    type: Literal["RunFailed"] = "RunFailed"
    error: str
    counts: dict[str, Any] = Field(default_factory=dict)


class RejectionLifted(Payload):
    """A curator lets a rejected link (or entity) be proposed again."""

    type: Literal["RejectionLifted"] = "RejectionLifted"
    target: str | None = None
    link_type: str | None = None
    entity_id: str | None = None
    note: str | None = None


class BlockRestored(Payload):
    """A block put back as it was (a revert): the items a run changed, restored."""

    type: Literal["BlockRestored"] = "BlockRestored"
    block: dict[str, Any] | None
    reverted_run: str
    restored: list[str] = Field(default_factory=list)  # the items put back, e.g. "link x/enables"
    # The block's exact text in the file before the run, when `block` is that block again.
    block_text: str | None = None


class ProposalReopened(Payload):
    """A decision undone (a revert of the run that made it): the proposal is pending again, as
    it was, and a curator's rejection of it no longer holds the link or entity back."""

    type: Literal["ProposalReopened"] = "ProposalReopened"
    proposal_id: str
    proposal: dict[str, Any]  # the pending proposal as the projection held it
    declined: str | None = None  # the pattern's declined mark for it before the decision, if any
    reverted_run: str


class RunReverted(Payload):
    type: Literal["RunReverted"] = "RunReverted"
    reverted_run: str
    note: str | None = None


AnyPayload = Annotated[
    Union[
        GardenObserved,
        ExternalEditObserved,
        LinkProposed,
        EntityProposed,
        ProposalAccepted,
        ProposalRejected,
        LinkRescored,
        EntityRescored,
        PruneProposed,
        ProposerCalled,
        ProposalDeferred,
        LinkPruned,
        EntityPruned,
        CommunityPruned,
        BlockWriteStarted,
        BlockWritten,
        RunStarted,
        RunCompleted,
        RunFailed,
        RunReverted,
        RejectionLifted,
        BlockRestored,
        ProposalReopened,
        CalibrationFitted,
        DuplicateSuspected,
    ],
    Field(discriminator="type"),
]
PAYLOAD = TypeAdapter(AnyPayload)
EVENT_TYPES: tuple[str, ...] = tuple(
    member.model_fields["type"].default for member in get_args(get_args(AnyPayload)[0])
)


class Event(BaseModel):
    """One entry of the log. `seq` and `hash` are given by the store when it is appended."""

    model_config = ConfigDict(frozen=True)

    payload: AnyPayload
    slug: str | None = None
    run_id: str | None = None
    actor: str = "system"
    id: str = Field(default_factory=new_id)
    recorded_at: str = Field(default_factory=now_iso)
    schema_version: int = SCHEMA_VERSION
    seq: int | None = None
    hash: str | None = None

    @property
    def type(self) -> str:
        return self.payload.type


_PAYLOADS = frozenset(get_args(get_args(AnyPayload)[0]))
_ENVELOPE_SET = frozenset(("payload", "slug", "run_id", "actor"))


def event(payload: Payload, *, slug: str | None = None, run_id: str | None = None,
          actor: str = "system") -> Event:
    """A new event around a payload: a new id, the time now. The envelope is built as
    `Event(payload=payload, slug=slug, run_id=run_id, actor=actor)` would build it, without
    validating what it holds (a payload model, our own strings); anything but a payload model
    goes through `Event(...)`, which validates it."""
    if type(payload) not in _PAYLOADS:
        return Event(payload=payload, slug=slug, run_id=run_id, actor=actor)
    made = Event.__new__(Event)
    _set(made, "__dict__", {"payload": payload, "slug": slug, "run_id": run_id, "actor": actor,
                            "id": new_id(), "recorded_at": now_iso(), "schema_version": SCHEMA_VERSION,
                            "seq": None, "hash": None})
    _set(made, "__pydantic_fields_set__", set(_ENVELOPE_SET))
    _set(made, "__pydantic_extra__", None)
    _set(made, "__pydantic_private__", None)
    return made
