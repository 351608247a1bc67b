"""Observing the garden: turning what the files hold into events, before anything else runs.

A pattern seen for the first time is recorded whole (GardenObserved), so the log is complete
from day one. A file whose bytes differ from the last hash the log knows was changed by someone
else: ExternalEditObserved records its block, and the projection follows the file (the person
wins). A file whose hash is the last one the log knows is untouched, even if its block differs
from the projection: that is a write the pipeline has still to make, not an edit.
"""

from __future__ import annotations

from garden.catalog import Garden
from garden.event import BlockWritten, Event, ExternalEditObserved, GardenObserved, event
from garden.model import GardenBlock, Pattern

from events.projection import State


def block_data(block: GardenBlock | None) -> dict | None:
    return None if block is None else block.model_dump(mode="json")


def observe_garden(garden: Garden, state: State, run_id: str | None = None) -> list[Event]:
    """The events that bring the log up to date with the files (empty when nothing changed)."""
    found: list[Event] = []
    for slug in sorted(garden.patterns):
        observed = observe_pattern(garden.patterns[slug], state, run_id)
        if observed is not None:
            found.append(observed)
    return found


def observe_pattern(pattern: Pattern, state: State, run_id: str | None = None) -> Event | None:
    known = state.patterns.get(pattern.slug)
    block = block_data(pattern.block)
    if known is None:
        payload = GardenObserved(
            path=pattern.path, format=pattern.format, content_hash=pattern.content_hash,
            text_hash=pattern.text_hash, block=block, block_text=pattern.block_text,
        )
    elif known["content_hash"] == pattern.content_hash:
        return None
    elif (known.get("write_intent") or {}).get("content_hash") == pattern.content_hash:
        intent = known["write_intent"]  # our own write, whose confirmation a crash cut off
        payload = BlockWritten(path=pattern.path, content_hash=pattern.content_hash,
                               previous_hash=intent["previous_hash"],
                               last_pruned=intent["last_pruned"],
                               banner_added=intent.get("banner_added", False))
    else:
        payload = ExternalEditObserved(
            path=pattern.path, content_hash=pattern.content_hash,
            previous_hash=known["content_hash"], text_hash=pattern.text_hash, block=block,
            block_text=pattern.block_text, block_changed=not _same_block(block, known["block"]),
        )
    return event(payload, slug=pattern.slug, run_id=run_id, actor="system")


def _same_block(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return GardenBlock.model_validate(a) == GardenBlock.model_validate(b)
