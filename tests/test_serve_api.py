"""`garden serve`'s JSON API over HTTP: a real server (a `garden serve` subprocess on a free
loopback port), a real garden and log; every path that writes ends with `garden verify`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import tended_garden
from flows.lock import garden_lock
from served import WRITE, client, event_count, garden, remove_inferred_links, served, verified


@pytest.fixture
def tended(tmp_path, monkeypatch) -> Path:
    """A tended garden of 40 patterns with proposals pending; its log at ./.garden/events.db."""
    root = tmp_path / "g"
    assert tended_garden(root, monkeypatch, 40)["pending"] > 0
    return root


def pending_ids(http) -> list[str]:
    return [item["id"] for item in http.get("/api/pending").json()["items"]]


def first_link(http) -> dict:
    return next(item for item in http.get("/api/pending").json()["items"] if item["kind"] == "link")


def test_pending_has_the_shapes_scripts_rely_on_and_the_review_s_items(tended):
    listed = json.loads(garden(tended, "review", "--json").stdout)
    with served(tended) as base, client(base) as http:
        answer = http.get("/api/pending")
        assert answer.status_code == 200
        items = answer.json()["items"]
        assert answer.json()["count"] == len(items)
        assert [i["id"] for i in items] == [p["id"] for g in listed for p in g["proposals"]]
        for item in items:
            assert {"id", "slug", "kind", "confidence", "diff", "reason", "proposer", "run_id"} <= set(item)
            assert ("target" in item) if item["kind"] == "link" else ("entity" in item)
            assert isinstance(item["confidence"], float)
        # Each item's diff is what accepting it alone would make: for a pattern with one pending
        # proposal, the review's diff of that pattern.
        alone = next(g for g in listed if len(g["proposals"]) == 1)
        assert next(i["diff"] for i in items if i["slug"] == alone["slug"]) == alone["diff"]
        # Both sides' titles and summaries, from the files.
        some = next(i for i in items if i["kind"] == "link")
        text = {slug: (tended / "patterns" / f"{slug}.md").read_text() for slug in (some["slug"], some["target"])}
        for slug, title, summary in [(some["slug"], some["title"], some["summary"]),
                                     (some["target"], some["target_title"], some["target_summary"])]:
            assert title and summary and title in text[slug] and summary[:40] in text[slug]
        link = next(i for i in items if i["kind"] == "link")
        only = http.get("/api/pending", params={"pattern": link["slug"], "kind": "link"}).json()["items"]
        assert [i["id"] for i in only] == [i["id"] for i in items if (i["slug"], i["kind"]) == (link["slug"], "link")]
        uncertain = http.get("/api/pending", params={"order": "uncertain"}).json()["items"]
        assert [abs(i["confidence"] - 0.5) for i in uncertain] == sorted(abs(i["confidence"] - 0.5) for i in items)
        highest = http.get("/api/pending", params={"order": "confidence"}).json()["items"]
        assert [i["confidence"] for i in highest] == sorted((i["confidence"] for i in items), reverse=True)
        low, high = sorted(i["confidence"] for i in items)[len(items) // 4], max(i["confidence"] for i in items)
        ranged = http.get("/api/pending", params={"min_confidence": low, "max_confidence": high - 1e-9}).json()
        assert [i["id"] for i in ranged["items"]] == [i["id"] for i in items if low <= i["confidence"] < high]
        assert ranged["count"] == len(ranged["items"])
        bare = http.get("/api/pending", params={"diff": "0"}).json()["items"]
        assert bare == [{**i, "diff": None} for i in items]
        first = http.get("/api/pending", params={"limit": 3}).json()
        assert first == {"items": items[:3], "count": len(items), "seq": answer.json()["seq"]}
        assert http.get("/api/pending", params={"limit": "0"}).json() == {
            "error": "limit must be a positive whole number, not '0'"}
        assert http.get("/api/pending", params={"order": "x"}).json() == {
            "error": "order must be one of uncertain, pattern, confidence, not 'x'"}


def test_accept_records_the_curator_s_decision_writes_the_file_and_verify_agrees(tended):
    with served(tended) as base, client(base) as http:
        item = first_link(http)
        answer = http.post("/api/decisions", json={"id": item["id"], "decision": "accept", "by": "ana"}, headers=WRITE)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["decision"] == "accept" and body["id"] == item["id"]
        assert body["result"]["written"] == [item["slug"]] and body["result"]["errors"] == []
        assert item["id"] not in pending_ids(http)  # the next request sees the decision
    text = (tended / "patterns" / f"{item['slug']}.md").read_text("utf-8")
    assert f"target: {item['target']}" in text
    history = json.loads(garden(tended, "history", item["slug"], "--json").stdout)
    accepted = [e for e in history if e["payload"]["type"] == "ProposalAccepted" and e["payload"]["proposal_id"] == item["id"]]
    assert [e["actor"] for e in accepted] == ["curator:ana"]
    assert verified(tended)


def test_reject_with_a_note_then_undo_by_reverting_its_run(tended):
    with served(tended) as base, client(base) as http:
        item = first_link(http)
        answer = http.post("/api/decisions", headers=WRITE,
                           json={"id": item["id"], "decision": "reject", "note": "not the same idea", "by": "bo"})
        assert answer.status_code == 200, answer.text
        run_id = answer.json()["result"]["run_id"]
        assert item["id"] not in pending_ids(http)
        assert verified(tended)
        undone = http.post(f"/api/runs/{run_id}/revert", json={"by": "bo"}, headers=WRITE)
        assert undone.status_code == 200, undone.text
        assert undone.json()["reverted_run"] == run_id and undone.json()["reopened"] == [item["id"]]
        assert item["id"] in pending_ids(http)
        runs = http.get("/api/runs").json()["runs"]
        assert next(r for r in runs if r["run_id"] == run_id)["status"] == "reverted"
    history = json.loads(garden(tended, "history", item["slug"], "--json").stdout)
    rejected = [e for e in history if e["payload"]["type"] == "ProposalRejected" and e["payload"].get("proposal_id") == item["id"]]
    assert rejected and rejected[0]["actor"] == "curator:bo"
    assert verified(tended)


def test_a_decision_that_cannot_be_made_is_a_4xx_with_the_cli_s_message(tended):
    with served(tended) as base, client(base) as http:
        before = event_count(tended)
        bad = [({"id": "NOPE", "decision": "accept"}, 400,
                 "no proposal NOPE in the log (`garden review` lists the pending ones); nothing was decided"),
               ({"id": "X", "decision": "maybe"}, 400, "decision must be \"accept\" or \"reject\", not 'maybe'"),
               ({"decision": "accept"}, 400, "give the proposal's id (\"id\": a string)"),
               ([1, 2], 400, "the body must be a JSON object with id and decision")]
        for body, status, message in bad:
            answer = http.post("/api/decisions", json=body, headers=WRITE)
            assert (answer.status_code, answer.json()) == (status, {"error": message})
        item = first_link(http)
        assert http.post("/api/decisions", json={"id": item["id"], "decision": "reject"}, headers=WRITE).status_code == 200
        again = http.post("/api/decisions", json={"id": item["id"], "decision": "reject"}, headers=WRITE)
        assert again.status_code == 400
        assert again.json()["error"].startswith(f"proposal {item['id']} was already rejected (event #")
    assert event_count(tended) > before
    assert verified(tended)


def test_a_decision_while_a_tend_holds_the_lock_is_409_and_nothing_is_recorded(tended):
    with served(tended) as base, client(base) as http:
        item = first_link(http)
        before = event_count(tended)
        text = (tended / "patterns" / f"{item['slug']}.md").read_bytes()
        with garden_lock(tended / ".garden" / "events.db"):
            answer = http.post("/api/decisions", json={"id": item["id"], "decision": "accept"}, headers=WRITE)
        assert answer.status_code == 409
        assert answer.json()["error"].startswith("another tend is running on ")
        assert answer.json()["error"].endswith("; wait for it to finish (a killed one releases the lock by itself)")
        assert event_count(tended) == before
        assert (tended / "patterns" / f"{item['slug']}.md").read_bytes() == text
        assert item["id"] in pending_ids(http)
        # released: the same decision goes through
        assert http.post("/api/decisions", json={"id": item["id"], "decision": "accept"}, headers=WRITE).status_code == 200
    assert verified(tended)


def test_runs_a_run_s_diff_a_pattern_s_history_and_health(tended):
    with served(tended) as base, client(base) as http:
        runs = http.get("/api/runs").json()["runs"]
        assert runs == json.loads(garden(tended, "runs", "--json").stdout)
        tend = runs[0]["run_id"]
        diff = http.get(f"/api/runs/{tend}")
        assert diff.status_code == 200 and diff.json()["run_id"] == tend and diff.json()["patterns"]
        assert http.get("/api/runs/NOSUCH").status_code == 400
        slug = next(iter(diff.json()["patterns"]))
        pattern = http.get(f"/api/patterns/{slug}").json()
        assert pattern["slug"] == slug
        assert pattern["history"] == json.loads(garden(tended, "history", slug, "--json").stdout)
        missing = http.get("/api/patterns/no-such-pattern")
        assert missing.status_code == 404 and "no-such-pattern" in missing.json()["error"]
        health = http.get("/api/health")
        assert health.status_code == 200
        assert health.json() == json.loads(garden(tended, "health", "--json").stdout)


def test_revert_with_later_changes_is_409_with_the_conflict_list(tended):
    with served(tended) as base, client(base) as http:
        tend = http.get("/api/runs").json()["runs"][0]["run_id"]
        slug = sorted(http.get(f"/api/runs/{tend}").json()["patterns"])[0]
        path = tended / "patterns" / f"{slug}.md"
        remove_inferred_links(path)  # a later change to the same items
        assert garden(tended, "observe").returncode == 0
        before = event_count(tended)
        answer = http.post(f"/api/runs/{tend}/revert", json={}, headers=WRITE)
        assert answer.status_code == 409, answer.text
        body = answer.json()
        assert body["reverted_run"] == tend and list(body["conflicts"]) == [slug]
        assert body["error"].startswith(f"later events changed what run {tend} changed; nothing was reverted")
        assert event_count(tended) == before
    assert verified(tended)


def test_two_decisions_at_once_both_go_through_one_after_the_other(tended):
    from concurrent.futures import ThreadPoolExecutor

    with served(tended) as base, client(base) as http:
        items = [i for i in http.get("/api/pending").json()["items"] if i["kind"] == "link"][:2]
        assert len(items) == 2

        def decide(item):
            with client(base) as own:
                return own.post("/api/decisions", json={"id": item["id"], "decision": "reject"}, headers=WRITE)

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(decide, items))
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        left = [i["id"] for i in http.get("/api/pending").json()["items"]]
        assert not {i["id"] for i in items} & set(left)
    assert verified(tended)


def test_sample_is_the_cli_s_stratified_sample_with_titles(tended):
    listed = json.loads(garden(tended, "review", "--sample", "6", "--seed", "2", "--json").stdout)
    with served(tended) as base, client(base) as http:
        drawn = http.get("/api/sample", params={"n": 6, "seed": 2}).json()
        assert drawn["seed"] == 2 and drawn["count"] == len(listed) == 6
        assert [i["id"] for i in drawn["items"]] == [i["id"] for i in listed]
        assert [i["policy"] for i in drawn["items"]] == [i["policy"] for i in listed]
        assert [i["diff"] for i in drawn["items"]] == [i["diff"] for i in listed]
        assert all(i["title"] for i in drawn["items"])
        assert http.get("/api/sample", params={"n": "0"}).json() == {
            "error": "n (how many) and seed must be whole numbers, n above 0"}
