"""MovieLens readers: every format, folder and zip, auto-detection, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from movielens_samples import MOVIES, RATINGS, WRITERS, write_1m, write_100k, write_csv, zip_folder

from dualrec_tui.core.artifacts import default_data_dir
from dualrec_tui.core.errors import DataFormatError
from dualrec_tui.core.movielens import detect_format, load_dataset


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("as_zip", [False, True])
def test_every_format_reads_the_same_data(tmp_path: Path, fmt: str, as_zip: bool) -> None:
    folder = WRITERS[fmt](tmp_path / "release")
    path = zip_folder(folder, tmp_path / "release.zip", nested="ml-sample") if as_zip else folder
    assert detect_format(path) == fmt
    dataset = load_dataset(path)
    assert dataset.format == fmt
    assert dataset.n_ratings == len(RATINGS)
    assert dataset.n_users == 3
    assert len(dataset.catalog) == len(MOVIES)
    # ratings keep file order, mapped to catalog indices
    ids = [dataset.catalog[i].movie_id for i in dataset.items]
    assert ids == [m for _, m, _, _ in RATINGS]
    assert dataset.user_ids.tolist() == [u for u, _, _, _ in RATINGS]
    assert dataset.timestamps.tolist() == [t for _, _, _, t in RATINGS]
    np.testing.assert_allclose(dataset.ratings, [r for _, _, r, _ in RATINGS])
    matrix = dataset.catalog.by_movie_id(1)
    assert (matrix.title, matrix.year, matrix.genres) == ("The Matrix", 1999, ("Action", "Sci-Fi"))
    # latin-1 (100K, 1M) and UTF-8 (CSV) accents come through, article moved to the front
    assert dataset.catalog.by_movie_id(4).title == "La Cité des enfants perdus"
    # "Children's" (100K/1M) and "Children" (CSV) are one genre
    assert dataset.catalog.by_movie_id(2).genres == ("Animation", "Children", "Comedy")


def test_zip_without_nested_folder(tmp_path: Path) -> None:
    folder = write_1m(tmp_path / "release")
    dataset = load_dataset(zip_folder(folder, tmp_path / "flat.zip"))
    assert dataset.format == "ml-1m" and dataset.n_ratings == len(RATINGS)


def test_csv_links_give_imdb_and_tmdb(tmp_path: Path) -> None:
    dataset = load_dataset(write_csv(tmp_path / "r"))
    movie = dataset.catalog.by_movie_id(3)
    assert movie.imdb_id == "tt0100003" and movie.tmdb_id == 30


def test_quoted_csv_title_with_comma(tmp_path: Path) -> None:
    dataset = load_dataset(write_csv(tmp_path / "r"))
    assert dataset.catalog.by_movie_id(1).label == "The Matrix (1999)"


def test_not_a_release(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DataFormatError, match="no MovieLens release"):
        load_dataset(tmp_path)
    with pytest.raises(DataFormatError, match="no such folder"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(DataFormatError, match=r"not a folder or a \.zip"):
        load_dataset(tmp_path / "readme.txt")


def _error(path: Path) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        load_dataset(path)
    return info.value


def _rewrite_line(file: Path, line: int, text: str, encoding: str = "latin-1") -> None:
    lines = file.read_text(encoding=encoding).splitlines()
    lines[line - 1] = text
    file.write_text("\n".join(lines) + "\n", encoding=encoding)


def test_100k_wrong_field_count_names_file_and_line(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "r")
    _rewrite_line(folder / "u.data", 3, "1\t2\t3")
    error = _error(folder)
    assert error.path.endswith("u.data") and error.line == 3
    assert "u.data:3" in str(error) and "expected 4 fields" in str(error)


def test_100k_non_numeric_user_id(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "r")
    _rewrite_line(folder / "u.data", 5, "abc\t2\t5\t10")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("u.data", 5)
    assert "'abc' is not a whole number" in str(error)


def test_100k_non_numeric_movie_id_in_u_item(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "r")
    _rewrite_line(folder / "u.item", 2, "x" + (folder / "u.item").read_text(encoding="latin-1").splitlines()[1][1:])
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("u.item", 2)


def test_100k_u_item_wrong_genre_flag_count(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "r")
    _rewrite_line(folder / "u.item", 4, "4|Some Movie (1995)|01-Jan-1995||http://x|0|1")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("u.item", 4)


def test_unknown_movie_in_ratings(tmp_path: Path) -> None:
    folder = write_1m(tmp_path / "r")
    _rewrite_line(folder / "ratings.dat", 2, "1::99::5::100")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("ratings.dat", 2)
    assert "movie id 99 is not in the movie list" in str(error)


def test_1m_wrong_field_count(tmp_path: Path) -> None:
    folder = write_1m(tmp_path / "r")
    _rewrite_line(folder / "movies.dat", 3, "3::Toy Story 2 (1999)")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("movies.dat", 3)


def test_csv_bad_encoding_names_the_line(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "r")
    data = (folder / "movies.csv").read_bytes().splitlines()
    data[2] = b"2,Caf\xe9 (1995),Comedy"  # latin-1 byte in a UTF-8 file
    (folder / "movies.csv").write_bytes(b"\n".join(data) + b"\n")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("movies.csv", 3)
    assert "utf-8" in str(error)


def test_csv_bad_header(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "r")
    _rewrite_line(folder / "ratings.csv", 1, "user,movie,rating,timestamp", encoding="utf-8")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("ratings.csv", 1)
    assert "header" in str(error)


def test_csv_empty_file(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "r")
    (folder / "movies.csv").write_text("")
    error = _error(folder)
    assert Path(error.path).name == "movies.csv" and "empty" in str(error)


@pytest.mark.parametrize(
    ("fmt", "movie_file", "empty_text"),
    [("ml-100k", "u.item", ""), ("ml-1m", "movies.dat", "\n"), ("csv", "movies.csv", "movieId,title,genres\n")],
)
def test_empty_movie_list_blames_the_movie_file(tmp_path: Path, fmt: str, movie_file: str, empty_text: str) -> None:
    folder = WRITERS[fmt](tmp_path / "r")
    (folder / movie_file).write_text(empty_text)
    error = _error(folder)
    assert Path(error.path).name == movie_file and "no movies" in str(error)


def test_ratings_file_without_ratings(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "r")
    (folder / "u.data").write_text("\n")
    error = _error(folder)
    assert Path(error.path).name == "u.data" and "no ratings" in str(error)


def test_csv_non_numeric_rating(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "r")
    _rewrite_line(folder / "ratings.csv", 4, "1,2,five,50", encoding="utf-8")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("ratings.csv", 4)
    assert "not a number" in str(error)


def test_duplicate_movie_id(tmp_path: Path) -> None:
    folder = write_csv(tmp_path / "r")
    _rewrite_line(folder / "movies.csv", 3, "1,Other (2000),Drama", encoding="utf-8")
    error = _error(folder)
    assert (Path(error.path).name, error.line) == ("movies.csv", 3)


def test_error_inside_zip_names_member(tmp_path: Path) -> None:
    folder = write_100k(tmp_path / "r")
    _rewrite_line(folder / "u.data", 2, "1\tx\t5\t1")
    error = _error(zip_folder(folder, tmp_path / "bad.zip", nested="ml-100k"))
    assert error.path.endswith("bad.zip!ml-100k/u.data") and error.line == 2


# ------------------------------------------------------------------------------- real releases
REAL = {
    "ml-100k": (100_000, 943, 1682, "ml-100k"),
    "ml-latest-small": (100_836, 610, 9742, "csv"),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_release_counts(name: str) -> None:
    path = default_data_dir() / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (set DUALREC_DATA_DIR to the folder holding {name})")
    ratings, users, movies, fmt = REAL[name]
    dataset = load_dataset(path)
    assert (dataset.n_ratings, dataset.n_users, len(dataset.catalog), dataset.format) == (ratings, users, movies, fmt)
    assert all(m.title for m in dataset.catalog)
    assert sum(m.year is None for m in dataset.catalog) < 20
