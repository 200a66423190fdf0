"""Costs behind the fault fixes of issue #10, measured (docs/reliability.md quotes them).

    python benchmarks/bench_faults.py                  # all
    python benchmarks/bench_faults.py --rows 5000 --log 100000

- matching: unmatched import titles, one `Catalog.resolve` each (before) vs `Catalog.resolve_many` (now);
- big log: what a log/delete/refresh reads, on a log of --log entries: the whole chronological model input
  (before) vs the newest 200 + distinct watched movies (now, and off the UI thread);
- GGUF check: verifying the shipped adapter (and the base, when assembled) cold and cached.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(label: str, action, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    print(f"  {label}: {best * 1000:.1f} ms (best of {repeat})", flush=True)
    return best


def bench_matching(rows: int) -> None:
    from dualrec_tui.core.catalog import Catalog

    catalog = Catalog.from_json(ROOT / "models" / "catalog.json")
    queries = [(f"Unmatched home video number {i} of the summer", None) for i in range(rows)]
    print(f"matching {rows} unmatched titles against {len(catalog)} catalog titles ({os.cpu_count()} cores)")
    sample = queries[: min(rows, 300)]
    one = timed(f"resolve one by one ({len(sample)} titles)", lambda: [catalog.resolve(t, y) for t, y in sample])
    print(f"  -> {one / len(sample) * 1000:.2f} ms per title")
    batch = timed(f"resolve_many ({rows} titles)", lambda: catalog.resolve_many(queries))
    print(f"  -> {batch / rows * 1000:.3f} ms per title")


def bench_big_log(entries: int) -> None:
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.store import WatchLog

    catalog = Catalog.from_json(ROOT / "models" / "catalog.json")
    with tempfile.TemporaryDirectory() as tmp, WatchLog.open(Path(tmp) / "log.db") as log:
        with log.transaction():
            for i in range(entries):
                movie = catalog[i % len(catalog)]
                log.insert_entry(
                    {
                        "dataset": catalog.name,
                        "movie_id": movie.movie_id,
                        "imdb_id": movie.imdb_id,
                        "title": movie.title,
                        "year": movie.year,
                        "genres": "[]",
                        "watched_on": f"20{10 + i % 14:02d}-01-01",
                        "source": "bench",
                        "created_at": "2024-01-01T00:00:00+00:00",
                    }
                )
        print(f"big log: {entries} entries")
        timed("before: model_input (all) + watched_indices (all again)", lambda: (
            log.model_input(catalog), set(log.model_input(catalog))), repeat=3)  # fmt: skip
        timed("now: model_input(last=200) + watched_indices", lambda: (
            log.model_input(catalog, last=200), log.watched_indices(catalog)), repeat=3)  # fmt: skip
        timed("before: history(500) + counts()", lambda: (log.history(limit=500), log.counts()), repeat=3)
        timed("now: history(500) + entry_count()", lambda: (log.history(limit=500), log.entry_count()), repeat=3)


def bench_gguf() -> None:
    from dualrec_tui.core import model_files

    with tempfile.TemporaryDirectory() as cache:
        os.environ["DUALREC_CACHE_DIR"] = cache
        adapter = ROOT / "models" / "llm" / "adapter.gguf"
        print(f"GGUF check ({adapter.stat().st_size / 1e6:.1f} MB adapter)")
        timed("adapter, cold", lambda: model_files.verify_gguf(adapter, "adapter"))
        timed("adapter, cached", lambda: model_files.verify_gguf(adapter, "adapter"), repeat=5)
        base = Path(os.path.expanduser("~/.cache/dualrec/gemma-3-270m-q4_k_m.gguf"))
        if base.is_file():
            print(f"  base: {base.stat().st_size / 1e6:.0f} MB")
            timed("base, cold (SHA-256 + structure)", lambda: model_files.verify_gguf(base, "base"))
            timed("base, structure walk only", lambda: model_files._structure(base, base.stat().st_size))
            timed("base, cached", lambda: model_files.verify_gguf(base, "base"), repeat=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="unmatched titles to match")
    parser.add_argument("--log", type=int, default=100_000, help="entries in the big log")
    args = parser.parse_args()
    bench_matching(args.rows)
    bench_big_log(args.log)
    bench_gguf()


if __name__ == "__main__":
    main()
