"""The LLM prompt as a model reads it (issue 14), and a real tend replaying recorded model answers.

tests/data/llm_answers/ holds one answer per pattern of the garden `replay_garden` builds (make_garden
of 8, with one existing link and one curated relationship pointed at patterns of the garden),
written as a model following the prompt would answer: new links of every type, new entities of
the garden's types, existing links (to targets outside the candidates, in the garden or not) and
existing entities re-assessed. They are served by tests/fake_openai.py to the real openai client
in a real tend; every item must land where the prompt promises, none rejected.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, garden_bin, make_garden, tend_in_process
from fake_openai import answer, fake_openai
from garden.model import LINK_TYPES, Entity, InferredLink
from garden.proposal import Candidate, PatternRef, ProposalRequest
from garden.validate import EntityRescore, check_answer
from proposers.llm import PROMPT_VERSION, SYSTEM_PROMPT, build_messages

ANSWERS = Path(__file__).parent / "data" / "llm_answers"
DLD, DLC, SL = "distributed-leadership-design", "distributed-leadership-in-complexity", "self-leadership-vs-self-management"


def recorded(slug: str) -> dict:
    return json.loads((ANSWERS / f"{slug}.json").read_text("utf-8"))


# --- the prompt -------------------------------------------------------------------------------

def test_every_link_type_is_defined_with_its_direction_and_an_example():
    lines = {line.split(":", 1)[0][2:]: line for line in SYSTEM_PROMPT.splitlines() if line.startswith("- ")}
    for kind in LINK_TYPES:
        assert f" Example: " in lines[kind] and f" {kind} " in lines[kind].split("Example:")[1], kind
    assert 'A link is stored in this pattern and reads "this pattern --type--> target":' in SYSTEM_PROMPT
    assert lines["generalizes_from"] == (
        "- generalizes_from: the target is a broader, more general pattern that this one is a specific "
        "case or application of. Example: art-therapy-self-guided generalizes_from expressive-therapy.")
    assert lines["specializes_to"].startswith(
        "- specializes_to: the target is a narrower, more specific case or application of this pattern "
        "(the reverse of generalizes_from).")
    assert lines["tools"].startswith("- tools: the target is a concrete technique, practice or instrument "
                                     "used to carry out this pattern.")
    assert lines["alternatives"].startswith("- alternatives: the target meets the same need in a different way")


def test_scores_are_the_probability_a_careful_curator_keeps_the_item():
    assert ("A link's \"confidence\" and an entity's \"relevance\" are the probability that a careful "
            "curator keeps this item: a number from 0 to 1") in SYSTEM_PROMPT


def test_the_prompt_says_how_existing_items_are_re_assessed_and_that_leaving_one_out_keeps_it():
    assert ('to re-assess an existing entity, return it in "entities" with the same id and your new '
            "relevance.") in SYSTEM_PROMPT
    assert ('To re-assess an existing link, return it in "inferred_links" with the same target and the '
            "same type and your new confidence") in SYSTEM_PROMPT
    assert "An existing item you leave out keeps its value: leaving it out is not a vote to remove it." in SYSTEM_PROMPT
    assert "concept, method, tool" not in SYSTEM_PROMPT  # the entity types come from the garden
    assert PROMPT_VERSION == "graph-garden-prompt-3"


def test_an_existing_entity_returned_with_a_new_relevance_is_a_re_assessment_not_a_duplicate():
    request = ProposalRequest(
        slug="focus-blocks", title="Focus blocks", summary="", keywords=(), text="", text_hash="h",
        existing_links=(), curated={}, candidates=(),
        existing_entities=(Entity(id="attention", type="concept", label="Attention", relevance=0.5),))
    checked = check_answer(request, {"inferred_links": [], "entities": [
        {"id": "attention", "type": "concept", "label": "Attention", "relevance": 0.2, "reason": "Barely named."},
        {"id": "attention", "type": "concept", "label": "Attention", "relevance": 0.3, "reason": "Again."},
        {"id": "attentions", "type": "concept", "label": "Attentions", "relevance": 0.9, "reason": "New?"},
    ]}, {"focus-blocks"})
    assert checked.rescores == [EntityRescore("attention", 0.5, 0.2, "Barely named.")]
    assert [i.reason for i in checked.invalid] == [
        "the same entity twice in one answer",
        "near-duplicate of entity 'attention' (the same words spelt differently)"]


def test_existing_links_show_their_targets_and_curated_targets_their_titles():
    request = ProposalRequest(
        slug="focus-blocks", title="Focus blocks", summary="", keywords=(), text="", text_hash="h",
        existing_links=(InferredLink(target="deep-work", type="enables", confidence=0.6, reason="r"),
                        InferredLink(target="gone", type="tools", confidence=0.4)),
        existing_entities=(), curated={"complementary": ("pomodoro", "elsewhere")},
        candidates=(Candidate("inbox-zero", "Inbox zero", "Empty the inbox daily.", 0.2),),
        references={"deep-work": PatternRef("deep-work", "Deep work", "Long stretches of focus."),
                    "pomodoro": PatternRef("pomodoro", "Pomodoro", "25 minutes on.")},
        entity_types=(("concept", 12), ("practice", 3)), declined=frozenset({"entity|noise", "x|tools"}))
    document = json.loads(build_messages(request)[1]["content"])
    assert document["existing_inferred_links"] == [
        {"target": "deep-work", "type": "enables", "confidence": 0.6, "reason": "r",
         "target_title": "Deep work", "target_summary": "Long stretches of focus."},
        {"target": "gone", "type": "tools", "confidence": 0.4, "target_in_garden": False}]
    assert document["curated_relationships"] == {
        "complementary": [{"slug": "pomodoro", "title": "Pomodoro"}, {"slug": "elsewhere", "in_garden": False}]}
    assert document["entity_types"] == [{"type": "concept", "count": 12}, {"type": "practice", "count": 3}]
    assert document["declined_entities"] == ["noise"]


# --- a tend replaying recorded answers --------------------------------------------------------

def replay_garden(root: Path) -> Path:
    """make_garden of 8; one existing link of 0000 and one curated relationship of 0005 pointed
    at patterns of the garden (the seeds' targets are all outside it)."""
    patterns = make_garden(root / "patterns", 8)
    first = patterns / f"{DLD}-0000.md"
    first.write_text(first.read_text("utf-8").replace("- target: adaptive-facilitation\n",
                                                      f"- target: {SL}-0002\n"), "utf-8")
    fifth = patterns / f"{SL}-0005.md"
    fifth.write_text(fifth.read_text("utf-8").replace("    - slug: adversarial-growth\n",
                                                      f"    - slug: {DLC}-0001\n"), "utf-8")
    return patterns


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """One real tend (`--proposer llm`) whose model answers are the recorded ones."""
    root = tmp_path_factory.mktemp("replay")
    replay_garden(root)

    def reply(body, index):
        document = json.loads(body["messages"][1]["content"])
        return answer(recorded(document["pattern"]["slug"]))

    with pytest.MonkeyPatch.context() as mp, fake_openai() as server:
        server.handle_with(reply)
        mp.chdir(root)
        for name, value in {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url,
                            "GARDEN_MODEL": "recorded", "GARDEN_PROPOSER": "llm"}.items():
            mp.setenv(name, value)
        tended = tend_in_process()
        runs = subprocess.run([garden_bin(), "runs", "--json"], capture_output=True, text=True, cwd=root)
        verify = subprocess.run([garden_bin(), "verify"], capture_output=True, text=True, cwd=root)
    sent = {json.loads(r.json["messages"][1]["content"])["pattern"]["slug"]: json.loads(r.json["messages"][1]["content"])
            for r in server.requests}
    from events.store import EventStore

    with EventStore(root / ".garden" / "events.db") as store:
        events = [e for e in store.events() if e.run_id == tended["run_id"]]
    return {"root": root, "tended": tended, "sent": sent, "events": events,
            "runs": json.loads(runs.stdout), "verify": verify}


def payloads(replayed, kind: str, slug: str | None = None) -> list:
    return [e.payload for e in replayed["events"] if e.type == kind and (slug is None or e.slug == slug)]


def test_the_recorded_answers_cover_what_the_prompt_asks(replayed):
    """Every pattern asked once; each link type proposed as a new link; existing links (targets
    outside the candidates) and existing entities re-assessed; new entities of the garden's types."""
    sent = replayed["sent"]
    assert sorted(sent) == sorted(p.stem for p in ANSWERS.glob("*.json")) and len(sent) == 8
    new_types, outside, rescored_entities, new_entity_types = set(), 0, 0, set()
    garden_types = {t["type"] for t in sent[f"{DLD}-0000"]["entity_types"]}
    for slug, document in sent.items():
        existing = {(l["target"], l["type"]) for l in document["existing_inferred_links"]}
        candidates = {c["slug"] for c in document["candidates"]}
        entities = {e["id"] for e in document["existing_entities"]}
        for link in recorded(slug)["inferred_links"]:
            if (link["target"], link["type"]) in existing:
                outside += link["target"] not in candidates
            else:
                new_types.add(link["type"])
        for entity in recorded(slug)["entities"]:
            if entity["id"] in entities:
                rescored_entities += 1
            else:
                new_entity_types.add(entity["type"])
    assert new_types == set(LINK_TYPES)
    assert outside >= 8 and rescored_entities >= 8
    assert new_entity_types <= garden_types and len(new_entity_types) >= 3


def test_the_user_message_shows_the_gardens_entity_types_and_what_existing_targets_are(replayed):
    first, fifth = replayed["sent"][f"{DLD}-0000"], replayed["sent"][f"{SL}-0005"]
    assert first["entity_types"] == [{"type": "concept", "count": 29}, {"type": "practice", "count": 24},
                                     {"type": "framework", "count": 12}, {"type": "person", "count": 3}]
    links = {l["target"]: l for l in first["existing_inferred_links"]}
    assert links[f"{SL}-0002"] == {
        "target": f"{SL}-0002", "type": "complementary", "confidence": 0.88,
        "reason": "Real-time facilitation adjustment enables distributed leadership",
        "target_title": "2 Self-Leadership vs. Self-Management",
        "target_summary": links[f"{SL}-0002"]["target_summary"]}
    assert links[f"{SL}-0002"]["target_summary"].startswith("Self-management optimises execution")
    assert links["adaptive-leadership-under-uncertainty"]["target_in_garden"] is False
    assert f"{SL}-0002" not in {c["slug"] for c in first["candidates"]}
    assert {"slug": f"{DLC}-0001", "title": "1 Distributed Leadership in Complexity"} in \
        fifth["curated_relationships"]["complementary"]


def test_every_recorded_item_lands_where_the_prompt_promised(replayed):
    """Re-assessed items are rescored, new ones proposed, a duplicate claim suspected; none is
    rejected as invalid."""
    assert [r for r in payloads(replayed, "ProposalRejected") if r.reason.startswith("invalid")] == []
    (run,) = [r for r in replayed["runs"] if r["run_id"] == replayed["tended"]["run_id"]]
    assert run["counts"]["invalid"] == 0
    for slug, document in replayed["sent"].items():
        existing = {(l["target"], l["type"]): l["confidence"] for l in document["existing_inferred_links"]}
        entities = {e["id"]: e["relevance"] for e in document["existing_entities"]}
        rescored = {(p.target, p.link_type): (p.old_confidence, p.new_confidence, p.reason)
                    for p in payloads(replayed, "LinkRescored", slug)}
        proposed = {(p.target, p.link_type): p.confidence for p in payloads(replayed, "LinkProposed", slug)}
        entity_rescored = {p.entity_id: (p.old_relevance, p.new_relevance, p.reason)
                           for p in payloads(replayed, "EntityRescored", slug)}
        entity_proposed = {p.entity_id: p.relevance for p in payloads(replayed, "EntityProposed", slug)}
        answer_ = recorded(slug)
        for link in answer_["inferred_links"]:
            key = (link["target"], link["type"])
            if key in existing:
                assert rescored[key] == (existing[key], link["confidence"], link["reason"]), (slug, key)
            else:
                assert proposed[key] == link["confidence"], (slug, key)
        for entity in answer_["entities"]:
            if entity["id"] in entities:
                assert entity_rescored[entity["id"]] == (entities[entity["id"]], entity["relevance"],
                                                        entity["reason"]), (slug, entity["id"])
            else:
                assert entity_proposed[entity["id"]] == entity["relevance"], (slug, entity["id"])
        assert len(rescored) + len(proposed) == len(answer_["inferred_links"])
        assert len(entity_rescored) + len(entity_proposed) == len(answer_["entities"])
        suspected = {p.other: p.confidence for p in payloads(replayed, "DuplicateSuspected", slug)}
        assert suspected == {d["target"]: d["confidence"] for d in answer_.get("duplicates", [])}, slug
    assert payloads(replayed, "DuplicateSuspected")  # the recorded set claims one duplicate pattern


def test_the_policy_prunes_what_the_model_re_assessed_low_and_keeps_the_rest(replayed):
    pruned_entities = {(e.slug, e.payload.entity_id) for e in replayed["events"] if e.type == "EntityPruned"}
    assert (f"{DLD}-0000", "commons-stewardship") in pruned_entities  # 0.85 re-assessed 0.3
    assert (f"{DLD}-0000", "facilitation") not in pruned_entities  # 0.8 re-assessed 0.8
    pruned_links = {(e.slug, e.payload.target, e.payload.link_type) for e in replayed["events"]
                    if e.type == "LinkPruned"}
    assert (f"{DLD}-0000", f"{SL}-0002", "complementary") in pruned_links  # the wrong type, 0.35
    assert (f"{DLD}-0000", "active-listening-depth", "requires") not in pruned_links  # 0.78
    text = (replayed["root"] / "patterns" / f"{DLD}-0000.md").read_text("utf-8")
    assert "id: commons-stewardship" not in text and "id: facilitation" in text
    assert f"target: {SL}-0002\n      type: requires" in text  # the right type, accepted at 0.72


def test_the_tended_garden_verifies(replayed):
    assert (replayed["verify"].returncode, replayed["verify"].stderr) == (0, "")


# --- the prompt for users -------------------------------------------------------------------

def test_docs_llm_prompt_is_what_show_prompt_prints_and_the_readme_links_it():
    shown = subprocess.run([sys.executable, "scripts/show_prompt.py", "--markdown"], capture_output=True,
                           text=True, cwd=ROOT, check=True).stdout
    assert (ROOT / "docs" / "llm-prompt.md").read_text("utf-8") == shown, \
        "docs/llm-prompt.md is stale: run scripts/show_prompt.py --markdown > docs/llm-prompt.md"
    assert SYSTEM_PROMPT in shown
    assert "[docs/llm-prompt.md](docs/llm-prompt.md)" in (ROOT / "README.md").read_text("utf-8")
