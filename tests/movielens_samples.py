"""Tiny hand-written releases in every MovieLens format (never copies of MovieLens), for the data tests.

Four movies, three users. User 1 has two ratings with the same timestamp, listed in file order
"movie 3 then movie 1", so a stable sort must keep movie 3 first.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

# movie id, raw title, genres
MOVIES = [
    (1, "Matrix, The (1999)", ["Action", "Sci-Fi"]),
    (2, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
    (3, "Toy Story 2 (1999)", ["Animation", "Children's", "Comedy"]),
    (4, "Cité des enfants perdus, La (1995)", ["Fantasy"]),
]
# user, movie, rating, timestamp (file order matters: ties are broken by it)
RATINGS = [
    (1, 3, 4, 100),
    (1, 1, 5, 100),
    (1, 2, 3, 50),
    (1, 4, 2, 200),
    (2, 2, 5, 10),
    (2, 1, 4, 20),
    (2, 3, 4, 30),
    (3, 4, 1, 5),
    (3, 1, 2, 6),
]


def write_100k(folder: Path, movies=MOVIES, ratings=RATINGS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for movie_id, title, genres in movies:
        flags = "|".join("1" if g in genres else "0" for g in GENRES_100K)
        lines.append(f"{movie_id}|{title}|01-Jan-1995||http://example.org|{flags}")
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n", encoding="latin-1")
    (folder / "u.data").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in ratings), encoding="latin-1")
    return folder


def write_1m(folder: Path, movies=MOVIES, ratings=RATINGS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{m}::{title}::{'|'.join(genres)}\n" for m, title, genres in movies)
    (folder / "movies.dat").write_bytes(text.encode("latin-1"))
    (folder / "ratings.dat").write_text("".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ratings), encoding="latin-1")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    return folder


def _csv_field(text: str) -> str:
    return f'"{text}"' if "," in text else text


def write_csv(folder: Path, movies=MOVIES, ratings=RATINGS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["movieId,title,genres"]
    for movie_id, title, genres in movies:
        genres = [g.replace("Children's", "Children") for g in genres]
        rows.append(f"{movie_id},{_csv_field(title)},{'|'.join(genres)}")
    (folder / "movies.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rating_rows = ["userId,movieId,rating,timestamp"] + [f"{u},{m},{r}.0,{t}" for u, m, r, t in ratings]
    (folder / "ratings.csv").write_text("\n".join(rating_rows) + "\n", encoding="utf-8")
    links = ["movieId,imdbId,tmdbId"] + [f"{m},{100000 + m:07d},{m * 10}" for m, _, _ in movies]
    (folder / "links.csv").write_text("\n".join(links) + "\n", encoding="utf-8")
    return folder


WRITERS = {"ml-100k": write_100k, "ml-1m": write_1m, "csv": write_csv}


def zip_folder(folder: Path, target: Path, nested: str | None = None) -> Path:
    """Zip a release folder; `nested` puts the files under that folder inside the zip (like the real zips)."""
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.iterdir()):
            name = f"{nested}/{file.name}" if nested else file.name
            archive.write(file, name)
    return target


SYNTHETIC_GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance"]


def synthetic_release(folder: Path, n_users: int = 40, n_movies: int = 30, seed: int = 0) -> Path:
    """A small CSV release with a sequential pattern (users walk through movies in order)."""
    rng = np.random.default_rng(seed)
    genres = SYNTHETIC_GENRES
    movies = [(m, f"Movie {m} ({1980 + m})", [genres[m % 5], genres[(m * 3) % 5]]) for m in range(1, n_movies + 1)]
    ratings = []
    for user in range(1, n_users + 1):
        start = int(rng.integers(1, n_movies))
        length = int(rng.integers(2, 12))
        for step in range(length):
            movie = (start + step - 1) % n_movies + 1
            ratings.append((user, movie, int(rng.integers(1, 6)), 1000 + step))
    return write_csv(folder, movies=movies, ratings=ratings)
