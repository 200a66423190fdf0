"""Ranking metrics, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training import metrics


def _rank(scores: list[float], target: int, history: list[int] = ()) -> float:
    array = np.asarray([scores], dtype=np.float64)
    return float(metrics.ranks_from_scores(array, [target], metrics.exclusion_mask([list(history)], len(scores)))[0])


def test_rank_one_gives_full_marks() -> None:
    rank = _rank([0.1, 0.9, 0.3, 0.2], target=1)
    assert rank == 1
    values = metrics.per_user_metrics(np.asarray([rank]))
    assert values["NDCG@1"][0] == 1.0 and values["NDCG@10"][0] == 1.0
    assert values["HR@1"][0] == 1.0 and values["MRR"][0] == 1.0


def test_rank_three_gives_half_ndcg() -> None:
    rank = _rank([0.9, 0.8, 0.7, 0.1], target=2)
    assert rank == 3
    values = metrics.per_user_metrics(np.asarray([rank]))
    assert values["NDCG@5"][0] == pytest.approx(0.5)  # 1 / log2(3 + 1)
    assert values["HR@1"][0] == 0.0 and values["HR@5"][0] == 1.0
    assert values["MRR"][0] == pytest.approx(1 / 3)


def test_outside_k_scores_zero() -> None:
    scores = list(np.linspace(1.0, 0.0, 30))
    rank = _rank(scores, target=25)
    assert rank == 26
    values = metrics.per_user_metrics(np.asarray([rank]))
    for k in metrics.KS:
        assert values[f"HR@{k}"][0] == 0.0 and values[f"NDCG@{k}"][0] == 0.0
    assert values["MRR"][0] == pytest.approx(1 / 26)


def test_seen_items_are_removed_from_the_ranking() -> None:
    scores = [0.9, 0.8, 0.7, 0.1]
    assert _rank(scores, target=2) == 3
    assert _rank(scores, target=2, history=[0, 1]) == 1
    top = metrics.top_k_from_scores(np.asarray([scores]), 2, metrics.exclusion_mask([[0, 1]], 4))
    assert top.tolist() == [[2, 3]]


def test_ties_go_to_the_lower_index_consistently() -> None:
    scores = np.asarray([[0.5, 0.5, 0.5, 0.1]])
    exclude = metrics.exclusion_mask([[]], 4)
    assert metrics.ranks_from_scores(scores, [1], exclude).tolist() == [2.0]
    assert metrics.top_k_from_scores(scores, 3).tolist() == [[0, 1, 2]]


def test_nan_scores_rank_last() -> None:
    assert _rank([float("nan"), 0.1, 0.2], target=1) == 2


def test_generated_list_rank_and_cleaning() -> None:
    cleaned = metrics.clean_list([4, 7, 4, 2, 9], history=[7])
    assert cleaned == [4, 2, 9]
    assert metrics.rank_in_list(cleaned, 9) == 3
    assert metrics.rank_in_list(cleaned, 5) == math.inf
    values = metrics.per_user_metrics(np.asarray([math.inf]))
    assert values["MRR"][0] == 0.0 and values["HR@20"][0] == 0.0


def test_genre_similarity() -> None:
    genres = [frozenset({"Action", "Sci-Fi"}), frozenset({"Action"}), frozenset({"Drama"}), frozenset()]
    # target 0: Jaccard with item 1 = 1/2, with item 2 = 0 -> mean 0.25
    assert metrics.genre_similarity([1, 2], 0, genres) == pytest.approx(0.25)
    assert metrics.genre_similarity([], 0, genres) == 0.0
    assert metrics.genre_similarity([3], 3, genres) == 0.0
    assert metrics.genre_similarity([0] * 12, 0, genres, k=10) == 1.0


def test_paper_hit_uses_any_of_last_five() -> None:
    assert metrics.paper_hit([5, 6, 7], last_items=[1, 2, 3, 4, 7], k=3) == 1.0
    assert metrics.paper_hit([5, 6, 7], last_items=[1, 2, 3, 4, 7], k=2) == 0.0


def test_bootstrap_interval_contains_the_mean_and_is_fixed() -> None:
    values = np.random.default_rng(0).random(300) < 0.3
    indices = metrics.bootstrap_indices(300)
    assert indices.shape == (metrics.BOOTSTRAP_RESAMPLES, 300)
    low, high = metrics.bootstrap_interval(values, indices)
    assert low < values.mean() < high
    assert high - low < 0.15
    assert (low, high) == metrics.bootstrap_interval(values, metrics.bootstrap_indices(300))


def test_validation_ndcg_matches_per_user() -> None:
    scores = np.asarray([[0.1, 0.9, 0.3], [0.8, 0.1, 0.3]])

    value = metrics.validation_ndcg(lambda histories: scores, [[0], [1]], [1, 2], 3)
    assert value == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
