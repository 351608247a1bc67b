"""Reading raw blocks (with the legacy variants) and emitting them in the seeds' style."""

from __future__ import annotations

import datetime as dt

import yaml

from garden.block import emit_block, quote, read_block, scalar
from garden.model import Community, Entity, GardenBlock, InferredLink


def test_reads_a_v71_block_without_findings():
    block, findings = read_block(
        {
            "last_pruned": dt.date(2026, 2, 19),
            "entities": [{"id": "a", "type": "concept", "label": "A", "relevance": 1}],
            "communities": [{"id": "c", "label": "C", "source": "taxonomy", "confidence": 0.9}],
            "inferred_links": [
                {"target": "t", "type": "enables", "confidence": 0.8, "reason": "why"}
            ],
        }
    )
    assert findings == []
    assert block.entities[0].relevance == 1.0
    assert block.inferred_links[0] == InferredLink(
        target="t", type="enables", confidence=0.8, reason="why"
    )


def test_legacy_variants_are_normalised_and_reported():
    block, findings = read_block(
        {
            "last_pruned": "2026-02-16",
            "entities": ["Living System"],
            "communities": ["organization-and-culture"],
            "inferred_links": [
                {"target": "x", "reason": "Shared entities", "strength": 3},
                {"target": "y", "type": "enabler", "confidence": 0.8, "reason": "r"},
                {"target": "z", "type": "specializes", "confidence": 0.8, "reason": "r"},
                {"target": "w", "type": "mirrors", "confidence": 0.8, "reason": "r"},
            ],
        }
    )
    assert block.last_pruned == dt.date(2026, 2, 16)
    assert block.entities == (Entity(id="living-system", label="Living System"),)
    assert block.communities == (Community(id="organization-and-culture"),)
    strength = block.inferred_links[0]
    assert (strength.type, strength.confidence, strength.extras()) == (
        "complementary", None, {"strength": 3}
    )
    assert [link.type for link in block.inferred_links[1:]] == [
        "enables", "specializes_to", "mirrors"
    ]
    assert [f.message for f in findings] == [
        "last_pruned is a quoted date '2026-02-16'; read as 2026-02-16",
        "entity given as a plain string 'Living System'; read as id 'living-system', "
        "with no type or relevance",
        "community given as a plain string 'organization-and-culture'; read as id "
        "'organization-and-culture', with no source or confidence",
        "link to 'x' has strength: 3 and no type or confidence; read as type 'complementary' "
        "with unknown confidence",
        "link type 'enabler' is not in the vocabulary; read as 'enables'",
        "link type 'specializes' is not in the vocabulary; read as 'specializes_to'",
        "link type 'mirrors' is not one of generalizes_from, specializes_to, enables, requires, "
        "alternatives, complementary, tools; kept as written",
    ]
    assert {f.level for f in findings} == {"warning"}


def test_wrong_shapes_are_errors_and_give_no_block():
    cases = {
        "graph_garden must be a mapping, found a string": "oops",
        "graph_garden.inferred_links must be a list, found a string": {"inferred_links": "x"},
        "link must be a mapping, found a number": {"inferred_links": [3]},
        "link has no target": {"inferred_links": [{"type": "enables"}]},
        "confidence must be a number, found 'high'": {
            "inferred_links": [{"target": "a", "confidence": "high"}]
        },
        "last_pruned must be a date, found 'yesterday'": {"last_pruned": "yesterday"},
    }
    for message, raw in cases.items():
        block, findings = read_block(raw)
        assert block is None
        assert [f.message for f in findings if f.level == "error"] == [message]


def test_emits_the_seed_style():
    block = GardenBlock(
        last_pruned=dt.date(2026, 2, 19),
        entities=(Entity(id="a", type="concept", label="A", relevance=1.0),),
        inferred_links=(InferredLink(target="t", type="tools", confidence=0.75, reason="R"),),
    )
    assert emit_block(block) == (
        "graph_garden:\n"
        "  last_pruned: 2026-02-19\n"
        "  entities:\n"
        "    - id: a\n"
        "      type: concept\n"
        '      label: "A"\n'
        "      relevance: 1.0\n"
        "  communities: []\n"
        "  inferred_links:\n"
        "    - target: t\n"
        "      type: tools\n"
        "      confidence: 0.75\n"
        '      reason: "R"\n'
    )
    assert emit_block(block, indentless=True).splitlines()[3] == "  - id: a"


def test_scalars_that_yaml_11_would_retype_are_quoted():
    for text in ["yes", "no", "on", "null", "~", "1.5", "2026-01-01", "0x1f", "1e3", "true"]:
        assert scalar(text) == quote(text)
        assert yaml.safe_load(f"k: {scalar(text)}") == {"k": text}
    assert scalar("adaptive-leadership") == "adaptive-leadership"


def test_quote_escapes_what_must_be_escaped():
    assert quote('a "b" \\ c') == '"a \\"b\\" \\\\ c"'
    assert quote("line\nbreak\ttab") == '"line\\nbreak\\ttab"'
    assert quote("\x07\x85\u2028") == '"\\x07\\x85\\u2028"'
    assert quote("é 😀") == '"é 😀"'


def test_an_item_given_twice_is_reported():
    raw = {"inferred_links": [{"target": "a", "type": "enables", "confidence": 0.9, "reason": "r"},
                              {"target": "b", "type": "enables", "confidence": 0.8, "reason": "r"},
                              {"target": "a", "type": "enables", "confidence": 0.5, "reason": "r"}],
           "entities": [{"id": "e", "type": "concept", "relevance": 0.5}, "e"]}
    block, findings = read_block(raw)
    assert len(block.inferred_links) == 3  # kept as found: the file decides, not the reader
    assert [(f.level, f.code, f.message) for f in findings if f.code == "duplicate-item"] == [
        ("warning", "duplicate-item", "entities[1] repeats the id 'e' of entities[0]; keep one of them"),
        ("warning", "duplicate-item",
         "inferred_links[2] repeats the link to a (enables) of inferred_links[0]; keep one of them"),
    ]
