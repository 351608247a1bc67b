"""Writing the projection back into the files, for every step that changes blocks.

Files go in groups: every write in a group is announced in one batch (BlockWriteStarted), made
(temporary files, one sync of the file system, exchanges), the folders fsynced once, then
confirmed in one batch (BlockWritten). A crash between the two is settled by the next observation. A file that changed
since it was read, or while it was being written (`garden.writer`), is not written: the conflict
is an error of the run, and the next observation records the edit and puts the log's unwritten
changes that it left alone on top of it (`garden.merge`). A pattern read through a symlink to
outside the garden (`Garden.read_only`) is never written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

from events.replay import projected_block
from events.parse_cache import ParseCache, encoded
from flows.helper import Helper, failure_note
from garden.catalog import Garden
from garden.errors import PatternError, WriteConflictError, display_path
from garden.event import BlockWriteStarted, BlockWritten, Event, event
from garden.model import GardenBlock, block_for_file
from garden.state import State
from garden.writer import PreparedWrite, commit_writes, discard_file, prepare_write, sync_directory

WRITE_GROUP = 200
#: Groups the flow prepares itself from the end, while a helper prepares from the front, and
#: keeps until their turn (`Helper.share`): 1,600 files' new bytes and cache entries at most.
HELD_GROUPS = 8


def write_changed_blocks(record: Callable[[list[Event]], None], garden: Garden, state: State,
                         today: dt.date, run_id: str | None, *, dry_run: bool = False,
                         only: Iterable[str] | None = None, stamp: bool = True,
                         cache: ParseCache | None = None, helper: Helper | None = None,
                         notes: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Write each block (of `only`, or of the whole garden) whose content the log changed,
    stamping last_pruned with `today`. Returns the slugs written and the errors.

    With `stamp` False (a revert), each block goes back exactly as the log has it: its own
    last_pruned, no block where it has none, and the text it was first seen with when it is
    that block again.

    With a parse `cache`, each file written goes into it as the pattern it now reads as (when that
    is known without parsing it: `garden.writer.pattern_after_write`), so the next command does
    not parse the files this one wrote.

    With a `helper` process (a tend's, `flows.helper`), the groups of files are prepared there
    while the one before is written here, and here from the end when the helper's next is not
    ready; a helper that fails leaves the rest here, and says so in `notes`.
    """
    todo = []
    errors: list[str] = []
    for slug in sorted(only if only is not None else garden.patterns):
        pattern = garden.patterns.get(slug)
        known = state.patterns.get(slug)
        if not known:
            continue
        if pattern is None:
            if only is not None:  # asked for by name (an accept, a revert): say it, never skip it
                errors.append(f"{slug}: its file is not in the garden now (moved, deleted, or it does not "
                              "load: see `garden check`); its block was not written")
            continue
        if slug in garden.read_only:
            if only is not None:  # asked for by name: say why, never write through the link
                errors.append(f"{garden.read_only[slug]}; its block was not written")
            continue
        block, text = projected_block(known)
        if not needs_write(block, pattern.block):
            continue
        projected = block_for_file(block, pattern.block is not None)
        if stamp:  # a tend's or a decision's write: today's date goes in with the changes
            todo.append((slug, pattern, known.content_hash,
                         None if projected is None else projected.model_copy(update={"last_pruned": today}),
                         None, known.banner_added))
        else:
            todo.append((slug, pattern, known.content_hash, projected, text if projected == block else None,
                         known.banner_added))
    written: list[str] = []
    groups = [todo[start : start + WRITE_GROUP] for start in range(0, len(todo), WRITE_GROUP)]
    with_problems = {problem.path for problem in garden.problems}
    # The versions replaced are deleted by a thread while the next group is prepared; all of
    # them before this returns (a crash leaves temporary files, which the next tend removes).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="garden-discard") as deleting:
        for group, outcomes in zip(groups, _prepared(groups, cache is not None and not dry_run, helper, notes)):
            parsed: list[tuple[Path, str, bytes]] = []  # each file written: its hash, its cache entry
            _write_group(record, group, outcomes, run_id, dry_run, written, errors,
                         lambda path: deleting.submit(discard_file, path), parsed)
            for path, new_hash, entry in parsed if cache is not None else ():
                shown = display_path(path)
                if shown not in with_problems:
                    cache.put_encoded(cache.key(new_hash, path, shown), entry)
    if cache is not None:
        cache.save(forget=False)  # it read nothing: every other file's entry stays
    return written, errors


def needs_write(projected: GardenBlock | None, in_file: GardenBlock | None) -> bool:
    """Whether a file's block is behind the log's: any difference, last_pruned included (after a
    `revert --no-write` it may be all that differs), by `block_for_file`'s account."""
    return block_for_file(projected, in_file is not None) != in_file


def prepare_group(group: list[tuple], encode: bool = True) -> list[tuple[PreparedWrite, bytes | None] | str | None]:
    """`prepare_write` for each item of a group (slug, pattern, expected hash, block, text,
    drop_banner): the write with the parse cache's entry for the file it makes (`encoded`; None
    when only a parse would know it, or not `encode`), None (nothing to write), or the error's
    message. Plain values, so a helper process can prepare a group (`flows.helper`); the
    pattern made for the cache goes back encoded, not as a model to pickle and encode again."""
    outcomes: list[tuple[PreparedWrite, bytes | None] | str | None] = []
    for _, pattern, expected, block, text, drop_banner in group:
        try:
            ready = prepare_write(Path(pattern.path), block, expected, pattern, text, drop_banner)
            if ready is None:
                outcomes.append(None)
            else:
                entry = encoded((ready.parsed, [])) if encode and ready.parsed is not None else None
                outcomes.append((replace(ready, parsed=None), entry))
        except (WriteConflictError, PatternError) as e:
            outcomes.append(str(e))
        except OSError as e:  # gone or unreadable since the garden was loaded
            outcomes.append(f"{pattern.path}: cannot read it to write its block ({e.strerror or e}); not written")
    return outcomes


def _prepared(groups: list[list[tuple]], encode: bool, helper: Helper | None,
              notes: list[str] | None) -> Iterator[list]:
    """Each group's outcomes (`prepare_group`), in order: shared with the helper process when
    there is one (`Helper.share`: it prepares groups from the front while the flow writes,
    the flow prepares from the end when the helper's next is not ready), here when there is
    none; a helper that fails leaves the rest here, and says so in `notes`."""
    prepare = partial(prepare_group, encode=encode)
    if helper is None:
        yield from map(prepare, groups)
        return

    def said(error: BaseException) -> None:
        if notes is not None:
            notes.append(failure_note(error, "prepared those files and the rest"))

    yield from helper.share(prepare, groups, most_held=HELD_GROUPS, on_failure=said)


def _write_group(record, group, outcomes, run_id, dry_run, written, errors, discard, parsed) -> None:
    prepared = []
    for (slug, pattern, _, block, _, _), outcome in zip(group, outcomes):
        if isinstance(outcome, str):
            errors.append(outcome)
        elif outcome is not None:
            ready, entry = outcome
            prepared.append((slug, pattern, ready, block, entry))
    if dry_run:
        written.extend(item[0] for item in prepared)
        return

    def payload(kind, pattern, ready, block, _entry):
        return kind(path=pattern.path, content_hash=ready.new_hash, previous_hash=ready.old_hash,
                    last_pruned=None if block is None else block.last_pruned, banner_added=ready.banner_added)

    record([event(payload(BlockWriteStarted, *item[1:]), slug=item[0], run_id=run_id) for item in prepared])
    done, folders = [], set()
    for item, outcome in zip(prepared, commit_writes([item[2] for item in prepared], discard)):
        if isinstance(outcome, WriteConflictError):
            errors.append(str(outcome))
        elif isinstance(outcome, OSError):
            errors.append(f"{display_path(Path(item[1].path))}: cannot write it ({outcome.strerror or outcome}); "
                          "not written")
        else:
            folders.add(outcome)
            done.append(item)
            if item[4] is not None:
                parsed.append((Path(item[1].path), item[2].new_hash, item[4]))
    for directory in folders:
        sync_directory(directory)
    record([event(payload(BlockWritten, *item[1:]), slug=item[0], run_id=run_id) for item in done])
    written.extend(item[0] for item in done)
