"""Parsed files by their bytes: a file read before, unchanged, is not parsed again.

Parsing the YAML is most of what loading a garden costs (3 ms a file; 20,000 files take a
minute), and most files are unchanged from one command to the next. The cache keys each
parse by the sha256 of the file's bytes, its path, and the parsing code itself, so it can never
answer for different bytes, a moved file, or a newer parser. It holds what `read_files` yields
(the pattern without its body, and the problems) and nothing else.

It holds data, never code: whoever can write the cache file must not be able to run anything
in the commands that read it (a pickle would). An entry is JSON (orjson) of the pattern's
fields and the problems; the YAML values JSON has no type for (dates, times, bytes, sets, maps
with keys that are not strings, non-finite floats, integers beyond 64 bits) are listed beside
it by their path, with their type, and put back on the way out. The pattern is then validated
by its pydantic model, so an entry that does not decode or validate is a miss: the file is parsed
again and the entry replaced. FORMAT is part of every key: entries of an older format (version
1 held pickles) are never read.

It is only a cache: `.garden/parse-cache.db` beside the event log, deleted at will, and any
trouble with it (locked, damaged, unwritable) means parsing as if it were not there. It lives in
`events/` because it is SQLite; the domain sees it through `garden.catalog.ParsedFiles`.

All the entries of this code's version are read at the first lookup, in one query: a garden
reads nearly all of its files, and one query per file cost more than decoding them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import sqlite3
from pathlib import Path
from typing import Any

import orjson

import garden
from garden.catalog import Parsed
from garden.errors import Problem
from garden.model import Pattern

#: The entries' format: 1 was pickles (never read again), 2 is JSON with typed values beside it.
FORMAT = 2
_SOURCES = ("model.py", "block.py", "document.py", "yaml_fast.py", "catalog.py", "errors.py")
#: Changes whenever the code that makes a cached value changes (this module's too).
CODE_VERSION = hashlib.sha256(
    f"format {FORMAT}".encode()
    + b"".join((Path(garden.__file__).parent / name).read_bytes() for name in _SOURCES)
    + Path(__file__).read_bytes()
).hexdigest()[:16]

#: What a damaged or forged entry can raise while it is decoded and validated (pydantic's
#: ValidationError, orjson's and base64's errors are ValueErrors).
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


def encode_parsed(pattern: Pattern | None, problems: list[Problem]) -> bytes:
    """One cache entry; raises TypeError or ValueError for a value it cannot hold."""
    fields = None if pattern is None else pattern.model_dump(exclude={"body_utf8"})
    return orjson.dumps({
        "pattern": _encode(fields),
        "problems": [[p.path, p.line, p.col, p.level, p.message, p.code] for p in problems],
    })


def encoded(value: Parsed) -> bytes | None:
    """`encode_parsed`, or None for a value it cannot hold (not cached)."""
    try:
        return encode_parsed(*value)
    except (TypeError, ValueError, RecursionError):
        return None


def decode_parsed(data: bytes) -> Parsed:
    """A cache entry back as the pattern (without its body) and the problems; raises one of
    `_UNREADABLE` for an entry that does not decode or validate."""
    entry = orjson.loads(data)
    fields = _decode(entry["pattern"])
    pattern = None if fields is None else Pattern.model_validate({**fields, "body_utf8": None})
    return pattern, [_problem(row) for row in entry["problems"]]


def _problem(row: Any) -> Problem:
    path, line, col, level, message, code = row
    if not (all(type(v) is str for v in (path, message, code)) and type(line) is int
            and type(col) is int and level in ("error", "warning")):
        raise ValueError(f"not a problem: {row!r}")
    return Problem(path, line, col, level, message, code)


# --- values JSON has no type for, kept beside the JSON by their path ------------------------


def _encode(value: Any) -> dict:
    typed: list = []
    return {"json": _plain(value, None, typed), "typed": typed}


def _plain(value: Any, path: tuple | None, typed: list) -> Any:
    """`value` as plain JSON; what JSON cannot hold is null here and listed in `typed` with its
    path. `path` is (parent's path, key), unrolled into a list only for a typed value; strings,
    most of a pattern, are taken as they are without a call."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int and -(2**63) <= value < 2**64:
        return value
    if kind is float and math.isfinite(value):
        return value
    if kind is list or kind is tuple:
        return [v if type(v) is str else _plain(v, (path, i), typed) for i, v in enumerate(value)]
    if kind is dict and all(type(k) is str for k in value):
        return {k: v if type(v) is str else _plain(v, (path, k), typed) for k, v in value.items()}
    typed.append([_unrolled(path), *_typed(value)])
    return None


def _unrolled(path: tuple | None) -> list:
    steps = []
    while path is not None:
        path, step = path
        steps.append(step)
    return steps[::-1]


def _typed(value: Any) -> tuple[str, Any]:
    kind = type(value)
    if kind is int:
        return "int", str(value)
    if kind is float:
        return "float", repr(value)
    if kind is dt.datetime:
        return "datetime", value.isoformat()
    if kind is dt.date:
        return "date", value.isoformat()
    if kind is bytes:
        return "bytes", base64.b64encode(value).decode("ascii")
    if kind is set:
        return "set", _encode(list(value))
    if kind is dict:
        return "map", _encode(list(value.items()))
    raise TypeError(f"the parse cache cannot hold a {kind.__name__}")


def _decode(entry: dict) -> Any:
    value = entry["json"]
    for path, kind, data in entry["typed"]:
        typed = _untyped(kind, data)
        if not path:
            value = typed
            continue
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        if parent[path[-1]] is not None:  # only the places `_plain` left empty
            raise ValueError(f"no typed value belongs at {path!r}")
        parent[path[-1]] = typed
    return value


def _untyped(kind: str, data: Any) -> Any:
    if kind == "int":
        return int(data)
    if kind == "float":
        return float(data)
    if kind == "datetime":
        return dt.datetime.fromisoformat(data)
    if kind == "date":
        return dt.date.fromisoformat(data)
    if kind == "bytes":
        return base64.b64decode(data, validate=True)
    if kind == "set":
        return set(_decode(data))
    if kind == "map":
        return {key: item for key, item in _decode(data)}
    raise ValueError(f"unknown type {kind!r}")


class ParseCache:
    """The parse cache in an SQLite file (`garden.catalog.ParsedFiles`). One cache serves one
    `load_garden`, which saves it at the end; `save` also closes it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.conn: sqlite3.Connection | None = None
        self.new: list[tuple[str, bytes]] = []
        self.seen: set[str] = set()
        self.stored: dict[str, bytes] | None = None  # this code version's entries, once read
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=2)
            self.conn.execute("CREATE TABLE IF NOT EXISTS parsed (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
        except (OSError, sqlite3.Error):
            self.conn = None

    @staticmethod
    def key(content_hash: str, path: Path, shown: str) -> str:
        return f"{CODE_VERSION} {content_hash} {path} {shown}"

    def get(self, key: str) -> Parsed | None:
        if self.conn is None:
            return None
        self.seen.add(key)
        if self.stored is None:
            try:  # every key of this version starts "<CODE_VERSION> ": one range of the index
                self.stored = dict(self.conn.execute(
                    "SELECT key, data FROM parsed WHERE key >= ? AND key < ?",
                    (f"{CODE_VERSION} ", f"{CODE_VERSION}!")))
            except sqlite3.Error:
                self.stored = {}
        data = self.stored.pop(key, None)
        if data is None:
            return None
        try:
            return decode_parsed(data)
        except _UNREADABLE:  # damaged or forged: parse the file again, and replace the entry
            return None

    def put(self, key: str, value: Parsed) -> None:
        if self.conn is not None and (data := encoded(value)) is not None:
            self.new.append((key, data))

    def put_encoded(self, key: str, data: bytes) -> None:
        """An entry `encoded` already (where the pattern was made: another process)."""
        if self.conn is not None:
            self.new.append((key, data))

    def save(self, forget: bool = True) -> None:
        """Store the new parses, forget the old ones of files that were not read this time
        (when they have come to outnumber the live ones: a cache of one garden stays small;
        not with `forget` False, for a cache that read nothing but was given files just
        written), and close."""
        if self.conn is None:
            return
        try:
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO parsed (key, data) VALUES (?, ?)", self.new)
                total = self.conn.execute("SELECT count(*) FROM parsed").fetchone()[0]
                if forget and total > 2 * len(self.seen) + 100:
                    self.conn.execute("CREATE TEMP TABLE live (key TEXT PRIMARY KEY)")
                    self.conn.executemany("INSERT OR IGNORE INTO live VALUES (?)", ((k,) for k in self.seen))
                    self.conn.execute("DELETE FROM parsed WHERE key NOT IN (SELECT key FROM live)")
                    self.conn.execute("DROP TABLE live")
        except sqlite3.Error:
            pass
        finally:
            self.new, self.stored = [], None
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def open_parse_cache(settings) -> ParseCache | None:
    """The garden's parse cache (`Settings.parse_cache`), or None when the settings turn it off."""
    return ParseCache(settings.parse_cache) if settings.parse_cache is not None else None
