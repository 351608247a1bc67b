"""Sampled review (issue 13): `garden review --sample N` draws the machine's items across the
whole confidence range (pending, and what the policy accepted or rejected), and a curator's
decision on any of them is a label; overruling the policy writes the block at once, confirming
it leaves the file alone."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import make_garden, tend_in_process
from events.queries import curator_labels
from events.store import EventStore
from fake_openai import answer, fake_openai
from garden.catalog import load_garden
from garden.policy import Policy
from garden.precision import Label
from proposers.llm import PROMPT_VERSION

runner = CliRunner()
TYPES = ["complementary", "requires", "enables", "tools"]
# A wide band for both kinds, so the policy accepts, keeps for review and rejects in numbers.
POLICY = Policy(auto_accept=0.7, review_floor=0.4, entity_auto_accept=0.7, entity_review_floor=0.4,
                min_link_confidence=0.3, min_entity_relevance=0.3)


def garden_cmd(*args: str):
    return runner.invoke(app, list(args))


def tend_with_llm(monkeypatch, policy: Policy = POLICY) -> dict:
    """A tend by the LLM proposer (a fake server): every pattern gets six links (to its first
    candidates) and four entities whose confidences are spread over the whole range, the same for
    a pattern each time."""
    slugs = sorted(p.stem for p in Path("patterns").glob("*.md"))

    def reply(request, index):
        document = json.loads(request["messages"][-1]["content"])
        n = slugs.index(document["pattern"]["slug"])
        candidates = [c["slug"] for c in document["candidates"]]
        links = [{"target": candidates[k % len(candidates)], "type": TYPES[k % 4],
                  "confidence": round(((n * 7 + k * 17) % 100) / 100 + 0.005, 3), "reason": f"reason {k}"}
                 for k in range(6)]
        entities = [{"id": f"idea-{(n + k * 3) % 20}", "type": "concept", "label": f"Idea {(n + k * 3) % 20}",
                     "relevance": round(((n * 11 + k * 29) % 100) / 100 + 0.005, 3)} for k in range(4)]
        return answer({"inferred_links": links, "entities": entities})

    with fake_openai() as server:
        server.handle_with(reply)
        for name, value in {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url,
                            "GARDEN_MODEL": "fake-model", "GARDEN_PROPOSER": "llm"}.items():
            monkeypatch.setenv(name, value)
        return tend_in_process(policy)


@pytest.fixture
def tended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 30)
    result = tend_with_llm(monkeypatch)
    assert result["accepted"] and result["pending"] and result["rejected"] > result["invalid"]
    return tmp_path


def sample(n: int, seed: int, *more: str) -> list[dict]:
    result = garden_cmd("review", "--sample", str(n), "--seed", str(seed), "--json", *more)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def everything() -> list[dict]:
    return sample(100_000, 0)


def stratum(item: dict) -> tuple[str, int]:
    return item["kind"], min(int(item["confidence"] * 10), 9)


def item_key(item: dict) -> tuple:
    return item["slug"], item["kind"], item.get("target"), item.get("link_type"), item.get("entity")


def pick(pool: list[dict], policy: str, kind: str | None = None, skip: int = 0) -> dict:
    return [i for i in pool if i["policy"] == policy and kind in (None, i["kind"])][skip]


def files_now() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path("patterns").glob("*.md")}


def block(slug: str):
    return load_garden(Path("patterns"), cache=None).patterns[slug].block


def in_block(item: dict) -> bool:
    b = block(item["slug"])
    if b is None:
        return False
    if item["kind"] == "link":
        return any((l.target, l.type) == (item["target"], item["link_type"]) for l in b.inferred_links)
    return any(e.id == item["entity"] for e in b.entities)


def history(slug: str) -> str:
    return garden_cmd("history", slug).stdout


def verified() -> bool:
    result = garden_cmd("verify")
    assert result.exit_code == 0, result.output
    return True


def labels() -> list[Label]:
    with EventStore(Path(".garden/events.db"), create=False) as store:
        return curator_labels(store)


# --- the sample ---------------------------------------------------------------------------


def test_a_sample_is_stratified_across_kinds_and_bands_and_reproducible_by_seed(tended):
    pool = everything()
    assert {i["policy"] for i in pool} == {"accepted", "rejected", "pending"}
    assert len({i["id"] for i in pool}) == len(pool) and len({item_key(i) for i in pool}) == len(pool)
    sizes = Counter(stratum(i) for i in pool)
    assert {kind for kind, _ in sizes} == {"link", "entity"} and len(sizes) >= 16
    # As many items as bands: one from each.
    assert sorted(stratum(i) for i in sample(len(sizes), 1)) == sorted(sizes)
    # More: evenly, a band short of items giving what it has.
    first = sample(60, 1)
    counts = Counter(stratum(i) for i in first)
    level = max(counts.values())
    assert len(first) == 60 and all(counts[s] >= min(sizes[s], level - 1) for s in sizes)
    assert len({item_key(i) for i in first}) == 60
    assert [i["id"] for i in sample(60, 1)] == [i["id"] for i in first]
    assert {i["id"] for i in sample(60, 2)} != {i["id"] for i in first}
    assert sample(10, 1, "--proposer", "offline") == []
    assert len(sample(10, 1, "--proposer", "llm")) == 10


def test_the_json_shape_scripts_rely_on(tended):
    pool = everything()
    conn = sqlite3.connect(".garden/events.db")
    proposed = {row[0]: row[1] for row in conn.execute(
        "SELECT id, coalesce(json_extract(payload, '$.confidence'), json_extract(payload, '$.relevance')) "
        "FROM events WHERE type IN ('LinkProposed', 'EntityProposed')")}
    for item in pool:
        assert {"id", "kind", "proposer", "model", "confidence", "slug", "policy", "rule", "band", "diff",
                "run_id"} <= set(item)
        assert (item["proposer"], item["model"]) == ("llm", "fake-model")
        assert item["confidence"] == proposed[item["id"]]
        assert item["band"][0] <= item["confidence"] < item["band"][1] or item["confidence"] == item["band"][1] == 1
        assert item["diff"].startswith(f"--- a/{item['slug']}\n+++ b/{item['slug']}")
    link, entity = pick(pool, "accepted", "link"), pick(pool, "rejected", "entity")
    assert {"target", "link_type", "reason"} <= set(link) and link["rule"].startswith("auto_accept: confidence")
    assert entity["relevance"] == entity["confidence"] and entity["entity"] == entity["entity_id"]
    assert entity["rule"].startswith("review_floor: relevance")
    assert pick(pool, "pending")["rule"] is None


def test_an_item_a_curator_decided_is_never_offered_again(tended):
    pool = everything()
    chosen = [pick(pool, "pending"), pick(pool, "accepted"), pick(pool, "rejected")]
    for item, verb in zip(chosen, ("accept", "reject", "accept")):
        assert garden_cmd(verb, item["id"], "--by", "ann").exit_code == 0
    confirmed = pick(pool, "accepted", skip=1)
    assert garden_cmd("accept", confirmed["id"], "--by", "ann").exit_code == 0
    left = {i["id"] for i in everything()}
    assert len(left) == len(pool) - 4
    assert not left & {i["id"] for i in [*chosen, confirmed]}
    again = garden_cmd("reject", confirmed["id"], "--by", "bo")
    assert again.exit_code == 1
    assert again.stderr.startswith(f"error: proposal {confirmed['id']} was already accepted (event #")
    assert "by curator:ann" in again.stderr and again.stderr.endswith("; nothing was decided\n")
    assert verified()


# --- deciding a sampled item -----------------------------------------------------------------


def test_accepting_what_the_policy_rejected_adds_it_and_writes_at_once(tended):
    item = pick(everything(), "rejected", "link")
    assert not in_block(item)
    result = garden_cmd("accept", item["id"], "--by", "ann", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == [item["slug"]]
    assert in_block(item)
    said = garden_cmd("accept", pick(everything(), "rejected", "entity")["id"], "--by", "ann")
    assert said.exit_code == 0 and "): over the policy's rejection" in said.stdout and "1 files written" in said.stdout
    assert f"accepted {item['id']} (curator, over the policy's rejection)" in history(item["slug"])
    assert Label("llm", "fake-model", "link", item["confidence"], True, PROMPT_VERSION, item["id"]) in labels()
    assert verified()


def test_rejecting_what_the_policy_accepted_prunes_it_and_it_is_not_proposed_again(tended, monkeypatch):
    item = pick(everything(), "accepted", "link")
    assert in_block(item)
    result = garden_cmd("reject", item["id"], "--by", "bo", "--note", "not related", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == [item["slug"]]
    assert not in_block(item)
    shown = history(item["slug"])
    assert f"pruned link -> {item['target']} ({item['link_type']}) by curator" in shown
    assert f"rejected {item['id']}: curator, over the policy's accept (not related)" in shown
    assert Label("llm", "fake-model", "link", item["confidence"], False, PROMPT_VERSION, item["id"]) in labels()
    assert verified()
    tend_with_llm(monkeypatch, POLICY.model_copy(update={"retend_after_days": 0}))
    assert not in_block(item)  # declined for this text, as a curator's reject of a pending one
    again = sqlite3.connect(".garden/events.db").execute(
        "SELECT count(*) FROM events WHERE type = 'LinkProposed' AND slug = ? AND "
        "json_extract(payload, '$.target') = ? AND json_extract(payload, '$.link_type') = ?",
        [item["slug"], item["target"], item["link_type"]]).fetchone()[0]
    assert again == 1
    assert verified()


def test_confirming_the_policy_is_a_label_and_leaves_the_files_alone(tended):
    pool = everything()
    kept, dropped = pick(pool, "accepted", "entity"), pick(pool, "rejected", "link")
    before = files_now()
    accepted = garden_cmd("accept", kept["id"], "--by", "ann", "--json")
    rejected = garden_cmd("reject", dropped["id"], "--by", "ann", "--json")
    assert accepted.exit_code == 0 and rejected.exit_code == 0, accepted.output + rejected.output
    assert json.loads(accepted.stdout)["written"] == [] and json.loads(rejected.stdout)["written"] == []
    assert files_now() == before
    said = garden_cmd("accept", pick(pool, "accepted", "link")["id"], "--by", "ann")
    assert "confirms the policy's accept; the file is unchanged" in said.stdout and "files written" not in said.stdout
    assert f"accepted {kept['id']} (curator, confirming the policy's accept)" in history(kept["slug"])
    assert f"rejected {dropped['id']}: curator, confirming the policy's rejection" in history(dropped["slug"])
    found = labels()
    assert Label("llm", "fake-model", "entity", kept["confidence"], True, PROMPT_VERSION, kept["id"]) in found
    assert Label("llm", "fake-model", "link", dropped["confidence"], False, PROMPT_VERSION, dropped["id"]) in found
    assert verified()


def test_many_ids_of_every_kind_are_decided_and_labelled_together(tended):
    pool = everything()
    chosen = [pick(pool, "pending"), pick(pool, "rejected"), pick(pool, "accepted")]
    ids = [i["id"] for i in chosen]
    refused = garden_cmd("accept", *ids, "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert refused.exit_code == 1 and refused.stderr.endswith("; nothing was decided\n")
    assert labels() == []
    result = garden_cmd("accept", *ids, "--by", "ann", "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert [d["id"] for d in done["decided"]] == ids
    assert [d["policy"] for d in done["decided"]] == ["pending", "rejected", "accepted"]
    assert set(done["written"]) == {chosen[0]["slug"], chosen[1]["slug"]}
    assert all(in_block(i) for i in chosen)
    assert sorted(l.confidence for l in labels()) == sorted(i["confidence"] for i in chosen)
    assert verified()


def test_sample_options_are_checked(tended):
    bad = garden_cmd("review", "--sample", "5", "--pattern", "x")
    assert (bad.exit_code, bad.stderr) == (1, "error: --sample draws from the whole garden; narrow it "
                                              "with --proposer, not --pattern, --run or --min-confidence\n")
    seedless = garden_cmd("review", "--seed", "3")
    assert (seedless.exit_code, seedless.stderr) == (1, "error: --seed and --proposer go with --sample N\n")
    listed = garden_cmd("review", "--sample", "3", "--seed", "4", "--list")
    assert listed.exit_code == 0, listed.output
    assert "3 sampled (seed 4) of " in listed.stderr
    assert all(i["id"] in listed.stdout for i in sample(3, 4))


# --- on a terminal ---------------------------------------------------------------------------


def test_a_sample_on_a_terminal_one_key_each(tended):
    from test_review_pty import PROMPT, Terminal

    first, second = sample(2, 9)
    term = Terminal(tended, "review", "--sample", "2", "--seed", "9", "--by", "ana")
    try:
        intro = term.expect(PROMPT)
        assert "2 sampled (seed 9) of " in intro and first["id"] in intro
        assert f"policy: {first['policy']} (" in intro
        term.send("a")
        term.expect(f" {first['id']} (run ")
        term.expect(PROMPT)
        term.send("r")
        term.expect("note (why; Enter when done): ")
        term.send("not the same idea\r")
        term.expect(f" {second['id']} (run ")
        status, rest = term.wait()
    finally:
        term.close()
    assert status == 0, rest
    assert "1 accepted, 1 rejected, 0 skipped (each recorded as it was made)" in rest
    assert "Traceback" not in rest
    assert not {first["id"], second["id"]} & {i["id"] for i in everything()}
    assert len(labels()) == 2
    assert verified()
