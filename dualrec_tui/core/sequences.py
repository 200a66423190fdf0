"""Chronological user sequences and the leave-one-out split of docs/evaluation.md.

A sequence is a user's interactions sorted by timestamp; ties keep source-file order (stable
sort). Test target = last item, validation target = second to last, training = the rest.

Memory: sequences are rows of one flat numpy array (`Ragged`), not lists of Python ints. At the
ml-32m shape (32M ratings) the lists took 6.3 GB; the flat arrays take 4 bytes an item, and the
split's training prefixes are views of the same array (only their bounds are stored).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .movielens import Dataset


class Ragged(Sequence[list[int]]):
    """Rows of numbers stored flat: row i is `values[starts[i]:ends[i]]`.

    Indexing with an int gives the row as a list (what callers used to get from a list of lists);
    a slice gives another Ragged over the same values (no copy). `row(i)` is the numpy view.
    """

    __slots__ = ("ends", "starts", "values")

    def __init__(self, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.values = values
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]] | Ragged, dtype: Any = np.int32) -> Ragged:
        """Pack Python rows (e.g. [[2, 5], [1]]) into one flat array."""
        if isinstance(rows, Ragged):
            return rows
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        ends = np.cumsum(lengths)
        values = np.fromiter((v for r in rows for v in r), dtype=dtype, count=int(ends[-1]) if len(ends) else 0)
        return cls(values, ends - lengths, ends)

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def __getitem__(self, index: Any) -> Any:  # int -> list; slice or index array -> Ragged
        if isinstance(index, slice | np.ndarray):
            return Ragged(self.values, self.starts[index], self.ends[index])
        return self.values[self.starts[index] : self.ends[index]].tolist()

    def __iter__(self) -> Iterator[list[Any]]:
        for start, end in zip(self.starts.tolist(), self.ends.tolist(), strict=True):
            yield self.values[start:end].tolist()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return NotImplemented if not isinstance(other, Sequence) else False
        return all(list(a) == list(b) for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable container semantics, like a list

    def __repr__(self) -> str:
        head = ", ".join(str(self[i]) for i in range(min(3, len(self))))
        return f"Ragged({len(self)} rows: [{head}{', ...' if len(self) > 3 else ''}])"

    def row(self, index: int) -> np.ndarray:
        """Row `index` as a numpy view (no copy)."""
        return self.values[self.starts[index] : self.ends[index]]

    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def concat(self, other: Ragged) -> Ragged:
        """This Ragged's rows, then `other`'s (no copy when both view the same values)."""
        if other.values is not self.values:
            merged = np.concatenate([self.flat(), other.flat()])
            lengths = np.concatenate([self.lengths(), other.lengths()])
            ends = np.cumsum(lengths)
            return Ragged(merged, ends - lengths, ends)
        return Ragged(self.values, np.concatenate([self.starts, other.starts]), np.concatenate([self.ends, other.ends]))

    def flat(self) -> np.ndarray:
        """Every row's values, concatenated (a copy)."""
        if not len(self):
            return self.values[:0].copy()
        lengths = self.lengths()
        # position of every value: its row's start + its offset inside the row
        offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.values[np.repeat(self.starts, lengths) + offsets]


def _ragged(rows: Any, dtype: Any) -> Ragged:
    return rows if isinstance(rows, Ragged) else Ragged.from_rows(rows, dtype)


@dataclass
class Sequences:
    """Per-user chronological item sequences (catalog indices), users in ascending id order.

    `items`, `ratings` and `timestamps` share row bounds; Python lists of rows are accepted too.
    """

    user_ids: list[int]
    items: Ragged  # int32 catalog indices
    ratings: Ragged  # float32
    timestamps: Ragged  # int64
    n_items: int
    kcore: int | None = None

    def __post_init__(self) -> None:
        self.items = _ragged(self.items, np.int32)
        self.ratings = _ragged(self.ratings, np.float32)
        self.timestamps = _ragged(self.timestamps, np.int64)

    def __len__(self) -> int:
        return len(self.user_ids)


def build_sequences(dataset: Dataset, kcore: int | None = None) -> Sequences:
    """Group ratings by user and sort each user's by timestamp, ties by file line (stable)."""
    users, items, ratings, times = dataset.user_ids, dataset.items, dataset.ratings, dataset.timestamps
    if kcore:
        keep = _kcore_mask(users, items, kcore)
        users, items, ratings, times = users[keep], items[keep], ratings[keep], times[keep]
    # np.lexsort is a stable sort by the last key first (user, then timestamp); being stable, equal
    # (user, timestamp) pairs keep file-line order without a third key.
    order = np.lexsort((times, users))
    starts = _row_starts(users, order)
    user_ids = users[order[starts]].tolist()
    ends = np.concatenate((starts[1:], [order.shape[0]] if len(starts) else [])).astype(np.int64)
    return Sequences(
        user_ids=user_ids,
        items=Ragged(_gather(items, order, np.int32), starts, ends),
        ratings=Ragged(_gather(ratings, order, ratings.dtype), starts, ends),
        timestamps=Ragged(_gather(times, order, times.dtype), starts, ends),
        n_items=len(dataset.catalog),
        kcore=kcore,
    )


def _gather(values: np.ndarray, order: np.ndarray, dtype: Any, block: int = 1 << 20) -> np.ndarray:
    """`values[order]` as `dtype`, a block at a time: no full-size temporary besides the result."""
    out = np.empty(order.shape[0], dtype=dtype)
    for lo in range(0, order.shape[0], block):
        out[lo : lo + block] = values[order[lo : lo + block]]
    return out


def _row_starts(users: np.ndarray, order: np.ndarray, block: int = 1 << 20) -> np.ndarray:
    """Positions in `order` where a new user begins (users[order] is grouped), a block at a time."""
    n = order.shape[0]
    starts = [np.zeros(min(n, 1), dtype=np.int64)]
    for lo in range(0, n - 1, block):
        sorted_users = users[order[lo : lo + block + 1]]  # one past the block: its last change is seen
        starts.append(np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + lo + 1)
    return np.concatenate(starts)


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
    shorter sequences are used whole for training and never evaluated.

    `train` and `extra_train` are Ragged views of the sequences' flat item array (lists of rows are
    accepted and packed)."""

    user_ids: list[int]  # evaluated users, aligned with the fields below
    train: Ragged  # each evaluated user's training prefix (all but the last two)
    valid_target: list[int]
    test_target: list[int]
    extra_train: Ragged  # sequences of users too short to evaluate (training only)
    n_items: int

    def __post_init__(self) -> None:
        self.train = _ragged(self.train, np.int32)
        self.extra_train = _ragged(self.extra_train, np.int32)

    def valid_input(self, u: int) -> list[int]:
        """What a model sees when predicting user u's validation target."""
        return self.train[u]

    def test_input(self, u: int) -> list[int]:
        """What a model sees when predicting user u's test target: everything but the test item."""
        return [*self.train[u], self.valid_target[u]]

    def training_sequences(self) -> Ragged:
        """Every sequence a model may fit on: no validation or test target inside."""
        return self.train.concat(self.extra_train)

    def without_fold(self, fold: int, n_folds: int) -> Split:
        """This split less the training sequences in `fold`: row r of `training_sequences()` is in fold
        r % n_folds. A model fit on the result has never seen that fold's sequences, so its predictions on
        them look like its predictions on held-out users (out-of-fold candidates, training/out_of_fold.py)."""
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold must be in 0..{n_folds - 1}, not {fold}")
        n_train = len(self.train)
        keep_train = np.flatnonzero(np.arange(n_train) % n_folds != fold)
        keep_extra = np.flatnonzero((n_train + np.arange(len(self.extra_train))) % n_folds != fold)
        return Split(
            user_ids=[self.user_ids[u] for u in keep_train.tolist()],
            train=self.train[keep_train],
            valid_target=[self.valid_target[u] for u in keep_train.tolist()],
            test_target=[self.test_target[u] for u in keep_train.tolist()],
            extra_train=self.extra_train[keep_extra],
            n_items=self.n_items,
        )

    def popularity(self) -> np.ndarray:
        """Interaction counts per item over training sequences only, shape (n_items,)."""
        return np.bincount(self.training_sequences().flat(), minlength=self.n_items).astype(np.int64)


def leave_one_out(sequences: Sequences) -> Split:
    """Split every sequence of 3 or more items into training prefix, validation and test targets."""
    items = sequences.items
    lengths = items.lengths()
    evaluated = lengths >= 3
    starts, ends = items.starts[evaluated], items.ends[evaluated]
    return Split(
        user_ids=np.asarray(sequences.user_ids)[evaluated].tolist(),
        train=Ragged(items.values, starts, ends - 2),
        valid_target=items.values[ends - 2].tolist(),
        test_target=items.values[ends - 1].tolist(),
        extra_train=Ragged(items.values, items.starts[~evaluated], items.ends[~evaluated]),
        n_items=sequences.n_items,
    )
