"""Numbered schema migrations for the watch log.

Each migration runs once, inside the same transaction that records it in `schema_migrations`
(id, name, applied_at) and bumps `PRAGMA user_version`, so a crash mid-upgrade leaves the old
schema intact. A database that records a migration this version does not know was written by a
newer dualrec: we refuse to touch it rather than guess (see `SchemaTooNewError`).

Never edit a released migration; append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from dualrec_tui.core.errors import DualrecError


class WatchLogError(DualrecError):
    """The watch log database cannot be used (not a database, locked, from a newer version...)."""


class SchemaTooNewError(WatchLogError):
    """The database was written by a newer dualrec: upgrading us is the fix, not touching the file."""


@dataclass(frozen=True)
class Migration:
    id: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "entries, trash for undo, not-interested movies",
        """
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused, so undo can restore one
            dataset TEXT,                          -- catalog name (e.g. ml-latest-small); NULL = free text
            movie_id INTEGER,                      -- the release's movieId; NULL = free text
            imdb_id TEXT,
            title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
            year INTEGER,
            genres TEXT NOT NULL DEFAULT '[]',     -- JSON list: snapshot, readable without the catalog
            watched_on TEXT NOT NULL
                CHECK (watched_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
            rating REAL CHECK (rating IS NULL OR (rating BETWEEN 0.5 AND 5.0 AND rating * 2 = round(rating * 2))),
            note TEXT CHECK (note IS NULL OR length(note) <= 10000),
            source TEXT NOT NULL DEFAULT 'manual',
            created_at TEXT NOT NULL,
            CHECK ((dataset IS NULL) = (movie_id IS NULL))
        );
        CREATE INDEX entries_chronological ON entries (watched_on, id);
        CREATE INDEX entries_movie ON entries (dataset, movie_id);

        CREATE TABLE deleted_entries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            entry_id INTEGER NOT NULL,
            row_json TEXT NOT NULL,                -- the whole deleted row, restored as is by undo
            deleted_at TEXT NOT NULL
        );

        CREATE TABLE not_interested (
            dataset TEXT NOT NULL,
            movie_id INTEGER NOT NULL,
            imdb_id TEXT,
            title TEXT NOT NULL,
            year INTEGER,
            created_at TEXT NOT NULL,
            PRIMARY KEY (dataset, movie_id)
        );
        """,
    ),
    Migration(
        2,
        "undo per window: deleted entries remember which open window deleted them",
        """
        ALTER TABLE deleted_entries ADD COLUMN instance TEXT;  -- NULL = from a closed session, anyone may undo
        """,
    ),
    Migration(
        3,
        "rewatch flag and tags on entries (kept from a Letterboxd diary, editable)",
        """
        ALTER TABLE entries ADD COLUMN rewatch INTEGER NOT NULL DEFAULT 0 CHECK (rewatch IN (0, 1));
        ALTER TABLE entries ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';  -- JSON list of tag names, in order
        """,
    ),
)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _applied(conn: sqlite3.Connection) -> list[int]:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT id FROM schema_migrations ORDER BY id")]


def migrate(conn: sqlite3.Connection, path: Path | str, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the pending migrations in order; return the ids applied now.

    `conn` must be in autocommit mode (isolation_level=None): each migration gets its own
    BEGIN IMMEDIATE ... COMMIT, so a second process opening the log waits instead of racing.
    """
    known = {m.id for m in migrations}
    done_now: list[int] = []
    # Up to date (the usual case): no write lock needed, so opening never waits on another writer.
    applied_before = _applied(conn)
    version_before = conn.execute("PRAGMA user_version").fetchone()[0]
    if set(applied_before) == known and version_before == max(known, default=0):
        return done_now
    for migration in sorted(migrations, key=lambda m: m.id):
        conn.execute("BEGIN IMMEDIATE")
        try:
            applied = _applied(conn)
            unknown = sorted(set(applied) - known)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if unknown or version > max(known, default=0):
                newest = max([*unknown, version])
                raise SchemaTooNewError(
                    f"{path}: this watch log was written by a newer dualrec (schema version {newest}, this "
                    f"version knows up to {max(known, default=0)}). Upgrade dualrec, or set DUALREC_DB to "
                    "another file; the database was not modified."
                )
            if migration.id in applied:
                conn.execute("COMMIT")
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            # executescript would COMMIT our transaction first; run statement by statement instead.
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)",
                (migration.id, migration.name, utc_now()),
            )
            conn.execute(f"PRAGMA user_version = {int(migration.id)}")
            conn.execute("COMMIT")
            done_now.append(migration.id)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return done_now


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (sqlite3.complete_statement knows quoting)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]}")
    return statements
