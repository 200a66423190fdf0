"""Readers for every MovieLens release format, with format auto-detection.

Formats:
- ML-100K: `u.data` (tab-separated user, item, rating, timestamp), `u.item` (pipe-separated,
  latin-1, 19 genre flags), `u.genre`.
- ML-1M (and ML-10M): `ratings.dat`, `movies.dat` (`::`-separated, latin-1; ML-10M is UTF-8).
- The CSV family (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m): `ratings.csv`,
  `movies.csv`, `links.csv` (IMDb / TMDb ids).
A folder or a `.zip` of a release works. Every malformed line raises `DataFormatError`
naming the file and the line.

Ratings files (up to 32M lines) are read by pyarrow's streaming CSV reader in blocks, and movie
ids are mapped to catalog indices with numpy: ml-32m loads in seconds, and peak memory stays
under twice the final arrays. pyarrow was measured against polars on a synthetic quarter of
ml-32m (docs/results.md, "Data loading"). When pyarrow rejects a file, or a value fails a check,
the file is read again by the line-by-line reader, which raises the error that names the line
(or, where only pyarrow was strict, returns the same data).
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

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

    def open(self, name: str) -> BinaryIO:
        """A binary stream of one member: big files are read in blocks, never whole."""
        if self.zip is not None:
            return self.zip.open(self.prefix + name)
        return (self.path / name).open("rb")

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
    return build_catalog(_movie_rows(_split_lines(text, "::", 3, file), file), name="ml-1m")


def _movie_rows(lines: Iterable[tuple[int, Sequence[str]]], file: str) -> list[tuple[int, str, list[str]]]:
    """(movie id, title, genres) from numbered (id, title, "A|B") fields; a repeated id names its line."""
    rows = []
    seen: set[int] = set()
    for number, parts in lines:
        movie_id = _int(parts[0], file, number, "movie id")
        if movie_id in seen:
            raise DataFormatError(file, number, f"movie id {movie_id} appears twice")
        seen.add(movie_id)
        rows.append((movie_id, parts[1], parts[2].split("|")))
    if not rows:
        raise DataFormatError(file, None, "no movies in file")
    return rows


def _catalog_csv(source: _Source) -> Catalog:
    file = source.display("movies.csv")
    rows = _movie_rows(_csv_rows(source, "movies.csv", ("movieId", "title", "genres")), file)
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


# ------------------------------------------------------------------ fast ratings reader
class _Fallback(Exception):
    """The fast reader cannot vouch for this file: read it line by line for an exact answer."""


class _HashingReader(io.RawIOBase):
    """A read-only stream that hashes what passes through, so the fingerprint costs no second read."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


# ratings files: (delimiter, header or None, columns of user, movie, rating, timestamp, total columns)
_RATINGS_LAYOUT = {
    "ml-100k": ("\t", None, (0, 1, 2, 3), 4),
    "ml-1m": (":", None, (0, 2, 4, 6), 7),  # "::" read as ":" with empty columns between
    "csv": (",", ("userId", "movieId", "rating", "timestamp"), (0, 1, 2, 3), 4),
}
_BLOCK_SIZE = 1 << 20  # 1 MiB: blocks in flight, not the block count, drive peak memory


def _movie_index_lookup(catalog: Catalog):
    """movie id array -> catalog index array (-1 = unknown), vectorised."""
    ids = np.fromiter((m.movie_id for m in catalog.movies), dtype=np.int64, count=len(catalog))
    if ids.min() >= 0 and ids.max() < 50_000_000:
        table = np.full(int(ids.max()) + 2, -1, dtype=np.int32)
        table[ids] = np.arange(ids.shape[0], dtype=np.int32)

        def lookup(movie_ids: np.ndarray) -> np.ndarray:
            inside = (movie_ids >= 0) & (movie_ids < table.shape[0] - 1)
            return np.where(inside, table[np.clip(movie_ids, 0, table.shape[0] - 1)], -1)

        return lookup
    order = np.argsort(ids)
    sorted_ids = ids[order]

    def lookup_sorted(movie_ids: np.ndarray) -> np.ndarray:
        position = np.clip(np.searchsorted(sorted_ids, movie_ids), 0, sorted_ids.shape[0] - 1)
        return np.where(sorted_ids[position] == movie_ids, order[position], -1).astype(np.int32)

    return lookup_sorted


class _Columns:
    """The four final arrays, filled block by block in place.

    Sized from an estimate of the row count (file size / mean line length of its first MiB, plus a
    margin). `np.empty` pages cost no memory until written, so the margin is free; the arrays grow
    (rarely) or shrink at the end with `ndarray.resize`, which reallocates in place (mremap) instead of
    copying. Peak memory is the final arrays plus a few blocks in flight: no list of blocks to join.
    """

    DTYPES = (np.int64, np.int64, np.float32, np.int64)

    def __init__(self, capacity: int) -> None:
        self.arrays = [np.empty(capacity, dtype=dtype) for dtype in self.DTYPES]
        self.size = 0

    def append(self, *values: np.ndarray) -> None:
        end = self.size + values[0].shape[0]
        if end > self.arrays[0].shape[0]:
            for array in self.arrays:
                array.resize(max(end, int(array.shape[0] * 1.5)), refcheck=False)
        for array, value in zip(self.arrays, values, strict=True):
            array[self.size : end] = value
        self.size = end

    def finish(self) -> list[np.ndarray]:
        for array in self.arrays:
            array.resize(self.size, refcheck=False)
        return self.arrays


def _estimate_rows(source: _Source, name: str) -> int:
    if source.zip is not None:
        size = source.zip.getinfo(source.prefix + name).file_size
    else:
        size = (source.path / name).stat().st_size
    with source.open(name) as head:
        sample = head.read(1 << 20)
    mean_line = len(sample) / max(1, sample.count(b"\n"))
    return int(size / max(mean_line, 1.0) * 1.1) + 1024


def _fast_ratings(
    source: _Source, name: str, fmt: str, catalog: Catalog
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(users, items, ratings, timestamps, sha256 prefix) via pyarrow; raises _Fallback on any doubt."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    delimiter, header, columns, width = _RATINGS_LAYOUT[fmt]
    names = [f"c{i}" for i in range(width)]
    user_col, item_col, rating_col, time_col = (names[c] for c in columns)
    # ratings parsed as float64, then cast like the line reader does (float -> float32): the same bits
    types = {user_col: pa.int64(), item_col: pa.int64(), rating_col: pa.float64(), time_col: pa.int64()}
    if fmt == "ml-1m":
        types.update({names[c]: pa.string() for c in (1, 3, 5)})  # must be empty (checked below)
    columns_out = _Columns(_estimate_rows(source, name))
    stream = _HashingReader(source.open(name))
    try:
        if header is not None:
            first = stream.readline()
            if first.startswith(b"\xef\xbb\xbf"):
                first = first[3:]
            if tuple(f.strip() for f in first.decode("utf-8", "replace").strip().split(",")) != header:
                raise _Fallback  # the line reader names the header problem
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, block_size=_BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False if fmt != "csv" else '"'),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)),
        )
        lookup = _movie_index_lookup(catalog)
        for batch in reader:
            if batch.num_rows == 0:
                continue
            if any(batch.column(c).null_count for c in types):
                raise _Fallback
            if fmt == "ml-1m" and any(pc.any(pc.not_equal(batch.column(names[c]), "")).as_py() for c in (1, 3, 5)):
                raise _Fallback
            items = lookup(batch.column(item_col).to_numpy())
            stars = batch.column(rating_col).to_numpy()
            if (items < 0).any() or not np.isfinite(stars).all():
                raise _Fallback
            users = batch.column(user_col).to_numpy()
            columns_out.append(users, items, stars, batch.column(time_col).to_numpy())
            del batch, items, stars, users
        digest = stream.digest.hexdigest()[:16]
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise _Fallback from exc
    finally:
        stream.close()
    if columns_out.size == 0:
        raise _Fallback  # the line reader says "no ratings in file"
    users, items, ratings, times = columns_out.finish()
    return users, items, ratings, times, digest


def _slow_ratings(
    source: _Source, fmt: str, catalog: Catalog
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The line-by-line reader: exact errors with line numbers (and the same data when there is none)."""
    if fmt == "ml-100k":
        name = "u.data"
        rows = _split_lines(source.text(name, "latin-1"), "\t", 4, source.display(name))
    elif fmt == "ml-1m":
        name = "ratings.dat"
        rows = _split_lines(source.text(name, "latin-1"), "::", 4, source.display(name))
    else:
        name = "ratings.csv"
        rows = _csv_rows(source, name, ("userId", "movieId", "rating", "timestamp"))
    users, items, ratings, times = _ratings(rows, source.display(name), catalog, (0, 1, 2, 3))
    digest = hashlib.sha256(source.read_bytes(name)).hexdigest()[:16]
    return users, items, ratings, times, digest


RATINGS_FILE = {"ml-100k": "u.data", "ml-1m": "ratings.dat", "csv": "ratings.csv"}


def load_dataset(path: str | Path) -> Dataset:
    """Read a MovieLens release (folder or .zip), auto-detecting its format."""
    path = Path(path).expanduser()
    fmt = detect_format(path)
    source = _Source(path)
    if fmt == "ml-100k":
        catalog = _catalog_100k(source)
    elif fmt == "ml-1m":
        catalog = _catalog_1m(source)
    else:
        catalog = _catalog_csv(source)
    try:
        users, items, ratings, times, digest = _fast_ratings(source, RATINGS_FILE[fmt], fmt, catalog)
    except _Fallback:
        users, items, ratings, times, digest = _slow_ratings(source, fmt, catalog)
    name = path.stem if path.is_file() else path.name
    catalog.name = name
    # catalog.popularity stays zero here: evaluation fills it from training data only
    # (see sequences.Split.popularity), the shipped app catalog from all of it.
    return Dataset(name, fmt, catalog, users, items, ratings, times, source=str(path), fingerprint=digest)
