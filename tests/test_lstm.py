"""The LSTM next-movie model: shapes, padding, persistence, catalog checks, training, top_k."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualrec_tui.core.artifacts import default_data_dir
from dualrec_tui.core.catalog import build_catalog
from dualrec_tui.core.errors import DualrecError, ModelUnavailableError
from dualrec_tui.core.lstm import (
    LstmConfig,
    LstmRecommender,
    build_model,
    build_title_vocabulary,
    encode_histories,
    item_features,
    load_model,
    save_model,
)
from dualrec_tui.core.sequences import Ragged, Split
from training.fit_lstm import LstmModel, TrainConfig, lstm_windows, train_lstm

torch = pytest.importorskip("torch")

GENRES = ["Action", "Comedy", "Drama", "Horror"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_catalog(n: int = 40, popularity: bool = True):
    rows = [
        (100 + i, f"Movie {['Red', 'Blue', 'Green'][i % 3]} Part {i} ({1980 + i % 20})", [GENRES[i % 4]])
        for i in range(n)
    ]
    catalog = build_catalog(rows, name="synthetic")
    if popularity:
        catalog.popularity = [(i * 7) % 13 for i in range(n)]
    return catalog


def make_model(catalog, window: int = 8, tie: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    config = LstmConfig(
        n_items=len(catalog),
        catalog_fingerprint=catalog.fingerprint,
        title_vocabulary=build_title_vocabulary(catalog),
        genre_vocabulary=catalog.genre_vocabulary,
        window=window,
        dim=16,
        hidden=24,
        tie=tie,
    )
    return build_model(config, catalog).eval()


def synthetic_split(n_items: int, n_users: int = 60, length: int = 12, seed: int = 0) -> Split:
    """Users walk the catalog in steps of 1 or 2 from a random start: a learnable next-item pattern."""
    rng = np.random.default_rng(seed)
    train, valid, test = [], [], []
    for _ in range(n_users):
        start, step = int(rng.integers(n_items)), int(rng.integers(1, 3))
        seq = [(start + step * t) % n_items for t in range(length)]
        train.append(seq[:-2])
        valid.append(seq[-2])
        test.append(seq[-1])
    return Split(list(range(n_users)), train, valid, test, [], n_items)


def test_features_share_one_title_vocabulary_and_pad_row_is_empty():
    catalog = make_catalog()
    vocabulary = build_title_vocabulary(catalog)
    assert "red" in vocabulary and "<decade:1980>" in vocabulary
    assert "0" not in vocabulary  # "part 0" occurs once: left to the id embedding
    tokens, genres = item_features(catalog, vocabulary, catalog.genre_vocabulary)
    assert tokens.shape[0] == genres.shape[0] == len(catalog) + 1
    assert not tokens[0].any() and not genres[0].any()
    assert genres.sum(1)[1:].tolist() == [1.0] * len(catalog)


@pytest.mark.parametrize("tie", [True, False])
def test_shapes_and_padding_cannot_change_scores(tie):
    catalog = make_catalog()
    model = make_model(catalog, tie=tie)
    ids, lengths = encode_histories([[3, 4, 5], [7]], len(catalog), window=8)
    assert ids.shape == (2, 3) and lengths.tolist() == [3, 1]
    with torch.no_grad():
        scores = model(torch.from_numpy(ids), torch.from_numpy(lengths))
        assert scores.shape == (2, len(catalog))
        # The same histories with much more padding, and with garbage ids in the padded slots.
        wide = np.zeros((2, 10), dtype=np.int64)
        wide[:, :3] = ids
        noisy = wide.copy()
        noisy[1, 1:] = np.arange(1, 10)  # row 1 has length 1: everything after is padding
        for variant in (wide, noisy):
            again = model(torch.from_numpy(variant), torch.from_numpy(lengths))
            np.testing.assert_allclose(again.numpy(), scores.numpy(), rtol=1e-5, atol=1e-5)
    recommender = LstmRecommender(model, catalog)
    alone = recommender.score([[7]])
    batched = recommender.score([[3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [7]])
    np.testing.assert_allclose(batched[1], alone[0], rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_gives_identical_scores(tmp_path):
    catalog = make_catalog()
    model = make_model(catalog)
    save_model(model, tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["catalog_fingerprint"] == catalog.fingerprint and config["title_vocabulary"]
    histories = [[1, 2, 3], [10, 20], list(range(30))]
    before = LstmRecommender(model, catalog).score(histories)
    after = LstmRecommender(load_model(tmp_path, catalog), catalog).score(histories)
    np.testing.assert_array_equal(before, after)
    # The app's loader runs the same weights in numpy (tests/test_lstm_numpy.py: within 1e-5).
    np.testing.assert_allclose(LstmRecommender.load(tmp_path, catalog).score(histories), before, atol=1e-5)


def test_float16_weights_halve_the_file_and_keep_the_ranking(tmp_path):
    catalog = make_catalog()
    model = make_model(catalog)
    save_model(model, tmp_path / "f32")
    save_model(model, tmp_path / "f16", float16=True)
    size = {name: (tmp_path / name / "model.safetensors").stat().st_size for name in ("f32", "f16")}
    assert size["f16"] < 0.6 * size["f32"]
    history = [4, 8, 15, 16, 23]
    full = LstmRecommender.load(tmp_path / "f32", catalog).score([history])[0]
    half = LstmRecommender.load(tmp_path / "f16", catalog).score([history])[0]
    np.testing.assert_allclose(half, full, atol=1e-2)
    assert np.corrcoef(half, full)[0, 1] > 0.999


def test_refuses_a_checkpoint_for_another_catalog(tmp_path):
    catalog = make_catalog()
    save_model(make_model(catalog), tmp_path)
    other = make_catalog(n=41)
    with pytest.raises(ModelUnavailableError) as info:
        load_model(tmp_path, other)
    assert "another catalog" in str(info.value) and "python -m training lstm" in str(info.value)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelUnavailableError, match=r"model\.safetensors is missing"):
        load_model(tmp_path, catalog)


def test_top_k_excludes_history_and_handles_empty_unknown_and_long_histories():
    catalog = make_catalog()
    recommender = LstmRecommender(make_model(catalog, window=8), catalog)
    history = [5, 6, 7]
    top = recommender.top_k(history, k=10, exclude=[9])
    assert len(top) == 10 and recommender.fallback(history) is None
    assert not {i for i, _ in top} & {5, 6, 7, 9}
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    # Empty history: popularity fallback, and it says so.
    empty = recommender.top_k([], k=5)
    assert recommender.fallback([]) == "popularity"
    assert [i for i, _ in empty] == list(np.argsort(-np.asarray(catalog.popularity), kind="stable")[:5])
    # Unknown ids are skipped: same result as without them.
    assert recommender.top_k([5, 6, 7, 10_000, -3], k=10, exclude=[9]) == top
    assert recommender.top_k([10_000], k=3) == empty[:3] and recommender.fallback([10_000]) == "popularity"
    # Longer than the window: only the most recent `window` movies count.
    long = list(range(20))
    np.testing.assert_allclose(recommender.score([long]), recommender.score([long[-8:]]), rtol=1e-6, atol=1e-6)
    # No popularity at all: uniform fallback.
    bare = make_catalog(popularity=False)
    uniform = LstmRecommender(make_model(bare), bare)
    assert [i for i, _ in uniform.top_k([], k=3)] == [0, 1, 2] and uniform.fallback([]) == "uniform"


def _list_chunks(sequences: list[list[int]], window: int, stride: int) -> tuple[list[list[int]], list[list[bool]]]:
    """The list-based cutting `lstm_windows` replaced (kept here as the reference it must equal)."""
    rows, masks = [], []
    for seq in sequences:
        ids, n = [i + 1 for i in seq], len(seq)
        if n < 2:
            continue
        end, counted_from = n, n
        while True:
            start = max(0, end - window - 1)
            chunk = ids[start:end]
            mask = [start == 0 or start + t + 1 >= end - stride for t in range(len(chunk) - 1)]
            rows.append(chunk + [0] * (window + 1 - len(chunk)))
            masks.append(
                [m and start + t + 1 < counted_from for t, m in enumerate(mask)] + [False] * (window + 1 - len(chunk))
            )
            counted_from = start + 1 if start == 0 else end - stride
            if start == 0:
                break
            end -= stride
    return rows, masks


def test_training_chunks_count_every_target_once():
    windows = lstm_windows(Ragged.from_rows([list(range(25)), [3, 4], [9]]), window=6, stride=3)
    rows = np.arange(len(windows))
    chunks, mask = windows.ids(rows), windows.loss_mask(rows)
    targets = [int(chunks[r, t + 1]) - 1 for r, t in zip(*np.nonzero(mask), strict=True)]
    assert sorted(targets) == sorted([*range(1, 25), 4])
    assert chunks.shape[1] == 7 and mask.shape[1] == 6


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 50), max_size=40), max_size=8),
    st.integers(1, 12),
    st.integers(0, 12),
)
def test_windows_cut_on_demand_equal_the_list_chunks(sequences: list[list[int]], window: int, stride: int) -> None:
    stride = min(stride, window)  # a longer stride would skip targets: refused (next test)
    windows = lstm_windows(Ragged.from_rows(sequences), window, stride)
    rows = np.arange(len(windows))
    expected_rows, expected_masks = _list_chunks(sequences, window, stride or max(1, window // 2))
    assert windows.ids(rows).tolist() == expected_rows
    assert windows.loss_mask(rows).tolist() == [m[:window] for m in expected_masks]
    shuffled = np.random.default_rng(0).permutation(len(windows))  # a batch is any subset, in any order
    assert windows.ids(shuffled).tolist() == [expected_rows[r] for r in shuffled]


def test_a_stride_longer_than_the_window_is_refused():
    with pytest.raises(DualrecError, match="stride 7 is longer than the window 6"):
        lstm_windows(Ragged.from_rows([list(range(25))]), window=6, stride=7)


def test_training_learns_a_synthetic_pattern_and_is_deterministic():
    catalog = make_catalog(n=30)
    split = synthetic_split(len(catalog))
    config = TrainConfig(window=8, dim=16, hidden=32, max_epochs=10, patience=10, lr=1e-2, batch_size=32)
    model, log = train_lstm(split, catalog, config, seed=3)
    assert log[-1]["train_loss"] < log[0]["train_loss"] - 0.5
    assert model.config.training["best_valid_ndcg10"] > 0.3  # random ranking of 30 items: ~0.1
    again, _ = train_lstm(split, catalog, config, seed=3)
    history = [[1, 2, 3]]
    np.testing.assert_array_equal(
        LstmRecommender(model, catalog).score(history), LstmRecommender(again, catalog).score(history)
    )


def _data(name: str) -> Path:
    path = default_data_dir() / name
    if not path.is_dir():
        pytest.skip(f"MovieLens data {path} not found (set DUALREC_DATA_DIR)")
    return path


def test_short_real_training_run_lowers_the_loss(tmp_path):
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    dataset = load_dataset(_data("ml-100k"))
    full = leave_one_out(build_sequences(dataset))
    users = slice(0, 120)
    split = Split(
        full.user_ids[users], full.train[users], full.valid_target[users], full.test_target[users], [], full.n_items
    )
    config = TrainConfig(window=20, dim=32, hidden=64, max_epochs=3, patience=3, batch_size=64)
    model = LstmModel(config=config)
    model.fit(split, dataset.catalog, seed=0)
    losses = [r["train_loss"] for r in model.log]
    assert losses[-1] < losses[0]
    scores = model.score([split.valid_input(0)])
    assert scores.shape == (1, len(dataset.catalog)) and np.isfinite(scores).all()


def test_time_limit_stops_after_the_first_epoch_and_says_so():
    catalog = make_catalog(n=20)
    split = synthetic_split(len(catalog), n_users=10)
    config = TrainConfig(window=6, dim=8, hidden=8, max_epochs=5, patience=5)
    model, log = train_lstm(split, catalog, config, seed=0, time_limit=0.0)
    assert len(log) == 1 and model.config.training["stopped_by_time_limit"] is True


def test_sampled_softmax_training_learns_the_pattern_too():
    catalog = make_catalog(n=30)
    split = synthetic_split(len(catalog))
    config = TrainConfig(
        window=8, dim=16, hidden=32, max_epochs=10, patience=10, lr=1e-2, batch_size=32, loss="sampled", negatives=8
    )
    model, log = train_lstm(split, catalog, config, seed=3)
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert model.config.training["best_valid_ndcg10"] > 0.3  # random ranking of 30 items: ~0.1
    assert model.config.training["loss"] == "sampled"


def test_an_unknown_loss_is_refused():
    catalog = make_catalog(n=30)
    with pytest.raises(DualrecError, match="unknown loss 'softmax'"):
        train_lstm(synthetic_split(len(catalog)), catalog, TrainConfig(loss="softmax"), seed=0)
