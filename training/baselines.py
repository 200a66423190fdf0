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

from pathlib import Path
from typing import Any

import numpy as np

from dualrec_tui.core.markov import MarkovTransitions

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
    """First-order item-to-item transitions, backing off to popularity (add-k smoothing tuned on validation).

    The counting and the probabilities are core.markov.MarkovTransitions, the same class the app fuses,
    so `--checkpoint markov=models/markov` measures exactly the shipped file."""

    name = "markov"

    def __init__(self, ctx: Any = None, smoothing: float | None = None) -> None:
        self.ctx = ctx
        self.smoothing = smoothing  # None = tune on validation
        self.transitions: MarkovTransitions | None = None
        self.validation: dict[str, float] = {}

    @property
    def prior(self) -> np.ndarray:
        assert self.transitions is not None, "fit() first"
        return self.transitions.prior

    def fit(self, split, catalog, seed: int) -> None:
        fingerprint = getattr(catalog, "fingerprint", "") or ""
        self.transitions = MarkovTransitions.fit(
            split.training_sequences(), split.popularity(), catalog_fingerprint=fingerprint
        )
        if self.smoothing is None:
            histories = [split.valid_input(u) for u in range(len(split.user_ids))]
            targets_valid = list(split.valid_target)
            for k in SMOOTHING_GRID:
                self.smoothing = k
                self.validation[str(k)] = metrics.validation_ndcg(self.score, histories, targets_valid, split.n_items)
            self.smoothing = float(max(SMOOTHING_GRID, key=lambda k: self.validation[str(k)]))
        self.transitions = self.transitions.with_smoothing(self.smoothing)

    def load(self, path: Path) -> None:
        """`--checkpoint markov=DIR`: the saved transitions (the shipped models/markov), checked first."""
        catalog = self.ctx.catalog
        self.transitions = MarkovTransitions.load(Path(path), len(catalog), catalog.fingerprint)
        self.smoothing = self.transitions.smoothing

    def score(self, histories: list[list[int]]) -> np.ndarray:
        assert self.transitions is not None, "fit() first"
        k = float(self.smoothing if self.smoothing is not None else 1.0)
        transitions = self.transitions if k == self.transitions.smoothing else self.transitions.with_smoothing(k)
        return transitions.probs(histories)

    def stats(self) -> dict[str, Any]:
        return {"smoothing_k": self.smoothing, "valid_NDCG@10_by_k": self.validation}
