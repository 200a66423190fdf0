"""Phase one of an import: read the file (format recognised by content), match every row, mark what the
log already holds. Writes nothing; `apply.apply_import` writes what the user confirmed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dualrec_tui.core.catalog import Catalog, Movie
from dualrec_tui.core.errors import DataFormatError

from ..records import LogView
from . import imdb, letterboxd, ours
from .matching import Matcher, mark_duplicates
from .reading import header_of, read_bytes, read_text
from .rows import HiddenMovie, ImportPreview, ImportRow, Skipped


def read_import_file(path: Path) -> tuple[str, list[ImportRow], list[Skipped], list[HiddenMovie]]:
    """Recognise the format by content (not by extension) and parse every row:
    (format, rows, skipped rows, not-interested movies)."""
    display = str(path)
    if path.is_dir():
        return "letterboxd", letterboxd.from_folder(path), [], []
    data = read_bytes(path)
    skipped: list[Skipped] = []
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06") or path.suffix.lower() == ".zip":
        return "letterboxd", letterboxd.from_zip(data, display), skipped, []
    text = read_text(data, display)
    if not text.strip():
        raise DataFormatError(display, None, "empty file")
    if text.lstrip()[:1] in ("{", "["):
        rows, hidden = ours.json_rows(text, display)
        return "dualrec-json", rows, skipped, hidden
    header = header_of(text)
    kind = letterboxd.kind(header)
    if kind:
        return "letterboxd", letterboxd.merge({kind: (display, text)}), skipped, []
    if "const" in header:
        return "imdb", imdb.rows(text, display, skipped), skipped, []
    if any(name in header for name in ours.ALIASES["title"]):
        return "csv", ours.plain_rows(text, display), skipped, []
    raise DataFormatError(
        display,
        1,
        "unrecognised file: expected a Letterboxd export (zip or its CSVs), an IMDb ratings.csv, "
        "a CSV with columns title,year,date,rating, or a dualrec JSON export",
    )


def plan_import(
    path: Path | str,
    catalog: Catalog,
    log: LogView | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ImportPreview:
    """Read, validate and match `path`; mark rows already in `log` as duplicates. Writes nothing.

    `progress(done, total)` reports the fuzzy matching (the slow part); `cancelled()` returning True stops
    it with `ImportCancelled`."""
    path = Path(path)
    fmt, rows, skipped, hidden = read_import_file(path)
    matched = Matcher(catalog).match_all(rows, progress=progress, cancelled=cancelled)
    matched.sort(key=lambda row: row.watched_on)  # stable: file order within a day
    entries = log.chronological() if log is not None else []
    matched = mark_duplicates(matched, entries, catalog, accept_ambiguous=True)
    return ImportPreview(path, fmt, catalog, matched, skipped, hidden)


def choose(preview: ImportPreview, position: int, movie: Movie | None, log: LogView | None = None) -> ImportRow:
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
    preview.rows = mark_duplicates(rows, entries, preview.catalog, accept_ambiguous=True)
    return preview.rows[position]
