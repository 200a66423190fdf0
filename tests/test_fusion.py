"""Score fusion over the LSTM's candidates (core/fusion.py): the rule, its limits, and what a tag may claim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualrec_tui.core.fusion import (
    FusionWeights,
    fuse_candidates,
    fused_ranking,
    log_softmax,
    lstm_log_probs,
    placed_by,
)


def test_log_softmax_is_a_distribution_and_keeps_minus_infinity() -> None:
    values = np.array([2.0, 1.0, -np.inf, 0.5])
    out = log_softmax(values)
    assert out[2] == -np.inf
    assert np.exp(out[np.isfinite(out)]).sum() == pytest.approx(1.0)
    assert np.argmax(out) == 0


def test_lstm_log_probs_exclude_watched_movies() -> None:
    out = lstm_log_probs(np.array([5.0, 4.0, 3.0]), [0])
    assert out[0] == -np.inf and np.exp(out[1:]).sum() == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 0, allow_nan=False), min_size=2, max_size=20), st.integers(1, 25))
def test_zero_weights_are_exactly_the_lstm_order(values, depth) -> None:
    lstm = np.sort(np.asarray(values))[::-1]  # candidates come best-LSTM-first
    llm = np.random.default_rng(0).normal(size=lstm.shape[0])
    fused = fuse_candidates(lstm, FusionWeights(llm=0.0, sim=0.0, depth=depth), llm, llm)
    order = np.arange(100, 100 + lstm.shape[0] + 5)
    assert fused_ranking(order, fused) == order.tolist()


def test_a_confident_llm_lifts_a_candidate_within_the_depth_only() -> None:
    lstm = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    llm = np.log(np.array([0.01, 0.01, 0.01, 0.97]))
    fused = fuse_candidates(lstm, FusionWeights(llm=1.0, depth=4), llm)
    assert fused.order[0] == 3  # the LLM's favourite climbs to the top
    assert fused_ranking(np.array([10, 11, 12, 13, 14]), fused)[:1] == [13]
    shallow = fuse_candidates(lstm, FusionWeights(llm=1.0, depth=2), llm)
    assert fused_ranking(np.array([10, 11, 12, 13, 14]), shallow)[2:] == [12, 13, 14]  # beyond depth: LSTM order


def test_llm_scores_are_renormalised_over_the_depth() -> None:
    lstm = np.zeros(3)
    fused = fuse_candidates(lstm, FusionWeights(llm=1.0, depth=2), np.log(np.array([0.1, 0.1, 0.8])))
    assert np.exp(fused.signals["llm"]).sum() == pytest.approx(1.0)


def test_ties_keep_the_better_lstm_rank() -> None:
    fused = fuse_candidates(np.zeros(4), FusionWeights(depth=4))
    assert fused.order.tolist() == [0, 1, 2, 3]


def test_tags_name_only_signals_that_lifted_the_pick() -> None:
    lstm = np.log(np.array([0.5, 0.3, 0.2]))
    llm = np.log(np.array([0.1, 0.1, 0.8]))
    sim = np.array([0.9, 0.1, 0.1])
    weights = FusionWeights(llm=1.0, sim=0.0, depth=3)
    fused = fuse_candidates(lstm, weights, llm, sim)
    assert placed_by(fused, weights, 2) == ("llm",)  # similarity has weight 0: never named
    assert placed_by(fused, weights, 0) == ("lstm",)
    both = FusionWeights(llm=1.0, sim=1.0, depth=3)
    fused = fuse_candidates(lstm, both, llm, sim)
    assert placed_by(fused, both, 0) == ("lstm", "sim")
    assert placed_by(fused, FusionWeights(depth=3), 1) == ("lstm",)  # never empty
