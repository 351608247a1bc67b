"""The typed state: events of an old schema read through upcasters, a snapshot decodes to the
state it encoded, and a review's preview is what accepting then does."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import orjson

from events.projection import _fingerprint, load_state
from events.store import EventStore, row_to_event
from flows import curate
from garden.event import SCHEMA_VERSION, GardenObserved, LinkPruned, event
from garden.state import PatternState, State, Tended, apply, apply_event
from garden.upcast import upcast

from typer.testing import CliRunner

from cli.main import app
from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process

TODAY = dt.date(2026, 11, 22)


def garden_cmd(*args):
    return CliRunner().invoke(app, list(args))


def observed(block: dict) -> GardenObserved:
    return GardenObserved(path="s.md", format="v7.1", content_hash="h", text_hash="t", block=block,
                          block_text=None)


def link(target: str, confidence: float | None) -> dict:
    return {"target": target, "type": "enables", "confidence": confidence, "reason": "r"}


def row(seq: int, kind: str, payload: dict, version: int, slug: str = "s") -> tuple:
    return (seq, f"E{seq}", kind, slug, "R", "pruner", "2026-11-22T00:00:00+00:00", version,
            json.dumps({"type": kind, **payload}), None)


def test_a_schema_1_prune_without_its_score_removes_the_first_copy_with_its_key():
    block = {"last_pruned": None, "entities": [], "communities": [],
             "inferred_links": [link("a", 0.9), link("a", None), link("b", 0.8)]}
    state = State()
    apply_event(state, event(observed(block), slug="s"))
    old = {"target": "a", "link_type": "enables", "rule": "max_links_per_pattern", "values": {}}
    apply(state, row(2, "LinkPruned", old, version=1))
    assert [l["confidence"] for l in state.patterns["s"].block["inferred_links"]] == [None, 0.8]
    assert row_to_event(row(2, "LinkPruned", old, version=1)).payload.scored is False
    # Today's prune names the copy by its score: the one without a confidence goes.
    state = State()
    apply_event(state, event(observed(block), slug="s"))
    apply_event(state, event(LinkPruned(target="a", link_type="enables", rule="r", confidence=None), slug="s"))
    assert [l["confidence"] for l in state.patterns["s"].block["inferred_links"]] == [0.9, 0.8]


def test_upcasting_completes_a_schema_1_payload_and_leaves_a_current_one_alone():
    old = {"type": "LinkProposed", "target": "b", "link_type": "enables", "confidence": 0.8, "reason": "r",
           "proposer": "offline"}
    new = upcast("LinkProposed", 1, old)
    assert new["prompt_version"] is None and new["raw_confidence"] is None and new["model"] is None
    assert "prompt_version" not in old  # the stored payload is not changed
    assert upcast("LinkProposed", SCHEMA_VERSION, old) is old
    assert event(observed({"last_pruned": None, "entities": [], "communities": [], "inferred_links": []}),
                 slug="s").schema_version == SCHEMA_VERSION


def test_a_pattern_snapshot_decodes_to_the_state_it_encoded():
    block = {"last_pruned": "2026-02-19", "entities": [], "communities": [], "inferred_links": [link("a", 0.9)]}
    pattern = PatternState(path="s.md", content_hash="h", text_hash="t", block=block, observed_block=block,
                           file_block=block, observed_text="graph_garden: ...\n", tended=Tended("2026-11-22", "R", "t"),
                           owned={"a|enables": "curator"})
    back = PatternState.decode(pattern.encode())
    assert back == pattern and back.block is back.observed_block  # stored once, one object again
    assert orjson.loads(back.encode()) == orjson.loads(pattern.encode())


def test_the_fold_fingerprint_follows_the_code(tmp_path):
    class Module:
        __file__ = str(tmp_path / "fold.py")

    Path(Module.__file__).write_text("def apply(): pass\n")
    before = _fingerprint(Module)
    Path(Module.__file__).write_text("def apply(): return 1\n")
    assert _fingerprint(Module) != before and 0 < before < 2**63


def test_review_shows_what_accepting_then_does(tmp_path, monkeypatch):
    """The diff `garden review` shows for a pattern is the diff of the run that accepts it."""
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    tend_in_process(WIDE_REVIEW_POLICY, TODAY)
    with EventStore(Path(".garden/events.db")) as store:
        state = load_state(store)
        found = curate.pending_by_pattern(state)
        slug, proposals = next((s, ps) for s, ps in found.items()
                               if any(p["kind"] == "link" for p in ps.values()))
        shown = curate.review_diff(state, slug, proposals)
    assert shown, "a pending link changes the block"
    accepted = garden_cmd("accept", "--pattern", slug, "--by", "cur", "--json")
    assert accepted.exit_code == 0, accepted.output
    run_id = json.loads(accepted.stdout)["run_id"]
    diff = garden_cmd("diff", run_id, "--json")
    assert diff.exit_code == 0, diff.output
    # The accept also stamps last_pruned as it writes: the rest of the diff is the preview's.
    made = [line for line in json.loads(diff.stdout)["patterns"][slug].splitlines() if "last_pruned" not in line]
    assert made == [line for line in shown if "last_pruned" not in line]
    assert garden_cmd("verify").exit_code == 0
