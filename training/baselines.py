"""Non-neural baselines for the evaluation harness: most popular, and first-order Markov.

Both fit on training sequences only (`split.training_sequences()`); popularity is the training-only
count the harness put in `catalog.popularity` (= `split.popularity()`).

- `mostpop`: score = training interaction count. The harness removes the user's own items.
- `markov`: P(next = j | last = i) from item-to-item transition counts of the training sequences,
  smoothed towards popularity (Dirichlet / add-k): (C(i, j) + k * P_pop(j)) / (C(i) + k). So a last item
  never seen followed by anything backs off to popularity, and k trades transitions against popularity.
  k is picked from SMOOTHING_GRID by NDCG@10 on the validation targets (input = training prefix).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import metrics

SMOOTHING_GRID = (0.1, 1.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)


class MostPopModel:
    """Rank every item by its training interaction count (ties: lower catalog index first)."""

    name = "mostpop"

    def __init__(self, ctx: Any = None) -> None:
        self.ctx = ctx
        self.counts: np.ndarray | None = None

    def fit(self, split, catalog, seed: int) -> None:
        self.counts = split.popularity().astype(np.float64)

    def score(self, histories: list[list[int]]) -> np.ndarray:
        assert self.counts is not None, "fit() first"
        return np.broadcast_to(self.counts, (len(histories), self.counts.shape[0])).copy()


class MarkovModel:
    """First-order item-to-item transitions, backing off to popularity (add-k smoothing tuned on validation)."""

    name = "markov"

    def __init__(self, ctx: Any = None, smoothing: float | None = None) -> None:
        self.ctx = ctx
        self.smoothing = smoothing  # None = tune on validation
        self.n_items = 0
        self.indptr = np.zeros(1, dtype=np.int64)  # CSR rows = previous item
        self.columns = np.zeros(0, dtype=np.int64)  # next item
        self.counts = np.zeros(0, dtype=np.float64)
        self.row_totals = np.zeros(0, dtype=np.float64)
        self.prior = np.zeros(0, dtype=np.float64)
        self.validation: dict[str, float] = {}

    def fit(self, split, catalog, seed: int) -> None:
        n = split.n_items
        self.n_items = n
        sources, targets = [], []
        for seq in split.training_sequences():
            if len(seq) > 1:
                sources.append(np.asarray(seq[:-1], dtype=np.int64))
                targets.append(np.asarray(seq[1:], dtype=np.int64))
        src = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
        dst = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
        pairs, counts = np.unique(src * n + dst, return_counts=True)  # sorted by (source, target)
        self.columns = pairs % n
        self.counts = counts.astype(np.float64)
        self.indptr = np.searchsorted(pairs // n, np.arange(n + 1)).astype(np.int64)
        self.row_totals = np.bincount(src, minlength=n).astype(np.float64)
        popularity = split.popularity().astype(np.float64)
        self.prior = (popularity + 1e-3) / (popularity + 1e-3).sum()  # tiny floor: unseen items rank last
        if self.smoothing is None:
            histories = [split.valid_input(u) for u in range(len(split.user_ids))]
            targets_valid = list(split.valid_target)
            for k in SMOOTHING_GRID:
                self.smoothing = k
                self.validation[str(k)] = metrics.validation_ndcg(self.score, histories, targets_valid, n)
            self.smoothing = float(max(SMOOTHING_GRID, key=lambda k: self.validation[str(k)]))

    def score(self, histories: list[list[int]]) -> np.ndarray:
        k = float(self.smoothing if self.smoothing is not None else 1.0)
        out = np.tile(k * self.prior, (len(histories), 1))
        for row, history in enumerate(histories):
            if not history:
                continue
            last = history[-1]
            lo, hi = self.indptr[last], self.indptr[last + 1]
            out[row, self.columns[lo:hi]] += self.counts[lo:hi]
            out[row] /= self.row_totals[last] + k
        return out

    def stats(self) -> dict[str, Any]:
        return {"smoothing_k": self.smoothing, "valid_NDCG@10_by_k": self.validation}
