"""Movies, the catalog, and turning free text into catalog movies.

Everything that matches a title (the LLM answer resolver, the TUI search box, the importers)
goes through this module, so what evaluation measures is what the app ships.
"""

from __future__ import annotations

import gc
import hashlib
import json
import operator
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

# One shared genre vocabulary. ML-100K / ML-1M say "Children's", the CSV family "Children".
GENRE_ALIASES = {"children's": "Children", "childrens": "Children"}
NO_GENRE = {"", "unknown", "(no genres listed)"}

# The years a movie (or a watch's film) may carry: one range for the catalog, the store and imports.
YEAR_MIN, YEAR_MAX = 1870, 2100


def plausible_year(year: int | None) -> bool:
    """Whether `year` can be a film's release year (None, unknown, is plausible)."""
    return year is None or YEAR_MIN <= int(year) <= YEAR_MAX


def title_label(title: str, year: int | None) -> str:
    """'The Matrix (1999)', or the bare title when the year is unknown: how every screen shows a film."""
    return f"{title} ({year})" if year else title


# Articles that MovieLens moves to the end of a title ("Matrix, The"), in several languages.
ARTICLES = (
    "the",
    "a",
    "an",
    "la",
    "le",
    "les",
    "l'",
    "el",
    "los",
    "las",
    "il",
    "lo",
    "gli",
    "i",
    "der",
    "die",
    "das",
    "den",
    "det",
    "de",
    "het",
    "een",
    "ein",
    "eine",
    "o",
    "os",
    "as",
    "un",
    "une",
)
_TRAILING_ARTICLE = re.compile(r",\s*(" + "|".join(re.escape(a) for a in ARTICLES) + r")\s*$", re.IGNORECASE)
_LEADING_ARTICLE = re.compile(r"^(?:" + "|".join(re.escape(a) for a in ARTICLES if a != "l'") + r")\s+|^l'")
_YEAR_SUFFIX = re.compile(r"\s*\(\s*(\d{4})\s*(?:[-–]\s*(?:\d{2,4})?\s*)?\)\s*$")
_BARE_YEAR_SUFFIX = re.compile(r"\s+(\d{4})\s*$")
_TRAILING_BRACKET = re.compile(r"\s*\(([^()]*)\)\s*$")
_AKA = re.compile(r"^\s*(?:a\.?k\.?a\.?|aka)\s+", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def _numbers(key: str) -> list[str]:
    return re.findall(r"\d+", key)


def canonical_genre(name: str) -> str | None:
    """Map a genre as spelled by any MovieLens release to the shared vocabulary (None = no genre)."""
    clean = name.strip()
    if clean.lower() in NO_GENRE:
        return None
    return GENRE_ALIASES.get(clean.lower(), clean)


def move_article_front(title: str) -> str:
    """'Matrix, The' -> 'The Matrix'; "Homme, L'" -> "L'Homme"."""
    match = _TRAILING_ARTICLE.search(title)
    if not match:
        return title.strip()
    article = title[match.start(1) : match.end(1)]
    stem = title[: match.start()].strip()
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{stem}"


@dataclass(frozen=True)
class ParsedTitle:
    """A raw title split into its parts: display title, alternatives in brackets, year."""

    title: str
    year: int | None
    alternatives: tuple[str, ...] = ()


def parse_title(raw: str) -> ParsedTitle:
    """Parse 'City of Lost Children, The (Cité des enfants perdus, La) (1995)'.

    Handles a missing year, a year range '(2006–2007)', a bare trailing year, and any number of
    bracketed alternative titles (including 'a.k.a.').
    """
    text = " ".join(raw.split())
    year: int | None = None
    match = _YEAR_SUFFIX.search(text)
    if match:
        year = int(match.group(1))
        text = text[: match.start()]
    alternatives: list[str] = []
    while True:
        bracket = _TRAILING_BRACKET.search(text)
        if not bracket or bracket.start() == 0:
            break
        inner = _AKA.sub("", bracket.group(1)).strip()
        if inner:
            alternatives.append(move_article_front(inner))
        text = text[: bracket.start()]
    if year is None:
        bare = _BARE_YEAR_SUFFIX.search(text)
        if bare and plausible_year(int(bare.group(1))) and bare.start() > 0:
            year = int(bare.group(1))
            text = text[: bare.start()]
    title = move_article_front(text.strip().rstrip(","))
    return ParsedTitle(title=title or raw.strip(), year=year, alternatives=tuple(reversed(alternatives)))


def normalize_title(text: str) -> str:
    """A matching key: lower case, no accents, no punctuation, no leading article, '&' = 'and'."""
    text = move_article_front(text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("&", " and ")
    text = _LEADING_ARTICLE.sub("", text.strip())
    return _NON_ALNUM.sub(" ", text).strip()


@dataclass(frozen=True)
class Movie:
    """One catalog movie. `movie_id` is the id of the source release; `index` its catalog position."""

    index: int
    movie_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    alternatives: tuple[str, ...] = ()
    imdb_id: str | None = None
    tmdb_id: int | None = None

    @property
    def label(self) -> str:
        """'The Matrix (1999)': how the app and the LLM prompt show a movie."""
        return title_label(self.title, self.year)

    @property
    def genre_text(self) -> str:
        return ", ".join(self.genres) if self.genres else "no genres listed"


@dataclass
class Resolution:
    """The outcome of resolving free text: the movie (or None), how, and the fuzzy score."""

    movie: Movie | None
    method: str  # "exact", "title", "fuzzy" or "none"
    score: float = 0.0


DEFAULT_FUZZY_THRESHOLD = 90.0


MISSING = -(2**63)  # an unknown year or TMDb id in a catalog's int64 columns
SEPARATOR = "\x1f"  # between one movie's genres, and between its alternative titles, in a text column


class _TextColumn:
    """Strings as one UTF-8 blob, newline-separated, with each string's end offset in bytes: reading a
    column costs no per-string work, and one string is decoded when asked for."""

    def __init__(self, blob: bytes, ends: Any) -> None:
        self.blob, self.ends = blob, ends

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, index: int) -> str:
        start = int(self.ends[index - 1]) + 1 if index else 0
        return self.blob[start : int(self.ends[index])].decode("utf-8")

    def all(self) -> list[str]:
        return self.blob.decode("utf-8").split("\n") if len(self.ends) else []


class _MovieColumns:
    """A catalog's movies as columns (read back from `catalog_columns`' disk cache): a `Movie` is made
    the first time it is asked for. `ids`, `years` and `tmdb_ids` are int64 arrays (`MISSING`: unknown);
    a movie's genres and alternative titles are joined by `SEPARATOR`, an unknown IMDb id is ""."""

    TEXTS = ("titles", "genres", "alternatives", "imdb_ids")

    def __init__(
        self,
        ids: Any,
        years: Any,
        tmdb_ids: Any,
        texts: dict[str, _TextColumn],  # titles, genres, alternatives, imdb_ids
        fingerprint: str,
    ) -> None:
        if {len(years), len(tmdb_ids), *(len(texts[name]) for name in self.TEXTS)} != {len(ids)}:
            raise ValueError("movie columns of different lengths")
        self.ids, self.years, self.tmdb_ids = ids, years, tmdb_ids
        self.titles, self.genres, self.alternatives, self.imdb_ids = (texts[name] for name in self.TEXTS)
        self.fingerprint = fingerprint
        self._made: dict[int, Movie] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def movie(self, index: int) -> Movie:
        """The movie at `index` (negative counts from the end), always the same object."""
        if index < 0:
            index += len(self.ids)
        if not 0 <= index < len(self.ids):
            raise IndexError(f"catalog index {index} out of range ({len(self.ids)} movies)")
        movie = self._made.get(index)
        if movie is None:  # setdefault: two threads asking at once still share one object
            movie = self._made.setdefault(index, self._make(index))
        return movie

    def _make(self, index: int) -> Movie:
        return self._movie(
            index,
            int(self.ids[index]),
            self.titles[index],
            int(self.years[index]),
            self.genres[index],
            self.alternatives[index],
            self.imdb_ids[index],
            int(self.tmdb_ids[index]),
        )

    @staticmethod
    def _movie(
        index: int, movie_id: int, title: str, year: int, genres: str, alternatives: str, imdb_id: str, tmdb_id: int
    ) -> Movie:
        return Movie(
            index,
            movie_id,
            title,
            None if year == MISSING else year,
            tuple(genres.split(SEPARATOR)) if genres else (),
            tuple(alternatives.split(SEPARATOR)) if alternatives else (),
            imdb_id or None,
            None if tmdb_id == MISSING else tmdb_id,
        )

    def all(self) -> list[Movie]:
        """Every movie, in order (the ones already made are kept): the columns decoded in one pass each."""
        columns = (
            self.ids.tolist(),
            self.titles.all(),
            self.years.tolist(),
            self.genres.all(),
            self.alternatives.all(),
            self.imdb_ids.all(),
            self.tmdb_ids.tolist(),
        )
        made, movie = self._made, self._movie
        with paused_gc():  # 87k movies: collections in between only cost time
            # setdefault, as in `movie`: whichever thread makes a movie first, every caller gets that object.
            return [
                made.get(index) or made.setdefault(index, movie(index, *row))
                for index, row in enumerate(zip(*columns, strict=True))
            ]

    def years_int32(self) -> Any:
        import numpy as np

        return np.where(self.years == MISSING, 0, self.years).astype(np.int32)


class Catalog:
    """All movies of one data release, in a fixed order: models address movies by `index`.

    Built from `Movie`s, or (by `from_json`, from a big catalog's disk cache) from their columns: then
    each `Movie` is made the first time it is asked for, and `movies` lists them all on first use, so a
    launch at 87k movies does not make 87k objects to show 20 search results (issue #13).
    """

    def __init__(
        self, movies: list[Movie] | _MovieColumns, name: str = "catalog", popularity: list[int] | None = None
    ) -> None:
        self._movies: list[Movie] | None
        self._columns: _MovieColumns | None
        self._by_id_map: dict[int, int] | None  # movie id -> index
        if isinstance(movies, _MovieColumns):
            # The reader checked the ids are distinct; the map is made on first use.
            self._movies, self._columns, self._by_id_map = None, movies, None
        else:
            for position, movie in enumerate(movies):
                if movie.index != position:
                    raise ValueError(f"movie {movie.movie_id} has index {movie.index}, expected {position}")
            self._movies, self._columns = movies, None
            self._by_id_map = {movie.movie_id: movie.index for movie in movies}
            if len(self._by_id_map) != len(movies):
                raise ValueError("duplicate movie ids in catalog")
        self.name = name
        self.popularity: list[int] = popularity if popularity else [0] * len(self)  # interactions per movie

    def __repr__(self) -> str:
        # Short: Textual describes a worker by repr() of its arguments, and the generated repr of an
        # 87k-movie catalog took 0.9 s on every log (benchmarks/bench_app.py).
        return f"Catalog({self.name!r}, {len(self):,} movies)"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Catalog)
        return (self.movies, self.name, self.popularity) == (other.movies, other.name, other.popularity)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    @property
    def movies(self) -> list[Movie]:
        if self._movies is None:
            assert self._columns is not None
            self._movies = self._columns.all()
        return self._movies

    # ----------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self._movies) if self._movies is not None else len(self._columns or ())

    def __getitem__(self, index: int) -> Movie:
        if self._movies is None and self._columns is not None:
            try:
                position = operator.index(index)
            except TypeError:  # a slice: every movie
                return self.movies[index]
            return self._columns.movie(position)
        return self.movies[index]

    def __iter__(self) -> Iterator[Movie]:
        return iter(self.movies)

    @property
    def _by_id(self) -> dict[int, int]:
        """Movie id -> index."""
        if self._by_id_map is None:
            assert self._columns is not None
            ids = self._columns.ids.tolist()
            self._by_id_map = dict(zip(ids, range(len(ids)), strict=True))
        return self._by_id_map

    def by_movie_id(self, movie_id: int) -> Movie | None:
        index = self._by_id.get(movie_id)
        return None if index is None else self[index]

    def index_of(self, movie_id: int) -> int | None:
        return self._by_id.get(movie_id)

    @cached_property
    def by_imdb_id(self) -> dict[str, Movie]:
        return {m.imdb_id: m for m in self.movies if m.imdb_id}

    @cached_property
    def genre_vocabulary(self) -> list[str]:
        return sorted({g for m in self.movies for g in m.genres})

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of ids, titles, years and genres: models refuse a catalog that differs."""
        if self._movies is None and self._columns is not None:
            return self._columns.fingerprint  # computed from these columns before they were cached
        digest = hashlib.sha256()
        for m in self.movies:
            digest.update(f"{m.movie_id}\t{m.title}\t{m.year}\t{'|'.join(m.genres)}\n".encode())
        return digest.hexdigest()[:16]

    def _years(self) -> Any:
        """Each movie's year as int32 (0: unknown), without making the movies."""
        import numpy as np

        if self._movies is None and self._columns is not None:
            return self._columns.years_int32()
        return np.fromiter((m.year or 0 for m in self.movies), dtype=np.int32, count=len(self))

    def _alternatives_text(self) -> bytes:
        """Every movie's alternative titles (`SEPARATOR` between titles, a newline between movies), UTF-8."""
        if self._movies is None and self._columns is not None:
            return self._columns.alternatives.blob
        return "\n".join(SEPARATOR.join(m.alternatives) for m in self.movies).encode()

    # -------------------------------------------------------------- resolution
    @cached_property
    def _keys(self) -> dict[str, list[Movie]]:
        """Normalised title (and every alternative title) -> movies."""
        keys: dict[str, list[Movie]] = {}
        for movie in self.movies:
            for name in (movie.title, *movie.alternatives):
                key = normalize_title(name)
                if key:
                    bucket = keys.setdefault(key, [])
                    if movie not in bucket:
                        bucket.append(movie)
        return keys

    @cached_property
    def _key_list(self) -> list[str]:
        return list(self._keys)

    def _best(self, candidates: Sequence[Movie], year: int | None) -> Movie:
        """Among same-title movies prefer the year closest to the asked one, then the popular one."""

        def rank(movie: Movie) -> tuple[int, int]:
            distance = abs((movie.year or 0) - year) if year and movie.year else 0
            return distance, -self.popularity[movie.index]

        return min(candidates, key=rank)

    def resolve(self, text: str, year: int | None = None, threshold: float = DEFAULT_FUZZY_THRESHOLD) -> Resolution:
        """Free text ('the matrix', 'Matrix, The (1999)') -> a catalog movie, or None.

        Exact title + year first, then exact title with any year (within 1 year when a year is
        given), then fuzzy (rapidfuzz) over normalised titles at `threshold` (0-100).
        """
        names, year, found = self._resolve_exact(text, year)
        if found is not None:
            return found
        from rapidfuzz import fuzz, process

        matches: list[list[tuple[str, float]]] = []
        for name in names:
            key = normalize_title(name)
            found_keys = process.extract(key, self._key_list, scorer=fuzz.ratio, limit=5) if key else []
            matches.append([(match_key, score) for match_key, score, _ in found_keys])
        return self._resolve_fuzzy(names, year, matches, threshold)

    def resolve_many(
        self,
        queries: Sequence[tuple[str, int | None]],
        threshold: float = DEFAULT_FUZZY_THRESHOLD,
        *,
        chunk: int = 512,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[Resolution]:
        """`resolve` for many (text, year) pairs at once, with the same answers.

        Why: an import of thousands of unmatched titles cost ~1.4 ms each through `process.extract`;
        here the fuzzy step scores each distinct key once, in chunks, with `process.cdist` (all cores).
        `progress(done, total)` is called after each chunk; `cancelled()` True stops with `InterruptedError`.
        """
        from rapidfuzz import fuzz, process

        results: list[Resolution | None] = []
        pending: list[tuple[int, list[str], int | None]] = []
        for position, (text, year) in enumerate(queries):
            names, resolved_year, found = self._resolve_exact(text, year)
            results.append(found)
            if found is None:
                pending.append((position, names, resolved_year))
        import numpy as np

        keys = sorted({normalize_title(name) for _, names, _ in pending for name in names} - {""}, key=len)
        best: dict[str, list[tuple[str, float]]] = {}
        total, done = len(keys), 0
        # fuzz.ratio >= threshold needs |a - b| <= r (a + b) for lengths a, b (r = 1 - threshold / 100): each
        # key is compared only with catalog keys of a length in that window (sorted by length: one slice).
        lengths = np.array([len(k) for k in self._key_list])
        by_length = np.argsort(lengths, kind="stable")
        sorted_lengths = lengths[by_length]
        r = max(0.0, 1.0 - threshold / 100.0)
        for begin in range(0, total, chunk):
            if cancelled is not None and cancelled():
                raise InterruptedError("cancelled")
            block = keys[begin : begin + chunk]
            low = int(np.floor(len(block[0]) * (1 - r) / (1 + r))) - 1
            high = int(np.ceil(len(block[-1]) * (1 + r) / (1 - r))) + 1 if r < 1 else int(lengths.max())
            start, stop = np.searchsorted(sorted_lengths, [low, high + 1])
            window = by_length[start:stop]
            choices = [self._key_list[i] for i in window.tolist()]
            scores = process.cdist(block, choices, scorer=fuzz.ratio, score_cutoff=threshold, workers=-1)
            for row, key in enumerate(block):
                hits = scores[row].nonzero()[0]
                ranked = sorted((-float(scores[row, j]), int(window[j])) for j in hits.tolist())[:5]
                best[key] = [(self._key_list[i], -negative) for negative, i in ranked]
            done += len(block)
            if progress is not None:
                progress(done, total)
        for position, names, year in pending:
            matches = [best.get(normalize_title(name), []) for name in names]
            results[position] = self._resolve_fuzzy(names, year, matches, threshold)
        return [r if r is not None else Resolution(None, "none", 0.0) for r in results]

    def _resolve_exact(self, text: str, year: int | None) -> tuple[list[str], int | None, Resolution | None]:
        """The exact steps of `resolve`: (names tried, year, the answer or None when fuzzy must decide)."""
        parsed = parse_title(text)
        year = year if year is not None else parsed.year
        names = [parsed.title, *parsed.alternatives]
        for name in names:
            candidates = self._keys.get(normalize_title(name), [])
            exact = [m for m in candidates if year is not None and m.year == year]
            if exact:
                return names, year, Resolution(self._best(exact, year), "exact", 100.0)
        for name in names:
            candidates = self._keys.get(normalize_title(name), [])
            if year is not None:
                candidates = [m for m in candidates if m.year is None or abs(m.year - year) <= 1]
            if candidates:
                return names, year, Resolution(self._best(candidates, year), "title", 100.0)
        return names, year, None

    def _resolve_fuzzy(
        self, names: list[str], year: int | None, matches: list[list[tuple[str, float]]], threshold: float
    ) -> Resolution:
        """The fuzzy step of `resolve`, given each name's best 5 (key, score) matches, best first."""
        best: tuple[Movie, float] | None = None
        for name, found in zip(names, matches, strict=True):
            key = normalize_title(name)
            if not key:
                continue
            for match_key, score in found:
                if score < threshold:
                    continue
                if _numbers(match_key) != _numbers(key):
                    continue  # "Toy Story 2" is never "Toy Story"
                candidates = self._keys[match_key]
                if year is not None:
                    candidates = [m for m in candidates if m.year is None or abs(m.year - year) <= 1]
                if candidates and (best is None or score > best[1]):
                    best = (self._best(candidates, year), score)
        if best:
            return Resolution(best[0], "fuzzy", float(best[1]))
        return Resolution(None, "none", 0.0)

    # ------------------------------------------------------------------ search
    @cached_property
    def _search_index(self) -> _SearchIndex:
        """Built on first use; a big catalog's keys come from (or go to) the disk cache (`_cached_index_keys`)."""
        with paused_gc():  # ~100k small strings and lists, nothing cyclic
            return _SearchIndex(self, _cached_index_keys(self))

    def search(self, query: str, limit: int = 20) -> list[Movie]:
        """As-you-type search: tolerant of articles, punctuation, typos, run-together words and a missing year.

        Scored per query token against title tokens (the last token may be an unfinished prefix) and on
        the whole title with spaces removed ("walle" = "WALL·E", "spiderman" = "Spider-Man"), over the
        title without its year and every alternative title ("se7en" finds "Seven (a.k.a. Se7en)").
        Digits count as letters. The index is built once (numpy arrays + rapidfuzz batch scorers).
        """
        return self._search_index.search(query, limit)

    # ----------------------------------------------------------- persistence
    def to_json(self, path: Path) -> None:
        """Write the catalog as JSON (shipped beside models so the app needs no data download)."""
        payload = {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "movies": [
                [m.movie_id, m.title, m.year, list(m.genres), list(m.alternatives), m.imdb_id, m.tmdb_id]
                for m in self.movies
            ],
            "popularity": self.popularity,
        }
        path.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")

    @classmethod
    def from_json(cls, path: Path) -> Catalog:
        """The catalog `to_json` wrote. A big file's parsed columns are kept in `cache_dir()`
        (`catalog_columns`): reading them back costs ~0.05 s at 87k movies instead of ~0.5 s."""
        from . import catalog_columns
        from .errors import DataFormatError

        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DataFormatError(path, None, f"not a valid catalog file ({exc})") from exc
        located = catalog_columns.cache_path(data)  # None: a small file, or no cache folder
        if located is not None and (cached := catalog_columns.read(*located)) is not None:
            return cached
        catalog = cls._parse_json(path, data)
        if located is not None:
            catalog_columns.write(*located, catalog)
        return catalog

    @classmethod
    def _parse_json(cls, path: Path, data: bytes) -> Catalog:
        from .errors import DataFormatError

        try:
            with paused_gc():  # 87k movies are ~1M new objects: collections in between only cost time
                payload = json.loads(data.decode("utf-8"))
                movies = [
                    Movie(i, int(r[0]), str(r[1]), r[2], tuple(r[3]), tuple(r[4]), r[5], r[6])
                    for i, r in enumerate(payload["movies"])
                ]
                popularity = list(payload.get("popularity", []))
                catalog = cls(movies, name=payload.get("name", "catalog"), popularity=popularity)
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise DataFormatError(path, None, f"not a valid catalog file ({exc})") from exc
        if payload.get("fingerprint") and payload["fingerprint"] != catalog.fingerprint:
            raise DataFormatError(path, None, "catalog content does not match its recorded fingerprint")
        return catalog


def build_catalog(rows: Iterable[tuple[int, str, Iterable[str]]], name: str = "catalog") -> Catalog:
    """Movies from (movie_id, raw title, raw genres) rows, in the given order."""
    movies = []
    with paused_gc():
        for index, (movie_id, raw_title, raw_genres) in enumerate(rows):
            parsed = parse_title(raw_title)
            genres = tuple(dict.fromkeys(g for g in (canonical_genre(x) for x in raw_genres) if g))
            movies.append(Movie(index, movie_id, parsed.title, parsed.year, genres, parsed.alternatives))
    return Catalog(movies, name=name)


# --------------------------------------------------------------------- search index
_MAX_CACHED_TOKENS = 64


def _typo_budget(length: int) -> int:
    """Edits (OSA: a swap of two letters is one) a query word of this length may contain."""
    if length <= 3:
        return 0
    if length <= 5:
        return 1
    return 2


class _SearchIndex:
    """Precomputed search keys of a catalog: built once, then every keystroke is a few numpy passes.

    Each movie has one key per name (title without year, and each alternative title), normalised
    like `normalize_title`. A key is a list of words drawn from one vocabulary of distinct words.
    A query word is scored against the vocabulary once (rapidfuzz batch OSA distance, cached while
    the user types the next word), spread to keys through the key -> word arrays, and averaged over
    the query's words (weighted by length). The whole query with spaces removed is also matched as a
    prefix of each key with spaces removed, so run-together words ("walle", "spiderman") match.
    """

    def __init__(self, catalog: Catalog, keys: dict[str, Any] | None = None) -> None:
        """`keys`: what `build_keys(catalog.movies)` returns (given when read from the disk cache)."""
        import numpy as np

        # The scorers load with the index, in the loader thread, not on the first keystroke (~15 ms).
        from rapidfuzz import process  # noqa: F401
        from rapidfuzz.distance import OSA  # noqa: F401

        keys = keys if keys is not None else self.build_keys(catalog.movies)
        words: list[str] = keys["words"]
        compact: list[str] = keys["compact"]
        self.movies = catalog  # a result makes only its own `Movie` (a catalog from columns makes them lazily)
        self.words = words
        self.word_lengths = np.fromiter((len(w) for w in words), dtype=np.float32, count=len(words))
        self.token_ids = keys["token_ids"]
        self.offsets = keys["offsets"]
        self.key_movie = keys["key_movie"]
        self.compact = compact
        # A key without spaces is its words run together: its length is the sum of theirs (no loop over keys).
        self.compact_lengths = (
            np.add.reduceat(self.word_lengths[self.token_ids], self.offsets)
            if len(self.offsets)
            else np.zeros(0, np.float32)
        )
        self.compact_order = keys["compact_order"]
        self._compact_order_list: list[int] = self.compact_order.tolist()  # bisect over compact, sorted
        key_movie = self.key_movie
        popularity = catalog.popularity
        pop = np.asarray(popularity, dtype=np.float32) if len(popularity) else np.zeros(len(catalog), np.float32)
        years = catalog._years()
        self.key_popularity = np.minimum(pop[key_movie], 300.0) / 60.0 if len(key_movie) else pop[:0]
        self.key_year = years[key_movie] if len(key_movie) else years[:0]
        self.years = set(years[years != 0].tolist())  # (np.unique would import numpy.ma: ~20 ms of a launch)
        # Words grouped by length: a typo budget of b only needs the words within b letters of the query.
        self.words_by_length: dict[int, tuple[list[str], Any]] = {}
        lengths = self.word_lengths.astype(np.int64)
        for length in np.flatnonzero(np.bincount(lengths)).tolist():
            positions = np.flatnonzero(lengths == length)
            self.words_by_length[length] = ([words[i] for i in positions.tolist()], positions)
        # Inverted lists (word -> keys holding it): a word matching few keys costs only those keys.
        self.posting_keys = keys["posting_keys"]
        self.posting_counts = np.bincount(self.token_ids, minlength=len(words)).astype(np.int64)
        self.posting_starts = np.concatenate(([0], np.cumsum(self.posting_counts)[:-1])).astype(np.int64)
        self._by_letter: dict[str, tuple[list[str], Any] | None] = {}
        self._truncated: dict[int, tuple[list[str], Any, Any]] = {}
        self._word_cache: dict[tuple[str, bool], Any] = {}

    @staticmethod
    def build_keys(movies: Sequence[Movie]) -> dict[str, Any]:
        """The part of the index that costs (`normalize_title` of every name: ~0.6 s at 87k movies), and
        all the disk cache keeps: words (sorted), token_ids/offsets (each key's words), key_movie (each
        key's movie index), compact (each key without spaces) and compact_order (compact sorted)."""
        import numpy as np

        key_movie: list[int] = []
        compact: list[str] = []
        token_ids: list[int] = []
        offsets: list[int] = []
        vocabulary: dict[str, int] = {}
        for movie in movies:
            seen: set[str] = set()
            for name in (movie.title, *movie.alternatives):
                key = normalize_title(name)
                if not key or key in seen:
                    continue
                seen.add(key)
                key_movie.append(movie.index)
                compact.append(key.replace(" ", ""))
                offsets.append(len(token_ids))
                token_ids.extend(vocabulary.setdefault(word, len(vocabulary)) for word in key.split())
        # Sorted vocabulary: words starting with a prefix form one contiguous range (bisect).
        order = sorted(vocabulary, key=vocabulary.__getitem__)
        words = sorted(order)
        rank = np.empty(len(order), dtype=np.int32)
        for position, word in enumerate(words):
            rank[vocabulary[word]] = position
        ids = rank[np.asarray(token_ids, dtype=np.int64)] if token_ids else np.zeros(0, np.int32)
        # The inverted lists: the keys holding each word, word by word (a stable sort: ~20 ms at 87k movies).
        per_key = np.diff(np.append(offsets, len(token_ids)))
        owner = np.repeat(np.arange(len(offsets), dtype=np.int64), per_key)
        return {
            "words": words,
            "token_ids": ids,
            "posting_keys": owner[np.argsort(ids, kind="stable")],
            "offsets": np.asarray(offsets, dtype=np.int64),
            "key_movie": np.asarray(key_movie, dtype=np.int64),
            "compact": compact,
            "compact_order": np.asarray(sorted(range(len(compact)), key=compact.__getitem__), dtype=np.int64),
        }

    # ---------------------------------------------------------------- pieces
    @cached_property
    def _words_array(self) -> Any:
        import numpy as np

        return np.asarray(self.words, dtype=str)

    def _compact_by_letter(self, letter: str) -> tuple[list[str], Any] | None:
        """The keys without spaces that start with `letter`, and their positions (None: no such key).

        Grouped on first use, one letter at a time: a launch only pays for the letters typed."""
        import numpy as np

        if letter not in self._by_letter:
            start = bisect_left(self._compact_order_list, letter, key=self.compact.__getitem__)
            stop = bisect_left(self._compact_order_list, letter + "\U0010ffff", key=self.compact.__getitem__)
            indices = np.sort(self.compact_order[start:stop])  # in key order, as the fallback always saw them
            self._by_letter[letter] = ([self.compact[i] for i in indices.tolist()], indices) if len(indices) else None
        return self._by_letter[letter]

    def _truncated_words(self, length: int) -> tuple[list[str], Any, Any]:
        """The words longer than `length` cut to it, deduplicated: (heads, word positions, head of each).

        Cutting keeps the sorted order, so duplicates are neighbours and one vectorised pass finds them.
        """
        import numpy as np

        cached = self._truncated.get(length)
        if cached is None:
            positions = np.flatnonzero(self.word_lengths > length)
            cut = self._words_array[positions].astype(f"<U{length}")
            if len(cut):
                changed = np.concatenate(([True], cut[1:] != cut[:-1]))
                heads = cut[changed].tolist()
                inverse = np.cumsum(changed) - 1
            else:
                heads, inverse = [], np.zeros(0, dtype=np.int64)
            cached = (heads, positions, inverse)
            self._truncated[length] = cached
        return cached

    def _word_scores(self, word: str, prefix: bool) -> Any:
        """Per key: how well its best word matches `word` (1 exact, less for typos/prefixes, 0 none)."""
        import numpy as np
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        cache_key = (word, prefix)
        cached = self._word_cache.get(cache_key)
        if cached is not None:
            return cached
        length = len(word)
        budget = _typo_budget(length)
        similarity = np.zeros(len(self.words), dtype=np.float32)
        if budget:
            for other in range(length - budget, length + budget + 1):
                bucket = self.words_by_length.get(other)
                if bucket is None:
                    continue
                choices, positions = bucket
                distance = process.cdist([word], choices, scorer=OSA.distance, score_cutoff=budget, dtype=np.int32)[0]
                close = distance <= budget
                similarity[positions[close]] = 1.0 - distance[close] / length
        else:
            position = bisect_left(self.words, word)
            if position < len(self.words) and self.words[position] == word:
                similarity[position] = 1.0
        if prefix:
            # An unfinished word: every vocabulary word it starts (slightly below a whole-word match) ...
            low = bisect_left(self.words, word)
            high = bisect_left(self.words, word + "\U0010ffff")
            if high > low:
                starts = 0.9 + 0.05 * length / self.word_lengths[low:high]
                similarity[low:high] = np.maximum(similarity[low:high], starts)
            # ... and, from four letters on, the start of a longer word with a typo in it.
            if length >= 4:
                heads, positions, inverse = self._truncated_words(length)
                typo_budget = 1 if length < 8 else 2
                if heads:
                    distance = process.cdist(
                        [word], heads, scorer=OSA.distance, score_cutoff=typo_budget, dtype=np.int32
                    )[0][inverse]
                    close = distance <= typo_budget
                    targets = positions[close]
                    similarity[targets] = np.maximum(similarity[targets], 0.85 * (1.0 - distance[close] / length))
        matched = np.flatnonzero(similarity)
        counts = self.posting_counts[matched]
        total = int(counts.sum())
        if total * 8 < len(self.token_ids):  # few keys: scatter their scores through the inverted lists
            scores = np.zeros(len(self.offsets), dtype=np.float32)
            if total:
                shift = self.posting_starts[matched] - (np.cumsum(counts) - counts)
                slots = np.arange(total, dtype=np.int64) + np.repeat(shift, counts)
                np.maximum.at(scores, self.posting_keys[slots], np.repeat(similarity[matched], counts))
        else:  # many keys: one pass over every key's words
            scores = np.maximum.reduceat(similarity[self.token_ids], self.offsets)
        if len(self._word_cache) >= _MAX_CACHED_TOKENS:
            self._word_cache.pop(next(iter(self._word_cache)))
        self._word_cache[cache_key] = scores
        return scores

    def _compact_scores(self, joined: str) -> Any:
        """Per key: 1 when the key without spaces is the query without spaces, 0.95 when it starts with it."""
        import numpy as np

        scores = np.zeros(len(self.compact), dtype=np.float32)
        low = bisect_left(self._compact_order_list, joined, key=self.compact.__getitem__)
        high = bisect_left(self._compact_order_list, joined + "\U0010ffff", key=self.compact.__getitem__)
        if high > low:
            keys = self.compact_order[low:high]
            scores[keys] = np.where(self.compact_lengths[keys] == len(joined), 1.0, 0.95)
        return scores

    # ---------------------------------------------------------------- search
    def search(self, query: str, limit: int) -> list[Movie]:
        import numpy as np

        if limit <= 0 or not len(self.offsets):
            return []
        parsed = parse_title(query)
        year = parsed.year if parsed.year in self.years else None
        text = parsed.title if year is not None else query
        for alternative in parsed.alternatives if year is not None else ():
            text = f"{text} {alternative}"
        key = normalize_title(text)
        words = key.split()
        if not words:
            return []
        open_word = not query.rstrip(")]").endswith(" ") and parsed.year is None
        weights = np.asarray([len(w) for w in words], dtype=np.float32)
        total = np.zeros(len(self.offsets), dtype=np.float32)
        for position, word in enumerate(words):
            total += weights[position] * self._word_scores(word, prefix=open_word and position == len(words) - 1)
        score = total / weights.sum()
        joined = "".join(words)
        if len(words) > 1 or len(joined) >= 4:
            np.maximum(score, self._compact_scores(joined), out=score)
        candidates = np.flatnonzero(score >= 0.6)
        if len(candidates) < limit and len(joined) >= 4:
            candidates = self._fallback(joined, score, candidates, limit)
        if not len(candidates):
            return []
        # Rank: match quality, then how much of the title the query covers, the year, and popularity.
        ranked = score[candidates] * 100.0
        ranked += 6.0 * np.minimum(len(joined) / self.compact_lengths[candidates], 1.0)
        ranked += self.key_popularity[candidates]
        if year is not None:
            gap = np.abs(self.key_year[candidates] - year)
            ranked += np.where(gap == 0, 10.0, np.where(gap == 1, 4.0, 0.0))
        keep = min(len(candidates), limit * 4)
        top = np.argpartition(-ranked, keep - 1)[:keep] if keep < len(candidates) else np.arange(len(candidates))
        order = sorted(top.tolist(), key=lambda i: (-ranked[i], int(self.key_movie[candidates[i]])))
        results: list[Movie] = []
        seen: set[int] = set()
        for i in order:
            movie_index = int(self.key_movie[candidates[i]])
            if movie_index not in seen:
                seen.add(movie_index)
                results.append(self.movies[movie_index])
                if len(results) == limit:
                    break
        return results

    def _fallback(self, joined: str, score: Any, candidates: Any, limit: int) -> Any:
        """Few word matches: the whole query, spaces removed, against whole keys with the same first
        letter (rapidfuzz ratio), for run-together words with a typo ("spidreman")."""
        import numpy as np
        from rapidfuzz import fuzz, process

        bucket = self._compact_by_letter(joined[:1])
        if bucket is None:
            return candidates
        choices, indices = bucket
        hits = process.extract(joined, choices, scorer=fuzz.ratio, score_cutoff=85, limit=limit * 2)
        extra = indices[[index for _, _, index in hits]] if hits else indices[:0]
        for (_, value, _), key in zip(hits, extra.tolist(), strict=True):
            score[key] = max(score[key], 0.9 * value / 100.0)
        # Only reached with few candidates: a set, not np.union1d (which imports numpy.ma, ~20 ms, on first use).
        return np.asarray(sorted({*candidates.tolist(), *extra.tolist()}), dtype=np.int64)


# The search index's keys on disk. 87k movies: building them costs ~0.6-0.9 s of a launch (issue #13);
# reading them back ~0.1 s. The shipped 9.7k catalog is cached too: its ~0.1 s build held the first answer
# back on every launch. Test-sized catalogs are not (nothing to gain).
SEARCH_INDEX_DISK_CACHE_MIN = 5_000  # movies
SEARCH_INDEX_FORMAT = 2  # bump when the file layout changes (code changes are hashed into the name)
_INDEX_ARRAYS = {
    "token_ids": "int32",
    "posting_keys": "int64",
    "offsets": "int64",
    "key_movie": "int64",
    "compact_order": "int64",
}


def _cached_index_keys(catalog: Catalog) -> dict[str, Any] | None:
    """`_SearchIndex.build_keys(catalog.movies)`, read from `cache_dir()` when a valid file is there and
    written there when not (big catalogs only). None: build them in memory, nothing on disk."""
    if len(catalog) < SEARCH_INDEX_DISK_CACHE_MIN:
        return None
    from .artifacts import write_atomically

    located = _index_cache_path(catalog)
    if located is None:
        return None
    path, name = located
    keys = _read_index_keys(path, name, len(catalog))
    if keys is None:  # missing, damaged, foreign or of an older layout: build it and replace the file
        keys = _SearchIndex.build_keys(catalog.movies)
        write_atomically(path, lambda partial: _write_index_keys(partial, name, keys))
    return keys


def _index_cache_path(catalog: Catalog) -> tuple[Path, str] | None:
    """(file, its full key): keyed by the catalog (the fingerprint plus the alternative titles, which it
    leaves out), the format, and the code that makes keys, so changed code never reads an old file."""
    from .artifacts import cache_dir, hash_code

    digest = hashlib.sha256(f"search-index|{SEARCH_INDEX_FORMAT}|{catalog.fingerprint}|".encode())
    digest.update(catalog._alternatives_text())
    for function in (_SearchIndex.build_keys, normalize_title, move_article_front):
        hash_code(digest, function.__code__)
    for pattern in (_TRAILING_ARTICLE, _LEADING_ARTICLE, _NON_ALNUM):
        digest.update(pattern.pattern.encode())
    name = digest.hexdigest()
    try:
        return cache_dir() / "search" / f"index-{name[:24]}.npz", name
    except OSError:
        return None


def _pack_strings(strings: list[str]) -> Any:
    """Strings as one UTF-8 byte array, newline-separated (keys never hold a newline): a fixed-width
    numpy unicode array would be as wide as the longest title, ~30x the bytes."""
    import numpy as np

    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _unpack_strings(packed: Any, count: int) -> list[str]:
    strings = packed.tobytes().decode("utf-8").split("\n") if count else []
    if len(strings) != count:
        raise ValueError(f"{len(strings)} strings, expected {count}")
    return strings


def _write_index_keys(path: Path, name: str, keys: dict[str, Any]) -> None:
    import numpy as np

    with path.open("wb") as handle:  # a file object: np.savez would add ".npz" to the temporary name
        np.savez(
            handle,
            name=np.asarray(name),
            words=_pack_strings(keys["words"]),
            word_count=np.asarray(len(keys["words"])),
            compact=_pack_strings(keys["compact"]),
            **{field: keys[field] for field in _INDEX_ARRAYS},
        )


def _read_index_keys(path: Path, name: str, movies: int) -> dict[str, Any] | None:
    """The keys in `path`, or None when it is missing, damaged, another catalog's or inconsistent."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["name"]) != name:
                return None
            keys: dict[str, Any] = {field: data[field] for field in _INDEX_ARRAYS}
            words = _unpack_strings(data["words"], int(data["word_count"]))
            compact = _unpack_strings(data["compact"], len(keys["offsets"]))
    except (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeDecodeError, zipfile.BadZipFile):
        return None
    token_ids, posting_keys, offsets, key_movie, order = (keys[field] for field in _INDEX_ARRAYS)
    consistent = (
        all(keys[field].dtype == dtype and keys[field].ndim == 1 for field, dtype in _INDEX_ARRAYS.items())
        and len(key_movie) == len(offsets) == len(order) == len(compact)
        and len(posting_keys) == len(token_ids)
        and (not len(token_ids) or (token_ids.min() >= 0 and token_ids.max() < len(words)))
        and (not len(posting_keys) or (posting_keys.min() >= 0 and posting_keys.max() < len(offsets)))
        and (not len(offsets) or (offsets[0] == 0 and offsets[-1] <= len(token_ids)))
        and bool(np.all(np.diff(offsets) > 0))
        and (not len(key_movie) or (key_movie.min() >= 0 and key_movie.max() < movies))
        and np.array_equal(np.sort(order), np.arange(len(order)))
    )
    if not consistent:
        return None
    keys.update(words=words, compact=compact)
    return keys


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a big catalog (nothing built here is cyclic):
    at 87k movies it otherwise runs dozens of full passes and takes ~40% of the load time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
