"""As-you-type catalog search latency (issue #13 target: median <= 20 ms, p95 <= 50 ms per keystroke).

    python benchmarks/bench_search.py [--catalog models/catalog.json] [--size 87585] [--queries 60]

Runs on the shipped catalog and on a synthetic catalog of `--size` movies built from it: every title
is repeated with another year, and in each copy one word gets a letter changed, so the word
vocabulary grows with the catalog as it does in a real large release (a plain copy would keep the
9.7k vocabulary and flatter the numbers). Each query is typed one keystroke at a time (every prefix
is one search, as the app does), on one index that lives through the run like the app's; the
index build (once per catalog, in the background loader) is timed separately.

Wall time is what a user waits; CPU time (this thread's) is printed beside it because on a shared,
overloaded machine the wall time measures the queue for a core more than the search.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dualrec_tui.core.catalog import Catalog, Movie  # noqa: E402

QUERIES = [
    "shawshenk", "matirx", "walle", "se7en", "spiderman", "the godfather part 2", "pulp fiction",
    "lord of the rings return", "amelie", "star wars empire", "toy stroy 3", "alien (1979)",
    "back to the future", "eternal sunshine", "inglorious basterds", "no country for old men",
    "harry potter prisoner", "the dark knight rises", "spirited away", "grand budapest hotel",
]  # fmt: skip


def synthetic(catalog: Catalog, size: int, seed: int = 0) -> Catalog:
    rng = random.Random(seed)
    movies = list(catalog.movies)
    popularity = list(catalog.popularity)
    letters = "abcdefghijklmnopqrstuvwxyz"
    while len(movies) < size:
        source = catalog.movies[len(movies) % len(catalog)]
        words = source.title.split()
        spot = rng.randrange(len(words))
        word = words[spot]
        if len(word) > 2:
            at = rng.randrange(len(word))
            words[spot] = word[:at] + rng.choice(letters) + word[at + 1 :]
        movies.append(
            Movie(
                len(movies),
                1_000_000 + len(movies),
                " ".join(words),
                (source.year or 2000) + rng.randint(-30, 30),
                source.genres,
            )
        )
        popularity.append(rng.randint(0, 20))
    return Catalog(movies, name=f"synthetic-{size}", popularity=popularity)


def measure(catalog: Catalog, queries: list[str]) -> None:
    start = time.perf_counter()
    catalog.search("a", limit=20)  # builds the index
    build = time.perf_counter() - start
    words = len(catalog._search_index.words)
    latencies, cpu = [], []
    for query in queries:
        for end in range(1, len(query) + 1):
            start, start_cpu = time.perf_counter(), time.thread_time()
            catalog.search(query[:end], limit=20)
            latencies.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)

    def summary(values: list[float]) -> str:
        values = sorted(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        return f"median {statistics.median(values):.1f} ms, p95 {p95:.1f} ms, max {values[-1]:.1f} ms"

    print(
        f"{catalog.name}: {len(catalog):,} movies, {words:,} distinct words, index build {build:.2f} s; "
        f"{len(latencies)} keystrokes: wall {summary(latencies)}; CPU {summary(cpu)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default=str(ROOT / "models" / "catalog.json"))
    parser.add_argument("--size", type=int, default=87_585)
    parser.add_argument("--queries", type=int, default=len(QUERIES), help="how many of the built-in queries")
    args = parser.parse_args()
    catalog = Catalog.from_json(Path(args.catalog))
    queries = QUERIES[: args.queries]
    measure(catalog, queries)
    measure(synthetic(catalog, args.size), queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
