"""Readers for every MovieLens release format, with format auto-detection.

Formats:
- ML-100K: `u.data` (tab-separated user, item, rating, timestamp), `u.item` (pipe-separated,
  latin-1, 19 genre flags), `u.genre`.
- ML-1M (and ML-10M): `ratings.dat`, `movies.dat` (`::`-separated, latin-1; ML-10M is UTF-8).
- The CSV family (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m): `ratings.csv`,
  `movies.csv`, `links.csv` (IMDb / TMDb ids).
A folder or a `.zip` of a release works. Every malformed line raises `DataFormatError`
naming the file and the line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .catalog import Catalog, Movie, build_catalog
from .errors import DataFormatError

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

FORMAT_MARKERS = {
    "ml-100k": ("u.data", "u.item"),
    "ml-1m": ("ratings.dat", "movies.dat"),
    "csv": ("ratings.csv", "movies.csv"),
}


@dataclass
class Dataset:
    """One release: its catalog and every rating, in source-file order (the tie-break order)."""

    name: str
    format: str
    catalog: Catalog
    user_ids: np.ndarray  # (n_ratings,) int64, the release's user ids
    items: np.ndarray  # (n_ratings,) int64, catalog indices
    ratings: np.ndarray  # (n_ratings,) float32
    timestamps: np.ndarray  # (n_ratings,) int64, seconds since the epoch
    source: str = ""
    fingerprint: str = field(default="")

    @property
    def n_ratings(self) -> int:
        return int(self.items.shape[0])

    @property
    def n_users(self) -> int:
        return int(np.unique(self.user_ids).shape[0])


# --------------------------------------------------------------------- file access
class _Source:
    """A release folder, or a zip file (the release folder may be nested inside it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise DataFormatError(path, None, "not a folder or a .zip of a MovieLens release")
            self.zip = zipfile.ZipFile(path)
            names = self.zip.namelist()
            for fmt_files in FORMAT_MARKERS.values():
                for name in names:
                    pure = PurePosixPath(name)
                    if pure.name == fmt_files[0]:
                        self.prefix = str(pure.parent) + "/" if str(pure.parent) != "." else ""
                        return
        elif not path.is_dir():
            raise DataFormatError(path, None, "no such folder or file")

    def exists(self, name: str) -> bool:
        if self.zip is not None:
            return (self.prefix + name) in self.zip.namelist()
        return (self.path / name).is_file()

    def display(self, name: str) -> str:
        return f"{self.path}!{self.prefix}{name}" if self.zip is not None else str(self.path / name)

    def read_bytes(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(self.prefix + name)
        return (self.path / name).read_bytes()

    def text(self, name: str, encoding: str) -> str:
        data = self.read_bytes(name)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise DataFormatError(self.display(name), line, f"not valid {encoding} text") from exc


def detect_format(path: str | Path) -> str:
    """'ml-100k', 'ml-1m' or 'csv' from the files present; a clear error otherwise."""
    source = _Source(Path(path))
    for fmt, markers in FORMAT_MARKERS.items():
        if all(source.exists(m) for m in markers):
            return fmt
    expected = "; ".join(f"{fmt}: {', '.join(m)}" for fmt, m in FORMAT_MARKERS.items())
    raise DataFormatError(path, None, f"no MovieLens release found here (expected one of: {expected})")


# ------------------------------------------------------------------ line parsing
def _int(value: str, file: str, line: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataFormatError(file, line, f"{what} {value!r} is not a whole number") from None


def _float(value: str, file: str, line: int, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DataFormatError(file, line, f"{what} {value!r} is not a number") from None
    if not np.isfinite(number):
        raise DataFormatError(file, line, f"{what} {value!r} is not a finite number")
    return number


def _split_lines(
    text: str, sep: str, width: int, file: str, min_width: int | None = None
) -> Iterator[tuple[int, list[str]]]:
    min_width = width if min_width is None else min_width
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if not (min_width <= len(parts) <= width) and not (width == -1 and len(parts) >= min_width):
            raise DataFormatError(file, number, f"expected {width} fields separated by {sep!r}, found {len(parts)}")
        yield number, parts


def _csv_rows(source: _Source, name: str, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    file = source.display(name)
    reader = csv.reader(io.StringIO(source.text(name, "utf-8-sig"), newline=""))
    try:
        first = next(reader)
    except StopIteration:
        raise DataFormatError(file, 1, "empty file (expected a header line)") from None
    except csv.Error as exc:
        raise DataFormatError(file, 1, f"malformed CSV: {exc}") from None
    if tuple(h.strip() for h in first[: len(header)]) != header:
        raise DataFormatError(file, 1, f"header should start with {','.join(header)}, found {','.join(first)}")
    try:
        for row in reader:
            if not row:
                continue
            if len(row) < len(header):
                raise DataFormatError(file, reader.line_num, f"expected {len(header)} fields, found {len(row)}")
            yield reader.line_num, row
    except csv.Error as exc:
        raise DataFormatError(file, reader.line_num, f"malformed CSV: {exc}") from None


# ----------------------------------------------------------------- catalog readers
def _catalog_100k(source: _Source) -> Catalog:
    file = source.display("u.item")
    genres = list(ML100K_GENRES)
    if source.exists("u.genre"):
        listed = [
            parts[0] for _, parts in _split_lines(source.text("u.genre", "latin-1"), "|", 2, source.display("u.genre"))
        ]
        if listed:
            genres = listed
    rows = []
    seen: set[int] = set()
    for number, parts in _split_lines(source.text("u.item", "latin-1"), "|", 5 + len(genres), file):
        movie_id = _int(parts[0], file, number, "movie id")
        if movie_id in seen:
            raise DataFormatError(file, number, f"movie id {movie_id} appears twice")
        seen.add(movie_id)
        flags = parts[5:]
        if any(flag not in ("0", "1") for flag in flags):
            raise DataFormatError(file, number, "genre flags must be 0 or 1")
        rows.append((movie_id, parts[1], [g for g, flag in zip(genres, flags, strict=True) if flag == "1"]))
    if not rows:
        raise DataFormatError(file, None, "no movies in file")
    return build_catalog(rows, name="ml-100k")


def _catalog_1m(source: _Source) -> Catalog:
    file = source.display("movies.dat")
    raw = source.read_bytes("movies.dat")
    try:
        text = raw.decode("utf-8")  # ML-10M is UTF-8; ML-1M is latin-1
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    rows = []
    seen: set[int] = set()
    for number, parts in _split_lines(text, "::", 3, file):
        movie_id = _int(parts[0], file, number, "movie id")
        if movie_id in seen:
            raise DataFormatError(file, number, f"movie id {movie_id} appears twice")
        seen.add(movie_id)
        rows.append((movie_id, parts[1], parts[2].split("|")))
    if not rows:
        raise DataFormatError(file, None, "no movies in file")
    return build_catalog(rows, name="ml-1m")


def _catalog_csv(source: _Source) -> Catalog:
    file = source.display("movies.csv")
    rows = []
    seen: set[int] = set()
    for number, row in _csv_rows(source, "movies.csv", ("movieId", "title", "genres")):
        movie_id = _int(row[0], file, number, "movie id")
        if movie_id in seen:
            raise DataFormatError(file, number, f"movie id {movie_id} appears twice")
        seen.add(movie_id)
        rows.append((movie_id, row[1], row[2].split("|")))
    if not rows:
        raise DataFormatError(file, None, "no movies in file")
    catalog = build_catalog(rows, name="movielens")
    if source.exists("links.csv"):
        links_file = source.display("links.csv")
        links: dict[int, tuple[str | None, int | None]] = {}
        for number, row in _csv_rows(source, "links.csv", ("movieId", "imdbId", "tmdbId")):
            movie_id = _int(row[0], links_file, number, "movie id")
            imdb = f"tt{int(row[1]):07d}" if row[1].strip().isdigit() else None
            tmdb = int(row[2]) if row[2].strip().isdigit() else None
            links[movie_id] = (imdb, tmdb)
        movies = [
            Movie(m.index, m.movie_id, m.title, m.year, m.genres, m.alternatives, *links.get(m.movie_id, (None, None)))
            for m in catalog.movies
        ]
        catalog = Catalog(movies, name=catalog.name)
    return catalog


# ------------------------------------------------------------------ rating readers
def _ratings(
    rows: Iterator[tuple[int, list[str]]], file: str, catalog: Catalog, columns: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    user_col, item_col, rating_col, time_col = columns
    users: list[int] = []
    items: list[int] = []
    ratings: list[float] = []
    times: list[int] = []
    index_of = {m.movie_id: m.index for m in catalog.movies}
    for number, parts in rows:
        movie_id = _int(parts[item_col], file, number, "movie id")
        index = index_of.get(movie_id)
        if index is None:
            raise DataFormatError(file, number, f"movie id {movie_id} is not in the movie list")
        users.append(_int(parts[user_col], file, number, "user id"))
        items.append(index)
        ratings.append(_float(parts[rating_col], file, number, "rating"))
        times.append(_int(parts[time_col].strip(), file, number, "timestamp"))
    if not users:
        raise DataFormatError(file, None, "no ratings in file")
    return (
        np.asarray(users, dtype=np.int64),
        np.asarray(items, dtype=np.int64),
        np.asarray(ratings, dtype=np.float32),
        np.asarray(times, dtype=np.int64),
    )


def load_dataset(path: str | Path) -> Dataset:
    """Read a MovieLens release (folder or .zip), auto-detecting its format."""
    path = Path(path).expanduser()
    fmt = detect_format(path)
    source = _Source(path)
    if fmt == "ml-100k":
        catalog = _catalog_100k(source)
        ratings_name = "u.data"
        rows = _split_lines(source.text(ratings_name, "latin-1"), "\t", 4, source.display(ratings_name))
    elif fmt == "ml-1m":
        catalog = _catalog_1m(source)
        ratings_name = "ratings.dat"
        rows = _split_lines(source.text(ratings_name, "latin-1"), "::", 4, source.display(ratings_name))
    else:
        catalog = _catalog_csv(source)
        ratings_name = "ratings.csv"
        rows = _csv_rows(source, ratings_name, ("userId", "movieId", "rating", "timestamp"))
    users, items, ratings, times = _ratings(rows, source.display(ratings_name), catalog, (0, 1, 2, 3))
    name = path.stem if path.is_file() else path.name
    catalog.name = name
    # catalog.popularity stays zero here: evaluation fills it from training data only
    # (see sequences.Split.popularity), the shipped app catalog from all of it.
    digest = hashlib.sha256(source.read_bytes(ratings_name)).hexdigest()[:16]
    return Dataset(name, fmt, catalog, users, items, ratings, times, source=str(path), fingerprint=digest)
