"""Re-assessment: every machine-written link and entity of a tended pattern judged afresh, the
policy pruning what falls below its thresholds, a curator's items proposed for pruning instead,
the cap spreading a clean-up over runs, and a revert bringing a clean-up back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from events.projection import load_state
from events.queries import verify
from events.store import EventStore, row_to_event
from flows import curate, tending
from flows.report import summary_rows
from garden.candidates import make_request, rank_patterns
from garden.catalog import load_garden
from garden.health import garden_health
from garden.policy import Policy
from garden.proposals import answer_events
from garden.reassess import pair_evidence
from garden.settings import load_settings
from garden.validate import check_answer
from proposers.llm import build_messages
from proposers.offline import entity_relevance, link_confidence

TODAY = dt.date(2026, 11, 22)

TOPICS = {
    "garden-compost": "compost soil garden worms compost heap garden soil nutrients compost",
    "garden-soil": "soil garden compost nutrients soil structure garden worms soil",
    "garden-worms": "worms compost soil garden worms castings compost worms",
    "team-meetings": "meeting agenda team facilitation meeting decisions team agenda",
    "team-agenda": "agenda meeting team facilitation agenda decisions meeting team",
    "team-decisions": "decisions team meeting consent decisions facilitation team",
}

LEGACY_BLOCK = """graph_garden:
  last_pruned: '2026-02-16'
  entities:
  - Worms
  - Rocket Science
  communities:
  - soil-life
  inferred_links:
  - target: team-meetings
    reason: 'Shared entities: Living System'
    strength: 3
  - target: absent-pattern
    reason: 'Shared entities: Feedback Loop'
    strength: 2
  - target: garden-soil
    reason: 'Shared entities: Soil'
    strength: 3
"""


def pattern_text(slug: str, body: str, block: str = "") -> str:
    title = slug.replace("-", " ").title()
    return (f"---\nslug: {slug}\ntitle: \"{title}\"\nsummary: \"{body[:40]}\"\n{block}---\n\n"
            f"# {title}\n\n{body}.\n")


@pytest.fixture
def garden(tmp_path, monkeypatch):
    root = tmp_path / "patterns"
    root.mkdir()
    for slug, body in TOPICS.items():
        block = LEGACY_BLOCK if slug == "garden-compost" else ""
        (root / f"{slug}.md").write_text(pattern_text(slug, body, block), "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GARDEN_CACHE", "false")
    return root


def tend(policy=Policy(), patterns=None, dry_run=False, today=TODAY):
    settings = load_settings(garden=Path("patterns"), db=Path(".garden/events.db"))
    with EventStore(settings.db) as store:
        t = tending.start_tend(settings, policy, store, today=today, patterns=patterns, dry_run=dry_run)
        tending.run_steps(t)
        return tending.summary(t) if dry_run else tending.finish_tend(t)


def events_of(kind: str, slug: str | None = None) -> list:
    with EventStore(Path(".garden/events.db")) as store:
        return [row_to_event(r).payload for r in store.rows(types=(kind,), slug=slug)]


def verified(garden_dir: Path) -> bool:
    with EventStore(Path(".garden/events.db")) as store:
        return verify(store, load_garden(garden_dir, cache=None)).ok


def block_of(slug: str) -> dict:
    with EventStore(Path(".garden/events.db")) as store:
        return load_state(store).patterns[slug].block


def test_legacy_links_and_entities_get_their_values_from_the_reassessment(garden):
    result = tend()
    rescored = {p.target: p for p in events_of("LinkRescored", "garden-compost")}
    assert set(rescored) == {"team-meetings", "absent-pattern", "garden-soil"}
    missing = rescored["absent-pattern"]
    assert (missing.old_confidence, missing.new_confidence) == (None, 0.0)
    assert missing.evidence == {"cosine": 0.0, "rank": None, "shared_terms": [], "missing": True,
                                "type_default": True}
    assert missing.reason == "the target is not in the garden"
    soil = rescored["garden-soil"]
    assert soil.evidence["rank"] in (1, 2) and soil.evidence["cosine"] > 0.3 and "soil" in soil.evidence["shared_terms"]
    assert soil.new_confidence == link_confidence(soil.evidence["cosine"]) >= Policy().min_link_confidence
    pruned = {p.target: p for p in events_of("LinkPruned", "garden-compost")}
    assert set(pruned) == {"team-meetings", "absent-pattern"}
    assert pruned["absent-pattern"].rule == "min_link_confidence"
    assert pruned["absent-pattern"].values == {"confidence": 0.0, "threshold": Policy().min_link_confidence}
    entities = {p.entity_id: p for p in events_of("EntityRescored", "garden-compost")}
    worms = entities["worms"]  # scored as a new entity is, by the offline proposer's own function
    assert worms.evidence["occurrences"] >= 1 and worms.new_relevance == entity_relevance(worms.evidence["occurrences"])
    assert (entities["rocket-science"].new_relevance, entities["rocket-science"].evidence) == (0.0, {"occurrences": 0})
    assert [p.entity_id for p in events_of("EntityPruned", "garden-compost")] == ["rocket-science"]
    assert result["rescored"] == 5 and result["pruned"] == {"min_entity_relevance": 1, "min_link_confidence": 2}
    text = (garden / "garden-compost.md").read_text("utf-8")
    assert "absent-pattern" not in text and "Rocket Science" not in text and "garden-soil" in text
    assert "soil-life" in text  # communities are not re-assessed: left as they were
    assert verified(garden)
    assert tend()["files_written"] == 0


def test_any_target_is_scored_by_its_cosine_not_only_the_top_candidates(garden):
    patterns = load_garden(garden, cache=None).patterns
    ranking = rank_patterns(patterns.values(), k=1, extra=0)
    top = ranking.top("garden-compost", k=1)[0][0]
    other = next(s for s in ("garden-soil", "garden-worms") if s != top)
    near, far = pair_evidence(ranking, "garden-compost", top), pair_evidence(ranking, "garden-compost", other)
    assert near["rank"] == 1 and far["rank"] is None
    i, j = ranking.index("garden-compost"), ranking.index(other)
    expected = float(ranking.matrix[i].multiply(ranking.matrix[j]).sum())
    assert far["cosine"] == round(expected, 4) and far["cosine"] > 0


def test_a_dry_run_says_how_many_would_go_by_rule_and_records_nothing(garden):
    result = tend(dry_run=True)
    assert result["pruned"] == {"min_entity_relevance": 1, "min_link_confidence": 2}
    rows = dict(summary_rows(result))
    assert rows["would prune: min_link_confidence"] == "2" and rows["re-assessed"] == "5"
    assert "absent-pattern" in (garden / "garden-compost.md").read_text("utf-8")


def test_the_cap_spreads_a_clean_up_over_runs(garden):
    capped = Policy(max_prunes_per_run=1)
    first = tend(capped)
    assert first["pruned"] == {"min_link_confidence": 1}
    assert first["prunes_deferred"] == {"min_entity_relevance": 1, "min_link_confidence": 1}
    assert "prunes left for later runs (max_prunes_per_run): min_link_confidence" in dict(summary_rows(first))
    (pruned,) = events_of("LinkPruned")  # the lowest score first: both unrelated links score 0
    assert pruned.target in ("absent-pattern", "team-meetings") and pruned.confidence == 0.0
    second = tend(capped, today=TODAY + dt.timedelta(days=1))
    third = tend(capped, today=TODAY + dt.timedelta(days=2))
    assert second["tended"] == 0 and second["rescored"] == 0  # the recorded scores suffice
    later = [second["pruned"], third["pruned"]]  # one a night; the two left both score 0
    assert sorted(later, key=str) == [{"min_entity_relevance": 1}, {"min_link_confidence": 1}]
    assert tend(capped, today=TODAY + dt.timedelta(days=3))["pruned"] == {}
    assert verified(garden)


def test_a_revert_of_a_clean_up_run_restores_every_pruned_item(garden):
    before = (garden / "garden-compost.md").read_text("utf-8")
    run_id = tend()["run_id"]
    assert (garden / "garden-compost.md").read_text("utf-8") != before
    with EventStore(Path(".garden/events.db")) as store:
        plan, result = curate.revert(store, load_garden(garden, cache=None), run_id, "ann", None, False,
                                     today=TODAY, state=load_state(store))
    assert not result.errors
    restored = set(plan.restores["garden-compost"][1])
    assert {"link absent-pattern/complementary", "link team-meetings/complementary",
            "entity rocket-science"} <= restored
    assert (garden / "garden-compost.md").read_text("utf-8") == before
    assert verified(garden)


def accept_pending_link(garden: Path, slug: str) -> dict:
    with EventStore(Path(".garden/events.db")) as store:
        state = load_state(store)
        pid, proposal = next((pid, p) for pid, p in state.patterns[slug].pending.items() if p["kind"] == "link")
        curate.decide_proposals(store, load_garden(garden, cache=None), [(slug, pid)], True, "ann", None,
                                today=TODAY, state=state)
    return proposal


def pending_prunes(slug: str) -> dict:
    with EventStore(Path(".garden/events.db")) as store:
        return {pid: p for pid, p in load_state(store).patterns[slug].pending.items() if p["kind"] == "prune"}


def test_a_curator_accepted_link_is_never_pruned_automatically(garden):
    tend(Policy(auto_accept=0.99, review_floor=0.3))  # everything new waits for a curator
    proposal = accept_pending_link(garden, "team-agenda")
    strict = Policy(auto_accept=0.99, review_floor=0.3, min_link_confidence=0.99)
    result = tend(strict, patterns=["team-agenda"], today=TODAY + dt.timedelta(days=1))
    target = proposal["target"]
    assert target not in [p.target for p in events_of("LinkPruned", "team-agenda")]
    assert result["prunes_proposed"] == 1
    [(pid, prune)] = pending_prunes("team-agenda").items()
    assert (prune["item"], prune["target"], prune["owner"], prune["rule"]) == ("link", target, "curator",
                                                                             "min_link_confidence")
    assert f"target: {target}" in (garden / "team-agenda.md").read_text("utf-8")
    # Shown in review with what accepting it would do; asked once, not again next run.
    from cli.curate import describe

    assert f"prune link -> {target} (" in describe(pid, prune) and "accept prunes it, reject keeps it" in describe(pid, prune)
    assert "-    - target: " + target in "\n".join(curate.review_diff(load_state_now(), "team-agenda", {pid: prune}))
    assert tend(strict, today=TODAY + dt.timedelta(days=2))["prunes_proposed"] == 0
    # The curator keeps it: it stays, and is not proposed again while the text is unchanged.
    with EventStore(Path(".garden/events.db")) as store:
        curate.decide_proposals(store, load_garden(garden, cache=None), [("team-agenda", pid)], False, "ann",
                                "keep it", today=TODAY, state=load_state(store))
    assert tend(strict, today=TODAY + dt.timedelta(days=3))["prunes_proposed"] == 0
    assert any(l["target"] == target for l in block_of("team-agenda")["inferred_links"])
    assert verified(garden), json.dumps(_debug_verify(garden))[:3000]


def load_state_now():
    with EventStore(Path(".garden/events.db")) as store:
        return load_state(store)


def test_a_link_written_by_hand_is_proposed_for_pruning_and_accepting_prunes_it(garden):
    tend()
    path = garden / "garden-worms.md"
    text = path.read_text("utf-8")
    hand = "    - target: team-decisions\n      type: complementary\n      confidence: 0.9\n      reason: Mine.\n"
    assert "  inferred_links:\n    - target: garden" in text and "team-decisions" not in text
    path.write_text(text.replace("  inferred_links:\n", "  inferred_links:\n" + hand), "utf-8")
    result = tend(patterns=["garden-worms"], today=TODAY + dt.timedelta(days=1))
    assert "team-decisions" not in [p.target for p in events_of("LinkPruned", "garden-worms")]
    assert result["prunes_proposed"] == 1
    [(pid, prune)] = pending_prunes("garden-worms").items()
    assert (prune["target"], prune["owner"]) == ("team-decisions", "hand")
    with EventStore(Path(".garden/events.db")) as store:
        curate.decide_proposals(store, load_garden(garden, cache=None), [("garden-worms", pid)], True, "ann",
                                None, today=TODAY, state=load_state(store))
    assert "team-decisions" not in path.read_text("utf-8")
    assert verified(garden)


def test_health_counts_the_inherited_items_left_unreassessed(garden):
    def figure():
        found = load_garden(garden, cache=None)
        state = load_state_now() if Path(".garden/events.db").exists() else None
        blocks = {s: (state.patterns[s].block if state else p.block.model_dump(mode="json") if p.block else None)
                  for s, p in found.patterns.items()}
        reassessed = {s: state.patterns[s].reassessed for s in found.patterns} if state else {}
        return garden_health(found, blocks, {}, reassessed)["inherited_unreassessed"]

    assert figure() == {"links": 3, "entities": 2, "count": 5}
    tend()
    assert figure() == {"links": 0, "entities": 0, "count": 0}


def test_the_llm_is_shown_every_existing_link_and_its_rescores_are_link_rescored(garden):
    tend()
    found = load_garden(garden, cache=None)
    ranking = rank_patterns(found.patterns.values(), k=1, extra=0)
    pattern = found.patterns["garden-compost"]
    block = pattern.block.model_copy(update={"inferred_links": pattern.block.inferred_links + (
        pattern.block.inferred_links[0].model_copy(update={"target": "team-decisions"}),)})
    request = make_request(pattern, block, ranking, found.patterns, k=1)
    assert "team-decisions" not in [c.slug for c in request.candidates]
    shown = json.loads(build_messages(request)[1]["content"])["existing_inferred_links"]
    assert "team-decisions" in [l["target"] for l in shown]
    answer = {"inferred_links": [{"target": "team-decisions", "type": "complementary", "confidence": 0.1,
                                  "reason": "Unrelated."}], "entities": []}
    checked = check_answer(request, answer, set(found.patterns))
    events = answer_events(request, __import__("garden.proposal", fromlist=["x"]).ProposerAnswer(
        "garden-compost", answer), checked, "llm", "m", None)
    [rescored] = [e.payload for e in events if e.type == "LinkRescored"]
    assert (rescored.target, rescored.new_confidence, rescored.proposer) == ("team-decisions", 0.1, "llm")


def _debug_verify(garden_dir):
    with EventStore(Path(".garden/events.db")) as store:
        return verify(store, load_garden(garden_dir, cache=None)).to_dict()
