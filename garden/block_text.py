"""Writing a block over an old one item by item: an item whose value did not change keeps its lines.

A fresh emission (`garden.block.emit_block`) restyles every item of a block written in another
style (single-quoted reasons, `strength:` links, plain-string entities): one new link would then
change every line of the block. Here the old block's text is cut into its parts with the YAML
node marks (libyaml's composer reports the line each key and each list item starts on): the
`graph_garden:` line, each key's lines, each list item's lines (from its `-` to the line before
the next item or key). The new text keeps the old key order; each new item equal to an old one
(as read, so a legacy item untouched stays as written) takes that item's lines byte for byte;
every other item, and a changed `last_pruned`, is emitted in the usual style at the block's own
indentation; removed items' lines go.

It only proposes text: the caller (`garden.document.replace_block`) parses the file again and
falls back to the fresh emission when the text does not read back as the intended block, and
`None` here means "cannot cut this block safely" (a comment where a key should be, mixed line
ends, ...). A flow-style list (`entities: [a, b]`) is kept whole while it is unchanged and
written in block style once it changes.
"""

from __future__ import annotations

import re

import yaml

from garden import yaml_fast
from garden.block import DEFAULT_LINK_TYPE, LISTS, emit_item, scalar
from garden.model import GardenBlock

_HEADER = re.compile(r"graph_garden *:( +#.*)? *")  # kept as written, comment and all


def emit_block_over(old_text: str, old_block: GardenBlock, block: GardenBlock, *,
                    indentless: bool = False) -> str | None:
    """`block` as text (with `\\n` line ends) that keeps the lines of every item of `old_text`
    (an existing block's text, `\\n` line ends, which reads as `old_block`) whose value did not
    change; None when the old text cannot be cut into items safely."""
    parts = _cut(old_text, old_block)
    if parts is None:
        return None
    header, keys, indent, old_block = parts
    out = [header]
    seen = {name for name, _, _ in keys}
    if "last_pruned" not in seen and block.last_pruned is not None:
        out.append(f"{indent}last_pruned: {scalar(block.last_pruned)}")
    for name, lines, items in keys:
        if name == "last_pruned":
            if block.last_pruned is None:
                continue
            if block.last_pruned == old_block.last_pruned:
                out.extend(lines)
            elif all(not line.strip() or line.lstrip().startswith("#") for line in lines[1:]):
                out.append(f"{indent}last_pruned: {scalar(block.last_pruned)}")
                out.extend(lines[1:])  # blank or comment lines below it stay
            else:
                return None
            continue
        out.extend(_list_lines(name, lines, items, getattr(old_block, name), getattr(block, name),
                               indent, indentless))
    for name in LISTS:
        if name not in seen and getattr(block, name):
            out.extend(_list_lines(name, [], [], (), getattr(block, name), indent, indentless))
    return "\n".join(out) + "\n"


def _list_lines(name, head, old_segments, old_items, new_items, indent, indentless) -> list[str]:
    if old_segments is None:  # a flow-style list: `name: [a, b]`
        if tuple(new_items) == tuple(old_items):
            return head
        head, old_segments, old_items = [], [], ()
    if not new_items:
        if not old_items and head:
            return head  # `name: []` (or a bare `name:`) as it was
        return [f"{indent}{name}: []"]
    if old_segments:  # new items go where the old ones stand
        column = len(old_segments[0][0]) - len(old_segments[0][0].lstrip(" "))
    else:
        column = len(indent) + (0 if indentless else 2)
    dash, cont = " " * column + "- ", " " * (column + 2)
    if old_segments:
        lines = list(head)
    else:  # `name: []` (or no key at all) becomes `name:` and its items
        lines = [f"{indent}{name}:"]
    free = list(range(len(old_items)))
    for item in new_items:
        match = next((i for i in free if old_items[i] == item), None)
        if match is None:
            lines.extend(emit_item(name, _as_typed_before(name, item, old_items, old_segments), dash, cont))
        else:
            free.remove(match)
            lines.extend(old_segments[match])
    return lines


def _as_typed_before(name: str, item, old_items, old_segments):
    """A link the old text gave no `type:` (a legacy `strength:` link, read as the default type)
    keeps having none when only its values change: the default is the reader's, not evidence
    anyone wrote down, and the text should not claim it."""
    if name != "inferred_links" or item.type != DEFAULT_LINK_TYPE:
        return item
    for old, segment in zip(old_items, old_segments):
        if old.target == item.target and old.type == item.type and not any(
                line.strip().removeprefix("- ").startswith("type:") for line in segment):
            return item.model_copy(update={"type": None})
    return item


def _cut(text: str, old_block: GardenBlock):
    """The old block's parts: its first line, its keys in order as (name, lines, item segments)
    (for a block-style list: the lines before its first item, and each item's lines; for a
    flow-style one, all its lines and None), the keys' indentation
    and the old block. None when anything is unusual enough not to risk it."""
    if "\r" in text or "\t" in text:
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not _HEADER.fullmatch(lines[0]):
        return None
    try:
        root = yaml_fast.compose_yaml(text)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode) or len(root.value) != 1:
        return None
    mapping = root.value[0][1]
    if not isinstance(mapping, yaml.MappingNode) or mapping.flow_style or not mapping.value:
        return None
    names = [key.value for key, _ in mapping.value]
    if len(set(names)) != len(names):
        return None  # a key twice: loaders keep the last one silently
    starts = [key.start_mark.line for key, _ in mapping.value]
    if starts[0] != 1 or any(k.start_mark.column != mapping.value[0][0].start_mark.column
                             for k, _ in mapping.value):
        return None  # a comment or a blank line before the first key; keys not in one column
    indent = lines[1][: mapping.value[0][0].start_mark.column]
    if indent.strip():
        return None
    keys = []
    for n, (key, value) in enumerate(mapping.value):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        own = lines[starts[n]:end]
        name = key.value
        if name not in LISTS or not isinstance(value, yaml.SequenceNode) or not value.value:
            keys.append((name, own, []))
            continue
        if value.flow_style:  # kept whole when the list is unchanged, else emitted afresh
            keys.append((name, own, None))
            continue
        items = getattr(old_block, name)
        if len(items) != len(value.value):
            return None
        item_starts = [node.start_mark.line for node in value.value]
        if any(not lines[i].lstrip(" ").startswith("- ") for i in item_starts):
            return None  # an item whose first field is not on its dash's line
        bounds = item_starts + [end]
        segments = [lines[bounds[i]:bounds[i + 1]] for i in range(len(item_starts))]
        keys.append((name, lines[starts[n]:item_starts[0]], segments))
    return lines[0], keys, indent, old_block
