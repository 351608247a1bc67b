"""A block written over an old one keeps each unchanged item's exact lines (garden.block_text)."""

from __future__ import annotations

import datetime as dt
import difflib
import re
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SEEDS, garden_bin, make_garden, tend_in_process
from garden.block import read_block
from garden.document import parse_document, replace_block
from garden.model import Entity, GardenBlock, InferredLink
from garden.writer import prepare_write

SEED = SEEDS / "self-leadership-vs-self-management.md"

# A block as the old pipeline wrote it (the corpus has such blocks): a quoted date, plain-string
# entities and communities, single-quoted reasons, `strength:` links, a type outside the seven.
LEGACY = """\
graph_garden:
  last_pruned: '2026-02-16'
  entities:
  - OKR
  - Living System
  - Feedback Loop
  communities:
  - organization-and-culture
  - sensing-and-adaptation
  inferred_links:
  - target: anomaly-response
    reason: 'Shared entities: Living System, Feedback Loop'
    strength: 3
  - target: commons-blueprint
    reason: 'Shared entities: Living System, Feedback Loop'
    strength: 3
  - target: operational-cadence
    type: enabler
    confidence: 0.8
"""


def legacy_file(tmp_path: Path, block_text: str = LEGACY) -> Path:
    text = SEED.read_text("utf-8")
    start = text.index("graph_garden:\n")
    end = text.index("contributors:")
    path = tmp_path / "legacy.md"
    path.write_text(text[:start] + block_text + text[end:], "utf-8")
    return path


def read(path: Path) -> GardenBlock:
    doc = parse_document(path, path.read_bytes())
    return read_block(doc.data["graph_garden"])[0]


def write(path: Path, block: GardenBlock) -> tuple[str, str]:
    """Write `block` into the file; the old and the new text."""
    old = path.read_text("utf-8")
    prepared = prepare_write(path, block)
    path.write_bytes(prepared.data)
    new = path.read_text("utf-8")
    assert read(path) == block
    return old, new


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0))
    removed = [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    return removed, added


def test_a_rescored_legacy_link_is_emitted_afresh_and_every_other_item_keeps_its_lines(tmp_path):
    """Its new confidence is written; the type the reader defaulted to is not (nobody wrote it), and
    the text reads back as the block (`write` checks)."""
    path = legacy_file(tmp_path)
    block = read(path)
    links = list(block.inferred_links)
    links[1] = links[1].model_copy(update={"confidence": 0.12})  # a re-assessment's new value
    old, new = write(path, block.model_copy(update={"inferred_links": tuple(links)}))
    assert new == old.replace(
        "  - target: commons-blueprint\n"
        "    reason: 'Shared entities: Living System, Feedback Loop'\n"
        "    strength: 3\n",
        "  - target: commons-blueprint\n"
        "    confidence: 0.12\n"
        '    reason: "Shared entities: Living System, Feedback Loop"\n'
        "    strength: 3\n")
    assert "  - OKR\n  - Living System\n  - Feedback Loop\n" in new
    assert "  - target: operational-cadence\n    type: enabler\n    confidence: 0.8\n" in new
    assert "  last_pruned: '2026-02-16'\n" in new  # its value did not change


def test_adding_one_link_to_a_legacy_block_changes_that_link_and_last_pruned(tmp_path):
    path = legacy_file(tmp_path)
    block = read(path)
    link = InferredLink(target="okr-cascade", type="requires", confidence=0.91, reason="Shared terms: okr")
    old, new = write(path, block.model_copy(update={
        "inferred_links": (*block.inferred_links, link), "last_pruned": dt.date(2026, 11, 22)}))
    removed, added = changed_lines(old, new)
    assert removed == ["  last_pruned: '2026-02-16'"]
    assert added == ["  last_pruned: 2026-11-22",
                     "  - target: okr-cascade",
                     "    type: requires",
                     "    confidence: 0.91",
                     '    reason: "Shared terms: okr"']


def test_removing_one_item_removes_only_its_lines(tmp_path):
    path = legacy_file(tmp_path)
    block = read(path)
    entities = tuple(e for e in block.entities if e.label != "Living System")
    links = tuple(l for l in block.inferred_links if l.target != "anomaly-response")
    old, new = write(path, block.model_copy(update={"entities": entities, "inferred_links": links}))
    removed, added = changed_lines(old, new)
    assert removed == ["  - Living System",
                       "  - target: anomaly-response",
                       "    reason: 'Shared entities: Living System, Feedback Loop'",
                       "    strength: 3"]
    assert added == []


def test_a_list_emptied_or_filled_changes_its_header_and_its_items_only(tmp_path):
    path = legacy_file(tmp_path)
    block = read(path)
    entity = Entity(id="okr", type="concept", label="OKR", relevance=0.9)
    old, new = write(path, block.model_copy(update={"communities": (), "entities": (entity,)}))
    removed, added = changed_lines(old, new)
    assert removed == ["  - OKR", "  - Living System", "  - Feedback Loop", "  communities:",
                       "  - organization-and-culture", "  - sensing-and-adaptation"]
    assert added == ["  - id: okr", "    type: concept", '    label: "OKR"', "    relevance: 0.9",
                     "  communities: []"]


def test_a_crlf_file_keeps_its_items_and_its_line_ends(tmp_path):
    path = legacy_file(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    block = read(path)
    link = InferredLink(target="okr-cascade", type="requires", confidence=0.91)
    old = path.read_bytes()
    path.write_bytes(prepare_write(path, block.model_copy(
        update={"inferred_links": (*block.inferred_links, link)})).data)
    new = path.read_bytes()
    assert b"\n" not in new.replace(b"\r\n", b"")
    assert new == old.replace(b"    confidence: 0.8\r\n",
                              b"    confidence: 0.8\r\n  - target: okr-cascade\r\n    type: requires\r\n"
                              b"    confidence: 0.91\r\n")


# --- property: random blocks, random edits -------------------------------------------------

_WORDS = st.sampled_from(["okr", "Living System", "feedback", "yes", "on", "a: b", "x#y", "'q'",
                          "Ünïcode", "2026-01-01", "1.5", "null", "trust", "-lead"])


@st.composite
def legacy_items(draw):
    """(list name, the item's lines at a given dash and continuation indent)."""
    kind = draw(st.sampled_from(["plain-entity", "entity", "plain-community", "strength-link",
                                 "link", "alias-link"]))
    word = draw(_WORDS)
    n = draw(st.integers(0, 999))
    quoted = "'" + word.replace("'", "''") + "'"
    if kind == "plain-entity":
        return "entities", [f"{quoted}"]
    if kind == "entity":
        return "entities", [f"id: e{n}", f"label: {quoted}", f"relevance: 0.{n % 10}"]
    if kind == "plain-community":
        return "communities", [f"c-{n}"]
    if kind == "strength-link":
        return "inferred_links", [f"target: t{n}", f"reason: {quoted}", f"strength: {n % 5}"]
    if kind == "alias-link":
        return "inferred_links", [f"target: t{n}", "type: enabler", f"confidence: 0.{n % 10}5"]
    return "inferred_links", [f"target: t{n}", "type: requires", f"confidence: 0.{n % 10}",
                              f'reason: "{word}"']


@st.composite
def legacy_blocks(draw):
    indent = draw(st.sampled_from(["", "  "]))  # indentless or indented items
    items = draw(st.lists(legacy_items(), max_size=8))
    lines = ["graph_garden:", "  last_pruned: '2026-02-16'"]
    order = draw(st.permutations(["entities", "communities", "inferred_links"]))
    for name in order:
        mine = [body for kind, body in items if kind == name]
        if not mine:
            if draw(st.booleans()):
                lines.append(f"  {name}: []")
            continue
        lines.append(f"  {name}:")
        for body in mine:
            lines.append(f"{indent}  - {body[0]}")
            lines += [f"{indent}    {field}" for field in body[1:]]
    return "\n".join(lines) + "\n"


@st.composite
def edits(draw, block: GardenBlock):
    """A new block: some items rescored, some removed, some added, maybe a new date."""
    new = {}
    for name, score in (("entities", "relevance"), ("communities", "confidence"),
                        ("inferred_links", "confidence")):
        items = []
        for item in getattr(block, name):
            action = draw(st.sampled_from(["keep", "keep", "rescore", "remove"]))
            if action == "keep":
                items.append(item)
            elif action == "rescore":
                items.append(item.model_copy(update={score: draw(st.floats(0, 1).map(lambda x: round(x, 2)))}))
        for k in range(draw(st.integers(0, 2))):
            word = draw(_WORDS)
            if name == "inferred_links":
                items.append(InferredLink(target=f"new-{k}", type="tools", confidence=0.9, reason=word))
            elif name == "entities":
                items.append(Entity(id=f"new-{k}", type="concept", label=word, relevance=0.7))
        new[name] = tuple(items)
    date = draw(st.sampled_from([block.last_pruned, dt.date(2026, 11, 22)]))
    return block.model_copy(update={**new, "last_pruned": date})


def _item_segments(block_text: str) -> list[str]:
    """Each item's lines of a block written by `legacy_blocks` (items start with `- `)."""
    segments, current = [], []
    for line in block_text.splitlines(keepends=True):
        if line.lstrip().startswith("- "):
            if current:
                segments.append("".join(current))
            current = [line]
        elif current and line.startswith("   "):
            current.append(line)
        else:
            if current:
                segments.append("".join(current))
            current = []
    if current:
        segments.append("".join(current))
    return segments


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_written_block_reads_back_as_intended_and_unchanged_items_keep_their_lines(tmp_path, data):
    block_text = data.draw(legacy_blocks())
    path = legacy_file(tmp_path, block_text)
    doc = parse_document(path, path.read_bytes())
    old = read_block(doc.data["graph_garden"])[0]
    assume_ok = old is not None and len({(l.target, l.type) for l in old.inferred_links}) == len(old.inferred_links)
    if not assume_ok:
        return
    new = data.draw(edits(old))
    text = replace_block(doc, new, old).decode("utf-8")
    written = parse_document(path, text.encode("utf-8"))
    assert read_block(written.data["graph_garden"])[0] == new
    assert text[: doc.block_span[0]] == doc.text[: doc.block_span[0]]
    assert written.body == doc.body
    segments = _item_segments(block_text)
    for name in ("entities", "communities", "inferred_links"):
        olds = getattr(old, name)
        kept = [item for item in getattr(new, name) if item in olds]
        for item in kept:  # an unchanged item: one of its equal old items' lines, verbatim
            assert any(seg in written.block_text for seg, was in zip(_segments_of(name, block_text, segments), olds)
                       if was == item), (name, item, written.block_text)


def _segments_of(name: str, block_text: str, segments: list[str]) -> list[str]:
    """The segments of list `name`, in order (the lists' items appear in the block in order)."""
    start = block_text.index(f"  {name}:")
    after = [m.start() for m in re.finditer(r"^  \w+:", block_text, re.M) if m.start() > start]
    end = after[0] if after else len(block_text)
    return [seg for seg in segments if start < block_text.index(seg) < end]


# --- a tend over legacy blocks -------------------------------------------------------------


def test_a_tend_over_legacy_blocks_verifies_and_a_second_tend_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    legacy = sorted((tmp_path / "patterns").glob("*.md"))[:6]
    for path in legacy:
        text = path.read_text("utf-8")
        start, end = text.index("graph_garden:\n"), text.index("contributors:")
        path.write_text(text[:start] + LEGACY + text[end:], "utf-8")
    first = tend_in_process()
    assert first["errors"] == 0
    written = [path for path in legacy if path.read_text("utf-8").count("last_pruned: 2026-11-22")]
    assert written  # the tend wrote into legacy blocks ...
    for path in written:  # ... and the items it left alone are as they were (the tend re-assesses
        text = path.read_text("utf-8")  # every entity, so the communities are the untouched items)
        assert "  - organization-and-culture\n  - sensing-and-adaptation\n" in text
    verify = subprocess.run([garden_bin(), "verify"], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    second = tend_in_process()
    assert second["files_written"] == 0


def test_a_flow_style_list_stays_as_written_while_unchanged(tmp_path):
    path = legacy_file(tmp_path, LEGACY.replace(
        "  entities:\n  - OKR\n  - Living System\n  - Feedback Loop\n",
        '  entities: ["OKR", "Living System", "Feedback Loop"]\n'))
    block = read(path)
    link = InferredLink(target="okr-cascade", type="requires", confidence=0.91)
    old, new = write(path, block.model_copy(update={"inferred_links": (*block.inferred_links, link)}))
    assert new == old.replace("    confidence: 0.8\n", "    confidence: 0.8\n  - target: okr-cascade\n"
                              "    type: requires\n    confidence: 0.91\n")
    block = read(path)
    entities = (*block.entities[:2], Entity(id="loop", label="Loop", relevance=0.5))
    old, new = write(path, block.model_copy(update={"entities": entities}))  # changed: block style
    assert new == old.replace('  entities: ["OKR", "Living System", "Feedback Loop"]\n',
                              '  entities:\n  - id: okr\n    label: "OKR"\n  - id: living-system\n'
                              '    label: "Living System"\n  - id: loop\n    label: "Loop"\n    relevance: 0.5\n')


def test_a_comment_on_the_blocks_first_line_stays(tmp_path):
    path = legacy_file(tmp_path, LEGACY.replace("graph_garden:\n", "graph_garden:   # by the old pipeline\n")
                       .replace("'2026-02-16'\n", "'2026-02-16'\n\n  # what it found\n"))
    block = read(path)
    old, new = write(path, block.model_copy(update={"last_pruned": dt.date(2026, 11, 22)}))
    assert "  last_pruned: 2026-11-22\n\n  # what it found\n  entities:\n" in new
    assert new == old.replace("  last_pruned: '2026-02-16'\n", "  last_pruned: 2026-11-22\n")


def test_a_block_that_cannot_be_cut_safely_is_written_afresh(tmp_path):
    path = legacy_file(tmp_path, LEGACY.replace("graph_garden:\n", "graph_garden:\n  # by the old pipeline\n"))
    block = read(path)
    link = InferredLink(target="okr-cascade", type="requires", confidence=0.91)
    old, new = write(path, block.model_copy(update={"inferred_links": (*block.inferred_links, link)}))
    assert "  - id: okr\n    label: \"OKR\"\n" in new and "# by the old pipeline" not in new
