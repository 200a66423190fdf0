"""Bring years of history in: Letterboxd export, IMDb ratings, a plain CSV, or our own export.

Two phases so the user sees what will happen before anything is written:

* `plan_import(path, catalog, log)` reads and validates the whole file, matches every row to the
  catalog (IMDb id first, then `Catalog.resolve(title, year)`) and marks rows already in the log
  as duplicates. It writes nothing. Any malformed input raises `DataFormatError(file, line, problem)`.
* `WatchLog.apply_import(preview)` writes the new rows in one transaction: all or nothing.

Modules, along the seams of the job (each imports only those above it in this list):
  rows        ImportRow / ImportPreview / ImportResult: what an import is made of
  reading     safe file and CSV reading, field parsers (every problem with file and line)
  archive     named text files out of a zip, safely
  letterboxd, imdb, ours   the formats (ours = plain CSV and dualrec's CSV / JSON export)
  matching    rows -> catalog movies, and what the log already holds (duplicates, undated rows)
  plan        format recognition, plan_import, choose (the user's pick for an ambiguous row)
  apply       the DB write (through `records.LogView`, so nothing here imports `db`)
"""

from __future__ import annotations

from .apply import apply_import
from .matching import candidates
from .plan import choose, plan_import, read_import_file
from .rows import HiddenMovie, ImportCancelled, ImportPreview, ImportResult, ImportRow

__all__ = [
    "HiddenMovie",
    "ImportCancelled",
    "ImportPreview",
    "ImportResult",
    "ImportRow",
    "apply_import",
    "candidates",
    "choose",
    "plan_import",
    "read_import_file",
]
