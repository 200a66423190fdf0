"""A plain CSV (title, date; optionally year, rating, note...) and our own exports (CSV and JSON).

Our exports carry the catalog identity (dataset, movie_id, imdb_id), a snapshot of title/year/genres,
`in_catalog=false` for free text, the rewatch flag and tags, so a round trip restores the same log.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from dualrec_tui.core.errors import DataFormatError

from ..exporters import EXPORT_FORMAT, EXPORT_VERSION
from ..safety import unescape_cell
from .reading import MAX_ROWS, Fields, Problems, csv_records
from .rows import HiddenMovie, ImportRow

ALIASES = {
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


def plain_rows(text: str, display: str) -> list[ImportRow]:
    rows: list[ImportRow] = []
    problems = Problems()
    for line, rec in csv_records(text, display, ALIASES, ("title", "date"), problems):
        if "in_catalog" in rec:  # our own CSV export: undo its formula escaping (store/safety.escape_cell)
            rec = {name: unescape_cell(value) for name, value in rec.items()}
        with problems.row():
            rows.append(row_of(Fields(display, line), rec))
    problems.check()
    return rows


def row_of(parse: Fields, rec: dict[str, Any]) -> ImportRow:
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


def json_rows(text: str, display: str) -> tuple[list[ImportRow], list[HiddenMovie]]:
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
        parse = Fields(f"{display} (entry {number})", None)
        if not isinstance(entry, dict):
            raise parse.fail("entry is not an object")
        rows.append(replace(row_of(parse, entry), source=display))
    movies = []
    for number, item in enumerate(hidden, start=1):
        parse = Fields(f"{display} (not_interested {number})", None)
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
