"""The watch log: a SQLite file (sqlite-utils over sqlite3) holding what the user watched.

Durability: WAL journal with synchronous=FULL, so a commit is on disk (WAL fsynced) when `add`
returns — it survives a killed process *and* a power cut. NORMAL would be enough for a killed
process but can drop the last commits on power loss; a human-paced log can afford one fsync per
entry. Every write runs in one BEGIN IMMEDIATE transaction (`WatchLog.transaction`); sqlite-utils'
table calls inside it nest as savepoints, so they commit with it or not at all.

Thread-safety: one connection guarded by a lock, so Textual workers may call any method.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualrec_tui.core.artifacts import watchlog_path
from dualrec_tui.core.catalog import Catalog, Movie

from .migrations import MIGRATIONS, Migration, WatchLogError, migrate, up_to_date, utc_now
from .records import Entry, LogCounts, NotInterested, catalog_index
from .safety import APPLICATION_ID, connect_read_only, explain, identify, why_read_only
from .values import UNSET, check_year, clean_note, clean_tags, clean_title, parse_rating, parse_watched_on

if TYPE_CHECKING:
    from sqlite_utils import Database
    from sqlite_utils.db import Table

    from .importing.rows import ImportPreview, ImportResult

TRASH_SIZE = 50  # deleted entries kept for undo: it is for slips, not an archive


def _not_writable(path: Path) -> str:
    """Why an existing log cannot be written, checked before SQLite (which would open a read-only file
    read-only without saying so, and fail only at the first write)."""
    try:
        if path.stat().st_size == 0:
            return ""
    except OSError:
        return ""
    if not os.access(path, os.W_OK):
        return f"the file is read-only (file permissions or a read-only disk; chmod u+w {path} fixes the first)"
    if not os.access(path.parent, os.W_OK):
        return f"the folder {path.parent} is read-only (SQLite needs to create the log's -wal and -shm files there)"
    return ""


# --------------------------------------------------------------------------- the log
def _database(conn: sqlite3.Connection) -> Database:
    from sqlite_utils import Database

    return Database(conn, execute_plugins=False, recursive_triggers=False)


class WatchLog:
    """The user's watch log. Open with `WatchLog.open()`; close with `close()` or a `with` block."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._db: Database | None = None
        self.path = path
        self._lock = threading.RLock()
        self.read_only = ""  # why this log is open read-only ("" = writable)
        self.instance = uuid.uuid4().hex  # marks this window's deletes: Ctrl+Z undoes only its own

    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        *,
        timeout: float = 10.0,
    ) -> WatchLog:
        """Open (creating and migrating as needed) the log at `path`, else `core.artifacts.watchlog_path()`
        (env DUALREC_DB, else the user data dir).

        The file is identified read-only first (`identify`): another program's database, a newer
        dualrec's log or a damaged file is refused without a byte changed (journal mode included).
        A log we may not write (read-only file or folder) opens read-only: history shows, writes are
        refused with the reason (`read_only`).
        An up-to-date log opens without importing sqlite-utils (`db`): launching only reads."""
        path = Path(path).expanduser() if path is not None else watchlog_path()
        if path.is_dir():
            raise WatchLogError(
                f"{path} is a folder, not a database file: point --db or DUALREC_DB at a file, "
                f"e.g. {path / 'watchlog.db'}"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WatchLogError(f"{path}: cannot create its folder ({exc}); set DUALREC_DB to a writable path") from exc
        identify(path, migrations, timeout)
        read_only = _not_writable(path)
        conn: sqlite3.Connection | None = None
        try:
            if read_only:
                raise sqlite3.OperationalError("attempt to write a readonly database")
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=timeout, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError("attempt to write a readonly database")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if not up_to_date(conn, migrations):
                migrate(_database(conn), path, migrations)
            if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except WatchLogError:
            if conn is not None:
                conn.close()
            raise
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            read_only = read_only or why_read_only(path, exc)
            if not read_only:
                raise explain(path, exc, "cannot open the watch log") from exc
            conn = connect_read_only(path, timeout)
            if conn is None:
                raise WatchLogError(
                    f"{path}: cannot open the watch log: {read_only}, and SQLite cannot read a WAL log without "
                    f"writing its -shm file beside it. Make {path.parent} writable, or copy the log elsewhere "
                    "and point --db at the copy. Nothing was changed."
                ) from exc
        log = cls(conn, path)
        log.read_only = read_only
        return log

    def close(self) -> None:
        """Hand this window's undo records back (a later session may undo them), then close."""
        with self._lock:
            if not self.read_only:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("UPDATE deleted_entries SET instance = NULL WHERE instance = ?", (self.instance,))
            self._conn.close()

    def __enter__(self) -> WatchLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @property
    def db(self) -> Database:
        """sqlite-utils' view of the connection, made on first use: importing it (~0.1 s: click, pluggy,
        dateutil) is kept out of the launch, which only reads with plain SQL."""
        if self._db is None:
            self._db = _database(self._conn)
        return self._db

    @property
    def _entries(self) -> Table:
        return self.db.table("entries")

    @contextmanager
    def _reading(self, doing: str = "cannot read the watch log") -> Iterator[sqlite3.Connection]:
        """The lock, and SQLite errors turned into a `WatchLogError` that says what is wrong."""
        with self._lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                raise explain(self.path, exc, doing) from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT); everything inside commits or nothing does.

        A SQLite failure (disk full, lock held too long, read-only file, damage) is rolled back and
        raised as a `WatchLogError` saying so; any other exception is rolled back and passes through."""
        with self._lock:
            if self.read_only:
                raise WatchLogError(f"{self.path} is open read-only ({self.read_only}); nothing was changed")
            if self.conn.in_transaction:  # nested: the outer transaction decides
                yield self.conn
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise explain(self.path, exc, "cannot write the watch log") from exc
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise explain(self.path, exc, "cannot write the watch log") from exc
                raise

    # ------------------------------------------------------------------ entries
    def _movie_fields(self, movie: Movie | str, dataset: str | None, year: int | None) -> dict[str, Any]:
        if isinstance(movie, Movie):
            if not dataset:
                raise ValueError("a catalog movie needs its dataset name (catalog.name)")
            return {
                "dataset": dataset,
                "movie_id": int(movie.movie_id),
                "imdb_id": movie.imdb_id,
                "title": clean_title(movie.title),
                "year": movie.year,
                "genres": json.dumps(list(movie.genres), ensure_ascii=False),
            }
        return {
            "dataset": None,
            "movie_id": None,
            "imdb_id": None,
            "title": clean_title(movie),
            "year": check_year(year),
            "genres": "[]",
        }

    def insert_entry(self, record: dict[str, Any]) -> int:
        """Insert one `entries` row as given (checked by the caller and the table's constraints); its id.
        Call inside `transaction()`. Plain SQL: an import inserts rows by the thousand, and the table API's
        per-call checks made that 7x slower (20,000 rows: 2.5 s against 0.36 s)."""
        return int(self._insert("entries", record).lastrowid)

    def _insert(self, table: str, record: dict[str, Any], verb: str = "INSERT") -> sqlite3.Cursor:
        columns = ", ".join(record)
        marks = ", ".join("?" for _ in record)
        return self.conn.execute(f"{verb} INTO {table} ({columns}) VALUES ({marks})", tuple(record.values()))

    def add(
        self,
        movie: Movie | str,
        *,
        dataset: str | None = None,
        watched_on: date | str | None = None,
        rating: float | str | None = None,
        note: str | None = None,
        year: int | None = None,
        source: str = "manual",
        rewatch: bool = False,
        tags: str | Iterable[str] | None = None,
    ) -> Entry:
        """Log a watch of a catalog `movie` (pass `dataset=catalog.name`) or of free text (a title).

        Rewatches are separate entries. Returns the committed entry (durable when this returns).
        """
        record = self._movie_fields(movie, dataset, year)
        record.update(
            watched_on=parse_watched_on(watched_on).isoformat(),
            rating=parse_rating(rating),
            note=clean_note(note),
            source=source,
            created_at=utc_now(),
            rewatch=int(bool(rewatch)),
            tags=json.dumps(clean_tags(tags), ensure_ascii=False),
        )
        with self.transaction():
            entry_id = self.insert_entry(record)
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    def _row(self, entry_id: int) -> dict[str, Any] | None:
        from sqlite_utils.db import NotFoundError

        try:
            return self._entries.get(entry_id)
        except NotFoundError:
            return None

    def get(self, entry_id: int) -> Entry | None:
        with self._reading():
            row = self._row(entry_id)
        return Entry.from_row(row) if row else None

    def update(
        self,
        entry_id: int,
        *,
        movie: Movie | str = UNSET,
        dataset: str | None = None,
        year: int | None = UNSET,
        watched_on: date | str = UNSET,
        rating: float | str | None = UNSET,
        note: str | None = UNSET,
        rewatch: bool = UNSET,
        tags: str | Iterable[str] | None = UNSET,
    ) -> Entry:
        """Edit an entry; fields left UNSET keep their value (rating=None / note=None / tags=None clear them)."""
        changes: dict[str, Any] = {}
        if movie is not UNSET:
            changes.update(self._movie_fields(movie, dataset, None if year is UNSET else year))
        elif year is not UNSET:
            current = self.get(entry_id)
            if current is not None and current.in_catalog:
                raise ValueError("the year of a catalog movie comes from the catalog; change the movie instead")
            changes["year"] = check_year(year)
        if watched_on is not UNSET:
            changes["watched_on"] = parse_watched_on(watched_on).isoformat()
        if rating is not UNSET:
            changes["rating"] = parse_rating(rating)
        if note is not UNSET:
            changes["note"] = clean_note(note)
        if rewatch is not UNSET:
            changes["rewatch"] = int(bool(rewatch))
        if tags is not UNSET:
            changes["tags"] = json.dumps(clean_tags(tags), ensure_ascii=False)
        with self.transaction():
            if self._row(entry_id) is None:
                raise WatchLogError(f"no watch log entry {entry_id}")
            if changes:
                self._entries.update(entry_id, changes)
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    def delete(self, entry_id: int) -> Entry:
        """Delete an entry (kept in a small trash so `undo_delete` can restore the same row)."""
        with self.transaction():
            row = self._row(entry_id)
            if row is None:
                raise WatchLogError(f"no watch log entry {entry_id}")
            self.db.table("deleted_entries").insert(
                {
                    "entry_id": entry_id,
                    "row_json": json.dumps(row, ensure_ascii=False),
                    "deleted_at": utc_now(),
                    "instance": self.instance,
                }
            )
            self._entries.delete(entry_id)
            self.conn.execute(
                "DELETE FROM deleted_entries WHERE seq NOT IN "
                "(SELECT seq FROM deleted_entries ORDER BY seq DESC LIMIT ?)",
                (TRASH_SIZE,),
            )
        return Entry.from_row(row)

    def undo_delete(self) -> Entry | None:
        """Restore the entry this window deleted last (same id and fields), else the last one a closed
        session deleted; never another open window's delete. None when nothing to undo."""
        with self.transaction():
            row = self.conn.execute(
                "SELECT seq, row_json FROM deleted_entries WHERE instance = ? OR instance IS NULL "
                "ORDER BY instance IS NULL, seq DESC LIMIT 1",
                (self.instance,),
            ).fetchone()
            if row is None:
                return None
            seq, payload = row[0], json.loads(row[1])
            self.insert_entry(payload)
            self.conn.execute("DELETE FROM deleted_entries WHERE seq = ?", (seq,))
        return self.get(payload["id"])

    def _entries_where(
        self,
        order_by: str,
        limit: int | None = None,
        offset: int | None = None,
        where: str | None = None,
        where_args: Sequence[Any] = (),
    ) -> list[Entry]:
        # Plain SQL, not sqlite-utils' rows_where: the history drawn at launch then needs no sqlite-utils import.
        sql = "SELECT * FROM entries" + (f" WHERE {where}" if where else "") + f" ORDER BY {order_by}"
        args = [*where_args]
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset or 0]
        with self._reading():
            cursor = self.conn.execute(sql, args)
            columns = [column[0] for column in cursor.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        return [Entry.from_row(row) for row in rows]

    def entries_on(self, day: date) -> list[Entry]:
        """The entries watched on `day`, in the order they were logged (an indexed lookup, not a scan)."""
        return self._entries_where("id", where="watched_on = ?", where_args=[day.isoformat()])

    def history(self, limit: int | None = None, offset: int = 0) -> list[Entry]:
        """Entries newest first: by date watched, then most recently logged first."""
        return self._entries_where("watched_on DESC, id DESC", None if limit is None else int(limit), int(offset))

    def chronological(self) -> list[Entry]:
        """Entries oldest first (date watched, then insertion order): the order models read."""
        return self._entries_where("watched_on, id")

    def model_input(self, catalog: Catalog, last: int | None = None) -> list[int]:
        """Catalog indices oldest first, for the LSTM / prompt. Free text and unknown movies are left out.

        `last`: only the most recent `last` of them, read newest first until found (the models look at
        the last 30; reading 100,000 entries for that froze the app for seconds)."""
        if last is None:
            indices = (entry.catalog_index(catalog) for entry in self.chronological())
            return [index for index in indices if index is not None]
        found: list[int] = []
        with self._reading():
            cursor = self.conn.execute(
                "SELECT dataset, movie_id, imdb_id FROM entries WHERE movie_id IS NOT NULL "
                "ORDER BY watched_on DESC, id DESC"
            )
            while len(found) < last:
                rows = cursor.fetchmany(256)
                if not rows:
                    break
                for dataset, movie_id, imdb_id in rows:
                    index = catalog_index(catalog, dataset, movie_id, imdb_id)
                    if index is not None and len(found) < last:
                        found.append(index)
            cursor.close()
        return found[::-1]

    def watched_indices(self, catalog: Catalog) -> set[int]:
        """Catalog indices the user has logged (to leave out of recommendations); one row per distinct movie."""
        with self._reading():
            rows = self.conn.execute(
                "SELECT DISTINCT dataset, movie_id, imdb_id FROM entries WHERE movie_id IS NOT NULL"
            ).fetchall()
        indices = (catalog_index(catalog, *row) for row in rows)
        return {index for index in indices if index is not None}

    def entry_count(self) -> int:
        """How many entries (cheap: `counts()` also counts distinct movies, a scan of the whole log)."""
        with self._reading():
            return int(self.conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    # ----------------------------------------------------------- not interested
    def insert_not_interested(self, record: dict[str, Any]) -> int:
        """Mark a movie not interesting unless it is already (1 = added, 0 = was there). Call inside
        `transaction()`."""
        return self._insert("not_interested", {"created_at": utc_now(), **record}, "INSERT OR IGNORE").rowcount

    def add_not_interested(self, movie: Movie, dataset: str) -> None:
        """Remember never to recommend `movie` again (idempotent)."""
        record = {"dataset": dataset, "movie_id": int(movie.movie_id), "imdb_id": movie.imdb_id}
        record.update(title=clean_title(movie.title), year=movie.year)
        with self.transaction():
            self.insert_not_interested(record)

    def remove_not_interested(self, movie_id: int, dataset: str) -> bool:
        """Forget a not-interested mark; True if there was one."""
        with self.transaction():
            cursor = self.conn.execute(
                "DELETE FROM not_interested WHERE dataset = ? AND movie_id = ?", (dataset, int(movie_id))
            )
        return cursor.rowcount > 0

    def not_interested(self) -> list[NotInterested]:
        """All not-interested movies, most recently marked first."""
        with self._reading():
            rows = list(
                self.db.table("not_interested").rows_where(
                    select="dataset, movie_id, title, year, imdb_id, created_at",
                    order_by="created_at DESC, rowid DESC",
                )
            )
        return [NotInterested(**row) for row in rows]

    def not_interested_indices(self, catalog: Catalog) -> set[int]:
        indices = (item.catalog_index(catalog) for item in self.not_interested())
        return {index for index in indices if index is not None}

    # ------------------------------------------------------------------- counts
    def counts(self) -> LogCounts:
        with self._reading():
            entries, in_catalog, rated = self.conn.execute(
                "SELECT count(*), count(movie_id), count(rating) FROM entries"
            ).fetchone()
            distinct = self.conn.execute(
                "SELECT count(*) FROM (SELECT DISTINCT dataset, movie_id, "
                "CASE WHEN movie_id IS NULL THEN lower(title) || '|' || ifnull(year, '') END FROM entries)"
            ).fetchone()[0]
            hidden = self.conn.execute("SELECT count(*) FROM not_interested").fetchone()[0]
            trash = (
                0
                if self.read_only
                else self.conn.execute(
                    "SELECT count(*) FROM deleted_entries WHERE instance = ? OR instance IS NULL", (self.instance,)
                ).fetchone()[0]
            )
        return LogCounts(entries, in_catalog, entries - in_catalog, rated, distinct, hidden, trash)

    # ------------------------------------------------------------ import/export
    def apply_import(self, preview: ImportPreview, accept_ambiguous: bool = True) -> ImportResult:
        """Write a planned import in one transaction (all or nothing); see `importing.plan_import`."""
        from .importing.apply import apply_import

        return apply_import(self, preview, accept_ambiguous=accept_ambiguous)

    def export_csv(self, path: Path | str) -> int:
        from .exporters import export_csv

        return export_csv(self, Path(path))

    def export_json(self, path: Path | str) -> int:
        from .exporters import export_json

        return export_json(self, Path(path))
