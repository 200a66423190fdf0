"""Title parsing, normalisation and resolution (the code every title match goes through)."""

from __future__ import annotations

import pytest

from dualrec_tui.core.catalog import Catalog, Movie, build_catalog, normalize_title, parse_title


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Matrix, The (1999)", "The Matrix (1999)"),
        ("Matrix, The", "the matrix"),
        ("Cité des enfants perdus, La", "La Cite des Enfants Perdus"),
        ("Beauty & the Beast", "Beauty and the Beast"),
        ("Star Wars: Episode IV - A New Hope", "star wars episode iv a new hope"),
        ("Homme, L'", "L'Homme"),
    ],
)
def test_normalize_equal(a: str, b: str) -> None:
    assert normalize_title(parse_title(a).title) == normalize_title(parse_title(b).title)


def test_normalize_keeps_numbers_apart() -> None:
    assert normalize_title("Toy Story 2") != normalize_title("Toy Story")


@pytest.mark.parametrize(
    ("raw", "title", "year", "alternatives"),
    [
        ("Matrix, The (1999)", "The Matrix", 1999, ()),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "The City of Lost Children",
            1995,
            ("La Cité des enfants perdus",),
        ),
        ("Seven (a.k.a. Se7en) (1995)", "Seven", 1995, ("Se7en",)),
        ("Shawshank Redemption, The", "The Shawshank Redemption", None, ()),
        ("Fawlty Towers (1975-1979)", "Fawlty Towers", 1975, ()),
        ("Stranger Things (2016– )", "Stranger Things", 2016, ()),
        ("Babylon 5", "Babylon 5", None, ()),
        ("2001: A Space Odyssey (1968)", "2001: A Space Odyssey", 1968, ()),
        ("Blade Runner 2049", "Blade Runner", 2049, ()),
        ("  Heat   (1995) ", "Heat", 1995, ()),
        ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009, ()),
    ],
)
def test_parse_title(raw: str, title: str, year: int | None, alternatives: tuple[str, ...]) -> None:
    parsed = parse_title(raw)
    assert (parsed.title, parsed.year, parsed.alternatives) == (title, year, alternatives)


def _catalog() -> Catalog:
    rows = [
        (1, "Matrix, The (1999)", ["Action", "Sci-Fi"]),
        (2, "Toy Story (1995)", ["Animation"]),
        (3, "Toy Story 2 (1999)", ["Animation"]),
        (4, "Toy Story 3 (2010)", ["Animation"]),
        (5, "City of Lost Children, The (Cité des enfants perdus, La) (1995)", ["Fantasy"]),
        (6, "Hamlet (1948)", ["Drama"]),
        (7, "Hamlet (1996)", ["Drama"]),
        (8, "Godfather, The (1972)", ["Crime"]),
        (9, "Godfather: Part II, The (1974)", ["Crime"]),
        (10, "Rocky III (1982)", ["Drama"]),
        (11, "Rocky II (1979)", ["Drama"]),
    ]
    catalog = build_catalog(rows, name="sample")
    catalog.popularity = [10, 5, 5, 5, 5, 1, 9, 10, 8, 3, 3]
    return catalog


def test_resolve_exact_title_and_year() -> None:
    resolution = _catalog().resolve("The Matrix (1999)")
    assert (resolution.movie.movie_id, resolution.method) == (1, "exact")
    assert _catalog().resolve("Matrix, The (1999)").movie.movie_id == 1


def test_resolve_title_without_year_prefers_popular_remake() -> None:
    resolution = _catalog().resolve("Hamlet")
    assert (resolution.movie.movie_id, resolution.method) == (7, "title")
    assert _catalog().resolve("Hamlet (1948)").movie.movie_id == 6


def test_resolve_alternative_title() -> None:
    assert _catalog().resolve("La Cité des enfants perdus (1995)").movie.movie_id == 5


def test_resolve_fuzzy_typo() -> None:
    resolution = _catalog().resolve("The Godfathr (1972)")
    assert resolution.method == "fuzzy" and resolution.movie.movie_id == 8 and resolution.score >= 90


@pytest.mark.parametrize(
    ("text", "movie_id"),
    [("Toy Story 2 (1999)", 3), ("Toy Story (1995)", 2), ("Toy Story 3", 4), ("Toy Stroy 2", 3), ("Toy Stroy 3", 4)],
)
def test_sequels_never_confused(text: str, movie_id: int) -> None:
    assert _catalog().resolve(text).movie.movie_id == movie_id


def test_missing_sequel_does_not_resolve_to_another() -> None:
    assert _catalog().resolve("Toy Story 4 (2019)").movie is None
    assert _catalog().resolve("Godfather: Part III, The (1990)").movie is None


def test_unknown_title_is_none() -> None:
    resolution = _catalog().resolve("A Movie That Does Not Exist (2003)")
    assert resolution.movie is None and resolution.method == "none"


def test_json_round_trip(tmp_path) -> None:
    catalog = _catalog()
    catalog.to_json(tmp_path / "catalog.json")
    again = Catalog.from_json(tmp_path / "catalog.json")
    assert again.fingerprint == catalog.fingerprint and again.movies == catalog.movies
    assert again.popularity == catalog.popularity


# ------------------------------------------------------------------------ search
def _search_catalog() -> Catalog:
    rows = [
        (1, "Shawshank Redemption, The (1994)", ["Drama"]),
        (2, "Matrix, The (1999)", ["Sci-Fi"]),
        (3, "Matrix Reloaded, The (2003)", ["Sci-Fi"]),
        (4, "WALL·E (2008)", ["Animation"]),
        (5, "Wall Street (1987)", ["Drama"]),
        (6, "Seven (a.k.a. Se7en) (1995)", ["Thriller"]),
        (7, "Seven Samurai (Shichinin no samurai) (1954)", ["Action"]),
        (8, "Spider-Man (2002)", ["Action"]),
        (9, "Superman (1978)", ["Action"]),
        (10, "Alien (1979)", ["Horror"]),
        (11, "Aliens (1986)", ["Horror"]),
        (12, "Toy Story (1995)", ["Animation"]),
        (13, "Toy Story 2 (1999)", ["Animation"]),
        (14, "Hamlet (1948)", ["Drama"]),
        (15, "Hamlet (1996)", ["Drama"]),
    ]
    catalog = build_catalog(rows, name="search")
    catalog.popularity = [50, 60, 20, 30, 10, 40, 20, 30, 15, 30, 25, 50, 30, 2, 9]
    return catalog


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("shawshenk", "The Shawshank Redemption (1994)"),  # one-word typo
        ("matirx", "The Matrix (1999)"),  # swapped letters
        ("walle", "WALL·E (2008)"),  # words run together
        ("se7en", "Seven (1995)"),  # digit as a letter, and the a.k.a. title
        ("spiderman", "Spider-Man (2002)"),  # not Superman
        ("shaws", "The Shawshank Redemption (1994)"),  # an unfinished word
        ("shawhsa", "The Shawshank Redemption (1994)"),  # an unfinished word with a typo
        ("spidreman", "Spider-Man (2002)"),  # run together and a typo
        ("Matrix, The", "The Matrix (1999)"),
        ("the matrix reloaded", "The Matrix Reloaded (2003)"),
        ("alien", "Alien (1979)"),  # the whole title beats a longer one
        ("toy story 2", "Toy Story 2 (1999)"),
        ("hamlet 1948", "Hamlet (1948)"),  # a year picks the version
        ("Hamlet (1996)", "Hamlet (1996)"),
    ],
)
def test_search_finds_first(query: str, first: str) -> None:
    results = _search_catalog().search(query, limit=5)
    assert results and results[0].label == first, [m.label for m in results]


def test_search_typo_does_not_find_a_different_word() -> None:
    labels = [m.label for m in _search_catalog().search("spiderman", limit=5)]
    assert "Superman (1978)" not in labels


def test_search_nothing_and_limits() -> None:
    catalog = _search_catalog()
    assert catalog.search("", limit=5) == [] and catalog.search("  !! ", limit=5) == []
    assert catalog.search("zzzzqqq", limit=5) == []
    assert len(catalog.search("a", limit=3)) <= 3
    assert catalog.search("matrix", limit=0) == []


def test_search_shipped_catalog_issue_examples() -> None:
    """The five queries issue #11 found broken, on the catalog the app ships."""
    from pathlib import Path

    catalog = Catalog.from_json(Path(__file__).resolve().parents[1] / "models" / "catalog.json")
    expected = {
        "shawshenk": "The Shawshank Redemption (1994)",
        "matirx": "The Matrix (1999)",
        "walle": "WALL·E (2008)",
        "se7en": "Seven (1995)",
        "spiderman": "Spider-Man (2002)",
    }
    for query, label in expected.items():
        assert catalog.search(query, limit=5)[0].label == label, query


# ------------------------------------------------------------------ the search index's disk cache
_CACHE_QUERIES = [
    "shawshenk",
    "matirx",
    "walle",
    "se7en",
    "spiderman",
    "shaws",
    "shawhsa",
    "spidreman",
    "Matrix, The",
    "the matrix reloaded",
    "alien",
    "toy story 2",
    "hamlet 1948",
    "Hamlet (1996)",
    "a",
    "zzzzqqq",
]


def _results(catalog: Catalog) -> list[list[int]]:
    return [[m.movie_id for m in catalog.search(query, limit=5)] for query in _CACHE_QUERIES]


@pytest.fixture
def index_cache(tmp_path, monkeypatch):
    """Every catalog counts as big (its search index goes to disk), in a cache folder of this test's own."""
    from dualrec_tui.core import catalog as catalog_module

    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(catalog_module, "SEARCH_INDEX_DISK_CACHE_MIN", 0)
    return tmp_path / "cache" / "search"


def test_search_index_from_disk_cache_gives_the_same_results(index_cache, monkeypatch) -> None:
    from dualrec_tui.core import catalog as catalog_module

    with monkeypatch.context() as patch:
        patch.setattr(catalog_module, "SEARCH_INDEX_DISK_CACHE_MIN", 10**9)
        built = _results(_search_catalog())  # in memory only
    assert not index_cache.exists()
    assert _results(_search_catalog()) == built  # builds and writes the file
    files = list(index_cache.glob("*.npz"))
    assert len(files) == 1
    located = catalog_module._index_cache_path(_search_catalog())

    def never(_movies: object) -> None:
        raise AssertionError("rebuilt a cached search index")

    with monkeypatch.context() as patch:  # a new process: the keys come from the file
        patch.setattr(catalog_module._SearchIndex, "build_keys", staticmethod(never))
        patch.setattr(catalog_module, "_index_cache_path", lambda _catalog: located)  # `never` has other code
        assert _results(_search_catalog()) == built
    assert built[0][0] == 1 and built[-1] == []  # the typo case found the Shawshank Redemption; nonsense nothing


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "inconsistent", "postings", "empty"])
def test_damaged_search_index_cache_is_rebuilt(index_cache, damage: str) -> None:
    import numpy as np

    from dualrec_tui.core import catalog as catalog_module

    built = _results(_search_catalog())
    (path,) = index_cache.glob("*.npz")
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        if damage == "foreign":
            arrays["name"] = np.asarray("another catalog")
        elif damage == "postings":
            arrays["posting_keys"] = arrays["posting_keys"][:-1]  # a word's inverted list cut short
        else:
            arrays["token_ids"] = arrays["token_ids"] + np.int32(10_000)  # word ids past the vocabulary
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
    _, name = catalog_module._index_cache_path(_search_catalog())
    assert catalog_module._read_index_keys(path, name, 15) is None
    assert _results(_search_catalog()) == built  # no crash, same answers
    assert path.read_bytes() != b"" and catalog_module._read_index_keys(path, name, 15) is not None  # replaced


def test_search_index_cache_key_follows_alternative_titles_and_code(index_cache, monkeypatch) -> None:
    from dualrec_tui.core import catalog as catalog_module

    catalog = _search_catalog()
    first = catalog_module._index_cache_path(catalog)
    assert first == catalog_module._index_cache_path(_search_catalog())  # stable across instances
    renamed = _search_catalog()
    movie = renamed.movies[5]  # Seven (a.k.a. Se7en): the fingerprint leaves alternative titles out
    renamed.movies[5] = Movie(movie.index, movie.movie_id, movie.title, movie.year, movie.genres, ("Sev3n",))
    assert renamed.fingerprint == catalog.fingerprint and catalog_module._index_cache_path(renamed) != first
    monkeypatch.setattr(catalog_module, "normalize_title", lambda text: text.lower())
    assert catalog_module._index_cache_path(catalog) != first


def test_unwritable_search_index_cache_still_searches(tmp_path, monkeypatch) -> None:
    from dualrec_tui.core import catalog as catalog_module

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(blocker))  # cache_dir() cannot create it
    monkeypatch.setattr(catalog_module, "SEARCH_INDEX_DISK_CACHE_MIN", 0)
    assert _search_catalog().search("matirx", limit=1)[0].label == "The Matrix (1999)"


def test_search_index_cache_round_trips_the_shipped_catalog(index_cache) -> None:
    """Every array and string of the 9.7k-movie catalog's keys comes back from the file as built."""
    from pathlib import Path

    import numpy as np

    from dualrec_tui.core import catalog as catalog_module

    catalog = Catalog.from_json(Path(__file__).resolve().parents[1] / "models" / "catalog.json")
    built = catalog_module._SearchIndex.build_keys(catalog.movies)
    assert catalog_module._cached_index_keys(catalog) is not None  # built and written
    path, name = catalog_module._index_cache_path(catalog)
    read = catalog_module._read_index_keys(path, name, len(catalog))
    assert read is not None and read.keys() == built.keys()
    for field, value in built.items():
        assert (read[field] == value) if isinstance(value, list) else np.array_equal(read[field], value), field
    assert len(read["words"]) > 5_000 and len(read["compact"]) >= len(catalog)
