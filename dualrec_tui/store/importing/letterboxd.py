"""Letterboxd's export: a zip (or its unzipped folder, or one of its CSVs) with diary.csv, watched.csv,
ratings.csv and reviews.csv, merged into one list of watches.

watched.csv and ratings.csv say a film was seen, not when (their date is the day it was marked): such
rows are `undated` (see matching.mark_duplicates for how they merge with what the log has). The diary's
Rewatch and Tags columns are kept on the row, never written into the note.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

from dualrec_tui.core.catalog import normalize_title
from dualrec_tui.core.errors import DataFormatError

from .archive import zip_texts
from .reading import Fields, Problems, csv_records, read_bytes, read_text
from .rows import ImportRow

FILES = ("diary.csv", "watched.csv", "ratings.csv", "reviews.csv")
WATCH_FILES = {"diary.csv", "watched.csv", "ratings.csv"}  # an export has at least one of these
SKIPPED_FOLDERS = {"deleted", "orphaned", "likes", "lists", "__MACOSX"}  # not the user's current log


def kind(header: list[str]) -> str | None:
    """Which Letterboxd file a CSV header belongs to (None: not Letterboxd's)."""
    if "letterboxd uri" not in header or "name" not in header:
        return None
    if "review" in header:
        return "reviews.csv"
    if "watched date" in header:
        return "diary.csv"
    if "rating" in header:
        return "ratings.csv"
    return "watched.csv"


ALIASES = {
    "date": ("date",),
    "name": ("name",),
    "year": ("year",),
    "rating": ("rating",),
    "watched": ("watched date",),
    "review": ("review",),
    "rewatch": ("rewatch",),
    "tags": ("tags",),
}


def merge(files: dict[str, tuple[str, str]]) -> list[ImportRow]:
    """Merge a Letterboxd export: every diary entry is a watch; films only in watched.csv or
    ratings.csv become one watch on the day they were marked, with their rating."""
    problems = Problems()

    def records(name: str, required: tuple[str, ...]) -> Iterator[tuple[Fields, dict[str, str]]]:
        if name not in files:
            return
        display, text = files[name]
        for line, record in csv_records(text, display, ALIASES, required, problems):
            yield Fields(display, line), record

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
    diary_rows: dict[tuple[str, int | None], list[int]] = {}  # film -> its positions in `rows`
    for parse, rec in records("diary.csv", ("name", "date")):
        with problems.row():
            title = parse.title(rec["name"], "name")
            year = parse.year(rec.get("year", ""))
            when = parse.date(rec.get("watched") or rec["date"], "watched date")
            rating = parse.rating(rec.get("rating"))
            key = (normalize_title(title), year)
            seen.add(key)
            diary_rows.setdefault(key, []).append(len(rows))
            note = reviews.get((key[0], year, when))
            rewatch, tags = parse.flag(rec.get("rewatch"), "rewatch"), parse.tags(rec.get("tags"))
            rows.append(
                ImportRow(parse.display, parse.line, title, year, when, rating, note, rewatch=rewatch, tags=tags)
            )
    ratings: dict[tuple[str, int | None], tuple[Fields, dict[str, str]]] = {}
    for parse, rec in records("ratings.csv", ("name", "date", "rating")):
        with problems.row():
            key = (normalize_title(parse.title(rec["name"], "name")), parse.year(rec.get("year", "")))
            parse.rating(rec["rating"])  # validate now, with the right line
            parse.date(rec["date"])
            ratings[key] = (parse, rec)
    for key, positions in diary_rows.items():
        # a film the diary logged without any rating takes ratings.csv's on its latest viewing, as
        # importing diary.csv and then ratings.csv does (matching.mark_duplicates)
        rated = ratings.get(key)
        if rated is not None and all(rows[p].rating is None for p in positions):
            latest = max(positions, key=lambda p: (rows[p].watched_on, p))
            rows[latest] = replace(rows[latest], rating=rated[0].rating(rated[1]["rating"]))
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


def _export(files: dict[str, tuple[str, str]], where: str | Path, what: str) -> list[ImportRow]:
    """`merge` the files found, or say that `what` (a zip, a folder) is no Letterboxd export."""
    if not WATCH_FILES & set(files):
        raise DataFormatError(where, None, f"{what} no diary.csv, watched.csv or ratings.csv")
    return merge(files)


def from_zip(data: bytes, display: str) -> list[ImportRow]:
    return _export(zip_texts(data, display, FILES, SKIPPED_FOLDERS), display, "not a Letterboxd export: the zip has")


def from_folder(path: Path) -> list[ImportRow]:
    """An unzipped Letterboxd export: its CSVs at the top of the folder (or one folder down)."""
    files: dict[str, tuple[str, str]] = {}
    for name in FILES:
        found = path / name
        if not found.is_file():
            nested = sorted(p for p in path.glob(f"*/{name}") if p.parent.name not in SKIPPED_FOLDERS)
            found = nested[0] if nested else found
        if found.is_file():
            files[name] = (str(found), read_text(read_bytes(found), str(found)))
    return _export(files, path, "a folder, not a file, and not a Letterboxd export: it has")
