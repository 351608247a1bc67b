"""One validation path: every invalid item is rejected with its reason; existing links are re-assessed."""

from __future__ import annotations

from garden.model import Entity, InferredLink
from garden.proposal import ProposalRequest
from garden.validate import check_answer, clean_text

REQUEST = ProposalRequest(
    slug="me", title="Me", summary="", keywords=(), text="", text_hash="t",
    existing_links=(InferredLink(target="old", type="enables", confidence=0.8, reason="r"),),
    existing_entities=(Entity(id="systems-thinking", type="framework", label="Systems Thinking", relevance=0.9),),
    curated={"requires": ("curated",)}, candidates=(),
)
GARDEN = {"me", "a", "b", "old", "curated"}


def link(target="a", type="enables", confidence=0.8, reason="because"):
    return {"target": target, "type": type, "confidence": confidence, "reason": reason}


def entity(id="trust", label="Trust", type="concept", relevance=0.8):
    return {"id": id, "type": type, "label": label, "relevance": relevance}


def reasons(items: dict) -> list[str]:
    return [i.reason for i in check_answer(REQUEST, items, GARDEN).invalid]


def test_valid_links_and_entities_pass():
    checked = check_answer(REQUEST, {"inferred_links": [link()], "entities": [entity()]}, GARDEN)
    assert [(l.target, l.type, l.confidence) for l in checked.links] == [("a", "enables", 0.8)]
    assert [e.id for e in checked.entities] == ["trust"]
    assert checked.invalid == [] and checked.rescores == []


def test_every_invalid_link_is_rejected_with_its_reason():
    assert reasons({"inferred_links": [
        link(target="nowhere"), link(target="me"), link(target="curated"), link(type="enabler"),
        link(confidence=1.5), link(confidence="high"), link(reason="  \x00\n "), "just a string",
        {"type": "enables"}, link(target="b"), link(target="b"),
    ]}) == [
        "target 'nowhere' is not in the garden",
        "self-link: a pattern cannot link to itself",
        "target 'curated' is already a curated relationship (requires)",
        "type 'enabler' is not one of generalizes_from, specializes_to, enables, requires, alternatives, complementary, tools",
        "confidence 1.5 is not a number in [0, 1]",
        "confidence 'high' is not a number in [0, 1]",
        "empty reason",
        "a link must be an object",
        "a link needs a target slug",
        "the same link twice in one answer",
    ]


def test_every_invalid_entity_is_rejected_with_its_reason():
    assert reasons({"entities": [
        entity(id="Not Kebab"), entity(id="x", label=""), entity(relevance=-0.1),
        entity(id="st", label="systems thinking!"),
        entity(id="thinking-systems", label="Thinking, Systems"), entity(), entity(id="trust-2", label="Trust"),
        entity(id="me", label="Me"),
    ]}) == [
        "entity id 'Not Kebab' is not kebab-case (like 'systems-thinking')",
        "an entity needs a label",
        "relevance -0.1 is not a number in [0, 1]",
        "duplicate of entity 'systems-thinking' (same label)",
        "near-duplicate of entity 'systems-thinking' (the same words spelt differently)",
        "duplicate of entity 'trust' (same label)",
        "the entity is the pattern itself (its id is the pattern's slug)",
    ]


def test_a_returned_existing_link_is_a_reassessment():
    checked = check_answer(REQUEST, {"inferred_links": [link(target="old", confidence=0.4)]}, GARDEN)
    assert [(r.target, r.old, r.new) for r in checked.rescores] == [("old", 0.8, 0.4)]
    assert checked.links == []


def test_answers_of_the_wrong_shape():
    assert reasons([1, 2]) == ["the answer is not a JSON object"]
    assert reasons({"inferred_links": "a, b"}) == ["inferred_links is not a list"]


def test_reasons_are_cleaned_and_capped():
    assert clean_text("a\tb\nc\x07d", 300) == "a b c d"
    capped = clean_text("x" * 500, 300)
    assert len(capped) == 300 and capped.endswith("…")
