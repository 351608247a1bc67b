"""Old events read as the current schema: one upcaster per schema version, applied in turn.

The log is never rewritten: an event keeps the schema version it was recorded with, and a
reader (the fold in `garden.state`, `row_to_event`) brings its payload up to `SCHEMA_VERSION`
here before using it. So the fold reads every field it needs by name, with no fallbacks for
events that predate a field, and a change to a payload's shape is one new upcaster.

Versions:
1. Fields were added over time with defaults (`prompt_version`, `raw_confidence`, a prune's
   score, a write's `banner_added`, a decision's `policy` ...) and events from before each one
   simply lack it. A prune without its score removed the first item with its key.
2. Every payload is complete: each field is present, with its default if it has nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

from garden.event import SCHEMA_VERSION, AnyPayload

Payload = dict[str, Any]


def _defaults() -> dict[str, dict[str, Any]]:
    """Each payload type's fields that have a default, with it."""
    found: dict[str, dict[str, Any]] = {}
    for model in get_args(get_args(AnyPayload)[0]):
        fields = model.model_fields
        found[fields["type"].default] = {
            name: f.get_default(call_default_factory=True) for name, f in fields.items()
            if name != "type" and not f.is_required()}
    return found


_DEFAULTS = _defaults()


_SCORES = {"LinkPruned": "confidence", "EntityPruned": "relevance", "CommunityPruned": "confidence"}


def _complete(kind: str, payload: Payload) -> Payload:
    """1 -> 2: the fields an event lacks, at their defaults (a fresh copy of each); a prune
    without its item's score is marked unscored (it removes the first item with its key)."""
    if kind in _SCORES and _SCORES[kind] not in payload:
        payload = {**payload, "scored": False}
    missing = {name: (value.copy() if isinstance(value, (dict, list)) else value)
               for name, value in _DEFAULTS.get(kind, {}).items() if name not in payload}
    return {**payload, **missing} if missing else payload


# version -> the upcaster that reads an event of that version as the next one
UPCASTERS: dict[int, Callable[[str, Payload], Payload]] = {
    1: _complete,
}

assert sorted(UPCASTERS) == list(range(1, SCHEMA_VERSION)), "an upcaster for every old version"


def upcast(kind: str, version: int, payload: Payload) -> Payload:
    """`payload` of an event of type `kind` recorded at schema `version`, as the current one."""
    while version < SCHEMA_VERSION:
        payload = UPCASTERS[version](kind, payload)
        version += 1
    return payload
