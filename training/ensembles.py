"""`lstm+markov`: a free second signal, the bar the LLM must clear to show it is what helps.

    score(i) = log_softmax(lstm)(i) + w * log p_markov(i | last movie)

w is chosen on validation targets of every user (cheap: two matrix products per batch) from a grid that
includes 0 (the LSTM alone). Both models come from the same run (`ctx.require`), fitted on training
sequences only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import validation_ndcg

MARKOV_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
TINY = 1e-12


def _log_softmax_rows(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class LstmMarkovModel:
    """LSTM log-probabilities plus a weighted first-order Markov log-probability."""

    name = "lstm+markov"

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.lstm: Any = None
        self.markov: Any = None
        self.weight = 0.0
        self.validation: dict[str, float] = {}

    def fit(self, split: Any, catalog: Any, seed: int) -> None:
        self.lstm = self.ctx.require("lstm")
        self.markov = self.ctx.require("markov")
        histories = [split.valid_input(u) for u in range(len(split.user_ids))]
        targets = list(split.valid_target)
        for weight in MARKOV_WEIGHTS:
            self.weight = weight
            self.validation[str(weight)] = validation_ndcg(self.score, histories, targets, split.n_items)
        # the best on validation; ties keep the smaller weight (0 = the LSTM alone)
        self.weight = max(MARKOV_WEIGHTS, key=lambda w: (round(self.validation[str(w)], 9), -w))

    def score(self, histories: list[list[int]]) -> np.ndarray:
        lstm = _log_softmax_rows(self.lstm.score(histories))
        if self.weight == 0:
            return lstm
        markov = np.asarray(self.markov.score(histories), dtype=np.float64)
        markov = markov / np.maximum(markov.sum(axis=1, keepdims=True), TINY)
        return lstm + self.weight * np.log(markov + TINY)

    def stats(self) -> dict[str, Any]:
        return {"markov_weight": self.weight, "valid_NDCG@10_by_weight": self.validation}
