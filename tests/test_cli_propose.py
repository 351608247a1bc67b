"""`garden propose` end to end: both proposers, every answer recorded as events, over real HTTP."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from cli.main import app
from fake_openai import answer, error, fake_openai, hang, refusal

runner = CliRunner()
KEY = "sk-test-secret-key-123456"

SEEDS = ("self-leadership-vs-self-management", "distributed-leadership-design",
         "distributed-leadership-in-complexity")


@pytest.fixture
def garden_dir(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GARDEN_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return seed_garden


@pytest.fixture
def llm_env(garden_dir, monkeypatch):
    with fake_openai() as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("GARDEN_MODEL", "fake-model")
        monkeypatch.setenv("GARDEN_TIMEOUT", "1")
        monkeypatch.setenv("GARDEN_MAX_RETRIES", "1")
        yield server


def events_of(db=".garden/events.db"):
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT type, slug, actor, payload FROM events ORDER BY seq").fetchall()
    conn.close()
    return [(t, s, a, json.loads(p)) for t, s, a, p in rows]


def propose(*args):
    return runner.invoke(app, ["propose", *args])


def test_offline_propose_records_every_proposal_and_writes_no_file(garden_dir):
    before = {p.name: p.read_bytes() for p in garden_dir.iterdir()}
    result = propose("--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["proposer"] == "offline" and payload["counts"]["asked"] == 3
    assert {p.name: p.read_bytes() for p in garden_dir.iterdir()} == before
    recorded = events_of()
    types = [t for t, *_ in recorded]
    assert types[0] == "RunStarted" and types[-1] == "RunCompleted"
    assert types.count("GardenObserved") == 3 and types.count("ProposerCalled") == 3
    proposals = [e for e in recorded if e[0] in ("LinkProposed", "EntityProposed")]
    assert len(proposals) == len([p for p in payload["proposals"] if p["type"] != "ProposalRejected"])
    assert all(actor == "proposer:offline/tfidf-v1" for _, _, actor, _ in proposals)


def test_llm_without_a_key_is_a_clear_error(garden_dir):
    result = propose("--proposer", "llm")
    assert result.exit_code == 1
    assert result.stderr == "error: no API key: set OPENAI_API_KEY or use --proposer offline\n"


def test_llm_answers_valid_and_invalid_items_are_all_events(llm_env):
    me, other = SEEDS[1], SEEDS[0]
    llm_env.script(answer({
        "inferred_links": [
            {"target": other, "type": "complementary", "confidence": 0.9, "reason": "Both about leading."},
            {"target": "nowhere", "type": "enables", "confidence": 0.9, "reason": "r"},
            {"target": me, "type": "enables", "confidence": 0.9, "reason": "r"},
            {"target": "adaptive-facilitation", "type": "complementary", "confidence": 0.5, "reason": "lower now"},
            {"target": other, "type": "enabler", "confidence": 0.9, "reason": "r"},
            {"target": other, "type": "tools", "confidence": 7, "reason": "r"},
            {"target": other, "type": "tools", "confidence": 0.8, "reason": ""},
            {"target": other, "type": "complementary", "confidence": 0.8, "reason": "again"},
        ],
        "entities": [
            {"id": "Bad Id", "type": "concept", "label": "X", "relevance": 0.5},
            {"id": "shared-leadership", "type": "concept", "label": "Shared Leadership", "relevance": 0.8},
            {"id": "systems-thinking", "type": "framework", "label": "Systems Thinking", "relevance": 0.8},
        ],
    }))
    result = propose("--proposer", "llm", "--pattern", me, "--json")
    assert result.exit_code == 0, result.output
    recorded = [e for e in events_of() if e[1] == me]
    by_type = {}
    for t, _, _, p in recorded:
        by_type.setdefault(t, []).append(p)
    assert [(p["target"], p["link_type"]) for p in by_type["LinkProposed"]] == [(other, "complementary")]
    assert [p["entity_id"] for p in by_type["EntityProposed"]] == ["shared-leadership"]
    assert [(p["target"], p["old_confidence"], p["new_confidence"]) for p in by_type["LinkRescored"]] == [
        ("adaptive-facilitation", 0.88, 0.5)]
    assert sorted(p["reason"] for p in by_type["ProposalRejected"]) == sorted([
        "invalid: target 'nowhere' is not in the garden",
        "invalid: self-link: a pattern cannot link to itself",
        "invalid: type 'enabler' is not one of generalizes_from, specializes_to, enables, requires, alternatives, complementary, tools",
        "invalid: confidence 7 is not a number in [0, 1]",
        "invalid: empty reason",
        "invalid: the same link twice in one answer",
        "invalid: entity id 'Bad Id' is not kebab-case (like 'systems-thinking')",
    ])
    # an existing entity returned is a re-assessment (issue 14), not a duplicate
    assert [(p["entity_id"], p["old_relevance"], p["new_relevance"]) for p in by_type["EntityRescored"]] == [
        ("systems-thinking", 0.78, 0.8)]
    assert all(p["item"] is not None for p in by_type["ProposalRejected"])
    (called,) = by_type["ProposerCalled"]
    assert called["outcome"] == "ok" and called["prompt_tokens"] == 50 and called["requests"] == 1
    actors = {a for t, _, a, _ in recorded if t in ("LinkProposed", "ProposerCalled")}
    assert actors == {"proposer:llm/fake-model"}


def test_failures_are_recorded_the_run_goes_on_and_a_rerun_is_cached(llm_env):
    good = answer({"inferred_links": [], "entities": []})
    replies = {SEEDS[0]: answer("{not json"), SEEDS[1]: refusal("I can't help with that."), SEEDS[2]: good}
    llm_env.handle_with(lambda body, i: replies[json.loads(body["messages"][1]["content"])["pattern"]["slug"]])
    result = propose("--proposer", "llm", "--json")
    assert result.exit_code == 0, result.output
    called = {s: p for t, s, _, p in events_of() if t == "ProposerCalled"}
    assert called[SEEDS[0]]["outcome"] == "failed" and called[SEEDS[0]]["error"].startswith("malformed JSON")
    assert called[SEEDS[0]]["raw"] == "{not json"
    assert called[SEEDS[1]]["error"] == "refusal: I can't help with that."
    assert called[SEEDS[2]]["outcome"] == "ok"
    sent = len(llm_env.requests)
    rerun = json.loads(propose("--proposer", "llm", "--pattern", SEEDS[2], "--json").stdout)
    assert rerun["counts"]["requests"] == 0 and rerun["counts"]["cache_hits"] == 1
    assert len(llm_env.requests) == sent


def test_a_hang_and_a_401_fail_cleanly_and_never_leak_the_key(llm_env):
    def reply(body, i):
        slug = json.loads(body["messages"][1]["content"])["pattern"]["slug"]
        return hang(3) if slug == SEEDS[0] else error(401, f"Incorrect API key provided: {KEY}")

    llm_env.handle_with(reply)
    result = propose("--proposer", "llm", "--pattern", SEEDS[0], "--pattern", SEEDS[1], "--json")
    assert result.exit_code == 0, result.output
    errors = sorted(p["error"] for t, _, _, p in events_of() if t == "ProposerCalled")
    assert errors[0].startswith("HTTP 401 authentication failed")
    assert errors[1].startswith("timed out after 2 attempts")
    with open(".garden/events.db", "rb") as db:
        assert KEY.encode() not in db.read()
    assert KEY not in result.output


def test_an_unknown_pattern_is_a_clear_error(garden_dir):
    result = propose("--pattern", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: no pattern 'nope' in the garden (see `garden check`)\n"


def test_tend_says_what_is_missing_before_starting_prefect(garden_dir):
    result = runner.invoke(app, ["tend", "--proposer", "llm"])
    assert (result.exit_code, result.stderr) == (
        1, "error: no API key: set OPENAI_API_KEY or use --proposer offline\n")
    result = runner.invoke(app, ["tend", "--garden", "nowhere"])
    assert (result.exit_code, result.stderr) == (1, "error: nowhere: no such folder; pass --garden DIR\n")
