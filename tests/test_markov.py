"""core/markov.py: the Markov transitions the harness's `markov` row fits and the app fuses, and the
checks a damaged, foreign or hostile transitions file must fail before any array is indexed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dualrec_tui.core.errors import ModelMissingError, ModelUnavailableError
from dualrec_tui.core.markov import TRANSITIONS_FILE, MarkovTransitions, file_metadata
from dualrec_tui.core.model_files import file_sha256

ROOT = Path(__file__).resolve().parents[1]
SEQUENCES = [[0, 1, 2], [0, 1], [0, 2, 3]]  # 0->1 twice, 0->2, 1->2, 2->3
POPULARITY = np.array([3.0, 2.0, 2.0, 1.0, 0.0])


def fitted(smoothing: float = 1.0) -> MarkovTransitions:
    return MarkovTransitions.fit(SEQUENCES, POPULARITY, smoothing=smoothing, catalog_fingerprint="fp")


def test_probabilities_follow_the_smoothed_counts_and_sum_to_one() -> None:
    model = fitted()
    probs = model.probs([[4, 0], [3], []])
    assert probs[0, 1] == pytest.approx((2 + model.prior[1]) / (3 + 1))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(probs[1], model.prior) and np.allclose(probs[2], model.prior)  # no way out: popularity
    assert probs[0, 4] > 0  # a movie nobody rated keeps a tiny prior, so log() stays finite


def test_counts_are_what_was_observed() -> None:
    model = fitted()
    pairs = [(0, 1), (0, 2), (1, 2), (2, 1), (4, 0)]
    assert [model.counts_after(last, [movie])[0] for last, movie in pairs] == [2, 1, 1, 0, 0]
    assert model.counts_after(0, [3, 2, 1, 0]).tolist() == [0, 1, 2, 0]  # several at once, any order


def test_candidate_log_probs_are_the_rows_own_values() -> None:
    model = fitted(smoothing=0.1)
    for history in ([0], [3, 1], []):
        candidates = [4, 2, 1, 0]
        expected = np.log(model.probs([history])[0][candidates] + 1e-12)
        assert np.allclose(model.candidate_log_probs(history, candidates), expected, rtol=0, atol=1e-12)


def test_save_and_load_round_trip_with_the_manifest_digest(tmp_path: Path) -> None:
    model = fitted(smoothing=0.1)
    path = model.save(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"verify": {TRANSITIONS_FILE: {"sha256": file_sha256(path)}}}))
    loaded = MarkovTransitions.load(tmp_path, 5, "fp")
    assert loaded.smoothing == 0.1
    assert np.array_equal(loaded.probs([[0], [2]]), model.probs([[0], [2]]))


def test_missing_damaged_foreign_and_hostile_files_are_refused_with_the_rebuild_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"transitions\.safetensors is missing"):
        MarkovTransitions.load(tmp_path, 5, "fp")
    path = fitted().save(tmp_path)
    with pytest.raises(ModelUnavailableError, match="another catalog"):
        MarkovTransitions.load(tmp_path, 5, "other")
    with pytest.raises(ModelUnavailableError, match="indptr"):
        MarkovTransitions.load(tmp_path, 6, "fp")  # a catalog of another size
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelUnavailableError, match="broken file") as caught:
        MarkovTransitions.load(tmp_path, 5, "fp")
    assert "python -m training markov" in str(caught.value)
    path.write_bytes(good)
    (tmp_path / "manifest.json").write_text(json.dumps({"verify": {TRANSITIONS_FILE: {"sha256": "0" * 64}}}))
    with pytest.raises(ModelUnavailableError, match="does not match its manifest"):
        MarkovTransitions.load(tmp_path, 5, "fp")
    (tmp_path / "manifest.json").unlink()
    model = fitted()
    hostile = MarkovTransitions(
        model.indptr, np.full_like(model.columns, 99), model.counts, model.row_totals, model.prior, 1.0, "fp"
    )
    hostile.save(tmp_path)  # columns pointing outside the catalog: refused before anything is indexed
    with pytest.raises(ModelUnavailableError, match="outside the catalog"):
        MarkovTransitions.load(tmp_path, 5, "fp")


def test_the_shipped_transitions_fit_the_shipped_catalog_and_their_manifest() -> None:
    from dualrec_tui.core.catalog import Catalog

    catalog = Catalog.from_json(ROOT / "models" / "catalog.json")
    model = MarkovTransitions.load(ROOT / "models" / "markov", len(catalog), catalog.fingerprint)
    manifest = json.loads((ROOT / "models" / "markov" / "manifest.json").read_text())
    assert model.smoothing == manifest["smoothing_k"] and model.columns.shape[0] == manifest["transitions"]
    assert "training sequences only" in manifest["fitted_on"]


def _write(tmp_path: Path, **arrays: np.ndarray) -> None:
    from safetensors.numpy import save_file

    model = fitted()
    tensors = {
        "indptr": model.indptr, "columns": model.columns, "counts": model.counts,
        "row_totals": model.row_totals, "prior": model.prior,
    }  # fmt: skip
    tensors.update(arrays)
    save_file(tensors, str(tmp_path / TRANSITIONS_FILE), metadata=file_metadata(1.0, "fp"))


@pytest.mark.parametrize(
    ("arrays", "problem"),
    [
        ({"columns": np.array([1.0, np.nan, 2.0, 3.0])}, "columns is F64"),  # NaN would cast to a huge index
        ({"indptr": np.array([0, 2, 3, 4, 4, 4], dtype=np.float64)}, "indptr is F64"),
        ({"row_totals": np.array([0.0, 1.0, 1.0, 0.0, 0.0], dtype=np.float32)}, "row_totals are not the sums"),
        ({"prior": np.array([1.0, 0.0, 0.0, 0.0, 0.0])}, "prior is not a positive distribution"),
        ({"extra": np.zeros(3)}, "unexpected tensor 'extra'"),
        ({"columns": np.array([2, 1, 2, 3], dtype=np.int32)}, "not sorted and unique within a row"),
        ({"counts": np.ones(3, dtype=np.float32)}, "columns (4,) and counts (3,) differ"),
    ],
)
def test_hostile_arrays_are_refused_before_use(tmp_path: Path, arrays: dict, problem: str) -> None:
    _write(tmp_path, **arrays)
    with pytest.raises(ModelUnavailableError) as caught:
        MarkovTransitions.load(tmp_path, 5, "fp")
    assert problem in str(caught.value)


def test_the_rebuild_command_is_the_callers(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError) as caught:
        MarkovTransitions.load(tmp_path, 5, "fp", rebuild="python -m training markov --out elsewhere")
    assert caught.value.rebuild == "python -m training markov --out elsewhere"


def test_a_rebuild_is_byte_identical_and_an_older_format_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    first, second = fitted(0.1).save(tmp_path / "a"), fitted(0.1).save(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()  # the manifest's sha256 is reproducible
    model = fitted()
    tensors = {"indptr": model.indptr, "columns": model.columns, "counts": model.counts}
    tensors |= {"row_totals": model.row_totals, "prior": model.prior}
    old = {"format_version": "1", "smoothing": "1.0", "catalog_fingerprint": "fp"}  # session 12's first layout
    save_file(tensors, str(tmp_path / TRANSITIONS_FILE), metadata=old)
    with pytest.raises(ModelUnavailableError, match="format version None is not supported"):
        MarkovTransitions.load(tmp_path, 5, "fp")


def test_bare_markov_command_reads_the_release_the_shipped_file_came_from() -> None:
    """`python -m training markov` (as README and models/README say) failed: --data defaulted to the
    folder holding the releases, not to ml-latest-small like every other training command."""
    import argparse

    from training.fit_markov import add_command

    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers())
    args = parser.parse_args(["markov"])
    assert args.data.name == "ml-latest-small" and args.out == Path("models/markov")
