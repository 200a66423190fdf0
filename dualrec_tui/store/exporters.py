"""Export the watch log to CSV (entries) or JSON (entries + not-interested movies).

Both re-import through `plan_import` to the same log: rows carry the catalog identity
(dataset, movie_id, imdb_id), a snapshot of title/year/genres, and `in_catalog=false` for free text
so it stays free text. Entries are written oldest first, so insertion order within a day survives.
Files are written to a temporary sibling and renamed, so a crash never leaves half an export.
CSV text cells starting with = + - @ get a leading ' (OWASP's CSV-injection advice), undone on re-import.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .migrations import utc_now
from .safety import escape_cell

if TYPE_CHECKING:
    from .records import Entry, LogView

EXPORT_FORMAT = "dualrec-watchlog"
EXPORT_VERSION = 1  # rewatch and tags were added without a bump: older readers ignore them

CSV_COLUMNS = (
    "title",
    "year",
    "date",
    "rating",
    "note",
    "genres",
    "in_catalog",
    "dataset",
    "movie_id",
    "imdb_id",
    "source",
    "created_at",
    "rewatch",
    "tags",
)


def _record(entry: Entry) -> dict[str, Any]:
    return {
        "title": entry.title,
        "year": entry.year,
        "date": entry.watched_on.isoformat(),
        "rating": entry.rating,
        "note": entry.note,
        "genres": list(entry.genres),
        "in_catalog": entry.in_catalog,
        "dataset": entry.dataset,
        "movie_id": entry.movie_id,
        "imdb_id": entry.imdb_id,
        "source": entry.source,
        "created_at": entry.created_at,
        "rewatch": entry.rewatch,
        "tags": list(entry.tags),
    }


def _write_atomic(path: Path, text: str) -> None:
    """Write via a hidden temporary sibling; an error names `path` (the file the user asked for)."""
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write {path} ({exc.strerror or type(exc).__name__})") from exc
    except BaseException:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula (`=HYPERLINK(...)` in a note) is escaped."""
    return escape_cell(value) if isinstance(value, str) else value


def export_csv(log: LogView, path: Path) -> int:
    """Write every entry (oldest first) as CSV; returns the number of entries."""
    entries = log.chronological()
    buffer = io.StringIO()
    # RFC 4180 line ends: with "\n" alone the csv module would leave a lone "\r" in a note unquoted.
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in entries:
        record = _record(entry)
        record["genres"] = "|".join(entry.genres)
        record["in_catalog"] = "true" if entry.in_catalog else "false"
        record["rewatch"] = "true" if entry.rewatch else "false"
        record["tags"] = ", ".join(entry.tags)  # a tag never holds a comma (store.values.clean_tags)
        writer.writerow({key: "" if value is None else _cell(value) for key, value in record.items()})
    _write_atomic(path, buffer.getvalue())
    return len(entries)


def export_json(log: LogView, path: Path) -> int:
    """Write entries and not-interested movies as JSON; returns the number of entries."""
    entries = log.chronological()
    payload = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utc_now(),
        "entries": [_record(entry) for entry in entries],
        "not_interested": [
            {"dataset": m.dataset, "movie_id": m.movie_id, "title": m.title, "year": m.year, "imdb_id": m.imdb_id}
            for m in log.not_interested()
        ],
    }
    _write_atomic(path, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")
    return len(entries)
