"""What the application needs of an event log, and the rule that thins its snapshots.

`EventLog` is the interface: `events.store.EventStore` (SQLite, the log a garden keeps) and
`events.memory.MemoryEventStore` (a list in memory, for tests and dry runs) both implement it,
and `tests/test_store_contract.py` holds both to the same behaviour. Code above `events/` should
ask no more of a store than this.

Rows are tuples in `events.store.COLUMNS` order: (seq, id, type, slug, run_id, actor,
recorded_at, schema_version, payload JSON, hash). The fold reads rows, not `Event`s, because
validating a million payloads costs more than folding them.

Snapshots are a cache of the fold (`events.projection`): deleting them changes no result. A
store keeps several, so the state as of an old point is folded from a snapshot near it, not from
the first event: `snapshots_to_keep` says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from events.heads import Head
from events.store import AppendResult, ChainBreak
from garden.event import Event

#: The newest snapshots kept whatever their spacing.
KEEP_NEWEST = 3
#: At most this many snapshots in all (each holds every pattern's state).
MAX_SNAPSHOTS = 8


@runtime_checkable
class EventLog(Protocol):
    """An append-only log of events, numbered 1, 2, ... in the order they were appended."""

    def append(self, events: Iterable[Event]) -> AppendResult:
        """Store a batch whole or not at all; an event whose id is stored already is skipped."""

    def rows(self, *, slug: str | None = None, run_id: str | None = None,
             types: Iterable[str] | None = None, after: int = 0, until: int | None = None,
             newest_first: bool = False) -> Iterator[tuple]:
        """Stored rows matching every filter given (after < seq <= until), by seq."""

    def events(self, **filters) -> Iterator[Event]:
        """The `Event`s of `rows(**filters)`."""

    def get(self, event_id: str) -> Event | None: ...

    def head_seq(self) -> int:
        """The last event's seq (0 for an empty log)."""

    def hash_at(self, seq: int) -> str | None: ...

    def seq_at(self, timestamp: str) -> int:
        """The last seq recorded at or before an ISO timestamp (0 if none)."""

    def run_end_seq(self, run_id: str) -> int | None: ...

    def publish_head(self, run_id: str | None = None) -> Head | None: ...

    def verify_chain(self) -> ChainBreak | None: ...

    def save_snapshot(self, seq: int, fold_version: int, patterns: Iterable[tuple[str, bytes]]) -> None:
        """Keep a snapshot of the fold at `seq`, thinning the older ones (`snapshots_to_keep`)."""

    def latest_snapshot(self, fold_version: int, until: int | None = None) -> tuple[int, dict[str, bytes]] | None:
        """The newest snapshot of this fold version at or before `until`: its seq and rows."""

    def snapshot_seqs(self) -> list[int]:
        """The seqs of the snapshots kept, oldest first."""

    def drop_snapshots(self) -> None: ...

    def close(self) -> None: ...


def snapshots_to_keep(seqs: Iterable[int], newest: int = KEEP_NEWEST, most: int = MAX_SNAPSHOTS) -> set[int]:
    """Which snapshots to keep, of those at `seqs`.

    The `newest` few, and of the older ones one for each doubling of the distance (in events)
    from the newest snapshot, the oldest in its band: so the state as of an old point is a fold
    of not many more events than lie between that point and now. Keeping the oldest of a band
    keeps the spacing as snapshots are added one at a time: a snapshot moving into a band that
    has one already is the one that goes. Never more than `most` in all (the oldest go first).
    """
    ordered = sorted(set(seqs), reverse=True)
    keep, older = ordered[:newest], ordered[newest:]
    head, bands = (ordered[0] if ordered else 0), set()
    far: list[int] = []
    for seq in reversed(older):  # oldest first: the first of each band is kept
        band = (head - seq).bit_length()
        if band not in bands:
            bands.add(band)
            far.append(seq)
    return set((keep + far[::-1])[:most])
