"""The app's numpy LSTM forward pass equals the torch model it was trained as (core/lstm_numpy.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.errors import ModelUnavailableError
from dualrec_tui.core.lstm import LstmRecommender, encode_histories, load_model, save_model
from dualrec_tui.core.lstm_numpy import NumpyLstm

torch = pytest.importorskip("torch")

from tests.test_lstm import make_catalog, make_model  # noqa: E402  (needs torch)

SHIPPED = Path(__file__).resolve().parents[1] / "models"


def random_histories(n_items: int, count: int, seed: int = 0) -> list[list[int]]:
    """Histories of every length from 1 to past the window, so padding and truncation are both exercised."""
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.integers(0, n_items, size=rng.integers(1, 45))] for _ in range(count)]


def torch_float64_scores(model, histories: list[list[int]]) -> np.ndarray:
    """The torch module's own forward pass in float64: the exact reference, free of float32 rounding."""
    ids, lengths = encode_histories(histories, model.config.n_items, model.config.window)
    with torch.no_grad():
        return model.double()(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()


@pytest.mark.skipif(not (SHIPPED / "lstm" / "model.safetensors").is_file(), reason="no shipped LSTM")
def test_shipped_model_matches_torch_within_1e5() -> None:
    catalog = Catalog.from_json(SHIPPED / "catalog.json")
    histories = random_histories(len(catalog), 48)
    numpy_scores = LstmRecommender(NumpyLstm.load(SHIPPED / "lstm", catalog), catalog).score(histories)
    exact = torch_float64_scores(load_model(SHIPPED / "lstm", catalog), histories)
    assert np.abs(numpy_scores - exact).max() < 1e-5
    # The float32 torch module the training code evaluates with: the same top 10 for every history.
    torch_scores = LstmRecommender(load_model(SHIPPED / "lstm", catalog), catalog).score(histories)
    assert np.abs(numpy_scores - torch_scores).max() < 1e-5 * max(1.0, float(np.abs(torch_scores).max()))
    np.testing.assert_array_equal(
        np.argsort(-numpy_scores, axis=1, kind="stable")[:, :10],
        np.argsort(-torch_scores, axis=1, kind="stable")[:, :10],
    )


@pytest.mark.parametrize("tie", [True, False])
def test_saved_random_model_matches_torch(tmp_path: Path, tie: bool) -> None:
    catalog = make_catalog(30)
    model = make_model(catalog, window=6, tie=tie, seed=3)
    save_model(model, tmp_path)
    histories = random_histories(len(catalog), 20, seed=1)
    numpy_model = NumpyLstm.load(tmp_path, catalog)
    numpy_scores = LstmRecommender(numpy_model, catalog).score(histories)
    assert np.abs(numpy_scores - torch_float64_scores(model, histories)).max() < 1e-5
    # Same wrapper behaviour: fallback for an empty history, exclusions, ordering.
    numpy_rec, torch_rec = (
        LstmRecommender(numpy_model, catalog),
        LstmRecommender(load_model(tmp_path, catalog), catalog),
    )
    for history in ([], [3], [5, 7, 2]):
        assert [i for i, _ in numpy_rec.top_k(history, 5, exclude={1})] == [
            i for i, _ in torch_rec.top_k(history, 5, exclude={1})
        ]
        assert numpy_rec.fallback(history) == torch_rec.fallback(history)


def test_load_refuses_broken_weights(tmp_path: Path) -> None:
    catalog = make_catalog(30)
    save_model(make_model(catalog), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelUnavailableError, match="broken weights"):
        NumpyLstm.load(tmp_path, catalog)


def test_load_refuses_wrong_shapes(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    catalog = make_catalog(30)
    save_model(make_model(catalog), tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights["lstm.weight_hh_l0"] = weights["lstm.weight_hh_l0"][:, :-1].copy()
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelUnavailableError, match=r"lstm\.weight_hh_l0"):
        NumpyLstm.load(tmp_path, catalog)
