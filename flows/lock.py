"""The garden's lock: one tend per event database at a time.

An advisory `flock` on `<db>.lock`. The kernel drops it when its process dies, however it dies,
so a lock left by a killed tend is recovered at once rather than waited on; the file keeps the
holder's pid and start time only to say who holds it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from garden.errors import GardenError, display_path


class LockedError(GardenError):
    """Another tend holds the garden's lock."""

    exit_code = 2


@contextmanager
def garden_lock(db: Path) -> Iterator[None]:
    path = Path(f"{db}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown process"
            raise LockedError(
                f"another tend is running on {display_path(db)} ({holder}); "
                "wait for it to finish (a killed one releases the lock by itself)"
            ) from None
        os.ftruncate(fd, 0)
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()}, started {started}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
