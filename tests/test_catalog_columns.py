"""The catalog's columnar disk cache (`core/catalog_columns.py`) and the lazily made movies it gives.

What matters: a catalog read back from the cache is the catalog `from_json` parses (every movie, the
fingerprint, the name, the popularity, the same search answers), it makes only the movies asked for,
and a missing, damaged, foreign or inconsistent file is never trusted: it is rebuilt from the JSON.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dualrec_tui.core import catalog as catalog_module
from dualrec_tui.core import catalog_columns
from dualrec_tui.core.catalog import Catalog, Movie
from dualrec_tui.core.errors import DataFormatError

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "catalog.json"
QUERIES = ["matirx", "walle", "se7en", "spiderman", "amelie", "lord of the rings", "toy story 2", "Hamlet (1996)"]


def _movies() -> list[Movie]:
    """Every kind of value a column holds: unknown years and ids, no genres, several alternatives, accents."""
    return [
        Movie(0, 1, "Toy Story", 1995, ("Adventure", "Animation"), (), "tt0114709", 862),
        Movie(1, 47, "Seven", 1995, ("Mystery", "Thriller"), ("Se7en",), None, None),
        Movie(2, 2571, "The Matrix", 1999, ("Action", "Sci-Fi"), (), "tt0133093", 603),
        Movie(3, 5, "La Cité des enfants perdus", None, (), ("The City of Lost Children", "Cité"), None, 902),
        Movie(4, -3, "Amélie", 2001, ("Comedy", "Romance"), ("Le Fabuleux Destin d'Amélie Poulain",), None, -1),
        Movie(5, 10**12, "", 2100, ("(odd) genre",), (), None, None),  # an empty title
    ]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """Every catalog file counts as big (its columns go to disk), in a cache folder of this test's own."""
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(catalog_columns, "CATALOG_DISK_CACHE_MIN_BYTES", 0)
    return tmp_path / "cache" / "catalog"


def _write(tmp_path: Path, movies: list[Movie], popularity: list[int] | None = None) -> Path:
    path = tmp_path / "catalog.json"
    Catalog(movies, name="test-release", popularity=popularity).to_json(path)
    return path


def _same(cached: Catalog, parsed: Catalog) -> None:
    assert cached.movies == parsed.movies
    assert [m.__dict__ for m in cached.movies] == [m.__dict__ for m in parsed.movies]  # types too (None, "", 0)
    assert (cached.name, cached.fingerprint, cached.popularity) == (parsed.name, parsed.fingerprint, parsed.popularity)


def test_columns_give_back_the_parsed_catalog(tmp_path, cache) -> None:
    path = _write(tmp_path, _movies(), [3, 1, 4, 1, 5, 9])
    parsed = Catalog.from_json(path)  # no file yet: parsed from JSON, then written
    assert parsed._columns is None and len(list(cache.glob("columns-*.npz"))) == 1
    cached = Catalog.from_json(path)
    assert cached._columns is not None and cached._movies is None  # from the file, no movie made yet
    assert len(cached) == 6 and cached.fingerprint == parsed.fingerprint and cached._movies is None
    _same(cached, parsed)


def test_an_empty_imdb_id_leaves_the_catalog_uncached(tmp_path, cache) -> None:
    """ "" and None would read back the same: such a catalog is parsed every time, never cached wrong."""
    path = _write(tmp_path, [*_movies()[:5], replace(_movies()[5], imdb_id="")])
    first, second = Catalog.from_json(path), Catalog.from_json(path)
    assert not list(cache.glob("*.npz")) and second._columns is None
    _same(second, first)


@pytest.mark.parametrize(
    "odd",
    [
        ("title", "Two\nlines"),
        ("year", 1995.0),
        ("year", 2**40),  # the search index keeps years as int32
        ("genres", ("",)),  # one empty genre would read back as none
        ("alternatives", ("A\x1fB",)),
        ("tmdb_id", "862"),
        ("movie_id", 2**70),
        ("imdb_id", ""),  # "" and None are one value in the column
        ("title", "lone \ud800 surrogate"),  # JSON allows it; UTF-8 cannot hold it
        ("genres", ("Drama", 7)),
    ],
)
def test_values_the_columns_cannot_hold_are_never_cached(tmp_path, cache, odd) -> None:
    field, value = odd
    movies = _movies()
    raw = [[m.movie_id, m.title, m.year, list(m.genres), list(m.alternatives), m.imdb_id, m.tmdb_id] for m in movies]
    column = ["movie_id", "title", "year", "genres", "alternatives", "imdb_id", "tmdb_id"].index(field)
    raw[1][column] = list(value) if isinstance(value, tuple) else value
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"name": "odd", "movies": raw}), encoding="utf-8")
    first, second = Catalog.from_json(path), Catalog.from_json(path)  # loads as without a cache ...
    assert not list(cache.glob("*.npz")) and second._columns is None  # ... and is parsed every time
    year, genres, alternatives, imdb_id, tmdb_id = raw[1][2:]
    odd = Movie(1, raw[1][0], raw[1][1], year, tuple(genres), tuple(alternatives), imdb_id, tmdb_id)
    assert second.movies == first.movies and second[1] == odd


def test_small_files_are_not_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    path = _write(tmp_path, _movies()[:3])
    assert catalog_columns.cache_path(path.read_bytes()) is None
    Catalog.from_json(path)
    assert not (tmp_path / "cache").exists()  # not even the folder


def test_the_shipped_catalog_is_cached_with_the_default_thresholds(tmp_path, monkeypatch) -> None:
    """Its parse and its search index (~0.1 s each) were on every launch's path to the first answer."""
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    assert Catalog.from_json(SHIPPED).search("matrix", limit=1)  # a first launch: writes both
    assert len(list((tmp_path / "cache" / "catalog").glob("columns-*.npz"))) == 1
    assert len(list((tmp_path / "cache" / "search").glob("index-*.npz"))) == 1
    again = Catalog.from_json(SHIPPED)  # the next launch reads them
    assert again._columns is not None and len(again) > 9000


def test_movies_are_made_lazily_once(tmp_path, cache) -> None:
    path = _write(tmp_path, _movies())
    parsed = Catalog.from_json(path)
    cached = Catalog.from_json(path)
    assert cached[2] == parsed[2] and cached[-1] == parsed[-1] and cached[np.int64(1)] == parsed[1]
    assert cached.by_movie_id(2571) == parsed.by_movie_id(2571) and cached.index_of(-3) == 4
    assert cached.by_movie_id(999) is None and cached.index_of(999) is None
    with pytest.raises(IndexError):
        cached[6]
    assert cached._movies is None and sorted(cached._columns._made) == [1, 2, 5]  # only those asked for
    first = cached[2]
    assert cached.movies[2] is first and cached[2] is first  # one object per movie, before and after `movies`
    assert cached[1:3] == parsed[1:3] and list(cached) == parsed.movies
    assert cached == parsed and repr(cached) == "Catalog('test-release', 6 movies)"


def test_threads_making_movies_at_once_share_the_objects(tmp_path, cache) -> None:
    path = _write(tmp_path, [Movie(i, 100 + i, f"Film {i}", 2000, ("Drama",), ()) for i in range(2000)])
    Catalog.from_json(path)
    cached = Catalog.from_json(path)
    assert cached._columns is not None
    seen: list[list[Movie]] = []
    threads = [threading.Thread(target=lambda: seen.append([cached[i] for i in range(2000)])) for _ in range(3)]
    threads.append(threading.Thread(target=lambda: seen.append(cached._columns.all())))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(movie is cached.movies[i] for got in seen for i, movie in enumerate(got))


def test_shipped_catalog_same_movies_and_search_answers_from_the_cache(cache, monkeypatch) -> None:
    """The 9.7k-movie catalog through both caches (columns + search index): the answers JSON gives."""
    monkeypatch.setattr(catalog_module, "SEARCH_INDEX_DISK_CACHE_MIN", 0)
    parsed = Catalog.from_json(SHIPPED)
    expected = [[m.movie_id for m in parsed.search(query, limit=10)] for query in QUERIES]
    cached = Catalog.from_json(SHIPPED)
    assert cached._columns is not None and len(cached) > 9000
    answers = [[m.movie_id for m in cached.search(query, limit=10)] for query in QUERIES]
    assert answers == expected and expected[0][0] == 2571  # "matirx" -> The Matrix
    assert cached._movies is None and len(cached._columns._made) <= 10 * len(QUERIES)  # only the results
    _same(cached, parsed)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def _damage(path: Path, how: str) -> None:
    good = path.read_bytes()
    if how == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif how == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        arrays = _arrays(path)
        if how == "foreign":
            arrays["key"] = np.asarray("another catalog")
        elif how == "repeated id":
            arrays["ids"][1] = arrays["ids"][0]
        elif how == "ends":
            arrays["titles_ends"][0] += 1  # a title that swallows its separator
        elif how == "newline":
            arrays["titles"][0] = ord("\n")  # one string more than movies
        elif how == "utf-8":
            arrays["titles"][0] = 0xFF
        elif how == "dtype":
            arrays["years"] = arrays["years"].astype(np.float64)
        elif how == "length":
            arrays["tmdb_ids"] = arrays["tmdb_ids"][:-1]
        elif how == "missing":
            del arrays["genres_ends"]
        elif how == "pickle":
            arrays["popularity"] = np.asarray([{"x": 1}], dtype=object)
        _save(path, arrays)


@pytest.mark.parametrize(
    "how",
    [
        "garbage",
        "truncated",
        "empty",
        "foreign",
        "repeated id",
        "ends",
        "newline",
        "utf-8",
        "dtype",
        "length",
        "missing",
        "pickle",
    ],
)
def test_damaged_cache_file_is_rebuilt(tmp_path, cache, how) -> None:
    path = _write(tmp_path, _movies())
    parsed = Catalog.from_json(path)
    (file,) = cache.glob("columns-*.npz")
    _damage(file, how)
    located = catalog_columns.cache_path(path.read_bytes())
    assert located is not None and located[0] == file
    assert catalog_columns.read(*located) is None  # never trusted
    again = Catalog.from_json(path)  # no crash, the JSON's answers ...
    assert again._columns is None
    _same(again, parsed)
    rebuilt = catalog_columns.read(*located)  # ... and the file replaced
    assert rebuilt is not None
    _same(rebuilt, parsed)


def test_cache_key_follows_the_file_and_the_code(tmp_path, cache, monkeypatch) -> None:
    path = _write(tmp_path, _movies())
    data = path.read_bytes()
    first = catalog_columns.cache_path(data)
    assert first is not None and first == catalog_columns.cache_path(path.read_bytes())
    assert catalog_columns.cache_path(data.replace(b"Toy Story", b"Toy Storz")) != first
    monkeypatch.setattr(Catalog, "_parse_json", classmethod(lambda cls, path, data: None))
    assert catalog_columns.cache_path(data) != first  # changed parsing never reads an old file


def test_edited_catalog_file_is_parsed_again(tmp_path, cache) -> None:
    movies = [Movie(i, 100 + i, f"Film {i}", 2000, ("Drama",), ()) for i in range(4)]
    path = _write(tmp_path, movies)
    assert Catalog.from_json(path)[0].title == "Film 0"
    assert Catalog.from_json(path)._columns is not None
    path.write_text(path.read_text(encoding="utf-8").replace("Film 0", "Film Zero"), encoding="utf-8")
    with pytest.raises(DataFormatError, match="fingerprint"):  # the recorded fingerprint no longer matches
        Catalog.from_json(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    del payload["fingerprint"]
    path.write_text(json.dumps(payload), encoding="utf-8")
    assert Catalog.from_json(path)[0].title == "Film Zero" and Catalog.from_json(path)[0].title == "Film Zero"


def test_unwritable_cache_still_loads(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(blocker))  # cache_dir() cannot create it
    monkeypatch.setattr(catalog_columns, "CATALOG_DISK_CACHE_MIN_BYTES", 0)
    path = _write(tmp_path, [Movie(i, 100 + i, f"Film {i}", 2000, ("Drama",), ()) for i in range(4)])
    assert Catalog.from_json(path)[3].title == "Film 3" and Catalog.from_json(path)._columns is None


def test_broken_catalog_files_still_say_what_is_wrong(tmp_path, cache) -> None:
    path = tmp_path / "catalog.json"
    for text in ("{not json", "[]", '{"movies": [[1]]}'):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataFormatError, match="not a valid catalog file"):
            Catalog.from_json(path)
    with pytest.raises(DataFormatError, match="not a valid catalog file"):
        Catalog.from_json(tmp_path / "missing.json")
    assert not cache.exists()
