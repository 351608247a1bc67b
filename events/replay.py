"""Putting the projection back into files: replay into a folder, and compare with the garden.

Replay keeps each file's body and the rest of its frontmatter as they are now and puts the
projected block in. A block the log has not changed since it was observed comes back as its
original text, so a legacy-styled block is not restyled by a replay.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from garden.catalog import Garden, pattern_files
from garden.document import parse_document, put_block
from garden.errors import GardenError, display_path
from garden.model import GardenBlock, block_for_file
from garden.writer import atomic_write

from garden.state import PatternState, State, as_block


@dataclass(frozen=True, slots=True)
class Difference:
    slug: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.slug}: {self.message}"

    def to_dict(self) -> dict:
        return {"slug": self.slug, "path": self.path, "message": self.message}


def projected_block(pattern_state: PatternState) -> tuple[GardenBlock | None, str | None]:
    """The block the projection gives a pattern, and the exact text it once had in the file
    when the log knows it (None: emit it afresh). What a replay and a revert write back."""
    block = as_block(pattern_state.block)
    return block, pattern_state.exact_text(block)


def projected_bytes(pattern_state: PatternState, path: Path, raw: bytes, drop_banner: bool = False) -> bytes:
    """The file at `path` (currently `raw`) with the block the projection gives it.

    `drop_banner`: the file's current block came with a GROUP 6 banner graph-garden put in, to
    go with it when the projection has no block."""
    doc = parse_document(path, raw, display_path(path))
    block, text = projected_block(pattern_state)
    if block_for_file(block, doc.block_span is not None) is None and doc.block_span is None:
        return raw  # no block, and none to put in
    return put_block(doc, block, text, drop_banner)[0]


def replay_into(state: State, garden: Garden, out: Path, banners: set[str] = frozenset()) -> int:
    """Write the garden, as the log says it was, into `out` (a copy of the garden's folder).

    Files the log does not know, and files that are not patterns, are copied as they are.
    `banners`: the patterns whose block in the file now came with a banner graph-garden put in.
    Returns the number of pattern files written from the projection.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise GardenError(f"{display_path(out)}: not empty; replay writes into a new or empty folder")
    if out.resolve() == garden.root.resolve():
        raise GardenError("--out must not be the garden itself; replay writes a copy")
    shutil.copytree(garden.root, out, dirs_exist_ok=True)
    by_path = {Path(p.path).resolve(): slug for slug, p in garden.patterns.items()}
    written = 0
    for path in pattern_files(garden.root):
        slug = by_path.get(path.resolve())
        if slug is None or slug not in state.patterns:
            continue
        target = out / path.relative_to(garden.root)
        new = projected_bytes(state.patterns[slug], path, path.read_bytes(), slug in banners)
        if new != target.read_bytes():
            atomic_write(target, new)
        written += 1
    return written


def compare(state: State, garden: Garden) -> list[Difference]:
    """Every way the files in place differ from the projection."""
    found: list[Difference] = []
    for slug in sorted(garden.patterns):
        pattern = garden.patterns[slug]
        shown = display_path(Path(pattern.path))
        known = state.patterns.get(slug)
        if known is None:
            found.append(Difference(slug, shown, "not in the log yet (run `garden observe`)"))
            continue
        projected = block_for_file(as_block(known.block), pattern.block is not None)
        if projected != pattern.block:
            found.append(Difference(slug, shown, describe(pattern.block, projected)))
        elif known.content_hash != pattern.content_hash:
            found.append(Difference(slug, shown, "file edited since the log last saw it "
                                    "(block unchanged; `garden observe` records it)"))
    for slug in sorted(set(state.patterns) - set(garden.patterns)):
        found.append(Difference(slug, state.patterns[slug].path, "in the log but no file has it"))
    return found


def describe(in_file: GardenBlock | None, projected: GardenBlock | None) -> str:
    """What the projection would change in the file's block, in a few words."""
    if in_file is None:
        return "the file has no graph_garden block; the log has one"
    if projected is None:
        return "the file has a graph_garden block; the log has none"
    parts = []
    if in_file.last_pruned != projected.last_pruned:
        parts.append(f"last_pruned {in_file.last_pruned} in the file, {projected.last_pruned} in the log")
    for name, key in (("inferred_links", ("target", "type")), ("entities", ("id",)),
                      ("communities", ("id",))):
        mine = {tuple(getattr(i, k) for k in key): i for i in getattr(in_file, name)}
        theirs = {tuple(getattr(i, k) for k in key): i for i in getattr(projected, name)}
        only_file = [k for k in mine if k not in theirs]
        only_log = [k for k in theirs if k not in mine]
        changed = [k for k in mine if k in theirs and mine[k] != theirs[k]]
        label = name.replace("_", " ")
        for keys, what in ((only_log, "missing from the file"), (only_file, "not in the log"),
                           (changed, "different")):
            if keys:
                parts.append(f"{label} {what}: " + ", ".join("/".join(map(str, k)) for k in keys))
    if not parts:
        parts.append("items in a different order")
    return "; ".join(parts)
