"""Writing a `graph_garden` block back into its file: atomically, and never over someone's edit.

The file is read again and its hash compared with the hash the caller read; if a person (or
another process) changed it in between, nothing is written and `WriteConflictError` says so.

The new bytes go to a temporary file beside the file, are fsynced and get the file's mode. Then,
as late as it can be done, the file is read and hashed once more, and the two are swapped with
one atomic exchange (`renameat2(RENAME_EXCHANGE)`, Linux): the old file now sits at the
temporary name, where it is hashed a last time. If it is not the file the block was prepared
from (a person saved during the write: in place, or with an editor's rename that landed just
before the exchange), the exchange is undone, which puts their file back untouched, and the
write is refused as a conflict. What remains is a save made through a descriptor opened before
the exchange and written after that last hash (see README, "Files, errors and writing back").
Where the exchange is unavailable (not Linux, an old kernel or glibc, a file system without
it), the last check is followed by a plain rename: an edit landing between the two is lost.

A symlinked pattern is written through: the file it points to gets the new bytes (atomically, in
its own folder) and the link stays a link. Whether a link may be written at all (one pointing
outside the garden may not) is the catalog's call (`garden.catalog`).

A crash leaves the old file or the new one, never half, and at worst a temporary file that the
next run removes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from garden.block import read_block
from garden.document import (
    Document, block_alone_after_write, block_layout, hash_bytes, parse_document, put_block, rebuild_document)
from garden.errors import PatternError, WriteConflictError, display_path
from garden.model import GardenBlock, Pattern


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """New bytes for a file, ready to go, and the hash the file must still have."""

    path: Path
    data: bytes
    old_hash: str
    new_hash: str
    banner_added: bool = False  # a GROUP 6 banner goes in with the block
    #: The pattern a parse of `data` would give (without its body), when that is known without
    #: parsing it: for the parse cache, so the next command does not parse a file we wrote.
    parsed: Pattern | None = None


def prepare_write(path: Path, block: GardenBlock | None, expected_hash: str | None = None,
                  pattern: Pattern | None = None, text: str | None = None,
                  drop_banner: bool = False) -> PreparedWrite | None:
    """The bytes `path` would have with `block` in it; None when its block already equals it.

    `block` None removes the block (and, with `drop_banner`, the GROUP 6 banner a write put in
    with it). Given `text` (a block as it was once written, which reads as
    `block`), that exact text goes in instead of a freshly emitted one.
    Raises WriteConflictError when the file no longer has `expected_hash` (someone edited it).
    Given the `pattern` read from these very bytes, the file is not parsed again.
    """
    path = Path(path)
    shown = display_path(path)
    raw = path.read_bytes()
    old_hash = hash_bytes(raw)
    if expected_hash is not None and old_hash != expected_hash:
        raise WriteConflictError(
            f"{shown}: changed on disk since it was read; not written (run again to pick up the edit)"
        )
    if pattern is not None and pattern.content_hash == old_hash:
        doc = rebuild_document(path, raw, pattern.frontmatter, pattern.layout, shown, pattern.block_alone)
        current = pattern.block
    else:
        doc = parse_document(path, raw, shown)
        current = read_block(doc.data.get("graph_garden"))[0] if doc.block_span else None
    if doc.block_span is not None and current is None:
        raise PatternError(f"{shown}: its graph_garden block did not parse; not written")
    if current == block:
        return None
    new, banner = put_block(doc, block, text, drop_banner, current)
    new_hash = hash_bytes(new)
    parsed = pattern_after_write(pattern, doc, new, new_hash, block) if pattern is not None and text is None else None
    return PreparedWrite(path, new, old_hash, new_hash, banner, parsed)


def pattern_after_write(pattern: Pattern, doc: Document, new: bytes, new_hash: str,
                        block: GardenBlock | None) -> Pattern | None:
    """What `read_pattern` would make of `new`, the bytes of `doc` (which read as `pattern`) with
    `block` freshly emitted into it, without parsing the YAML: the write check read the block
    back (`document._verify`) and nothing else of the frontmatter changed, so only the block, its
    text and place, and the hashes differ. None when a position the pattern keeps (its slug's
    line, a curated id's) lies after the first changed character, the new text's layout is
    not what the block says, or whether its block stands alone takes a parse to know."""
    if pattern.curated_ids:  # the garden may have put slugs for its ids: not what a parse gives
        return None
    text = new.decode("utf-8")
    if doc.bom:
        text = text[1:]
    layout = block_layout(text, doc.fm_start)
    if layout is None:
        return None
    fm_end, span = layout
    if (span is None) != (block is None):
        return None
    changed = _first_difference(doc.text, text)
    first_changed_line = text.count("\n", 0, changed) + 1
    if any(line >= first_changed_line for line in (pattern.slug_line, *(c.line for c in pattern.curated_ids))):
        return None
    alone = block_alone_after_write(doc, text, span)
    if alone is None:
        return None
    outside = text if span is None else text[: span[0]] + text[span[1]:]
    return pattern.model_copy(update={
        "block": block, "block_text": None if span is None else text[span[0]:span[1]], "body_utf8": None,
        "content_hash": new_hash, "text_hash": hash_bytes(outside.encode("utf-8")),
        "layout": (doc.fm_start, fm_end, *(span or (None, None))), "block_alone": alone})


def _first_difference(a: str, b: str) -> int:
    """The index of the first character where `a` and `b` differ (by halving: C-speed compares)."""
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while low < high:  # a[:low] == b[:low], and they differ somewhere before `high`
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def commit_write(prepared: PreparedWrite, sync_dir: bool = True) -> Path:
    """Write prepared bytes, unless the file changed since they were prepared.

    Returns the folder the file was written in (a symlink's target's folder). With
    `sync_dir=False` the caller fsyncs that folder itself (`sync_directory`), once for many
    files, before it relies on the write having reached the disk.
    """
    [outcome] = commit_writes([prepared])  # one file: the same mechanism as a group's
    if isinstance(outcome, Exception):
        raise outcome
    if sync_dir:
        sync_directory(outcome)
    return outcome


def commit_writes(prepared: list[PreparedWrite],
                  discard: Callable[[Path], None] | None = None) -> list[Path | WriteConflictError | OSError]:
    """Write many prepared files, each as `commit_write` does, for the cost of one sync: every
    new version goes to its temporary file first, all of them reach the disk together (one
    `syncfs` of the file system; an fsync each where there is none), and only then is each
    swapped in, after its last check. Per file, in order: the folder it was written in (fsync it
    with `sync_directory` before relying on the write), or the error that left it unwritten.
    A crash leaves each file old or new, never half, and at worst temporary files that the next
    run removes. `discard(path)` deletes each replaced version once it is known to be the one
    the block was prepared from (default: at once; a caller may hand the deletions to a thread:
    where the file system discards freed blocks synchronously, a deletion costs milliseconds)."""
    results: list[Path | WriteConflictError | OSError] = []
    staged: list[tuple[PreparedWrite, Path, Path] | None] = []
    for ready in prepared:
        try:
            path = write_target(ready.path)
            staged.append((ready, path, _temp_file(path, ready.data, sync=_syncfs is None)))
        except OSError as e:
            staged.append(None)
            results.append(e)
            continue
        results.append(path.parent)
    try:
        if _syncfs is not None:  # one sync per folder's file system (a garden has one, as a rule)
            for folder in {entry[1].parent for entry in staged if entry is not None}:
                _sync_file_system(folder)
    except OSError as e:  # nothing is swapped in that may not be on disk
        for i, entry in enumerate(staged):
            if entry is not None:
                _discard(entry[2])
                results[i] = e
        return results
    for i, entry in enumerate(staged):
        if entry is None:
            continue
        ready, path, tmp = entry
        try:
            _swap_in(ready, path, tmp)
        except (WriteConflictError, OSError) as e:
            results[i] = e
            _discard(tmp)  # what is left at the temporary name is ours: the new version, unused
        else:
            (discard or _discard)(tmp)
    return results


def write_target(path: Path) -> Path:
    """The file a write to `path` replaces: `path` itself, or the file a symlink points to."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _conflict(prepared: PreparedWrite) -> WriteConflictError:
    return WriteConflictError(
        f"{display_path(prepared.path)}: changed on disk while graph-garden was writing; "
        "not written (run again to pick up the edit)"
    )


def _swap_in(prepared: PreparedWrite, path: Path, tmp: Path) -> None:
    """Put `tmp` (the new bytes) in place of `path`, which must still hold the prepared-from
    bytes; refuse, leaving the file as it is, when it does not."""
    if _hash_file(path) != prepared.old_hash:
        raise _conflict(prepared)
    if not exchange(tmp, path):  # no atomic exchange here: the last check was just above
        os.replace(tmp, path)
        return
    # `tmp` now names the file that was in place a moment ago: deleted (by `_discard`) only
    # once it is known to be the file the block was prepared from.
    if _same(tmp, prepared.old_hash):
        return
    try:  # someone saved during the write: their file goes back, untouched
        back = exchange(tmp, path)
    except OSError:
        back = False
    if not back:
        kept = _keep(tmp, path)
        raise WriteConflictError(
            f"{display_path(prepared.path)}: changed on disk while graph-garden was writing, and "
            f"could not be put back; the new block is in the file and the version it replaced is "
            f"kept as {display_path(kept)} (compare the two, keep one, and run again)")
    if not _same(tmp, prepared.new_hash):
        # A third save replaced the file between the two exchanges: what now sits at the
        # temporary name is theirs, so it is kept beside the file, never deleted.
        kept = _keep(tmp, path)
        raise WriteConflictError(
            f"{display_path(prepared.path)}: changed on disk twice while graph-garden was writing; "
            f"not written, and the version that was replaced is kept as {display_path(kept)} "
            "(compare the two, keep one, and run again)"
        )
    raise _conflict(prepared)


def _same(path: Path, expected: str) -> bool:
    try:
        return _hash_file(path) == expected
    except OSError:
        return False


def _keep(tmp: Path, path: Path) -> Path:
    """Move a file that may be someone's work out of the temporary name, beside `path`."""
    kept = path.with_name(f"{path.name}.kept-{secrets.token_hex(3)}")
    os.rename(tmp, kept)
    return kept


def _hash_file(path: Path) -> str:
    return hash_bytes(path.read_bytes())


def _temp_file(path: Path, data: bytes, sync: bool = True) -> Path:
    """`data` in a new file beside `path`, with `path`'s mode; on disk (fsynced) unless the
    caller syncs it (`sync` False)."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        _discard(tmp)
        raise
    return tmp


def _discard(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def discard_file(tmp: Path) -> None:
    """Delete a replaced version left at a temporary name; one that cannot be deleted now is
    left for the next run's `remove_stale_temp_files`."""
    try:
        _discard(tmp)
    except OSError:
        pass


# --- the atomic exchange -------------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28 or later
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def _load_syncfs():
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return func


_syncfs = _load_syncfs()


def _sync_file_system(folder: Path) -> None:
    """Everything written to the file system `folder` is on, on disk (syncfs, Linux)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(folder))
    finally:
        os.close(fd)


def exchange(a: Path, b: Path) -> bool:
    """Swap two names atomically (both must exist). False where the system or the file system
    cannot (the caller falls back to a rename); other failures raise OSError."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def atomic_write(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Replace `path` with `data` in one rename, keeping the file's mode (no check: for files
    nobody else edits, such as a replay's copy)."""
    tmp = _temp_file(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    if sync_dir:
        sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """fsync a folder, so the renames made in it survive a power loss."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temp_files(root: Path) -> int:
    """Delete temporary files a killed writer left behind (call only while holding the lock)."""
    removed = 0
    for stale in Path(root).rglob(".*.md.*.tmp"):
        try:
            stale.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
