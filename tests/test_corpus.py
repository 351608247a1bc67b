"""The real library sample: every file parses or fails clearly, and a no-op write changes 0 bytes.

Skips when ../shared/corpus/patterns is not beside the repository (a user's clone).
"""

from __future__ import annotations

import shutil

from conftest import CORPUS, SEEDS, needs_corpus
from garden.catalog import load_garden, pattern_files
from garden.document import hash_bytes
from garden.writer import commit_write, prepare_write


def no_op_write_everything(root):
    garden = load_garden(root)
    before = {p: p.read_bytes() for p in pattern_files(root)}
    written = 0
    for pattern in garden.patterns.values():
        if pattern.block is not None:
            ready = prepare_write(pattern.path, pattern.block, pattern.content_hash, pattern)  # as flows.writing
            if ready is not None:
                commit_write(ready)
                written += 1
    changed = [p for p, raw in before.items() if p.read_bytes() != raw]
    return garden, written, changed


def test_seed_patterns_parse_cleanly_and_a_no_op_write_changes_nothing(tmp_path):
    shutil.copytree(SEEDS, tmp_path / "g")
    garden, written, changed = no_op_write_everything(tmp_path / "g")
    assert garden.problems == [] and len(garden.patterns) == 3
    assert (written, changed) == (0, [])


@needs_corpus()
def test_every_corpus_file_parses_or_fails_clearly_and_no_op_changes_nothing(tmp_path):
    shutil.copytree(CORPUS, tmp_path / "g")
    garden, written, changed = no_op_write_everything(tmp_path / "g")
    assert garden.files == 600
    assert len(garden.patterns) + len(garden.failed_files()) + garden.skipped == garden.files
    for problem in garden.problems:
        assert problem.line >= 1 and problem.col >= 1 and problem.message
    assert (written, changed) == (0, [])
    summary = garden.summary()
    assert (summary["v7_1"], summary["legacy"], summary["with_block"]) == (354, 246, 354)
    codes = {p.code for p in garden.problems}
    assert {"legacy-date", "legacy-entity", "legacy-community", "legacy-link", "type-alias"} <= codes


@needs_corpus()
def test_a_block_written_into_every_corpus_file_reads_back(tmp_path):
    from garden.document import parse_document, read_document_block
    from garden.model import GardenBlock, InferredLink
    import datetime as dt

    shutil.copytree(CORPUS, tmp_path / "g")
    garden = load_garden(tmp_path / "g")
    for pattern in garden.patterns.values():
        block = (pattern.block or GardenBlock()).model_copy(update={
            "last_pruned": dt.date(2026, 11, 22),
            "inferred_links": (InferredLink(target="x", type="enables", confidence=0.9, reason="r"),),
        })
        result = prepare_write(pattern.path, block, pattern.content_hash, pattern)
        assert result is not None
        commit_write(result)
        raw = open(pattern.path, "rb").read()
        assert hash_bytes(raw) == result.new_hash
        read, _ = read_document_block(parse_document(pattern.path, raw))
        assert read == block
