"""An append's two halves at once: Python making the rows in a thread, SQLite storing them in
the appending thread; and the WAL's checkpoints in a thread of their own.

An append is two kinds of work of about the same size: Python making each row (its payload's
JSON, the chain hash) and SQLite storing it (the table, four indexes, the WAL), and then, every
few megabytes, SQLite copying the WAL into the database (a checkpoint). SQLite lets go of
Python's lock (the GIL) while it works, so a second core can make the next rows meanwhile:

- `stored_ahead` stores a large batch a chunk of rows per INSERT statement, while a thread
  (`RowMaker`) makes the next chunk. The connection is only ever used by the appending thread:
  a Ctrl-C, which Python delivers to the main thread at any line, can only stop the appending
  thread, which then rolls back its own transaction; the row maker holds nothing of SQLite's
  and is told to stop. It makes one chunk at a time, when given leave, and then waits: so the
  appending thread, its statement done, waits for the GIL at most until that chunk is made.
- `Checkpointer` copies the WAL into the database in a thread with its own connection, woken
  after commits (a passive checkpoint: it never blocks a writer or a reader). The store's own
  connection keeps SQLite's automatic checkpoint, which would copy at a commit, only at a
  larger size, and before each append copies what the thread has not (`catch_up`).

Neither changes what is stored or when it is durable: an append is still one transaction of the
appending thread's, and a checkpoint only moves committed pages.
"""

from __future__ import annotations

import functools
import queue
import sqlite3
import threading
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path

CHUNK = 256  # rows per INSERT statement: 2,560 parameters, under SQLite's usual 32,766


@functools.lru_cache(maxsize=16)
def insert_rows(columns: str, width: int, rows: int) -> str:
    """`INSERT INTO events (columns) VALUES (...), (...), ...`: `rows` rows of `width` values."""
    one = "(" + ",".join("?" * width) + ")"
    return f"INSERT INTO events ({columns}) VALUES {','.join([one] * rows)}"


def chunk_rows(conn: sqlite3.Connection, width: int) -> int:
    """Rows per statement: CHUNK, or fewer where SQLite was built to take fewer parameters
    (999 before 3.32)."""
    return min(CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)


def stored_ahead(conn: sqlite3.Connection, rows: Iterator[tuple], columns: str, size: int) -> None:
    """Store every row (its values those of `columns`), in order, `size` rows a statement, the
    next chunk made by a `RowMaker` while SQLite stores the last. The caller holds the write
    transaction; what the rows raise is raised here, at their chunk."""
    width = columns.count(",") + 1
    maker = RowMaker(rows, size)  # its thread not started: an interrupt here leaves nothing behind
    try:
        try:
            maker.thread.start()
        except RuntimeError as e:
            raise_interrupt(e)
            # No new threads (the interpreter is shutting down): a row a statement. A thread that
            # started all the same waits for leave it is never given, and stop() ends it.
            conn.executemany(insert_rows(columns, width, 1), rows)
            return
        for params in maker:
            conn.execute(insert_rows(columns, width, len(params) // width), params)
    finally:
        maker.stop()


def raise_interrupt(e: RuntimeError) -> None:
    """Raise the Ctrl-C that `Thread.start()` turned into a RuntimeError ('release unlocked
    lock': interrupted inside its wait for the thread), if that is what `e` is."""
    if e.__context__ is not None and not isinstance(e.__context__, Exception):
        raise e.__context__


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class RowMaker:
    """A thread making rows a chunk at a time (each chunk's values in one flat list), one chunk
    ahead of the thread iterating it, each when given leave. A daemon, started by the caller and
    never waited for: told to stop, it ends when its chunk is made."""

    def __init__(self, rows: Iterator[tuple], size: int):
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._leave: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._make, args=(rows, size), name="garden-rows",
                                       daemon=True)

    def _make(self, rows: Iterator[tuple], size: int) -> None:
        try:
            while self._leave.get():
                params = list(chain.from_iterable(islice(rows, size)))
                self._ready.put(params)
                if not params:
                    return
        except BaseException as e:  # raised where the rows are used, at their turn
            self._ready.put(_Failed(e))

    def __iter__(self) -> Iterator[list]:
        self._leave.put(True)  # the first chunk
        while True:
            params = self._ready.get()
            if isinstance(params, _Failed):
                raise params.error
            if not params:
                return
            self._leave.put(True)  # the next chunk is made while this one is stored
            yield params

    def stop(self) -> None:
        self._leave.put(False)


class Checkpointer:
    """A thread (started by the caller) with its own connection to the database at `path`
    (absolute) that copies the WAL into it when woken. It never creates a database (one moved
    away is not made again empty). A checkpoint that fails (the file busy, gone) is left for
    the next wake, SQLite's automatic checkpoint, or the last connection's close.

    SQLite starts the WAL again from its beginning only when a write begins with all of it
    copied, and skips the automatic checkpoint at a commit while this thread is copying: appends
    that follow each other at once would grow the WAL without end. So an appender calls
    `catch_up` before it begins: it waits for a copy running here to end (between appends that
    are apart, as a tend's are, it has), and copies what is left (usually nothing)."""

    def __init__(self, path: Path, timeout: float):
        self._uri, self._timeout = path.as_uri() + "?mode=rw", timeout
        self._wake, self._stop = threading.Event(), False
        self.lock = threading.Lock()  # held by whichever thread is copying
        self.copied = 0  # the WAL's frames in the database, as the last copy saw them
        self.thread = threading.Thread(target=self._loop, name="garden-checkpoints", daemon=True)

    def catch_up(self, conn: sqlite3.Connection) -> None:
        """Copy what is left of the WAL through `conn` (the thread's own, or the appender's
        outside a transaction, so that its next write starts the WAL again), one copy at a time."""
        with self.lock:
            try:
                self.copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[2]
            except sqlite3.Error:
                pass

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        try:
            conn = sqlite3.connect(self._uri, uri=True, timeout=self._timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                self.catch_up(conn)
        finally:
            conn.close()

    def close(self, wait: bool = True) -> None:
        self._stop = True
        self._wake.set()
        if wait and self.thread.is_alive():
            self.thread.join()
