"""How much the shipped float16 catalog vectors change re-ranking, against float32 vectors encoded afresh.

    python benchmarks/compare_shipped_embeddings.py FLOAT32.npy [--trials 5000]

FLOAT32.npy: the re-ranker's float32 cache for the same catalog (e.g. `SentenceReranker(catalog,
shipped=[]).embeddings` with an empty cache folder). Each trial draws 10 candidates, a 5-movie history
and an LSTM pick at random and compares the two re-ranked orders.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.rerank import SentenceReranker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("float32", type=Path)
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--models", type=Path, default=Path("models"))
    args = parser.parse_args()
    catalog = Catalog.from_json(args.models / "catalog.json")
    shipped = SentenceReranker(catalog, shipped=[args.models])
    exact = SentenceReranker(catalog, shipped=[])
    exact._embeddings = np.load(args.float32, allow_pickle=False)
    print(f"shipped: {shipped.shipped_path.name}; float32: {args.float32.name}")
    print(f"max vector component difference: {np.abs(shipped.embeddings - exact.embeddings).max():.2e}")
    rng = np.random.default_rng(0)
    same_order = same_top = 0
    worst = 0.0
    for _ in range(args.trials):
        picks = rng.choice(len(catalog), size=16, replace=False)
        candidates, history, pick = list(picks[:10]), list(picks[10:15]), int(picks[15])
        a, b = shipped.rerank(candidates, history, pick), exact.rerank(candidates, history, pick)
        same_order += [i for i, _ in a] == [i for i, _ in b]
        same_top += a[0][0] == b[0][0]
        worst = max(worst, max(abs(x - y) for (_, x), (_, y) in zip(sorted(a), sorted(b), strict=True)))
    n = args.trials
    print(
        f"{n} trials: identical order {same_order / n:.4f}, identical top pick {same_top / n:.4f}, "
        f"max score difference {worst:.2e}"
    )


if __name__ == "__main__":
    main()
