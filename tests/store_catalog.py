"""A small catalog for the watch-log tests: a few films with IMDb ids, one title shared by three films."""

from __future__ import annotations

from dataclasses import replace

from dualrec_tui.core.catalog import Catalog, build_catalog

ROWS = [
    (1, "Toy Story (1995)", ["Adventure", "Animation", "Children", "Comedy"], "tt0114709"),
    (2, "Jumanji (1995)", ["Adventure", "Children", "Fantasy"], "tt0113497"),
    (6, "Heat (1995)", ["Action", "Crime", "Thriller"], "tt0113277"),
    (2571, "Matrix, The (1999)", ["Action", "Sci-Fi", "Thriller"], "tt0133093"),
    (3114, "Toy Story 2 (1999)", ["Adventure", "Animation", "Children", "Comedy"], "tt0120363"),
    (4973, "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", ["Comedy", "Romance"], "tt0211915"),
    (1411, "Hamlet (1996)", ["Crime", "Drama", "Romance"], "tt0116477"),
    (3598, "Hamlet (2000)", ["Crime", "Drama", "Romance", "Thriller"], "tt0171359"),
    (7256, "Touching the Void (2003)", ["Adventure", "Documentary"], None),
]


def small_catalog(name: str = "test-catalog") -> Catalog:
    base = build_catalog(((movie_id, title, genres) for movie_id, title, genres, _ in ROWS), name=name)
    movies = [replace(movie, imdb_id=imdb) for movie, (*_, imdb) in zip(base.movies, ROWS, strict=True)]
    return Catalog(movies, name=name)
