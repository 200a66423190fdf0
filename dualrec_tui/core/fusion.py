"""Score fusion of the three DUALRec signals over the LSTM's top-K candidates.

For a user, the LSTM ranks every unwatched movie; its top K are the candidates. Three signals score them:

    lstm(c) = log-softmax of the LSTM's scores over every unwatched movie      (stage 1)
    llm(c)  = log-softmax over the K candidate letters in one LLM forward pass (stage 2, core/llm_rank.py)
    sim(c)  = Sentence-BERT similarity to the LSTM's top pick and the recent history (stage 3)

    fused(c) = lstm(c) + w_llm * llm(c) + w_sim * sim(c) [+ w_markov * markov(c)]

`markov(c)` = log p(c | the last movie) under first-order transitions (core/markov.py) is not in the
published method. It is the free signal the LLM has to beat; fused with the others it was measured
(row `dualrec+markov`, session 12) and shipped by a rule fixed before the run
(docs/preregistered/issue9-markov-in-fusion.md). Weight 0 (the default) leaves it out.

The first `depth` candidates (depth <= K) are re-ordered by `fused`, ties by LSTM rank; everything after
them keeps the LSTM's order, so the fused ranking covers the whole catalog and full-ranking metrics are
defined. w_llm = w_sim = 0 is exactly the LSTM's ranking. The weights and the depth are chosen on
validation targets (training/llm_eval.py) and shipped in fusion.json.

Why scores and not ranks: a rank throws away how sure each model is. An LSTM that puts 60% of its mass on
one movie should not be overturned by a small LLM preference; with log-probabilities it is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .signals import SIGNALS


def log_softmax(values: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax of a 1-D array (-inf entries stay -inf)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.full_like(values, -np.inf)
    top = values[finite].max()
    shifted = values - top
    return shifted - np.log(np.exp(shifted[finite]).sum())


def lstm_log_probs(scores: np.ndarray, watched: Sequence[int]) -> np.ndarray:
    """The LSTM's log-probability of each movie among the unwatched ones (watched = -inf)."""
    values = np.asarray(scores, dtype=np.float64).copy()
    if len(watched):
        values[np.asarray(list(watched), dtype=np.int64)] = -np.inf
    return log_softmax(values)


@dataclass(frozen=True)
class FusionWeights:
    """The settings chosen on validation: signal weights and how many LSTM candidates are re-ordered."""

    llm: float = 0.0
    sim: float = 0.0
    depth: int = 20
    markov: float = 0.0

    def uses(self, signal: str) -> bool:
        return signal == "lstm" or getattr(self, signal, 0.0) > 0


@dataclass(frozen=True)
class FusedCandidates:
    """The re-ordered head of the ranking, with every signal kept so the app can say what placed a pick."""

    order: np.ndarray  # (depth,) candidate positions (0 = LSTM's best), best fused first
    fused: np.ndarray  # (depth,) fused score per candidate position
    signals: dict[str, np.ndarray]  # signal name -> (depth,) values per candidate position


def fuse_candidates(
    lstm: np.ndarray,
    weights: FusionWeights,
    llm: np.ndarray | None = None,
    sim: np.ndarray | None = None,
    markov: np.ndarray | None = None,
) -> FusedCandidates:
    """Re-order the first `weights.depth` candidates (given best-LSTM-first) by the fused score.

    `llm` are log-probabilities over the K candidates of the prompt (renormalised here over the first
    `depth`), `sim` similarity scores, `markov` transition log-probabilities; a signal that is None or has
    weight 0 contributes nothing.
    """
    lstm = np.asarray(lstm, dtype=np.float64)
    depth = int(min(max(1, weights.depth), lstm.shape[0]))
    head = lstm[:depth]
    signals = {"lstm": head}
    fused = head.copy()
    if llm is not None:
        llm_head = log_softmax(np.asarray(llm, dtype=np.float64)[:depth])
        signals["llm"] = llm_head
        if weights.llm > 0:
            fused = fused + weights.llm * llm_head
    if sim is not None:
        sim_head = np.asarray(sim, dtype=np.float64)[:depth]
        signals["sim"] = sim_head
        if weights.sim > 0:
            fused = fused + weights.sim * sim_head
    if markov is not None:
        markov_head = np.asarray(markov, dtype=np.float64)[:depth]
        signals["markov"] = markov_head
        if weights.markov > 0:
            fused = fused + weights.markov * markov_head
    order = np.lexsort((np.arange(depth), -fused))  # ties: the better LSTM rank first
    return FusedCandidates(order=order, fused=fused, signals=signals)


def fused_ranking(lstm_order: np.ndarray, fused: FusedCandidates) -> list[int]:
    """The whole ranking: the re-ordered head, then the rest of the LSTM's order."""
    lstm_order = np.asarray(lstm_order, dtype=np.int64)
    depth = fused.order.shape[0]
    return [*lstm_order[:depth][fused.order].tolist(), *lstm_order[depth:].tolist()]


def placed_by(fused: FusedCandidates, weights: FusionWeights, position: int) -> tuple[str, ...]:
    """Which signals lifted candidate `position` above the average candidate (weighted, centred).

    The LSTM counts when its own term is above the head's mean; the LLM, similarity and Markov only when
    their weight is non-zero and their weighted term is. Never empty: the largest term names the pick otherwise.
    """
    terms: dict[str, float] = {}
    for name, values in fused.signals.items():
        weight = 1.0 if name == "lstm" else getattr(weights, name, 0.0)
        if weight <= 0:
            continue
        finite = values[np.isfinite(values)]
        centre = float(finite.mean()) if finite.size else 0.0
        terms[name] = weight * (float(values[position]) - centre)
    lifted = tuple(name for name in SIGNALS if terms.get(name, 0.0) > 0)
    if lifted:
        return lifted
    return (max(terms, key=lambda n: terms[n]),) if terms else ("lstm",)
