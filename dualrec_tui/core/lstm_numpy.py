"""The LSTM's forward pass in numpy, so the app runs the shipped model without torch (722 MiB saved).

It reads the same files as the torch model (core/lstm.py): `model.safetensors` through
`safetensors.numpy` (no torch, no pickle) and `config.json`, checked against the catalog by the same
`read_config`. It computes exactly what `LstmNextItem` does at inference (dropout off), in float64:

    item(i)  = id_embedding[i] + mean(word_embedding[w] for w in title(i), w != 0) + genres(i) @ genre_projection.T
    gates    = x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh      split as (input, forget, cell, output), torch's order
    c_t      = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g);  h_t = sigmoid(o) * tanh(c_t)
    scores   = (h_last @ P.T + p) @ item[1:].T + output_bias     (tie=True; else h_last @ W_out.T + b_out)

tests/test_lstm_numpy.py checks it against the torch module within 1e-5 on the shipped model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .catalog import Catalog
from .errors import ModelUnavailableError
from .lstm import PAD, REBUILD_COMMAND, WEIGHTS_FILE, LstmConfig, item_features, read_config


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large negative inputs, same value as 1 / (1 + exp(-x)).
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class NumpyLstm:
    """Inference-only LSTM next-movie model: `last_scores(ids, lengths)` -> (B, n_items) float32."""

    def __init__(self, config: LstmConfig, weights: dict[str, np.ndarray], catalog: Catalog) -> None:
        self.config = config
        w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
        tokens, genres = item_features(catalog, config.title_vocabulary, config.genre_vocabulary)
        if not config.use_titles:
            tokens[:] = 0
        if not config.use_genres:
            genres[:] = 0.0
        # Title: mean of the non-padding word vectors (EmbeddingBag mode="mean", padding_idx=0); none -> zeros.
        table = w["word_embedding.weight"].copy()
        table[0] = 0.0  # word 0 = none: adds nothing, and is not counted below
        title = np.zeros((tokens.shape[0], table.shape[1]))
        for column in tokens.T:  # T columns of (N+1,) word ids: no (N+1, T, D) temporary
            title += table[column]
        title /= np.maximum((tokens != 0).sum(axis=1, keepdims=True), 1)
        items = w["id_embedding.weight"] + title + genres.astype(np.float64) @ w["genre_projection.weight"].T
        items[PAD] = 0.0
        self.items = items  # (N+1, D)
        self.w_ih = w["lstm.weight_ih_l0"].T.copy()  # (D, 4H)
        self.w_hh = w["lstm.weight_hh_l0"].T.copy()  # (H, 4H)
        self.bias = w["lstm.bias_ih_l0"] + w["lstm.bias_hh_l0"]  # (4H,)
        self.hidden = config.hidden
        if config.tie:
            self.projection = w["output_projection.weight"].T.copy()  # (H, D)
            self.projection_bias = w["output_projection.bias"]
            self.targets = items[1:].T.copy()  # (D, N)
            self.output_bias = w["output_bias"]
        else:
            self.projection = None
            self.targets = w["output_layer.weight"].T.copy()  # (H, N)
            self.output_bias = w["output_layer.bias"]

    @classmethod
    def load(cls, directory: Path, catalog: Catalog, rebuild: str = REBUILD_COMMAND) -> NumpyLstm:
        """Read `directory` (model.safetensors + config.json) for `catalog`, or say why not and how to rebuild."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = Path(directory)
        config = read_config(directory, catalog, rebuild)
        what = f"LSTM model in {directory}"
        try:
            weights = load_file(str(directory / WEIGHTS_FILE))
        except (OSError, SafetensorError) as exc:
            raise ModelUnavailableError(what, f"broken weights file {WEIGHTS_FILE}: {exc}", rebuild) from exc
        expected = cls.expected_shapes(config)
        problems = [
            f"{name}: {tuple(weights[name].shape) if name in weights else 'missing'}, expected {shape}"
            for name, shape in expected.items()
            if name not in weights or tuple(weights[name].shape) != shape
        ]
        if problems:
            raise ModelUnavailableError(what, f"broken weights file {WEIGHTS_FILE}: {'; '.join(problems)}", rebuild)
        return cls(config, weights, catalog)

    @staticmethod
    def expected_shapes(config: LstmConfig) -> dict[str, tuple[int, ...]]:
        """Every tensor the forward pass reads, with its shape (what the torch module saves)."""
        n, d, h = config.n_items, config.dim, config.hidden
        shapes = {
            "id_embedding.weight": (n + 1, d),
            "word_embedding.weight": (len(config.title_vocabulary) + 1, d),
            "genre_projection.weight": (d, max(len(config.genre_vocabulary), 1)),
            "lstm.weight_ih_l0": (4 * h, d),
            "lstm.weight_hh_l0": (4 * h, h),
            "lstm.bias_ih_l0": (4 * h,),
            "lstm.bias_hh_l0": (4 * h,),
        }
        if config.tie:
            shapes |= {"output_projection.weight": (d, h), "output_projection.bias": (d,), "output_bias": (n,)}
        else:
            shapes |= {"output_layer.weight": (n, h), "output_layer.bias": (n,)}
        return shapes

    def eval(self) -> NumpyLstm:
        """Inference only: present so LstmRecommender treats both backends alike."""
        return self

    def last_states(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(B, L) right-padded ids (index + 1) and (B,) lengths >= 1 -> (B, H) LSTM output at the last real step."""
        batch = ids.shape[0]
        h = np.zeros((batch, self.hidden))
        c = np.zeros((batch, self.hidden))
        inputs = self.items[ids] @ self.w_ih + self.bias  # (B, L, 4H): the input half of every step at once
        last = np.zeros((batch, self.hidden))
        hid = self.hidden
        for t in range(int(lengths.max())):
            gates = inputs[:, t] + h @ self.w_hh
            i, f = _sigmoid(gates[:, :hid]), _sigmoid(gates[:, hid : 2 * hid])
            g, o = np.tanh(gates[:, 2 * hid : 3 * hid]), _sigmoid(gates[:, 3 * hid :])
            c = f * c + i * g
            h = o * np.tanh(c)
            ends = lengths == t + 1
            last[ends] = h[ends]
        return last

    def last_scores(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(B, L) ids and (B,) lengths >= 1 -> (B, n_items) float32 scores for the next movie."""
        states = self.last_states(np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64))
        if self.projection is not None:
            states = states @ self.projection + self.projection_bias  # (B, D)
        return (states @ self.targets + self.output_bias).astype(np.float32)
