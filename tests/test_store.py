"""The SQLite event store: append-only triggers, two processes at once, a changed byte, WAL,
migrations, and its errors. The contract every store keeps is tests/test_store_contract.py."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from events.migrations import LATEST, SchemaError
from events.store import EventStore, StoreError
from test_store_contract import observed, proposed




def _append_many(path: str, tag: str, batches: int, size: int) -> None:
    with EventStore(Path(path), timeout=30) as store:
        for b in range(batches):
            store.append(proposed(f"{tag}-{b}", f"t{i}", run=tag) for i in range(size))


class TestFileStore:
    """What only the SQLite store can show; what every store must do is in test_store_contract.py."""

    @pytest.fixture
    def store(self, tmp_path):
        with EventStore(tmp_path / "events.db") as store:
            yield store

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


def test_reads_use_the_index_that_narrows_them(tmp_path):
    """By type alone (the runs, the labels): the type index, not a scan of the log; by pattern
    or run and type: the pattern's or run's index, not every event of the type."""
    with EventStore(tmp_path / "e.db") as store:
        plan = store.query_plan
        assert any("events_type" in step for step in plan(types=["RunStarted", "RunCompleted"]))
        assert any("events_slug" in step for step in plan(slug="a", types=["BlockWritten"], after=3))
        assert any("events_run" in step for step in plan(run_id="R1", types=["RunStarted"]))
        assert not any("SCAN" in step for step in plan(types=["RunStarted"], newest_first=True))
