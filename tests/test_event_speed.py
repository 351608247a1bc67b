"""The fast paths of building and appending events store exactly what the slow ones stored.

- `event(...)` builds the envelope without validating it: the row it stores is byte for byte the
  row of `Event(...)` (validated) around the same payload, for every event type.
- `chained_rows` hashes with orjson and serializes payloads without pydantic's Python wrapper:
  its rows are those of the documented definition (`json.dumps` of the row, `model_dump_json`).
- `new_id` and `now_iso` write what python-ulid and `datetime.isoformat` wrote.
- Data from the edges is still validated: a bad payload value, a bad row read from the log.
- An append made while SQLite stores its rows is still all or nothing; a new log has 16 KB
  pages and an old one keeps its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from ulid import ULID

from events.memory import MemoryEventStore
from events.store import COLUMNS, GENESIS, AppendResult, EventStore, chain_hash, chained_rows, row_to_event
from garden.event import (EVENT_TYPES, BlockRestored, BlockWritten, BlockWriteStarted, CalibrationFitted,
                          CommunityPruned, DuplicateSuspected, EntityProposed, EntityPruned,
                          EntityRescored, Event, ExternalEditObserved, FitLabel, GardenObserved,
                          LinkProposed, LinkPruned, LinkRescored, ProposalAccepted, ProposalDeferred,
                          ProposalRejected, ProposalReopened, ProposerCalled, PruneProposed,
                          RejectionLifted, RunCompleted, RunFailed, RunReverted, RunStarted, event,
                          new_id, now_iso)

BLOCK = {"last_pruned": "2025-11-01", "entities": [{"id": "ent-cache", "type": "concept",
                                                      "label": "Cache", "relevance": 0.9}],
         "communities": [], "inferred_links": [{"target": "b", "type": "enables", "confidence": 0.71,
                                                "reason": "shares \"quotes\", ünïcode and a\nnewline"}]}

# One representative payload of every event type, as our code makes them (an int where a float
# is due, a date object, nested dicts, None, quotes and non-ASCII text in strings).
PAYLOADS = [
    GardenObserved(path="patterns/a.md", format="v7.1", content_hash="c" * 64, text_hash="t" * 64,
                   block=BLOCK, block_text="graph_garden:\n  entities: []\n", title="Ä title",
                   domain="data", curated=["b", "c"]),
    ExternalEditObserved(path="patterns/a.md", content_hash="d" * 64, previous_hash="c" * 64,
                         text_hash="t" * 64, block=BLOCK, block_text=None, block_changed=True,
                         merged=BLOCK, kept=["link b/enables"], yielded=[]),
    LinkProposed(target="b", link_type="enables", confidence=1, reason="why \"not\"", proposer="llm",
                 model="m", prompt_version="p3", raw_confidence=0.5),
    EntityProposed(entity_id="ent-x", entity_type="concept", label="X — ✓", relevance=0.25,
                   proposer="offline"),
    ProposalAccepted(proposal_id=new_id(), rule="auto_accept >= 0.85", policy="rejected",
                     proposal={"kind": "link", "target": "b", "confidence": 0.9}),
    ProposalRejected(proposal_id=None, reason="invalid: no target", item={"raw": [1, 2.5, None]}),
    LinkRescored(target="b", link_type="enables", old_confidence=None, new_confidence=0.4,
                 evidence={"raw_confidence": 0.3}),
    EntityRescored(entity_id="ent-x", old_relevance=0.9, new_relevance=0.1, reason="stale"),
    PruneProposed(item="link", target="b", link_type="enables", rule="confidence < 0.4",
                  values={"confidence": 0.3}, score=0.3, owner="curator"),
    ProposerCalled(proposer="llm", model="m", text_hash="t" * 64, outcome="failed", error="HTTP 500",
                   raw="<html>", requests=2, prompt_tokens=10, completion_tokens=0, latency_ms=12),
    ProposalDeferred(proposer="llm", reason="request budget spent"),
    LinkPruned(target="b", link_type="enables", rule="missing_target", values={"target": "b"},
               confidence=0.7),
    EntityPruned(entity_id="ent-x", rule="min_entity_relevance", relevance=0.1, scored=False),
    CommunityPruned(community_id="com-1", rule="min_community_confidence", confidence=0.2),
    BlockWriteStarted(path="patterns/a.md", content_hash="e" * 64, previous_hash=None,
                      last_pruned=dt.date(2025, 11, 1), banner_added=True),
    BlockWritten(path="patterns/a.md", content_hash="e" * 64, previous_hash="d" * 64, last_pruned=None),
    RunStarted(proposer="offline", policy={"auto_accept": 0.85}, options={"limit": 25}),
    RunCompleted(counts={"LinkProposed": 3}),
    RunFailed(error="interrupted", counts={}),
    RunReverted(reverted_run=new_id(), note="oops"),
    RejectionLifted(target="b", link_type="enables", note="try again"),
    BlockRestored(block=None, reverted_run=new_id(), restored=["link b/enables"], block_text="x\n"),
    ProposalReopened(proposal_id=new_id(), proposal={"kind": "entity", "relevance": 0.5},
                     declined=None, reverted_run=new_id()),
    CalibrationFitted(proposer="llm", model="m", kind="link",
                      labels=[FitLabel(proposal_id=new_id(), confidence=0.8, kept=True)],
                      breakpoints=[(0.0, 0.1), (1.0, 0.9)], recommended={"raw": 0.8},
                      target_precision=0.9),
    DuplicateSuspected(other="b", confidence=0.93, reason="same idea", proposer="offline",
                       evidence={"cosine": 0.93, "shared_terms": ["cache"]}),
]


def reference_rows(batch: list[Event], seq: int = 0, prev: str = GENESIS) -> list[tuple]:
    """The rows as the store's documented definition makes them: each payload's
    `model_dump_json()`, hashed as `json.dumps(row, ensure_ascii=False, separators=(",", ":"))`."""
    rows = []
    for e in batch:
        seq += 1
        row = (seq, e.id, e.type, e.slug, e.run_id, e.actor, e.recorded_at, e.schema_version,
               e.payload.model_dump_json())
        content = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        prev = hashlib.sha256(f"{prev}\n{content}".encode()).hexdigest()
        rows.append((*row, prev))
    return rows


def validated_twin(made: Event) -> Event:
    """`made` built the validating way: `Event(...)` with the same id and time."""
    return Event(payload=made.payload, slug=made.slug, run_id=made.run_id, actor=made.actor,
                 id=made.id, recorded_at=made.recorded_at)


def test_the_table_has_a_payload_of_every_event_type():
    assert sorted(p.type for p in PAYLOADS) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.type)
def test_event_stores_the_row_a_validated_event_stores(payload):
    made = event(payload, slug="a-ü", run_id=new_id(), actor="pipeline")
    twin = validated_twin(made)
    assert made == twin and made.model_fields_set == {"payload", "slug", "run_id", "actor"}
    assert made.model_dump_json() == twin.model_dump_json()
    assert list(chained_rows([made], 0, GENESIS, ())) == list(chained_rows([twin], 0, GENESIS, ())) == reference_rows([made])


envelope_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)


@settings(max_examples=150, deadline=None)
@given(payload=st.sampled_from(PAYLOADS), slug=st.none() | envelope_text,
       run_id=st.none() | envelope_text, actor=envelope_text, text=envelope_text)
def test_any_event_stores_the_documented_row(payload, slug, run_id, actor, text):
    """Any envelope text, and any text in a payload: the fast rows are the reference rows."""
    noted = RunReverted(reverted_run=text, note=text)
    batch = [event(payload, slug=slug, run_id=run_id, actor=actor), event(noted, slug=text)]
    assert list(chained_rows(batch, 0, GENESIS, ())) == reference_rows(batch)
    assert list(chained_rows([validated_twin(e) for e in batch], 0, GENESIS, ())) == reference_rows(batch)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.integers(-2**53, 2**53) | st.text(st.characters(exclude_categories=["Cs"])),
                min_size=9, max_size=9))
def test_chain_hash_is_the_hash_of_the_row_as_json_dumps_writes_it(row):
    content = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    assert chain_hash("f" * 64, tuple(row)) == hashlib.sha256(f"{'f' * 64}\n{content}".encode()).hexdigest()


def test_chain_hash_escapes_every_character_as_json_dumps_does():
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    row = (1, every, "t", None, every[:5000], "a", "2026-01-01", 2, every[::-1])
    content = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    assert chain_hash(GENESIS, row) == hashlib.sha256(f"{GENESIS}\n{content}".encode()).hexdigest()


@pytest.mark.parametrize("key", [None, b"k" * 32], ids=["no key", "log key"])
def test_a_stored_log_has_the_reference_rows_and_reads_back_equal(tmp_path, key):
    batch = [event(p, slug="a", run_id="r1", actor="pipeline") for p in PAYLOADS]
    with EventStore(tmp_path / "events.db", key=key) as store:
        assert store.append(batch).appended == len(PAYLOADS)
        assert store.append(batch[:3]).skipped == 3  # idempotent by id, as ever
        assert list(store.rows()) == reference_rows(batch)
        assert [e.model_dump() for e in store.events()] == [
            {**e.model_dump(), "seq": i, "hash": row[9]} for i, (e, row) in enumerate(
                zip(batch, reference_rows(batch)), 1)]
        assert store.verify_chain() is None
        assert (store.verify_macs() is None) == (key is None)
    with MemoryEventStore() as memory:
        memory.append(batch)
        assert list(memory.rows()) == reference_rows(batch)


def test_event_validates_anything_but_a_payload_model():
    made = event({"type": "RunCompleted", "counts": {"x": 1}}, run_id="r")  # a dict: validated
    assert made.payload == RunCompleted(counts={"x": 1})
    with pytest.raises(ValidationError):
        event({"type": "LinkProposed", "target": "b"})


def test_values_from_the_edges_are_still_validated(tmp_path):
    with pytest.raises(ValidationError):  # a model's confidence that is not a number
        LinkProposed(target="b", link_type="enables", confidence="high", reason="r", proposer="llm")
    with pytest.raises(ValidationError):  # a field no payload has
        RunCompleted(counts={}, extra="x")
    bad = json.dumps({"type": "LinkProposed", "target": "b", "link_type": "enables",
                      "confidence": "high", "reason": "r", "proposer": "llm"})
    row = (1, new_id(), "LinkProposed", "a", None, "pipeline", now_iso(), 2, bad, "0" * 64)
    with pytest.raises(ValidationError):  # a row read from the log
        row_to_event(row)
    path = tmp_path / "events.db"
    EventStore(path).close()
    conn = sqlite3.connect(path)  # written by something else than the store: read, not trusted
    conn.execute(f"INSERT INTO events ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
    conn.commit()
    conn.close()
    with EventStore(path) as store, pytest.raises(ValidationError):
        list(store.events())


def test_new_ids_are_ulids_in_the_order_they_were_made():
    before = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    ids = [new_id() for _ in range(20_000)]
    after = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for made in ids[:: 997]:
        parsed = ULID.from_str(made)
        assert str(parsed) == made and len(made) == 26  # python-ulid writes it the same
        assert before <= parsed.milliseconds <= after
    # within one millisecond the randomness goes up by one, as python-ulid's does
    same_ms = [(a, b) for a, b in zip(ids, ids[1:]) if a[:10] == b[:10]]
    assert same_ms and all(int.from_bytes(ULID.from_str(b).bytes[6:], "big")
                           - int.from_bytes(ULID.from_str(a).bytes[6:], "big") == 1 for a, b in same_ms)


def test_new_ids_from_threads_are_unique():
    found: list[list[str]] = []

    def make():
        found.append([new_id() for _ in range(5_000)])

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for ids in found for i in ids}) == 20_000
    assert all(ids == sorted(ids) for ids in found)


def test_a_forked_child_makes_ids_of_its_own():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first ids, to the parent
        os.write(write, " ".join(new_id() for _ in range(100)).encode())
        os._exit(0)
    mine = {new_id() for _ in range(100)}
    os.waitpid(pid, 0)
    theirs = set(os.read(read, 10_000).decode().split())
    os.close(read)
    os.close(write)
    assert len(theirs) == 100 and not {i[10:] for i in mine} & {i[10:] for i in theirs}


def test_now_iso_writes_what_datetime_writes():
    for _ in range(2_000):
        low = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        made = now_iso()
        high = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        assert low <= made <= high
    assert dt.datetime.fromisoformat(made).isoformat(timespec="microseconds") == made


def test_a_failed_append_stores_none_of_its_batch(tmp_path):
    batch = [event(p, slug="a") for p in PAYLOADS]
    with EventStore(tmp_path / "events.db") as store:
        assert store.append(batch[:5]).last_seq == 5
        with pytest.raises(AttributeError):  # rows are made while SQLite stores them: none is kept
            store.append([batch[5], batch[6], "not an event"])
        assert store.head_seq() == 5
        result = store.append(batch[3:])  # two stored already, in a batch with new ones
        assert (result.appended, result.skipped, result.first_seq, result.last_seq) == (
            len(PAYLOADS) - 5, 2, 6, len(PAYLOADS))
        assert list(store.rows()) == reference_rows(batch) and store.verify_chain() is None
        assert store.append(batch) == AppendResult(0, len(PAYLOADS), None, None)


def test_a_new_log_has_16_kb_pages_and_an_old_one_keeps_its_own(tmp_path):
    with EventStore(tmp_path / "new.db") as store:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 16384
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL, as before
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    batch = [event(p, slug="a") for p in PAYLOADS]
    with EventStore(old) as store:
        store.append(batch)
    with EventStore(old) as store:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert list(store.rows()) == reference_rows(batch)
