"""The projection: folding events gives the block; replay at any point equals the live state."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.projection import load_state, save_snapshot
from events.store import EventStore
from garden.event import (
    BlockRestored,
    BlockWritten,
    CommunityPruned,
    EntityProposed,
    EntityPruned,
    ExternalEditObserved,
    GardenObserved,
    LinkProposed,
    LinkPruned,
    LinkRescored,
    ProposalAccepted,
    ProposalRejected,
    RejectionLifted,
    event,
)

SLUGS = ["a", "b", "c"]
TARGETS = ["x", "y", "z"]
TYPES = ["enables", "tools"]
SCORE = st.sampled_from([0.1, 0.5, 0.75, 0.9, 1.0])
BLOCK = st.none() | st.fixed_dictionaries({
    "last_pruned": st.sampled_from([None, "2026-02-19"]),
    "entities": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["e1", "e2"]), "type": st.just("concept"),
                                                "label": st.just("E"), "relevance": SCORE}), max_size=2),
    "communities": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["c1", "c2"]), "label": st.just("C"),
                                                   "source": st.sampled_from(["taxonomy", "inferred"]),
                                                   "confidence": SCORE}), max_size=2),
    "inferred_links": st.lists(st.fixed_dictionaries({"target": st.sampled_from(TARGETS), "type": st.sampled_from(TYPES),
                                                      "confidence": SCORE, "reason": st.just("r")}), max_size=3),
})


@st.composite
def histories(draw):
    events, proposals = [], []
    for _ in range(draw(st.integers(1, 30))):
        slug = draw(st.sampled_from(SLUGS))
        kind = draw(st.sampled_from(["observe", "edit", "link", "entity", "accept", "reject",
                                     "rescore", "prune_link", "prune_entity", "prune_community", "write",
                                     "restore", "lift"]))
        actor = "system"
        if kind in ("observe", "edit"):
            block = draw(BLOCK)
            text = None if block is None else "graph_garden: {}\n"
            if kind == "observe":
                p = GardenObserved(path=f"{slug}.md", format="v7.1", content_hash=draw(st.sampled_from("hk")),
                                   text_hash="t", block=block, block_text=text)
            else:
                p = ExternalEditObserved(path=f"{slug}.md", content_hash="e", previous_hash="h", text_hash="t",
                                         block=block, block_text=text, block_changed=True)
        elif kind == "link":
            p = LinkProposed(target=draw(st.sampled_from(TARGETS)), link_type=draw(st.sampled_from(TYPES)),
                             confidence=draw(SCORE), reason="r", proposer="offline")
        elif kind == "entity":
            p = EntityProposed(entity_id=draw(st.sampled_from(["e1", "e3"])), entity_type="concept",
                               label="E", relevance=draw(SCORE), proposer="offline")
        elif kind in ("accept", "reject"):
            target_id = draw(st.sampled_from(proposals)) if proposals and draw(st.booleans()) else "unknown"
            p = (ProposalAccepted(proposal_id=target_id, rule="test") if kind == "accept"
                 else ProposalRejected(proposal_id=target_id, reason="test"))
            actor = draw(st.sampled_from(["system", "pruner", "curator:ana"]))
        elif kind == "restore":  # a revert (the events of a real one: tests/test_replay_property.py)
            block = draw(BLOCK)
            p = BlockRestored(block=block, reverted_run="r", block_text=draw(st.sampled_from([None, "graph_garden: {}\n"]))
                              if block is not None else None)
        elif kind == "lift":
            p = RejectionLifted(target=draw(st.sampled_from(TARGETS)), link_type=draw(st.sampled_from(TYPES)))
        elif kind == "rescore":
            p = LinkRescored(target=draw(st.sampled_from(TARGETS)), link_type=draw(st.sampled_from(TYPES)),
                             old_confidence=None, new_confidence=draw(SCORE))
        elif kind == "prune_link":
            p = LinkPruned(target=draw(st.sampled_from(TARGETS)), link_type=draw(st.sampled_from(TYPES)), rule="r")
        elif kind == "prune_entity":
            p = EntityPruned(entity_id=draw(st.sampled_from(["e1", "e2", "e3"])), rule="r")
        elif kind == "prune_community":
            p = CommunityPruned(community_id=draw(st.sampled_from(["c1", "c2"])), rule="r")
        else:
            p = BlockWritten(path=f"{slug}.md", content_hash="w", previous_hash=None,
                             last_pruned=draw(st.dates()).isoformat())
        e = event(p, slug=slug, actor=actor)
        if kind in ("link", "entity"):
            proposals.append(e.id)
        events.append(e)
    return events


def as_data(state) -> dict:
    return json.loads(state.to_json())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=histories(), snapshot_every=st.integers(1, 7))
def test_replay_equals_live_state_at_every_point(events, snapshot_every):
    with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp) / "e.db") as store:
        live = {}
        for i, e in enumerate(events, 1):
            store.append([e])
            state = load_state(store)
            if i % snapshot_every == 0:
                save_snapshot(store, state)
            live[i] = as_data(state)
        assert as_data(load_state(store, use_snapshots=False)) == live[len(events)]
        for point, recorded in live.items():
            assert as_data(load_state(store, point, use_snapshots=False)) == recorded
            assert as_data(load_state(store, point)) == recorded
        store.drop_snapshots()
        assert as_data(load_state(store)) == live[len(events)]


def test_accepting_a_proposal_adds_it_to_the_block_and_pruning_removes_it(tmp_path):
    with EventStore(tmp_path / "e.db") as store:
        proposal = event(LinkProposed(target="x", link_type="enables", confidence=0.9, reason="why",
                                      proposer="offline"), slug="a")
        store.append([
            event(GardenObserved(path="a.md", format="v7.1", content_hash="h", text_hash="t",
                                 block=None, block_text=None), slug="a"),
            proposal,
        ])
        state = load_state(store)
        assert list(state.patterns["a"].pending) == [proposal.id]
        store.append([event(ProposalAccepted(proposal_id=proposal.id, rule="auto_accept"), slug="a")])
        block = load_state(store).block("a")
        assert [(l.target, l.type, l.confidence) for l in block.inferred_links] == [("x", "enables", 0.9)]
        store.append([event(LinkRescored(target="x", link_type="enables", old_confidence=0.9,
                                         new_confidence=0.5), slug="a"),
                      event(LinkPruned(target="x", link_type="enables", rule="min_link_confidence",
                                       values={"confidence": 0.5, "threshold": 0.7}, confidence=0.5),
                            slug="a")])
        state = load_state(store)
        assert state.block("a").inferred_links == () and state.patterns["a"].pending == {}
