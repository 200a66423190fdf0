"""LSTM reasons name the history movie the pick actually rests on (issue #11: reasons read as random)."""

from __future__ import annotations

import numpy as np

from dualrec_tui.core.reasons import closest_in_history, genre_reason, lstm_reasons
from tests.tui_support import small_catalog

CATALOG = small_catalog()
INDEX = {m.title: m.index for m in CATALOG}
HEAT, MATRIX, TOY, INCEPTION, FIGHT = (
    INDEX["Heat"],
    INDEX["The Matrix"],
    INDEX["Toy Story"],
    INDEX["Inception"],
    INDEX["Fight Club"],
)


def additive_scorer(weights: np.ndarray):
    """score(history)[p] = sum of weights[h, p] over the history: each movie's contribution is known."""

    def score(histories: list[list[int]]) -> np.ndarray:
        return np.stack([weights[h].sum(axis=0) if h else np.zeros(weights.shape[1]) for h in histories])

    return score


def test_reason_names_the_movie_that_contributes_most() -> None:
    n = len(CATALOG)
    weights = np.zeros((n, n))
    weights[MATRIX, INCEPTION] = 3.0  # Inception rests on The Matrix
    weights[TOY, INCEPTION] = 0.5
    weights[HEAT, FIGHT] = 2.0  # Fight Club rests on Heat
    reasons = lstm_reasons(additive_scorer(weights), [TOY, HEAT, MATRIX], [INCEPTION, FIGHT], CATALOG)
    assert reasons[INCEPTION].startswith("because you watched The Matrix (1999)")
    assert "Sci-Fi" in reasons[INCEPTION]  # the genres the two share
    assert reasons[FIGHT].startswith("because you watched Heat (1995)")


def test_no_single_movie_matters_gives_the_true_genre_overlap() -> None:
    n = len(CATALOG)
    reasons = lstm_reasons(additive_scorer(np.zeros((n, n))), [HEAT, MATRIX], [FIGHT], CATALOG)
    # Fight Club: Action, Crime, Drama, Thriller; Heat and The Matrix share Action and Thriller.
    assert reasons[FIGHT] == "Action, Thriller, like 2 of your last 2"


def test_only_the_window_is_used() -> None:
    n = len(CATALOG)
    weights = np.zeros((n, n))
    weights[TOY, INCEPTION] = 5.0
    reasons = lstm_reasons(additive_scorer(weights), [TOY, HEAT, MATRIX], [INCEPTION], CATALOG, window=2)
    assert "Toy Story" not in reasons[INCEPTION]  # outside the window the LSTM reads


def test_embedding_similarity_reason() -> None:
    vectors = np.eye(len(CATALOG))
    vectors[INCEPTION, MATRIX] = 1.0  # Inception's vector points towards The Matrix
    reasons = closest_in_history(vectors, [HEAT, MATRIX], [INCEPTION, TOY], CATALOG)
    assert reasons[INCEPTION].startswith("because you watched The Matrix (1999)")
    assert not reasons[TOY].startswith("because")  # nothing close: the genre overlap instead


def test_empty_history() -> None:
    assert genre_reason(CATALOG[0], []) == "popular pick (log a movie to personalise)"
    assert lstm_reasons(lambda h: np.zeros((len(h), len(CATALOG))), [], [INCEPTION], CATALOG)[INCEPTION].startswith(
        "popular pick"
    )
