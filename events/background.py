"""SQLite's part of an append, done beside Python's: two threads an `EventStore` starts when
it first needs them.

An append is two kinds of work of about the same size: Python making each row (its payload's
JSON, the chain hash) and SQLite storing it (the table, four indexes, the WAL), and then, every
few megabytes, SQLite copying the WAL into the database (a checkpoint). SQLite lets go of
Python's lock (the GIL) while it works, so a second core can do SQLite's part while this one
makes the next rows:

- `Inserter` runs the INSERTs of a large batch, a chunk of rows per statement, in a thread,
  while the appending thread makes the next chunk. The appending thread hands a chunk over and
  waits until the thread has taken it: otherwise the thread would wait for the GIL, which the
  appending thread holds while it makes rows, up to Python's switch interval (5 ms) per chunk,
  and the two would take turns instead of working at once.
- `Checkpointer` copies the WAL into the database in a thread with its own connection, woken
  after commits (a passive checkpoint: it never blocks a writer or a reader). The store's own
  connection keeps SQLite's automatic checkpoint at a larger size, as a backstop should the
  thread fall behind.

Neither changes what is stored or when it is durable: an append is still one transaction,
committed by the appending thread, and a checkpoint only moves committed pages.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from itertools import chain, islice

CHUNK = 256  # rows per INSERT statement: 2,560 parameters, under SQLite's 32,766


@functools.lru_cache(maxsize=16)
def insert_rows(columns: str, width: int, rows: int) -> str:
    """`INSERT INTO events (columns) VALUES (...), (...), ...`: `rows` rows of `width` values."""
    one = "(" + ",".join("?" * width) + ")"
    return f"INSERT INTO events ({columns}) VALUES {','.join([one] * rows)}"


class Inserter:
    """A thread that runs multi-row INSERTs on a connection while the caller makes more rows."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="garden-inserts")

    def insert(self, rows: Iterator[tuple], columns: str) -> None:
        """Store every row (its values those of `columns`), in order, a chunk per statement: the rows of the
        next chunk are made here while the thread stores the last. The caller holds the write
        transaction and does nothing else with the connection until this returns. Whatever the
        thread raises is raised here; whatever is raised here (a Ctrl-C too) first waits for
        the chunk in flight, so the caller can roll back a connection no one is using."""
        in_flight: Future | None = None
        width = columns.count(",") + 1
        try:
            while params := list(chain.from_iterable(islice(rows, CHUNK))):
                if in_flight is not None:
                    in_flight.result()
                taken = threading.Event()
                in_flight = self._pool.submit(self._run, params, columns, width, taken)
                taken.wait()  # the GIL goes to the thread until SQLite lets go of it
            if in_flight is not None:
                in_flight.result()
        except BaseException:
            if in_flight is not None:
                wait([in_flight])
            raise

    def _run(self, params: list, columns: str, width: int, taken: threading.Event) -> None:
        taken.set()
        self._conn.execute(insert_rows(columns, width, len(params) // width), params)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class Checkpointer:
    """A thread with its own connection to `path` that copies the WAL into the database when
    woken. A checkpoint that fails (the file busy, gone) is left for the next wake, SQLite's
    automatic checkpoint, or the last connection's close, which checkpoints too."""

    def __init__(self, path, timeout: float):
        self._path, self._timeout = path, timeout
        self._wake, self._stop = threading.Event(), False
        self.done = 0  # checkpoints run (for tests and figures)
        self._thread = threading.Thread(target=self._loop, name="garden-checkpoints", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.done += 1
                except sqlite3.Error:
                    pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()
