"""IMDb's ratings export (ratings.csv: Const, Your Rating, Date Rated, Title, Title Type...).

Ratings 1-10 are halved to stars; rows that are not films (TV series, episodes, games) are skipped
and listed, since they would only clutter the log as free text. The IMDb id matches the catalog.
"""

from __future__ import annotations

from .reading import Fields, Problems, csv_records
from .rows import ImportRow, Skipped

# IMDb title types that are not films.
NOT_MOVIES = {
    "tv series",
    "tv mini series",
    "tv episode",
    "tv short",
    "video game",
    "podcast series",
    "podcast episode",
    "music video",
    "tvseries",
    "tvminiseries",
    "tvepisode",
    "tvshort",
    "videogame",
    "podcastseries",
    "podcastepisode",
}


ALIASES = {
    "const": ("const",),
    "rating": ("your rating",),
    "date": ("date rated", "created"),
    "title": ("title",),
    "original": ("original title",),
    "year": ("year",),
    "type": ("title type",),
    "url": ("url",),
}


def rows(text: str, display: str, skipped: list[Skipped]) -> list[ImportRow]:
    found: list[ImportRow] = []
    problems = Problems()
    for line, rec in csv_records(text, display, ALIASES, ("const", "rating", "date", "title"), problems):
        parse = Fields(display, line)
        with problems.row():
            imdb_id = parse.imdb_id(rec["const"])
            title = parse.title(rec["title"])
            year = parse.year(rec.get("year", ""))
            rating = parse.imdb_rating(rec["rating"])
            when = parse.date(rec["date"], "date rated")
            if rec.get("type", "").strip().lower() in NOT_MOVIES:
                skipped.append((display, line, f"{title}: {rec['type']} is not a film"))
                continue
            # The note is the user's own: IMDb's "Original Title" is not written into it.
            found.append(ImportRow(display, line, title, year, when, rating, None, imdb_id))
    problems.check()
    return found
