"""Numbered schema migrations for the watch log, each a function registered with `@migration`.

Each migration runs once, inside the same transaction that records it in `schema_migrations`
(id, name, applied_at) and bumps `PRAGMA user_version`, so a crash mid-upgrade leaves the old
schema intact. A database that records a migration this version does not know was written by a
newer dualrec: we refuse to touch it rather than guess (see `SchemaTooNewError`).

Never edit a released migration; append a new one (forward only: an existing log upgrades in place,
nothing is dropped). Steps get the sqlite-utils `Database`; they use its table API where it can say
the change (`add_column`) and SQL where it cannot (CHECK constraints, AUTOINCREMENT).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dualrec_tui.core.errors import DualrecError

if TYPE_CHECKING:
    from sqlite_utils import Database


class WatchLogError(DualrecError):
    """The watch log database cannot be used (not a database, locked, from a newer version...)."""


class SchemaTooNewError(WatchLogError):
    """The database was written by a newer dualrec: upgrading us is the fix, not touching the file."""

    @classmethod
    def for_file(cls, path: Path | str, newest: int, known: int) -> SchemaTooNewError:
        return cls(
            f"{path}: this watch log was written by a newer dualrec (schema version {newest}, this version knows "
            f"up to {known}). Upgrade dualrec, or set DUALREC_DB to another file; the database was not modified."
        )


@dataclass(frozen=True)
class Migration:
    id: int
    name: str
    apply: Callable[[Database], None]


MIGRATIONS: list[Migration] = []


def migration(name: str) -> Callable[[Callable[[Database], None]], Callable[[Database], None]]:
    """Register the decorated function as the next migration (ids count up in the order of this file)."""

    def register(step: Callable[[Database], None]) -> Callable[[Database], None]:
        MIGRATIONS.append(Migration(len(MIGRATIONS) + 1, name, step))
        return step

    return register


def run_sql(db: Database, script: str) -> None:
    """Run a script statement by statement (executescript would COMMIT the migration's transaction)."""
    for statement in _statements(script):
        db.execute(statement)


@migration("entries, trash for undo, not-interested movies")
def m001_entries_trash_not_interested(db: Database) -> None:
    run_sql(
        db,
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
    )


@migration("undo per window: deleted entries remember which open window deleted them")
def m002_undo_per_window(db: Database) -> None:
    db.table("deleted_entries").add_column("instance", str)  # NULL = from a closed session, anyone may undo


@migration("rewatch flag and tags on entries (kept from a Letterboxd diary, editable)")
def m003_rewatch_and_tags(db: Database) -> None:
    db.execute("ALTER TABLE entries ADD COLUMN rewatch INTEGER NOT NULL DEFAULT 0 CHECK (rewatch IN (0, 1))")
    db.table("entries").add_column("tags", str, not_null_default="[]")  # JSON list of tag names, in order


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _applied(conn: sqlite3.Connection) -> list[int]:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT id FROM schema_migrations ORDER BY id")]


def up_to_date(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> bool:
    """Every migration applied and the version stamped (the usual case: nothing to write, no lock)."""
    known = {m.id for m in migrations}
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return set(_applied(conn)) == known and version == max(known, default=0)


def migrate(db: Database, path: Path | str, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the pending migrations in order; return the ids applied now.

    The connection must be in autocommit mode (isolation_level=None): each migration gets its own
    BEGIN IMMEDIATE ... COMMIT, so a second process opening the log waits instead of racing.
    """
    conn = db.conn
    known = {m.id for m in migrations}
    newest_known = max(known, default=0)
    done_now: list[int] = []
    if up_to_date(conn, migrations):  # no write lock needed, so opening never waits on another writer
        return done_now
    for step in sorted(migrations, key=lambda m: m.id):
        conn.execute("BEGIN IMMEDIATE")
        try:
            applied = _applied(conn)
            unknown = sorted(set(applied) - known)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if unknown or version > newest_known:
                raise SchemaTooNewError.for_file(path, max([*unknown, version]), newest_known)
            if step.id in applied:
                conn.execute("COMMIT")
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            step.apply(db)
            conn.execute(
                "INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)",
                (step.id, step.name, utc_now()),
            )
            conn.execute(f"PRAGMA user_version = {int(step.id)}")
            conn.execute("COMMIT")
            done_now.append(step.id)
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
