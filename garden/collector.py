"""CPython's cyclic garbage collector during long work on a whole garden.

Reading a garden or tending it builds a heap of hundreds of thousands of objects that it keeps
(the patterns, the state, the events) and makes almost no reference cycles. CPython starts a
full collection each time that heap has grown by a quarter, and each one walks all of it again:
measured on a first tend of 3,600 patterns, 23 full collections took 5.6 s of its 34 s and
freed 131 objects between them. `full_collections_paused()` stops the full collections while
the work runs. The young generations are still collected, so a cycle made and dropped at once
still goes; one that outlives them waits for the first full collection after the work.

Threads may overlap (the preparation reads the garden while the flow starts): the collector's
thresholds are the process's, so the first to enter saves them and the last to leave puts them
back. Python 3.14's collector is incremental and has no full collections to pause; there the
third threshold is not used, and this changes nothing.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_NEVER = 2**31 - 1  # young collections between full ones: none, in any real run
_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextlib.contextmanager
def full_collections_paused() -> Iterator[None]:
    """No full (oldest-generation) collection while the block runs."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(_saved[0], _saved[1], _NEVER)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


def no_full_collections() -> None:
    """For the rest of a process that does only such work (a tend's helper process,
    `flows.helper`): no full collections, and what it holds now (its imported modules) is left
    out of every collection (`gc.freeze`). The helper answered or prepared each batch in a heap
    that grew by a quarter time and again: 14 full collections, 0.9 s of a first tend of 3,600."""
    gc.freeze()
    gc.set_threshold(*gc.get_threshold()[:2], _NEVER)
