"""Putting back what a run changed, item by item, and diffs of blocks as text.

A block is compared as items: each link ("link target/type"), entity ("entity id") and community
("community id"); a second copy of the same item in one block is "... (copy 2)", and so on. A
run changed the items that differ between the block before it and after it; reverting puts
exactly those back (removing what it added, restoring what it pruned or changed) and leaves
every other item as it is now. Later changes to the same items are conflicts.
"""

from __future__ import annotations

import difflib

from garden.block import emit_block
from garden.model import GardenBlock, as_block

_KINDS = (("inferred_links", "link", ("target", "type")), ("entities", "entity", ("id",)),
          ("communities", "community", ("id",)))


def items(block: dict | None) -> dict[str, tuple[str, int, dict]]:
    """Every item of a block by key, with the list it is in and its position."""
    found: dict[str, tuple[str, int, dict]] = {}
    for name, label, fields in _KINDS:
        for position, item in enumerate((block or {}).get(name) or []):
            key = base = f"{label} " + "/".join(str(item.get(f)) for f in fields)
            copy = 1
            while key in found:
                copy += 1
                key = f"{base} (copy {copy})"
            found[key] = (name, position, item)
    return found


def changed_items(before: dict | None, after: dict | None) -> set[str]:
    a, b = items(before), items(after)
    return {key for key in a.keys() | b.keys() if (a.get(key) or (0, 0, None))[2] != (b.get(key) or (0, 0, None))[2]}


def restore_items(now: dict | None, before: dict | None, after: dict | None,
                  keys: set[str]) -> dict | None:
    """`now` with the items in `keys` as they were in `before` (absent there: removed).

    `last_pruned` goes back too, unless something after the run stamped it again; and a block
    the run created comes out again (None) when nothing else was put in it since.
    """
    if now is None and before is None:
        return None
    stamp = (now or {}).get("last_pruned")
    if stamp == (after or {}).get("last_pruned"):
        stamp = (before or {}).get("last_pruned")
    block = {"last_pruned": stamp,
             **{name: [dict(i) for i in (now or {}).get(name) or []] for name, _, _ in _KINDS}}
    old = items(before)
    current = items(block)
    for key in sorted(keys):
        if key in current:
            name, _, item = current[key]
            block[name] = [i for i in block[name] if i is not item]
    for key in sorted(keys, key=lambda k: old[k][1] if k in old else 0):
        if key in old:
            name, position, item = old[key]
            block[name].insert(min(position, len(block[name])), dict(item))
    if before is None and not any(block[name] for name, _, _ in _KINDS):
        return None
    return block


def block_text(block: dict | GardenBlock | None) -> str:
    block = as_block(block)
    return "" if block is None else emit_block(block)


def block_diff(slug: str, before, after) -> list[str]:
    """A unified diff of two blocks as they would be written."""
    return list(difflib.unified_diff(block_text(before).splitlines(), block_text(after).splitlines(),
                                     fromfile=f"a/{slug}", tofile=f"b/{slug}", lineterm="", n=2))
