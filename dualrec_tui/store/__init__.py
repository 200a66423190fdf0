"""The watch log: what the user watched, in a local SQLite file, plus import and export.

API (everything the app needs; `dualrec_tui.store` imports fast, sqlite-utils loads on open)::

    from dualrec_tui.store import WatchLog, plan_import

    log = WatchLog.open()                  # path arg, else core.artifacts.watchlog_path() (DUALREC_DB, data dir)
    e = log.add(movie, dataset=catalog.name, watched_on="2024-05-01", rating=4.5, note="cinema",
                rewatch=True, tags="cinema, with Sam")   # tags: comma-separated text or a list
    e = log.add("Some Film Not In The Catalog", year=2023)     # free text: kept, never model input
    log.update(e.id, rating=None, note="rewatch soon")          # UNSET fields keep their value
    log.delete(e.id); log.undo_delete()    # undo restores the same row (same id)
    log.history(limit=50)                  # newest first (date watched, then insertion)
    log.model_input(catalog)               # catalog indices, oldest first -> LSTM / prompt
    log.watched_indices(catalog)           # set, to leave seen movies out of recommendations
    log.add_not_interested(movie, catalog.name); log.remove_not_interested(movie.movie_id, catalog.name)
    log.not_interested(); log.not_interested_indices(catalog)
    log.counts()                           # LogCounts(entries, in_catalog, free_text, rated, ...)

    preview = plan_import(path, catalog, log)  # Letterboxd zip/csv, IMDb ratings.csv, plain CSV, our JSON
    preview.counts  # {"matched", "ambiguous", "unmatched", "duplicate", "skipped", "not_interested": int}
    preview.format, preview.rows, preview.with_status("ambiguous"), preview.skipped, preview.to_add
    #   ImportRow: source, line, title, year, watched_on, rating, note, movie (match / best guess), status, method
    result = log.apply_import(preview, accept_ambiguous=True)  # one transaction; re-import adds nothing
    #   ImportResult: added, duplicates, free_text, not_interested_added, first_id, last_id
    log.export_csv(path); log.export_json(path)                 # both re-import to the same log

Format is recognised by content: a zip (Letterboxd: diary.csv + watched.csv + ratings.csv +
reviews.csv), a CSV whose header has "Letterboxd URI" (one Letterboxd file), "Const" (IMDb
ratings, 1-10 halved to stars; TV series/episodes skipped), or "title" + "date" (plain CSV,
optional year, rating 0.5-5, note; our CSV export adds identity columns), or JSON (our export).

Errors: `WatchLogError` (unusable database: not a database, newer schema = `SchemaTooNewError`,
locked), `dualrec_tui.core.errors.DataFormatError` (a malformed import file: file, line, problem),
`ValueError` (bad rating / date / title passed to add or update; the message is user-readable).
An `Entry` keeps a snapshot of title/year/genres, so the log reads fine without the catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .db import WatchLog
from .migrations import SchemaTooNewError, WatchLogError
from .records import Entry, LogCounts, NotInterested
from .values import UNSET, parse_rating, parse_watched_on

if TYPE_CHECKING:
    from .importing import ImportPreview, ImportResult, ImportRow, plan_import

__all__ = [
    "UNSET",
    "Entry",
    "ImportPreview",
    "ImportResult",
    "ImportRow",
    "LogCounts",
    "NotInterested",
    "SchemaTooNewError",
    "WatchLog",
    "WatchLogError",
    "parse_rating",
    "parse_watched_on",
    "plan_import",
]


def __getattr__(name: str) -> Any:
    """Import the importers (csv/zip parsing) only when used."""
    if name in {"ImportPreview", "ImportResult", "ImportRow", "plan_import"}:
        from . import importing

        return getattr(importing, name)
    raise AttributeError(name)
