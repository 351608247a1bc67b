"""The event database's schema, as numbered migrations recorded in `schema_migrations`.

A newer graph-garden opens an older database by applying the migrations it lacks, each in its
own transaction. A database whose schema is newer than this code knows is refused: writing to it
could lose what the newer version records.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from garden.errors import GardenError


class SchemaError(GardenError):
    """The database's schema is not one this version of graph-garden can use."""


MIGRATIONS: list[tuple[str, str]] = [
    (
        "events: the append-only log",
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            slug TEXT,
            run_id TEXT,
            actor TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            payload TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX events_slug ON events (slug, seq);
        CREATE INDEX events_run ON events (run_id, seq) WHERE run_id IS NOT NULL;
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
        """,
    ),
    (
        "snapshots: cached projections",
        """
        CREATE TABLE snapshots (
            seq INTEGER PRIMARY KEY,
            fold_version INTEGER NOT NULL,
            state TEXT NOT NULL
        );
        """,
    ),
    (
        "responses: the model response cache",
        """
        CREATE TABLE responses (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            created_at TEXT NOT NULL,
            response TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL
        );
        """,
    ),
    (
        "snapshots: one row per pattern, decoded only when used",
        """
        DROP TABLE snapshots;
        CREATE TABLE snapshots (
            seq INTEGER PRIMARY KEY,
            fold_version INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE snapshot_patterns (
            seq INTEGER NOT NULL,
            slug TEXT NOT NULL,
            state BLOB NOT NULL,
            PRIMARY KEY (seq, slug)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "events: a MAC per event, when a log key is set (older rows have none)",
        """
        ALTER TABLE events ADD COLUMN mac TEXT;
        """,
    ),
    (
        "events: an index by type (the runs, the labels, the suspicions are read by type)",
        """
        CREATE INDEX events_type ON events (type, seq);
        """,
    ),
]

LATEST = len(MIGRATIONS)


def schema_version(db) -> int:
    """The schema version of a database (an sqlite3 connection or a sqlite_utils Database)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone() is None:
        return 0
    row = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return row[0] or 0


def migrate(db, shown: str) -> int:
    """Bring the database (an sqlite3 connection or a sqlite_utils Database) up to LATEST;
    returns the version it had."""
    conn = getattr(db, "conn", db)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        found = schema_version(db)
        if found > LATEST:
            raise SchemaError(
                f"{shown}: the database has schema version {found}, newer than this graph-garden "
                f"knows ({LATEST}); upgrade graph-garden to use it"
            )
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        for version in range(found + 1, LATEST + 1):
            name, sql = MIGRATIONS[version - 1]
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                [version, name, now],
            )
        conn.execute("COMMIT")
        return found
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3 knows where a trigger's body ends)."""
    statements, current = [], ""
    for line in sql.strip().splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements
