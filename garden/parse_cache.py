"""Parsed files by their bytes: a file read before, unchanged, is not parsed again.

Parsing the YAML is most of what loading a garden costs (3 ms a file; 20,000 files take a
minute), and most files are unchanged from one command to the next. The cache keys each
parse by the sha256 of the file's bytes, its path, and the parsing code itself, so it can never
answer for different bytes, a moved file, or a newer parser. It holds what `read_files` yields
(the pattern without its body, and the problems) and nothing else.

It is only a cache: `.garden/parse-cache.db` beside the event log, deleted at will, and any
trouble with it (locked, damaged, unwritable) means parsing as if it were not there.
"""

from __future__ import annotations

import hashlib
import pickle
import sqlite3
from pathlib import Path

_SOURCES = ("model.py", "block.py", "document.py", "catalog.py", "errors.py", "parse_cache.py")
#: Changes whenever the code that makes a cached value changes.
CODE_VERSION = hashlib.sha256(
    b"".join((Path(__file__).parent / name).read_bytes() for name in _SOURCES)
).hexdigest()[:16]


class ParseCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.conn: sqlite3.Connection | None = None
        self.new: list[tuple[str, bytes]] = []
        self.seen: set[str] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=2)
            self.conn.execute("CREATE TABLE IF NOT EXISTS parsed (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
        except (OSError, sqlite3.Error):
            self.conn = None

    @staticmethod
    def key(content_hash: str, path: Path, shown: str) -> str:
        return f"{CODE_VERSION} {content_hash} {path} {shown}"

    def get(self, key: str):
        if self.conn is None:
            return None
        self.seen.add(key)
        try:
            row = self.conn.execute("SELECT data FROM parsed WHERE key = ?", (key,)).fetchone()
            return None if row is None else pickle.loads(row[0])
        except (sqlite3.Error, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            return None

    def put(self, key: str, value) -> None:
        if self.conn is not None:
            self.new.append((key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)))

    def save(self) -> None:
        """Store the new parses, and forget the old ones of files that were not read this time
        (when they have come to outnumber the live ones: a cache of one garden stays small)."""
        if self.conn is None:
            return
        try:
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO parsed (key, data) VALUES (?, ?)", self.new)
                total = self.conn.execute("SELECT count(*) FROM parsed").fetchone()[0]
                if total > 2 * len(self.seen) + 100:
                    self.conn.execute("CREATE TEMP TABLE live (key TEXT PRIMARY KEY)")
                    self.conn.executemany("INSERT OR IGNORE INTO live VALUES (?)", ((k,) for k in self.seen))
                    self.conn.execute("DELETE FROM parsed WHERE key NOT IN (SELECT key FROM live)")
                    self.conn.execute("DROP TABLE live")
        except sqlite3.Error:
            pass
        finally:
            self.new = []

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
