"""DUALRec stage 1: an LSTM that reads a user's recent movies and scores every catalog movie as the next one.

Per time step the input is one movie, described three ways and summed into one vector of size `dim`:

    item(i) = id_embedding[i] + mean(word_embedding[w] for w in title_tokens(i)) + genre_projection(genres(i))

- the id embedding is the movie's own free vector (index + 1; 0 = padding),
- the title encoder is ONE word-embedding table shared by every movie and every time step, over the
  normalised title words (plus a year and a decade token) with a vocabulary fixed from the catalog,
- the genres are a multi-hot vector over the catalog's genre vocabulary, projected linearly.

Titles and genres let rare movies borrow strength from similar ones (the id alone is learnt from a few
ratings). The LSTM runs over the most recent `window` movies; its output at each step, projected back to
`dim`, is scored against every movie's item vector (tied output, `tie=True`) or by a plain linear layer
(`tie=False`). Training (training/fit_lstm.py) uses full-softmax cross-entropy at every position.

Padding: sequences are right-padded with 0 and the output is read at the last real position, so padding
comes *after* everything the score depends on and cannot change it (an LSTM only looks backwards).

`LstmRecommender` is the app-facing wrapper: load (safetensors + config.json, never pickle; refuses a
checkpoint made for another catalog), `score(histories)` and `top_k(history, k, exclude)`. Its `load`
runs the forward pass in numpy (core/lstm_numpy.py), so the app needs no torch; training wraps the torch
module itself. torch is imported lazily, inside functions, so importing this module is cheap.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import rebuild_command
from .catalog import Catalog, normalize_title
from .errors import ModelMissingError, ModelUnavailableError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1
PAD = 0
MAX_TITLE_TOKENS = 12
SINGLE_THREAD_MAX_BATCH = 8
REBUILD_COMMAND = rebuild_command("lstm")


# ----------------------------------------------------------------------------- features
def title_tokens(movie_title: str, year: int | None) -> list[str]:
    """Words of the normalised title plus year/decade tokens: what the shared title encoder reads."""
    words = normalize_title(movie_title).split()
    if year:
        words += [f"<year:{year}>", f"<decade:{year // 10 * 10}>"]
    return words


def build_title_vocabulary(catalog: Catalog, min_count: int = 2) -> list[str]:
    """Tokens used by at least `min_count` movies, sorted; a word only one movie has is what the id is for."""
    counts: Counter[str] = Counter()
    for movie in catalog:
        counts.update(set(title_tokens(movie.title, movie.year)))
    return sorted(word for word, count in counts.items() if count >= min_count)


def item_features(
    catalog: Catalog, title_vocabulary: Sequence[str], genre_vocabulary: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Title token ids (n_items + 1, MAX_TITLE_TOKENS), 0 = none, and genres (n_items + 1, n_genres).

    Row 0 is the padding item: no words, no genres.
    """
    word_id = {word: i + 1 for i, word in enumerate(title_vocabulary)}
    genre_id = {genre: i for i, genre in enumerate(genre_vocabulary)}
    tokens = np.zeros((len(catalog) + 1, MAX_TITLE_TOKENS), dtype=np.int64)
    genres = np.zeros((len(catalog) + 1, max(len(genre_vocabulary), 1)), dtype=np.float32)
    for movie in catalog:
        ids = [word_id[w] for w in title_tokens(movie.title, movie.year) if w in word_id]
        # Keep the year tokens (last) when a long title is cut.
        ids = ids[-MAX_TITLE_TOKENS:]
        tokens[movie.index + 1, : len(ids)] = ids
        for genre in movie.genres:
            if genre in genre_id:
                genres[movie.index + 1, genre_id[genre]] = 1.0
    return tokens, genres


# ------------------------------------------------------------------------------ config
@dataclass
class LstmConfig:
    """Architecture + the vocabularies the item features are built from (everything loading needs)."""

    n_items: int
    catalog_fingerprint: str
    title_vocabulary: list[str]
    genre_vocabulary: list[str]
    window: int = 30
    dim: int = 128
    hidden: int = 256
    dropout: float = 0.3  # on the LSTM output
    input_dropout: float = 0.3  # on the summed item vectors fed to the LSTM
    tie: bool = True
    use_titles: bool = True  # False = ablation: no title words
    use_genres: bool = True  # False = ablation: no genres
    training: dict[str, Any] = field(default_factory=dict)  # hyper-parameters and data, for the record

    def to_json(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "model": "dualrec-lstm", **asdict(self)}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> LstmConfig:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in payload.items() if k in names})


# ------------------------------------------------------------------------------- model
def build_model(config: LstmConfig, catalog: Catalog):
    """The nn.Module for `config` with item features taken from `catalog` (torch imported here)."""
    import torch
    from torch import nn

    class LstmNextItem(nn.Module):
        """item vectors -> LSTM -> scores over the catalog. B = batch, L = steps, N = n_items, D = dim."""

        def __init__(self, config: LstmConfig, tokens: np.ndarray, genres: np.ndarray) -> None:
            super().__init__()
            self.config = config
            n, d = config.n_items, config.dim
            self.register_buffer("tokens", torch.from_numpy(tokens), persistent=False)  # (N+1, T)
            self.register_buffer("genres", torch.from_numpy(genres), persistent=False)  # (N+1, G)
            self.id_embedding = nn.Embedding(n + 1, d, padding_idx=PAD)  # (N+1, D)
            # (V+1, D) shared title encoder: mean of a title's word vectors, word 0 = none (left out of the mean)
            self.word_embedding = nn.EmbeddingBag(len(config.title_vocabulary) + 1, d, mode="mean", padding_idx=0)
            self.genre_projection = nn.Linear(genres.shape[1], d, bias=False)  # (G -> D)
            self.input_dropout = nn.Dropout(config.input_dropout)
            self.lstm = nn.LSTM(d, config.hidden, batch_first=True)
            self.output_dropout = nn.Dropout(config.dropout)
            if config.tie:
                self.output_projection = nn.Linear(config.hidden, d)  # (H -> D), scored against item vectors
                self.output_bias = nn.Parameter(torch.zeros(n))  # (N,) per-item popularity offset
            else:
                self.output_layer = nn.Linear(config.hidden, n)  # (H -> N)
            nn.init.normal_(self.id_embedding.weight, std=0.05)
            nn.init.normal_(self.word_embedding.weight, std=0.05)
            with torch.no_grad():
                self.id_embedding.weight[PAD].zero_()
                self.word_embedding.weight[0].zero_()

        def item_vectors(self) -> torch.Tensor:
            """(N+1, D): id + mean title word + projected genres; row 0 (padding) is all zeros."""
            title = self.word_embedding(self.tokens)  # (N+1, T) word ids -> (N+1, D) mean; no words -> zeros
            vectors = self.id_embedding.weight + title + self.genre_projection(self.genres)  # (N+1, D)
            return vectors * (torch.arange(vectors.shape[0], device=vectors.device) != PAD).unsqueeze(1)

        def hidden_states(self, sequences: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
            """(B, L) right-padded item ids (index + 1) -> LSTM outputs (B, L, H)."""
            items = self.item_vectors() if items is None else items  # (N+1, D)
            x = self.input_dropout(items[sequences])  # (B, L, D)
            out, _ = self.lstm(x)  # (B, L, H); position t depends on positions <= t only
            return self.output_dropout(out)

        def logits(self, states: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
            """(..., H) LSTM outputs -> (..., N) scores over real items (catalog index order)."""
            if self.config.tie:
                items = self.item_vectors() if items is None else items  # (N+1, D)
                return self.output_projection(states) @ items[1:].T + self.output_bias  # (..., N)
            return self.output_layer(states)

        def forward(self, sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            """(B, L) right-padded ids and (B,) lengths >= 1 -> (B, N) scores for the next movie."""
            items = self.item_vectors()
            states = self.hidden_states(sequences, items)  # (B, L, H)
            last = states[torch.arange(states.shape[0]), lengths - 1]  # (B, H) at the last real step
            return self.logits(last, items)

    tokens, genres = item_features(catalog, config.title_vocabulary, config.genre_vocabulary)
    if not config.use_titles:
        tokens[:] = 0
    if not config.use_genres:
        genres[:] = 0.0
    return LstmNextItem(config, tokens, genres)


def encode_histories(histories: Sequence[Sequence[int]], n_items: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Catalog indices -> right-padded (B, L) ids (index + 1) of the last `window` known movies, and lengths.

    Indices outside the catalog are skipped. An empty (or all-unknown) history gets length 0.
    """
    kept = [[i + 1 for i in history if 0 <= i < n_items][-window:] for history in histories]
    width = max((len(k) for k in kept), default=0) or 1
    ids = np.zeros((len(kept), width), dtype=np.int64)
    lengths = np.zeros(len(kept), dtype=np.int64)
    for row, k in enumerate(kept):
        ids[row, : len(k)] = k
        lengths[row] = len(k)
    return ids, lengths


# ------------------------------------------------------------------------- persistence
def save_model(model, directory: Path, float16: bool = False) -> None:
    """Weights as safetensors + config.json (vocabularies, fingerprint, dims, hyper-parameters).

    `float16` halves the file (the shipped model); loading always computes in float32.
    """
    import torch
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if float16 else torch.float32
    state = {k: v.detach().cpu().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "dualrec-lstm"})
    (directory / CONFIG_FILE).write_text(json.dumps(model.config.to_json(), indent=1) + "\n", encoding="utf-8")


def read_config(directory: Path, catalog: Catalog, rebuild: str = REBUILD_COMMAND) -> LstmConfig:
    """The checkpoint's config, checked against `catalog`; ModelUnavailableError (with the rebuild command) if not."""
    directory = Path(directory)
    what = f"LSTM model in {directory}"
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ModelMissingError(what, f"{path.name} is missing", rebuild)
    try:
        payload = json.loads(config_path.read_text(encoding="utf-8"))
        config = LstmConfig.from_json(payload)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelUnavailableError(what, f"unreadable {CONFIG_FILE}: {exc}", rebuild) from exc
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelUnavailableError(what, f"format version {payload.get('format_version')} is not supported", rebuild)
    if config.catalog_fingerprint != catalog.fingerprint or config.n_items != len(catalog):
        raise ModelUnavailableError(
            what,
            f"it was trained for another catalog (fingerprint {config.catalog_fingerprint}, {config.n_items} movies; "
            f"this catalog is {catalog.fingerprint}, {len(catalog)} movies)",
            rebuild,
        )
    return config


def load_model(directory: Path, catalog: Catalog, rebuild: str = REBUILD_COMMAND):
    """Read a saved model for `catalog` as a torch module (training, evaluation); the app uses core.lstm_numpy."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    config = read_config(directory, catalog, rebuild)
    weights_path = directory / WEIGHTS_FILE
    model = build_model(config, catalog)
    try:
        state = load_file(str(weights_path))
        model.load_state_dict(state, strict=True)
    except (OSError, SafetensorError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"LSTM model in {directory}", f"broken weights file {weights_path.name}: {exc}", rebuild
        ) from exc
    model.eval()
    return model


# ---------------------------------------------------------------------- the app wrapper
class LstmRecommender:
    """Fast CPU inference around a trained LSTM: a torch module (training) or a `NumpyLstm` (the app).

    A history with no known movie gets a fallback ranking, not the LSTM's: `fallback(history)` says which
    ("popularity", or "uniform" when the catalog has no popularity counts; None when the LSTM scores it).
    The same applies per row to `score`, whose rows for empty histories are the fallback scores.
    """

    def __init__(self, model, catalog: Catalog, popularity: Sequence[float] | np.ndarray | None = None) -> None:
        self.model = model.eval()
        self.catalog = catalog
        self.config: LstmConfig = model.config
        self.window = self.config.window
        self.n_items = self.config.n_items
        pop = np.asarray(catalog.popularity if popularity is None else popularity, dtype=np.float64)
        self.fallback_kind = "popularity" if pop.shape == (self.n_items,) and pop.any() else "uniform"
        # Fallback scores: popularity (ties by catalog index, as the rankers do) or all equal.
        flat = np.zeros(self.n_items, dtype=np.float32)
        self.fallback_scores = pop.astype(np.float32) if self.fallback_kind == "popularity" else flat
        # A NumpyLstm scores (ids, lengths) itself; a torch module goes through _torch_scores.
        self._numpy_scores = getattr(model, "last_scores", None)
        if self._numpy_scores is None:
            import torch

            self.device = next(model.parameters()).device
            with torch.no_grad():
                self._items = model.item_vectors()  # (N+1, D), fixed at inference: computed once

    @classmethod
    def load(
        cls, directory: Path, catalog: Catalog, popularity: Sequence[float] | np.ndarray | None = None
    ) -> LstmRecommender:
        """The app's loader: the numpy forward pass (core.lstm_numpy), so the app needs no torch."""
        from .lstm_numpy import NumpyLstm

        return cls(NumpyLstm.load(directory, catalog), catalog, popularity)

    def score(self, histories: Sequence[Sequence[int]], batch_size: int = 256) -> np.ndarray:
        """(B, n_items) float32 scores for the movie after each history; higher = better.

        With torch, a few histories (the app's case) run on one torch thread: a 30-step LSTM for one user
        gains nothing from more, and on a busy machine thread contention made it ~5x slower
        (benchmarks/bench_lstm.py).
        """
        if self._numpy_scores is not None:
            return self._score(histories, batch_size)
        import torch

        if len(histories) <= SINGLE_THREAD_MAX_BATCH and torch.get_num_threads() > 1:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self._score(histories, batch_size)
            finally:
                torch.set_num_threads(before)
        return self._score(histories, batch_size)

    def _score(self, histories: Sequence[Sequence[int]], batch_size: int) -> np.ndarray:
        out = np.empty((len(histories), self.n_items), dtype=np.float32)
        for start in range(0, len(histories), batch_size):
            chunk = histories[start : start + batch_size]
            ids, lengths = encode_histories(chunk, self.n_items, self.window)
            known = lengths > 0
            block = np.tile(self.fallback_scores, (len(chunk), 1))
            if known.any():
                scorer = self._numpy_scores or self._torch_scores
                block[known] = scorer(ids[known], lengths[known])
            out[start : start + len(chunk)] = block
        return out

    def _torch_scores(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(b, L) ids and (b,) lengths >= 1 -> (b, n_items) float32 scores with the torch module."""
        import torch

        with torch.no_grad():
            states = self.model.hidden_states(torch.from_numpy(ids).to(self.device), self._items)
            rows = torch.arange(ids.shape[0], device=self.device)
            last = states[rows, torch.from_numpy(lengths).to(self.device) - 1]  # (b, H)
            return self.model.logits(last, self._items).float().cpu().numpy()

    def fallback(self, history: Sequence[int]) -> str | None:
        """What ranks `history` instead of the LSTM: None when it holds a known movie (the LSTM ranks it)."""
        return None if any(0 <= i < self.n_items for i in history) else self.fallback_kind

    def top_k(self, history: Sequence[int], k: int = 20, exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        """The k best (catalog index, score) pairs, never one of the user's own movies or `exclude`."""
        known = [i for i in history if 0 <= i < self.n_items]
        scores = self.score([known])[0].astype(np.float64)
        banned = [i for i in (*known, *exclude) if 0 <= i < self.n_items]
        scores[banned] = -np.inf
        k = max(0, min(k, self.n_items - len(set(banned))))
        if k == 0:
            return []
        # The k best, ties by catalog index (as the harness ranks), without sorting the whole catalog:
        # everything scoring at least the k-th best value, then a small exact sort.
        kth = np.partition(scores, scores.shape[0] - k)[scores.shape[0] - k]
        candidates = np.flatnonzero(scores >= kth)
        top = candidates[np.lexsort((candidates, -scores[candidates]))][:k]
        return [(int(i), float(scores[i])) for i in top]
