"""The event store's contract: append, idempotency, atomic batches, order, concurrency, reads.

`Contract` is the suite every store back-end must pass; today there is one, a file database.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from events.migrations import LATEST, SchemaError
from events.store import EventStore, StoreError
from garden.event import (
    GardenObserved,
    LinkProposed,
    ProposalAccepted,
    RunCompleted,
    RunStarted,
    event,
)


def observed(slug: str):
    return event(GardenObserved(path=f"{slug}.md", format="v7.1", content_hash="h", text_hash="t",
                                block=None, block_text=None), slug=slug)


def proposed(slug: str, target: str, run: str | None = None, confidence: float = 0.8):
    return event(LinkProposed(target=target, link_type="enables", confidence=confidence,
                              reason="r", proposer="offline"), slug=slug, run_id=run,
                 actor="proposer:offline/tfidf")


def _append_many(path: str, tag: str, batches: int, size: int) -> None:
    with EventStore(Path(path), timeout=30) as store:
        for b in range(batches):
            store.append(proposed(f"{tag}-{b}", f"t{i}", run=tag) for i in range(size))


class Contract:
    """Every store must pass these; subclasses provide `store`."""

    def test_append_gives_contiguous_sequence_numbers(self, store):
        first = store.append([observed("a"), observed("b")])
        second = store.append([proposed("a", "b"), proposed("a", "c"), proposed("b", "a")])
        assert (first.first_seq, first.last_seq) == (1, 2)
        assert (second.first_seq, second.last_seq, second.appended) == (3, 5, 3)
        assert [e.seq for e in store.events()] == [1, 2, 3, 4, 5]

    def test_the_same_event_is_stored_once(self, store):
        e = proposed("a", "b")
        assert store.append([e, e]).appended == 1
        result = store.append([e, proposed("a", "c")])
        assert (result.appended, result.skipped) == (1, 1)
        assert store.head_seq() == 2

    def test_a_failing_batch_stores_nothing(self, store):
        store.append([observed("a")])

        class Boom(Exception):
            pass

        def batch():
            yield proposed("a", "b")
            raise Boom

        with pytest.raises(Boom):
            store.append(batch())
        broken = proposed("a", "c").model_copy(update={"recorded_at": object()})
        with pytest.raises(Exception):
            store.append([proposed("a", "d"), broken])
        assert store.head_seq() == 1
        assert store.verify_chain() is None

    def test_events_round_trip_through_rows(self, store):
        e = proposed("a", "b", run="R1")
        store.append([e])
        (back,) = list(store.events())
        assert back.model_dump(exclude={"seq", "hash"}) == e.model_dump(exclude={"seq", "hash"})
        assert store.get(e.id) == back

    def test_reads_by_pattern_run_type_and_range(self, store):
        store.append([event(RunStarted(proposer="offline"), run_id="R1"), observed("a"),
                      proposed("a", "x", run="R1"), proposed("b", "y", run="R1"),
                      event(RunCompleted(counts={"proposed": 2}), run_id="R1"),
                      proposed("a", "z", run="R2")])
        assert [e.seq for e in store.events(slug="a")] == [2, 3, 6]
        assert [e.seq for e in store.events(run_id="R1")] == [1, 3, 4, 5]
        assert [e.seq for e in store.events(types=["LinkProposed"])] == [3, 4, 6]
        assert [e.seq for e in store.events(after=2, until=4)] == [3, 4]
        assert [r[0] for r in store.rows(slug="a", newest_first=True)] == [6, 3, 2]
        assert store.run_end_seq("R1") == 5

    def test_no_code_path_updates_or_deletes_an_event(self, store):
        store.append([observed("a")])
        for sql in ("UPDATE events SET actor = 'x'", "DELETE FROM events"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                store.conn.execute(sql)

    def test_two_processes_appending_at_once_lose_nothing(self, store):
        ctx = multiprocessing.get_context("spawn")
        workers = [ctx.Process(target=_append_many, args=(str(store.path), tag, 20, 200))
                   for tag in ("p", "q")]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
            assert w.exitcode == 0
        rows = list(store.rows())
        assert len(rows) == 2 * 20 * 200
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
        # Each batch is contiguous: a batch's slug never interleaves with another's.
        slugs = [r[3] for r in rows]
        for start in range(0, len(slugs), 200):
            assert len(set(slugs[start : start + 200])) == 1
        assert store.verify_chain() is None

    def test_a_changed_event_breaks_the_chain_there(self, store):
        store.append([observed("a"), proposed("a", "b"), proposed("a", "c")])
        target = store.conn.execute("SELECT id FROM events WHERE seq = 2").fetchone()[0]
        store.conn.execute("DROP TRIGGER events_no_update")
        store.conn.execute("UPDATE events SET payload = replace(payload, '0.8', '0.9') WHERE seq = 2")
        broken = store.verify_chain()
        assert (broken.seq, broken.id, broken.type) == (2, target, "LinkProposed")


class TestFileStore(Contract):
    @pytest.fixture
    def store(self, tmp_path):
        with EventStore(tmp_path / "events.db") as store:
            yield store


def test_wal_mode_and_migrations_recorded(tmp_path):
    with EventStore(tmp_path / "e.db") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in store.conn.execute("SELECT version FROM schema_migrations")]
        assert versions == list(range(1, LATEST + 1))


def test_an_older_database_is_migrated(tmp_path):
    from events import migrations

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for statement in migrations._statements(migrations.MIGRATIONS[0][1]):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'events', '2026-01-01')")
    conn.close()
    with EventStore(path) as store:
        store.append([observed("a")])
        assert migrations.schema_version(store.db) == LATEST
        assert "snapshots" in store.db.table_names()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    EventStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', '2030-01-01')")
    conn.close()
    with pytest.raises(SchemaError, match=f"schema version 99, newer than this graph-garden knows \\({LATEST}\\); upgrade graph-garden"):
        EventStore(path)


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an SQLite database"):
        EventStore(path)


def test_a_missing_database_is_a_clear_error_when_not_creating(tmp_path):
    with pytest.raises(StoreError, match="no event database here; run `garden observe` first"):
        EventStore(tmp_path / "none.db", create=False)
