"""Bring years of history in: Letterboxd export, IMDb ratings, a plain CSV, or our own export.

Two phases so the user sees what will happen before anything is written:

* `plan_import(path, catalog, log)` reads and validates the whole file, matches every row to the
  catalog (IMDb id first, then `Catalog.resolve(title, year)`) and marks rows already in the log
  as duplicates. It writes nothing. Any malformed input raises `DataFormatError(file, line, problem)`.
* `WatchLog.apply_import(preview)` writes the new rows in one transaction: all or nothing.

Duplicates are counted as a multiset of (movie, date watched): re-importing a file adds nothing,
yet two viewings of one film on one day in the file are both kept the first time.

Letterboxd's watched.csv and ratings.csv say a film was seen, not when (their date is the day it
was marked). Such "undated" rows are logged with source `letterboxd-undated`, and the rule that
merges a zip also holds across imports of its CSVs one at a time: an undated row for a film the log
already has is already logged, and a diary row replaces an undated entry for the same film.
"""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from dualrec_tui.core.catalog import Catalog, Movie, normalize_title
from dualrec_tui.core.errors import DataFormatError, DualrecError

from .db import clean_note, clean_tags, clean_title, parse_rating, parse_watched_on
from .migrations import utc_now
from .safety import unescape_cell

if TYPE_CHECKING:
    from .db import Entry, WatchLog

MAX_FILE_BYTES = 64 * 1024 * 1024  # a decade of ratings is a few MB; more is not an export
MAX_ROWS = 500_000
MAX_LINE_BYTES = 256 * 1024  # a 10,000-character note is ~40 KB; a longer line is not a watch history
EXPORT_FORMAT = "dualrec-watchlog"
EXPORT_VERSION = 1
# IMDb title types that are not films: they would only clutter the log as free text.
NOT_MOVIES = {
    "tv series",
    "tv mini series",
    "tv episode",
    "tv short",
    "video game",
    "podcast series",
    "podcast episode",
    "music video",
    "tvseries",
    "tvminiseries",
    "tvepisode",
    "tvshort",
    "videogame",
    "podcastseries",
    "podcastepisode",
}
_IMDB_ID = re.compile(r"^tt\d{7,10}$")
_ID_IN_URL = re.compile(r"(tt\d{7,10})")

STATUSES = ("matched", "ambiguous", "unmatched", "duplicate")
MAX_PROBLEMS = 20  # bad rows reported at once, so a user can fix a file in one go


class _Problems:
    """Bad rows of one import, collected so the user sees up to MAX_PROBLEMS at once, not only the first."""

    def __init__(self) -> None:
        self.errors: list[DataFormatError] = []

    @contextmanager
    def row(self) -> Iterator[None]:
        """Run one row's parsing; a DataFormatError is recorded and the next row is read."""
        try:
            yield
        except DataFormatError as exc:
            self.add(exc)

    def add(self, exc: DataFormatError) -> None:
        self.errors.append(exc)
        if len(self.errors) >= MAX_PROBLEMS:
            self.check(stopped=True)

    def check(self, stopped: bool = False) -> None:
        """Raise one DataFormatError for everything recorded: the first problem, then a line for each other."""
        if not self.errors:
            return
        errors = sorted(self.errors, key=lambda e: (e.path, e.line or 0))
        first = errors[0]
        if len(errors) == 1 and not stopped:
            raise first
        lines = [first.problem]
        for other in errors[1:]:
            where = f"line {other.line}" if other.line is not None else "file"
            where = where if other.path == first.path else f"{other.path}:{other.line}"
            lines.append(f"  {where}: {other.problem}")
        more = f"stopped after {MAX_PROBLEMS} problems" if stopped else f"{len(errors)} problems"
        lines.append(f"  ({more}; nothing was imported)")
        raise DataFormatError(first.path, first.line, "\n".join(lines))


@dataclass(frozen=True)
class ImportRow:
    """One watch read from a file, with what the catalog made of it."""

    source: str  # file (zip member as 'export.zip!diary.csv')
    line: int | None
    title: str
    year: int | None
    watched_on: date
    rating: float | None = None
    note: str | None = None
    imdb_id: str | None = None
    movie: Movie | None = None  # the match (or the best guess when ambiguous)
    match: str = "unmatched"  # matched | ambiguous | unmatched (kept as free text)
    status: str = "unmatched"  # `match`, or "duplicate" when the log already has this watch
    method: str = "none"  # imdb | id | exact | title | fuzzy | free-text | none
    # Carried through from our own export, so a round trip restores the same entries.
    dataset: str | None = None
    movie_id: int | None = None
    genres: tuple[str, ...] = ()
    free_text: bool = False
    entry_source: str | None = None
    created_at: str | None = None
    undated: bool = False  # Letterboxd watched.csv / ratings.csv: seen, date unknown
    replaces: int | None = None  # the undated log entry this dated row takes the place of
    rewatch: bool = False  # Letterboxd diary "Rewatch" = Yes, or our export's rewatch column
    tags: tuple[str, ...] = ()  # Letterboxd diary "Tags", or our export's tags

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


UNDATED_SOURCE = "letterboxd-undated"


@dataclass(frozen=True)
class HiddenMovie:
    """A not-interested movie from our JSON export."""

    dataset: str
    movie_id: int
    title: str
    year: int | None
    imdb_id: str | None


@dataclass
class ImportPreview:
    """What `apply_import` would do; nothing has been written."""

    path: Path
    format: str  # letterboxd | imdb | csv | dualrec-json
    catalog: Catalog = field(repr=False)  # the catalog the matches refer to
    rows: list[ImportRow]
    skipped: list[tuple[str, int | None, str]] = field(default_factory=list)  # (file, line, why)
    not_interested: list[HiddenMovie] = field(default_factory=list)

    @property
    def dataset(self) -> str:
        return self.catalog.name

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(row.status for row in self.rows)
        result = {status: counts.get(status, 0) for status in STATUSES}
        result["skipped"] = len(self.skipped)
        result["not_interested"] = len(self.not_interested)
        return result

    def with_status(self, status: str) -> list[ImportRow]:
        return [row for row in self.rows if row.status == status]

    @property
    def to_add(self) -> int:
        return sum(1 for row in self.rows if row.status != "duplicate" and row.replaces is None)

    @property
    def to_replace(self) -> int:
        """Dated rows that will take the place of an undated entry already in the log."""
        return sum(1 for row in self.rows if row.status != "duplicate" and row.replaces is not None)

    @property
    def rewatches(self) -> int:
        """New rows marked as rewatches (kept on the entry, not in its note)."""
        return sum(1 for row in self.rows if row.status != "duplicate" and row.rewatch)

    @property
    def tagged(self) -> int:
        """New rows that carry tags (kept on the entry, not in its note)."""
        return sum(1 for row in self.rows if row.status != "duplicate" and row.tags)


@dataclass(frozen=True)
class ImportResult:
    added: int
    duplicates: int
    free_text: int
    not_interested_added: int
    first_id: int | None = None
    last_id: int | None = None
    replaced: int = 0  # undated entries given the date (and rating, note) of a diary row


# ------------------------------------------------------------------ file reading
def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataFormatError(path, None, "no such file")
    if not path.is_file():
        raise DataFormatError(path, None, "not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataFormatError(path, None, f"file is {size} bytes, more than the {MAX_FILE_BYTES} an export can be")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, None, f"cannot read the file ({exc.strerror or exc})") from exc


def _long_line(data: bytes) -> int | None:
    """The number of the first line longer than MAX_LINE_BYTES, or None (a 60 MB one-line header took
    2.7 GB in the CSV parser)."""
    start, line = 0, 1
    while True:
        end = data.find(b"\n", start)
        stop = len(data) if end < 0 else end
        if stop - start > MAX_LINE_BYTES:
            return line
        if end < 0:
            return None
        start, line = end + 1, line + 1


def _text(data: bytes, display: str) -> str:
    """Strict UTF-8 (a BOM is fine); binary data is refused with the line it starts on."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataFormatError(display, data.count(b"\n", 0, nul) + 1, "binary data (NUL byte), not a text file")
    long_line = _long_line(data)
    if long_line is not None and data.lstrip()[:1] not in (b"{", b"["):  # JSON may sit on one line
        raise DataFormatError(
            display, long_line, f"line longer than {MAX_LINE_BYTES // 1024} KB: not a watch history export"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(display, line, "not UTF-8 text; save the file as UTF-8 and retry") from exc
    if text.startswith("\ufeff"):  # a second BOM (some tools add one per concatenation)
        text = text[1:]
    return text


def _csv_problem(exc: csv.Error, display: str, start: int, line: int) -> DataFormatError:
    """Python's csv messages in plain words, at the line where the trouble starts."""
    message = str(exc)
    if "unexpected end of data" in message:
        return DataFormatError(
            display, start, 'a quote (") opened on this line is never closed, so the rest of the file is one field'
        )
    if "expected after" in message:
        return DataFormatError(
            display, line, 'a quote (") ends in the middle of a field: quote the whole field and double quotes inside'
        )
    if "field larger than field limit" in message:
        return DataFormatError(
            display, line, f"malformed CSV: a field is longer than {csv.field_size_limit()} characters"
        )
    return DataFormatError(display, line, f"malformed CSV ({message})")


def _csv_records(
    text: str,
    display: str,
    aliases: dict[str, tuple[str, ...]],
    required: tuple[str, ...],
    problems: _Problems | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, {field: value}) for each data row; header names are matched case-insensitively.

    `aliases` maps our field name to the header spellings that mean it; `required` fields must exist.
    With `problems`, a bad row is recorded and skipped (the caller raises them all at the end).
    """
    problems = problems or _Problems()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    rows = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problem = _csv_problem(exc, display, start, reader.line_num or start)
            if header is None or "never closed" in problem.problem:
                problems.add(problem)
                problems.check()  # nothing sensible can be read after this
            problems.add(problem)
            continue
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lstrip("\ufeff").lower() for cell in row]
            for name, spellings in aliases.items():
                for spelling in spellings:
                    if spelling in header:
                        columns[name] = header.index(spelling)
                        break
            missing = [name for name in required if name not in columns]
            if missing:
                wanted = ", ".join(aliases[name][0] for name in missing)
                found = ", ".join(row)
                found = found if len(found) <= 200 else found[:200] + "..."
                raise DataFormatError(display, start, f"missing column(s) {wanted} (header has: {found})")
            continue
        if (len(row) > len(header) and any(cell.strip() for cell in row[len(header) :])) or (
            len(row) < len(header) and any(index >= len(row) for name, index in columns.items() if name in required)
        ):
            problems.add(DataFormatError(display, start, f"{len(row)} fields but the header has {len(header)}"))
            continue
        rows += 1
        if rows > MAX_ROWS:
            raise DataFormatError(display, start, f"more than {MAX_ROWS} rows")
        yield start, {name: (row[index].strip() if index < len(row) else "") for name, index in columns.items()}
    if header is None:
        raise DataFormatError(display, None, "empty file: no header row")


def _header(text: str) -> list[str]:
    """The lower-cased first non-empty CSV row, to recognise the format."""
    try:
        for row in csv.reader(io.StringIO(text[:65536], newline="")):
            if any(cell.strip() for cell in row):
                return [cell.strip().lower() for cell in row]
    except csv.Error:
        return []
    return []


# --------------------------------------------------------------- field parsing
class _Fields:
    """Field parsers that turn a bad value into DataFormatError(file, line, problem)."""

    def __init__(self, display: str, line: int | None) -> None:
        self.display = display
        self.line = line

    def fail(self, problem: str) -> DataFormatError:
        return DataFormatError(self.display, self.line, problem)

    def title(self, value: Any, what: str = "title") -> str:
        try:
            return clean_title(value)
        except ValueError as exc:
            raise self.fail(str(exc).replace("the title", f"the {what}")) from None

    def year(self, value: Any) -> int | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.fail(f"year {value!r} is not a year")
        text = str(value).strip()
        if not text.isascii() or not text.isdigit() or not 1870 <= int(text) <= 2100:
            raise self.fail(f"year {value!r} is not a year between 1870 and 2100")
        return int(text)

    def date(self, value: Any, what: str = "date") -> date:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"missing {what}")
        try:
            return parse_watched_on(value)
        except ValueError as exc:
            raise self.fail(f"bad {what}: {exc}") from None

    def rating(self, value: Any) -> float | None:
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float, str))):
            raise self.fail(f"bad rating {value!r}")
        try:
            return parse_rating(value)
        except ValueError as exc:
            raise self.fail(f"bad rating: {exc}") from None

    def imdb_rating(self, value: str) -> float | None:
        if not value:
            return None
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 10:
            raise self.fail(f"bad rating {value!r}: IMDb ratings are whole numbers 1 to 10")
        return int(value) / 2

    def note(self, value: Any) -> str | None:
        try:
            return clean_note(value)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def tags(self, value: Any) -> tuple[str, ...]:
        if value is not None and not isinstance(value, (str, list)):
            raise self.fail("tags is not a list of names")
        try:
            return clean_tags(value or None)
        except ValueError as exc:
            raise self.fail(f"bad tags: {exc}") from None

    def flag(self, value: Any, what: str) -> bool:
        """Yes / true / 1 (Letterboxd writes "Yes" or nothing); empty = no."""
        if value is None or isinstance(value, bool):
            return bool(value)
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text in {"", "no", "false", "0"}:
            return False
        if text in {"yes", "true", "1"}:
            return True
        raise self.fail(f"{what} {value!r} is not yes/no")

    def imdb_id(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _IMDB_ID.match(value.strip()):
            raise self.fail(f"bad IMDb id {value!r} (expected tt followed by digits)")
        return value.strip()

    def integer(self, value: Any, what: str) -> int | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.fail(f"{what} {value!r} is not a whole number")
        text = str(value).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise self.fail(f"{what} {value!r} is not a whole number")
        return int(text)


# ------------------------------------------------------------------- formats
def _letterboxd_kind(header: list[str]) -> str | None:
    if "letterboxd uri" not in header or "name" not in header:
        return None
    if "review" in header:
        return "reviews.csv"
    if "watched date" in header:
        return "diary.csv"
    if "rating" in header:
        return "ratings.csv"
    return "watched.csv"


_LB_ALIASES = {
    "date": ("date",),
    "name": ("name",),
    "year": ("year",),
    "rating": ("rating",),
    "watched": ("watched date",),
    "review": ("review",),
    "rewatch": ("rewatch",),
    "tags": ("tags",),
}


def _letterboxd_rows(files: dict[str, tuple[str, str]]) -> list[ImportRow]:
    """Merge a Letterboxd export: every diary entry is a watch; films only in watched.csv or
    ratings.csv become one watch on the day they were marked, with their rating."""
    problems = _Problems()

    def records(kind: str, required: tuple[str, ...]) -> Iterator[tuple[_Fields, dict[str, str]]]:
        if kind not in files:
            return
        display, text = files[kind]
        for line, record in _csv_records(text, display, _LB_ALIASES, required, problems):
            yield _Fields(display, line), record

    reviews: dict[tuple[str, int | None, date], str] = {}
    for parse, rec in records("reviews.csv", ("name", "date")):
        with problems.row():
            when = parse.date(rec.get("watched") or rec["date"], "watched date")
            note = parse.note(rec.get("review", ""))
            if note:
                name = normalize_title(parse.title(rec["name"], "name"))
                reviews[(name, parse.year(rec.get("year", "")), when)] = note
    rows: list[ImportRow] = []
    seen: set[tuple[str, int | None]] = set()
    for parse, rec in records("diary.csv", ("name", "date")):
        with problems.row():
            title = parse.title(rec["name"], "name")
            year = parse.year(rec.get("year", ""))
            when = parse.date(rec.get("watched") or rec["date"], "watched date")
            rating = parse.rating(rec.get("rating"))
            key = (normalize_title(title), year)
            seen.add(key)
            note = reviews.get((key[0], year, when))
            rewatch, tags = parse.flag(rec.get("rewatch"), "rewatch"), parse.tags(rec.get("tags"))
            rows.append(
                ImportRow(parse.display, parse.line, title, year, when, rating, note, rewatch=rewatch, tags=tags)
            )
    ratings: dict[tuple[str, int | None], tuple[_Fields, dict[str, str]]] = {}
    for parse, rec in records("ratings.csv", ("name", "date", "rating")):
        with problems.row():
            key = (normalize_title(parse.title(rec["name"], "name")), parse.year(rec.get("year", "")))
            parse.rating(rec["rating"])  # validate now, with the right line
            parse.date(rec["date"])
            ratings[key] = (parse, rec)
    for parse, rec in records("watched.csv", ("name", "date")):
        with problems.row():
            title = parse.title(rec["name"], "name")
            year = parse.year(rec.get("year", ""))
            key = (normalize_title(title), year)
            when = parse.date(rec["date"])
            if key in seen:
                continue
            seen.add(key)
            rated = ratings.get(key)
            rating = rated[0].rating(rated[1]["rating"]) if rated else None
            rows.append(ImportRow(parse.display, parse.line, title, year, when, rating, undated=True))
    problems.check()
    for key, (parse, rec) in ratings.items():
        if key in seen:
            continue
        seen.add(key)
        title = parse.title(rec["name"], "name")
        when, rating = parse.date(rec["date"]), parse.rating(rec["rating"])
        rows.append(ImportRow(parse.display, parse.line, title, key[1], when, rating, undated=True))
    return rows


# Everything zipfile raises on a corrupt archive (found by fuzzing: zlib.error, NotImplementedError
# for a garbled version field, RuntimeError for "encrypted", struct.error for short headers).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
)


def _letterboxd_zip(data: bytes, display: str) -> list[ImportRow]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except _ZIP_ERRORS as exc:
        raise DataFormatError(display, None, f"not a valid zip file ({exc})") from exc
    wanted = ("diary.csv", "watched.csv", "ratings.csv", "reviews.csv")
    chosen: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        pure = PurePosixPath(info.filename.replace("\\", "/"))
        if not info.filename or info.filename.endswith("/") or pure.name not in wanted:
            continue
        if any(part in {"deleted", "orphaned", "likes", "lists", "__MACOSX"} for part in pure.parts[:-1]):
            continue
        best = chosen.get(pure.name)
        if best is None or len(PurePosixPath(best.filename).parts) > len(pure.parts):
            chosen[pure.name] = info
    if not {"diary.csv", "watched.csv", "ratings.csv"} & set(chosen):
        raise DataFormatError(
            display, None, "not a Letterboxd export: the zip has no diary.csv, watched.csv or ratings.csv"
        )
    files: dict[str, tuple[str, str]] = {}
    for name, info in chosen.items():
        member = f"{display}!{info.filename}"
        if info.file_size > MAX_FILE_BYTES:
            raise DataFormatError(member, None, f"{info.file_size} bytes uncompressed, too large for an export")
        try:
            with archive.open(info) as handle:
                content = handle.read(MAX_FILE_BYTES + 1)
        except _ZIP_ERRORS as exc:
            raise DataFormatError(member, None, f"cannot read this zip member ({exc})") from exc
        if len(content) > MAX_FILE_BYTES:
            raise DataFormatError(member, None, "too large for an export")
        files[name] = (member, _text(content, member))
    return _letterboxd_rows(files)


_IMDB_ALIASES = {
    "const": ("const",),
    "rating": ("your rating",),
    "date": ("date rated", "created"),
    "title": ("title",),
    "original": ("original title",),
    "year": ("year",),
    "type": ("title type",),
    "url": ("url",),
}


def _imdb_rows(text: str, display: str, skipped: list[tuple[str, int | None, str]]) -> list[ImportRow]:
    rows: list[ImportRow] = []
    problems = _Problems()
    for line, rec in _csv_records(text, display, _IMDB_ALIASES, ("const", "rating", "date", "title"), problems):
        parse = _Fields(display, line)
        with problems.row():
            imdb_id = parse.imdb_id(rec["const"])
            title = parse.title(rec["title"])
            year = parse.year(rec.get("year", ""))
            rating = parse.imdb_rating(rec["rating"])
            when = parse.date(rec["date"], "date rated")
            if rec.get("type", "").strip().lower() in NOT_MOVIES:
                skipped.append((display, line, f"{title}: {rec['type']} is not a film"))
                continue
            # The note is the user's own: IMDb's "Original Title" is not written into it.
            rows.append(ImportRow(display, line, title, year, when, rating, None, imdb_id))
    problems.check()
    return rows


_CSV_ALIASES = {
    "title": ("title", "name", "movie"),
    "year": ("year",),
    "date": ("date", "watched_on", "watched date", "watched"),
    "rating": ("rating",),
    "note": ("note", "notes", "review"),
    "imdb_id": ("imdb_id", "imdb id", "const"),
    "genres": ("genres",),
    "in_catalog": ("in_catalog",),
    "dataset": ("dataset",),
    "movie_id": ("movie_id",),
    "source": ("source",),
    "created_at": ("created_at",),
    "rewatch": ("rewatch",),
    "tags": ("tags",),
}


def _plain_rows(text: str, display: str) -> list[ImportRow]:
    rows: list[ImportRow] = []
    problems = _Problems()
    for line, rec in _csv_records(text, display, _CSV_ALIASES, ("title", "date"), problems):
        if "in_catalog" in rec:  # our own CSV export: undo its formula escaping (store/safety.escape_cell)
            rec = {name: unescape_cell(value) for name, value in rec.items()}
        with problems.row():
            rows.append(_ours(_Fields(display, line), rec))
    problems.check()
    return rows


def _ours(parse: _Fields, rec: dict[str, Any]) -> ImportRow:
    """A row of a plain CSV / our export (CSV or JSON): identity fields are optional."""
    title = parse.title(rec.get("title"))
    year = parse.year(rec.get("year"))
    when = parse.date(rec.get("date"))
    in_catalog = rec.get("in_catalog")
    if isinstance(in_catalog, str):
        flag = in_catalog.strip().lower()
        if flag not in {"", "true", "false", "1", "0", "yes", "no"}:
            raise parse.fail(f"in_catalog {in_catalog!r} is not true/false")
        in_catalog = None if flag == "" else flag in {"true", "1", "yes"}
    elif in_catalog is not None and not isinstance(in_catalog, bool):
        raise parse.fail("in_catalog is not true/false")
    dataset = rec.get("dataset") or None
    if dataset is not None:
        dataset = parse.title(dataset, "dataset")
    genres_value = rec.get("genres")
    if genres_value is None:
        genres: tuple[str, ...] = ()
    elif isinstance(genres_value, str):
        genres = tuple(g.strip() for g in genres_value.split("|") if g.strip())[:50]
    elif isinstance(genres_value, list) and all(isinstance(g, str) and len(g) < 100 for g in genres_value):
        genres = tuple(genres_value)[:50]
    else:
        raise parse.fail("genres is not a list of names")
    source = rec.get("source") or None
    if source is not None and (not isinstance(source, str) or len(source) > 40):
        raise parse.fail("bad source")
    created = rec.get("created_at") or None
    if created is not None:
        if not isinstance(created, str) or len(created) > 40:
            raise parse.fail("bad created_at")
        try:
            from datetime import datetime

            datetime.fromisoformat(created)
        except ValueError:
            raise parse.fail(f"bad created_at {created!r}") from None
    return ImportRow(
        parse.display,
        parse.line,
        title,
        year,
        when,
        parse.rating(rec.get("rating")),
        parse.note(rec.get("note")),
        parse.imdb_id(rec.get("imdb_id")),
        dataset=dataset,
        movie_id=parse.integer(rec.get("movie_id"), "movie_id"),
        genres=genres,
        free_text=in_catalog is False,
        entry_source=source,
        created_at=created,
        rewatch=parse.flag(rec.get("rewatch"), "rewatch"),
        tags=parse.tags(rec.get("tags")),
    )


def _json_rows(text: str, display: str) -> tuple[list[ImportRow], list[HiddenMovie]]:
    try:
        payload = json.loads(text, parse_constant=lambda name: _bad_constant(display, name))
    except json.JSONDecodeError as exc:
        raise DataFormatError(display, exc.lineno, f"invalid JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise DataFormatError(display, None, "invalid JSON (nested too deeply)") from exc
    if not isinstance(payload, dict) or payload.get("format") != EXPORT_FORMAT:
        raise DataFormatError(display, None, f'not a dualrec export (expected "format": "{EXPORT_FORMAT}")')
    if payload.get("version") != EXPORT_VERSION:
        raise DataFormatError(display, None, f"unsupported export version {payload.get('version')!r}")
    entries = payload.get("entries")
    hidden = payload.get("not_interested", [])
    if not isinstance(entries, list) or not isinstance(hidden, list):
        raise DataFormatError(display, None, '"entries" and "not_interested" must be lists')
    if len(entries) > MAX_ROWS:
        raise DataFormatError(display, None, f"more than {MAX_ROWS} entries")
    rows = []
    for number, entry in enumerate(entries, start=1):
        parse = _Fields(f"{display} (entry {number})", None)
        if not isinstance(entry, dict):
            raise parse.fail("entry is not an object")
        rows.append(replace(_ours(parse, entry), source=display))
    movies = []
    for number, item in enumerate(hidden, start=1):
        parse = _Fields(f"{display} (not_interested {number})", None)
        if not isinstance(item, dict):
            raise parse.fail("item is not an object")
        movie_id = parse.integer(item.get("movie_id"), "movie_id")
        if movie_id is None:
            raise parse.fail("missing movie_id")
        movies.append(
            HiddenMovie(
                parse.title(item.get("dataset"), "dataset"),
                movie_id,
                parse.title(item.get("title")),
                parse.year(item.get("year")),
                parse.imdb_id(item.get("imdb_id")),
            )
        )
    return rows, movies


def _bad_constant(display: str, name: str) -> Any:
    raise DataFormatError(display, None, f"invalid JSON value {name}")


LETTERBOXD_FILES = ("diary.csv", "watched.csv", "ratings.csv", "reviews.csv")


def _letterboxd_folder(path: Path) -> list[ImportRow]:
    """An unzipped Letterboxd export: its CSVs at the top of the folder (or one folder down)."""
    files: dict[str, tuple[str, str]] = {}
    for name in LETTERBOXD_FILES:
        found = path / name
        if not found.is_file():
            nested = sorted(p for p in path.glob(f"*/{name}") if p.parent.name not in {"deleted", "orphaned"})
            found = nested[0] if nested else found
        if found.is_file():
            files[name] = (str(found), _text(_read_bytes(found), str(found)))
    if not {"diary.csv", "watched.csv", "ratings.csv"} & set(files):
        raise DataFormatError(
            path, None, "a folder, not a file, and not a Letterboxd export (no diary.csv, watched.csv or ratings.csv)"
        )
    return _letterboxd_rows(files)


def read_import_file(path: Path) -> tuple[str, list[ImportRow], list[tuple[str, int | None, str]], list[HiddenMovie]]:
    """Recognise the format by content (not by extension) and parse every row."""
    display = str(path)
    if path.is_dir():
        return "letterboxd", _letterboxd_folder(path), [], []
    data = _read_bytes(path)
    skipped: list[tuple[str, int | None, str]] = []
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or path.suffix.lower() == ".zip":
        return "letterboxd", _letterboxd_zip(data, display), skipped, []
    text = _text(data, display)
    if not text.strip():
        raise DataFormatError(display, None, "empty file")
    if text.lstrip()[:1] in ("{", "["):
        rows, hidden = _json_rows(text, display)
        return "dualrec-json", rows, skipped, hidden
    header = _header(text)
    kind = _letterboxd_kind(header)
    if kind:
        return "letterboxd", _letterboxd_rows({kind: (display, text)}), skipped, []
    if "const" in header:
        return "imdb", _imdb_rows(text, display, skipped), skipped, []
    if any(name in header for name in _CSV_ALIASES["title"]):
        return "csv", _plain_rows(text, display), skipped, []
    raise DataFormatError(
        display,
        1,
        "unrecognised file: expected a Letterboxd export (zip or its CSVs), an IMDb ratings.csv, "
        "a CSV with columns title,year,date,rating, or a dualrec JSON export",
    )


# -------------------------------------------------------------------- matching
class _Matcher:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.title_count = Counter(normalize_title(movie.title) for movie in catalog)

    def match(self, row: ImportRow) -> ImportRow:
        return self._by_identity(row) or self._by_title(row, self.catalog.resolve(row.title, row.year))

    def match_all(
        self,
        rows: list[ImportRow],
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[ImportRow]:
        """`match` for every row, titles resolved in batches (`Catalog.resolve_many`)."""
        known = [self._by_identity(row) for row in rows]
        todo = [position for position, row in enumerate(known) if row is None]
        try:
            resolved = self.catalog.resolve_many(
                [(rows[i].title, rows[i].year) for i in todo], progress=progress, cancelled=cancelled
            )
        except InterruptedError:
            raise ImportCancelled("import cancelled while matching titles: nothing was written") from None
        for position, result in zip(todo, resolved, strict=True):
            known[position] = self._by_title(rows[position], result)
        return [row for row in known if row is not None]

    def _by_identity(self, row: ImportRow) -> ImportRow | None:
        catalog = self.catalog
        if row.free_text:
            return replace(row, movie=None, match="unmatched", method="free-text")
        if row.movie_id is not None and row.dataset == catalog.name:
            movie = catalog.by_movie_id(row.movie_id)
            if movie is not None:
                return replace(row, movie=movie, match="matched", method="id")
        if row.imdb_id:
            movie = catalog.by_imdb_id.get(row.imdb_id)
            if movie is not None:
                return replace(row, movie=movie, match="matched", method="imdb")
        return None

    def _by_title(self, row: ImportRow, result: Any) -> ImportRow:
        if result.movie is None:
            return replace(row, movie=None, match="unmatched", method="none")
        match = "matched"
        if result.method == "fuzzy":
            match = "ambiguous"
        elif row.year is None and self.title_count[normalize_title(result.movie.title)] > 1:
            match = "ambiguous"  # several films share this title and the file gives no year
        return replace(row, movie=result.movie, match=match, method=result.method)


def _row_movie(row: ImportRow, accept_ambiguous: bool) -> Movie | None:
    """The catalog movie a row is written as (None = free text)."""
    if row.match == "matched" or (row.match == "ambiguous" and accept_ambiguous):
        return row.movie
    return None


def _row_key(row: ImportRow, accept_ambiguous: bool) -> tuple[Any, ...]:
    movie = _row_movie(row, accept_ambiguous)
    if movie is not None:
        return ("i", movie.index, row.watched_on)
    return ("t", normalize_title(row.title), row.year, row.watched_on)


def _entry_key(entry: Entry, catalog: Catalog) -> tuple[Any, ...]:
    index = entry.catalog_index(catalog)
    if index is not None:
        return ("i", index, entry.watched_on)
    return ("t", normalize_title(entry.title), entry.year, entry.watched_on)


def _mark_duplicates(
    rows: list[ImportRow], entries: list[Entry], catalog: Catalog, accept_ambiguous: bool
) -> list[ImportRow]:
    """status = match, or "duplicate" for as many rows per (movie, date) as the log already holds.

    Across imports: an undated row (watched.csv / ratings.csv) for a film the log has on any date is
    a duplicate, and a dated row takes the place (`replaces`) of an undated entry for its film.
    """
    have = Counter(_entry_key(entry, catalog) for entry in entries)
    films = {_entry_key(entry, catalog)[:-1] for entry in entries}
    undated: dict[tuple[Any, ...], list[int]] = {}
    rated = {entry.id for entry in entries if entry.rating is not None}
    for entry in entries:
        if entry.source == UNDATED_SOURCE:
            undated.setdefault(_entry_key(entry, catalog)[:-1], []).append(entry.id)
    marked = []
    for row in rows:
        key = _row_key(row, accept_ambiguous)
        film = key[:-1]
        if row.undated and film in films:
            unrated = [i for i in undated.get(film, []) if i not in rated]
            if row.rating is not None and unrated:  # ratings.csv after watched.csv: the rating
                marked.append(replace(row, status=row.match, replaces=unrated[0]))
            else:
                marked.append(replace(row, status="duplicate", replaces=None))
        elif have[key] > 0:
            have[key] -= 1
            marked.append(replace(row, status="duplicate", replaces=None))
        elif not row.undated and undated.get(film):
            marked.append(replace(row, status=row.match, replaces=undated[film].pop(0)))
        else:
            films.add(film)
            marked.append(replace(row, status=row.match, replaces=None))
    return marked


class ImportCancelled(DualrecError):
    """The user stopped an import before it was written."""


def plan_import(
    path: Path | str,
    catalog: Catalog,
    log: WatchLog | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ImportPreview:
    """Read, validate and match `path`; mark rows already in `log` as duplicates. Writes nothing.

    `progress(done, total)` reports the fuzzy matching (the slow part); `cancelled()` returning True stops
    it with `ImportCancelled`."""
    path = Path(path)
    fmt, rows, skipped, hidden = read_import_file(path)
    matcher = _Matcher(catalog)
    matched = matcher.match_all(rows, progress=progress, cancelled=cancelled)
    matched.sort(key=lambda row: row.watched_on)  # stable: file order within a day
    entries = log.chronological() if log is not None else []
    matched = _mark_duplicates(matched, entries, catalog, accept_ambiguous=True)
    return ImportPreview(path, fmt, catalog, matched, skipped, hidden)


def candidates(row: ImportRow, catalog: Catalog, limit: int = 5) -> list[Movie]:
    """Catalog movies an ambiguous row could be: its best guess, same-title films, then search hits."""
    found: list[Movie] = [row.movie] if row.movie is not None else []
    same_title = catalog._keys.get(normalize_title(row.title), [])
    for movie in [*same_title, *catalog.search(row.label, limit=limit)]:
        if movie not in found:
            found.append(movie)
    return found[:limit]


def choose(preview: ImportPreview, position: int, movie: Movie | None, log: WatchLog | None = None) -> ImportRow:
    """The user's pick for one row: a catalog movie (matched) or None (kept as typed, not in catalog).
    Duplicates are marked again, since the pick can make a row one."""
    row = preview.rows[position]
    if movie is None:
        chosen = replace(row, movie=None, match="unmatched", method="chosen", free_text=True)
    else:
        chosen = replace(row, movie=movie, match="matched", method="chosen", free_text=False)
    rows = list(preview.rows)
    rows[position] = chosen
    entries = log.chronological() if log is not None else []
    preview.rows = _mark_duplicates(rows, entries, preview.catalog, accept_ambiguous=True)
    return preview.rows[position]


def apply_import(log: WatchLog, preview: ImportPreview, accept_ambiguous: bool = True) -> ImportResult:
    """Write the preview's new rows in one transaction: all or nothing.

    Ambiguous rows are logged as their best guess, or as free text when `accept_ambiguous` is False.
    Duplicates are recounted inside the transaction, in case the log changed since planning.
    """
    source = "json" if preview.format == "dualrec-json" else preview.format
    added = free = hidden_added = replaced = 0
    first_id = last_id = None
    with log.transaction() as conn:
        rows = _mark_duplicates(preview.rows, log.chronological(), preview.catalog, accept_ambiguous)
        for row in rows:
            if row.status == "duplicate":
                continue
            if row.replaces is not None and row.undated:  # a rating for a film logged without one
                conn.execute("UPDATE entries SET rating = coalesce(rating, ?) WHERE id = ?", (row.rating, row.replaces))
                replaced += 1
                continue
            if row.replaces is not None:
                # The diary knows when: date it, keep a rating / note the undated entry had and the row lacks.
                conn.execute(
                    "UPDATE entries SET watched_on = ?, rating = coalesce(?, rating), note = coalesce(?, note), "
                    "source = ?, rewatch = ?, tags = coalesce(?, tags) WHERE id = ?",
                    (
                        row.watched_on.isoformat(),
                        row.rating,
                        row.note,
                        row.entry_source or source,
                        int(row.rewatch),
                        json.dumps(row.tags, ensure_ascii=False) if row.tags else None,
                        row.replaces,
                    ),
                )
                replaced += 1
                continue
            movie = _row_movie(row, accept_ambiguous)
            record: dict[str, Any] = {
                "watched_on": row.watched_on.isoformat(),
                "rating": row.rating,
                "note": row.note,
                "source": UNDATED_SOURCE if row.undated else row.entry_source or source,
                "created_at": row.created_at or utc_now(),
                "rewatch": int(row.rewatch),
                "tags": json.dumps(row.tags, ensure_ascii=False),
            }
            if movie is not None:
                record.update(
                    dataset=preview.dataset,
                    movie_id=movie.movie_id,
                    imdb_id=movie.imdb_id,
                    title=movie.title,
                    year=movie.year,
                    genres=json.dumps(list(movie.genres), ensure_ascii=False),
                )
            else:
                free += 1
                record.update(
                    dataset=None,
                    movie_id=None,
                    imdb_id=row.imdb_id,
                    title=row.title,
                    year=row.year,
                    genres=json.dumps(list(row.genres), ensure_ascii=False),
                )
            entry_id = log._insert(record)
            first_id = entry_id if first_id is None else first_id
            last_id = entry_id
            added += 1
        for item in preview.not_interested:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO not_interested (dataset, movie_id, imdb_id, title, year, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (item.dataset, item.movie_id, item.imdb_id, item.title, item.year, utc_now()),
            )
            hidden_added += cursor.rowcount
    return ImportResult(added, len(rows) - added - replaced, free, hidden_added, first_id, last_id, replaced)
