"""Duplicate patterns (issue 14): both proposers can say "these two are the same idea"; a pair is
one suspicion whichever side says it, shown to curators as a merge candidate in `garden review`,
counted by `garden health`, decided by accept / reject without a file changing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from conftest import CORPUS, SEEDS, needs_corpus, tend_in_process
from fake_openai import answer, fake_openai
from garden.duplicates import check_duplicates
from garden.proposal import Candidate, ProposalRequest

runner = CliRunner()
SLUGS = sorted(p.stem for p in SEEDS.glob("*.md"))


def garden_cmd(*args):
    return runner.invoke(app, list(args))


def twin(garden: Path, slug: str, new: str, title_word: str = "Again") -> None:
    """A copy of a pattern under another slug and a slightly different title: the same idea."""
    text = (garden / f"{slug}.md").read_text("utf-8").replace(f"slug: {slug}", f"slug: {new}")
    text = text.replace('title: "', f'title: "{title_word} ', 1)
    (garden / f"{new}.md").write_text(text, "utf-8")


def suspicions() -> list[tuple]:
    db = sqlite3.connect(".garden/events.db")
    return db.execute("SELECT slug, json_extract(payload, '$.other') FROM events "
                      "WHERE type = 'DuplicateSuspected' ORDER BY seq").fetchall()


def hashes(garden: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(garden.glob("*.md"))}


def merge_candidates() -> list[dict]:
    return [m for g in json.loads(garden_cmd("review", "--json").stdout) for m in g["merge_candidates"]]


def test_an_offline_tend_suspects_a_near_identical_pair_once(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    twin(seed_garden, SLUGS[0], "twin-a")
    tend_in_process()
    tend_in_process()  # asked again (--today is the same: only what is due), and nothing new
    assert suspicions() == [(SLUGS[0], "twin-a")]  # one suspicion, not one per side nor per tend
    (m,) = merge_candidates()
    title = next(line for line in (seed_garden / f"{SLUGS[0]}.md").read_text().splitlines()
                 if line.startswith("title:")).split('"')[1]
    assert m["slugs"] == sorted([SLUGS[0], "twin-a"]) and m["proposer"] == "offline"
    assert sorted(m["titles"]) == sorted([title, f"Again {title}"])
    assert m["evidence"]["cosine"] >= 0.9 and m["confidence"] == 0.95
    shown = garden_cmd("review", "--list")
    assert "merge candidates: 1 suspected duplicate pattern pair(s)" in shown.stdout
    assert f'{m["id"]}  {m["slugs"][0]} "{m["titles"][0]}" ~ {m["slugs"][1]} "{m["titles"][1]}"  confidence 0.95' \
        in shown.stdout
    health = json.loads(garden_cmd("health", "--json").stdout)["duplicate_patterns"]
    assert (health["suspected"]["count"], health["confirmed"]["count"], health["dismissed"]["count"]) == (1, 0, 0)
    assert health["suspected"]["examples"][0].startswith(f"{m['slugs'][0]} ({m['titles'][0]}) ~ ")
    assert "duplicate patterns" in garden_cmd("health").stdout
    for side in (SLUGS[0], "twin-a"):  # each side's history shows it
        history = garden_cmd("history", side).stdout
        assert f"suspected duplicate: {SLUGS[0]} ~ twin-a (0.95, a merge candidate)" in history


def test_accept_confirms_reject_dismisses_no_file_changes_and_no_second_suspicion(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    twin(seed_garden, SLUGS[0], "twin-a")
    twin(seed_garden, SLUGS[1], "twin-b")
    tend_in_process()
    first = {tuple(m["slugs"]): m["id"] for m in merge_candidates()}
    assert len(first) == 2, first
    confirm, dismiss = first[tuple(sorted([SLUGS[0], "twin-a"]))], first[tuple(sorted([SLUGS[1], "twin-b"]))]
    before = hashes(seed_garden)
    accepted = garden_cmd("accept", confirm, "--by", "ana")
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout == (f"accepted {confirm} ({SLUGS[0]}: duplicate of twin-a, 0.95): confirmed "
                               "duplicate, a merge candidate; the files are unchanged\n")
    rejected = garden_cmd("reject", dismiss, "--by", "bo", "--note", "a different angle")
    assert rejected.exit_code == 0, rejected.output
    assert rejected.stdout == (f"rejected {dismiss} ({SLUGS[1]}: duplicate of twin-b, 0.95): not the same "
                               "idea; the files are unchanged\n")
    assert hashes(seed_garden) == before
    assert garden_cmd("verify").exit_code == 0
    again = garden_cmd("accept", confirm)
    assert again.exit_code == 1
    assert again.stderr == (f"error: duplicate suspicion {confirm} ({SLUGS[0]} ~ twin-a) was already confirmed "
                            "by curator:ana; nothing was decided\n")
    health = json.loads(garden_cmd("health", "--json").stdout)["duplicate_patterns"]
    assert (health["suspected"]["count"], health["confirmed"]["count"], health["dismissed"]["count"]) == (0, 1, 1)
    assert merge_candidates() == []
    assert "merge candidates" not in garden_cmd("review", "--list").stdout

    import datetime as dt
    tend_in_process(today=dt.date(2027, 1, 30))  # every pattern asked again: decided pairs stay decided
    assert len(suspicions()) == 2
    assert garden_cmd("verify").exit_code == 0
    # A changed text is a new question: the dismissed pair may be suspected again.
    path = seed_garden / "twin-b.md"
    path.write_text(path.read_text("utf-8") + "\nOne more line about it.\n", "utf-8")
    tend_in_process(today=dt.date(2027, 1, 31))
    assert suspicions()[2:] == [("twin-b", SLUGS[1])]
    assert [m["slugs"] for m in merge_candidates()] == [sorted([SLUGS[1], "twin-b"])]
    assert garden_cmd("verify").exit_code == 0


def llm_env(monkeypatch, server):
    for name, value in {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url,
                        "GARDEN_MODEL": "fake-model", "GARDEN_PROPOSER": "llm"}.items():
        monkeypatch.setenv(name, value)


def test_a_models_duplicates_are_recorded_once_a_pair_and_invalid_ones_rejected(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)

    def reply(request, index):
        return answer({"inferred_links": [], "entities": [], "duplicates": [
            {"target": SLUGS[1], "confidence": 0.8, "reason": "Its text says it is also known as this."},
            {"target": "nowhere", "confidence": 0.9, "reason": "Not in the garden."},
        ]})

    with fake_openai() as server:
        server.handle_with(reply)
        llm_env(monkeypatch, server)
        counts = tend_in_process()
        schema = server.requests[0].json["response_format"]["json_schema"]["schema"]
    assert "duplicates" in schema["properties"]
    assert sorted(suspicions()) == [(SLUGS[0], SLUGS[1]), (SLUGS[2], SLUGS[1])]
    (m,) = [m for m in merge_candidates() if m["slugs"] == [SLUGS[0], SLUGS[1]]]
    assert (m["proposer"], m["model"], m["confidence"]) == ("llm", "fake-model", 0.8)
    assert m["reason"] == "Its text says it is also known as this."
    db = sqlite3.connect(".garden/events.db")
    reasons = sorted(r for (r,) in db.execute(
        "SELECT json_extract(payload, '$.reason') FROM events WHERE type = 'ProposalRejected' "
        "AND json_extract(payload, '$.item.duplicate') IS NOT NULL"))
    assert reasons == ["invalid: a pattern cannot be a duplicate of itself"] + [
        "invalid: duplicate target 'nowhere' is not in the garden"] * 3
    assert counts["invalid"] == 4  # so a run's counts still add up
    assert counts["proposed"] + counts["invalid"] == counts["accepted"] + counts["rejected"] + counts["pending"]
    assert garden_cmd("verify").exit_code == 0


def request(**kwargs) -> ProposalRequest:
    return ProposalRequest(slug="a", title="A", summary="", keywords=(), text="", text_hash="h",
                           existing_links=(), existing_entities=(), curated={},
                           candidates=(Candidate("b", "B", "", 0.4),), **kwargs)


def test_a_duplicate_must_name_a_pattern_the_model_was_shown():
    ok, bad = check_duplicates(request(), [
        {"target": "b", "confidence": 0.7, "reason": "Same idea."},
        {"target": "c", "confidence": 0.7, "reason": "Not shown."},
        {"target": "a", "confidence": 0.7, "reason": "Itself."},
        {"target": "b", "confidence": 0.7, "reason": "Twice."},
        {"target": "../x", "confidence": 0.7, "reason": "Bad slug."},
    ], {"a", "b", "c"})
    assert [s.target for s in ok] == ["b"]
    assert [reason for reason, _ in bad] == [
        "duplicate target 'c' was not shown (not a candidate, a link's target or a curated relationship)",
        "a pattern cannot be a duplicate of itself",
        "duplicate target 'b' named twice in one answer",
        "duplicate target '../x' is not a valid slug",
    ]
    assert check_duplicates(request(), "b", {"a", "b"})[1] == [("duplicates is not a list", "b")]


@needs_corpus()
def test_the_corpus_pairs_an_offline_tend_suspects():
    """On the 600-pattern corpus, the offline proposer suspects 7 pairs at a cosine of 0.5 or more
    (the threshold, `garden.duplicates.DUPLICATE_COSINE`), each once."""
    from flows.propose import suspicion_events
    from garden.candidates import make_request, rank_patterns
    from garden.catalog import load_garden
    from proposers.offline import OfflineProposer

    garden = load_garden(CORPUS)
    ranking = rank_patterns(garden.patterns.values())
    proposer, suspected, events = OfflineProposer(), set(), []
    for slug in sorted(garden.patterns):
        request = make_request(garden.patterns[slug], garden.patterns[slug].block, ranking, garden.patterns)
        events += suspicion_events(request, {}, proposer, garden.patterns.keys(), None, None, ranking, suspected)
    pairs = sorted(tuple(sorted((e.slug, e.payload.other))) for e in events)
    assert len(pairs) == len(set(pairs)) == 7, pairs
    assert ("kanban", "kanban-production") in pairs
    assert ("flexible-manufacturing", "flexible-manufacturing-systems-fms") in pairs


def test_a_snapshot_keeps_the_suspected_pairs(seed_garden, monkeypatch):
    from events.projection import load_state, save_snapshot
    from events.store import EventStore

    monkeypatch.chdir(seed_garden.parent)
    twin(seed_garden, SLUGS[0], "twin-a")
    tend_in_process()
    with EventStore(Path(".garden/events.db")) as store:
        folded = load_state(store, use_snapshots=False)
        save_snapshot(store, folded)
        assert len(folded.duplicates) == 1
        assert load_state(store).to_json() == folded.to_json()


def test_a_revert_withdraws_or_reopens_a_suspicion(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    twin(seed_garden, SLUGS[0], "twin-a")
    tended = tend_in_process()
    (m,) = merge_candidates()
    accepted = json.loads(garden_cmd("accept", m["id"], "--by", "ana", "--json").stdout)
    assert merge_candidates() == []
    assert garden_cmd("revert", accepted["run_id"], "--by", "ana").exit_code == 0  # pending again
    assert [x["id"] for x in merge_candidates()] == [m["id"]]
    reverted = garden_cmd("revert", tended["run_id"], "--by", "ana", "--json")
    assert json.loads(reverted.stdout)["withdrawn_suspicions"] == [m["id"]]
    assert merge_candidates() == []
    health = json.loads(garden_cmd("health", "--json").stdout)["duplicate_patterns"]
    assert (health["suspected"]["count"], health["confirmed"]["count"], health["dismissed"]["count"]) == (0, 0, 0)
    assert garden_cmd("verify").exit_code == 0
