"""garden.health's pure figures."""

from __future__ import annotations

from garden.health import KnownLibrary, KnownPattern, garden_health, patterns_by_count


def test_patterns_by_count_counts_every_number_up_to_the_largest():
    assert patterns_by_count([0, 2, 2, 5]) == {"0": 1, "1": 0, "2": 2, "3": 0, "4": 0, "5": 1}
    assert patterns_by_count([]) == {}


def test_health_reports_how_many_patterns_have_each_number_of_links():
    library = KnownLibrary({s: KnownPattern(s.title(), None, frozenset()) for s in "abc"}, set("abc"))
    blocks = {"a": {"inferred_links": [{"target": "b", "confidence": 0.9}, {"target": "c", "confidence": 0.8}]},
              "b": {"inferred_links": [{"target": "a", "confidence": 0.7}]}, "c": None}
    report = garden_health(library, blocks, {})
    assert report["patterns_by_link_count"] == {"0": 1, "1": 1, "2": 1}
    assert sum(report["patterns_by_link_count"].values()) == report["patterns"]
