"""Observing the garden: turning what the files hold into events, before anything else runs.

A pattern seen for the first time is recorded whole (GardenObserved), so the log is complete
from day one. A file whose bytes differ from the last hash the log knows was changed by someone
else: ExternalEditObserved records its block, and the projection follows the file (the person
wins), with the log's changes not yet written put on top where the person left those items
alone (`garden.merge`), so an accepted item is not lost to an edit made while it was being
written. A file whose hash is the last one the log knows is untouched, even if its block differs
from the projection: that is a write the pipeline has still to make, not an edit.
"""

from __future__ import annotations

from garden.catalog import Garden
from garden.event import BlockWritten, Event, ExternalEditObserved, GardenObserved, event
from garden.merge import merge_blocks
from garden.model import GardenBlock, Pattern

from garden.state import State, as_block


def block_data(block: GardenBlock | None) -> dict | None:
    return None if block is None else block.model_dump(mode="json")


def observe_garden(garden: Garden, state: State, run_id: str | None = None) -> list[Event]:
    """The events that bring the log up to date with the files (empty when nothing changed)."""
    if garden.as_logged:  # every file as the log last saw or wrote it (see garden_as_logged)
        return []
    found: list[Event] = []
    for slug in sorted(garden.patterns):
        # a pattern never written (see Garden.read_only) is what its file says, nothing on top
        observed = observe_pattern(garden.patterns[slug], state, run_id, merge=slug not in garden.read_only)
        if observed is not None:
            found.append(observed)
    return found


def observe_pattern(pattern: Pattern, state: State, run_id: str | None = None, merge: bool = True) -> Event | None:
    known = state.patterns.get(pattern.slug)
    if known is not None and known.content_hash == pattern.content_hash:
        return None  # the file as the log last saw or wrote it (most of a garden, every time)
    block = block_data(pattern.block)
    if known is None:
        payload = GardenObserved(
            path=pattern.path, format=pattern.format, content_hash=pattern.content_hash,
            text_hash=pattern.text_hash, block=block, block_text=pattern.block_text, title=pattern.title,
            domain=pattern.domain, curated=sorted(pattern.curated_targets()),
        )
    elif known.write_intent is not None and known.write_intent.content_hash == pattern.content_hash:
        intent = known.write_intent  # our own write, whose confirmation a crash cut off
        payload = BlockWritten(path=pattern.path, content_hash=pattern.content_hash,
                               previous_hash=intent.previous_hash,
                               last_pruned=intent.last_pruned,
                               banner_added=intent.banner_added)
    else:
        base = as_block(known.file_block)
        merged = merge_blocks(base, as_block(known.block) if merge else base, pattern.block)
        payload = ExternalEditObserved(
            path=pattern.path, content_hash=pattern.content_hash,
            previous_hash=known.content_hash, text_hash=pattern.text_hash, block=block,
            block_text=pattern.block_text, block_changed=pattern.block != base,
            merged=block_data(merged.block) if merged.kept else None, kept=list(merged.kept),
            yielded=list(merged.yielded), title=pattern.title, domain=pattern.domain,
            curated=sorted(pattern.curated_targets()),
        )
    return event(payload, slug=pattern.slug, run_id=run_id, actor="system")


