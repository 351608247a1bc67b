"""An event log in memory: the same behaviour as the SQLite store (`events.store.EventStore`),
held in a list, for tests and for anything that needs a log it will throw away.

It stores the same rows, chained by the same hashes, so a row read from it is the row the SQLite
store would give for the same appends (the contract suite, `tests/test_store_contract.py`, holds
both to that). It has no file, no head file and no key: `publish_head` returns the head without
writing it anywhere, and there are no MACs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from events.heads import Head, utc_now
from events.log import snapshots_to_keep
from events.store import GENESIS, AppendResult, ChainBreak, chained_rows, first_break, row_to_event
from garden.event import Event


class MemoryEventStore:
    """One event log in a list; `rows[i]` has seq i + 1. Use as a context manager, or not."""

    shown = "(in memory)"
    heads = None
    mac = None

    def __init__(self):
        self._rows: list[tuple] = []
        self._by_id: dict[str, int] = {}  # event id -> index in _rows
        self._snapshots: dict[int, tuple[int, str, dict[str, bytes]]] = {}  # seq -> (version, at, rows)

    def __enter__(self) -> "MemoryEventStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    # --- writing ---------------------------------------------------------------------------

    def append(self, events: Iterable[Event]) -> AppendResult:
        """Append a batch atomically; events whose id is already stored are skipped.

        Every row is made before any is stored, so an event that cannot be stored stores none."""
        batch = list(events)
        rows = list(chained_rows(batch, *self._head(), self._by_id))
        for row in rows:
            self._by_id[row[1]] = len(self._rows)
            self._rows.append(row)
        if not rows:
            return AppendResult(0, len(batch), None, None)
        return AppendResult(len(rows), len(batch) - len(rows), rows[0][0], rows[-1][0])

    def publish_head(self, run_id: str | None = None) -> Head | None:
        seq, digest = self._head()
        return Head(seq, digest, utc_now(), run_id or "-") if seq else None

    def _head(self) -> tuple[int, str]:
        return (self._rows[-1][0], self._rows[-1][9]) if self._rows else (0, GENESIS)

    # --- reading ---------------------------------------------------------------------------

    def head_seq(self) -> int:
        return self._head()[0]

    def hash_at(self, seq: int) -> str | None:
        return self._rows[seq - 1][9] if 0 < seq <= len(self._rows) else None

    def rows(self, *, slug: str | None = None, run_id: str | None = None,
             types: Iterable[str] | None = None, after: int = 0, until: int | None = None,
             newest_first: bool = False) -> Iterator[tuple]:
        """Rows matching every given filter, in sequence order (seq i is at index i - 1)."""
        start = max(after, 0)
        end = len(self._rows) if until is None else max(min(until, len(self._rows)), start)
        wanted = None if types is None else set(types)
        picked = (row for row in self._rows[start:end]
                  if (slug is None or row[3] == slug) and (run_id is None or row[4] == run_id)
                  and (wanted is None or row[2] in wanted))
        return iter(list(picked)[::-1]) if newest_first else picked

    def events(self, **filters) -> Iterator[Event]:
        for row in self.rows(**filters):
            yield row_to_event(row)

    def get(self, event_id: str) -> Event | None:
        index = self._by_id.get(event_id)
        return None if index is None else row_to_event(self._rows[index])

    def seq_at(self, timestamp: str) -> int:
        """The last sequence number recorded at or before an ISO timestamp (0 if none)."""
        return max((row[0] for row in self._rows if row[6] <= timestamp), default=0)

    def run_end_seq(self, run_id: str) -> int | None:
        return max((row[0] for row in self._rows if row[4] == run_id), default=None)

    # --- checking --------------------------------------------------------------------------

    def verify_chain(self) -> ChainBreak | None:
        return first_break(self._rows)

    def verify_macs(self) -> None:
        return None

    def integrity_errors(self) -> list[str]:
        return []

    # --- snapshots (a cache: deleting them changes no result) ------------------------------

    def save_snapshot(self, seq: int, fold_version: int, patterns: Iterable[tuple[str, bytes]]) -> None:
        """Keep a snapshot at `seq` and thin the older ones (`events.log.snapshots_to_keep`)."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._snapshots[seq] = (fold_version, now, dict(patterns))
        keep = snapshots_to_keep(self._snapshots)
        for old in [s for s in self._snapshots if s not in keep]:
            del self._snapshots[old]

    def latest_snapshot(self, fold_version: int, until: int | None = None) -> tuple[int, dict[str, bytes]] | None:
        usable = sorted(s for s, (version, _, _) in self._snapshots.items()
                        if version == fold_version and (until is None or s <= until))
        if not usable:
            return None
        return usable[-1], dict(self._snapshots[usable[-1]][2])

    def snapshot_seqs(self) -> list[int]:
        return sorted(self._snapshots)

    def drop_snapshots(self) -> None:
        self._snapshots.clear()


__all__ = ["MemoryEventStore"]
