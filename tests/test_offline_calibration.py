"""Issue 12: the offline confidence is a calibrated keep rate; entities neither restate the title nor
name one generic word; near duplicates are the same words; health judges the whole graph's spread."""

from __future__ import annotations

import pytest

from conftest import CORPUS, needs_corpus
from garden.calibration import LINK_KEEP_RATE, MAX_CONFIDENCE, keep_rate
from garden.candidates import rank_patterns
from garden.catalog import load_garden
from garden.health import garden_health
from garden.model import Entity
from garden.proposal import Candidate, ProposalRequest
from garden.validate import check_answer, restates_title, same_concept
from proposers.offline import OfflineProposer, entity_relevance, link_confidence, score_entity


def test_the_table_is_monotone_and_documented():
    xs, ys = zip(*LINK_KEEP_RATE)
    assert list(xs) == sorted(xs) and list(ys) == sorted(ys)
    confs = [link_confidence(i / 200) for i in range(201)]
    assert confs == sorted(confs) and confs[0] == 0.0 and max(confs) == MAX_CONFIDENCE


@pytest.mark.parametrize(("old_band", "judged"), [
    ((0.40, 0.55), 0.72), ((0.55, 0.64), 0.88), ((0.64, 0.70), 0.95), ((0.70, 0.85), 1.0), ((0.85, 0.95), 1.0)])
def test_each_judged_band_maps_to_its_keep_rate(old_band, judged):
    # The old formula was c = 0.30 + 1.6 s: the band's middle cosine gets about the judged rate.
    middle = ((old_band[0] + old_band[1]) / 2 - 0.30) / 1.6
    assert abs(link_confidence(middle) - judged) <= 0.04


def test_random_pairs_and_inherited_junk_score_low():
    assert link_confidence(0.021) <= 0.02  # median cosine of random pairs on the corpus
    assert link_confidence(0.039) < 0.2  # median inherited link, judged kept 10-12%
    assert link_confidence(0.0) == 0.0 and link_confidence(-0.1) == 0.0
    assert link_confidence(0.3, rank=40) == link_confidence(0.3)  # optional evidence, same scale
    assert keep_rate(5.0) == MAX_CONFIDENCE


@pytest.mark.parametrize(("label", "title", "slug"), [
    ("Trademark", "Trademarks", "trademarks"),
    ("Capsule Wardrobe", "Capsule Wardrobe Design", "capsule-wardrobe-design"),
    ("Pre Mortem", "Pre-Mortem Technique", "pre-mortem-technique"),
    ("The Capsule Wardrobes", "Designing a Wardrobe", "capsule-wardrobe-design"),
])
def test_a_label_restating_the_title_or_slug_is_caught(label, title, slug):
    assert restates_title(label, title, slug)


@pytest.mark.parametrize(("label", "title", "slug"), [
    ("Wardrobe", "Capsule Wardrobe Design", "capsule-wardrobe-design"),
    ("Systems Thinking", "Trademarks", "trademarks"),
    ("Trade", "Trademarks", "trademarks"),
])
def test_a_label_naming_something_else_is_not(label, title, slug):
    assert not restates_title(label, title, slug)


@pytest.mark.parametrize(("a", "b"), [
    ("prebiotics", "probiotics"), ("synchronous communication", "asynchronous communication"),
    ("knowledge-sharing", "knowledge-hoarding"), ("trust", "rust"), ("systems thinking", "systems thinker"),
])
def test_words_a_letter_apart_are_distinct_concepts(a, b):
    assert not same_concept(a, b)


@pytest.mark.parametrize(("a", "b"), [
    ("Knowledge Sharing", "knowledge-sharing"), ("feedback loops", "Feedback Loop"),
    ("Loops, Feedback", "feedback loop"), ("e-mail", "email"), ("Theory of Change", "change theory"),
])
def test_the_same_concept_spelt_differently_is_a_duplicate(a, b):
    assert same_concept(a, b)


def request(**changes) -> ProposalRequest:
    neighbour = Candidate(slug="slow-fashion", title="Slow Fashion", summary="Buy less, buy well.", score=0.3,
                          entity_labels=("Presence", "Slow Fashion", "Wardrobe"))
    values = dict(
        slug="capsule-wardrobe-design", title="Capsule Wardrobe Design", summary="A small wardrobe.",
        keywords=("capsule wardrobe", "slow fashion", "colour palette"),
        text=("Capsule Wardrobe Design. A capsule wardrobe is slow fashion: presence in what you wear, "
              "presence of mind, a colour palette, slow fashion again, a colour palette, a wardrobe."),
        text_hash="t", existing_links=(), existing_entities=(), curated={}, candidates=(neighbour,),
        common_terms=frozenset({"presence", "design"}))
    values.update(changes)
    return ProposalRequest(**values)


def test_the_offline_proposer_offers_neither_the_title_nor_a_generic_word():
    proposer = OfflineProposer()
    entities = proposer.answer(request())["entities"]
    # Not the title itself, nor "Capsule Wardrobe" (the title restated), nor "Presence" (generic).
    assert [(e["label"], e["relevance"]) for e in entities] == [
        ("Wardrobe", 0.8), ("Slow Fashion", 0.74), ("Colour Palette", 0.64)]
    assert dict(proposer.skipped) == {"title": 1, "generic": 1}
    by_label = {e["label"]: e["relevance"] for e in entities}
    # Shared by the neighbour: preferred over a label only this pattern's text holds.
    assert by_label["Slow Fashion"] > by_label["Colour Palette"]


def test_entity_relevance_for_an_existing_entity():
    r = request()
    assert score_entity(r, "Capsule Wardrobe") == 0.0
    assert score_entity(r, "Presence") == 0.0
    assert score_entity(r, "Slow Fashion") == entity_relevance(2, shared=1) > 0
    assert entity_relevance(2, label="Pre Mortem", title="Pre-Mortem Technique", slug="pre-mortem-technique") == 0.0
    assert entity_relevance(2, shared=0) < entity_relevance(2) < entity_relevance(2, shared=2) < entity_relevance(2, shared=4)


def test_a_model_answer_restating_the_title_is_rejected():
    checked = check_answer(request(existing_entities=(Entity(id="x", type="concept", label="X", relevance=0.9),)), {
        "entities": [{"id": "capsule-wardrobe", "type": "concept", "label": "Capsule Wardrobe", "relevance": 0.9},
                     {"id": "wardrobe", "type": "concept", "label": "Wardrobe", "relevance": 0.9}]}, set())
    assert [i.reason for i in checked.invalid] == [
        "the entity restates the pattern's own title ('Capsule Wardrobe' on 'capsule-wardrobe-design')"]
    assert [e.id for e in checked.entities] == ["wardrobe"]


def _block(targets=(), entities=()):
    return {"last_pruned": None, "communities": [],
            "inferred_links": [{"target": t, "type": "complementary", "confidence": 0.9, "reason": "r"} for t in targets],
            "entities": [{"id": e.lower().replace(" ", "-"), "label": e, "type": "concept", "relevance": 0.8}
                         for e in entities]}


def test_health_judges_the_whole_graphs_spread_and_real_duplicates(seed_garden):
    garden = load_garden(seed_garden)
    d1, d2, s1 = sorted(garden.patterns)
    concentrated = {d1: _block([d2]), d2: _block([d1]), s1: _block([d1, d2], ["Prebiotics", "Probiotics",
                                                                           "Feedback Loops", "feedback loop"])}
    report = garden_health(garden, concentrated, {})
    letters = report["targets_by_first_letter"]
    assert letters["total_variation"] == 0.3333
    assert report["flags"] == [
        "machine-written links do not spread over the library: targets' first letters are 0.33 from the "
        "library's slugs (total variation, all 4 links; at most 0.10 is healthy); most on 'd': 100% of links, "
        "67% of the library"]
    assert report["near_duplicate_entities"]["examples"] == [f"{s1}: feedback-loops ~ feedback-loop"]
    spread = {d1: _block([s1, d2]), d2: _block([d1]), s1: _block([d1, d2, s1])}
    clean = garden_health(garden, spread, {})
    assert clean["targets_by_first_letter"]["total_variation"] <= 0.10 and clean["flags"] == []


@needs_corpus()
def test_generic_words_are_found_by_document_frequency_over_the_garden():
    garden = load_garden(CORPUS)
    common = rank_patterns(garden.patterns.values()).common_terms
    assert {"resilience", "vitality", "agency", "presence"} <= common
    assert not {"grief", "trademark", "negotiation", "privacy"} & common
