"""Chronological user sequences and the leave-one-out split of docs/evaluation.md.

A sequence is a user's interactions sorted by timestamp; ties keep source-file order (stable
sort). Test target = last item, validation target = second to last, training = the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .movielens import Dataset


@dataclass
class Sequences:
    """Per-user chronological item sequences (catalog indices), users in ascending id order."""

    user_ids: list[int]
    items: list[list[int]]
    ratings: list[list[float]]
    timestamps: list[list[int]]
    n_items: int
    kcore: int | None = None

    def __len__(self) -> int:
        return len(self.user_ids)


def build_sequences(dataset: Dataset, kcore: int | None = None) -> Sequences:
    """Group ratings by user and sort each user's by timestamp, ties by file line (stable)."""
    keep = np.ones(dataset.n_ratings, dtype=bool)
    if kcore:
        keep = _kcore_mask(dataset.user_ids, dataset.items, kcore)
    users = dataset.user_ids[keep]
    items = dataset.items[keep]
    ratings = dataset.ratings[keep]
    times = dataset.timestamps[keep]
    line_order = np.arange(users.shape[0])
    # np.lexsort sorts by the last key first: user, then timestamp, then file line.
    order = np.lexsort((line_order, times, users))
    users, items, ratings, times = users[order], items[order], ratings[order], times[order]
    boundaries = np.flatnonzero(np.diff(users)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [users.shape[0]]))
    return Sequences(
        user_ids=[int(users[s]) for s in starts],
        items=[items[s:e].tolist() for s, e in zip(starts, ends, strict=True)],
        ratings=[ratings[s:e].tolist() for s, e in zip(starts, ends, strict=True)],
        timestamps=[times[s:e].tolist() for s, e in zip(starts, ends, strict=True)],
        n_items=len(dataset.catalog),
        kcore=kcore,
    )


def _kcore_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Drop users and items with fewer than k interactions, repeated until stable."""
    keep = np.ones(users.shape[0], dtype=bool)
    while True:
        _, user_inverse, user_counts = np.unique(users[keep], return_inverse=True, return_counts=True)
        _, item_inverse, item_counts = np.unique(items[keep], return_inverse=True, return_counts=True)
        ok = (user_counts[user_inverse] >= k) & (item_counts[item_inverse] >= k)
        if ok.all():
            return keep
        indices = np.flatnonzero(keep)
        keep[indices[~ok]] = False


@dataclass
class Split:
    """Leave-one-out. Only users with at least 3 interactions have validation and test targets;
    shorter sequences are used whole for training and never evaluated."""

    user_ids: list[int]  # evaluated users, aligned with the lists below
    train: list[list[int]]  # each evaluated user's training prefix (all but the last two)
    valid_target: list[int]
    test_target: list[int]
    extra_train: list[list[int]]  # sequences of users too short to evaluate (training only)
    n_items: int

    def valid_input(self, u: int) -> list[int]:
        """What a model sees when predicting user u's validation target."""
        return self.train[u]

    def test_input(self, u: int) -> list[int]:
        """What a model sees when predicting user u's test target: everything but the test item."""
        return [*self.train[u], self.valid_target[u]]

    def training_sequences(self) -> list[list[int]]:
        """Every sequence a model may fit on: no validation or test target inside."""
        return [*self.train, *self.extra_train]

    def popularity(self) -> np.ndarray:
        """Interaction counts per item over training sequences only, shape (n_items,)."""
        counts = np.zeros(self.n_items, dtype=np.int64)
        for seq in self.training_sequences():
            np.add.at(counts, seq, 1)
        return counts


def leave_one_out(sequences: Sequences) -> Split:
    user_ids, train, valid, test, extra = [], [], [], [], []
    for user, seq in zip(sequences.user_ids, sequences.items, strict=True):
        if len(seq) < 3:
            extra.append(list(seq))
            continue
        user_ids.append(user)
        train.append(list(seq[:-2]))
        valid.append(seq[-2])
        test.append(seq[-1])
    return Split(user_ids, train, valid, test, extra, sequences.n_items)
