"""The `llm-rank` and `dualrec` harness rows (training/candidate_eval.py) on fakes: tuning, ties, no leakage."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dualrec_tui.core.markov import MarkovTransitions
from dualrec_tui.core.sequences import Split
from tests.test_pipeline import CATALOG, PREFERENCE, FakeLstm, ScriptedRanker
from training.candidate_eval import CandidateDualRecModel, LlmRankModel, SignalCache


class _Reranker:
    """Similarity 1 for one movie, 0 for the rest, whatever alpha is."""

    alpha = 0.5

    def __init__(self, liked: int | None) -> None:
        self.liked = liked

    def score(self, candidates, history, lstm_prediction, alpha=None):
        return np.array([1.0 if c == self.liked else 0.0 for c in candidates])


class _Ctx:
    def __init__(self, work_dir, lstm, llm_scoring: str = "letters") -> None:
        self.llm_scoring = llm_scoring
        self.catalog = CATALOG
        self.models: dict = {"lstm": lstm}
        self.work_dir = work_dir
        self.seed = 0
        self.tune_users = "all"

    def require(self, name):
        return self.models[name]

    def log(self, message: str) -> None:
        pass


def _rows(tmp_path, ranker, reranker, llm_scoring: str = "letters"):
    ctx = _Ctx(tmp_path, FakeLstm(PREFERENCE), llm_scoring)
    cache = ctx.models["_candidate_signals"] = SignalCache(ctx, n_candidates=8)
    cache.ranker, cache.reranker = ranker, reranker
    ctx.models["llm-rank"] = rank = LlmRankModel(ctx)
    ctx.models["markov"] = _markov()
    rank.cache = cache
    model = CandidateDualRecModel(ctx)
    model.cache = cache
    return ctx, rank, model


# users whose validation target is Clueless (8): the LSTM ranks it 7th of the unwatched
SPLIT = Split([1, 2, 3], [[0, 2], [0, 2], [0, 2]], [8, 8, 8], [], [], len(CATALOG))


def test_tuning_lets_a_helpful_llm_in_and_writes_the_app_settings(tmp_path) -> None:
    _, rank, model = _rows(tmp_path, ScriptedRanker([8]), _Reranker(None))
    model._tune(SPLIT)
    assert model.weights.llm > 0 and model.tuning["best"] > model.tuning["lstm_only"]
    settings = json.loads((tmp_path / "fusion.json").read_text())
    assert settings["mode"] == "candidates" and settings["llm_rank_weight"] == model.weights.llm
    assert model.rank([[0, 2]], k=20)[0][0] == 8
    assert rank.rank([[0, 2]], k=20)[0][0] == 8  # the LLM's own order puts its favourite first
    assert model.tuning["tune_users"] == 3 and "same users" in model.tuning["tune_targets"]


def test_a_tie_keeps_the_method_on_not_the_first_grid_point(tmp_path) -> None:
    """An LLM and a re-ranker that change nothing on validation: every configuration ties, so the
    method's design (both re-rankers on) is kept instead of weight 0."""
    _, _, model = _rows(tmp_path, ScriptedRanker([]), _Reranker(None))
    model._tune(SPLIT)
    assert model.tuning["best"] == model.tuning["lstm_only"]
    assert model.weights.llm > 0 and model.weights.sim > 0


def test_a_harmful_signal_never_costs_validation_quality(tmp_path) -> None:
    """An LLM that dislikes the target would push it down: only weights that do not hurt can be chosen."""
    split = Split([1, 2], [[0, 2], [0, 2]], [5, 5], [], [], len(CATALOG))  # Aliens: the LSTM's 2nd
    _, _, model = _rows(tmp_path, ScriptedRanker([4, 3, 6, 9, 7, 8]), _Reranker(None))
    model._tune(split)
    grid = model.tuning["grid"]
    assert grid["w_markov=0.0,w_llm=2.0,w_sim=0.0,alpha=0.0,depth=20"] < model.tuning["lstm_only"]  # a big weight hurts
    assert model.tuning["best"] == model.tuning["lstm_only"]
    assert model.weights.llm < 0.5


def test_signals_are_computed_once_per_history(tmp_path) -> None:
    ranker = ScriptedRanker([8])
    _, rank, model = _rows(tmp_path, ranker, _Reranker(3))
    model._tune(SPLIT)
    calls = len(ranker.prompts)
    model.rank([[0, 2]], k=20)
    rank.rank([[0, 2]], k=20)
    assert len(ranker.prompts) == calls  # the validation input [0, 2] was scored during tuning already
    stats = rank.stats()
    assert stats["llm_calls"] == calls and len(stats["mean_llm_logprob_by_position"]) == 8


def test_title_scoring_rows_score_labels_after_the_title_prompt_and_ship_the_choice(tmp_path) -> None:
    """`--llm-scoring titles` (the default): the LLM scores each candidate's label after the title prompt, in
    LSTM order (no letters, so no shuffle to undo), and fusion.json tells the app to do the same."""
    ranker = ScriptedRanker([8])
    ctx, rank, model = _rows(tmp_path, ranker, _Reranker(None), llm_scoring="titles")
    model._tune(SPLIT)
    assert "Recommendations:" in ranker.prompts[0] and "Candidates:" not in ranker.prompts[0]
    candidates = ctx.models["_candidate_signals"].signals([[0, 2]])[0].order[:8]
    assert ranker.lines[0] == [CATALOG[int(i)].label for i in candidates]
    assert model.weights.llm > 0 and rank.rank([[0, 2]], k=20)[0][0] == 8
    settings = json.loads((tmp_path / "fusion.json").read_text())
    assert settings["llm_scoring"] == "titles" and rank.stats()["llm_scoring"] == "titles"


def test_an_adapter_scored_other_than_it_was_trained_is_warned_about(tmp_path, monkeypatch) -> None:
    """A letters (candidates-task) adapter evaluated with title likelihood measures a prompt it never saw."""
    from types import SimpleNamespace

    from dualrec_tui.core import llm, llm_files

    adapter = tmp_path / "adapter" / "adapter.gguf"
    adapter.parent.mkdir()
    adapter.write_bytes(b"GGUF")
    (adapter.parent / "manifest.json").write_text(json.dumps({"data": {"task": "candidates"}}))
    files = SimpleNamespace(model=tmp_path / "base.gguf", lora=adapter, rebuild="")
    monkeypatch.setattr(llm_files, "locate_llm", lambda path: files)
    monkeypatch.setattr(llm, "LlamaGenerator", lambda *args, **kwargs: object())
    said = []
    for scoring in ("titles", "letters"):
        ctx = _Ctx(tmp_path, FakeLstm(PREFERENCE), scoring)
        ctx.log = said.append
        SignalCache(ctx).attach_llm(adapter.parent)
    assert len(said) == 1 and "'candidates' task" in said[0] and "--llm-scoring letters" in said[0]


class _PriorRanker:
    """Title scores that depend on the prompt: with a history the LLM likes a popular movie most, but the
    popular movie is as likely without any history, while the target rises only with this history."""

    def __init__(self, with_history: dict[int, float], without: dict[int, float]) -> None:
        self.with_history, self.without = with_history, without
        self.calls = 0

    def run(self, prompt, lines, *, n_write, on_scores=None, on_line=None):
        self.calls += 1
        table = self.without if "(nothing yet)" in prompt else self.with_history
        by_label = {CATALOG[i].label: v for i, v in table.items()}
        return np.array([by_label.get(line, -5.0) for line in lines]), []


def test_the_pmi_row_ranks_what_the_history_raises(tmp_path) -> None:
    """Raw likelihood puts the popular movie (Alien, 4) first; subtracting each title's likelihood without a
    history (scored once per movie, under the prompt with nothing watched) puts Clueless (8) first."""
    from dualrec_tui.core.prompt import prior_prompt
    from training.candidate_eval import LlmPmiRankModel

    ranker = _PriorRanker({4: -1.0, 8: -2.0}, {4: -0.5, 8: -9.0})
    ctx, rank, _ = _rows(tmp_path, ranker, _Reranker(None), llm_scoring="titles")
    assert rank.rank([[0, 2]], k=20)[0][0] == 4 and ranker.calls == 1  # no priors unless a row asks
    pmi = LlmPmiRankModel(ctx)
    pmi.fit(SPLIT, CATALOG, 0)
    assert pmi.rank([[0, 2]], k=20)[0][0] == 8
    signal = rank.cache.signals([[0, 2]])[0]
    assert np.allclose(signal.llm_signal(1.0), signal.llm - signal.llm_prior)
    calls = ranker.calls
    pmi.rank([[0, 1]], k=20)  # another user: only the movies not scored yet
    assert ranker.calls - calls <= 2 and pmi.stats()["prior_weight"] == 1.0
    assert prior_prompt().count("(nothing yet)") == 1


def test_ablation_rows_tune_one_signal_each_and_leave_the_app_settings_alone(tmp_path) -> None:
    """`lstm+llm` and `lstm+sim` tune on the same validation targets as `dualrec`, with the other weight held
    at 0; only `dualrec` writes fusion.json."""
    from training.candidate_eval import LstmLlmModel, LstmSimModel

    ctx, _, _ = _rows(tmp_path, ScriptedRanker([8]), _Reranker(8))
    only_llm, only_sim = LstmLlmModel(ctx), LstmSimModel(ctx)
    for model in (only_llm, only_sim):
        model.cache = ctx.models["_candidate_signals"]
        model._tune(SPLIT)
    assert only_llm.weights.llm > 0 and only_llm.weights.sim == 0
    assert only_sim.weights.sim > 0 and only_sim.weights.llm == 0
    assert all(k.startswith("w_llm=0.0,") for k in only_sim.tuning["grid"])
    assert not (tmp_path / "fusion.json").exists()
    assert only_llm.rank([[0, 2]], k=20)[0][0] == 8 and only_sim.rank([[0, 2]], k=20)[0][0] == 8


def test_llm_scores_are_kept_on_disk_for_the_same_llm_only(tmp_path) -> None:
    """A rerun (or a run resumed after an interruption) reuses the stored scores; another LLM does not."""
    from training.candidate_eval import ScoreStore

    def fresh(identity):
        ranker = _PriorRanker({8: -1.0}, {8: -3.0})
        _, rank, _ = _rows(tmp_path, ranker, _Reranker(None), llm_scoring="titles")
        rank.cache.store = ScoreStore(tmp_path / "llm-scores.jsonl", identity)
        rank.cache.with_prior = True
        return ranker, rank.cache.signals([[0, 2], [0, 1]])

    first_ranker, first = fresh({"model.gguf": [1, 2]})
    assert first_ranker.calls > 0
    again_ranker, again = fresh({"model.gguf": [1, 2]})
    assert again_ranker.calls == 0
    for a, b in zip(first, again, strict=True):
        assert np.allclose(a.llm, b.llm) and np.allclose(a.llm_prior, b.llm_prior)
    with (tmp_path / "llm-scores.jsonl").open("a") as out:
        out.write('{"p": "cut sh')  # an interrupted write is skipped, not fatal
    assert fresh({"model.gguf": [1, 2]})[0].calls == 0
    other_ranker, _ = fresh({"model.gguf": [9, 9]})
    assert other_ranker.calls == first_ranker.calls


def test_a_damaged_or_unwritable_score_store_never_stops_the_run(tmp_path) -> None:
    """A store whose first line is garbage starts afresh; one that cannot be written (here its folder is a
    file; a full disk alike) is reported once and the run goes on with the scores it computed."""
    from training.candidate_eval import ScoreStore

    damaged = tmp_path / "llm-scores.jsonl"
    damaged.write_bytes(b"\x00\xff{not json\n")
    store = ScoreStore(damaged, {"model.gguf": [1, 2]})
    assert store.write_error is None and damaged.read_text().startswith('{"llm": {"model.gguf": [1, 2]}}')

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the work dir should be")
    ranker = _PriorRanker({8: -1.0}, {8: -3.0})
    ctx, rank, _ = _rows(tmp_path, ranker, _Reranker(None), llm_scoring="titles")
    said: list[str] = []
    ctx.log = said.append
    rank.cache.store = ScoreStore(blocker / "llm-scores.jsonl", {"model.gguf": [1, 2]})
    signals = rank.cache.signals([[0, 2], [0, 1]])
    assert all(s.llm is not None for s in signals) and ranker.calls == 2
    assert len([m for m in said if "not stored" in m]) == 1 and "not-a-folder" in said[0]


class _TextRanker:
    """Scores by the exact text scored: the year-free prefix and the full label can disagree."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.lines: list[list[str]] = []

    def run(self, prompt, lines, *, n_write, on_scores=None, on_line=None):
        self.lines.append(list(lines))
        return np.array([self.scores.get(line, -5.0) for line in lines]), []


def test_prefix_rows_score_titles_without_years_on_the_same_llm_and_tune_apart(tmp_path) -> None:
    """`llm-rank-prefix` / `dualrec-prefix` score "Title (" with the run's own LLM, score store and
    re-ranker, tune on their own scores, and write their settings beside (not over) dualrec's."""
    from training.candidate_eval import LlmPrefixRankModel, PrefixDualRecModel, ScoreStore

    ranker = _TextRanker({CATALOG[4].label: -1.0, "Clueless (": -0.5})  # full labels: Alien; prefixes: Clueless
    ctx, rank, _ = _rows(tmp_path, ranker, _Reranker(None), llm_scoring="titles")
    main = ctx.models["_candidate_signals"]
    main.store = ScoreStore(tmp_path / "llm-scores.jsonl", {"model.gguf": [1, 2]})
    prefix_rank, prefix_model = LlmPrefixRankModel(ctx), PrefixDualRecModel(ctx)
    prefix_rank.fit(SPLIT, CATALOG, 0)
    prefix_model.fit(SPLIT, CATALOG, 0)
    assert prefix_model.cache is prefix_rank.cache and prefix_model.cache is not main
    assert prefix_model.cache.ranker is ranker and prefix_model.cache.store is main.store
    assert all(line.endswith(" (") for line in ranker.lines[0])
    assert prefix_rank.rank([[0, 2]], k=20)[0][0] == 8 and rank.rank([[0, 2]], k=20)[0][0] == 4
    assert prefix_model.weights.llm > 0
    settings = json.loads((tmp_path / "title-prefix" / "fusion.json").read_text())
    assert settings["llm_scoring"] == "title-prefix" and not (tmp_path / "fusion.json").exists()
    stored = {json.loads(line)["t"] for line in (tmp_path / "llm-scores.jsonl").read_text().splitlines()[1:]}
    assert "Clueless (" in stored and CATALOG[8].label in stored  # both scorings share one store


def test_prefix_rows_refuse_what_they_cannot_score_and_reuse_a_prefix_run(tmp_path, monkeypatch) -> None:
    """A letters run has no title scorer to share; llm-rank-prefix has no LLM of its own to load; a run
    scored by title-prefix throughout needs no second cache; similarity found later reaches the prefix
    rows; and fusion settings chosen for one scoring are refused by a row that scores another way."""
    import pytest

    from dualrec_tui.core.errors import DualrecError
    from dualrec_tui.core.pipeline import write_fusion
    from training.candidate_eval import LlmPrefixRankModel, PrefixDualRecModel

    letters_ctx, _, _ = _rows(tmp_path, ScriptedRanker([8]), _Reranker(None), llm_scoring="letters")
    with pytest.raises(DualrecError, match="titles scoring"):
        LlmPrefixRankModel(letters_ctx).fit(SPLIT, CATALOG, 0)
    titles_ctx, _, _ = _rows(tmp_path, ScriptedRanker([8]), _Reranker(None), llm_scoring="titles")
    with pytest.raises(DualrecError, match="--checkpoint llm-rank="):
        LlmPrefixRankModel(titles_ctx).load(tmp_path)

    prefix_ctx, _, _ = _rows(tmp_path, ScriptedRanker([8]), _Reranker(None), llm_scoring="title-prefix")
    model = PrefixDualRecModel(prefix_ctx)
    model.fit(SPLIT, CATALOG, 0)
    assert model.cache is prefix_ctx.models["_candidate_signals"]  # one scoring, one cache

    ctx, _, _ = _rows(tmp_path, ScriptedRanker([8]), None, llm_scoring="titles")
    monkeypatch.setattr(SignalCache, "attach_reranker", lambda self: setattr(self, "reranker", _Reranker(3)))
    rank = LlmPrefixRankModel(ctx)
    rank.fit(SPLIT, CATALOG, 0)
    assert rank.cache.signals([[0, 2]])[0].sim_prediction is None  # llm-rank-prefix needs no similarity
    PrefixDualRecModel(ctx).fit(SPLIT, CATALOG, 0)
    assert rank.cache.signals([[0, 2]])[0].sim_prediction is not None

    write_fusion(tmp_path / "prefix", {"mode": "candidates", "llm_scoring": "title-prefix", "llm_rank_weight": 0.05})
    titles_dualrec = CandidateDualRecModel(ctx)
    with pytest.raises(DualrecError, match="--llm-scoring title-prefix"):
        titles_dualrec.load(tmp_path / "prefix" / "fusion.json")
    loaded = PrefixDualRecModel(ctx)
    loaded.load(tmp_path / "prefix" / "fusion.json")
    assert loaded.weights.llm == 0.05


def test_the_score_store_knows_one_llm_however_its_path_is_written(tmp_path: Path, monkeypatch) -> None:
    from training.candidate_eval import ScoreStore, llm_identity

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "adapter.gguf").write_bytes(b"lora")
    relative = llm_identity([Path("models/adapter.gguf")])
    assert relative == llm_identity([tmp_path / "models" / "adapter.gguf"])
    store = ScoreStore(tmp_path / "llm-scores.jsonl", relative)
    store.put("a prompt", ["Heat ("], np.array([-1.5]))
    again = ScoreStore(
        tmp_path / "llm-scores.jsonl", llm_identity([tmp_path / "models" / ".." / "models" / "adapter.gguf"])
    )
    assert again.get("a prompt", ["Heat ("]).tolist() == [-1.5]
    (tmp_path / "models" / "adapter.gguf").write_bytes(b"another lora")  # a different file: scores are not reused
    assert (
        ScoreStore(tmp_path / "llm-scores.jsonl", llm_identity([Path("models/adapter.gguf")])).get(
            "a prompt", ["Heat ("]
        )
        is None
    )


def _markov(pairs: list[list[int]] = ()) -> SimpleNamespace:
    """A `markov` row's fitted model: transitions counted from `pairs` (none: every movie alike)."""
    return SimpleNamespace(transitions=MarkovTransitions.fit(list(pairs), np.ones(len(CATALOG)), smoothing=1e-6))


def test_dualrec_tunes_the_markov_signal_with_the_others_and_the_ablations_hold_their_weights(tmp_path) -> None:
    """`dualrec` tunes the Markov weight (0 included) with the others and ships it in fusion.json;
    `lstm+markov+sim` holds the LLM at 0 and `lstm+llm+sim` (DUALRec as published) holds Markov at 0.
    Transitions that point at the target earn a weight, and the signal is the app's own computation."""
    from training.candidate_eval import LstmLlmSimModel, LstmMarkovSimModel

    ctx, _, dualrec = _rows(tmp_path, ScriptedRanker([3]), _Reranker(None))  # the LLM points elsewhere
    ctx.models["markov"] = _markov([[2, 8]] * 20)  # after movie 2 people watch 8 (the validation target)
    without_llm, published = LstmMarkovSimModel(ctx), LstmLlmSimModel(ctx)
    for model in (dualrec, without_llm):
        model._setup()
        model._tune(SPLIT)
        assert model.weights.markov > 0 and model.rank([[0, 2]], k=20)[0][0] == 8
        assert model.fusion_settings()["markov_weight"] == model.weights.markov
        assert all(k.startswith("w_markov=") for k in model.tuning["grid"])
    assert all(",w_llm=0.0," in k for k in without_llm.tuning["grid"])
    assert json.loads((tmp_path / "fusion.json").read_text())["markov_weight"] == dualrec.weights.markov
    signal = dualrec.cache.signals([[0, 2]], llm=False)[0]
    candidates = signal.order[:8]
    expected = ctx.models["markov"].transitions.candidate_log_probs([0, 2], candidates)
    assert np.array_equal(signal.markov, expected) and candidates[np.argmax(signal.markov)] == 8
    (tmp_path / "fusion.json").unlink()
    published._setup()
    published._tune(SPLIT)
    assert published.weights.markov == 0 and not any("markov" in k for k in published.tuning["grid"])
    assert not (tmp_path / "fusion.json").exists()


def test_the_row_that_measured_the_markov_fusion_still_runs_and_ships_nothing() -> None:
    """`dualrec+markov` (the pre-registered run's name) is `dualrec` under that name, minus fusion.json."""
    from training.candidate_eval import DualRecMarkovModel
    from training.registry import MODELS

    assert MODELS["dualrec+markov"] == "training.candidate_eval:DualRecMarkovModel"
    assert DualRecMarkovModel.markov_weights == CandidateDualRecModel.markov_weights
    assert DualRecMarkovModel.llm_weights == CandidateDualRecModel.llm_weights
    assert CandidateDualRecModel.writes_fusion and not DualRecMarkovModel.writes_fusion
