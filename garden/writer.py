"""Writing a `graph_garden` block back into its file: atomically, and never over someone's edit.

The file is read again and its hash compared with the hash the caller read; if a person (or
another process) changed it in between, nothing is written and `WriteConflictError` says so.
The new bytes go to a temporary file in the same folder, are fsynced, get the original file's
mode, and replace the file with one rename: a crash leaves the old file or the new one, never half.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from garden.block import read_block
from garden.document import (
    adds_banner,
    hash_bytes,
    parse_document,
    put_block_text,
    rebuild_document,
    replace_block,
)
from garden.errors import PatternError, WriteConflictError, display_path
from garden.model import GardenBlock, Pattern


@dataclass(frozen=True, slots=True)
class WriteResult:
    path: Path
    written: bool
    old_hash: str
    new_hash: str


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """New bytes for a file, ready to go, and the hash the file must still have."""

    path: Path
    data: bytes
    old_hash: str
    new_hash: str
    banner_added: bool = False  # a GROUP 6 banner goes in with the block


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
        doc = rebuild_document(path, raw, pattern.frontmatter, pattern.layout, shown)
        current = pattern.block
    else:
        doc = parse_document(path, raw, shown)
        current = read_block(doc.data.get("graph_garden"))[0] if doc.block_span else None
    if doc.block_span is not None and current is None:
        raise PatternError(f"{shown}: its graph_garden block did not parse; not written")
    if current == block:
        return None
    if text is not None or block is None:
        new, banner = put_block_text(doc, text, block, drop_banner), False
    else:
        new, banner = replace_block(doc, block), adds_banner(doc)
    return PreparedWrite(path, new, old_hash, hash_bytes(new), banner)


def commit_write(prepared: PreparedWrite, sync_dir: bool = True) -> None:
    """Write prepared bytes, unless the file changed since they were prepared.

    With `sync_dir=False` the caller fsyncs the folder itself (`sync_directory`), once for many
    files, before it relies on the renames having reached the disk.
    """
    if hash_bytes(prepared.path.read_bytes()) != prepared.old_hash:
        raise WriteConflictError(
            f"{display_path(prepared.path)}: changed on disk while graph-garden was writing; "
            "not written (run again to pick up the edit)"
        )
    atomic_write(prepared.path, prepared.data, sync_dir)


def write_block(path: Path, block: GardenBlock, expected_hash: str | None = None) -> WriteResult:
    """Put `block` into the file at `path`, unless the file already holds an equal block.

    `expected_hash` is the sha256 of the bytes the caller based its decision on; when given and
    the file no longer has it, the write is refused.
    """
    prepared = prepare_write(path, block, expected_hash)
    if prepared is None:
        old = hash_bytes(Path(path).read_bytes())
        return WriteResult(Path(path), False, old, old)
    commit_write(prepared)
    return WriteResult(prepared.path, True, prepared.old_hash, prepared.new_hash)


def atomic_write(path: Path, data: bytes, sync_dir: bool = True) -> None:
    """Replace `path` with `data` in one rename, keeping the file's mode."""
    directory = path.parent
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if sync_dir:
        sync_directory(directory)


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
