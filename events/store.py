"""The event log: an append-only table of events in one SQLite file, with a hash chain.

This module and its siblings in `events/` are the only code that touches SQLite; sqlite3 errors
become `StoreError`s here (`EventStore.error`). `EventStore` implements `events.log.EventLog`, as
the in-memory `events.memory.MemoryEventStore` does. The database runs in WAL mode. Each append is one `BEGIN IMMEDIATE`
transaction, so a batch is stored whole or not at all and its sequence numbers are contiguous;
a second writer waits up to `timeout` seconds for the first, then fails with `StoreBusyError`.
Triggers refuse any UPDATE or DELETE of an event: undo is a new event. A large batch's rows are
made in a thread while the appending thread stores the last ones, and the WAL is checkpointed
in another (`events/background.py`); the connection and its transaction are the appending
thread's alone.

Each event's hash covers its stored columns and the previous event's hash, so changing any byte
of any event breaks the chain from there on, and `verify_chain` names the first broken event.

A chain cannot show a log cut short or re-hashed after a rewrite, so two more things guard it:
- At the end of every run that appends (and when a store that appended is closed), the chain's
  head is published to a head file outside the database, which only grows (`events/heads.py`).
- With a log key (GARDEN_LOG_KEY, or GARDEN_LOG_KEY_FILE naming a file that holds it), each
  event also gets a MAC, HMAC-SHA256 under the key of the event's hash (which covers its bytes
  and, through the chain, everything before it), so a rewritten chain cannot be re-MACed by
  someone without the key. Older events, and events of stores opened without a key, have none.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import os
import sqlite3
import time
import weakref
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from events.background import Checkpointer, chunk_rows, insert_rows, raise_interrupt, stored_ahead
from events.heads import Head, append_head, heads_path, utc_now
from events.migrations import migrate
from garden.errors import GardenError, display_path
from garden.event import Event
from garden.upcast import upcast

GENESIS = "0" * 64
COLUMNS = "seq, id, type, slug, run_id, actor, recorded_at, schema_version, payload, hash"
KEY_ENV, KEY_FILE_ENV = "GARDEN_LOG_KEY", "GARDEN_LOG_KEY_FILE"
MIN_KEY = 16
CHECKPOINT_ROWS = 4_096  # the checkpoint thread is woken after this many rows appended
BACKSTOP_PAGES = 4_096  # SQLite's own checkpoint once a checkpoint thread runs (64 MB of 16 KB pages)
_dumps, _sha256 = orjson.dumps, hashlib.sha256
_FROM_ENV = object()


class StoreError(GardenError):
    """The event database cannot be used as asked."""


class _AlreadyStored(Exception):
    """Internal: a batch holds an event the log already has."""


class StoreBusyError(StoreError):
    """Another process held the database's write lock for longer than the timeout."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    appended: int
    skipped: int  # already in the log (same event id)
    first_seq: int | None
    last_seq: int | None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    id: str
    type: str
    reason: str


def chain_hash(prev: str, row: tuple) -> str:
    """The hash of one stored row (seq .. payload), chained to the previous event's hash:
    SHA-256 of `prev`, a newline, and the row as `json.dumps(row, ensure_ascii=False,
    separators=(",", ":"))` writes it. orjson writes the same bytes at a tenth of the cost
    (tests/test_event_speed.py holds it to that)."""
    return _sha256(b"%s\n%s" % (prev.encode(), _dumps(row))).hexdigest()


def chained_rows(batch: Iterable[Event], seq: int, prev: str, present: Container[str]) -> Iterator[tuple]:
    """The rows a batch adds after the head (`seq`, `prev` its hash), one at a time, each with its
    chained hash: an event whose id is `present` (stored already) or repeated in the batch is
    left out (appending is idempotent by id). `chain_hash` inlined: this loop is most of an
    append's Python time; the payload is `model_dump_json()` without its Python wrapper."""
    seen: set[str] = set()
    dumps, sha256 = _dumps, _sha256
    for event in batch:
        event_id = event.id
        if event_id in present or event_id in seen:
            continue
        seen.add(event_id)
        seq += 1
        payload = event.payload
        row = (seq, event_id, payload.type, event.slug, event.run_id, event.actor, event.recorded_at,
               event.schema_version, payload.__pydantic_serializer__.to_json(payload).decode())
        prev = sha256(b"%s\n%s" % (prev.encode(), dumps(row))).hexdigest()
        yield *row, prev


def first_break(rows: Iterable[tuple]) -> ChainBreak | None:
    """Where a log's rows, in order, break the chain: a gap in the sequence, or a row whose
    hash is not its content's. None when the chain is intact."""
    prev, expected_seq = GENESIS, 0
    for row in rows:
        expected_seq += 1
        if row[0] != expected_seq:
            return ChainBreak(row[0], row[1], row[2], f"sequence jumps from {expected_seq - 1}")
        digest = chain_hash(prev, tuple(row[:9]))
        if digest != row[9]:
            return ChainBreak(row[0], row[1], row[2],
                              "its content does not match its hash (changed after it was stored)")
        prev = digest
    return None


class EventMac:
    """An event's MAC: HMAC-SHA256 under the log key of the event's chain hash, in hex. The key's
    HMAC state is made once and copied per event (a fresh `hmac.new` per event costs twice as much)."""

    def __init__(self, key: bytes):
        self._base = hmac.new(key, digestmod="sha256")

    def __call__(self, digest: str) -> str:
        mac = self._base.copy()
        mac.update(digest.encode())
        return mac.hexdigest()


def load_log_key(environ: dict[str, str] | None = None) -> bytes | None:
    """The log key from GARDEN_LOG_KEY or the file GARDEN_LOG_KEY_FILE names; None if neither.

    Messages never contain the key.
    """
    environ = os.environ if environ is None else environ
    text, source = environ.get(KEY_ENV) or None, KEY_ENV
    if environ.get(KEY_FILE_ENV):
        if text:
            raise StoreError(f"set {KEY_ENV} or {KEY_FILE_ENV}, not both")
        path = Path(environ[KEY_FILE_ENV]).expanduser()
        source = f"{KEY_FILE_ENV} ({display_path(path)})"
        try:
            text = path.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise StoreError(f"{source}: cannot read the key: {getattr(e, 'strerror', None) or e}") from None
    if not text:
        return None
    if len(text) < MIN_KEY:
        raise StoreError(f"{source}: the key is too short; use at least {MIN_KEY} random characters, "
                         "e.g. the output of `python -c \"import secrets; print(secrets.token_hex(32))\"`")
    return text.encode()


@dataclass(frozen=True, slots=True)
class MacCheck:
    """What `verify_macs` found: how many MACs it checked, and the first event it doubts."""

    checked: int
    unmaced_before: int  # events before the first MAC (recorded before the key was used)
    problem: str | None


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put the database in WAL mode. Switching a new database needs it to itself, and SQLite
    answers "locked" at once, without its busy handler, while another process opens the same
    new file: so ask again until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class EventStore:
    """One event database. Use as a context manager, or call `close()`."""

    def __init__(self, path: Path, *, timeout: float = 10.0, create: bool = True,
                 key: bytes | None | object = _FROM_ENV, heads: Path | None = None):
        self.path = Path(path)
        self.shown = display_path(self.path)
        if not create and not self.path.exists():
            raise StoreError(f"{self.shown}: no event database here; run `garden observe` first")
        key = load_log_key() if key is _FROM_ENV else key
        self.mac = EventMac(key) if key else None  # type: ignore[arg-type]
        self.heads = heads or heads_path(self.path)
        self._unpublished: str | None = None  # the run of the last event appended since a publish
        self._checkpointer: Checkpointer | None = None  # started by the first CHECKPOINT_ROWS rows
        self._absolute, self._timeout, self._not_checkpointed = self.path.absolute(), timeout, 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                                check_same_thread=False)
            # 16 KB pages, for a new database only (an existing one keeps its size): an append of
            # the same events writes a quarter of the WAL frames, and a checkpoint copies a quarter
            # of the pages, so SQLite makes a quarter of the system calls. Durability is the same.
            conn.execute("PRAGMA page_size=16384")
            _use_wal(conn, timeout)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn, self.shown)
        except sqlite3.DatabaseError as e:
            raise self.error("cannot open", e) from e
        except OSError as e:
            raise StoreError(f"{self.shown}: cannot open: {e.strerror}") from e

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @functools.cached_property
    def db(self):
        """The database as a `sqlite_utils.Database`, for looking around in it (imported only
        then: sqlite_utils brings numpy, a tenth of a second every command would pay)."""
        import sqlite_utils

        return sqlite_utils.Database(self._conn)

    def close(self) -> None:
        """Publish the head if this store appended since it last did, and close."""
        try:
            if self._unpublished is not None:
                self.publish_head()
        finally:
            try:
                if self._checkpointer is not None:
                    self._checkpointer.close()
            finally:
                self._checkpointer = None
                self.conn.close()

    def __enter__(self) -> "EventStore":
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
            return
        try:  # the error in flight matters more than a head not published
            self.close()
        except Exception:
            pass

    def error(self, doing: str, e: sqlite3.Error) -> StoreError:
        """The project's error for an sqlite3 error met while `doing` something with this database
        (through this store's connection, or another on the same file, as the response cache's)."""
        text = str(e)
        if "locked" in text or "busy" in text:
            return StoreBusyError(
                f"{self.shown}: the database is busy (another graph-garden process is writing); "
                "try again when it has finished"
            )
        if isinstance(e, sqlite3.DatabaseError) and "not a database" in text:
            return StoreError(f"{self.shown}: not an SQLite database (file is damaged or not ours)")
        return StoreError(f"{self.shown}: {doing}: {text}")

    # --- writing ---------------------------------------------------------------------------

    def append(self, events: Iterable[Event]) -> AppendResult:
        """Append a batch atomically; events whose id is already stored are skipped.

        The common case (all new) is tried first and the UNIQUE index on `id` guards it; when it
        reports a stored id, the batch is rolled back and appended again without the stored ones.
        """
        batch = list(events)
        if not batch:
            return AppendResult(0, 0, None, None)
        try:
            first, last = self._append(batch, check_present=False)
        except _AlreadyStored:
            first, last = self._append(batch, check_present=True)
        if last < first:
            return AppendResult(0, len(batch), None, None)
        return AppendResult(last - first + 1, len(batch) - (last - first + 1), first, last)

    def _append(self, batch: list[Event], check_present: bool) -> tuple[int, int]:
        """The first and last sequence numbers stored (last < first: none). Rows are made as
        SQLite stores them, so each is freed once stored: a batch's rows are never all in memory
        at once, and the garbage collector, which counts the containers alive, is not set off
        (a list of them cost a quarter of an append's time in collections). A batch of more
        than a chunk is stored a chunk per statement while a thread makes the next chunk
        (`stored_ahead`). Whatever ends it early, a Ctrl-C too, rolls the transaction back."""
        conn = self.conn
        if self._checkpointer is not None:
            self._checkpointer.catch_up(conn)
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self.error("cannot append", e) from e
            present = self._present_ids([e.id for e in batch]) if check_present else set()
            head, prev = self._head()
            rows = chained_rows(batch, head, prev, present)
            columns, width = COLUMNS, 10  # the mac NULL
            if mac := self.mac:
                rows = ((*row, mac(row[9])) for row in rows)
                columns, width = f"{COLUMNS}, mac", 11
            size = chunk_rows(conn, width)
            try:
                if len(batch) > size > 1:
                    stored_ahead(conn, rows, columns, size)
                else:
                    conn.executemany(insert_rows(columns, width, 1), rows)
            except sqlite3.IntegrityError as e:
                if not check_present and "events.id" in str(e):
                    raise _AlreadyStored from e
                raise
            last, run_id = conn.execute("SELECT seq, run_id FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(e, sqlite3.Error):
                raise self.error("cannot append", e) from e
            raise
        if last > head:
            self._unpublished = run_id or "-"
            self._not_checkpointed += last - head
            if self._not_checkpointed >= CHECKPOINT_ROWS:
                self._checkpoint()
        return head + 1, last

    def _checkpoint(self) -> None:
        """Wake the checkpoint thread. Started the first time, SQLite's own checkpoint, which
        would copy the WAL here at a commit, becomes only a backstop; ended with the store, or
        when a store nobody closed is collected. The batch is committed already: a thread that
        cannot start leaves the checkpoints to SQLite, as before."""
        self._not_checkpointed = 0
        if self._checkpointer is None:
            checkpointer = Checkpointer(self._absolute, self._timeout)  # not started
            weakref.finalize(self, checkpointer.close, False)
            self._checkpointer = checkpointer  # whatever happens next, close() ends its thread
            try:
                checkpointer.thread.start()
            except RuntimeError as e:
                raise_interrupt(e)
                return  # no new threads (the interpreter is shutting down)
            self.conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._checkpointer.wake()

    def publish_head(self, run_id: str | None = None) -> Head | None:
        """Append the log's head to the head file (None if the log is empty).

        The head is read and its line written while holding the database's write lock, so the
        file's lines follow the log's order even when processes append at once.
        """
        run = run_id or self._unpublished or "-"
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise self.error("cannot publish the head", e) from e
        try:
            seq, digest = self._head()
            head = Head(seq, digest, utc_now(), run) if seq else None
            if head:
                append_head(self.heads, head)
        except sqlite3.Error as e:
            raise self.error("cannot publish the head", e) from e
        except OSError as e:
            raise StoreError(f"{display_path(self.heads)}: cannot publish the log's head: "
                             f"{e.strerror}") from e
        finally:
            self.conn.execute("COMMIT")
        self._unpublished = None
        return head

    def _present_ids(self, ids: list[str]) -> set[str]:
        present: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            present.update(
                r[0] for r in self.conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
            )
        return present

    def _head(self) -> tuple[int, str]:
        row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    # --- reading ---------------------------------------------------------------------------

    def head_seq(self) -> int:
        try:
            return self._head()[0]
        except sqlite3.Error as e:
            raise self.error("cannot read", e) from e

    def hash_at(self, seq: int) -> str | None:
        try:
            row = self.conn.execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchone()
        except sqlite3.Error as e:
            raise self.error("cannot read", e) from e
        return row[0] if row else None

    def query_plan(self, **filters) -> list[str]:
        """How SQLite would read `rows(**filters)`: the details of EXPLAIN QUERY PLAN."""
        sql, params = self._rows_query(**filters)
        return [r[3] for r in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]

    def rows(
        self,
        *,
        slug: str | None = None,
        run_id: str | None = None,
        types: Iterable[str] | None = None,
        after: int = 0,
        until: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[tuple]:
        """Raw rows (in COLUMNS order) matching every given filter, in sequence order."""
        sql, params = self._rows_query(slug=slug, run_id=run_id, types=types, after=after, until=until,
                                       newest_first=newest_first)
        try:
            yield from self.conn.execute(sql, params)
        except sqlite3.Error as e:
            raise self.error("cannot read", e) from e

    @staticmethod
    def _rows_query(*, slug: str | None = None, run_id: str | None = None,
                    types: Iterable[str] | None = None, after: int = 0, until: int | None = None,
                    newest_first: bool = False) -> tuple[str, list]:
        where, params = ["seq > ?"], [after]
        if until is not None:
            where.append("seq <= ?")
            params.append(until)
        if slug is not None:
            where.append("slug = ?")
            params.append(slug)
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if types is not None:
            types = list(types)
            # By type alone, the type index; with a pattern or a run (fewer rows), never it: the
            # unary + keeps SQLite from reading every event of a type for one pattern's few.
            narrowed = "+" if slug is not None or run_id is not None else ""
            where.append(f"{narrowed}type IN ({','.join('?' * len(types))})")
            params.extend(types)
        order = "DESC" if newest_first else "ASC"
        return f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY seq {order}", params

    def events(self, **filters) -> Iterator[Event]:
        """Validated `Event`s matching the filters of `rows`."""
        for row in self.rows(**filters):
            yield row_to_event(row)

    def get(self, event_id: str) -> Event | None:
        row = self.conn.execute(f"SELECT {COLUMNS} FROM events WHERE id = ?", [event_id]).fetchone()
        return row_to_event(row) if row else None

    def seq_at(self, timestamp: str) -> int:
        """The last sequence number recorded at or before an ISO timestamp (0 if none)."""
        row = self.conn.execute(
            "SELECT max(seq) FROM events WHERE recorded_at <= ?", [timestamp]
        ).fetchone()
        return row[0] or 0

    def run_end_seq(self, run_id: str) -> int | None:
        row = self.conn.execute("SELECT max(seq) FROM events WHERE run_id = ?", [run_id]).fetchone()
        return row[0]

    # --- checking --------------------------------------------------------------------------

    def verify_chain(self) -> ChainBreak | None:
        """Recompute every hash; the first event where the chain breaks, or None."""
        try:
            return first_break(self.conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY seq"))
        except sqlite3.Error as e:
            raise self.error("cannot read", e) from e

    def verify_macs(self) -> MacCheck | None:
        """Check every event's MAC against the store's key (None without a key).

        From the first event with a MAC on, every event must have a right one, and the last
        event must have one: a chain rewritten by someone without the key fails at the first
        event they changed, and stripping the MACs fails too.
        """
        mac_of = self.mac
        if not mac_of:
            return None
        checked, before = 0, 0
        try:
            for seq, event_id, kind, digest, mac in self.conn.execute(
                    "SELECT seq, id, type, hash, mac FROM events ORDER BY seq"):
                where = f"event #{seq} ({kind}, id {event_id})"
                if mac is None:
                    if checked:
                        return MacCheck(checked, before, f"{where}: no MAC, though earlier events have "
                                        f"one: recorded without {KEY_ENV}, or its MAC was removed")
                    before += 1
                    continue
                if not (isinstance(mac, str) and hmac.compare_digest(mac, mac_of(digest))):
                    return MacCheck(checked, before, f"{where}: its MAC does not match {KEY_ENV}: the "
                                    "log was rewritten by someone without the key (or the key is not "
                                    "the one it was recorded with)")
                checked += 1
        except sqlite3.Error as e:
            raise self.error("cannot read", e) from e
        if before and not checked:
            return MacCheck(0, before, f"no event has a MAC: the log was recorded without {KEY_ENV} "
                            "(or its MACs were removed); record with the key set (the next tend) "
                            "and verify again")
        return MacCheck(checked, before, None)

    def integrity_errors(self) -> list[str]:
        try:
            found = [r[0] for r in self.conn.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as e:
            return [str(e)]
        return [] if found == ["ok"] else found

    # --- snapshots (a cache: deleting them changes no result) ------------------------------

    def save_snapshot(self, seq: int, fold_version: int, patterns: Iterable[tuple[str, bytes]]) -> None:
        """Keep a snapshot at `seq` (one row per pattern) and thin the older ones
        (`events.log.snapshots_to_keep`: the newest few and a sparser set further back)."""
        from events.log import snapshots_to_keep

        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute("DELETE FROM snapshot_patterns WHERE seq = ?", [seq])
                self.conn.execute("DELETE FROM snapshots WHERE seq = ?", [seq])
                self.conn.execute("INSERT INTO snapshots (seq, fold_version, created_at) VALUES (?, ?, ?)",
                                  [seq, fold_version, now])
                self.conn.executemany("INSERT INTO snapshot_patterns (seq, slug, state) VALUES (?, ?, ?)",
                                      ((seq, slug, state) for slug, state in patterns))
                kept = [r[0] for r in self.conn.execute("SELECT seq FROM snapshots")]
                for old in set(kept) - snapshots_to_keep(kept):
                    self.conn.execute("DELETE FROM snapshot_patterns WHERE seq = ?", [old])
                    self.conn.execute("DELETE FROM snapshots WHERE seq = ?", [old])
        except sqlite3.Error as e:
            if not isinstance(self.error("", e), StoreBusyError):  # a cache can wait for next time
                raise self.error("cannot save a snapshot", e) from e

    def snapshot_seqs(self, fold_version: int | None = None) -> list[int]:
        """The seqs of the snapshots kept (of `fold_version` only, if given), oldest first."""
        try:
            if fold_version is not None:
                return [r[0] for r in self.conn.execute(
                    "SELECT seq FROM snapshots WHERE fold_version = ? ORDER BY seq", (fold_version,))]
            return [r[0] for r in self.conn.execute("SELECT seq FROM snapshots ORDER BY seq")]
        except sqlite3.Error as e:
            raise self.error("cannot read the snapshots", e) from e

    def latest_snapshot(self, fold_version: int, until: int | None = None) -> tuple[int, dict[str, bytes]] | None:
        """The newest usable snapshot: its sequence number and each pattern's encoded state."""
        sql = "SELECT seq FROM snapshots WHERE fold_version = ?"
        params: list = [fold_version]
        if until is not None:
            sql += " AND seq <= ?"
            params.append(until)
        try:
            row = self.conn.execute(sql + " ORDER BY seq DESC LIMIT 1", params).fetchone()
            if row is None:
                return None
            rows = self.conn.execute("SELECT slug, state FROM snapshot_patterns WHERE seq = ?", [row[0]])
            return row[0], dict(rows)
        except sqlite3.Error as e:
            raise self.error("cannot read a snapshot", e) from e

    def drop_snapshots(self) -> None:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM snapshot_patterns")
            self.conn.execute("DELETE FROM snapshots")


def row_to_event(row: tuple) -> Event:
    seq, event_id, kind, slug, run_id, actor, recorded_at, version, payload, digest = row
    # orjson, as the fold reads payloads: a third faster than json for the same values
    return Event(payload=upcast(kind, version, orjson.loads(payload)), slug=slug, run_id=run_id, actor=actor, id=event_id,
                 recorded_at=recorded_at, schema_version=version, seq=seq, hash=digest)
