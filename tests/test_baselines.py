"""MostPop, Markov and SASRec: training data only, hand-checked scores, determinism, safe save/load."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from movielens_samples import synthetic_release

from dualrec_tui.core.catalog import build_catalog
from dualrec_tui.core.errors import ModelUnavailableError
from dualrec_tui.core.sequences import Ragged, Split
from training import metrics, sasrec
from training.baselines import SMOOTHING_GRID, MarkovModel, MostPopModel
from training.evaluate import withhold_test


def _split(train, valid, test, extra=(), n_items=6) -> Split:
    return Split(
        list(range(len(train))), [list(t) for t in train], list(valid), list(test), [list(e) for e in extra], n_items
    )


def test_mostpop_counts_training_data_only() -> None:
    # item 5 is only ever a test target, item 4 only a validation target: neither may count
    split = _split([[0, 1], [1, 2], [1, 3]], valid=[4, 4, 4], test=[5, 5, 5], extra=[[2]])
    model = MostPopModel()
    model.fit(withhold_test(split), None, 0)
    scores = model.score([[0], [1, 2]])
    assert scores.shape == (2, 6)
    assert scores[0].tolist() == [1, 3, 2, 1, 0, 0]


def test_markov_transitions_and_backoff() -> None:
    # transitions 0->1 (twice), 0->2 (once), 1->2; item 3 is never followed by anything
    split = _split([[0, 1, 2], [0, 1], [0, 2, 3]], valid=[3, 3, 4], test=[5, 5, 5])
    model = MarkovModel(smoothing=1.0)
    model.fit(split, None, 0)
    scores = model.score([[4, 0], [3], []])
    assert np.argsort(-scores[0])[:2].tolist() == [1, 2]
    assert scores[0, 1] == pytest.approx((2 + model.prior[1]) / (3 + 1))
    # unseen last item: pure popularity order (2 and 0 have 3 training counts... ties by catalog index)
    popularity = split.popularity()
    assert np.argsort(-scores[1], kind="stable").tolist() == np.argsort(-popularity, kind="stable").tolist()
    assert np.argsort(-scores[2], kind="stable").tolist() == np.argsort(-popularity, kind="stable").tolist()


def test_markov_tunes_smoothing_on_validation() -> None:
    split = _split([[0, 1, 2], [0, 1], [0, 2, 3]], valid=[3, 2, 4], test=[5, 5, 5])
    model = MarkovModel()
    model.fit(withhold_test(split), None, 0)
    assert set(model.validation) == {str(k) for k in SMOOTHING_GRID}
    assert model.validation[str(model.smoothing)] == max(model.validation.values())


# ----------------------------------------------------------------------------------------------- SASRec
TINY = sasrec.SasrecConfig(
    max_len=6, hidden=16, blocks=1, heads=2, dropout=0.1, lr=1e-2, batch_size=16, epochs=15, patience=15
)


def _cyclic_split(n_items: int = 12, n_users: int = 40, seed: int = 0) -> Split:
    """Users walk through the items in a fixed cycle: the next item is always predictable."""
    rng = np.random.default_rng(seed)
    train, valid, test = [], [], []
    for _ in range(n_users):
        start, length = int(rng.integers(n_items)), int(rng.integers(5, 10))
        seq = [(start + step) % n_items for step in range(length)]
        train.append(seq[:-2])
        valid.append(seq[-2])
        test.append(seq[-1])
    return _split(train, valid, test, n_items=n_items)


def _catalog(n_items: int = 12):
    return build_catalog([(i + 1, f"Film {i + 1} (1990)", ["Drama"]) for i in range(n_items)], name="tiny")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sasrec_learns_a_cycle_and_is_deterministic() -> None:
    split = _cyclic_split()
    module, info = sasrec.train_sasrec(withhold_test(split), split.n_items, TINY, seed=1)
    again, info_again = sasrec.train_sasrec(withhold_test(split), split.n_items, TINY, seed=1)
    histories = [split.test_input(u) for u in range(len(split.user_ids))]
    scores = sasrec.scores_for(module, histories, TINY.max_len)
    assert scores.shape == (len(histories), split.n_items)
    np.testing.assert_array_equal(scores, sasrec.scores_for(again, histories, TINY.max_len))
    assert info["history"] == info_again["history"]
    ranks = metrics.ranks_from_scores(scores, split.test_target, metrics.exclusion_mask(histories, split.n_items))
    assert metrics.hit_rate(ranks, 1).mean() > 0.8  # a cycle is easy; a random model would get ~1/6
    assert info["valid_NDCG@10"] > 0.8 and 1 <= info["best_epoch"] <= TINY.epochs


def test_sasrec_windows_cover_every_transition() -> None:
    def cut(sequences: list[list[int]], max_len: int) -> np.ndarray:
        windows = sasrec.sasrec_windows(Ragged.from_rows(sequences), max_len)
        return windows.ids(np.arange(len(windows)), left_pad=True)

    windows = cut([[0, 1, 2, 3, 4, 5, 6]], max_len=3)
    # ids are index + 1; consecutive windows overlap by one item
    assert windows.tolist() == [[4, 5, 6, 7], [1, 2, 3, 4]]
    pairs = {(int(a), int(b)) for row in windows for a, b in itertools.pairwise(row.tolist()) if a > 0}
    assert pairs == {(i, i + 1) for i in range(1, 7)}
    assert cut([[3, 4]], max_len=3).tolist() == [[0, 0, 4, 5]]
    assert cut([[3, 4], [7], [], list(range(9))], max_len=4).tolist() == [
        [0, 0, 0, 4, 5],
        [5, 6, 7, 8, 9],
        [1, 2, 3, 4, 5],
    ]
    assert sasrec._inputs([[1, 2, 3, 4], []], max_len=3).tolist() == [[3, 4, 5], [0, 0, 0]]


def test_sasrec_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    split = _cyclic_split()
    catalog = _catalog()
    config = sasrec.SasrecConfig(**{**TINY.__dict__, "epochs": 2})
    module, info = sasrec.train_sasrec(split, split.n_items, config, seed=0)
    sasrec.save(module, config, info, catalog, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["config"]["hidden"] == 16 and saved["catalog_fingerprint"] == catalog.fingerprint
    model = sasrec.SasrecModel(SimpleNamespace(catalog=catalog, dataset=None))
    model.load(tmp_path / "m")
    histories = [[0, 1, 2], [5]]
    np.testing.assert_allclose(model.score(histories), sasrec.scores_for(module, histories, config.max_len), rtol=1e-6)
    with pytest.raises(ModelUnavailableError, match="another catalog"):
        sasrec.load(tmp_path / "m", _catalog(13))
    with pytest.raises(ModelUnavailableError, match="rebuild it with"):
        sasrec.load(tmp_path / "missing", catalog)


def test_release_presets() -> None:
    assert sasrec.config_for("ml-100k") == sasrec.DEFAULTS
    assert sasrec.config_for("ml-latest-small").max_len == 200


def test_sasrec_cli_trains_saves_and_evaluates_from_checkpoint(tmp_path: Path) -> None:
    from training.__main__ import main

    data = synthetic_release(tmp_path / "data")
    out = tmp_path / "sasrec"
    tiny = ["--epochs", "2", "--hidden", "16", "--max-len", "5", "--batch-size", "16", "--threads", "1"]
    assert main(["sasrec", "--data", str(data), "--out", str(out), *tiny]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["max_len"] == 5
    report = tmp_path / "r.json"
    args = ["evaluate", "--data", str(data), "--models", "mostpop,sasrec", "--checkpoint", f"sasrec={out}"]
    assert main([*args, "--json", str(report), "--work-dir", str(tmp_path / "w")]) == 0
    entry = json.loads(report.read_text())["models"]["sasrec"]
    assert entry["checkpoint"] == str(out) and entry["config"]["hidden"] == 16 and entry["errors"] == 0


def test_sasrec_learns_a_cycle_with_sampled_softmax() -> None:
    split = _cyclic_split()
    config = sasrec.SasrecConfig(**{**TINY.__dict__, "loss": "sampled", "negatives": 4})
    _, info = sasrec.train_sasrec(withhold_test(split), split.n_items, config, seed=1)
    assert info["valid_NDCG@10"] > 0.6  # random: ~0.3 over 12 items
