"""What the log says about each pattern, and what each event does to it.

`State` is the whole garden as the log tells it; `PatternState` one pattern's part. Both change
only through `apply` (a stored event) or `apply_event` (an `Event` not read back from a store),
one handler per event type below. The projection (`events.projection.load_state`) folds the log
with them, a tend's `Recorder` folds what it records with them, and a review's preview of
"what accepting would leave" applies the very events accepting would record to a copy
(`PatternState.preview`), so the three cannot disagree.

Blocks are kept as JSON (`GardenBlock.model_dump(mode="json")`, see `Block`) so that folding a
million events is fast and a pattern's snapshot is one JSON document; `as_block` gives the
model. Events recorded at an older schema version are read through `garden.upcast` first, so a
handler reads each field by name.

History is not kept in the state: it is read from the log by slug when someone asks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple, TypedDict

import orjson

from garden.event import SCHEMA_VERSION, Event
from garden.model import GardenBlock, as_block
from garden.upcast import upcast

Block = dict[str, Any]  # a graph_garden block as JSON: last_pruned, entities, communities, inferred_links
LISTS = ("entities", "communities", "inferred_links")


def empty_block() -> Block:
    return {"last_pruned": None, "entities": [], "communities": [], "inferred_links": []}


# --- an item's identity --------------------------------------------------------------------
# A link is its target and type, an entity its id: the keys `owned`, `reassessed`, `refreshed`
# and `declined` use, and what makes two proposals "of the same item".


def link_key(target: str, link_type: str | None) -> str:
    return f"{target}|{link_type}"


def entity_key(entity_id: str) -> str:
    return f"entity|{entity_id}"


def entity_of(key: str) -> str | None:
    """The entity id an item key names (None: it names a link)."""
    return key[len("entity|"):] if key.startswith("entity|") else None


def link_target_of(key: str) -> str | None:
    """The target a link's key names (None: it names an entity)."""
    return None if key.startswith("entity|") else key.split("|")[0]


def item_keys(block: Block | None) -> list[str]:
    """The keys of a block's links and entities."""
    if not block:
        return []
    return ([link_key(link["target"], link.get("type")) for link in block.get("inferred_links") or []]
            + [entity_key(entity["id"]) for entity in block.get("entities") or []])


class Proposal(TypedDict, total=False):
    """A pending proposal: its event's payload (without `type`) and where it came from.

    `kind` is "link", "entity" or "prune" (a PruneProposed: `item` says whether a link or an
    entity would go). ProposalReopened carries one, so this shape is part of the log's schema:
    change it with an upcaster (`garden.upcast`)."""

    kind: str
    seq: int
    run_id: str | None
    actor: str
    at: str
    proposer: str
    model: str | None
    target: str  # a link's (or a prune's of a link)
    link_type: str
    confidence: float
    reason: str
    entity_id: str  # an entity's (or a prune's of one)
    entity_type: str
    label: str
    relevance: float
    item: str  # a prune's: "link" or "entity"
    rule: str
    score: float | None
    owner: str


def proposal_key(proposal: Proposal | dict) -> str:
    """What a proposal is about: a link's or entity's key, and "prune|" before either for a
    proposed prune."""
    if proposal["kind"] == "prune":
        return "prune|" + proposal_key({**proposal, "kind": proposal["item"]})
    if proposal["kind"] == "link":
        return link_key(proposal["target"], proposal["link_type"])
    return entity_key(proposal["entity_id"])


# --- one pattern ---------------------------------------------------------------------------


@dataclass(slots=True)
class Tended:
    """When the pattern was last proposed for, and whether it must be asked again (`retry`:
    the last call failed or was deferred; a deferral before any call has no `at`)."""

    at: str | None = None
    run_id: str | None = None
    text_hash: str | None = None
    retry: bool = False


@dataclass(slots=True)
class WriteIntent:
    """A block write started and not yet confirmed (BlockWriteStarted)."""

    content_hash: str
    previous_hash: str | None
    last_pruned: str | None
    path: str
    banner_added: bool = False


@dataclass(slots=True)
class Restored:
    """A block a revert put back, and the exact text it had before the run it undid."""

    block: Block | None
    text: str


@dataclass(slots=True)
class PatternState:
    """One pattern as the log tells it.

    - `block`: the block to write (None when the file has none); items keep their order, new
      ones are appended.
    - `observed_block` / `observed_text`: the block as last seen in the file and its exact
      text, so a block the log has not changed since is written back as it was.
    - `file_block`: the block as the file holds it by the log's account (last observed or
      written): the base of the merge when a person edits a file the log has changed since.
    - `path`, `content_hash`, `text_hash`: the file as graph-garden last saw or wrote it, and
      as last observed the pattern's `title`, `domain` and the slugs its curated relationships
      link to (`curated`; None: observed before these were recorded).
    - `pending`: proposals waiting for a decision, by proposal (event) id.
    - `refreshed`: per link key, when it was last observed, proposed or re-assessed.
    - `declined`: items a curator rejected, with the pattern's text hash then: not proposed
      again while the text is unchanged, or until lifted.
    - `superseded`: proposal ids replaced by a later proposal of the same item.
    - `banner_added`: the block came with a GROUP 6 banner graph-garden put in (taking the
      block out takes the banner too).
    - `owned`: items a curator accepted or confirmed ("curator") or a person wrote into the
      file ("hand"): the policy never prunes them alone.
    - `reassessed`: items a proposer has judged afresh (rescored, or accepted into the block);
      the others are inherited as found.

    `block`, `observed_block` and `file_block` may be one object: `editable_block` copies it
    before the first change.
    """

    path: str
    content_hash: str
    text_hash: str
    block: Block | None
    observed_block: Block | None
    file_block: Block | None
    observed_text: str | None
    pending: dict[str, Proposal] = field(default_factory=dict)
    tended: Tended | None = None
    refreshed: dict[str, str] = field(default_factory=dict)
    write_intent: WriteIntent | None = None
    declined: dict[str, str] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)
    restored: Restored | None = None
    banner_added: bool = False
    owned: dict[str, str] = field(default_factory=dict)
    reassessed: dict[str, str] = field(default_factory=dict)
    title: str | None = None
    domain: str | None = None
    curated: list[str] | None = None

    def editable_block(self) -> Block:
        """The block, copied before its first change so the observed and file blocks stay as
        they were (items are only ever replaced or updated key by key: copying the lists is
        enough)."""
        block = self.block
        if block is None:
            block = empty_block()
        elif block is self.observed_block or block is self.file_block:
            block = {**block, **{k: [dict(i) for i in block[k]] for k in LISTS}}
        self.block = block
        return block

    def copy(self) -> PatternState:
        """A copy that events can be applied to without changing this one."""
        block = None if self.block is None else {**self.block, **{k: [dict(i) for i in self.block[k]] for k in LISTS}}
        return PatternState(
            self.path, self.content_hash, self.text_hash, block, self.observed_block, self.file_block,
            self.observed_text, dict(self.pending), self.tended, dict(self.refreshed), self.write_intent,
            dict(self.declined), dict(self.superseded), self.restored, self.banner_added, dict(self.owned),
            dict(self.reassessed), self.title, self.domain, self.curated)

    def preview(self, slug: str, events: list[Event]) -> PatternState:
        """This pattern as it would be after `events` (about it), which are not recorded: what
        a review shows before a curator decides."""
        state = State(patterns=Patterns(live={slug: self.copy()}))
        for e in events:
            apply_event(state, e)
        return state.patterns[slug]

    def exact_text(self, block: GardenBlock | None) -> str | None:
        """The exact text `block` once had in the file, when the log knows it: as last
        observed, or as it was before a run a revert undid. None: emit it afresh."""
        if block == as_block(self.observed_block):
            return self.observed_text
        restored = self.restored
        if restored and block is not None and restored.block is not None and block == as_block(restored.block):
            return restored.text
        return None

    # snapshots: one JSON document a pattern; a block still as observed or written is stored once

    def encode(self) -> bytes:
        data = {name: getattr(self, name) for name in _FIELDS}
        for name in ("observed_block", "file_block"):
            if data[name] is not None and data[name] == data["block"]:
                data[name] = _SAME
        return orjson.dumps(data)

    @classmethod
    def decode(cls, data: bytes) -> PatternState:
        found = orjson.loads(data)
        for name in ("observed_block", "file_block"):
            if found[name] == _SAME:
                found[name] = found["block"]  # the same object: the first change copies it
        for name, kind in (("tended", Tended), ("write_intent", WriteIntent), ("restored", Restored)):
            if found[name] is not None:
                found[name] = kind(**found[name])
        return cls(**found)

    def to_data(self) -> dict[str, Any]:
        """As plain JSON data (for comparisons and debugging)."""
        return asdict(self)


_SAME = "=block"
_FIELDS = tuple(f.name for f in fields(PatternState))


class Patterns(MutableMapping):
    """Each pattern's state by slug; patterns loaded from a snapshot stay encoded until used.

    Loading the current state then costs reading the snapshot, not decoding all of it: a
    command about one pattern decodes one, and a command over the garden decodes them as it goes.
    """

    def __init__(self, encoded: dict[str, bytes] | None = None, live: dict[str, PatternState] | None = None):
        self._encoded = encoded or {}
        self._live: dict[str, PatternState] = live or {}

    def __getitem__(self, slug: str) -> PatternState:
        try:
            return self._live[slug]
        except KeyError:
            pattern = PatternState.decode(self._encoded.pop(slug))
            self._live[slug] = pattern
            return pattern

    def __setitem__(self, slug: str, value: PatternState) -> None:
        self._encoded.pop(slug, None)
        self._live[slug] = value

    def __delitem__(self, slug: str) -> None:
        if self._live.pop(slug, None) is None:
            del self._encoded[slug]

    def __contains__(self, slug: object) -> bool:
        return slug in self._live or slug in self._encoded

    def __iter__(self) -> Iterator[str]:
        yield from list(self._live)
        yield from list(self._encoded)

    def __len__(self) -> int:
        return len(self._live) + len(self._encoded)

    def encoded(self) -> Iterator[tuple[str, bytes]]:
        """Every pattern encoded, reusing the bytes of those never decoded."""
        yield from self._encoded.items()
        for slug, pattern in self._live.items():
            yield slug, pattern.encode()


# --- the garden ----------------------------------------------------------------------------


@dataclass
class State:
    """The garden as the log tells it after event `seq`.

    Besides the patterns: `fits`, the newest CalibrationFitted per
    "proposer|model|prompt_version|kind" (breakpoints, recommended thresholds, target precision,
    the event's id and seq), which a tend maps new proposals' confidences through; and
    `duplicates`, suspected duplicate patterns (DuplicateSuspected), one entry per pair keyed
    "a|b" (slugs sorted): the suspicion, who said it and why, and `status` ("pending",
    "confirmed" by a curator's accept, "dismissed" by a reject) with both patterns' text hashes
    when it was decided. Neither changes a block."""

    seq: int = 0
    patterns: Patterns = field(default_factory=Patterns)
    fits: dict[str, dict] = field(default_factory=dict)
    duplicates: dict[str, dict] = field(default_factory=dict)

    _duplicate_keys: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def duplicate(self, suspicion_id: str) -> dict | None:
        """The duplicate entry of a suspicion, by its id (an index, not a scan: a big garden has
        thousands of suspicions and every decision asks)."""
        if self._duplicate_keys is None:
            self._duplicate_keys = {entry["id"]: key for key, entry in self.duplicates.items()}
        entry = self.duplicates.get(self._duplicate_keys.get(suspicion_id, ""))
        return entry if entry is not None and entry["id"] == suspicion_id else None

    def _put_duplicate(self, key: str, entry: dict) -> None:
        self.duplicates[key] = entry
        if self._duplicate_keys is not None:
            self._duplicate_keys[entry["id"]] = key

    def block(self, slug: str) -> GardenBlock | None:
        known = self.patterns.get(slug)
        return None if known is None else as_block(known.block)

    def to_json(self) -> bytes:
        """The whole state as one JSON document (for comparisons and debugging)."""
        return orjson.dumps({"seq": self.seq, "patterns": {slug: self.patterns[slug] for slug in self.patterns},
                             "fits": self.fits, "duplicates": self.duplicates}, option=orjson.OPT_SORT_KEYS)


class Meta(NamedTuple):
    """An event's envelope, as the handlers get it."""

    seq: int
    id: str
    run_id: str | None
    actor: str
    at: str


def apply(state: State, row: tuple) -> None:
    """Fold one stored event: (seq, id, type, slug, run_id, actor, recorded_at, version, payload, hash)."""
    state.seq = row[0]
    handler = _HANDLERS.get(row[2])
    if handler is None:
        return
    payload = orjson.loads(row[8])
    if row[7] != SCHEMA_VERSION:
        payload = upcast(row[2], row[7], payload)
    handler(state, row[3], payload, Meta(row[0], row[1], row[4], row[5], row[6]))


def apply_event(state: State, e: Event) -> None:
    """Fold an `Event` not (or not yet) read back from a store: a tend's, or a preview's."""
    state.seq += 1
    handler = _HANDLERS.get(e.type)
    if handler is not None:
        handler(state, e.slug, e.payload.model_dump(mode="json"),
                Meta(state.seq, e.id, e.run_id, e.actor, e.recorded_at))


# --- handlers: one an event type -----------------------------------------------------------

Handler = Callable[[State, "str | None", dict, Meta], None]
_HANDLERS: dict[str, Handler] = {}


def on(*kinds: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for kind in kinds:
            _HANDLERS[kind] = handler
        return handler
    return register


def pattern_handler(handler: Callable[[PatternState, dict, Meta], None]) -> Handler:
    """A handler of an event about a known pattern (others are ignored)."""
    def handle(state: State, slug: str | None, p: dict, meta: Meta) -> None:
        pattern = state.patterns.get(slug) if slug is not None else None
        if pattern is not None:
            handler(pattern, p, meta)
    return handle


@on("GardenObserved", "ExternalEditObserved")
def _observed(state: State, slug: str | None, p: dict, meta: Meta) -> None:
    """The file as found; the person's block wins (with the log's unwritten changes on top where
    they left them alone: `merged`). What a curator declined, what was superseded, and a
    revert's remembered text are forgotten; what they own and what was re-assessed is kept."""
    if slug is None:
        return
    old = state.patterns.get(slug)
    refreshed = dict(old.refreshed) if old else {}
    owned = dict(old.owned) if old else {}
    if p["type"] == "ExternalEditObserved" and p["block_changed"]:
        before = set(item_keys(old.file_block if old else None))
        for key in item_keys(p["block"]):
            if key not in before:  # the person added it: theirs, as a curator's
                owned.setdefault(key, "hand")
    for link in (p["block"] or {}).get("inferred_links") or []:
        refreshed.setdefault(link_key(link["target"], link.get("type")), meta.at)
    kept = p["type"] == "ExternalEditObserved" and p["kept"]
    state.patterns[slug] = PatternState(
        path=p["path"], content_hash=p["content_hash"], text_hash=p["text_hash"],
        block=p["merged"] if kept else p["block"], observed_block=p["block"], file_block=p["block"],
        observed_text=p["block_text"], pending=old.pending if old else {}, tended=old.tended if old else None,
        refreshed=refreshed, owned=owned, reassessed=old.reassessed if old else {}, title=p["title"],
        domain=p["domain"], curated=p["curated"],
        # the block, and so its banner, is still there
        banner_added=bool(old and old.banner_added and p["block"] is not None))


@on("ProposerCalled", "ProposalDeferred")
@pattern_handler
def _called(pattern: PatternState, p: dict, meta: Meta) -> None:
    if p["type"] == "ProposalDeferred":
        old = pattern.tended or Tended()
        pattern.tended = Tended(old.at, old.run_id, old.text_hash, retry=True)
    else:
        pattern.tended = Tended(meta.at, meta.run_id, p["text_hash"], retry=p["outcome"] != "ok")


@on("BlockWriteStarted")
@pattern_handler
def _write_started(pattern: PatternState, p: dict, meta: Meta) -> None:
    pattern.write_intent = WriteIntent(p["content_hash"], p["previous_hash"], p["last_pruned"], p["path"],
                                       p["banner_added"])


_KINDS = {"LinkProposed": "link", "EntityProposed": "entity", "PruneProposed": "prune"}


@on(*_KINDS)
@pattern_handler
def _proposed(pattern: PatternState, p: dict, meta: Meta) -> None:
    """Pending; an older pending proposal of the same item is superseded by it."""
    proposal: Proposal = {k: v for k, v in p.items() if k != "type"}  # type: ignore[assignment]
    proposal.update(kind=_KINDS[p["type"]], seq=meta.seq, run_id=meta.run_id, actor=meta.actor, at=meta.at)
    key = proposal_key(proposal)
    for older in [pid for pid, other in pattern.pending.items() if proposal_key(other) == key]:
        del pattern.pending[older]
        pattern.superseded[older] = meta.id
    pattern.pending[meta.id] = proposal


def _decided(pattern: PatternState, p: dict, meta: Meta) -> Proposal | None:
    """The proposal a decision is about: pending, or (a curator's decision on one the policy had
    decided: a sampled review) as the event carries it."""
    proposal = pattern.pending.pop(p["proposal_id"], None) if p["proposal_id"] else None
    if proposal is None and p["policy"] and meta.actor.startswith("curator:"):
        return p["proposal"]
    return proposal


@on("ProposalAccepted")
def _accepted(state: State, slug: str | None, p: dict, meta: Meta) -> None:
    if _duplicate_decided(state, p, meta, "confirmed"):
        return
    pattern = state.patterns.get(slug) if slug is not None else None
    proposal = _decided(pattern, p, meta) if pattern is not None else None
    if not proposal:
        return
    if proposal["kind"] == "prune":  # a curator agreed: the item goes
        _remove_first(pattern, *_prune_match(proposal))
        return
    key = proposal_key(proposal)
    if meta.actor.startswith("curator:"):
        pattern.owned[key] = "curator"
    if p["policy"] == "accepted":  # a curator confirms the policy's accept: the item stays as it is
        return
    block = pattern.editable_block()
    pattern.reassessed[key] = meta.at
    if proposal["kind"] == "link":
        item = {"target": proposal["target"], "type": proposal["link_type"],
                "confidence": proposal["confidence"], "reason": proposal["reason"]}
        _upsert(block["inferred_links"], item, ("target", "type"))
        pattern.refreshed[key] = meta.at
    else:
        item = {"id": proposal["entity_id"], "type": proposal["entity_type"],
                "label": proposal["label"], "relevance": proposal["relevance"]}
        _upsert(block["entities"], item, ("id",))


@on("ProposalRejected")
def _rejected(state: State, slug: str | None, p: dict, meta: Meta) -> None:
    if _duplicate_decided(state, p, meta, "dismissed"):
        return
    pattern = state.patterns.get(slug) if slug is not None else None
    if pattern is None or not p["proposal_id"]:
        return
    proposal = _decided(pattern, p, meta)
    if proposal and meta.actor.startswith("curator:"):
        pattern.declined[proposal_key(proposal)] = pattern.text_hash


@on("RejectionLifted")
@pattern_handler
def _lifted(pattern: PatternState, p: dict, meta: Meta) -> None:
    key = entity_key(p["entity_id"]) if p["entity_id"] else link_key(p["target"], p["link_type"])
    pattern.declined.pop(key, None)


@on("BlockRestored")
@pattern_handler
def _restored(pattern: PatternState, p: dict, meta: Meta) -> None:
    block = p["block"]
    pattern.block = None if block is None else {**block, **{k: [dict(i) for i in block.get(k) or []] for k in LISTS}}
    if p["block_text"] is not None:  # until the next observation of the file
        pattern.restored = Restored(block, p["block_text"])


@on("ProposalReopened")
def _reopened(state: State, slug: str | None, p: dict, meta: Meta) -> None:
    proposal = p["proposal"]
    if "slugs" in proposal:  # a duplicate suspicion, pending again as it was
        state._put_duplicate("|".join(proposal["slugs"]), {**proposal, "status": "pending"})
        return
    pattern = state.patterns.get(slug) if slug is not None else None
    if pattern is None:
        return
    pattern.pending[p["proposal_id"]] = dict(proposal)  # type: ignore[assignment]
    if p["declined"] is None:
        pattern.declined.pop(proposal_key(proposal), None)
    else:
        pattern.declined[proposal_key(proposal)] = p["declined"]


@on("LinkRescored")
@pattern_handler
def _rescored(pattern: PatternState, p: dict, meta: Meta) -> None:
    if not pattern.block:
        return
    key = link_key(p["target"], p["link_type"])
    for link in pattern.editable_block()["inferred_links"]:
        if link["target"] == p["target"] and link["type"] == p["link_type"]:
            link["confidence"] = p["new_confidence"]
            pattern.refreshed[key] = meta.at
            pattern.reassessed[key] = meta.at


@on("EntityRescored")
@pattern_handler
def _entity_rescored(pattern: PatternState, p: dict, meta: Meta) -> None:
    if not pattern.block:
        return
    for entity in pattern.editable_block()["entities"]:
        if entity["id"] == p["entity_id"]:
            entity["relevance"] = p["new_relevance"]
            pattern.reassessed[entity_key(p["entity_id"])] = meta.at


def _prune_match(proposal: Proposal) -> tuple[str, dict[str, Any]]:
    if proposal["item"] == "link":
        return "inferred_links", {"target": proposal["target"], "type": proposal["link_type"]}
    return "entities", {"id": proposal["entity_id"]}


def _remove_first(pattern: PatternState, name: str, match: dict[str, Any]) -> None:
    """The first of the block's `name` items matching `match` goes (a block may hold the same
    item twice; each copy goes by an event of its own)."""
    if not pattern.block:
        return
    found = next((n for n, i in enumerate(pattern.block[name])
                  if all(i.get(k) == v for k, v in match.items())), None)
    if found is not None:
        del pattern.editable_block()[name][found]


def _pruned(name: str, item_key: tuple[str, ...], fields_: tuple[str, ...], score: str) -> Handler:
    """A prune removes the first item with the event's key and score (an event recorded before
    the score was, unscored, matches on the key alone)."""
    @pattern_handler
    def handler(pattern: PatternState, p: dict, meta: Meta) -> None:
        match = dict(zip(item_key, (p[f] for f in fields_)))
        if p["scored"]:
            match[score] = p[score]
        _remove_first(pattern, name, match)

    return handler


on("LinkPruned")(_pruned("inferred_links", ("target", "type"), ("target", "link_type"), "confidence"))
on("EntityPruned")(_pruned("entities", ("id",), ("entity_id",), "relevance"))
on("CommunityPruned")(_pruned("communities", ("id",), ("community_id",), "confidence"))


@on("BlockWritten")
@pattern_handler
def _written(pattern: PatternState, p: dict, meta: Meta) -> None:
    if p["last_pruned"] is not None or pattern.block is not None:
        pattern.editable_block()["last_pruned"] = p["last_pruned"]
    pattern.file_block = pattern.block  # the same object: the next change copies it
    pattern.content_hash = p["content_hash"]
    pattern.path = p["path"]
    pattern.write_intent = None
    if p["banner_added"]:
        pattern.banner_added = True
    elif pattern.block is None:  # the block went, and its banner with it
        pattern.banner_added = False


def _upsert(items: list[dict], item: dict, key: tuple[str, ...]) -> None:
    for existing in items:
        if all(existing.get(k) == item[k] for k in key):
            existing.update(item)
            return
    items.append(item)


# --- the garden's own events ---------------------------------------------------------------


@on("DuplicateSuspected")
def _duplicate_suspected(state: State, slug: str | None, p: dict, meta: Meta) -> None:
    if slug is None:
        return
    a, b = sorted((slug, p["other"]))
    state._put_duplicate(f"{a}|{b}", {
        "id": meta.id, "slugs": [a, b], "slug": slug, "other": p["other"],
        "confidence": p["confidence"], "reason": p["reason"], "proposer": p["proposer"],
        "model": p["model"], "evidence": p["evidence"], "seq": meta.seq, "run_id": meta.run_id,
        "actor": meta.actor, "at": meta.at, "status": "pending"})


def _duplicate_decided(state: State, p: dict, meta: Meta, status: str) -> bool:
    """A decision on a pending duplicate suspicion: confirmed or dismissed, with both patterns'
    text hashes now (not suspected again while both are unchanged). False: not one."""
    pid = p["proposal_id"]
    if not pid or not state.duplicates:
        return False
    entry = state.duplicate(pid)
    if entry is None or entry["status"] != "pending":
        return False
    if not meta.actor.startswith("curator:"):  # withdrawn (a revert of the run that suspected it)
        del state.duplicates["|".join(entry["slugs"])]
        return True
    hashes = {}
    for s in entry["slugs"]:
        known = state.patterns.get(s)
        hashes[s] = known.text_hash if known else None
    entry.update(status=status, decided_by=meta.actor, decided_at=meta.at, note=p["note"], hashes=hashes)
    return True


@on("CalibrationFitted")
def _fitted(state: State, slug: str | None, p: dict, meta: Meta) -> None:
    key = f"{p['proposer']}|{p['model'] or '-'}|{p['prompt_version'] or '-'}|{p['kind']}"
    state.fits[key] = {"proposer": p["proposer"], "model": p["model"], "prompt_version": p["prompt_version"],
                       "kind": p["kind"], "breakpoints": p["breakpoints"], "recommended": p["recommended"],
                       "target_precision": p["target_precision"], "labels": len(p["labels"]),
                       "id": meta.id, "seq": meta.seq}
