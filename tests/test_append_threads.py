"""An append beside its SQLite work (events/background.py): a batch larger than a chunk has its
rows made by a thread while the appending thread stores the last chunk, and the WAL is
checkpointed by a thread of its own. The rows, the chain, idempotence and all-or-nothing are
those of the one-thread append, whatever stops it, a Ctrl-C at any moment included."""

from __future__ import annotations

import gc
import random
import signal
import sqlite3
import threading
import time

import pytest

import events.store
from events.background import CHUNK, RowMaker, chunk_rows, stored_ahead
from events.store import CHECKPOINT_ROWS, COLUMNS, EventStore, StoreError, chained_rows, GENESIS
from garden.event import RunFailed, event, new_id
from test_event_speed import PAYLOADS, reference_rows

BIG = 3 * CHUNK + 17  # three full chunks and a short one


def batch_of(n: int, run_id: str | None = None) -> list:
    run_id = run_id or new_id()
    return [event(PAYLOADS[i % len(PAYLOADS)], slug=f"p-{i % 50}", run_id=run_id, actor="pipeline")
            for i in range(n)]


def wait_for(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.mark.parametrize("key", [None, b"k" * 32], ids=["no key", "log key"])
def test_a_large_batch_stores_the_rows_a_row_at_a_time_append_stores(tmp_path, key):
    batch = batch_of(BIG)
    with EventStore(tmp_path / "big.db", key=key) as big:
        assert BIG > chunk_rows(big.conn, 11) > 1  # stored a chunk a statement, made in a thread
        result = big.append(batch)
        assert (result.appended, result.first_seq, result.last_seq) == (BIG, 1, BIG)
        rows = list(big.rows())
        macs = [r[0] for r in big.conn.execute("SELECT mac FROM events ORDER BY seq")]
    with EventStore(tmp_path / "small.db", key=key) as small:
        for start in range(0, BIG, 100):  # batches of 100: a row a statement, no thread
            small.append(batch[start : start + 100])
        assert list(small.rows()) == rows == reference_rows(batch)
        assert [r[0] for r in small.conn.execute("SELECT mac FROM events ORDER BY seq")] == macs
        assert small.verify_chain() is None and (small.verify_macs() is None) == (key is None)
    assert (macs[0] is None) == (key is None)


def test_the_rows_are_made_in_a_thread_a_chunk_ahead_and_it_ends(tmp_path):
    made_in: set[str] = set()

    def rows():
        for row in chained_rows(batch_of(BIG), 0, GENESIS, ()):
            made_in.add(threading.current_thread().name)
            yield row

    with EventStore(tmp_path / "events.db") as store:
        store.conn.execute("BEGIN IMMEDIATE")
        maker = RowMaker(rows(), CHUNK)
        maker.thread.start()
        chunks = [len(params) // 10 for params in maker]
        store.conn.execute("ROLLBACK")
    assert chunks == [CHUNK, CHUNK, CHUNK, 17] and made_in == {"garden-rows"}
    assert wait_for(lambda: not maker.thread.is_alive())


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
        with pytest.raises(TypeError):  # raised in the row maker, at its chunk's turn here
            store.append(batch[3 : 2 * CHUNK + 5] + [bad] + batch[2 * CHUNK + 6 :])
        assert store.head_seq() == 3  # two chunks went to SQLite; the rollback took them back
        assert store.append(batch).appended == BIG - 3  # the connection is usable, the chain whole
        assert list(store.rows()) == reference_rows(batch) and store.verify_chain() is None


def test_sqlite_refusing_a_chunk_stores_nothing(tmp_path):
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


def test_a_sqlite_built_for_fewer_parameters_gets_smaller_chunks(tmp_path):
    batch = batch_of(BIG)
    with EventStore(tmp_path / "events.db") as store:
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
        assert chunk_rows(store.conn, 10) == 99
        assert store.append(batch).appended == BIG
        assert list(store.rows()) == reference_rows(batch)


def test_only_the_appending_thread_uses_the_connection(tmp_path):
    """Why an interrupt cannot leave a statement running outside its transaction: every
    statement of a large append runs in the thread that began (and rolls back) the transaction."""
    ran_in: list[str] = []
    with EventStore(tmp_path / "events.db") as store:
        store.conn.set_trace_callback(lambda sql: ran_in.append(threading.current_thread().name))
        store.append(batch_of(BIG))
        store.conn.set_trace_callback(None)
    assert len(ran_in) > 4 and set(ran_in) == {threading.current_thread().name}


class Interrupted(BaseException):
    """What the test's SIGALRM raises: a Ctrl-C's KeyboardInterrupt, which pytest keeps for itself."""


def test_an_interrupt_at_any_moment_of_a_large_append_stores_all_of_it_or_none(tmp_path):
    """A signal handler raising at a random moment of an append of eight chunks, then what a
    killed tend does at once (RunFailed on the same store): the log holds the batch whole or
    not at all, the chain is whole, nothing hangs."""
    def interrupt(*_):
        raise Interrupted

    batches = [batch_of(8 * CHUNK) for _ in range(3)]
    rng = random.Random(7)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with EventStore(tmp_path / "events.db") as store:
            started = time.perf_counter()
            store.append(batches[0])
            took = time.perf_counter() - started
            stopped = 0
            for trial in range(120):
                head = store.head_seq()
                batch = [e.model_copy(update={"id": new_id()}) for e in batches[trial % 3]]
                try:
                    signal.setitimer(signal.ITIMER_REAL, rng.uniform(0, took))
                    store.append(batch)
                    signal.setitimer(signal.ITIMER_REAL, 0)
                except Interrupted:
                    stopped += 1
                signal.setitimer(signal.ITIMER_REAL, 0)
                store.append([event(RunFailed(error="interrupted", counts={}), run_id="r")])
                assert store.head_seq() - head in (1, len(batch) + 1)
            assert store.verify_chain() is None
            assert stopped > 30  # most trials were interrupted mid-way
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_wal_is_checkpointed_by_a_thread_that_ends_with_the_store(tmp_path):
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        for start in range(0, CHECKPOINT_ROWS - 1, CHUNK):  # not woken yet
            store.append(batch_of(min(CHUNK, CHECKPOINT_ROWS - 1 - start)))
        assert store._checkpointer is None
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's own
        db_size = path.stat().st_size
        store.append(batch_of(1))
        checkpointer = store._checkpointer
        assert checkpointer.thread.name == "garden-checkpoints"
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == events.store.BACKSTOP_PAGES
        assert wait_for(lambda: checkpointer.copied > 0)
        assert path.stat().st_size > db_size  # the WAL's pages are in the database
        assert store.verify_chain() is None and store.head_seq() == CHECKPOINT_ROWS
    assert not checkpointer.thread.is_alive()
    with EventStore(path) as store:
        assert store.head_seq() == CHECKPOINT_ROWS and store.verify_chain() is None


def test_appends_back_to_back_keep_the_wal_under_the_backstop(tmp_path, monkeypatch):
    """Appends that follow each other at once leave the thread no time to finish between them,
    and SQLite skips its own checkpoint while the thread copies: each append first waits for
    the thread's copy and copies the rest, so the WAL starts again from its beginning."""
    monkeypatch.setattr(events.store, "BACKSTOP_PAGES", 64)  # 1 MB of 16 KB pages
    monkeypatch.setattr(events.store, "CHECKPOINT_ROWS", 500)
    path = tmp_path / "events.db"
    largest = 0
    with EventStore(path) as store:
        for _ in range(40):
            store.append(batch_of(500))
            largest = max(largest, (tmp_path / "events.db-wal").stat().st_size)
        assert store.verify_chain() is None
    batch_bytes = 2 * 1024 * 1024  # 500 events of every type, with their indexes: well under
    assert largest <= 64 * 16384 + batch_bytes  # (before: 4 to 22 MB, growing with every append)


def test_a_store_nobody_closed_ends_its_checkpoint_thread_when_collected(tmp_path):
    store = EventStore(tmp_path / "events.db")
    store.append(batch_of(CHECKPOINT_ROWS))
    thread = store._checkpointer.thread
    assert thread.is_alive()
    store.conn.close()
    del store
    gc.collect()
    assert wait_for(lambda: not thread.is_alive())


def test_the_checkpoint_thread_never_makes_a_database_moved_away(tmp_path):
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        moved = tmp_path / "elsewhere.db"
        path.rename(moved)
        store.append(batch_of(CHECKPOINT_ROWS))  # appended to the open (moved) file
        thread = store._checkpointer.thread
        assert wait_for(lambda: not thread.is_alive())  # it could not open the path, and ended
        assert not path.exists()
    with pytest.raises(StoreError, match="no event database here"):
        EventStore(path, create=False)


def test_a_reader_sees_whole_batches_while_large_ones_are_appended(tmp_path):
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
    assert len(set(seen)) > 2 and all((n - 1) % BIG == 0 for n in seen)


def test_stored_ahead_stores_every_row_in_order(tmp_path):
    batch = batch_of(BIG)
    with EventStore(tmp_path / "events.db") as store:
        store.conn.execute("BEGIN IMMEDIATE")
        stored_ahead(store.conn, chained_rows(batch, 0, GENESIS, ()), COLUMNS, 100)
        store.conn.execute("COMMIT")
        assert list(store.rows()) == reference_rows(batch)


def start_interrupted(name: str, monkeypatch) -> None:
    """`Thread.start` failing as a Ctrl-C inside its wait for the new thread makes it fail: the
    thread running, then RuntimeError('release unlocked lock') with the KeyboardInterrupt as
    its context. (A real signal lands there about once in thousands of tries.)"""
    start = threading.Thread.start

    def interrupted(thread: threading.Thread) -> None:
        start(thread)
        if thread.name == name:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise RuntimeError("release unlocked lock")

    monkeypatch.setattr(threading.Thread, "start", interrupted)


def running(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_an_interrupt_inside_the_row_makers_start_stores_nothing_and_ends_it(tmp_path, monkeypatch):
    before = len(running("garden-rows"))
    with EventStore(tmp_path / "events.db") as store:
        store.append(batch_of(3))
        start_interrupted("garden-rows", monkeypatch)
        with pytest.raises(KeyboardInterrupt):  # the Ctrl-C, not a RuntimeError ("a bug")
            store.append(batch_of(BIG))
        assert store.head_seq() == 3 and store.verify_chain() is None
        assert store.append(batch_of(2)).last_seq == 5
    assert wait_for(lambda: len(running("garden-rows")) <= before)


def test_an_interrupt_inside_the_checkpoint_threads_start_leaves_it_to_close(tmp_path, monkeypatch):
    start_interrupted("garden-checkpoints", monkeypatch)
    with EventStore(tmp_path / "events.db") as store:
        with pytest.raises(KeyboardInterrupt):
            store.append(batch_of(CHECKPOINT_ROWS))
        assert store.head_seq() == CHECKPOINT_ROWS  # committed before the interrupt
        thread = store._checkpointer.thread
    assert not thread.is_alive()
