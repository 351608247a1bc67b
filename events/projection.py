"""The projection: folding the log into each pattern's block and pending proposals.

State is plain data (dicts and lists, JSON all the way down) so that folding a million events
is fast and a pattern's snapshot is one JSON document. A pattern's state:

- `block`: the `graph_garden` block to write, as `GardenBlock.model_dump(mode="json")` (or None
  when the file has none); items keep their order, new ones are appended.
- `observed_block` / `observed_text`: the block as last seen in the file and its exact text, so
  a block the log has not changed since comes back as it was written (legacy style and all).
- `file_block`: the block as the file holds it, by the log's account (as last observed or
  written): the base of the merge when a person edits a file whose block the log has changed
  since (see `garden.merge`).
- `content_hash`, `text_hash`, `path`: the file as graph-garden last saw or wrote it.
- `pending`: proposals waiting for a decision, by proposal (event) id.
- `tended`: when the pattern was last proposed for (`at`, `run_id`, the `text_hash` it had) and
  whether it must be asked again (`retry`: the last call failed or was deferred).
- `refreshed`: per link ("target|type"), when it was last observed, proposed or re-assessed
  (for the optional confidence decay).
- `write_intent`: a block write started and not yet confirmed (see BlockWriteStarted).
- `declined`: links ("target|type") and entities ("entity|id") a curator rejected, with the
  pattern's text hash then: not proposed again while the text is unchanged, or until lifted.
- `superseded`: proposal ids replaced by a later proposal of the same link or entity.
- `restored`: a block a revert put back and the exact text it had before the run it undid.
- `banner_added`: the file's block was put in by graph-garden with a GROUP 6 banner of its own
  (so taking the block out takes the banner too).
- `owned`: items ("target|type", "entity|id") a curator accepted or confirmed ("curator") or a
  person wrote into the file ("hand": an ExternalEditObserved that added them). The policy never
  prunes them alone: a re-assessment below its threshold becomes a PruneProposed for a curator.
- `reassessed`: items ("target|type", "entity|id") a proposer has judged afresh (a LinkRescored,
  EntityRescored, or a proposal accepted into the block); the others are inherited as found.

Besides the patterns, the state keeps `fits`: the newest CalibrationFitted per
"proposer|model|prompt_version|kind" (its breakpoints, recommended thresholds, target precision,
and the event's id and seq), which a tend maps new proposals' confidences through. A snapshot
keeps them in a row of their own (slug FITS_ROW, which no pattern can have).

And `duplicates`: suspected duplicate patterns (DuplicateSuspected), one entry per pair keyed
"a|b" (slugs sorted, `garden.duplicates.pair_key`): the suspicion's id, both slugs, who said it
and why, and `status` ("pending", "confirmed" by a curator's accept, "dismissed" by a reject) with
both patterns' text hashes when it was decided (`hashes`). A snapshot keeps them in the row
DUPLICATES_ROW. Nothing in a block changes.

A pending proposal's `kind` is "link", "entity" or "prune" (a PruneProposed: `item` says whether
a link or an entity would go).

History is not kept in the state: it is read from the log by slug when someone asks.
Snapshots are a cache: `load_state` folds from the newest snapshot it trusts, and deleting them
changes no result (the property tests check this).
"""

from __future__ import annotations

import gc
from itertools import chain

import orjson
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from garden.model import GardenBlock

FOLD_VERSION = 12
_SAME = "=block"
SNAPSHOT_EVERY = 20_000  # events folded past the newest snapshot before a new one is saved
FITS_ROW = ""  # the snapshot row holding the state's calibration fits
DUPLICATES_ROW = "#duplicates"  # and its suspected duplicate patterns (no slug starts with "#")


class Patterns(MutableMapping):
    """Each pattern's state by slug; patterns loaded from a snapshot stay encoded until used.

    Loading the current state then costs reading the snapshot, not decoding all of it: a
    command about one pattern decodes one, and a command over the garden decodes them as it goes.
    """

    def __init__(self, encoded: dict[str, bytes] | None = None):
        self._encoded = encoded or {}
        self._live: dict[str, dict] = {}

    def __getitem__(self, slug: str) -> dict:
        try:
            return self._live[slug]
        except KeyError:
            pattern = _decode(self._encoded.pop(slug))
            self._live[slug] = pattern
            return pattern

    def __setitem__(self, slug: str, value: dict) -> None:
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
            yield slug, _encode(pattern)


def _encode(pattern: dict) -> bytes:
    """A pattern's state as JSON; a block still as observed or written is stored once, not twice."""
    for name in ("observed_block", "file_block"):
        if pattern.get(name) is not None and pattern[name] == pattern["block"]:
            pattern = {**pattern, name: _SAME}
    return orjson.dumps(pattern)


def _decode(data: bytes) -> dict:
    pattern = orjson.loads(data)
    for name in ("observed_block", "file_block"):
        if pattern.get(name) == _SAME:
            pattern[name] = pattern["block"]  # the same object: the first change copies it
    return pattern


def as_block(data: dict | None) -> GardenBlock | None:
    """A block as the state holds it (a dict, or None for no block) as a model."""
    return None if data is None else GardenBlock.model_validate(data)


@dataclass
class State:
    seq: int = 0
    patterns: Patterns = field(default_factory=Patterns)
    fits: dict[str, dict] = field(default_factory=dict)
    duplicates: dict[str, dict] = field(default_factory=dict)

    def block(self, slug: str) -> GardenBlock | None:
        return as_block(self.patterns.get(slug, {}).get("block"))

    def to_json(self) -> bytes:
        """The whole state as one JSON document (for comparisons and debugging)."""
        return orjson.dumps({"seq": self.seq, "patterns": {slug: self.patterns[slug] for slug in self.patterns},
                             "fits": self.fits, "duplicates": self.duplicates}, option=orjson.OPT_SORT_KEYS)


def save_snapshot(store, state: State) -> None:
    rows = state.patterns.encoded()
    if state.fits:
        rows = chain(rows, [(FITS_ROW, orjson.dumps(state.fits))])
    if state.duplicates:
        rows = chain(rows, [(DUPLICATES_ROW, orjson.dumps(state.duplicates))])
    store.save_snapshot(state.seq, FOLD_VERSION, rows)


_LISTS = ("entities", "communities", "inferred_links")


def empty_block() -> dict[str, Any]:
    return {"last_pruned": None, "entities": [], "communities": [], "inferred_links": []}


def apply(state: State, row: tuple) -> None:
    """Fold one stored row (seq, id, type, slug, run_id, actor, recorded_at, version, payload, hash)."""
    kind, slug = row[2], row[3]
    state.seq = row[0]
    if kind in _GARDEN_HANDLERS:
        _GARDEN_HANDLERS[kind](state, orjson.loads(row[8]), row)
        return
    handler = _HANDLERS.get(kind)
    if handler is None or slug is None:
        return
    handler(state, slug, orjson.loads(row[8]), row)


def apply_event(state: State, event) -> None:
    """Fold an `Event` not (or not yet) read back from the store, e.g. in a dry run."""
    apply(state, (state.seq + 1, event.id, event.payload.type, event.slug, event.run_id,
                  event.actor, event.recorded_at, event.schema_version,
                  event.payload.model_dump_json(), None))


def fold(rows, state: State | None = None) -> State:
    state = state or State()
    for row in rows:
        apply(state, row)
    return state


# --- handlers ------------------------------------------------------------------------------


# Handlers get the stored row as `meta`: (seq, id, type, slug, run_id, actor, recorded_at, ...).
SEQ, ID, RUN, ACTOR, AT = 0, 1, 4, 5, 6


def _observed(state: State, slug: str, p: dict, meta: tuple) -> None:
    old = state.patterns.get(slug) or {}
    refreshed = dict(old.get("refreshed") or {})
    owned = dict(old.get("owned") or {})
    if p["type"] == "ExternalEditObserved" and p.get("block_changed"):
        before = set(_item_keys(old.get("file_block")))
        for key in _item_keys(p["block"]):
            if key not in before:  # the person added it: theirs, as a curator's
                owned.setdefault(key, "hand")
    for link in (p["block"] or {}).get("inferred_links") or []:
        refreshed.setdefault(f"{link['target']}|{link.get('type')}", meta[AT])
    state.patterns[slug] = pattern = {
        "path": p["path"],
        "content_hash": p["content_hash"],
        "text_hash": p["text_hash"],
        # the person's block, with the log's unwritten changes on top (see ExternalEditObserved)
        "block": p["merged"] if p.get("kept") else p["block"],
        "observed_block": p["block"],
        "file_block": p["block"],
        "observed_text": p["block_text"],
        "pending": old.get("pending") or {},
        "tended": old.get("tended"),
        "refreshed": refreshed,
        "write_intent": None,
    }
    if owned:
        pattern["owned"] = owned
    if old.get("reassessed"):
        pattern["reassessed"] = old["reassessed"]
    if old.get("banner_added") and p["block"] is not None:  # the block, and so its banner, is still there
        pattern["banner_added"] = True


def _called(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if pattern is None:
        return
    if p["type"] == "ProposalDeferred":
        tended = dict(pattern.get("tended") or {})
        tended["retry"] = True
    else:
        tended = {"at": meta[AT], "run_id": meta[RUN], "text_hash": p["text_hash"],
                  "retry": p["outcome"] != "ok"}
    pattern["tended"] = tended


def _write_started(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if pattern is not None:
        pattern["write_intent"] = {"content_hash": p["content_hash"], "previous_hash": p["previous_hash"],
                                   "last_pruned": p["last_pruned"], "path": p["path"],
                                   "banner_added": p.get("banner_added", False)}


def _proposed(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if pattern is None:
        return
    proposal = p
    proposal["kind"] = _KINDS[proposal.pop("type")]
    proposal.update(seq=meta[SEQ], run_id=meta[RUN], actor=meta[ACTOR], at=meta[AT])
    pending = pattern["pending"]
    key = proposal_key(proposal)
    for older in [pid for pid, other in pending.items() if proposal_key(other) == key]:
        del pending[older]
        pattern.setdefault("superseded", {})[older] = meta[ID]
    pending[meta[ID]] = proposal


_KINDS = {"LinkProposed": "link", "EntityProposed": "entity", "PruneProposed": "prune"}


def proposal_key(proposal: dict) -> str:
    """What a proposal is about: "target|type" for a link, "entity|id" for an entity, and
    "prune|" before either for a proposed prune."""
    if proposal["kind"] == "prune":
        return "prune|" + proposal_key({**proposal, "kind": proposal["item"]})
    if proposal["kind"] == "link":
        return f"{proposal['target']}|{proposal['link_type']}"
    return f"entity|{proposal['entity_id']}"


def _item_keys(block: dict | None) -> list[str]:
    """The keys of a block's links and entities, as `owned` and `reassessed` name them."""
    if not block:
        return []
    return ([f"{l['target']}|{l.get('type')}" for l in block.get("inferred_links") or []]
            + [f"entity|{e['id']}" for e in block.get("entities") or []])


def _decided(pattern: dict | None, p: dict, meta: tuple) -> dict | None:
    """The proposal a decision is about: pending, or (a curator's decision on one the policy had
    decided: a sampled review) as the event carries it."""
    if not pattern:
        return None
    proposal = pattern["pending"].pop(p["proposal_id"], None)
    if proposal is None and p.get("policy") and meta[ACTOR].startswith("curator:"):
        return p["proposal"]
    return proposal


def _accepted(state: State, slug: str, p: dict, meta: tuple) -> None:
    if _duplicate_decided(state, p, meta, "confirmed"):
        return
    pattern = state.patterns.get(slug)
    proposal = _decided(pattern, p, meta)
    if not proposal:
        return
    if proposal["kind"] == "prune":  # a curator agreed: the item goes
        _remove_item(pattern, proposal)
        return
    key = proposal_key(proposal)
    if meta[ACTOR].startswith("curator:"):
        pattern.setdefault("owned", {})[key] = "curator"
    if p.get("policy") == "accepted":  # a curator confirms the policy's accept: the item stays as it is
        return
    block = _editable(pattern)
    pattern.setdefault("reassessed", {})[key] = meta[AT]
    if proposal["kind"] == "link":
        item = {"target": proposal["target"], "type": proposal["link_type"],
                "confidence": proposal["confidence"], "reason": proposal["reason"]}
        _upsert(block["inferred_links"], item, ("target", "type"))
        _refresh(pattern, item["target"], item["type"], meta)
    else:
        item = {"id": proposal["entity_id"], "type": proposal["entity_type"],
                "label": proposal["label"], "relevance": proposal["relevance"]}
        _upsert(block["entities"], item, ("id",))


def _rejected(state: State, slug: str, p: dict, meta: tuple) -> None:
    if _duplicate_decided(state, p, meta, "dismissed"):
        return
    pattern = state.patterns.get(slug)
    if not pattern or not p.get("proposal_id"):
        return
    proposal = _decided(pattern, p, meta)
    if proposal and meta[ACTOR].startswith("curator:"):
        pattern.setdefault("declined", {})[proposal_key(proposal)] = pattern["text_hash"]


def _lifted(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if pattern:
        key = f"entity|{p['entity_id']}" if p.get("entity_id") else f"{p['target']}|{p['link_type']}"
        (pattern.get("declined") or {}).pop(key, None)


def _restored(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if pattern:
        block = p["block"]
        pattern["block"] = None if block is None else {
            **block, **{k: [dict(i) for i in block.get(k) or []] for k in _LISTS}}
        if p.get("block_text") is not None:  # until the next observation of the file
            pattern["restored"] = {"block": block, "text": p["block_text"]}


def _reopened(state: State, slug: str, p: dict, meta: tuple) -> None:
    if "slugs" in p["proposal"]:  # a duplicate suspicion, pending again as it was
        key = "|".join(p["proposal"]["slugs"])
        state.duplicates[key] = {**p["proposal"], "status": "pending"}
        _duplicate_ids(state)[p["proposal"]["id"]] = key
        return
    pattern = state.patterns.get(slug)
    if not pattern:
        return
    proposal = p["proposal"]
    pattern["pending"][p["proposal_id"]] = proposal
    declined = pattern.get("declined") or {}
    if p.get("declined") is None:
        declined.pop(proposal_key(proposal), None)
    else:
        declined[proposal_key(proposal)] = p["declined"]


def _rescored(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if not pattern or not pattern["block"]:
        return
    block = _editable(pattern)
    for link in block["inferred_links"]:
        if link["target"] == p["target"] and link["type"] == p["link_type"]:
            link["confidence"] = p["new_confidence"]
            _refresh(pattern, p["target"], p["link_type"], meta)
            pattern.setdefault("reassessed", {})[f"{p['target']}|{p['link_type']}"] = meta[AT]


def _entity_rescored(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if not pattern or not pattern["block"]:
        return
    block = _editable(pattern)
    for entity in block["entities"]:
        if entity["id"] == p["entity_id"]:
            entity["relevance"] = p["new_relevance"]
            pattern.setdefault("reassessed", {})[f"entity|{p['entity_id']}"] = meta[AT]


def _remove_item(pattern: dict, proposal: dict) -> None:
    """A proposed prune, accepted: the first item with its key goes (as a LinkPruned would)."""
    if not pattern["block"]:
        return
    if proposal["item"] == "link":
        name, match = "inferred_links", {"target": proposal["target"], "type": proposal["link_type"]}
    else:
        name, match = "entities", {"id": proposal["entity_id"]}
    found = next((n for n, i in enumerate(pattern["block"][name])
                  if all(i.get(k) == v for k, v in match.items())), None)
    if found is not None:
        del _editable(pattern)[name][found]


def _refresh(pattern: dict, target: str, kind: str, meta: tuple) -> None:
    pattern.setdefault("refreshed", {})[f"{target}|{kind}"] = meta[AT]


def _pruned(key: str, item_key: tuple[str, ...], fields: tuple[str, ...], score: str):
    """A prune removes one item: the first with the event's key and score (a block may hold the
    same link twice; the policy prunes each copy with an event of its own)."""
    def handler(state: State, slug: str, p: dict, meta: tuple) -> None:
        pattern = state.patterns.get(slug)
        if not pattern or not pattern["block"]:
            return
        wanted = list(zip(item_key, (p[f] for f in fields)))
        if score in p:  # events from before the score was recorded match on the key alone
            wanted.append((score, p[score]))
        items = pattern["block"][key]
        found = next((n for n, i in enumerate(items) if all(i.get(k) == w for k, w in wanted)), None)
        if found is None:
            return
        block = _editable(pattern)
        del block[key][found]

    return handler


def _written(state: State, slug: str, p: dict, meta: tuple) -> None:
    pattern = state.patterns.get(slug)
    if not pattern:
        return
    if p["last_pruned"] is not None or pattern["block"] is not None:
        _editable(pattern)["last_pruned"] = p["last_pruned"]
    pattern["file_block"] = pattern["block"]  # the same object: the next change copies it
    pattern["content_hash"] = p["content_hash"]
    pattern["path"] = p["path"]
    pattern["write_intent"] = None
    if p.get("banner_added"):
        pattern["banner_added"] = True
    elif pattern["block"] is None:  # the block went, and its banner with it
        pattern.pop("banner_added", None)


def exact_text(pattern: dict, block: GardenBlock | None) -> str | None:
    """The exact text `block` once had in the file, when the log knows it: as last observed, or
    as it was before a run a revert undid. None: emit it afresh."""
    if block == (None if pattern["observed_block"] is None else GardenBlock.model_validate(pattern["observed_block"])):
        return pattern["observed_text"]
    restored = pattern.get("restored")
    if restored and block is not None and restored["block"] is not None \
            and block == GardenBlock.model_validate(restored["block"]):
        return restored["text"]
    return None


def _editable(pattern: dict) -> dict:
    """The pattern's block, copied before its first change so observed_block and file_block
    stay as they were."""
    block = pattern["block"]
    if block is None:
        block = empty_block()
    elif block is pattern["observed_block"] or block is pattern["file_block"]:
        # items are only ever replaced or updated key by key: copying the lists is enough
        block = {**block, **{k: [dict(i) for i in block[k]] for k in _LISTS}}
    pattern["block"] = block
    return block


def _upsert(items: list[dict], item: dict, key: tuple[str, ...]) -> None:
    for existing in items:
        if all(existing.get(k) == item[k] for k in key):
            existing.update(item)
            return
    items.append(item)


def _duplicate_suspected(state: State, slug: str, p: dict, meta: tuple) -> None:
    a, b = sorted((slug, p["other"]))
    _duplicate_ids(state)[meta[ID]] = f"{a}|{b}"
    state.duplicates[f"{a}|{b}"] = {
        "id": meta[ID], "slugs": [a, b], "slug": slug, "other": p["other"],
        "confidence": p["confidence"], "reason": p["reason"], "proposer": p["proposer"],
        "model": p["model"], "evidence": p["evidence"], "seq": meta[SEQ], "run_id": meta[RUN],
        "actor": meta[ACTOR], "at": meta[AT], "status": "pending"}


def _duplicate_ids(state: State) -> dict[str, str]:
    """Suspicion id -> pair key, for every suspicion in `state.duplicates` (and perhaps some no
    longer there: check the entry). Kept beside the state, built at its first use, because a
    fold decides thousands of proposals and a scan of every suspicion for each was quadratic."""
    index = state.__dict__.get("_duplicate_ids")
    if index is None or index[0] is not state.duplicates:
        index = (state.duplicates, {e["id"]: key for key, e in state.duplicates.items()})
        state.__dict__["_duplicate_ids"] = index
    return index[1]


def _duplicate_decided(state: State, p: dict, meta: tuple, status: str) -> bool:
    """A decision on a pending duplicate suspicion: confirmed or dismissed, with both patterns'
    text hashes now (not suspected again while both are unchanged). False: not one."""
    pid = p.get("proposal_id")
    if not pid or not state.duplicates:
        return False
    entry = state.duplicates.get(_duplicate_ids(state).get(pid, ""))
    if entry is None or entry["id"] != pid or entry["status"] != "pending":
        return False
    if not meta[ACTOR].startswith("curator:"):  # withdrawn (a revert of the run that suspected it)
        del state.duplicates["|".join(entry["slugs"])]
        return True
    entry.update(status=status, decided_by=meta[ACTOR], decided_at=meta[AT], note=p.get("note"),
                 hashes={s: (state.patterns.get(s) or {}).get("text_hash") for s in entry["slugs"]})
    return True


_HANDLERS = {
    "DuplicateSuspected": _duplicate_suspected,
    "GardenObserved": _observed,
    "ExternalEditObserved": _observed,
    "LinkProposed": _proposed,
    "EntityProposed": _proposed,
    "ProposalAccepted": _accepted,
    "ProposalRejected": _rejected,
    "LinkRescored": _rescored,
    "EntityRescored": _entity_rescored,
    "PruneProposed": _proposed,
    "LinkPruned": _pruned("inferred_links", ("target", "type"), ("target", "link_type"), "confidence"),
    "EntityPruned": _pruned("entities", ("id",), ("entity_id",), "relevance"),
    "CommunityPruned": _pruned("communities", ("id",), ("community_id",), "confidence"),
    "BlockWriteStarted": _write_started,
    "BlockWritten": _written,
    "ProposerCalled": _called,
    "ProposalDeferred": _called,
    "RejectionLifted": _lifted,
    "BlockRestored": _restored,
    "ProposalReopened": _reopened,
}


def _fitted(state: State, p: dict, meta: tuple) -> None:
    key = f"{p['proposer']}|{p['model'] or '-'}|{p['prompt_version'] or '-'}|{p['kind']}"
    state.fits[key] = {"proposer": p["proposer"], "model": p["model"], "prompt_version": p["prompt_version"],
                       "kind": p["kind"], "breakpoints": p["breakpoints"], "recommended": p["recommended"],
                       "target_precision": p["target_precision"], "labels": len(p["labels"]),
                       "id": meta[ID], "seq": meta[SEQ]}


# Events about the garden as a whole (no slug).
_GARDEN_HANDLERS = {
    "CalibrationFitted": _fitted,
}


# --- loading with snapshots ----------------------------------------------------------------


def load_state(store, until: int | None = None, *, use_snapshots: bool = True) -> State:
    """The state after event `until` (default: the newest), folding from the best snapshot.

    Saves a new snapshot when it had to fold many events past the newest one (only when
    loading the current state).
    """
    state, start = State(), 0
    if use_snapshots:
        snap = store.latest_snapshot(FOLD_VERSION, until)
        if snap is not None:
            start, encoded = snap
            fits = encoded.pop(FITS_ROW, None)
            duplicates = encoded.pop(DUPLICATES_ROW, None)
            state = State(seq=start, patterns=Patterns(encoded), fits=orjson.loads(fits) if fits else {},
                          duplicates=orjson.loads(duplicates) if duplicates else {})
    folded = 0
    collecting = gc.isenabled()
    gc.disable()  # the fold makes millions of small containers and frees none of them
    try:
        for row in store.rows(after=start, until=until):
            apply(state, row)
            folded += 1
    finally:
        if collecting:
            gc.enable()
    if until is not None and state.seq < until:
        state.seq = min(until, store.head_seq())
    if use_snapshots and until is None and folded >= SNAPSHOT_EVERY:
        save_snapshot(store, state)
    return state
