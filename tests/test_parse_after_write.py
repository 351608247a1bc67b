"""A file a write changed goes into the parse cache as the pattern it now reads as, known without
parsing it (`garden.writer.pattern_after_write`); that pattern is exactly what a parse of the new
bytes gives, on every corpus file, for a changed block, a removed one, and one put into a file
without a block. And the tend after a tend parses nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from conftest import CORPUS, make_garden, needs_corpus, tend_in_process
from garden.catalog import pattern_files, read_files, read_pattern
from garden.document import hash_bytes, parse_document
from garden.errors import PatternError
from garden.model import GardenBlock, InferredLink
from garden.writer import prepare_write

NEW_LINK = InferredLink(target="zz-elsewhere", type="enables", confidence=0.71, reason="R&D, *not* é")


def parsed_fresh(path: Path, data: bytes):
    pattern, problems = read_pattern(parse_document(path, data))
    return pattern.model_copy(update={"body_utf8": None}), problems


def blocks_for(current: GardenBlock | None) -> list[GardenBlock | None]:
    changed = (current or GardenBlock()).model_copy(update={
        "last_pruned": dt.date(2026, 12, 1),
        "inferred_links": (*(current.inferred_links if current else ()), NEW_LINK)})
    return [changed, None] if current is not None else [changed]


def check_file(path: Path) -> tuple[int, int]:
    """(writes checked, writes whose pattern was known without parsing)."""
    _, pattern, problems = next(read_files(path.parent, [path], keep_bodies=False))
    if pattern is None or problems:
        return 0, 0
    checked = known = 0
    for block in blocks_for(pattern.block):
        try:
            ready = prepare_write(path, block, pattern.content_hash, pattern)
        except PatternError:
            continue
        if ready is None:
            continue
        checked += 1
        if ready.parsed is not None:
            fresh, fresh_problems = parsed_fresh(path, ready.data)
            assert ready.parsed == fresh and not fresh_problems, path
            assert ready.parsed.content_hash == hash_bytes(ready.data)
            known += 1
    return checked, known


def test_a_seed_s_pattern_after_a_write_is_what_a_parse_gives(tmp_path):
    make_garden(tmp_path / "patterns", 3)
    for path in pattern_files(tmp_path / "patterns"):
        checked, known = check_file(path)
        assert checked >= 1 and known == checked


@needs_corpus()
def test_on_every_corpus_file_the_pattern_after_a_write_is_what_a_parse_gives():
    checked = known = 0
    for path in pattern_files(CORPUS):
        c, k = check_file(path)
        checked, known = checked + c, known + k
    assert checked > 500 and known > 0.8 * checked, (checked, known)


@pytest.mark.parametrize("second_process", ["off", "on"])
def test_the_tend_after_a_tend_parses_no_file(tmp_path, monkeypatch, second_process):
    """With a helper process, the files' cache entries are made where they are prepared."""
    from garden import catalog

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GARDEN_SECOND_PROCESS", second_process)
    monkeypatch.setattr("flows.writing.WRITE_GROUP", 4)  # 7 groups: the helper's and the flow's
    make_garden(tmp_path / "patterns", 25)
    first = tend_in_process()
    assert first["files_written"] > 10 and first["second_process"] == (second_process == "on")
    parses = []
    real = catalog.parse_document
    monkeypatch.setattr(catalog, "parse_document", lambda *a, **k: parses.append(a[0]) or real(*a, **k))
    second = tend_in_process()
    assert second["files_written"] == 0
    assert parses == []


def test_a_cache_given_files_just_written_keeps_every_other_file_s_entry(tmp_path):
    """A full read forgets the entries of files it did not read (once they outnumber the live
    ones); a write step reads nothing, so its save must forget nothing."""
    from events.parse_cache import ParseCache

    make_garden(tmp_path / "patterns", 3)
    _, pattern, _ = next(read_files(tmp_path / "patterns", pattern_files(tmp_path / "patterns")[:1]))
    slim = pattern.model_copy(update={"body_utf8": None})
    def key(name):
        return ParseCache.key(f"hash-{name}", Path(f"/g/{name}.md"), f"{name}.md")

    cache = ParseCache(tmp_path / "cache.db")
    for i in range(300):
        cache.put(key(f"old{i}"), (slim, []))
    cache.save(forget=False)  # entries of a read of 300 files
    written = ParseCache(tmp_path / "cache.db")
    written.put(key("new1"), (slim, []))
    written.save(forget=False)
    later = ParseCache(tmp_path / "cache.db")
    assert later.get(key("old7")) is not None and later.get(key("new1")) is not None
    later.save()  # a read that saw two entries: now the rest are forgotten
    assert ParseCache(tmp_path / "cache.db").get(key("old8")) is None
