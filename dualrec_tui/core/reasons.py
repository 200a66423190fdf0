"""True reasons for LSTM picks: which movie of the user's history the pick rests on.

"Fight Club — like Hamlet" read as random because the old reason was picked after the fact by genre
overlap with a recent movie, whatever the LSTM actually used. Here the reason comes from the model:

* `lstm_reasons` (attribution by ablation): the LSTM scores the history once as is and once with
  each movie of its window left out (one batch, ~window + 1 short sequences). The movie whose
  removal lowers the pick's score most is the one the pick rests on. If no removal lowers it (the
  pick does not depend on any single movie), the reason states the genre overlap with the history
  instead, or says it is the LSTM's pick for the history as a whole.
* `closest_in_history` (cheaper, no extra LSTM pass): the history movie nearest to the pick in the
  LSTM's item-embedding space (cosine), for callers that cannot afford the ablation batch.

Both return plain sentences that are true of the model that ran; neither imports torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from .catalog import Catalog, Movie

DEFAULT_WINDOW = 30  # the LSTM reads the last 30 movies (LstmConfig.window)


def _shared_genres(pick: Movie, other: Movie, limit: int = 2) -> list[str]:
    return [g for g in pick.genres if g in other.genres][:limit]


def _because(pick: Movie, anchor: Movie) -> str:
    shared = _shared_genres(pick, anchor)
    return f"because you watched {anchor.label}" + (f" ({', '.join(shared)})" if shared else "")


def genre_reason(pick: Movie, history: Sequence[Movie]) -> str:
    """'Crime, Drama, like 4 of your last 12': the pick's genres most shared with the history (true counts)."""
    if not history:
        return "popular pick (log a movie to personalise)"
    counts = Counter(g for movie in history for g in movie.genres if g in pick.genres)
    if not counts:
        return f"the LSTM's pick for your last {len(history)} movies (no genre in common)"
    top = [g for g, _ in counts.most_common(2)]
    sharing = sum(1 for movie in history if set(top) & set(movie.genres))
    return f"{', '.join(top)}, like {sharing} of your last {len(history)}"


def lstm_reasons(
    score: Callable[[list[list[int]]], np.ndarray],
    history: Sequence[int],
    picks: Sequence[int],
    catalog: Catalog,
    window: int = DEFAULT_WINDOW,
) -> dict[int, str]:
    """A reason per pick (catalog index -> text), by leaving each movie of the LSTM's window out.

    `score` is `LstmRecommender.score` (histories -> (B, n_items) scores, higher = better).
    """
    recent = [i for i in history if 0 <= i < len(catalog)][-window:]
    if not picks:
        return {}
    movies = [catalog[i] for i in recent]
    if not recent:
        return {p: genre_reason(catalog[p], []) for p in picks}
    ablated = [recent[:j] + recent[j + 1 :] for j in range(len(recent))]
    scores = np.asarray(score([recent, *ablated]), dtype=np.float64)
    reasons: dict[int, str] = {}
    for pick in picks:
        drops = scores[0, pick] - scores[1:, pick]  # how much the pick loses without each movie
        best = int(np.argmax(drops[::-1]))  # the most recent movie wins a tie
        position = len(recent) - 1 - best
        if drops[position] > 1e-6:
            reasons[pick] = _because(catalog[pick], movies[position])
        else:
            reasons[pick] = genre_reason(catalog[pick], movies)
    return reasons


def closest_in_history(
    vectors: np.ndarray,
    history: Sequence[int],
    picks: Sequence[int],
    catalog: Catalog,
    window: int = DEFAULT_WINDOW,
    min_similarity: float = 0.2,
) -> dict[int, str]:
    """A reason per pick from item embeddings: the window's movie with the highest cosine to the pick.

    `vectors` is (n_items, D) in catalog order: `LstmRecommender._items[1:]` as numpy (row 0 there is
    padding). Below `min_similarity` no movie is close enough to name, and the genre overlap is given.
    """
    recent = [i for i in history if 0 <= i < len(catalog)][-window:]
    movies = [catalog[i] for i in recent]
    if not recent:
        return {p: genre_reason(catalog[p], []) for p in picks}
    # only the rows used: normalising all of an 87k-movie catalog took 60-80 ms per list
    rows = np.asarray(vectors)[recent + list(picks)].astype(np.float64)
    norms = np.linalg.norm(rows, axis=1)
    norms[norms == 0] = 1.0
    rows /= norms[:, None]
    seen = rows[: len(recent)]
    reasons: dict[int, str] = {}
    for n, pick in enumerate(picks):
        similarity = seen @ rows[len(recent) + n]
        best = len(recent) - 1 - int(np.argmax(similarity[::-1]))  # the most recent wins a tie
        if similarity[best] >= min_similarity:
            reasons[pick] = _because(catalog[pick], movies[best])
        else:
            reasons[pick] = genre_reason(catalog[pick], movies)
    return reasons


def item_embeddings(recommender: object) -> np.ndarray | None:
    """(n_items, D) item vectors of a loaded `LstmRecommender` (numpy or torch model), None for other scorers."""
    model = getattr(recommender, "model", None)
    items = getattr(model, "items", None)  # core.lstm_numpy.NumpyLstm: (N+1, D) with row 0 = padding
    if items is None:
        items = getattr(recommender, "_items", None)  # a torch module's cached item vectors
        if items is None:
            return None
        items = items.float().cpu().numpy()
    return np.asarray(items)[1:]
