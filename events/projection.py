"""The projection: the log folded into each pattern's state, with snapshots to start from.

What the state is and how each event changes it lives in `garden.state` (the fold is domain
code, and the tend's in-memory recorder and a review's preview use it too); this module loads it
from an event store: it folds from the newest snapshot it trusts, and saves one when it had to
fold many events. Snapshots are a cache: deleting them changes no result (the property tests
check this). A snapshot is keyed by a fingerprint of the fold's code (`FOLD_VERSION`), so a
change to how events fold makes older snapshots unused without anyone bumping a number.
"""

from __future__ import annotations

import gc
import hashlib
from itertools import chain
from pathlib import Path

import orjson

import garden.event
import garden.state
import garden.upcast
from garden.state import Patterns, State, apply


def _fingerprint(*modules) -> int:
    """A number that changes whenever the source of `modules` does (fits an SQLite integer)."""
    digest = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in modules)).hexdigest()
    return int(digest[:15], 16)


FOLD_VERSION = _fingerprint(garden.state, garden.upcast, garden.event)
SNAPSHOT_EVERY = 20_000  # events folded past the newest snapshot before a new one is saved
FITS_ROW = ""  # the snapshot row holding the state's calibration fits
DUPLICATES_ROW = "#duplicates"  # and its suspected duplicate patterns (no slug starts with "#")


def save_snapshot(store, state: State) -> None:
    rows = state.patterns.encoded()
    if state.fits:
        rows = chain(rows, [(FITS_ROW, orjson.dumps(state.fits))])
    if state.duplicates:
        rows = chain(rows, [(DUPLICATES_ROW, orjson.dumps(state.duplicates))])
    store.save_snapshot(state.seq, FOLD_VERSION, rows)


def save_snapshot_if_due(store, state: State) -> bool:
    """Save `state`, kept current by its caller (a tend folds every event it appends), as the
    snapshot `load_state` would save after folding the same events again: when it is the log's
    newest state and SNAPSHOT_EVERY events have come since the newest snapshot. False when it
    is not the log's newest state (a caller that must then load it)."""
    if state.seq != store.head_seq():
        return False
    if state.seq - max(store.snapshot_seqs(FOLD_VERSION), default=0) >= SNAPSHOT_EVERY:
        save_snapshot(store, state)
    return True


# --- loading with snapshots ----------------------------------------------------------------


def load_state(store, until: int | None = None, *, use_snapshots: bool = True) -> State:
    """The state after event `until` (default: the newest), folding from the best snapshot.

    Saves a new snapshot when it had to fold many events past the newest one (only when
    loading the current state).
    """
    state, start = State(), 0
    if use_snapshots:
        snap = store.latest_snapshot(FOLD_VERSION, until)
        if snap is not None:
            start, encoded = snap
            fits = encoded.pop(FITS_ROW, None)
            duplicates = encoded.pop(DUPLICATES_ROW, None)
            state = State(seq=start, patterns=Patterns(encoded), fits=orjson.loads(fits) if fits else {},
                          duplicates=orjson.loads(duplicates) if duplicates else {})
    folded = 0
    collecting = gc.isenabled()
    gc.disable()  # the fold makes millions of small containers and frees none of them
    try:
        for row in store.rows(after=start, until=until):
            apply(state, row)
            folded += 1
    finally:
        if collecting:
            gc.enable()
    if until is not None and state.seq < until:
        state.seq = min(until, store.head_seq())
    if use_snapshots and until is None and folded >= SNAPSHOT_EVERY:
        save_snapshot(store, state)
    return state
