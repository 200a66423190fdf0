"""What an import is made of: the rows read from a file, the preview the user confirms, the result."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dualrec_tui.core.catalog import Catalog, Movie, title_label
from dualrec_tui.core.errors import DualrecError

STATUSES = ("matched", "ambiguous", "unmatched", "duplicate")
UNDATED_SOURCE = "letterboxd-undated"  # the source of an entry logged from watched.csv / ratings.csv (no date)
Skipped = tuple[str, int | None, str]  # (file, line, why) of a row left out on purpose (an IMDb TV series)


class ImportCancelled(DualrecError):
    """The user stopped an import before it was written."""


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
    replaces: int | None = None  # the log entry this row dates (an undated one) or rates (one never rated)
    rewatch: bool = False  # Letterboxd diary "Rewatch" = Yes, or our export's rewatch column
    tags: tuple[str, ...] = ()  # Letterboxd diary "Tags", or our export's tags

    @property
    def label(self) -> str:
        return title_label(self.title, self.year)


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
    skipped: list[Skipped] = field(default_factory=list)
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
        """Rows that fill in a date or a rating on an entry already in the log (nothing else on it changes)."""
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
