"""Write a synthetic MovieLens release (CSV family) of a given shape, so scale is testable without downloads.

    python benchmarks/make_movielens.py --shape ml-32m --out /tmp/ml-32m-synth          # folder
    python benchmarks/make_movielens.py --shape quarter --out /tmp/ml-quarter --zip     # GroupLens-style zip
    python benchmarks/make_movielens.py --users 60 --movies 300 --ratings 3000 --out DIR

What makes it look like the real thing (and exercises what the real thing exercises):
- `movies.csv`, `ratings.csv`, `links.csv` with GroupLens's headers; sparse movie ids; ratings sorted by
  user, then movie id (as GroupLens writes them), so time order is *not* file order;
- Zipf item popularity, a heavy-tailed number of ratings per user (at least 20 each, like MovieLens),
  no movie rated twice by one user;
- per-user time order with many same-second ties, and a sequential signal (a share of the next
  movies follow the previous one in a fixed "sequel chain"), so sequence models have something to learn;
- titles in MovieLens's spelling: "Matrix, The (1999)", alternative titles in brackets, sequels,
  subtitles after a colon, commas (quoted CSV fields), a few without a year, "(no genres listed)".

The data are random: nothing here is derived from MovieLens. Same seed, same files.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
GENRE_WEIGHTS = np.array([8, 5, 2, 2, 14, 6, 5, 20, 3, 0.5, 6, 1, 1.5, 3, 7, 3, 8, 2, 1.5])

ADJECTIVES = (
    "Last", "Silent", "Dark", "Broken", "Golden", "Lost", "Hidden", "Wild", "Secret", "Eternal", "Little", "Big",
    "Red", "Blue", "Black", "White", "Crimson", "Frozen", "Burning", "Final", "First", "Forgotten", "Endless",
    "Sweet", "Bitter", "Strange", "Quiet", "Savage", "Perfect", "Invisible", "Midnight", "Electric", "Iron",
    "Velvet", "Shattered", "Haunted", "Crazy", "Lonely", "Brave", "Dangerous", "Beautiful", "Deadly", "Hollow",
)  # fmt: skip
NOUNS = (
    "Night", "City", "River", "Road", "Heart", "Storm", "Dream", "Kingdom", "Shadow", "Game", "House", "War",
    "Island", "Mountain", "Sea", "Sky", "Fire", "Winter", "Summer", "Garden", "Machine", "Ghost", "Hunter",
    "Detective", "Stranger", "Empire", "Planet", "Mirror", "Promise", "Secret", "Journey", "Legend", "Wolf",
    "Dragon", "Angel", "Soldier", "Witness", "Prophecy", "Circus", "Harbor", "Station", "Frontier", "Letter",
    "Song", "Affair", "Escape", "Heist", "Ransom", "Voyage", "Revenge", "Paradise", "Labyrinth", "Orchard",
)  # fmt: skip
NAMES = (
    "Anna", "Max", "Sophie", "Jack", "Marie", "Tom", "Clara", "Leo", "Julia", "Sam", "Nina", "Oscar", "Rosa",
    "Hugo", "Elena", "Felix", "Ingrid", "Pablo", "Yuki", "Amir", "Greta", "Ivan", "Lucia", "Kenji",
)  # fmt: skip
PLACES = (
    "Paris", "Tokyo", "Berlin", "Texas", "Brooklyn", "Rome", "Alaska", "Vienna", "Bombay", "Havana", "Oslo",
    "Marseille", "Chicago", "Lisbon", "Shanghai", "Cairo", "the Desert", "the North", "Space", "Heaven",
)  # fmt: skip
FOREIGN = (
    ("La", ("nuit", "ville", "maison", "guerre", "route", "vie", "rivière")),
    ("Le", ("jour", "secret", "voyage", "silence", "chemin", "destin")),
    ("Der", ("Himmel", "Wald", "Krieg", "Traum", "Fluss")),
    ("Il", ("giardino", "segreto", "viaggio", "sogno")),
    ("El", ("camino", "silencio", "secreto", "sueño")),
)
SUBTITLES = (
    "The Beginning", "Part II", "Reckoning", "Resurrection", "The Return", "Origins", "Redemption",
    "A New Hope", "The Final Chapter", "Director's Cut", "Legacy", "Awakening",
)  # fmt: skip
RATING_VALUES = np.arange(1, 11) / 2.0  # 0.5 ... 5.0
RATING_WEIGHTS = np.array([1.5, 3.0, 2.0, 7.0, 5.5, 20.0, 13.0, 26.0, 8.0, 14.0])
T_START = 820_454_400  # 1996-01-01
T_END = 1_697_155_200  # 2023-10-13 (ml-32m's last day)


@dataclass(frozen=True)
class Shape:
    """Counts of one release: the real ones, and small ones for tests."""

    users: int
    movies: int
    ratings: int


SHAPES = {
    "tiny": Shape(users=60, movies=300, ratings=3_000),
    "ml-latest-small": Shape(users=610, movies=9_742, ratings=100_836),
    "quarter": Shape(users=50_237, movies=87_585, ratings=8_000_051),  # a quarter of ml-32m's ratings and users
    "ml-32m": Shape(users=200_948, movies=87_585, ratings=32_000_204),
}


# ------------------------------------------------------------------------------------------ titles
def _title(rng: np.random.Generator, used: set[str]) -> str:
    """One title in MovieLens's spelling, without the year."""
    for _ in range(20):
        pattern = rng.integers(0, 10)
        adj, noun, noun2 = rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(NOUNS)
        if pattern == 0:
            title = f"{noun} of {noun2}, The"
        elif pattern == 1:
            title = f"{adj} {noun}"
        elif pattern == 2:
            title = f"{rng.choice(NAMES)}'s {noun}"
        elif pattern == 3:
            title = f"{adj} {noun}, The"
        elif pattern == 4:
            title = f"{noun} in {rng.choice(PLACES)}, A"
        elif pattern == 5:
            title = f"{adj} {noun}: {rng.choice(SUBTITLES)}"
        elif pattern == 6:
            title = f"{noun} and the {noun2}"
        elif pattern == 7:
            title = f"{rng.choice(NAMES)} & {rng.choice(NAMES)}"
        elif pattern == 8:
            title = f"{noun}, {rng.choice(NAMES)}, and {rng.choice(NAMES)}"  # a comma: quoted CSV field
        else:
            title = f"{adj} {noun} of {rng.choice(PLACES)}"
        if title not in used or rng.random() < 0.02:  # a few remakes share a title, as in MovieLens
            used.add(title)
            return title
    # the word lists are exhausted at this size: number the rest like a long series
    title = f"{adj} {noun} {len(used) % 97 + 2}"
    used.add(title)
    return title


def _movies(rng: np.random.Generator, n_movies: int) -> list[tuple[int, str, str]]:
    """(movieId, raw title, genres) rows in movie-id order, ids sparse like ml-32m's."""
    ids = np.sort(rng.choice(np.arange(1, int(n_movies * 3.4) + 2), size=n_movies, replace=False))
    years = np.clip(np.round(2024 - rng.gamma(2.0, 12.0, size=n_movies)), 1902, 2023).astype(int)
    probabilities = GENRE_WEIGHTS / GENRE_WEIGHTS.sum()
    used: set[str] = set()
    rows = []
    previous = ""
    for movie_id, year in zip(ids.tolist(), years.tolist(), strict=True):
        roll = rng.random()
        if previous and roll < 0.04:
            base = previous.split(" (")[0].removesuffix(", The")
            title = f"{base} {int(rng.integers(2, 5))}"  # a sequel: "Toy Story 2"
        else:
            title = _title(rng, used)
        if rng.random() < 0.07:
            article, words = FOREIGN[int(rng.integers(0, len(FOREIGN)))]
            title = f"{title} ({rng.choice(words)} {rng.choice(words)}, {article})"
        raw = title if rng.random() < 0.01 else f"{title} ({year})"
        n_genres = int(rng.choice([0, 1, 2, 3, 4], p=[0.01, 0.35, 0.35, 0.2, 0.09]))
        if n_genres:
            picked = np.sort(rng.choice(len(GENRES), size=n_genres, replace=False, p=probabilities))
            genres = "|".join(GENRES[i] for i in picked)
        else:
            genres = "(no genres listed)"
        rows.append((movie_id, raw, genres))
        previous = raw
    return rows


# ----------------------------------------------------------------------------------------- ratings
def _lengths(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Ratings per user: at least 20 (fewer only for tiny shapes), heavy-tailed, summing to shape.ratings."""
    floor = min(20, shape.ratings // shape.users)
    cap = max(floor, min(shape.movies // 2, 40 * shape.ratings // shape.users))
    extra = rng.lognormal(0.0, 1.3, size=shape.users)
    budget = shape.ratings - floor * shape.users
    lengths = np.full(shape.users, floor, dtype=np.int64)
    for _ in range(50):  # scale, cap, and hand the capped users' share to the others
        room = cap - lengths
        open_users = room > 0
        if budget <= 0 or not open_users.any():
            break
        share = np.floor(extra * open_users / (extra * open_users).sum() * budget).astype(np.int64)
        share = np.minimum(share, room)
        lengths += share
        budget -= int(share.sum())
        if share.sum() == 0:
            order = np.flatnonzero(open_users)[:budget]
            lengths[order] += 1
            budget -= order.size
    return lengths


def _ratings(rng: np.random.Generator, shape: Shape, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user index, item index) pairs in each user's time order: Zipf popularity, a sequel chain, no repeats."""
    n_items = shape.movies
    popularity_rank = rng.permutation(n_items)  # item popularity_rank[r] is the r-th most popular
    cumulative = np.cumsum(1.0 / np.arange(1, n_items + 1) ** 0.9)
    cumulative /= cumulative[-1]
    chain = rng.permutation(n_items)  # "what people watch next": item chain[i] follows item i
    users = np.empty(0, dtype=np.int64)
    items = np.empty(0, dtype=np.int64)
    counts = np.zeros(shape.users, dtype=np.int64)
    for _ in range(40):
        need = lengths - counts
        if not need.any():
            break
        draws = np.where(need > 0, need + need // 3 + 4, 0)
        new_users = np.repeat(np.arange(shape.users), draws)
        new_items = popularity_rank[np.searchsorted(cumulative, rng.random(new_users.size))]
        follow = rng.random(new_users.size) < 0.35
        follow[0] = False
        new_items[follow] = chain[new_items[np.flatnonzero(follow) - 1]]
        users = np.concatenate([users, new_users])
        items = np.concatenate([items, new_items])
        order = np.argsort(users, kind="stable")  # earlier rounds first within each user
        users, items = users[order], items[order]
        _, first = np.unique(users * n_items + items, return_index=True)
        keep = np.zeros(users.size, dtype=bool)
        keep[first] = True
        users, items = users[keep], items[keep]
        starts = np.searchsorted(users, np.arange(shape.users))
        within = np.arange(users.size) - starts[users]
        keep = within < lengths[users]
        users, items = users[keep], items[keep]
        counts = np.bincount(users, minlength=shape.users)
    return users, items


def _timestamps(rng: np.random.Generator, users: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Non-decreasing per user, with same-second ties (a third of the steps) like real rating sessions."""
    n_users = lengths.size
    span = rng.uniform(3_600, 4 * 365 * 86_400, size=n_users) * rng.random(n_users) ** 2
    start = rng.uniform(T_START, T_END - span)
    first = np.searchsorted(users, np.arange(n_users))  # users is sorted; every user has a rating
    gaps = rng.exponential(1.0, size=users.size) * (rng.random(users.size) > 0.33)
    gaps[first] = 0.0
    elapsed = np.cumsum(gaps)
    offset = elapsed - np.repeat(elapsed[first], lengths)
    total = np.repeat(offset[first + lengths - 1], lengths)
    scaled = offset / np.maximum(total, 1e-9) * np.repeat(span, lengths)
    return (np.repeat(start, lengths) + scaled).astype(np.int64)


# ----------------------------------------------------------------------------------------- writing
def _write_ratings(path: Path, user_ids: np.ndarray, movie_ids: np.ndarray, stars: np.ndarray, times: np.ndarray):
    """GroupLens's ratings.csv, written by pyarrow (Python's csv module needs minutes at 32M rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    labels = pa.array([f"{v:.1f}" for v in RATING_VALUES])
    table = pa.table(
        {
            "userId": pa.array(user_ids.astype(np.int32)),
            "movieId": pa.array(movie_ids.astype(np.int32)),
            "rating": labels.take(pa.array(stars.astype(np.int8))),
            "timestamp": pa.array(times),
        }
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 20)
    with pa.OSFile(str(path), "wb") as sink:
        sink.write(b"userId,movieId,rating,timestamp\n")  # pyarrow would quote the header's names
        pacsv.write_csv(table, sink, write_options=options)


def make_release(out: Path, shape: Shape, seed: int = 0, as_zip: bool = False) -> Path:
    """Write the release under `out` (a folder; with `as_zip`, `out.zip` with the folder inside)."""
    rng = np.random.default_rng(seed)
    folder = out
    folder.mkdir(parents=True, exist_ok=True)
    movies = _movies(rng, shape.movies)
    with open(folder / "movies.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["movieId", "title", "genres"])
        writer.writerows(movies)
    with open(folder / "links.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write("movieId,imdbId,tmdbId\n")
        for movie_id, _, _ in movies:
            tmdb = "" if rng.random() < 0.002 else str(movie_id * 7 + 11)
            handle.write(f"{movie_id},{movie_id * 13 + 100_000:07d},{tmdb}\n")

    lengths = _lengths(rng, shape)
    users, items = _ratings(rng, shape, lengths)
    lengths = np.bincount(users, minlength=shape.users)
    assert lengths.min() > 0, "every user has at least one rating"
    times = _timestamps(rng, users, lengths)
    stars = rng.choice(10, size=users.size, p=RATING_WEIGHTS / RATING_WEIGHTS.sum())
    movie_ids = np.array([m for m, _, _ in movies], dtype=np.int64)[items]
    order = np.lexsort((movie_ids, users))  # GroupLens order: user, then movie id
    _write_ratings(folder / "ratings.csv", users[order] + 1, movie_ids[order], stars[order], times[order])
    if not as_zip:
        return folder
    target = out.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in ("movies.csv", "ratings.csv", "links.csv"):
            archive.write(folder / name, f"{out.name}/{name}")
    shutil.rmtree(folder)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="release folder to write (or the zip's stem)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--users", type=int, help="override the shape's number of users")
    parser.add_argument("--movies", type=int, help="override the shape's number of movies")
    parser.add_argument("--ratings", type=int, help="override the shape's number of ratings")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zip", action="store_true", help="write OUT.zip (GroupLens layout) instead of a folder")
    args = parser.parse_args(argv)
    base = SHAPES[args.shape]
    shape = Shape(args.users or base.users, args.movies or base.movies, args.ratings or base.ratings)
    if shape.users < 1 or shape.movies < 2 or shape.ratings < shape.users:
        parser.error("need at least 1 user, 2 movies and one rating per user")
    started = time.perf_counter()
    path = make_release(args.out, shape, seed=args.seed, as_zip=args.zip)
    print(f"wrote {path} ({shape.users:,} users, {shape.movies:,} movies, ~{shape.ratings:,} ratings) "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
