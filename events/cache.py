"""The model response cache, kept in the event database beside the log.

Only responses that parsed are stored (the proposer decides); a cached response is a saving, not
a fact, so it lives outside the event log and the hash chain. Proposers call it from several
threads at once, hence the lock; it has its own connection, so its writes never join (or wait
inside) a batch the log is appending.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from typing import Any

from garden.proposal import Usage

from events.store import EventStore


class SqliteResponseCache:
    def __init__(self, store: EventStore):
        self.store = store
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(store.path, timeout=30, isolation_level=None,
                                    check_same_thread=False)

    def close(self) -> None:
        self.conn.close()

    def get(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            try:
                row = self.conn.execute(
                    "SELECT response FROM responses WHERE key = ?", [key]
                ).fetchone()
            except sqlite3.Error as e:
                raise self.store.error("cannot read the response cache", e) from e
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any], usage: Usage) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with self.lock:
            try:
                self.conn.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                    [key, model, now, json.dumps(response, ensure_ascii=False),
                     usage.prompt_tokens, usage.completion_tokens],
                )
            except sqlite3.Error as e:
                raise self.store.error("cannot write the response cache", e) from e
