"""The watch log: a SQLite file (sqlite-utils over sqlite3) holding what the user watched.

Durability: WAL journal with synchronous=FULL, so a commit is on disk (WAL fsynced) when `add`
returns — it survives a killed process *and* a power cut. NORMAL would be enough for a killed
process but can drop the last commits on power loss; a human-paced log can afford one fsync per
entry. Every write runs in one BEGIN IMMEDIATE transaction (`WatchLog.transaction`).

Thread-safety: one connection guarded by a lock, so Textual workers may call any method.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualrec_tui.core.catalog import Catalog, Movie

from .migrations import MIGRATIONS, Migration, WatchLogError, migrate, utc_now
from .safety import APPLICATION_ID, connect_read_only, explain, identify, why_read_only

if TYPE_CHECKING:
    from sqlite_utils import Database

    from .importers import ImportPreview, ImportResult

MAX_TITLE = 500
MAX_NOTE = 10_000
MAX_TAG = 100
MAX_TAGS = 50
EARLIEST_DATE = date(1870, 1, 1)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave this field as it is" in `WatchLog.update`


# ---------------------------------------------------------------------------- values
def parse_rating(value: float | int | str | None) -> float | None:
    """A half-star rating 0.5..5.0 (None / '' = unrated); ValueError says what is wrong."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"rating {value!r} is not a number (expected 0.5 to 5.0 in half stars)") from None
    if not math.isfinite(number) or not 0.5 <= number <= 5.0 or number * 2 != round(number * 2):
        raise ValueError(f"rating {value!r} is not 0.5 to 5.0 in half stars")
    return number


def parse_watched_on(value: date | str | None, today: date | None = None) -> date:
    """An ISO date (YYYY-MM-DD; None = today). Refuses dates before 1870 or after tomorrow."""
    today = today or date.today()
    if value is None:
        return today
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"date {value!r} is not an ISO date (YYYY-MM-DD)") from None
        if len(text) > 10 and text[10] not in "T ":
            raise ValueError(f"date {value!r} is not an ISO date (YYYY-MM-DD)")
        value = parsed
    elif not isinstance(value, date):
        raise ValueError(f"date {value!r} is not a date")
    if hasattr(value, "date") and callable(value.date):  # a datetime: keep the day
        value = value.date()
    if value < EARLIEST_DATE or value > today + timedelta(days=1):
        raise ValueError(f"date {value.isoformat()} is not between {EARLIEST_DATE.isoformat()} and today")
    return value


def _valid_text(text: str, what: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} is not valid text (unpaired surrogate)") from None
    return text


def clean_title(title: str) -> str:
    """Whitespace collapsed, control characters dropped, 1..500 characters; ValueError otherwise."""
    if not isinstance(title, str):
        raise ValueError("the title is not text")
    text = " ".join("".join(ch for ch in title if ch.isspace() or unicodedata.category(ch) != "Cc").split())
    if not text:
        raise ValueError("the title is empty")
    if len(text) > MAX_TITLE:
        raise ValueError(f"the title is longer than {MAX_TITLE} characters")
    return _valid_text(text, "title")


def clean_note(note: str | None) -> str | None:
    """Trimmed, control characters other than tab / line breaks dropped, at most 10,000 characters."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise ValueError("the note is not text")
    text = "".join(ch for ch in note if ch in "\t\n\r" or unicodedata.category(ch) != "Cc").strip()
    if len(text) > MAX_NOTE:
        raise ValueError(f"the note is longer than {MAX_NOTE} characters")
    return _valid_text(text, "note") or None


def clean_tags(tags: str | Iterable[str] | None) -> tuple[str, ...]:
    """Tags in the order given, each trimmed with whitespace collapsed; empty and repeated ones dropped.

    A string is split on commas (Letterboxd's `Tags` column, the edit dialog), so a tag never holds a
    comma and "a, b" reads back as the same tags."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError("a tag is not text")
        text = " ".join("".join(ch for ch in tag if ch.isspace() or unicodedata.category(ch) != "Cc").split())
        text = " ".join(text.replace(",", " ").split())
        if len(text) > MAX_TAG:
            raise ValueError(f"the tag {text[:20]!r}… is longer than {MAX_TAG} characters")
        if text and text not in cleaned:
            cleaned.append(_valid_text(text, "tag"))
    if len(cleaned) > MAX_TAGS:
        raise ValueError(f"more than {MAX_TAGS} tags")
    return tuple(cleaned)


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Entry:
    """One watch. A catalog movie has `dataset` + `movie_id`; free text has neither (not model input)."""

    id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    watched_on: date
    rating: float | None = None
    note: str | None = None
    dataset: str | None = None
    movie_id: int | None = None
    imdb_id: str | None = None
    source: str = "manual"
    created_at: str = ""
    rewatch: bool = False  # the user marked this watch a rewatch (Letterboxd's diary "Rewatch")
    tags: tuple[str, ...] = ()

    @property
    def in_catalog(self) -> bool:
        return self.movie_id is not None

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    def catalog_index(self, catalog: Catalog) -> int | None:
        """This entry's catalog index: same dataset -> movie id, else the IMDb id; None if absent."""
        if self.movie_id is None:
            return None
        if self.dataset == catalog.name:
            index = catalog.index_of(self.movie_id)
            if index is not None:
                return index
        if self.imdb_id:
            movie = catalog.by_imdb_id.get(self.imdb_id)
            if movie is not None:
                return movie.index
        return None


@dataclass(frozen=True)
class NotInterested:
    """A catalog movie the user never wants recommended."""

    dataset: str
    movie_id: int
    title: str
    year: int | None
    imdb_id: str | None = None
    created_at: str = ""

    def catalog_index(self, catalog: Catalog) -> int | None:
        if self.dataset == catalog.name:
            index = catalog.index_of(self.movie_id)
            if index is not None:
                return index
        movie = catalog.by_imdb_id.get(self.imdb_id) if self.imdb_id else None
        return movie.index if movie else None


@dataclass(frozen=True)
class LogCounts:
    entries: int
    in_catalog: int
    free_text: int
    rated: int
    distinct_movies: int
    not_interested: int
    deleted_undoable: int = 0


_ENTRY_COLUMNS = (
    "id, dataset, movie_id, imdb_id, title, year, genres, watched_on, rating, note, source, created_at, rewatch, tags"
)


def _entry(row: sqlite3.Row | tuple) -> Entry:
    (entry_id, dataset, movie_id, imdb_id, title, year, genres, watched_on, rating, note, source, created) = row[:12]
    rewatch, tags = row[12:]
    return Entry(
        id=entry_id,
        title=title,
        year=year,
        genres=tuple(json.loads(genres or "[]")),
        watched_on=date.fromisoformat(watched_on),
        rating=rating,
        note=note,
        dataset=dataset,
        movie_id=movie_id,
        imdb_id=imdb_id,
        source=source,
        created_at=created,
        rewatch=bool(rewatch),
        tags=tuple(json.loads(tags or "[]")),
    )


def _catalog_index(catalog: Catalog, dataset: str | None, movie_id: int | None, imdb_id: str | None) -> int | None:
    """`Entry.catalog_index` without building an Entry: same dataset -> movie id, else the IMDb id."""
    if movie_id is None:
        return None
    if dataset == catalog.name:
        index = catalog.index_of(movie_id)
        if index is not None:
            return index
    if imdb_id:
        movie = catalog.by_imdb_id.get(imdb_id)
        if movie is not None:
            return movie.index
    return None


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


def default_path() -> Path:
    """env DUALREC_DB, else <user data dir>/dualrec/watchlog.db (platformdirs)."""
    override = os.environ.get("DUALREC_DB")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("dualrec", appauthor=False)) / "watchlog.db"


# --------------------------------------------------------------------------- the log
class WatchLog:
    """The user's watch log. Open with `WatchLog.open()`; close with `close()` or a `with` block."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path
        self._lock = threading.RLock()
        self.read_only = ""  # why this log is open read-only ("" = writable)
        self.instance = uuid.uuid4().hex  # marks this window's deletes: Ctrl+Z undoes only its own

    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        migrations: tuple[Migration, ...] = MIGRATIONS,
        *,
        timeout: float = 10.0,
    ) -> WatchLog:
        """Open (creating and migrating as needed) the log at `path`, env DUALREC_DB, or the data dir.

        The file is identified read-only first (`identify`): another program's database, a newer
        dualrec's log or a damaged file is refused without a byte changed (journal mode included).
        A log we may not write (read-only file or folder) opens read-only: history shows, writes are
        refused with the reason (`read_only`)."""
        from sqlite_utils import Database

        path = Path(path).expanduser() if path is not None else default_path()
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
            migrate(conn, path, migrations)
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
        log = cls(Database(conn, execute_plugins=False, recursive_triggers=False), path)
        log.read_only = read_only
        return log

    def close(self) -> None:
        """Hand this window's undo records back (a later session may undo them), then close."""
        with self._lock:
            if not self.read_only:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("UPDATE deleted_entries SET instance = NULL WHERE instance = ?", (self.instance,))
            self.db.conn.close()

    def __enter__(self) -> WatchLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

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
        if year is not None and not (1870 <= int(year) <= 2100):
            raise ValueError(f"year {year} is not between 1870 and 2100")
        return {
            "dataset": None,
            "movie_id": None,
            "imdb_id": None,
            "title": clean_title(movie),
            "year": int(year) if year is not None else None,
            "genres": "[]",
        }

    def _insert(self, record: dict[str, Any]) -> int:
        columns = ", ".join(record)
        marks = ", ".join("?" for _ in record)
        cursor = self.conn.execute(f"INSERT INTO entries ({columns}) VALUES ({marks})", tuple(record.values()))
        return int(cursor.lastrowid)

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
            entry_id = self._insert(record)
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    def get(self, entry_id: int) -> Entry | None:
        with self._reading():
            row = self.conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

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
            if year is not None and not (1870 <= int(year) <= 2100):
                raise ValueError(f"year {year} is not between 1870 and 2100")
            changes["year"] = year
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
            if self.get(entry_id) is None:
                raise WatchLogError(f"no watch log entry {entry_id}")
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                self.conn.execute(f"UPDATE entries SET {assignments} WHERE id = ?", (*changes.values(), entry_id))
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    def delete(self, entry_id: int) -> Entry:
        """Delete an entry (kept in a small trash so `undo_delete` can restore the same row)."""
        with self.transaction():
            row = self.conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                raise WatchLogError(f"no watch log entry {entry_id}")
            payload = dict(zip([c.strip() for c in _ENTRY_COLUMNS.split(",")], row, strict=True))
            self.conn.execute(
                "INSERT INTO deleted_entries (entry_id, row_json, deleted_at, instance) VALUES (?, ?, ?, ?)",
                (entry_id, json.dumps(payload, ensure_ascii=False), utc_now(), self.instance),
            )
            self.conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            # Keep the trash small: undo is for slips, not an archive.
            self.conn.execute(
                "DELETE FROM deleted_entries WHERE seq NOT IN "
                "(SELECT seq FROM deleted_entries ORDER BY seq DESC LIMIT 50)"
            )
        return _entry(row)

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
            self._insert(payload)
            self.conn.execute("DELETE FROM deleted_entries WHERE seq = ?", (seq,))
        return self.get(payload["id"])

    def history(self, limit: int | None = None, offset: int = 0) -> list[Entry]:
        """Entries newest first: by date watched, then most recently logged first."""
        sql = f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY watched_on DESC, id DESC LIMIT ? OFFSET ?"
        with self._reading():
            rows = self.conn.execute(sql, (-1 if limit is None else int(limit), int(offset))).fetchall()
        return [_entry(row) for row in rows]

    def chronological(self) -> list[Entry]:
        """Entries oldest first (date watched, then insertion order): the order models read."""
        with self._reading():
            rows = self.conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY watched_on, id").fetchall()
        return [_entry(row) for row in rows]

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
                    index = _catalog_index(catalog, dataset, movie_id, imdb_id)
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
        indices = (_catalog_index(catalog, *row) for row in rows)
        return {index for index in indices if index is not None}

    def entry_count(self) -> int:
        """How many entries (cheap: `counts()` also counts distinct movies, a scan of the whole log)."""
        with self._reading():
            return int(self.conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    # ----------------------------------------------------------- not interested
    def add_not_interested(self, movie: Movie, dataset: str) -> None:
        """Remember never to recommend `movie` again (idempotent)."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO not_interested (dataset, movie_id, imdb_id, title, year, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (dataset, int(movie.movie_id), movie.imdb_id, clean_title(movie.title), movie.year, utc_now()),
            )

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
            rows = self.conn.execute(
                "SELECT dataset, movie_id, title, year, imdb_id, created_at FROM not_interested "
                "ORDER BY created_at DESC, rowid DESC"
            ).fetchall()
        return [NotInterested(*row) for row in rows]

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
        """Write a planned import in one transaction (all or nothing); see `importers.plan_import`."""
        from .importers import apply_import

        return apply_import(self, preview, accept_ambiguous=accept_ambiguous)

    def export_csv(self, path: Path | str) -> int:
        from .exporters import export_csv

        return export_csv(self, Path(path))

    def export_json(self, path: Path | str) -> int:
        from .exporters import export_json

        return export_json(self, Path(path))
