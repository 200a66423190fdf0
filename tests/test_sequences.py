"""Chronological sequences, stable tie-breaking, k-core and the leave-one-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from movielens_samples import write_100k

from dualrec_tui.core.catalog import build_catalog
from dualrec_tui.core.movielens import Dataset, load_dataset
from dualrec_tui.core.sequences import build_sequences, leave_one_out


def _dataset(rows: list[tuple[int, int, int]], n_items: int = 10) -> Dataset:
    """rows = (user, item index, timestamp) in file order."""
    catalog = build_catalog([(i + 1, f"Movie {i + 1} (2000)", ["Drama"]) for i in range(n_items)])
    users, items, times = (np.asarray(col, dtype=np.int64) for col in zip(*rows, strict=True))
    return Dataset("t", "csv", catalog, users, items, np.ones(len(rows), dtype=np.float32), times)


def test_sorted_by_time_ties_by_file_line(tmp_path: Path) -> None:
    dataset = load_dataset(write_100k(tmp_path / "r"))
    sequences = build_sequences(dataset)
    ids = [[dataset.catalog[i].movie_id for i in seq] for seq in sequences.items]
    # user 1: movie 2 at t=50, then movies 3 and 1 tied at t=100 in file order 3, 1, then movie 4
    assert sequences.user_ids == [1, 2, 3]
    assert ids == [[2, 3, 1, 4], [2, 1, 3], [4, 1]]
    assert sequences.timestamps[0] == [50, 100, 100, 200]


def test_tie_order_follows_file_not_item_id() -> None:
    forward = build_sequences(_dataset([(1, 5, 1), (1, 2, 1), (1, 7, 1)]))
    backward = build_sequences(_dataset([(1, 7, 1), (1, 2, 1), (1, 5, 1)]))
    assert forward.items == [[5, 2, 7]] and backward.items == [[7, 2, 5]]


def test_users_ascending_and_ratings_follow_items() -> None:
    dataset = _dataset([(9, 1, 3), (2, 4, 1), (9, 2, 1), (2, 3, 2)])
    dataset.ratings = np.asarray([1, 2, 3, 4], dtype=np.float32)
    sequences = build_sequences(dataset)
    assert sequences.user_ids == [2, 9]
    assert sequences.items == [[4, 3], [2, 1]]
    assert sequences.ratings == [[2.0, 4.0], [3.0, 1.0]]


def test_kcore_repeats_until_stable() -> None:
    # item 9 is rated only by user 3; removing it leaves user 3 with 1 rating, so user 3 goes too,
    # which drops item 0 to 2 raters (still >= 2). Users 1 and 2 keep items 0 and 1.
    rows = [(1, 0, 1), (1, 1, 2), (2, 0, 1), (2, 1, 2), (3, 0, 1), (3, 9, 2)]
    sequences = build_sequences(_dataset(rows), kcore=2)
    assert sequences.user_ids == [1, 2] and sequences.items == [[0, 1], [0, 1]]
    assert sequences.kcore == 2
    assert build_sequences(_dataset(rows)).user_ids == [1, 2, 3]


def test_leave_one_out_short_users_train_only() -> None:
    rows = [(1, 0, 1), (1, 1, 2), (2, 2, 1), (2, 3, 2), (2, 4, 3), (3, 5, 1)]
    split = leave_one_out(build_sequences(_dataset(rows)))
    assert split.user_ids == [2]
    assert (split.train, split.valid_target, split.test_target) == ([[2]], [3], [4])
    assert split.extra_train == [[0, 1], [5]]
    assert split.test_input(0) == [2, 3] and split.valid_input(0) == [2]
    assert split.popularity().tolist() == [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(0, 14), st.integers(0, 5)),
        min_size=1,
        max_size=60,
        unique_by=lambda r: (r[0], r[1]),
    )
)
def test_leave_one_out_invariants(rows: list[tuple[int, int, int]]) -> None:
    sequences = build_sequences(_dataset(rows, n_items=15))
    split = leave_one_out(sequences)
    full = dict(zip(sequences.user_ids, sequences.items, strict=True))
    assert sum(len(s) for s in sequences.items) == len(rows)
    for u, user in enumerate(split.user_ids):
        # train + valid + test == the full sequence
        assert [*split.train[u], split.valid_target[u], split.test_target[u]] == full[user]
        # targets are never in the input of their own position
        assert split.test_target[u] not in split.test_input(u)
        assert split.valid_target[u] not in split.valid_input(u)
        assert split.test_target[u] not in split.train[u]
    assert all(len(full[user]) >= 3 for user in split.user_ids)
    assert sorted(map(len, split.extra_train)) == sorted(len(s) for s in sequences.items if len(s) < 3)
    # popularity counts training data only: validation and test targets are not in it
    expected = np.zeros(15, dtype=np.int64)
    for seq in split.training_sequences():
        for item in seq:
            expected[item] += 1
    assert split.popularity().tolist() == expected.tolist()
    assert split.popularity().sum() == len(rows) - 2 * len(split.user_ids)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 14), st.integers(0, 3)), max_size=60))
def test_flat_sequences_equal_the_list_grouping(rows: list[tuple[int, int, int]]) -> None:
    """Rows of the flat arrays are what sorting each user's list by (time, file line) gives."""
    if not rows:
        return
    sequences = build_sequences(_dataset(rows, n_items=15))
    expected: dict[int, list[tuple[int, int, int]]] = {}
    for line, (user, item, time) in enumerate(rows):
        expected.setdefault(user, []).append((time, line, item))
    assert sequences.user_ids == sorted(expected)
    assert list(sequences.items) == [[item for _, _, item in sorted(expected[u])] for u in sorted(expected)]
    assert list(sequences.timestamps) == [[t for t, _, _ in sorted(expected[u])] for u in sorted(expected)]
    split = leave_one_out(sequences)
    training = split.training_sequences()
    assert list(training) == [*split.train, *split.extra_train]
    assert training.flat().tolist() == [i for row in training for i in row]


def test_empty_release_gives_no_sequences() -> None:
    empty = Dataset(
        "t",
        "csv",
        build_catalog([(1, "Movie (2000)", [])]),
        *(np.zeros(0, np.int64),) * 2,
        np.zeros(0, np.float32),
        np.zeros(0, np.int64),
    )
    split = leave_one_out(build_sequences(empty))
    assert (split.user_ids, len(split.training_sequences()), split.popularity().tolist()) == ([], 0, [0])
