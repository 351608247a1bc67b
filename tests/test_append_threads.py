"""An append beside its SQLite work (events/background.py): a batch larger than a chunk is stored
by a thread while the next rows are made, and the WAL is checkpointed by a thread of its own.
The rows, the chain, idempotence and all-or-nothing are those of the one-thread append."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from events.background import CHUNK
from events.store import CHECKPOINT_ROWS, EventStore, StoreError
from garden.event import LinkProposed, event, new_id
from test_event_speed import PAYLOADS, reference_rows

BIG = 3 * CHUNK + 17  # three full chunks and a short one


def batch_of(n: int, run_id: str | None = None) -> list:
    run_id = run_id or new_id()
    return [event(PAYLOADS[i % len(PAYLOADS)], slug=f"p-{i % 50}", run_id=run_id, actor="pipeline")
            for i in range(n)]


def threads_of(store: EventStore) -> list[threading.Thread]:
    """The store's threads that are running (another test's store may have its own)."""
    inserter, checkpointer = store._inserter, store._checkpointer
    threads = list(inserter._pool._threads) if inserter else []
    return threads + ([checkpointer._thread] if checkpointer else [])


@pytest.mark.parametrize("key", [None, b"k" * 32], ids=["no key", "log key"])
def test_a_large_batch_stores_the_rows_a_row_at_a_time_append_stores(tmp_path, key):
    batch = batch_of(BIG)
    with EventStore(tmp_path / "big.db", key=key) as big:
        result = big.append(batch)
        assert (result.appended, result.first_seq, result.last_seq) == (BIG, 1, BIG)
        threads = threads_of(big)
        assert [t.name for t in threads] == ["garden-inserts_0"]  # the large batch's thread
        rows = list(big.rows())
        macs = [r[0] for r in big.conn.execute("SELECT mac FROM events ORDER BY seq")]
    assert not any(t.is_alive() for t in threads)  # ended with the store
    with EventStore(tmp_path / "small.db", key=key) as small:
        for start in range(0, BIG, 100):  # batches of 100: no thread
            small.append(batch[start : start + 100])
        assert threads_of(small) == []
        assert list(small.rows()) == rows == reference_rows(batch)
        assert [r[0] for r in small.conn.execute("SELECT mac FROM events ORDER BY seq")] == macs
        assert small.verify_chain() is None and (small.verify_macs() is None) == (key is None)
    assert (macs[0] is None) == (key is None)


def test_a_large_batch_with_stored_events_stores_only_the_new_ones(tmp_path):
    batch = batch_of(BIG)
    with EventStore(tmp_path / "events.db") as store:
        store.append(batch[CHUNK : CHUNK + 10])  # ten in the middle of the second chunk
        result = store.append(batch)
        assert (result.appended, result.skipped) == (BIG - 10, 10)
        assert store.append(batch).appended == 0
        assert sorted(r[1] for r in store.rows()) == sorted(e.id for e in batch)
        assert store.verify_chain() is None


def test_a_batch_failing_after_chunks_were_stored_stores_none_of_them(tmp_path):
    batch = batch_of(BIG)
    bad = batch[2 * CHUNK + 5].model_copy(update={"slug": object()})  # not JSON: its row fails
    with EventStore(tmp_path / "events.db") as store:
        store.append(batch[:3])
        with pytest.raises(TypeError):
            store.append(batch[3 : 2 * CHUNK + 5] + [bad] + batch[2 * CHUNK + 6 :])
        assert store.head_seq() == 3  # two chunks went to SQLite; the rollback took them back
        assert store.append(batch).appended == BIG - 3  # the connection is usable, the chain whole
        assert list(store.rows()) == reference_rows(batch) and store.verify_chain() is None


def test_an_error_in_the_thread_is_raised_to_the_appender_and_stores_nothing(tmp_path):
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        store.append(batch_of(5))
        other = sqlite3.connect(path)
        other.execute("CREATE TRIGGER refuse_the_third_chunk BEFORE INSERT ON events "
                      f"WHEN NEW.seq = {5 + 2 * CHUNK + 1} BEGIN SELECT RAISE(ABORT, 'refused here'); END")
        other.close()
        with pytest.raises(StoreError, match="refused here"):
            store.append(batch_of(BIG))
        assert store.head_seq() == 5 and store.verify_chain() is None


def test_the_wal_is_checkpointed_by_a_thread_and_both_threads_end_with_the_store(tmp_path):
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        for start in range(0, CHECKPOINT_ROWS - 1, CHUNK):
            store.append(batch_of(min(CHUNK, CHECKPOINT_ROWS - 1 - start)))
        assert threads_of(store) == []  # batches of a chunk or less; the checkpoints not yet woken
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's own
        store.append(batch_of(1))
        threads = threads_of(store)
        assert [t.name for t in threads] == ["garden-checkpoints"]
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] > 1000  # a backstop now
        deadline = time.monotonic() + 10
        while store._checkpointer.done == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store._checkpointer.done >= 1
        # All the WAL's frames are in the database now: a second passive checkpoint copies none.
        busy, frames, copied = store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and frames == copied
        assert store.verify_chain() is None and store.head_seq() == CHECKPOINT_ROWS
    assert not any(t.is_alive() for t in threads)
    with EventStore(path) as store:
        assert store.head_seq() == CHECKPOINT_ROWS and store.verify_chain() is None


def test_a_reader_sees_whole_batches_while_threads_append(tmp_path):
    """Another connection reading during large appends sees each batch whole or not at all."""
    path = tmp_path / "events.db"
    seen: list[int] = []
    with EventStore(path) as store:
        store.append(batch_of(1))
        stop = threading.Event()

        def read() -> None:
            conn = sqlite3.connect(path)
            while not stop.is_set():
                seen.append(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            conn.close()

        reader = threading.Thread(target=read)
        reader.start()
        for _ in range(6):
            store.append(batch_of(BIG))
        stop.set()
        reader.join()
    assert seen and all((n - 1) % BIG == 0 for n in seen)
