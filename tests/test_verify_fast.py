"""The write check that composes the spliced frontmatter and constructs only the block
(`garden.document._spliced_alone_reads_right`): wherever it says "reads right", the whole
parse agrees; wherever a splice could change another key, the body, or the frontmatter's end,
it says "parse it all" and the whole parse decides (and refuses what it must)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from conftest import CORPUS, SEEDS, needs_corpus
from garden import document
from garden.block import emit_block, read_block
from garden.catalog import pattern_files
from garden.errors import PatternError
from garden.model import GardenBlock, InferredLink

NEW_LINK = InferredLink(target="zz-elsewhere", type="enables", confidence=0.71, reason="R&D, *not* é")


def with_block(path: Path):
    """A parsed file with a block, its block, and a changed block."""
    doc = document.parse_document(path, path.read_bytes())
    current = read_block(doc.data.get("graph_garden"))[0] if doc.block_span else None
    new = (current or GardenBlock()).model_copy(update={
        "last_pruned": dt.date(2026, 12, 1),
        "inferred_links": (*(current.inferred_links if current else ()), NEW_LINK)})
    return doc, current, new


def spliced(doc, text: str) -> tuple[str, tuple[int, int]]:
    start, end = doc.block_span
    return doc.text[:start] + text + doc.text[end:], (start, start + len(text))


def full_check_passes(doc, new_text: str, block) -> bool:
    try:
        document._verify(doc, new_text, block)  # no region: the whole parse
    except PatternError:
        return False
    return True


def seed() -> Path:
    return next(p for p in sorted(SEEDS.glob("*.md")) if "graph_garden:" in p.read_text(encoding="utf-8"))


def test_a_block_emitted_in_place_reads_right_by_the_fast_check_and_the_whole_parse():
    doc, _, new = with_block(seed())
    new_text, region = spliced(doc, emit_block(new))
    assert document._spliced_alone_reads_right(doc, new_text, new, region)
    assert full_check_passes(doc, new_text, new)


@pytest.mark.parametrize("tail, why", [
    ("extra_key: 1\n", "a new top-level key"),
    ("title: changed\n", "another key's value"),
    ("---\n", "the frontmatter would end early"),
])
def test_a_splice_that_reaches_outside_the_block_is_left_to_the_whole_parse_which_refuses_it(tail, why):
    doc, _, new = with_block(seed())
    new_text, region = spliced(doc, emit_block(new) + tail)
    assert not document._spliced_alone_reads_right(doc, new_text, new, region), why
    with pytest.raises(PatternError, match="would not read back as written"):
        document._verify(doc, new_text, new, region)


def test_a_block_without_its_last_newline_runs_into_the_next_key_and_is_refused(tmp_path):
    path = tmp_path / "small.md"
    path.write_text("---\ntitle: Small\ngraph_garden:\n  last_pruned: 2026-11-22\nnext: 1\n---\nBody.\n")
    doc, _, new = with_block(path)
    new_text, region = spliced(doc, emit_block(new).rstrip("\n"))
    assert not document._spliced_alone_reads_right(doc, new_text, new, region)
    with pytest.raises(PatternError):
        document._verify(doc, new_text, new, region)
    # Before a comment line instead, the same text may read right: then both checks say so.
    seeded, _, block = with_block(seed())
    new_text, region = spliced(seeded, emit_block(block).rstrip("\n"))
    if document._spliced_alone_reads_right(seeded, new_text, block, region):
        assert full_check_passes(seeded, new_text, block)


def test_an_anchor_in_the_block_with_an_alias_outside_is_left_to_the_whole_parse():
    doc, _, new = with_block(seed())
    text = emit_block(new).replace("graph_garden:\n", "graph_garden: &gg\n", 1)
    new_text, region = spliced(doc, text)
    end = doc.fm_end + len(new_text) - len(doc.text)
    aliased = new_text[:end] + "copied: *gg\n" + new_text[end:]
    assert not document._spliced_alone_reads_right(doc, aliased, new, region)


def test_a_block_that_reads_differently_is_refused_by_the_fast_check_too():
    doc, current, new = with_block(seed())
    new_text, region = spliced(doc, emit_block(current))  # the old block, said to be the new one
    assert not document._spliced_alone_reads_right(doc, new_text, new, region)
    with pytest.raises(PatternError, match="the block reads back differently"):
        document._verify(doc, new_text, new, region)


@needs_corpus()
def test_on_every_corpus_file_the_fast_verdict_is_the_whole_parse_s():
    checked = fast = 0
    for path in pattern_files(CORPUS):
        try:
            doc, current, new = with_block(path)
        except PatternError:
            continue
        if doc.block_span is None or current is None:
            continue
        for block in (new, current, None):
            text = emit_block(block) if block is not None else ""
            new_text, region = spliced(doc, text)
            verdict = document._spliced_alone_reads_right(doc, new_text, block, region)
            if verdict:
                assert full_check_passes(doc, new_text, block), path
                fast += 1
            checked += 1
    assert checked > 600 and fast > 0.9 * checked  # the fast check settles nearly every write
