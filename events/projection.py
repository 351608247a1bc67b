"""The projection: folding the log into each pattern's block and pending proposals.

State is plain data (dicts and lists, JSON all the way down) so that folding a million events
is fast and a snapshot is one `json.dumps`. A pattern's state:

- `block`: the `graph_garden` block to write, as `GardenBlock.model_dump(mode="json")` (or None
  when the file has none); items keep their order, new ones are appended.
- `observed_block` / `observed_text`: the block as last seen in the file and its exact text, so
  a block the log has not changed since comes back as it was written (legacy style and all).
- `content_hash`, `text_hash`, `path`: the file as graph-garden last saw or wrote it.
- `pending`: proposals waiting for a decision, by proposal (event) id.
- `tended`: when the pattern was last proposed for (`at`, `run_id`, the `text_hash` it had) and
  whether it must be asked again (`retry`: the last call failed or was deferred).
- `refreshed`: per link ("target|type"), when it was last observed, proposed or re-assessed
  (for the optional confidence decay).
- `write_intent`: a block write started and not yet confirmed (see BlockWriteStarted).

History is not kept in the state: it is read from the log by slug when someone asks.
Snapshots are a cache: `load_state` folds from the newest snapshot it trusts, and deleting them
changes no result (the property tests check this).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from garden.model import GardenBlock

FOLD_VERSION = 2
SNAPSHOT_EVERY = 20_000  # events folded past the newest snapshot before a new one is saved


@dataclass
class State:
    seq: int = 0
    patterns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def block(self, slug: str) -> GardenBlock | None:
        data = self.patterns.get(slug, {}).get("block")
        return None if data is None else GardenBlock.model_validate(data)

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "patterns": self.patterns}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "State":
        data = json.loads(text)
        return cls(seq=data["seq"], patterns=data["patterns"])


def empty_block() -> dict[str, Any]:
    return {"last_pruned": None, "entities": [], "communities": [], "inferred_links": []}


def apply(state: State, row: tuple) -> None:
    """Fold one stored row (seq, id, type, slug, run_id, actor, recorded_at, version, payload, hash)."""
    seq, event_id, kind, slug, run_id, actor, recorded_at = row[:7]
    state.seq = seq
    handler = _HANDLERS.get(kind)
    if handler is None or slug is None:
        return
    payload = json.loads(row[8])
    handler(state, slug, payload, {"id": event_id, "seq": seq, "run_id": run_id,
                                   "actor": actor, "at": recorded_at})


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


def _observed(state: State, slug: str, p: dict, meta: dict) -> None:
    old = state.patterns.get(slug) or {}
    refreshed = dict(old.get("refreshed") or {})
    for link in (p["block"] or {}).get("inferred_links") or []:
        refreshed.setdefault(f"{link['target']}|{link.get('type')}", meta["at"])
    state.patterns[slug] = {
        "path": p["path"],
        "content_hash": p["content_hash"],
        "text_hash": p["text_hash"],
        "block": p["block"],
        "observed_block": p["block"],
        "observed_text": p["block_text"],
        "pending": old.get("pending") or {},
        "tended": old.get("tended"),
        "refreshed": refreshed,
        "write_intent": None,
    }


def _called(state: State, slug: str, p: dict, meta: dict) -> None:
    pattern = state.patterns.get(slug)
    if pattern is None:
        return
    if p["type"] == "ProposalDeferred":
        tended = dict(pattern.get("tended") or {})
        tended["retry"] = True
    else:
        tended = {"at": meta["at"], "run_id": meta["run_id"], "text_hash": p["text_hash"],
                  "retry": p["outcome"] != "ok"}
    pattern["tended"] = tended


def _write_started(state: State, slug: str, p: dict, meta: dict) -> None:
    pattern = state.patterns.get(slug)
    if pattern is not None:
        pattern["write_intent"] = {"content_hash": p["content_hash"], "previous_hash": p["previous_hash"],
                                   "last_pruned": p["last_pruned"], "path": p["path"]}


def _proposed(state: State, slug: str, p: dict, meta: dict) -> None:
    pattern = state.patterns.get(slug)
    if pattern is None:
        return
    proposal = {k: v for k, v in p.items() if k != "type"}
    proposal.update(kind="link" if p["type"] == "LinkProposed" else "entity", **meta)
    pattern["pending"][meta["id"]] = proposal


def _accepted(state: State, slug: str, p: dict, meta: dict) -> None:
    pattern = state.patterns.get(slug)
    proposal = pattern and pattern["pending"].pop(p["proposal_id"], None)
    if not proposal:
        return
    block = _editable(pattern)
    if proposal["kind"] == "link":
        item = {"target": proposal["target"], "type": proposal["link_type"],
                "confidence": proposal["confidence"], "reason": proposal["reason"]}
        _upsert(block["inferred_links"], item, ("target", "type"))
        _refresh(pattern, item["target"], item["type"], meta)
    else:
        item = {"id": proposal["entity_id"], "type": proposal["entity_type"],
                "label": proposal["label"], "relevance": proposal["relevance"]}
        _upsert(block["entities"], item, ("id",))


def _rejected(state: State, slug: str, p: dict, meta: dict) -> None:
    pattern = state.patterns.get(slug)
    if pattern and p.get("proposal_id"):
        pattern["pending"].pop(p["proposal_id"], None)


def _rescored(state: State, slug: str, p: dict, meta: dict) -> None:
    pattern = state.patterns.get(slug)
    if not pattern or not pattern["block"]:
        return
    block = _editable(pattern)
    for link in block["inferred_links"]:
        if link["target"] == p["target"] and link["type"] == p["link_type"]:
            link["confidence"] = p["new_confidence"]
            _refresh(pattern, p["target"], p["link_type"], meta)


def _refresh(pattern: dict, target: str, kind: str, meta: dict) -> None:
    pattern.setdefault("refreshed", {})[f"{target}|{kind}"] = meta["at"]


def _pruned(key: str, item_key: tuple[str, ...], fields: tuple[str, ...]):
    def handler(state: State, slug: str, p: dict, meta: dict) -> None:
        pattern = state.patterns.get(slug)
        if not pattern or not pattern["block"]:
            return
        block = _editable(pattern)
        wanted = tuple(p[f] for f in fields)
        block[key] = [i for i in block[key] if tuple(i.get(k) for k in item_key) != wanted]

    return handler


def _written(state: State, slug: str, p: dict, meta: dict) -> None:
    pattern = state.patterns.get(slug)
    if not pattern:
        return
    block = _editable(pattern)
    block["last_pruned"] = p["last_pruned"]
    pattern["content_hash"] = p["content_hash"]
    pattern["path"] = p["path"]
    pattern["write_intent"] = None


def _editable(pattern: dict) -> dict:
    """The pattern's block, copied before its first change so observed_block stays as seen."""
    block = pattern["block"]
    if block is None:
        block = empty_block()
    elif block is pattern["observed_block"]:
        block = json.loads(json.dumps(block))
    pattern["block"] = block
    return block


def _upsert(items: list[dict], item: dict, key: tuple[str, ...]) -> None:
    wanted = tuple(item[k] for k in key)
    for existing in items:
        if tuple(existing.get(k) for k in key) == wanted:
            existing.update(item)
            return
    items.append(item)


_HANDLERS = {
    "GardenObserved": _observed,
    "ExternalEditObserved": _observed,
    "LinkProposed": _proposed,
    "EntityProposed": _proposed,
    "ProposalAccepted": _accepted,
    "ProposalRejected": _rejected,
    "LinkRescored": _rescored,
    "LinkPruned": _pruned("inferred_links", ("target", "type"), ("target", "link_type")),
    "EntityPruned": _pruned("entities", ("id",), ("entity_id",)),
    "CommunityPruned": _pruned("communities", ("id",), ("community_id",)),
    "BlockWriteStarted": _write_started,
    "BlockWritten": _written,
    "ProposerCalled": _called,
    "ProposalDeferred": _called,
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
            start, text = snap
            state = State.from_json(text)
    folded = 0
    for row in store.rows(after=start, until=until):
        apply(state, row)
        folded += 1
    if until is not None and state.seq < until:
        state.seq = min(until, store.head_seq())
    if use_snapshots and until is None and folded >= SNAPSHOT_EVERY:
        store.save_snapshot(state.seq, FOLD_VERSION, state.to_json())
    return state
