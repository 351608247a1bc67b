"""Writing the projection back into the files, for every step that changes blocks.

Files go in groups: every write in a group is announced in one batch (BlockWriteStarted), made
(temporary file, fsync, rename), the folders fsynced once, then confirmed in one batch
(BlockWritten). A crash between the two is settled by the next observation. A file that changed
since it was read is not written: the edit is reported, and the next observation records it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path

from events.projection import State
from garden.catalog import Garden
from garden.errors import PatternError, WriteConflictError
from garden.event import BlockWriteStarted, BlockWritten, Event, event
from garden.model import GardenBlock
from garden.writer import commit_write, prepare_write, sync_directory

WRITE_GROUP = 200


def write_changed_blocks(record: Callable[[list[Event]], None], garden: Garden, state: State,
                         today: dt.date, run_id: str | None, *, dry_run: bool = False,
                         only: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """Write each block (of `only`, or of the whole garden) whose content the log changed,
    stamping last_pruned with `today`. Returns the slugs written and the errors."""
    todo = []
    for slug in sorted(only if only is not None else garden.patterns):
        pattern = garden.patterns.get(slug)
        known = state.patterns.get(slug)
        if pattern is None or not known:
            continue
        projected = None if known["block"] is None else GardenBlock.model_validate(known["block"])
        if projected is not None and needs_write(projected, pattern.block):
            todo.append((slug, pattern, known["content_hash"],
                         projected.model_copy(update={"last_pruned": today})))
    written: list[str] = []
    errors: list[str] = []
    for start in range(0, len(todo), WRITE_GROUP):
        _write_group(record, todo[start : start + WRITE_GROUP], today, run_id, dry_run, written, errors)
    return written, errors


def needs_write(projected: GardenBlock, in_file: GardenBlock | None) -> bool:
    if in_file is None:
        return bool(projected.entities or projected.communities or projected.inferred_links)
    strip = {"last_pruned": None}
    return projected.model_copy(update=strip) != in_file.model_copy(update=strip)


def _write_group(record, group, today, run_id, dry_run, written, errors) -> None:
    prepared = []
    for slug, pattern, expected, block in group:
        try:
            ready = prepare_write(Path(pattern.path), block, expected, pattern)
        except (WriteConflictError, PatternError) as e:
            errors.append(str(e))
            continue
        if ready is not None:
            prepared.append((slug, pattern, ready))
    if dry_run:
        written.extend(slug for slug, _, _ in prepared)
        return

    def payload(kind, pattern, ready):
        return kind(path=pattern.path, content_hash=ready.new_hash, previous_hash=ready.old_hash,
                    last_pruned=today)

    record([event(payload(BlockWriteStarted, pattern, ready), slug=slug, run_id=run_id)
            for slug, pattern, ready in prepared])
    done = []
    for slug, pattern, ready in prepared:
        try:
            commit_write(ready, sync_dir=False)
        except (WriteConflictError, OSError) as e:
            errors.append(str(e))
            continue
        done.append((slug, pattern, ready))
    for directory in {ready.path.parent for _, _, ready in done}:
        sync_directory(directory)
    record([event(payload(BlockWritten, pattern, ready), slug=slug, run_id=run_id)
            for slug, pattern, ready in done])
    written.extend(slug for slug, _, _ in done)
