"""Phase two of an import: write what the user confirmed, in one transaction (all or nothing)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..migrations import utc_now
from ..records import LogView
from .matching import mark_duplicates, row_movie
from .rows import UNDATED_SOURCE, ImportPreview, ImportResult


def apply_import(log: LogView, preview: ImportPreview, accept_ambiguous: bool = True) -> ImportResult:
    """Write the preview's new rows in one transaction: all or nothing.

    Ambiguous rows are logged as their best guess, or as free text when `accept_ambiguous` is False.
    Duplicates are recounted inside the transaction, in case the log changed since planning.
    """
    source = "json" if preview.format == "dualrec-json" else preview.format
    added = free = hidden_added = replaced = 0
    first_id = last_id = None
    with log.transaction() as conn:
        rows = mark_duplicates(preview.rows, log.chronological(), preview.catalog, accept_ambiguous)
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
            movie = row_movie(row, accept_ambiguous)
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
            entry_id = log.insert_entry(record)
            first_id = entry_id if first_id is None else first_id
            last_id = entry_id
            added += 1
        for item in preview.not_interested:
            hidden_added += log.insert_not_interested(asdict(item))
    return ImportResult(added, len(rows) - added - replaced, free, hidden_added, first_id, last_id, replaced)
