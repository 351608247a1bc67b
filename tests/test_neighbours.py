"""garden.neighbours: a pattern's links both ways, from the state alone."""

from __future__ import annotations

from garden.neighbours import Neighbour, neighbourhood
from garden.state import PatternState


def known(title: str | None, links: list[tuple[str, float]], curated: list[str] | None) -> PatternState:
    block = {"last_pruned": None, "entities": [], "communities": [],
             "inferred_links": [{"target": t, "type": "enables", "confidence": c, "reason": f"why {t}"} for t, c in links]}
    return PatternState(path="x.md", content_hash="h", text_hash="t", block=block, observed_block=block,
                        file_block=block, observed_text=None, title=title, domain="d", curated=curated)


def test_a_pattern_s_links_out_and_in_inferred_and_curated_with_titles():
    patterns = {"a": known("A", [("b", 0.9), ("gone", 0.8)], ["c", "outside"]),
                "b": known("B", [("a", 0.7)], ["a"]),
                "c": known(None, [("b", 0.6)], None),  # observed before titles were recorded
                "d": known("D", [("a", 0.5), ("a", 0.4)], ["a", "b"])}
    found = neighbourhood(patterns, "a")
    assert (found.title, found.domain, found.block) == ("A", "d", patterns["a"].block)
    assert found.outgoing == [Neighbour("b", "B", "inferred", "out", "enables", 0.9, "why b"),
                              Neighbour("gone", None, "inferred", "out", "enables", 0.8, "why gone")]
    assert found.curated == [Neighbour("c", None, "curated", "out"), Neighbour("outside", None, "curated", "out")]
    assert [(n.slug, n.via, n.confidence) for n in found.incoming] == [
        ("b", "inferred", 0.7), ("d", "inferred", 0.5), ("d", "inferred", 0.4), ("b", "curated", None),
        ("d", "curated", None)]
    assert neighbourhood(patterns, "c").incoming == [Neighbour("a", "A", "curated", "in")]
    assert found.to_dict()["outgoing"][0] == {"slug": "b", "title": "B", "via": "inferred", "direction": "out",
                                              "link_type": "enables", "confidence": 0.9, "reason": "why b"}
