"""Property tests: any block round-trips through text, and writing it disturbs no other byte."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from garden.block import emit_block, read_block
from garden.document import parse_document, read_document_block
from garden.model import Community, Entity, GardenBlock, InferredLink
from garden.writer import commit_write, prepare_write

# Any Unicode a UTF-8 file can hold; surrogates cannot be encoded, so they cannot occur.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
NAME = TEXT.filter(lambda s: s.strip() != "")
SCORE = st.none() | st.floats(0, 1, allow_nan=False) | st.sampled_from([0.0, 1.0, 0.92, 0.1])
EXTRA = st.dictionaries(
    st.from_regex(r"x_[a-z]{1,6}", fullmatch=True), st.integers(-5, 5) | TEXT, max_size=2
)

entities = st.builds(
    lambda e, x: Entity(**e, **x),
    st.fixed_dictionaries({"id": NAME, "type": st.none() | NAME, "label": st.none() | TEXT,
                           "relevance": SCORE}),
    EXTRA,
)
communities = st.builds(
    lambda c: Community(**c),
    st.fixed_dictionaries({"id": NAME, "label": st.none() | TEXT,
                           "source": st.sampled_from([None, "taxonomy", "inferred"]),
                           "confidence": SCORE}),
)
links = st.builds(
    lambda l, x: InferredLink(**l, **x),
    st.fixed_dictionaries({"target": NAME, "type": st.sampled_from(["enables", "tools", "requires"]),
                           "confidence": SCORE, "reason": st.none() | TEXT}),
    EXTRA,
)
blocks = st.builds(
    GardenBlock,
    last_pruned=st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2100, 1, 1)),
    entities=st.lists(entities, max_size=4).map(tuple),
    communities=st.lists(communities, max_size=3).map(tuple),
    inferred_links=st.lists(links, max_size=4).map(tuple),
)

# Surrounding frontmatter: other keys in block or flow style, comments, blank lines.
OTHER_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def frontmatter_parts(draw):
    keys = draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True).filter(
        lambda k: k not in ("graph_garden", "slug")), unique=True, max_size=5))
    parts = [f"slug: p\n"]
    for key in keys:
        value = draw(OTHER_VALUE)
        unicode = draw(st.booleans())
        if draw(st.booleans()) and isinstance(value, (list, dict)):  # `key: [flow, style]`
            flow = yaml.safe_dump(value, default_flow_style=True, allow_unicode=unicode, width=10**6)
            dumped = f"{key}: {flow}"
        else:
            dumped = yaml.safe_dump({key: value}, default_flow_style=False, allow_unicode=unicode,
                                    width=draw(st.sampled_from([20, 80, 1000])))
        parts.append(dumped)
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(["\n", "# a comment: with --- in it\n", "# ═══ GROUP 7\n"])))
    return parts


@settings(max_examples=300, deadline=None)
@given(blocks)
def test_emitted_block_reads_back_identically(block):
    text = emit_block(block)
    read, findings = read_block(yaml.load(text, Loader=yaml.CSafeLoader)["graph_garden"])
    assert read == block
    # A YAML 1.2 reader (ruamel.yaml) sees the same values as the YAML 1.1 one.
    assert YAML(typ="safe", pure=True).load(text) == yaml.safe_load(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=st.none() | blocks, new=blocks, parts=frontmatter_parts(), where=st.integers(0, 10),
       body=TEXT, crlf=st.booleans(), bom=st.booleans(), indentless=st.booleans())
def test_write_then_read_returns_the_block_and_keeps_every_other_byte(
    old, new, parts, where, body, crlf, bom, indentless
):
    where = min(where, len(parts))
    block_text = emit_block(old, indentless=indentless) if old is not None else ""
    prefix = "---\n" + "".join(parts[:where])
    tail = "---\n" + body
    suffix = "".join(parts[where:]) + tail
    text = prefix + block_text + suffix
    if crlf:
        text, prefix, suffix, tail = (s.replace("\n", "\r\n") for s in (text, prefix, suffix, tail))
    raw = (("\ufeff" if bom else "") + text).encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.md"
        path.write_bytes(raw)
        ready = prepare_write(path, new)  # as flows.writing does, without a hash to hold the file to
        if ready is not None:
            commit_write(ready)
        after = path.read_bytes()
        doc = parse_document(path, after)
        read, _ = read_document_block(doc)
        assert read == new
        assert (ready is not None) == (old != new)
        decoded = after.decode("utf-8").removeprefix("\ufeff")
        if old is not None:
            assert decoded.startswith(prefix) and decoded.endswith(suffix)
        else:  # inserted before provenance or at the end: every original line is still there
            assert decoded.endswith(tail)
            assert {k: v for k, v in doc.data.items() if k != "graph_garden"} == yaml.safe_load(
                "".join(parts)
            )
