"""Ranking metrics of docs/evaluation.md: one relevant item per user, full ranking.

Everything here works on plain numpy arrays so it can be tested by hand:

- `ranks_from_scores` turns a (B, n_items) score matrix into the 1-based rank of each user's target
  after removing the user's input items. Ties are broken by catalog index (the same order
  `top_k_from_scores` uses), so a rank and a top-k list never disagree.
- `rank_in_list` does the same for a generated list (`rank(histories, k)`): input items and repeats are
  dropped first; a target that is not in the list is "not found" (rank = inf).
- HR@k = 1[rank <= k]; NDCG@k = 1/log2(rank + 1) if rank <= k else 0; MRR = 1/rank (0 if not found).
- genre similarity@k: mean Jaccard(genres(item), genres(target)) over the top-k list; an empty list
  scores 0 (and so does a pair of empty genre sets).
- paper-HR@k (the seed paper's own view, labelled): a hit if any of the user's last five items (the test
  target and the four before it) is in the model's top k. The model input is the ordinary test input,
  so the four earlier items are *in* the input; that is why this list is the raw top k, without
  removing input items (removing them would make paper-HR identical to HR). It rewards recommending
  what the user just watched, which is the point of labelling it.
- `bootstrap_intervals`: 95% percentile intervals of the mean, 1,000 resamples of users, fixed seed.
- `detectable_difference`: the smallest true mean difference that a paired comparison on these users
  would show (95% interval excluding 0) with 80% probability, from the spread of the per-user differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (1, 5, 10, 20)
GENRE_K = 10
PAPER_LAST = 5
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 12345
TUNE_K = 10  # models that tune on validation targets maximise NDCG@TUNE_K


def exclusion_mask(histories: Sequence[Sequence[int]], n_items: int) -> np.ndarray:
    """(B, n_items) bool, True where the item is in that user's input sequence."""
    mask = np.zeros((len(histories), n_items), dtype=bool)
    for row, history in enumerate(histories):
        if len(history):
            mask[row, np.asarray(history, dtype=np.int64)] = True
    return mask


def _clean(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(scores), -np.inf, scores)


def ranks_from_scores(scores: np.ndarray, targets: Sequence[int], exclude: np.ndarray) -> np.ndarray:
    """1-based rank of each target among non-excluded items; ties go to the lower catalog index.

    scores (B, n_items), targets (B,), exclude (B, n_items) bool. An excluded target gets rank inf.
    """
    scores = _clean(scores)
    batch, n_items = scores.shape
    targets = np.asarray(targets, dtype=np.int64)
    rows = np.arange(batch)
    target_scores = scores[rows, targets][:, None]  # (B, 1)
    live = ~exclude
    better = (scores > target_scores) & live
    tied_before = (scores == target_scores) & live & (np.arange(n_items)[None, :] < targets[:, None])
    ranks = 1.0 + better.sum(axis=1) + tied_before.sum(axis=1)
    ranks[exclude[rows, targets]] = np.inf
    return ranks


def top_k_from_scores(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """(B, k) catalog indices, best first, ties by lower index; excluded items never appear."""
    scores = _clean(scores)
    if exclude is not None:
        scores = np.where(exclude, -np.inf, scores)
    k = min(k, scores.shape[1])
    # Stable sort on the negated scores keeps the lower index first among ties.
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def clean_list(items: Sequence[int], history: Sequence[int]) -> list[int]:
    """A generated list with input items and repeats removed, order kept."""
    seen = set(history)
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(int(item))
    return out


def rank_in_list(items: Sequence[int], target: int) -> float:
    """1-based position of target in a (cleaned) list, inf when absent."""
    for position, item in enumerate(items, start=1):
        if item == target:
            return float(position)
    return np.inf


def hit_rate(ranks: np.ndarray, k: int) -> np.ndarray:
    return (np.asarray(ranks) <= k).astype(np.float64)


def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k of 1-based ranks (inf = not found): the one NDCG every harness row and tuner uses."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out = np.zeros_like(ranks)
    inside = ranks <= k
    out[inside] = 1.0 / np.log2(ranks[inside] + 1.0)
    return out


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(np.isfinite(ranks), 1.0 / ranks, 0.0)


def jaccard(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def genre_similarity(items: Sequence[int], target: int, genres: Sequence[frozenset[str]], k: int = GENRE_K) -> float:
    """Mean Jaccard between each of the top-k items' genres and the target's; empty list = 0."""
    top = list(items)[:k]
    if not top:
        return 0.0
    wanted = genres[target]
    return float(np.mean([jaccard(genres[item], wanted) for item in top]))


def paper_hit(raw_top: Sequence[int], last_items: Sequence[int], k: int) -> float:
    """1 if any of the user's last items appears in the raw (unfiltered) top k."""
    return float(bool(set(list(raw_top)[:k]) & set(last_items)))


def per_user_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """HR@k, NDCG@k for k in KS and MRR, each a (n_users,) array."""
    out: dict[str, np.ndarray] = {}
    for k in KS:
        out[f"HR@{k}"] = hit_rate(ranks, k)
    for k in KS:
        out[f"NDCG@{k}"] = ndcg(ranks, k)
    out["MRR"] = reciprocal_rank(ranks)
    return out


def bootstrap_indices(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples, n) user indices drawn with replacement; shared by all models (paired intervals)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_interval(values: np.ndarray, indices: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of `values` over the resampled user indices."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (0.0, 0.0)
    means = values[indices].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return (float(low), float(high))


DETECTABLE_POWER = 0.80
_Z_975 = 1.959963984540054  # two-sided 95% interval
_Z_POWER = {0.80: 0.8416212335729143, 0.90: 1.2815515655446004}


def detectable_difference(differences: np.ndarray, power: float = DETECTABLE_POWER) -> float | None:
    """(z_0.975 + z_power) * sd / sqrt(n) of per-user paired differences (normal approximation); None
    for fewer than two users.

    Why: an interval that spans 0 says more once one knows how large a gain these users *could* have
    shown: a true difference of this size gives an interval excluding 0 with probability `power`
    (a design quantity at the observed spread, not a bound on the true difference; the interval is that).
    """
    values = np.asarray(differences, dtype=np.float64)
    if values.size < 2:
        return None
    return float((_Z_975 + _Z_POWER[power]) * values.std(ddof=1) / np.sqrt(values.size))


def summarise(per_user: dict[str, np.ndarray], indices: np.ndarray) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Means and 95% bootstrap intervals of every per-user metric."""
    means = {name: float(np.mean(values)) if len(values) else 0.0 for name, values in per_user.items()}
    intervals = {name: list(bootstrap_interval(values, indices)) for name, values in per_user.items()}
    return means, intervals


def validation_ndcg(
    score_fn,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    n_items: int,
    k: int = TUNE_K,
    batch: int = 256,
) -> float:
    """Mean NDCG@k of `score_fn(histories) -> (B, n_items)` under the full-ranking protocol (for tuning)."""
    total = 0.0
    for lo in range(0, len(histories), batch):
        chunk = [list(h) for h in histories[lo : lo + batch]]
        scores = np.asarray(score_fn(chunk))
        ranks = ranks_from_scores(scores, targets[lo : lo + batch], exclusion_mask(chunk, n_items))
        total += float(ndcg(ranks, k).sum())
    return total / max(len(histories), 1)
