"""What the watch log holds, as values: entries, not-interested movies, counts.

Also `LogView`, the part of a watch log that import and export use, so they depend on this module
and not on `db.py` (which calls them): the store's modules import one way only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from dualrec_tui.core.catalog import Catalog, title_label


def catalog_index(catalog: Catalog, dataset: str | None, movie_id: int | None, imdb_id: str | None) -> int | None:
    """Where a logged movie is in `catalog`: same dataset -> its movie id, else its IMDb id; None if absent
    (free text, or a movie this catalog lacks)."""
    if movie_id is None:
        return None
    if dataset == catalog.name:
        index = catalog.index_of(movie_id)
        if index is not None:
            return index
    movie = catalog.by_imdb_id.get(imdb_id) if imdb_id else None
    return movie.index if movie is not None else None


class _LoggedMovie:
    """What an entry and a not-interested mark share: a movie named by title and year, found in a catalog
    by dataset + movie id or IMDb id."""

    title: str
    year: int | None
    dataset: str | None
    movie_id: int | None
    imdb_id: str | None

    @property
    def label(self) -> str:
        return title_label(self.title, self.year)

    def catalog_index(self, catalog: Catalog) -> int | None:
        """Its catalog index (see `catalog_index`); None for free text or a movie `catalog` lacks."""
        return catalog_index(catalog, self.dataset, self.movie_id, self.imdb_id)


@dataclass(frozen=True)
class Entry(_LoggedMovie):
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Entry:
        """An entry from its `entries` row (JSON columns decoded; columns a later version adds are ignored)."""
        return cls(
            id=row["id"],
            title=row["title"],
            year=row["year"],
            genres=tuple(json.loads(row["genres"] or "[]")),
            watched_on=date.fromisoformat(row["watched_on"]),
            rating=row["rating"],
            note=row["note"],
            dataset=row["dataset"],
            movie_id=row["movie_id"],
            imdb_id=row["imdb_id"],
            source=row["source"],
            created_at=row["created_at"],
            rewatch=bool(row["rewatch"]),
            tags=tuple(json.loads(row["tags"] or "[]")),
        )

    @property
    def in_catalog(self) -> bool:
        return self.movie_id is not None


@dataclass(frozen=True)
class NotInterested(_LoggedMovie):
    """A catalog movie the user never wants recommended."""

    dataset: str
    movie_id: int
    title: str
    year: int | None
    imdb_id: str | None = None
    created_at: str = ""


@dataclass(frozen=True)
class LogCounts:
    entries: int
    in_catalog: int
    free_text: int
    rated: int
    distinct_movies: int
    not_interested: int
    deleted_undoable: int = 0


class LogView(Protocol):
    """What import and export need of a watch log; `db.WatchLog` is the one implementation."""

    def chronological(self) -> list[Entry]: ...

    def not_interested(self) -> list[NotInterested]: ...

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def insert_entry(self, record: dict[str, Any]) -> int: ...

    def insert_not_interested(self, record: dict[str, Any]) -> int: ...
