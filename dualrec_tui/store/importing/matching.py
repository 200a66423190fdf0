"""Matching imported rows to the catalog (IMDb id, our ids, then `Catalog.resolve_many` on titles) and
to what the log already holds.

Duplicates are counted as a multiset of (movie, date watched): re-importing a file adds nothing, yet
two viewings of one film on one day in the file are both kept the first time. The rule that merges a
Letterboxd zip also holds across imports of its CSVs one at a time: an undated row (watched.csv /
ratings.csv) for a film the log already has is already logged, unless it brings a rating the film never
had (then the film's latest viewing gets it), and a diary row replaces an undated entry for the same
film. One difference remains: ratings.csv imported *before* a diary with several unrated viewings of a
film puts the rating on the viewing that replaces the undated entry, the first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from dualrec_tui.core.catalog import Catalog, Movie, normalize_title

from ..records import Entry
from .rows import UNDATED_SOURCE, ImportCancelled, ImportRow


class Matcher:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.title_count = Counter(normalize_title(movie.title) for movie in catalog)

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


def row_movie(row: ImportRow, accept_ambiguous: bool) -> Movie | None:
    """The catalog movie a row is written as (None = free text)."""
    if row.match == "matched" or (row.match == "ambiguous" and accept_ambiguous):
        return row.movie
    return None


def _key(index: int | None, title: str, year: int | None, day: date) -> tuple[Any, ...]:
    """What makes two watches the same: the catalog movie (else the normalised title and year) and the day."""
    return ("i", index, day) if index is not None else ("t", normalize_title(title), year, day)


def _row_key(row: ImportRow, accept_ambiguous: bool) -> tuple[Any, ...]:
    movie = row_movie(row, accept_ambiguous)
    return _key(None if movie is None else movie.index, row.title, row.year, row.watched_on)


def _entry_key(entry: Entry, catalog: Catalog) -> tuple[Any, ...]:
    return _key(entry.catalog_index(catalog), entry.title, entry.year, entry.watched_on)


def mark_duplicates(
    rows: list[ImportRow], entries: list[Entry], catalog: Catalog, accept_ambiguous: bool
) -> list[ImportRow]:
    """status = match, or "duplicate" for as many rows per (movie, date) as the log already holds.

    Across imports: an undated row (watched.csv / ratings.csv) for a film the log has on any date is
    a duplicate, unless it carries a rating: then it rates (`replaces`) the film's unrated undated
    entry, or, when none of the film's entries has a rating, its latest viewing. A dated row takes
    the place of an undated entry.
    """
    have = Counter(_entry_key(entry, catalog) for entry in entries)
    films = {_entry_key(entry, catalog)[:-1] for entry in entries}
    undated: dict[tuple[Any, ...], list[int]] = {}
    unrated_viewings: dict[tuple[Any, ...], list[int]] = {}  # every entry without a rating, latest first
    rated = {entry.id for entry in entries if entry.rating is not None}
    rated_films = {_entry_key(entry, catalog)[:-1] for entry in entries if entry.rating is not None}
    for entry in entries:
        if entry.source == UNDATED_SOURCE:
            undated.setdefault(_entry_key(entry, catalog)[:-1], []).append(entry.id)
        if entry.rating is None:
            unrated_viewings.setdefault(_entry_key(entry, catalog)[:-1], []).insert(0, entry.id)
    marked = []
    for row in rows:
        key = _row_key(row, accept_ambiguous)
        film = key[:-1]
        if row.undated and film in films:
            # ratings.csv after watched.csv rates the undated entry; a film logged by date and never
            # rated gets it on its latest viewing (the file does not say which viewing it rates)
            unrated = [i for i in undated.get(film, []) if i not in rated]
            if not unrated and film not in rated_films and row.match == "matched":  # never on a guess
                unrated = [i for i in unrated_viewings.get(film, []) if i not in rated]
            if row.rating is not None and unrated:
                rated.add(unrated[0])
                rated_films.add(film)
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


def candidates(row: ImportRow, catalog: Catalog, limit: int = 5) -> list[Movie]:
    """Catalog movies an ambiguous row could be: its best guess, same-title films, then search hits."""
    found: list[Movie] = [row.movie] if row.movie is not None else []
    same_title = catalog._keys.get(normalize_title(row.title), [])
    for movie in [*same_title, *catalog.search(row.label, limit=limit)]:
        if movie not in found:
            found.append(movie)
    return found[:limit]
