"""Scale: the synthetic release generator and the vectorised reader (same data and errors as the line reader)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from movielens_samples import RATINGS, WRITERS, zip_folder

from dualrec_tui.core import movielens
from dualrec_tui.core.catalog import parse_title
from dualrec_tui.core.errors import DataFormatError
from dualrec_tui.core.movielens import load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from make_movielens import SHAPES, Shape, make_release

TINY = SHAPES["tiny"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_release(tmp_path_factory.mktemp("synth") / "ml-tiny", TINY, seed=3)


def _no_line_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a fallback to the line-by-line reader fail loudly, so a test proves the fast path ran."""

    def refuse(*_args: object) -> None:
        raise AssertionError("fell back to the line reader")

    monkeypatch.setattr(movielens, "_slow_ratings", refuse)


def test_generator_writes_a_movielens_shaped_release(tiny_release: Path) -> None:
    with open(tiny_release / "ratings.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["userId", "movieId", "rating", "timestamp"]
    users = np.array([int(r[0]) for r in rows[1:]])
    movies = np.array([int(r[1]) for r in rows[1:]])
    stars = {r[2] for r in rows[1:]}
    times = np.array([int(r[3]) for r in rows[1:]])
    assert users.size == TINY.ratings and np.unique(users).size == TINY.users
    assert stars <= {f"{v / 2:.1f}" for v in range(1, 11)}
    # GroupLens order: user, then movie id; so time order differs from file order
    assert (np.diff(users) >= 0).all()
    same_user = np.diff(users) == 0
    assert (np.diff(movies)[same_user] > 0).all()  # ascending ids also means: no movie rated twice
    assert (np.diff(times)[same_user] < 0).any()
    # same-second ties exist within users (the tie-break rule matters)
    order = np.lexsort((times, users))
    assert ((np.diff(times[order]) == 0) & (np.diff(users[order]) == 0)).sum() > TINY.ratings // 10
    # Zipf popularity: the top 10% of movies hold far more than 10% of the ratings
    counts = np.sort(np.bincount(movies))[::-1]
    assert counts[: TINY.movies // 10].sum() > 0.3 * TINY.ratings
    with open(tiny_release / "movies.csv", encoding="utf-8", newline="") as handle:
        movie_rows = list(csv.reader(handle))[1:]
    assert len(movie_rows) == TINY.movies
    titles = [r[1] for r in movie_rows]
    assert sum(parse_title(t).year is not None for t in titles) >= 0.95 * len(titles)
    assert any(", The (" in t for t in titles) and any("," in t.split(", The")[0] for t in titles)
    header = (tiny_release / "movies.csv").read_text(encoding="utf-8").splitlines()
    assert any(line.count('"') == 2 for line in header)  # a title with a comma is a quoted field


def test_generator_is_deterministic(tmp_path: Path) -> None:
    shape = Shape(users=20, movies=50, ratings=500)
    first = make_release(tmp_path / "a", shape, seed=7)
    second = make_release(tmp_path / "b", shape, seed=7)
    for name in ("movies.csv", "ratings.csv", "links.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_generator_zip_loads_like_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shape = Shape(users=30, movies=80, ratings=900)
    folder = make_release(tmp_path / "ml-f", shape, seed=1)
    zipped = make_release(tmp_path / "ml-z", shape, seed=1, as_zip=True)
    assert zipped.suffix == ".zip" and not (tmp_path / "ml-z").exists()
    _no_line_reader(monkeypatch)
    a, b = load_dataset(folder), load_dataset(zipped)
    assert a.fingerprint == b.fingerprint and a.n_ratings == b.n_ratings == shape.ratings
    np.testing.assert_array_equal(a.items, b.items)


def _same_data(fast: movielens.Dataset, path: Path, fmt: str) -> None:
    source = movielens._Source(path)
    users, items, ratings, times, digest = movielens._slow_ratings(source, fmt, fast.catalog)
    np.testing.assert_array_equal(fast.user_ids, users)
    np.testing.assert_array_equal(fast.items, items)
    np.testing.assert_array_equal(fast.ratings, ratings)
    np.testing.assert_array_equal(fast.timestamps, times)
    assert fast.fingerprint == digest
    assert (fast.user_ids.dtype, fast.items.dtype, fast.ratings.dtype, fast.timestamps.dtype) == (
        np.int64,
        np.int64,
        np.float32,
        np.int64,
    )


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("as_zip", [False, True])
def test_fast_reader_equals_line_reader(tmp_path: Path, fmt: str, as_zip: bool, monkeypatch) -> None:
    folder = WRITERS[fmt](tmp_path / "release")
    path = zip_folder(folder, tmp_path / "r.zip", nested="ml-x") if as_zip else folder
    with monkeypatch.context() as patch:
        _no_line_reader(patch)
        fast = load_dataset(path)
    assert fast.n_ratings == len(RATINGS)
    _same_data(fast, path, fmt)


def test_fast_reader_on_synthetic_release(tiny_release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        _no_line_reader(patch)
        fast = load_dataset(tiny_release)
    assert (fast.n_ratings, len(fast.catalog), fast.n_users) == (TINY.ratings, TINY.movies, TINY.users)
    _same_data(fast, tiny_release, "csv")


def test_values_only_the_line_reader_accepts_still_load(tmp_path: Path) -> None:
    """A space before a timestamp: pyarrow refuses it, the line reader strips it; same data either way."""
    folder = WRITERS["csv"](tmp_path / "r")
    lines = (folder / "ratings.csv").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ", " + lines[2].rsplit(",", 1)[1]
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = load_dataset(folder)
    assert dataset.timestamps.tolist() == [t for _, _, _, t in RATINGS]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1,2,5.0", "expected 4 fields"),
        ("1,2,nan,5", "not a finite number"),
        ("1,2,5.0,", "not a whole number"),
        ("1,77,5.0,9", "movie id 77 is not in the movie list"),
        ("x1,2,5.0,9", "not a whole number"),
    ],
)
def test_bad_row_deep_in_a_big_file_names_its_line(tmp_path: Path, line: str, problem: str) -> None:
    """Wherever the fast reader meets a bad row, the error names the exact line (via the line reader)."""
    folder = WRITERS["csv"](tmp_path / "r")
    good = "1,2,4.0,100"
    body = [good] * 30_000
    body[25_000] = line
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(body) + "\n")
    with pytest.raises(DataFormatError) as info:
        load_dataset(zip_folder(folder, tmp_path / "r.zip", nested="ml-x"))
    assert info.value.line == 25_002 and problem in str(info.value)
    assert info.value.path.endswith("r.zip!ml-x/ratings.csv")


# ------------------------------------------------------------------------------ big catalogs
def test_catalog_grammar_is_cached_on_disk_for_big_catalogs(
    tiny_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dualrec_tui.core import title_grammar as grammar_module

    catalog = load_dataset(tiny_release).catalog
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(grammar_module, "GRAMMAR_DISK_CACHE_MIN", 10)  # the tiny catalog counts as big here
    monkeypatch.setattr(grammar_module, "_GRAMMARS", {})
    built = grammar_module.catalog_answer_grammar(catalog, 3)
    files = list((tmp_path / "cache" / "grammars").glob("*.gbnf"))
    assert len(files) == 1 and files[0].read_text(encoding="utf-8") == built

    def never(*_args: object) -> str:
        raise AssertionError("rebuilt a cached grammar")

    monkeypatch.setattr(grammar_module, "_GRAMMARS", {})  # a new process: only the disk cache is left
    with monkeypatch.context() as patch:
        patch.setattr(grammar_module, "_catalog_grammar", never)
        patch.setattr(grammar_module, "_grammar_cache_path", lambda c, n: files[0])  # `never` has other code
        assert grammar_module.catalog_answer_grammar(catalog, 3) == built
    # another n, or a damaged file, is built anew (and the damaged file replaced)
    assert grammar_module.catalog_answer_grammar(catalog, 4) != built
    files[0].write_text("garbage", encoding="utf-8")
    monkeypatch.setattr(grammar_module, "_GRAMMARS", {})
    assert grammar_module.catalog_answer_grammar(catalog, 3) == built
    assert files[0].read_text(encoding="utf-8") == built


def test_grammar_cache_key_follows_the_code(tiny_release: Path, tmp_path: Path, monkeypatch) -> None:
    from dualrec_tui.core import title_grammar as grammar_module

    catalog = load_dataset(tiny_release).catalog
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path))
    first = grammar_module._grammar_cache_path(catalog, 3)
    assert first == grammar_module._grammar_cache_path(catalog, 3)  # stable: no refcount-dependent serialisation
    assert first != grammar_module._grammar_cache_path(catalog, 4)
    monkeypatch.setattr(grammar_module, "_gbnf_literal", lambda text: f"'{text}'")
    assert first != grammar_module._grammar_cache_path(catalog, 3)


def test_unwritable_grammar_cache_still_gives_the_grammar(
    tiny_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dualrec_tui.core import title_grammar as grammar_module

    catalog = load_dataset(tiny_release).catalog
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(blocker))  # cache_dir() cannot create it
    monkeypatch.setattr(grammar_module, "GRAMMAR_DISK_CACHE_MIN", 10)
    monkeypatch.setattr(grammar_module, "_GRAMMARS", {})
    assert grammar_module.catalog_answer_grammar(catalog, 3).startswith("root ::= ")


def test_paused_gc_restores_the_collector() -> None:
    import gc

    from dualrec_tui.core.catalog import paused_gc

    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()


# ------------------------------------------------------------------------------ training at scale
def _tiny_split_and_catalog(release: Path):
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    dataset = load_dataset(release)
    return leave_one_out(build_sequences(dataset)), dataset.catalog


def _tiny_lstm(catalog, **overrides):
    """A small untrained LSTM over `catalog` (window 10, 16-d items, 24 hidden units)."""
    from dualrec_tui.core.lstm import LstmConfig, build_model, build_title_vocabulary

    config = LstmConfig(
        n_items=len(catalog),
        catalog_fingerprint=catalog.fingerprint,
        title_vocabulary=build_title_vocabulary(catalog),
        genre_vocabulary=catalog.genre_vocabulary,
        window=10,
        dim=16,
        hidden=24,
        **overrides,
    )
    return build_model(config, catalog)


def test_chunked_softmax_gives_the_one_shot_loss_and_gradients(tiny_release: Path) -> None:
    torch = pytest.importorskip("torch")
    from training.fit_lstm import _train_step_module, lstm_windows

    split, catalog = _tiny_split_and_catalog(tiny_release)
    torch.manual_seed(0)
    model = _tiny_lstm(catalog, dropout=0.0, input_dropout=0.0)
    windows = lstm_windows(split.training_sequences(), 10, 5)
    batch, mask_t = torch.from_numpy(windows.ids(np.arange(40))), torch.from_numpy(windows.loss_mask(np.arange(40)))
    inputs, targets = batch[:, :-1], batch[:, 1:]
    results = []
    for budget in (10**12, 7 * len(catalog)):  # one shot; then chunks of 7 rows
        model.zero_grad()
        loss = _train_step_module(model, budget)(inputs, targets, mask_t)
        loss.backward()
        results.append((float(loss.detach()), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (one_loss, one_grads), (chunk_loss, chunk_grads) = results
    assert int(mask_t.sum()) > 7 * 3  # several chunks really ran
    assert chunk_loss == pytest.approx(one_loss, rel=1e-6)
    assert len(one_grads) == len(chunk_grads)
    for a, b in zip(one_grads, chunk_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_validation_in_user_batches_changes_no_number(tiny_release: Path) -> None:
    torch = pytest.importorskip("torch")
    from dualrec_tui.core.lstm import LstmRecommender
    from training.fit_lstm import validation_ndcg_hr

    split, catalog = _tiny_split_and_catalog(tiny_release)
    torch.manual_seed(0)
    recommender = LstmRecommender(_tiny_lstm(catalog), catalog)
    whole = validation_ndcg_hr(recommender, split, batch_users=10_000)
    assert validation_ndcg_hr(recommender, split, batch_users=7) == whole


def test_bench_scale_runs_every_step_on_a_tiny_shape(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from bench_scale import run_shape, table

    rows = run_shape("tiny", tmp_path, batches=1)
    names = [r["step"] for r in rows]
    assert names[0] == "load" and "search per keystroke" in names
    cached = next(r for r in rows if r["step"] == "catalog from_json, columns from disk cache")
    assert cached["note"] == "movies made lazily"
    assert "LSTM epoch, full softmax (estimated)" in names
    assert "LSTM epoch, sampled softmax, 1,000 negatives (estimated)" in names
    assert all(r["seconds"] >= 0 and r["peak_rss_mb"] > 0 for r in rows)
    rendered = table({"tiny": rows})
    assert sum(line.startswith("| ") for line in rendered.splitlines()) == len(rows) + 2  # + header, rule
    assert "| load | " in rendered and "load average" in rendered


def test_odd_ratings_get_the_line_readers_float32_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = WRITERS["csv"](tmp_path / "r")
    lines = (folder / "ratings.csv").read_text(encoding="utf-8").splitlines()
    odd = ["3.14159265358979", "0.1", "4.999999999", "2.7182818284590452353602874713527", "1e-3", "3.3333333"]
    for i, value in enumerate(odd, start=1):
        u, m, _, t = lines[i].split(",")
        lines[i] = f"{u},{m},{value},{t}"
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with monkeypatch.context() as patch:
        _no_line_reader(patch)
        fast = load_dataset(folder)
    _same_data(fast, folder, "csv")


def test_sampled_softmax_scores_the_target_against_drawn_movies_without_itself() -> None:
    torch = pytest.importorskip("torch")
    from training.scale import sampled_softmax_loss

    generator = torch.Generator().manual_seed(1)
    query = torch.randn(4, 3, generator=generator)
    vectors, bias = torch.randn(6, 3, generator=generator), torch.randn(6, generator=generator)
    targets = torch.tensor([0, 2, 5, 2])
    torch.manual_seed(7)
    loss = sampled_softmax_loss(query, lambda i: (vectors[i], bias[i]), targets, 6, 5)
    torch.manual_seed(7)
    drawn = torch.randint(6, (5,))  # what the loss drew
    assert set(drawn.tolist()) & set(targets.tolist())  # some row's own target was drawn: it must be left out
    expected = []
    for row, target in enumerate(targets.tolist()):
        logits = [float(query[row] @ vectors[target] + bias[target])]
        logits += [float(query[row] @ vectors[d] + bias[d]) for d in drawn.tolist() if d != target]
        expected.append(-logits[0] + float(torch.logsumexp(torch.tensor(logits), 0)))
    assert float(loss) == pytest.approx(sum(expected) / len(expected), rel=1e-5)
