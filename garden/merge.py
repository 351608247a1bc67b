"""Merging a person's edit of a block with the changes the log has not written yet.

When a file is edited while the log holds changes to its block that are not in the file yet (an
item accepted, re-scored or pruned during a tend whose write the edit then refused), the person
wins for what they changed, and what they did not touch is not dropped: a three-way merge of
the block, item by item.

- base: the block as the file had it when graph-garden last saw or wrote it;
- ours: the log's block (the projection), with the unwritten changes;
- theirs: the block in the edited file.

An item the person added, changed or removed stays as they left it. An item they left as it was
takes the log's change (re-scored, or pruned). An item the log added and the person did not
also add goes in. Items keep the person's order; the log's additions follow. A block the person
left alone (they edited the rest of the file) is the log's block, exactly. Items are matched
by their key (a link's target and type, an entity's or community's id) and, for the rare block
that holds the same key twice, by which copy it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from garden.model import GardenBlock, Item

_LISTS = (("inferred_links", ("target", "type"), "link"), ("entities", ("id",), "entity"),
          ("communities", ("id",), "community"))


@dataclass(frozen=True, slots=True)
class Merge:
    block: GardenBlock | None
    kept: tuple[str, ...] = ()  # the log's changes put on top of the edit, e.g. "link -> x (enables)"
    yielded: tuple[str, ...] = ()  # the log's changes to items the person changed too (theirs won)


def merge_blocks(base: GardenBlock | None, ours: GardenBlock | None, theirs: GardenBlock | None) -> Merge:
    """The person's block (`theirs`) with the log's changes since `base` that it leaves alone."""
    if ours == base:
        return Merge(theirs)
    empty = GardenBlock()
    b, o, t = base or empty, ours or empty, theirs or empty
    kept: list[str] = []
    yielded: list[str] = []
    lists = {}
    for name, key, noun in _LISTS:
        lists[name] = _merge_items(getattr(b, name), getattr(o, name), getattr(t, name), key, noun,
                                   kept, yielded)
    if theirs == base:  # the person left the block alone (an edit of the body): the log's block, exactly
        return Merge(ours, tuple(kept), ())
    last_pruned = t.last_pruned if t.last_pruned != b.last_pruned else o.last_pruned
    merged = GardenBlock(last_pruned=last_pruned, **lists)
    if theirs is None and not kept:
        return Merge(None, (), tuple(yielded))
    if ours is None and not any(lists.values()) and merged.last_pruned is None:
        return Merge(None, tuple(kept), tuple(yielded))
    return Merge(merged, tuple(kept), tuple(yielded))


def _merge_items(base, ours, theirs, key, noun, kept: list[str], yielded: list[str]) -> tuple[Item, ...]:
    b, o, t = _keyed(base, key), _keyed(ours, key), _keyed(theirs, key)
    out: list[Item] = []
    for k, item in t.items():
        if k in b and item == b[k]:  # the person left it alone: the log's change stands
            if k not in o:
                kept.append(f"pruned {_describe(noun, k)}")
                continue
            if o[k] != b[k]:
                kept.append(f"re-scored {_describe(noun, k)}")
            out.append(o[k])
        else:  # the person added or changed it: theirs
            if k in o and o[k] != b.get(k) and o[k] != item:
                yielded.append(_describe(noun, k))
            out.append(item)
    for k, item in o.items():
        if k in t:
            continue
        if k not in b:
            kept.append(_describe(noun, k))
            out.append(item)
        elif item != b[k]:  # the person removed an item the log had changed: it stays removed
            yielded.append(_describe(noun, k))
    return tuple(out)


def _keyed(items, key) -> dict[tuple, Item]:
    """Items by (key values..., copy number), in order."""
    seen: dict[tuple, int] = {}
    out = {}
    for item in items:
        k = tuple(getattr(item, f) for f in key)
        n = seen[k] = seen.get(k, -1) + 1
        out[(*k, n)] = item
    return out


def _describe(noun: str, k: tuple) -> str:
    if noun == "link":
        return f"link -> {k[0]} ({k[1]})"
    return f"{noun} {k[0]}"
