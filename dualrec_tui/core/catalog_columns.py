"""A big catalog file's parsed columns, kept in `cache_dir()` for the next launch (issue #13).

`Catalog.from_json` at 87k movies costs ~0.5 s of a launch: `json.loads`, 87k `Movie` objects and the
fingerprint. The columns (ids, titles, years, genres, ...) read back in ~0.05 s, and the catalog then
makes each `Movie` when first asked for. The file is keyed by the catalog file's bytes, a format
version and the code that reads, writes and parses, so a changed catalog or changed code never reads
an old file; it is written atomically and read with `allow_pickle=False`, and a damaged, truncated,
foreign or inconsistent file is rebuilt from the JSON. Values the columns cannot hold exactly (a
newline in a title, a year that is not a whole number, ...) leave that catalog uncached.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .catalog import MISSING, SEPARATOR, Catalog, Movie, _MovieColumns, _TextColumn, paused_gc

# ~6k movies: ml-latest-small's 0.8 MB (the shipped catalog) is cached, as its ~0.1 s parse was on every launch.
CATALOG_DISK_CACHE_MIN_BYTES = 500_000
CATALOG_CACHE_FORMAT = 1  # bump when the file layout changes (code changes are hashed into the name)
_NUMBERS = ("ids", "years", "tmdb_ids", "popularity")


class _NotRepresentable(ValueError):
    """A value the columns cannot give back exactly: that catalog is not cached."""


def cache_path(data: bytes) -> tuple[Path, str] | None:
    """(file, its full key) for the catalog file holding `data`; None for a small file or no cache folder."""
    if len(data) < CATALOG_DISK_CACHE_MIN_BYTES:
        return None
    from .artifacts import cache_dir, hash_code

    digest = hashlib.sha256(f"catalog-columns|{CATALOG_CACHE_FORMAT}|".encode())
    digest.update(hashlib.sha256(data).digest())
    fingerprint = Catalog.__dict__["fingerprint"].func
    made = (_MovieColumns._make, _MovieColumns._movie, _MovieColumns.all, _MovieColumns.years_int32)
    code = (Catalog._parse_json, fingerprint, Movie.__init__, *made, _TextColumn.__getitem__, _TextColumn.all)
    for function in (*code, _columns_of, _text_column, write, read, _read_text):
        hash_code(digest, function.__code__)
    name = digest.hexdigest()
    try:
        return cache_dir() / "catalog" / f"columns-{name[:24]}.npz", name
    except OSError:
        return None


def write(path: Path, name: str, catalog: Catalog) -> bool:
    """Keep `catalog`'s columns at `path` (atomically); False when it cannot be written or held exactly."""
    import numpy as np

    from .artifacts import write_atomically

    try:
        with paused_gc():  # ~1M objects alive after a big parse: a collection pass over them only costs time
            numbers, texts = _columns_of(catalog)
    except _NotRepresentable:
        return False

    def save(partial: Path) -> None:
        with partial.open("wb") as handle:  # a file object: np.savez would add ".npz" to the temporary name
            np.savez(
                handle,
                key=np.asarray(name),
                catalog_name=np.asarray(catalog.name),
                fingerprint=np.asarray(catalog.fingerprint),
                **numbers,
                **texts,
            )

    return write_atomically(path, save)


def _columns_of(catalog: Catalog) -> tuple[dict[str, Any], dict[str, Any]]:
    """The int64 and text arrays of `catalog`; `_NotRepresentable` unless every value reads back exactly
    as it is. Checked column by column in bulk: a first launch at 87k movies pays ~0.1 s for it."""
    import numpy as np

    movies = catalog.movies
    try:
        fingerprint = catalog.fingerprint  # what the file keeps (a value that is not text may fail here)
    except (TypeError, UnicodeEncodeError) as exc:
        raise _NotRepresentable(str(exc)) from exc
    if type(catalog.name) is not str or type(fingerprint) is not str:
        raise _NotRepresentable("the catalog's name or fingerprint is not a string")
    numbers: dict[str, Any] = {}
    for column, values, allowed in (
        ("ids", [m.movie_id for m in movies], {int}),
        ("years", [m.year for m in movies], {int, type(None)}),
        ("tmdb_ids", [m.tmdb_id for m in movies], {int, type(None)}),
        ("popularity", list(catalog.popularity), {int}),
    ):
        if not {type(value) for value in values} <= allowed or MISSING in values:
            raise _NotRepresentable(f"{column}: not all whole numbers")
        try:
            numbers[column] = np.asarray([MISSING if v is None else v for v in values], dtype=np.int64)
        except OverflowError as exc:
            raise _NotRepresentable(f"{column}: {exc}") from exc
    years = numbers["years"]
    if not bool(np.all((years == MISSING) | ((years > -(2**31)) & (years < 2**31)))):
        raise _NotRepresentable("a year outside int32")  # the search index holds years as int32
    texts: dict[str, Any] = {}
    try:
        genres = [SEPARATOR.join(m.genres) for m in movies]
        alternatives = [SEPARATOR.join(m.alternatives) for m in movies]
        imdb_ids = [m.imdb_id or "" for m in movies]
        for column, strings in (
            ("titles", [m.title for m in movies]),
            ("genres", genres),
            ("alternatives", alternatives),
            ("imdb_ids", imdb_ids),
        ):
            texts[column], texts[f"{column}_ends"] = _text_column(strings)
    except (TypeError, UnicodeEncodeError) as exc:  # a value that is not text, a lone surrogate
        raise _NotRepresentable(str(exc)) from exc
    split = [tuple(joined.split(SEPARATOR)) if joined else () for joined in genres]
    if split != [m.genres for m in movies]:  # an empty genre, one holding the separator, or not a tuple
        raise _NotRepresentable("genres")
    split = [tuple(joined.split(SEPARATOR)) if joined else () for joined in alternatives]
    if split != [m.alternatives for m in movies]:
        raise _NotRepresentable("alternative titles")
    if [value or None for value in imdb_ids] != [m.imdb_id for m in movies]:  # "" and None are one value
        raise _NotRepresentable("IMDb ids")
    return numbers, texts


def _text_column(strings: list[str]) -> tuple[Any, Any]:
    """`strings` as `_TextColumn` holds them: one newline-separated UTF-8 blob, and each one's end byte."""
    import numpy as np

    text = "\n".join(strings)
    if text.count("\n") != max(len(strings) - 1, 0):
        raise _NotRepresentable("a string holds a newline")
    blob = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    ends = np.append(np.flatnonzero(blob == 10), len(blob)) if strings else np.zeros(0, np.int64)
    return blob, ends.astype(np.int64)


def read(path: Path, name: str) -> Catalog | None:
    """The catalog kept at `path`, or None when it is missing, damaged, another file's or inconsistent.

    Cheap on purpose (~0.03 s at 87k movies): arrays are checked with numpy, no per-movie Python work."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != name:
                return None
            numbers = {column: data[column] for column in _NUMBERS}
            if any(array.dtype != np.int64 or array.ndim != 1 for array in numbers.values()):
                return None
            count = len(numbers["ids"])
            texts = {column: _read_text(data[column], data[f"{column}_ends"], count) for column in _MovieColumns.TEXTS}
            catalog_name, fingerprint = str(data["catalog_name"]), str(data["fingerprint"])
        ids = np.sort(numbers["ids"])
        if count and (ids[0] == MISSING or bool(np.any(ids[1:] == ids[:-1]))):  # unknown or repeated ids
            return None
        if None in texts.values():
            return None
        columns = _MovieColumns(numbers["ids"], numbers["years"], numbers["tmdb_ids"], texts, fingerprint)  # type: ignore[arg-type]
        return Catalog(columns, name=catalog_name, popularity=numbers["popularity"].tolist())
    except (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeDecodeError, zipfile.BadZipFile):
        return None


def _read_text(blob: Any, ends: Any, count: int) -> _TextColumn | None:
    """A text column, when it is one: `count` valid UTF-8 strings, each ended by a separator or the blob."""
    import numpy as np

    if blob.dtype != np.uint8 or blob.ndim != 1 or ends.dtype != np.int64 or ends.shape != (count,):
        return None
    if count and (ends[-1] != len(blob) or ends[0] < 0 or bool(np.any(np.diff(ends) < 1))):
        return None
    if np.count_nonzero(blob == 10) != max(count - 1, 0) or bool(np.any(blob[ends[:-1]] != 10)):
        return None  # the newlines are exactly the separators
    raw = blob.tobytes()
    raw.decode("utf-8")  # valid UTF-8 (a newline never falls inside a character): raises UnicodeDecodeError
    return _TextColumn(raw, ends)
