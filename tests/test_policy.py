"""The policy (decide and prune), its configuration, and the choice of patterns to tend."""

from __future__ import annotations

import datetime as dt

import pytest

from garden.errors import SettingsError
from garden.policy import Policy, decide, load_policy, prune
from garden.schedule import choose_patterns
from garden.state import Tended

TODAY = dt.date(2026, 11, 22)


def payloads(events):
    return [e.payload for e in events]


def test_decide_accepts_keeps_and_rejects_by_threshold():
    pending = {
        "p1": {"kind": "link", "confidence": 0.9},
        "p2": {"kind": "link", "confidence": 0.68},
        "p3": {"kind": "link", "confidence": 0.5},
        "p4": {"kind": "entity", "relevance": 0.86},
    }
    out = payloads(decide("s", pending, Policy(), "R"))
    assert [(p.type, p.proposal_id) for p in out] == [
        ("ProposalAccepted", "p1"), ("ProposalRejected", "p3"), ("ProposalAccepted", "p4")]
    assert out[0].rule == "auto_accept: confidence 0.9 >= 0.7"
    assert out[1].reason == "review_floor: confidence 0.5 < 0.65"


def block(links=(), entities=(), communities=()):
    return {"last_pruned": None, "inferred_links": list(links), "entities": list(entities),
            "communities": list(communities)}


def link(target, confidence, kind="complementary"):
    return {"target": target, "type": kind, "confidence": confidence, "reason": "r"}


def test_prune_names_its_rule_and_values():
    b = block(
        links=[link("a", 0.6), link("b", 0.9), link("c", 0.72, "tools"), link("d", None), link("e", 0.8)],
        entities=[{"id": "x", "relevance": 0.4}, {"id": "y", "relevance": None}],
        communities=[{"id": "t", "source": "taxonomy", "confidence": 0.1},
                     {"id": "i", "source": "inferred", "confidence": 0.5}],
    )
    policy = Policy(min_link_confidence_by_type={"tools": 0.75}, max_links_per_pattern=2)
    out = payloads(prune("s", b, set(), {"a", "b", "c", "d", "e"}, policy, "R", TODAY))
    assert [(p.type, getattr(p, "target", None) or getattr(p, "entity_id", None)
             or p.community_id, p.rule) for p in out] == [
        ("LinkPruned", "a", "min_link_confidence"),
        ("LinkPruned", "c", "min_link_confidence.tools"),
        ("LinkPruned", "d", "max_links_per_pattern"),
        ("EntityPruned", "x", "min_entity_relevance"),
        ("CommunityPruned", "i", "min_community_confidence"),
    ]
    assert out[0].values == {"confidence": 0.6, "threshold": 0.65}


def test_optional_rules_missing_targets_curated_repeats_and_decay():
    b = block(links=[link("gone", 0.9), link("curated", 0.9), link("old", 0.9)])
    refreshed = {"old|complementary": "2025-01-01T00:00:00+00:00"}
    assert prune("s", b, {"curated"}, {"curated", "old"}, Policy(), "R", TODAY, refreshed) == []
    policy = Policy(prune_missing_targets=True, prune_curated_repeats=True, decay_half_life_days=180)
    out = payloads(prune("s", b, {"curated"}, {"curated", "old"}, policy, "R", TODAY, refreshed))
    assert [(p.target, p.rule) for p in out] == [
        ("gone", "missing_target"), ("curated", "curated_repeat"), ("old", "decayed")]
    assert out[2].values["age_days"] == 690


def test_policy_from_garden_toml_pyproject_and_environment(tmp_path):
    assert load_policy(tmp_path, {}) == Policy()
    (tmp_path / "pyproject.toml").write_text("[tool.garden.policy]\nauto_accept = 0.9\n")
    assert load_policy(tmp_path, {}).auto_accept == 0.9
    (tmp_path / "garden.toml").write_text("[policy]\nreview_floor = 0.6\n"
                                          "min_link_confidence_by_type = { tools = 0.8 }\n")
    policy = load_policy(tmp_path, {"GARDEN_POLICY_NIGHTLY_LIMIT": "100"})
    assert (policy.auto_accept, policy.review_floor, policy.nightly_limit) == (0.7, 0.6, 100)
    assert policy.link_floor("tools") == 0.8


def test_invalid_policy_is_a_clear_error(tmp_path):
    (tmp_path / "garden.toml").write_text("[policy]\nauto_accept = 1.5\n")
    with pytest.raises(SettingsError, match=r"invalid policy \(garden.toml\): auto_accept: Input should be less than or equal to 1"):
        load_policy(tmp_path, {})
    (tmp_path / "garden.toml").write_text("[policy]\nreview_floor = 0.9\n")
    with pytest.raises(SettingsError, match="review_floor must not be above auto_accept"):
        load_policy(tmp_path, {})
    with pytest.raises(SettingsError, match="max_links_pattern: Extra inputs are not permitted"):
        load_policy(tmp_path / "nowhere", {"GARDEN_POLICY_MAX_LINKS_PATTERN": "3"})


def test_choose_orders_retry_new_changed_then_longest_untended():
    state = {
        "fresh": Tended(at="2026-11-20T00:00", text_hash="h"),
        "stale": Tended(at="2026-01-01T00:00", text_hash="h"),
        "staler": Tended(at="2025-06-01T00:00", text_hash="h"),
        "edited": Tended(at="2026-11-20T00:00", text_hash="old"),
        "failed": Tended(at="2026-11-20T00:00", text_hash="h", retry=True),
    }
    hashes = {slug: "h" for slug in [*state, "never"]}
    chosen = choose_patterns(hashes, state, TODAY)
    assert [(c.slug, c.why) for c in chosen] == [
        ("failed", "retry"), ("never", "new"), ("edited", "changed"),
        ("staler", "rotation"), ("stale", "rotation")]
    assert [c.slug for c in choose_patterns(hashes, state, TODAY, limit=2)] == ["failed", "never"]


def pruned_block(b, policy=None):
    """The block after folding its observation and the prune events for it."""
    from garden.state import State, apply_event
    from garden.event import GardenObserved, event

    state = State()
    apply_event(state, event(GardenObserved(path="s.md", format="v7.1", content_hash="h", text_hash="t",
                                            block=b, block_text=None), slug="s"))
    out = prune("s", b, set(), {"a", "b"}, policy or Policy(), "R", TODAY)
    for e in out:
        apply_event(state, e)
    return out, state.patterns["s"].block


def test_pruning_one_of_a_link_given_twice_keeps_the_other():
    out, after = pruned_block(block(links=[link("a", 0.9), link("a", 0.5), link("b", 0.8)]))
    assert [(p.target, p.confidence) for p in payloads(out)] == [("a", 0.5)]
    assert [(l["target"], l["confidence"]) for l in after["inferred_links"]] == [("a", 0.9), ("b", 0.8)]


def test_one_prune_removes_one_copy_of_identical_items():
    # Over the cap by one: one of two identical copies goes, the other stays.
    out, after = pruned_block(block(links=[link("a", 0.9), link("a", 0.9), link("b", 0.95)]),
                              Policy(max_links_per_pattern=2))
    assert [(p.target, p.rule) for p in payloads(out)] == [("a", "max_links_per_pattern")]
    assert [(l["target"], l["confidence"]) for l in after["inferred_links"]] == [("a", 0.9), ("b", 0.95)]
    # Both copies low: both go, one event each.
    out, after = pruned_block(block(links=[link("a", 0.5), link("a", 0.5)]))
    assert len(out) == 2 and after["inferred_links"] == []
    # The copy without a confidence ranks last for the cap; the scored copy stays.
    out, after = pruned_block(block(links=[link("a", 0.9), link("a", None), link("b", 0.8)]),
                              Policy(max_links_per_pattern=2))
    assert [(p.target, p.confidence) for p in payloads(out)] == [("a", None)]
    assert [(l["target"], l["confidence"]) for l in after["inferred_links"]] == [("a", 0.9), ("b", 0.8)]


def test_a_pruned_entity_or_community_copy_leaves_its_twin():
    out, after = pruned_block(block(
        entities=[{"id": "x", "relevance": 0.9}, {"id": "x", "relevance": 0.2}],
        communities=[{"id": "c", "source": "inferred", "confidence": 0.1},
                     {"id": "c", "source": "inferred", "confidence": 0.9}]))
    assert [(type(p).__name__, p.rule) for p in payloads(out)] == [
        ("EntityPruned", "min_entity_relevance"), ("CommunityPruned", "min_community_confidence")]
    assert after["entities"] == [{"id": "x", "relevance": 0.9}]
    assert after["communities"] == [{"id": "c", "source": "inferred", "confidence": 0.9}]
