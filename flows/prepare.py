"""What `garden tend` reads while Prefect's temporary server starts.

Starting the server takes seconds (5-6 s on a 2-core machine, more the first time) during which
the tend's own process waits, one core idle. The files do not depend on the log, so a
`Preparation` reads the garden (through the parse cache, which it fills) in a thread meanwhile,
then imports the ranking's libraries. The flow, once it holds the lock, takes the garden only if
the files are still byte for byte the ones read (`Preparation.garden`): the same paths and the
same hashes as the thread's, whose patterns were each parsed from the bytes it hashed. Anything else, or
a preparation that failed, and the flow reads the garden as it always does. It changes nothing on
disk but the parse cache, and nothing in the log.

It does not rank. Ranking beside the flow was tried: on 2 cores the thread ranked a third slower
than the flow does alone (the server's start takes the other core, the flow's start the GIL), it
had to read the log to know whether a tend would rank at all, and its peak memory added to the
flow's: a 20,000-pattern garden's tend went past 2 GB.

The flow finds a preparation by the garden's folder (`prepared_for`); one process runs one tend,
so there is at most one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from events.parse_cache import open_parse_cache
from garden.candidates import warm_ranking_imports
from garden.catalog import Garden, load_garden, pattern_files
from garden.document import hash_bytes
from garden.settings import Settings

_PREPARED: dict[str, "Preparation"] = {}


def file_hashes(root: Path) -> dict[Path, str] | None:
    """Every pattern file's hash, by path; None when one cannot be read."""
    try:
        return {path: hash_bytes(path.read_bytes()) for path in pattern_files(root)}
    except OSError:
        return None


class Preparation:
    """A garden read in a thread, from `start` on; see the module's docstring."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.key = os.path.realpath(settings.garden)
        self.read = threading.Event()  # the garden is read (or the reading failed)
        self.started = False
        self.files: dict[Path, str] | None = None
        self.loaded: Garden | None = None
        self.seconds = 0.0
        self.taken = False  # by the flow
        _PREPARED[self.key] = self

    def start(self) -> None:
        self.started = True
        threading.Thread(target=self._run, name="garden-prepare", daemon=True).start()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            files = file_hashes(self.settings.garden)
            garden = load_garden(self.settings.garden, keep_bodies=False, cache=open_parse_cache(self.settings))
            # Each pattern was parsed from the bytes hashed before (none changed in between).
            if files is not None and all(files.get(Path(p.path)) == p.content_hash for p in garden.patterns.values()):
                self.files, self.loaded = files, garden
        except BaseException:  # the flow reads the garden itself and reports what is wrong
            pass
        finally:
            self.seconds = time.perf_counter() - started
            self.read.set()
        try:
            warm_ranking_imports()  # for the flow's ranking, seconds of imports
        except BaseException:
            pass

    def garden(self) -> Garden | None:
        """The garden read, if its files are still exactly the ones read (call holding the
        lock); waits for the reading to end."""
        if not self.started:
            return None
        self.read.wait()
        if self.loaded is None or file_hashes(self.settings.garden) != self.files:
            self.loaded = None  # not to be held beside the garden read again
            return None
        self.taken = True
        return self.loaded

    def close(self) -> None:
        self.loaded = None
        if _PREPARED.get(self.key) is self:
            del _PREPARED[self.key]


def prepared_for(garden: Path) -> Preparation | None:
    return _PREPARED.get(os.path.realpath(garden))
