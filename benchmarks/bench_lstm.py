"""LSTM inference latency on CPU: load time and per-user top-k (targets: load < 0.5 s, one user < 5 ms).

    python benchmarks/bench_lstm.py [--model models/lstm] [--catalog models/catalog.json] [--k 20] [--users 200]

Histories are random catalog movies with lengths 1..200 (many longer than the window, which only costs
the cut). Load time = `LstmRecommender.load` with the catalog already read and torch already imported
(the app imports torch once, in a background worker); `import torch` is printed separately.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "lstm"))
    parser.add_argument("--catalog", default=str(ROOT / "models" / "catalog.json"))
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()

    started = time.perf_counter()
    import torch

    import_seconds = time.perf_counter() - started
    if args.threads:
        torch.set_num_threads(args.threads)
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.lstm import LstmRecommender

    catalog = Catalog.from_json(Path(args.catalog))
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        recommender = LstmRecommender.load(Path(args.model), catalog)
        loads.append(time.perf_counter() - start)

    rng = np.random.default_rng(0)
    histories = [
        rng.choice(len(catalog), size=int(rng.integers(1, 201)), replace=False).tolist() for _ in range(args.users)
    ]
    recommender.top_k(histories[0], k=args.k)  # warm-up
    latencies = []
    for history in histories:
        start = time.perf_counter()
        recommender.top_k(history, k=args.k)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    recommender.top_k([], k=args.k)
    empty = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    print(
        f"model {args.model}: {len(catalog)} movies, window {recommender.window}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"import torch: {import_seconds:.2f} s (once per process, not part of load)")
    print(f"load (catalog given): median {statistics.median(loads):.3f} s, first {loads[0]:.3f} s  [target < 0.5 s]")
    print(
        f"top_k(k={args.k}) per user over {len(ms)} users: median {statistics.median(ms):.2f} ms, "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:.2f} ms, max {ms[-1]:.2f} ms  [target < 5 ms]"
    )
    print(f"empty history (popularity fallback): {empty * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
