"""Pattern files: bad input gets a placed error, and writing a block touches no other byte."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from events.parse_cache import ParseCache
from garden.catalog import load_garden
from garden.document import adds_banner, hash_bytes, parse_document, read_document_block, replace_block
from garden.errors import PatternError, WriteConflictError
from garden.model import Entity, GardenBlock, InferredLink
from garden.writer import PreparedWrite, commit_write, prepare_write

def put(path: Path, block: GardenBlock, expected_hash: str | None = None) -> PreparedWrite | None:
    """A block into a file as the tend and the curator commands put it (`flows.writing`):
    prepared, then committed; None when the file already holds it."""
    ready = prepare_write(path, block, expected_hash)
    if ready is not None:
        commit_write(ready)
    return ready


LEGACY = """---
id: pat_1
title: Acceleration Clauses
slug: {slug}
classification:
  domain: startup
  category:
  - funding
generalizes_from: []
related:
- other-pattern
contributors:
- name: Commons OS
  role: author
license: CC-BY-SA-4.0
---

Body text.
"""

NEW_BLOCK = GardenBlock(
    last_pruned=dt.date(2026, 11, 22),
    entities=(Entity(id="funding", type="concept", label="Funding", relevance=0.9),),
    inferred_links=(
        InferredLink(target="other", type="enables", confidence=0.8, reason='a "quoted" # reason: x'),
    ),
)


def write(garden: Path, name: str, data: str | bytes) -> Path:
    path = garden / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def problems_of(garden: Path) -> list[str]:
    return [str(p).replace(str(garden) + "/", "") for p in load_garden(garden).problems]


@pytest.fixture
def garden(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "g"
    root.mkdir()
    return root


def test_each_bad_file_gets_a_placed_error_and_the_rest_loads(garden, seed_text):
    write(garden, "good.md", seed_text.replace("slug: self-leadership-vs-self-management", "slug: good"))
    write(garden, "broken.md", "---\nslug: broken\ntitle: [unclosed\n---\nbody\n")
    write(garden, "notes.md", "# Just notes\n")
    write(garden, "noslug.md", "---\ntitle: x\n---\n")
    write(garden, "latin1.md", "---\nslug: latin1\ntitle: caf\xe9\n---\n".encode("latin-1"))
    write(garden, "shape.md", "---\nslug: shape\ngraph_garden:\n  inferred_links: nope\n---\n")
    write(garden, "one.md", "---\nslug: twin\n---\n")
    write(garden, "two.md", "---\nslug: twin\n---\n")
    write(garden, "unclosed.md", "---\nslug: unclosed\n")
    write(garden, "baddate.md", "---\nslug: baddate\ncreated: 2026-01-05\nmodified: 2026-02-30\n---\n")
    assert problems_of(garden) == [
        "g/baddate.md:4:11: error: a value YAML reads as a date is not a real date (day is out of "
        "range for month); correct it, or quote it to keep it as text",
        "g/broken.md:4:1: error: broken YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence)",
        "g/latin1.md:3:11: error: not valid UTF-8 (byte 0xe9); save the file as UTF-8",
        "g/noslug.md:2:1: error: missing slug: add `slug: <file-name>` to the frontmatter",
        "g/notes.md:1:1: warning: no YAML frontmatter (the file does not start with ---); "
        "not a pattern, skipped",
        "g/one.md:2:1: error: slug \"twin\" differs from the file name \"one.md\"; rename the "
        "file to twin.md or fix the slug",
        "g/one.md:2:1: error: duplicate slug \"twin\" (also in g/two.md); neither file is tended "
        "until one is renamed",
        "g/shape.md:4:3: error: graph_garden.inferred_links must be a list, found a string",
        "g/two.md:2:1: error: slug \"twin\" differs from the file name \"two.md\"; rename the "
        "file to twin.md or fix the slug",
        "g/two.md:2:1: error: duplicate slug \"twin\" (also in g/one.md); neither file is tended "
        "until one is renamed",
        "g/unclosed.md:1:1: error: frontmatter opened with --- is never closed; add a --- line "
        "after it",
    ]
    loaded = load_garden(garden)
    assert sorted(loaded.patterns) == ["good"]
    assert "twin" in loaded.known_slugs


def test_unchanged_block_is_not_written(seed_garden):
    path = seed_garden / "distributed-leadership-design.md"
    before = path.read_bytes()
    doc = parse_document(path, before)
    block, _ = read_document_block(doc)
    assert put(path, block, hash_bytes(before)) is None
    assert path.read_bytes() == before
    assert replace_block(doc, block) == before  # the seed style, byte for byte


def test_changed_block_replaces_only_the_block(seed_garden):
    path = seed_garden / "distributed-leadership-design.md"
    before = path.read_text("utf-8")
    result = put(path, NEW_BLOCK, hash_bytes(before.encode()))
    after = path.read_text("utf-8")
    assert result is not None and result.new_hash == hash_bytes(after.encode())
    head, _, rest = before.partition("graph_garden:\n")
    assert after.startswith(head + "graph_garden:\n  last_pruned: 2026-11-22\n")
    tail = rest[rest.index("# ═══"):]
    assert after.endswith(tail)
    reread, findings = read_document_block(parse_document(path, after.encode()))
    assert reread == NEW_BLOCK and findings == []


def test_crlf_and_bom_survive(garden, seed_text):
    raw = ("\ufeff" + seed_text.replace("\n", "\r\n")).encode("utf-8")
    path = write(garden, "self-leadership-vs-self-management.md", raw)
    put(path, NEW_BLOCK)
    after = path.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf---\r\n")
    assert b"\n" not in after.replace(b"\r\n", b"")
    assert after.endswith(raw[raw.index("# GROUP 7".encode()) - 72 :])
    reread, _ = read_document_block(parse_document(path, after))
    assert reread == NEW_BLOCK


def test_legacy_file_gets_a_block_before_contributors_in_its_style(garden):
    path = write(garden, "acc.md", LEGACY.format(slug="acc"))
    put(path, NEW_BLOCK)
    text = path.read_text("utf-8")
    assert text == LEGACY.format(slug="acc").replace(
        "contributors:\n",
        "graph_garden:\n"
        "  last_pruned: 2026-11-22\n"
        "  entities:\n"
        "  - id: funding\n"
        "    type: concept\n"
        '    label: "Funding"\n'
        "    relevance: 0.9\n"
        "  communities: []\n"
        "  inferred_links:\n"
        "  - target: other\n"
        "    type: enables\n"
        "    confidence: 0.8\n"
        '    reason: "a \\"quoted\\" # reason: x"\n'
        "contributors:\n",
    )


def test_v71_file_without_block_gets_banner_and_block_before_provenance(garden, seed_text):
    from garden.document import put_block_text

    start = seed_text.index("# ═══════════════════════════════════════════════════════════════════\n# GROUP 6")
    end = seed_text.index("# ═══════════════════════════════════════════════════════════════════\n# GROUP 7")
    without = seed_text[:start] + seed_text[end:]
    path = write(garden, "self-leadership-vs-self-management.md", without)
    assert adds_banner(parse_document(path, path.read_bytes()))
    put(path, NEW_BLOCK)
    text = path.read_text("utf-8")
    rule = "# " + "═" * 67
    assert f"  tools: []\n{rule}\n# GROUP 6: GRAPH GARDEN (Machine-Written Graph)\n{rule}\ngraph_garden:\n" in text
    assert text.endswith(seed_text[end:])
    # Taken out again (a revert), the block takes its banner along: the file is as it was.
    doc = parse_document(path, path.read_bytes())
    assert put_block_text(doc, None, None, drop_banner=True) == without.encode("utf-8")
    assert put_block_text(doc, None, None) == (text[:text.index("graph_garden:")] + seed_text[end:]).encode()


def test_edit_since_read_is_refused_and_mode_is_kept(seed_garden):
    path = seed_garden / "distributed-leadership-design.md"
    before = path.read_bytes()
    os.chmod(path, 0o640)
    path.write_bytes(before + b"\nA person's edit.\n")
    with pytest.raises(WriteConflictError, match="changed on disk since it was read"):
        put(path, NEW_BLOCK, hash_bytes(before))
    assert path.read_bytes().endswith(b"A person's edit.\n")
    put(path, NEW_BLOCK, hash_bytes(path.read_bytes()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in seed_garden.iterdir() if p.name.startswith(".")] == []


def test_a_block_the_line_scan_misreads_is_never_written(garden):
    text = "---\nslug: odd\ngraph_garden:\n  entities: []\n# a note\n  inferred_links: []\n---\n"
    path = write(garden, "odd.md", text)
    with pytest.raises(PatternError, match="would not read back as written .the block reads back "
                                           "differently.; the file was left unchanged"):
        put(path, NEW_BLOCK)
    assert path.read_text() == text


def test_a_banner_left_without_its_block_is_filled_in_not_repeated(garden, seed_text):
    start = seed_text.index("graph_garden:\n")
    end = seed_text.index("# ═══════════════════════════════════════════════════════════════════\n# GROUP 7")
    emptied = seed_text[:start] + seed_text[end:]
    path = write(garden, "self-leadership-vs-self-management.md", emptied)
    assert not adds_banner(parse_document(path, path.read_bytes()))
    put(path, NEW_BLOCK)
    text = path.read_text("utf-8")
    assert text.count("# GROUP 6") == 1
    assert text == emptied[:start] + text[start:start + len(text) - len(emptied)] + emptied[start:]


@pytest.mark.parametrize("value, where, says", [
    ("2026-02-30T10:00:00Z", "3:8", "not a real date"),
    ("2026-01-05 25:00:00", "3:8", "not a real date"),
    ("2026-02-10T10:00:00+25:00", "3:8", "not a real date"),
    ('!!int "abc"', "2:1", "cannot be read (invalid literal for int()"),
    ("!!timestamp abc", "2:1", "cannot be read"),
    ("!!bool maybe", "2:1", "cannot be read ('maybe')"),  # PyYAML's KeyError, not a YAMLError
])
def test_values_the_loader_cannot_make_are_placed_errors(garden, value, where, says):
    write(garden, "odd.md", f"---\nslug: odd\nstamp: {value}\n---\n")
    [problem] = problems_of(garden)
    assert problem.startswith(f"g/odd.md:{where}: error: ") and says in problem, problem


def test_the_parse_cache_gives_what_parsing_gives(garden, seed_text):
    write(garden, "good.md", seed_text.replace("slug: self-leadership-vs-self-management", "slug: good"))
    write(garden, "broken.md", "---\nslug: broken\ntitle: [unclosed\n---\nbody\n")
    write(garden, "notes.md", "# Just notes\n")
    write(garden, "baddate.md", "---\nslug: baddate\nmodified: 2026-02-30\n---\n")
    cache = garden.parent / ".garden" / "parse-cache.db"

    def loaded(**options):
        found = load_garden(garden, **options)
        return found.patterns, [str(p) for p in found.problems], found.summary()

    plain = loaded()
    assert loaded(cache=ParseCache(cache)) == plain  # parsed, and cached
    assert cache.exists()
    assert loaded(cache=ParseCache(cache)) == plain  # from the cache
    slim = load_garden(garden, keep_bodies=False, cache=ParseCache(cache)).patterns["good"]
    assert slim.body_utf8 is None and slim.body == plain[0]["good"].body
    # New bytes are parsed again, never answered from the cache.
    write(garden, "good.md", seed_text.replace("slug: self-leadership-vs-self-management", "slug: good")
          .replace("title: ", "title: Edited ", 1))
    assert loaded(cache=ParseCache(cache)) == loaded() != plain
    # A damaged cache is no cache.
    cache.write_bytes(b"not a database")
    assert loaded(cache=ParseCache(cache)) == loaded()
