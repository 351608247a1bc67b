"""What `garden tend` reads and ranks while Prefect's temporary server starts.

Starting the server takes seconds (5-6 s on a 2-core machine, more the first time) during which
the tend's own process waits, one core idle. The files and the ranking do not depend on the log,
so a `Preparation` reads the garden (through the parse cache, which it fills) and ranks it in a
thread meanwhile. The flow, once it holds the lock, takes what was prepared only if the files are
still byte for byte the ones read (`Preparation.garden`): the same paths, the same hashes, taken
before and after the thread read them and again under the lock. Anything else, or a preparation
that failed, and the flow reads and ranks as it always does. It changes nothing on disk but the
parse cache, and nothing in the log.

The flow finds a preparation by the garden's folder (`prepared_for`); one process runs one tend,
so there is at most one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from events.parse_cache import open_parse_cache
from garden.candidates import Ranking, rank_patterns, warm_ranking_imports
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
    """Read and rank a garden in a thread (started here); see the module's docstring."""

    def __init__(self, settings: Settings, worth_ranking: Callable[[Garden], bool] | None = None):
        """`worth_ranking(garden)`: whether the tend will ask about any of it (else a ranking
        would cost seconds of CPU beside the flow for nothing); None: always rank."""
        self.settings = settings
        self.worth_ranking = worth_ranking
        self.key = os.path.realpath(settings.garden)
        self.read = threading.Event()  # the garden is read (or the reading failed)
        self.ranked = threading.Event()
        self.files: dict[Path, str] | None = None
        self.loaded: Garden | None = None
        self.ranking: Ranking | None = None
        self.seconds = 0.0
        self.used: dict[str, None] = {}  # what the flow took: "garden", "ranking"
        _PREPARED[self.key] = self
        threading.Thread(target=self._run, name="garden-prepare", daemon=True).start()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            warm_ranking_imports()
            before = file_hashes(self.settings.garden)
            garden = load_garden(self.settings.garden, keep_bodies=False, cache=open_parse_cache(self.settings))
            if before is not None and file_hashes(self.settings.garden) == before:
                self.files, self.loaded = before, garden
        except BaseException:  # the flow reads the garden itself and reports what is wrong
            pass
        finally:
            self.read.set()
        try:
            if self.loaded is not None and self.loaded.patterns and (
                    self.worth_ranking is None or self.worth_ranking(self.loaded)):
                self.ranking = rank_patterns(self.loaded.patterns.values(), k=self.settings.candidates)
        except BaseException:
            pass
        finally:
            self.seconds = time.perf_counter() - started
            self.ranked.set()

    def garden(self) -> Garden | None:
        """The garden read, if its files are still exactly the ones read (call holding the
        lock); waits for the reading to end."""
        self.read.wait()
        if self.loaded is None or file_hashes(self.settings.garden) != self.files:
            self.loaded = None  # not to be held beside the garden read again
            return None
        self.used["garden"] = None
        return self.loaded

    def ranking_of(self, garden: Garden, k: int) -> Ranking | None:
        """The ranking made, if `garden` is the garden it ranked with the same `k`; waits for it."""
        if garden is not self.loaded or k != self.settings.candidates:
            return None
        self.ranked.wait()
        if self.ranking is not None:
            self.used["ranking"] = None
        return self.ranking

    def close(self) -> None:
        self.loaded = self.ranking = None
        if _PREPARED.get(self.key) is self:
            del _PREPARED[self.key]


def prepared_for(garden: Path) -> Preparation | None:
    return _PREPARED.get(os.path.realpath(garden))
