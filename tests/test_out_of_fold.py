"""Out-of-fold candidates for the rank task: fold LSTMs that never saw the sequences they score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dualrec_tui.core.errors import DualrecError
from dualrec_tui.core.lstm import LstmConfig, build_model, build_title_vocabulary, load_model, save_model
from dualrec_tui.core.sequences import Split
from tests.test_llm_training import toy_split
from tests.test_lstm import make_catalog, synthetic_split
from tests.tiny_llm import toy_catalog
from training import llm_data
from training.out_of_fold import fold_scorers, lstm_settings

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_without_fold_removes_exactly_the_folds_training_sequences() -> None:
    split = Split(
        user_ids=[10, 11, 12, 13, 14],
        train=[[1], [2, 3], [4], [5, 6], [7]],
        valid_target=[21, 22, 23, 24, 25],
        test_target=[31, 32, 33, 34, 35],
        extra_train=[[8, 9], [0]],
        n_items=40,
    )
    # training_sequences() rows: 0..4 are the evaluated users, 5..6 the short ones
    rest = split.without_fold(1, 3)  # fold 1 = rows 1 and 4
    assert rest.user_ids == [10, 12, 13]
    assert list(rest.train) == [[1], [4], [5, 6]]
    assert rest.valid_target == [21, 23, 24] and rest.test_target == [31, 33, 34]
    assert list(rest.extra_train) == [[8, 9], [0]]  # rows 5 and 6: folds 2 and 0
    held = split.without_fold(2, 3)  # fold 2 = rows 2 and 5
    assert list(held.extra_train) == [[0]]
    assert sorted(map(tuple, held.training_sequences())) == sorted(
        map(tuple, [s for r, s in enumerate(split.training_sequences()) if r % 3 != 2])
    )
    with pytest.raises(ValueError, match=r"fold must be in 0\.\.2"):
        split.without_fold(3, 3)


class _RankByIndex:
    """An 'LSTM' whose candidates are the lowest (or highest) unwatched indices."""

    def __init__(self, n_items: int, reverse: bool) -> None:
        self.order = np.arange(n_items, dtype=np.float64) * (1 if reverse else -1)
        self.calls: list[int] = []

    def __call__(self, histories):
        self.calls.append(len(histories))
        return np.tile(self.order, (len(histories), 1))


def test_each_cut_is_scored_by_its_users_fold_model() -> None:
    catalog, split = toy_catalog(), toy_split(n_users=40, length=10)
    low, high = _RankByIndex(len(catalog), reverse=False), _RankByIndex(len(catalog), reverse=True)
    cuts = list(
        llm_data.candidate_cuts(
            split, [low, high], np.random.default_rng(0), n_candidates=5, missing="inject", cuts_per_user=3
        )
    )
    assert {user % 2 for user, *_ in cuts} == {0, 1}
    for user, _cut, history, candidates in cuts:
        unwatched = [i for i in range(len(catalog)) if i not in history]
        expected = unwatched[:5] if user % 2 == 0 else unwatched[::-1][:5]
        assert candidates[0] == expected[0]  # the fold model's top pick (inject keeps it)
        assert len(set(candidates) - set(expected)) <= 1  # at most the injected target differs
    assert sum(low.calls) + sum(high.calls) == len(cuts)
    # one scorer gives what it gave before folds existed: the same cuts as a bare callable
    single = llm_data.candidate_cuts(
        split, low, np.random.default_rng(0), n_candidates=5, missing="drop", cuts_per_user=3
    )
    listed = llm_data.candidate_cuts(
        split, [low], np.random.default_rng(0), n_candidates=5, missing="drop", cuts_per_user=3
    )
    assert list(single) == list(listed)


def _saved_lstm(catalog, folder: Path) -> Path:
    config = LstmConfig(
        n_items=len(catalog),
        catalog_fingerprint=catalog.fingerprint,
        title_vocabulary=build_title_vocabulary(catalog),
        genre_vocabulary=catalog.genre_vocabulary,
        window=8,
        dim=16,
        hidden=24,
        training={"window": 8, "dim": 16, "hidden": 24, "batch_size": 32, "lr": 1e-2, "best_epoch": 3},
    )
    save_model(build_model(config, catalog), folder)
    return folder


def test_fold_lstms_take_the_lstms_settings_train_without_their_fold_and_are_reused(tmp_path: Path) -> None:
    catalog = make_catalog(n=30)
    split = synthetic_split(len(catalog), n_users=24)
    lstm = _saved_lstm(catalog, tmp_path / "lstm")
    config = lstm_settings(lstm, catalog, epochs=2)
    assert (config.dim, config.hidden, config.window, config.max_epochs) == (16, 24, 8, 2)

    said: list[str] = []
    scorers = fold_scorers(split, catalog, lstm, n_folds=2, epochs=2, work_dir=tmp_path / "folds", say=said.append)
    assert len(scorers) == 2 and sum("fitting an LSTM on 12 of 24" in s for s in said) == 2
    scores = scorers[1]([[1, 2, 3]])
    assert scores.shape == (1, len(catalog))
    # each fold model differs (different sequences), and a rerun reads them back instead of training again
    assert not np.allclose(scorers[0]([[1, 2, 3]]), scores)
    said.clear()
    again = fold_scorers(split, catalog, lstm, n_folds=2, epochs=2, work_dir=tmp_path / "folds", say=said.append)
    assert all("read back" in s for s in said) and len(said) == 2
    np.testing.assert_allclose(again[1]([[1, 2, 3]]), scores, rtol=1e-6)
    assert load_model(tmp_path / "folds" / "fold-0", catalog).config.training["epochs_run"] <= 2
    # another recipe (another epoch count) trains again
    said.clear()
    fold_scorers(split, catalog, lstm, n_folds=2, epochs=1, work_dir=tmp_path / "folds", say=said.append)
    assert sum("fitting" in s for s in said) == 2
    # other training sequences (same catalog, same count) are not mistaken for these
    said.clear()
    other = synthetic_split(len(catalog), n_users=24, seed=1)
    fold_scorers(other, catalog, lstm, n_folds=2, epochs=1, work_dir=tmp_path / "folds", say=said.append)
    assert sum("fitting" in s for s in said) == 2
    # a recipe file cut short (an interrupted write) means that fold is fitted again, not a crash
    (tmp_path / "folds" / "fold-1" / "fold.json").write_text('{"fold": 1, "n_fo', encoding="utf-8")
    said.clear()
    fold_scorers(other, catalog, lstm, n_folds=2, epochs=1, work_dir=tmp_path / "folds", say=said.append)
    assert ["read back" in s for s in said if s.startswith("fold ")] == [True, False]
    with pytest.raises(DualrecError, match="at least 2 folds"):
        fold_scorers(split, catalog, lstm, n_folds=1, epochs=1, work_dir=tmp_path / "x")


def test_keep_yields_every_cut_with_the_plain_top_k_and_the_same_cuts_as_drop() -> None:
    catalog, split = toy_catalog(), toy_split(n_users=40, length=10)
    low = _RankByIndex(len(catalog), reverse=False)

    def cuts(missing: str) -> list:
        rng = np.random.default_rng(0)
        return list(llm_data.candidate_cuts(split, low, rng, n_candidates=4, missing=missing, cuts_per_user=3))

    kept, dropped = cuts("keep"), cuts("drop")
    sequences = split.training_sequences()
    missing = [c for c in kept if sequences[c[0]][c[1]] not in c[3]]
    assert missing and len(kept) == len(dropped) + len(missing)
    assert [c for c in kept if c not in missing] == dropped
    for _user, _cut, history, candidates in kept:
        assert candidates == [i for i in range(len(catalog)) if i not in history][:4]
    # an example needs its next movie among the candidates: "keep" is for measuring only
    with pytest.raises(ValueError, match="for examples"):
        llm_data.build_rank_examples(split, catalog, low, missing="keep")
    with pytest.raises(ValueError, match="for examples"):
        llm_data.build_candidate_examples(split, catalog, low, missing="keep")
