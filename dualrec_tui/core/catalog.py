"""Movies, the catalog, and turning free text into catalog movies.

Everything that matches a title (the LLM answer resolver, the TUI search box, the importers)
goes through this module, so what evaluation measures is what the app ships.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

# One shared genre vocabulary. ML-100K / ML-1M say "Children's", the CSV family "Children".
GENRE_ALIASES = {"children's": "Children", "childrens": "Children"}
NO_GENRE = {"", "unknown", "(no genres listed)"}

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
        if bare and 1870 <= int(bare.group(1)) <= 2100 and bare.start() > 0:
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
        return f"{self.title} ({self.year})" if self.year else self.title

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


@dataclass
class Catalog:
    """All movies of one data release, in a fixed order: models address movies by `index`."""

    movies: list[Movie]
    name: str = "catalog"
    popularity: list[int] = field(default_factory=list)  # interactions per movie, for tie-breaks

    def __post_init__(self) -> None:
        for position, movie in enumerate(self.movies):
            if movie.index != position:
                raise ValueError(f"movie {movie.movie_id} has index {movie.index}, expected {position}")
        if not self.popularity:
            self.popularity = [0] * len(self.movies)
        self._by_id = {movie.movie_id: movie for movie in self.movies}
        if len(self._by_id) != len(self.movies):
            raise ValueError("duplicate movie ids in catalog")

    # ----------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self.movies)

    def __getitem__(self, index: int) -> Movie:
        return self.movies[index]

    def __iter__(self):
        return iter(self.movies)

    def by_movie_id(self, movie_id: int) -> Movie | None:
        return self._by_id.get(movie_id)

    def index_of(self, movie_id: int) -> int | None:
        movie = self._by_id.get(movie_id)
        return movie.index if movie else None

    @cached_property
    def by_imdb_id(self) -> dict[str, Movie]:
        return {m.imdb_id: m for m in self.movies if m.imdb_id}

    @cached_property
    def genre_vocabulary(self) -> list[str]:
        return sorted({g for m in self.movies for g in m.genres})

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of ids, titles, years and genres: models refuse a catalog that differs."""
        digest = hashlib.sha256()
        for m in self.movies:
            digest.update(f"{m.movie_id}\t{m.title}\t{m.year}\t{'|'.join(m.genres)}\n".encode())
        return digest.hexdigest()[:16]

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
        parsed = parse_title(text)
        year = year if year is not None else parsed.year
        names = [parsed.title, *parsed.alternatives]
        for name in names:
            candidates = self._keys.get(normalize_title(name), [])
            exact = [m for m in candidates if year is not None and m.year == year]
            if exact:
                return Resolution(self._best(exact, year), "exact", 100.0)
        for name in names:
            candidates = self._keys.get(normalize_title(name), [])
            if year is not None:
                candidates = [m for m in candidates if m.year is None or abs(m.year - year) <= 1]
            if candidates:
                return Resolution(self._best(candidates, year), "title", 100.0)
        from rapidfuzz import fuzz, process

        best: tuple[Movie, float] | None = None
        for name in names:
            key = normalize_title(name)
            if not key:
                continue
            for match_key, score, _ in process.extract(key, self._key_list, scorer=fuzz.ratio, limit=5):
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
    def _search_keys(self) -> list[str]:
        return [normalize_title(m.title) + (f" {m.year}" if m.year else "") for m in self.movies]

    def search(self, query: str, limit: int = 20) -> list[Movie]:
        """As-you-type search: tolerant of articles, punctuation, typos and a missing year."""
        from rapidfuzz import fuzz, process

        parsed = parse_title(query)
        key = normalize_title(parsed.title)
        if parsed.year:
            key = f"{key} {parsed.year}"
        if not key:
            return []
        hits = process.extract(key, self._search_keys, scorer=fuzz.token_set_ratio, limit=limit * 3, score_cutoff=60)
        results: list[tuple[float, Movie]] = []
        for _, score, index in hits:
            movie = self.movies[index]
            bonus = 0.0
            if self._search_keys[index].startswith(key):
                bonus += 10.0
            bonus += min(self.popularity[index], 300) / 60.0  # up to +5 for well-known movies
            results.append((score + bonus, movie))
        results.sort(key=lambda pair: (-pair[0], pair[1].index))
        return [movie for _, movie in results[:limit]]

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
        from .errors import DataFormatError

        try:
            with paused_gc():  # 87k movies are ~1M new objects: collections in between only cost time
                payload = json.loads(Path(path).read_text(encoding="utf-8"))
                movies = [
                    Movie(i, int(r[0]), str(r[1]), r[2], tuple(r[3]), tuple(r[4]), r[5], r[6])
                    for i, r in enumerate(payload["movies"])
                ]
                popularity = list(payload.get("popularity", []))
                catalog = cls(movies, name=payload.get("name", "catalog"), popularity=popularity)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
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
