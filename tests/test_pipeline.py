"""The DUALRec pipeline with a fake LSTM and a fake LLM: event order, dropped titles, fusion, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualrec_tui.core.catalog import build_catalog
from dualrec_tui.core.pipeline import (
    DualRec,
    FinalReady,
    FusedReady,
    LlmSuggestion,
    LlmToken,
    LstmReady,
    Notice,
    fuse,
    lstm_ranking,
)
from dualrec_tui.core.prompt import scored_title
from tests.tui_support import report_ranking

CATALOG = build_catalog(
    [
        (10, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
        (20, "Toy Story 2 (1999)", ["Animation", "Children's", "Comedy"]),
        (30, "Matrix, The (1999)", ["Action", "Sci-Fi", "Thriller"]),
        (40, "Heat (1995)", ["Action", "Crime", "Thriller"]),
        (50, "Alien (1979)", ["Horror", "Sci-Fi"]),
        (60, "Aliens (1986)", ["Action", "Horror", "Sci-Fi"]),
        (70, "Fargo (1996)", ["Comedy", "Crime", "Drama"]),
        (80, "Babe (1995)", ["Children's", "Drama"]),
        (90, "Clueless (1995)", ["Comedy", "Romance"]),
        (100, "Casino (1995)", ["Crime", "Drama"]),
    ]
)


class FakeLstm:
    """Scores = a fixed preference order (index 9 best ... index 0 worst)."""

    def __init__(self, preference: list[int]) -> None:
        self.scores = np.zeros(len(CATALOG))
        for rank, item in enumerate(preference):
            self.scores[item] = len(preference) - rank

    def score(self, histories):
        return np.tile(self.scores, (len(histories), 1))


class FakeGenerator:
    def __init__(self, answer: str, chunk: int = 3) -> None:
        self.answer = answer
        self.chunk = chunk
        self.prompts: list[str] = []
        self.grammars: list[str | None] = []

    def generate(self, prompt, *, max_tokens, grammar, temperature, seed, on_token, guard=None):
        self.prompts.append(prompt)
        self.grammars.append(grammar)
        for i in range(0, len(self.answer), self.chunk):
            if on_token is not None:
                on_token(self.answer[i : i + self.chunk])
        return self.answer


class ReverseReranker:
    def rerank(self, candidates, history, lstm_prediction):
        return [(c, -float(p)) for p, c in enumerate(reversed(list(candidates)))]


def Titles(*args, **kwargs) -> DualRec:
    """The titles mode (DUALRec as first built: the LLM writes titles, reciprocal-rank fusion)."""
    return DualRec(*args, mode="titles", **kwargs)


PREFERENCE = [4, 5, 2, 3, 6, 9, 7, 8, 0, 1]  # LSTM: Alien, Aliens, Matrix, ...
HISTORY = [0, 2]  # Toy Story, The Matrix


def test_events_in_order_and_bad_titles_dropped_and_counted() -> None:
    answer = (
        "Fargo (1996) | Comedy, Crime\n"
        "Not A Real Movie (2001) | Drama\n"  # unresolved
        "Fargo (1996) | Comedy\n"  # duplicate
        "The Matrix (1999) | Action\n"  # already watched
        "Alien (1979) | Horror\n"  # the LSTM's own top-1
        "Clueless (1995) | Comedy, Romance\n"
        "<end>"
    )
    generator = FakeGenerator(answer)
    events = []
    result = Titles(CATALOG, FakeLstm(PREFERENCE), generator, n_suggestions=3, llm_weight=1.0).recommend(
        HISTORY, k=5, on_event=events.append
    )
    kinds = [type(e) for e in events]
    assert kinds[0] is LstmReady and kinds[-1] is FinalReady
    assert LlmToken in kinds and kinds.count(FinalReady) == 1
    # every suggestion is announced while streaming, i.e. before the final list, after its own tokens
    first_suggestion = kinds.index(LlmSuggestion)
    assert LlmToken in kinds[:first_suggestion]
    assert "".join(e.text for e in events if isinstance(e, LlmToken)) == answer
    statuses = [e.status for e in events if isinstance(e, LlmSuggestion)]
    assert statuses == ["kept", "unresolved", "duplicate", "watched", "lstm-pick", "kept"]
    assert result.counts["generated"] == 6 and result.counts["kept"] == 2
    for key in ("unresolved", "duplicate", "watched", "lstm-pick"):
        assert result.counts[key] == 1
    # the prompt shows the recent history and the LSTM's top-1
    assert (
        "Toy Story (1995)" in generator.prompts[0]
        and "predicts they will watch next: Alien (1979)" in generator.prompts[0]
    )
    assert generator.grammars[0] and "root ::=" in generator.grammars[0]
    # fused: LLM picks climb, history never appears, sources tagged
    indices = [r.index for r in result.recommendations]
    assert len(indices) == 5 and not set(indices) & set(HISTORY)
    # fused = 1/(10 + r_lstm) + 1/(10 + r_llm): Fargo 1/14+1/11, Clueless 1/17+1/12, then Alien 1/11, ...
    assert indices == [6, 8, 4, 5, 3]
    sources = {r.index: r.source for r in result.recommendations}
    assert sources[4] == "lstm" and sources[6] == "both" and sources[8] == "llm"
    assert all(r.why for r in result.recommendations)
    assert sorted(result.ranking) == sorted(set(range(len(CATALOG))) - set(HISTORY))


def test_lstm_ready_is_the_lstm_top_k_and_weight_zero_is_the_lstm() -> None:
    generator = FakeGenerator("Clueless (1995) | Comedy\n<end>")
    events = []
    result = Titles(CATALOG, FakeLstm(PREFERENCE), generator, llm_weight=0.0).recommend(
        HISTORY, k=4, on_event=events.append
    )
    expected = [i for i in PREFERENCE if i not in HISTORY][:4]
    assert [r.index for r in events[0].recommendations] == expected
    assert [r.index for r in result.recommendations] == expected


def test_reranker_order_is_used_and_exclusions_respected() -> None:
    answer = "Fargo (1996) | Comedy\nClueless (1995) | Comedy\n<end>"
    pipeline = Titles(CATALOG, FakeLstm(PREFERENCE), FakeGenerator(answer), ReverseReranker(), llm_weight=5.0)
    result = pipeline.recommend(HISTORY, k=3, exclude=[5])
    indices = [r.index for r in result.recommendations]
    assert indices[:2] == [8, 6]  # re-ranker reversed the LLM's order; the large weight puts them first
    assert 5 not in result.ranking and not set(result.ranking) & set(HISTORY)


def test_without_llm_the_lstm_list_is_returned_and_the_reason_given() -> None:
    events = []
    result = Titles(CATALOG, FakeLstm(PREFERENCE), None, notes=["LLM unavailable: no GGUF"]).recommend(
        HISTORY, k=3, on_event=events.append
    )
    assert [type(e) for e in events] == [LstmReady, FinalReady]
    assert [r.source for r in result.recommendations] == ["lstm"] * 3
    assert result.notes == ["LLM unavailable: no GGUF"]


def test_a_failing_llm_is_reported_and_the_lstm_list_survives() -> None:
    class Broken:
        def generate(self, *args, **kwargs):
            raise RuntimeError("decode failed")

    events = []
    result = Titles(CATALOG, FakeLstm(PREFERENCE), Broken()).recommend(HISTORY, k=3, on_event=events.append)
    assert any(isinstance(e, Notice) and "decode failed" in e.message for e in events)
    assert [r.index for r in result.recommendations] == [4, 5, 3]


def test_truncated_and_rambling_answers() -> None:
    rambling = "".join("Fargo (1996) | Comedy\n" for _ in range(200)) + "Heat (19"
    result = Titles(CATALOG, FakeLstm(PREFERENCE), FakeGenerator(rambling, chunk=7), n_suggestions=3).recommend(
        HISTORY, k=3
    )
    assert result.counts["kept"] == 1 and result.counts["generated"] <= 13  # capped at 4 * n (+ the tail)
    assert [r.index for r in result.recommendations].count(6) <= 1


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.lists(st.integers(0, len(CATALOG) - 1), max_size=6))
def test_never_returns_history_whatever_the_llm_says(answer: str, history: list[int]) -> None:
    result = Titles(CATALOG, FakeLstm(PREFERENCE), FakeGenerator(answer)).recommend(history, k=5)
    indices = [r.index for r in result.recommendations]
    assert not set(indices) & set(history)
    assert len(indices) == len(set(indices)) == min(5, len(CATALOG) - len(set(history)))
    assert result.counts["generated"] == sum(
        result.counts[s] for s in ("kept", "unresolved", "duplicate", "watched", "lstm-pick")
    )


def test_fuse_is_a_permutation_and_weight_zero_is_identity() -> None:
    order = lstm_ranking(np.array([0.1, 0.9, 0.5, 0.9, 0.0]), exclude={4})
    assert order.tolist() == [1, 3, 2, 0]
    assert fuse(order, [0, 2], 0.0) == [1, 3, 2, 0]
    fused = fuse(order, [0, 2], 1.0)
    assert fused == [0, 2, 1, 3]  # 1/14 + 1/11 > 1/13 + 1/12 > 1/11 > 1/12


def test_load_without_models_is_a_clear_error(tmp_path) -> None:
    from dualrec_tui.core.errors import DualrecError

    with pytest.raises((DualrecError, ImportError)):
        DualRec.load(tmp_path)


class _Ctx:
    """The parts of training.evaluate.EvalContext the LLM rows use."""

    def __init__(self, work_dir) -> None:
        self.catalog = CATALOG
        self.models: dict = {}
        self.work_dir = work_dir
        self.tune_users = None  # the row's own default

    def log(self, message: str) -> None:
        pass


class _OracleGenerator:
    """Suggests a fixed title per prompt (looked up by the most recent movie in the prompt)."""

    def __init__(self, by_last: dict[str, str]) -> None:
        self.by_last = by_last

    def generate(self, prompt, *, max_tokens, grammar, temperature, seed, on_token, guard=None):
        recent = [line for line in prompt.splitlines() if line.startswith("- ")]
        answer = self.by_last.get(recent[-1][2:].split(" |")[0], "Nonexistent Film (1990) | Drama") + "\n<end>"
        if on_token:
            on_token(answer)
        return answer


class _IdentityReranker:
    alpha = 0.5

    def rerank(self, candidates, history, lstm_prediction):
        return [(c, 0.0) for c in candidates]


def _llm_rows(tmp_path, generator, catalog_generator=None):
    """A `dualrec` row tuned on two validation users; with `catalog_generator`, a second (catalog-titles)
    stage competes with the first, as llm and llm-catalog do."""
    from dualrec_tui.core.sequences import Split
    from training.llm_eval import DualRecModel, LlmBaseCatalogModel, LlmBaseModel, MemoGenerator

    # users whose validation target is Clueless (8), which the LSTM ranks low (7th of the unwatched)
    split = Split([1, 2], [[0, 2], [0, 2]], [8, 8], [], [], len(CATALOG))
    ctx = _Ctx(tmp_path)
    model = DualRecModel(ctx)
    for kind, gen in ((LlmBaseModel, generator), (LlmBaseCatalogModel, catalog_generator)):
        if gen is not None:
            stage = kind(ctx)
            stage.lstm, stage.generator, stage.gguf = FakeLstm(PREFERENCE), MemoGenerator(gen), tmp_path / "x.gguf"
            model.stages[kind.name] = stage
    model.stage_name = "llm-base"
    model.stage, model.reranker = model.stages["llm-base"], _IdentityReranker()
    model._tune(split, seed=0)
    return model.stages["llm-base"], model


def test_llm_rows_rank_resolved_suggestions_and_report_rates(tmp_path) -> None:
    stage, model = _llm_rows(tmp_path, _OracleGenerator({"The Matrix (1999)": "Clueless (1995) | Comedy"}))
    assert model.llm_weight > 0  # the LLM finds the validation target: tuning lets it in
    assert (tmp_path / "fusion.json").is_file()
    lists = stage.rank([HISTORY, [0]], k=20)
    assert lists == [[8], []]  # second user's answer names no catalog movie
    stats = stage.stats()
    assert stats["resolved_rate"] == 0.5 and stats["hallucination_rate"] == 0.5
    fused = model.rank([HISTORY], k=20)[0]
    assert fused[0] == 8 and sorted(fused) == sorted(set(range(len(CATALOG))) - set(HISTORY))


def test_dualrec_tuning_keeps_the_lstm_when_the_llm_does_not_help(tmp_path) -> None:
    _, model = _llm_rows(tmp_path, _OracleGenerator({}))  # only unresolvable titles
    assert model.llm_weight == 0.0
    lstm_alone = [i for i in PREFERENCE if i not in HISTORY]
    assert model.rank([HISTORY], k=20)[0] == lstm_alone
    assert model.stats()["tuning"]["best"] == model.stats()["tuning"]["lstm_only"]


def test_dualrec_tuning_chooses_the_title_mode_on_validation(tmp_path) -> None:
    """Free titles miss, catalog titles find the target: tuning picks catalog titles and records it."""
    import json

    hit = _OracleGenerator({"The Matrix (1999)": "Clueless (1995) | Comedy"})
    _, model = _llm_rows(tmp_path, _OracleGenerator({}), catalog_generator=hit)
    assert model.stage_name == "llm-base-catalog" and model.llm_weight > 0
    assert json.loads((tmp_path / "fusion.json").read_text())["constrain_titles"] is True
    assert model.stats()["constrain_titles"] is True
    _, model = _llm_rows(tmp_path, hit, catalog_generator=hit)  # a tie, equally usable: free titles
    assert model.stage_name == "llm-base"
    assert json.loads((tmp_path / "fusion.json").read_text())["constrain_titles"] is False
    # the LSTM alone in both modes (w = 0), but catalog titles are usable more often: they win the tie
    miss = _OracleGenerator({"The Matrix (1999)": "Heat (1995) | Action"})
    _, model = _llm_rows(tmp_path, _OracleGenerator({}), catalog_generator=miss)
    assert model.llm_weight == 0.0 and model.stage_name == "llm-base-catalog"
    assert model.stats()["tuning"]["usable_rate"] == {"llm-base": 0.0, "llm-base-catalog": 1.0}


def test_every_fusion_json_key_is_accepted_by_the_app_and_dualrec(tmp_path) -> None:
    """fusion.json as the evaluation writes it (alpha included) must build the pipeline the app uses."""
    from pathlib import Path

    from dualrec_tui.core.pipeline import DualRec, read_fusion, write_fusion
    from dualrec_tui.services import ModelHub
    from tests.tui_support import FakeGenerator, FakeLstm, small_catalog

    class Reranker:
        alpha = 0.5

    write_fusion(tmp_path / "llm", {"alpha": 0.25, "llm_weight": 0.0, "n_suggestions": 3})
    catalog = small_catalog()
    settings = read_fusion(tmp_path / "llm")
    reranker = Reranker()
    pipeline = DualRec(catalog, FakeLstm(catalog), FakeGenerator(), reranker, **settings)
    assert reranker.alpha == 0.25 and pipeline.llm_weight == 0.0 and pipeline.n_suggestions == 3

    hub = ModelHub(models_dir=Path(tmp_path), catalog=catalog, lstm=FakeLstm(catalog), llm_enabled=False)
    built = hub.load_llm()
    assert built is not None and built.llm_weight == 0.0


def test_a_broken_fusion_json_costs_only_the_settings(tmp_path) -> None:
    """Bad values in fusion.json: the app still builds the pipeline, on defaults, and says which file."""
    from dualrec_tui.core.pipeline import DEFAULT_LLM_WEIGHT, OptionalStages, build_pipeline
    from tests.tui_support import FakeLstm, small_catalog

    catalog = small_catalog()
    for text in ('{"llm_weight": "lots"}', '{"n_suggestions": 0}', "{not json", "[1, 2]", '{"mode": "magic"}'):
        (tmp_path / "fusion.json").write_text(text, encoding="utf-8")
        pipeline = build_pipeline(catalog, FakeLstm(catalog), OptionalStages(), tmp_path)
        assert pipeline.llm_weight == DEFAULT_LLM_WEIGHT
        assert any(str(tmp_path / "fusion.json") in note for note in pipeline.notes), text  # never silent


# ------------------------------------------------------------------------------- candidates mode
class ScriptedRanker:
    """A candidate stage 2 whose preference is a fixed movie order, whatever letter a movie is shown under."""

    def __init__(self, liked: list[int]) -> None:
        self.liked = liked
        self.prompts: list[str] = []
        self.lines: list[list[str]] = []

    def run(self, prompt, lines, *, n_write, on_scores=None, on_line=None):
        self.prompts.append(prompt)
        self.lines.append(list(lines))
        # letter lines ("C. Title (Year)") or bare labels (the title-likelihood scorer's candidates)
        titles = [(line[3:] if line[1:3] == ". " else line).split(" |")[0] for line in lines]
        labels = [CATALOG[i].label for i in self.liked]
        prefixes = [scored_title(CATALOG[i], "title-prefix") for i in self.liked]  # "Title (": no year
        raw = np.array(
            [
                5.0 - labels.index(t) if t in labels else 5.0 - prefixes.index(line) if line in prefixes else -5.0
                for t, line in zip(titles, lines, strict=True)
            ]
        )
        scores = raw - np.log(np.exp(raw).sum())
        return report_ranking(scores, n_write, on_scores, on_line)


class SimReranker:
    alpha = 0.5

    def __init__(self, liked: int) -> None:
        self.liked = liked

    def score(self, candidates, history, lstm_prediction, alpha=None):
        return np.array([1.0 if c == self.liked else 0.0 for c in candidates])


def test_candidates_mode_events_prompt_and_fused_order() -> None:
    ranker = ScriptedRanker([8])  # the LLM is sure about Clueless, the LSTM's 7th unwatched movie
    events = []
    pipeline = DualRec(CATALOG, FakeLstm(PREFERENCE), ranker=ranker, n_candidates=8, llm_rank_weight=1.0)
    result = pipeline.recommend(HISTORY, k=5, on_event=events.append)
    kinds = [type(e) for e in events]
    assert kinds[0] is LstmReady and kinds[1] is FusedReady and kinds[-1] is FinalReady
    assert kinds.count(LlmSuggestion) == pipeline.n_suggestions
    assert kinds.index(FusedReady) < kinds.index(LlmSuggestion)  # the list is on screen before the LLM writes
    prompt = ranker.prompts[0]
    assert "Candidates:" in prompt and "predicts they will watch next: Alien (1979)" in prompt
    assert prompt.count("\n") == len(prompt.splitlines())  # ends with a newline: "Answer:\n"
    unwatched = [i for i in PREFERENCE if i not in HISTORY]
    assert sorted(result.candidates) == sorted(unwatched[:8]) and result.candidates == unwatched[:8]
    assert result.recommendations[0].index == 8 and "llm" in result.recommendations[0].signals
    assert result.stages == {"llm": "wrote", "sim": "off", "markov": "off", "reordered": True}
    assert result.suggestions[0].movie.index == 8 and "Clueless (1995)" in result.answer.splitlines()[0]
    assert sorted(result.ranking) == sorted(set(range(len(CATALOG))) - set(HISTORY))
    assert "re-ordered by the LLM" in pipeline.describe(result) and "Clueless" in pipeline.describe(result)


def test_candidates_are_shown_in_a_shuffled_history_seeded_order() -> None:
    """The LSTM's rank must not be readable from a candidate's letter: the order is a seeded shuffle."""
    pipeline = DualRec(CATALOG, FakeLstm(PREFERENCE), ranker=ScriptedRanker([]), n_candidates=8)
    orders = {tuple(pipeline.candidate_order([h], 8).tolist()) for h in range(len(CATALOG))}
    assert len(orders) > 5  # different histories, different orders
    assert pipeline.candidate_order(HISTORY, 8).tolist() == pipeline.candidate_order(HISTORY, 8).tolist()
    firsts = [pipeline.candidate_order([h, h + 1], 8)[0] for h in range(len(CATALOG) - 1)]
    assert len(set(firsts)) > 3  # the LSTM's best is not always shown first


def test_llm_scores_follow_the_movie_not_the_letter() -> None:
    """Scores are mapped back from prompt positions to movies: the liked movie wins under any shuffle."""
    for seed in range(5):
        pipeline = DualRec(
            CATALOG, FakeLstm(PREFERENCE), ranker=ScriptedRanker([7]), n_candidates=8, llm_rank_weight=1.0, seed=seed
        )
        result = pipeline.recommend(HISTORY, k=3)
        assert result.llm_scores is not None
        assert result.candidates[int(np.argmax(result.llm_scores))] == 7
        assert result.recommendations[0].index == 7


def test_zero_weights_keep_the_lstm_order_and_say_so() -> None:
    pipeline = DualRec(CATALOG, FakeLstm(PREFERENCE), ranker=ScriptedRanker([8]), reranker=SimReranker(8))
    result = pipeline.recommend(HISTORY, k=4)
    assert [r.index for r in result.recommendations] == [i for i in PREFERENCE if i not in HISTORY][:4]
    assert result.stages["reordered"] is False and all(r.signals == ("lstm",) for r in result.recommendations)
    text = pipeline.describe(result)
    assert text.startswith("LSTM order (the LLM and similarity did not improve it") and "re-ordered" not in text
    # the LLM's first pick (Clueless) is not among the 4 shown, and the line says so
    assert text.endswith("LLM's picks: Clueless (not listed), Heat, Fargo")


def test_hiding_an_llm_pick_marks_it_not_listed_on_the_state_line() -> None:
    from dualrec_tui.core.pipeline import RESERVE, FinalReady, FusedReady
    from dualrec_tui.widgets.rec_events import RecsView

    pipeline = DualRec(CATALOG, FakeLstm(PREFERENCE), ranker=ScriptedRanker([8]), reranker=SimReranker(8))
    result = pipeline.recommend(HISTORY, k=4)
    view = RecsView(popular_stage1=False, llm_on=True, llm_status="", describe=pipeline.describe)
    shown = view.apply(FinalReady(result)).state
    heat = next(r for r in result.recommendations if r.movie.title == "Heat")
    after = view.hidden(heat.index)
    assert shown.endswith("LLM's picks: Clueless (not listed), Heat, Fargo")
    assert "Heat (not listed)" in after.state
    # the next pick in the fused order takes the free place: the list keeps its length, no new run
    assert len(result.reserve) == min(RESERVE, len(result.ranking) - 4) >= 2  # a 12-movie catalog: what is left
    assert [r.index for r in after.recs] == [
        *(r.index for r in result.recommendations if r.index != heat.index),
        result.reserve[0].index,
    ]
    assert [r.index for r in result.recommendations + result.reserve] == result.ranking[: 4 + len(result.reserve)]
    again = view.hidden(after.recs[0].index)  # and again, from what is left of the reserve
    assert len(again.recs) == 4 and again.recs[-1].index == result.reserve[1].index

    # hidden while the run is still going (its exclude set predates the hide): the run's later events
    # leave it out, and its final list is refilled from the reserve
    early = RecsView(popular_stage1=False, llm_on=True, llm_status="", describe=pipeline.describe)
    first = result.recommendations[0]
    assert early.hidden(first.index) is None
    assert first.index not in [r.index for r in early.apply(FusedReady(result.recommendations)).recs]
    final = early.apply(FinalReady(result)).recs
    assert first.index not in [r.index for r in final] and len(final) == 4
    assert final[-1].index == result.reserve[0].index


def test_similarity_is_a_signal_of_its_own() -> None:
    pipeline = DualRec(CATALOG, FakeLstm(PREFERENCE), reranker=SimReranker(3), sim_weight=10.0, n_candidates=6)
    result = pipeline.recommend(HISTORY, k=3)
    assert result.recommendations[0].index == 3 and result.recommendations[0].signals[-1] == "sim"
    assert result.stages["llm"] == "off" and result.stages["sim"] == "scored"
    assert pipeline.describe(result) == "LSTM order, re-ordered by similarity"


def test_markov_transitions_are_a_fused_signal_named_in_the_tag_and_the_status_line() -> None:
    """With a Markov weight, a movie often watched right after the last one rises, its tag says "next",
    and the status line names the signal; weight 0 leaves the order alone and the line does not claim it."""
    from dualrec_tui.core.markov import MarkovTransitions

    last = HISTORY[-1]
    markov = MarkovTransitions.fit([[last, 3]] * 30, np.ones(len(CATALOG)), smoothing=1e-6)
    pipeline = DualRec(
        CATALOG, FakeLstm(PREFERENCE), reranker=SimReranker(9), markov=markov, sim_weight=0.5, markov_weight=0.5
    )
    result = pipeline.recommend(HISTORY, k=3)
    top = result.recommendations[0]
    assert (
        top.index == 3
        and "markov" in top.signals
        and top.why.startswith("30 MovieLens users rated it right after The Matrix;")
    )
    assert result.stages["markov"] == "scored" and result.markov_scores is not None
    assert pipeline.describe(result) == "LSTM order, re-ordered by similarity and what MovieLens users rated next"
    from dualrec_tui.widgets.lists import recommendation_tag

    assert recommendation_tag(top)[0] == "LSTM+next"
    unweighted = DualRec(CATALOG, FakeLstm(PREFERENCE), markov=markov, markov_weight=0.0)
    result = unweighted.recommend(HISTORY, k=3)
    assert [r.index for r in result.recommendations] == [i for i in PREFERENCE if i not in HISTORY][:3]
    assert "rated next" not in unweighted.describe(result)
    # a last movie nobody rated anything after: the term is the popularity prior, and is called that
    lonely = DualRec(
        CATALOG, FakeLstm(PREFERENCE), reranker=SimReranker(9), markov=markov, sim_weight=0.5, markov_weight=0.5
    )
    result = lonely.recommend([0, 3], k=5)
    assert result.stages["markov"] == "prior only"
    assert all("markov" not in r.signals for r in result.recommendations)
    assert "popularity" in lonely.describe(result) and "rated next" not in lonely.describe(result)


def test_a_failing_markov_signal_costs_only_itself_and_is_not_claimed() -> None:
    class Broken:
        def candidate_log_probs(self, history, candidates):
            raise IndexError("row out of range")

    events = []
    pipeline = DualRec(
        CATALOG, FakeLstm(PREFERENCE), reranker=SimReranker(3), markov=Broken(), sim_weight=10.0, markov_weight=1.0
    )
    result = pipeline.recommend(HISTORY, k=3, on_event=events.append)
    assert any(isinstance(e, Notice) and "rated-next counts failed" in e.message for e in events)
    assert result.stages["markov"] == "failed" and result.recommendations[0].index == 3
    assert pipeline.describe(result) == "LSTM order, re-ordered by similarity"


def test_a_failing_ranker_or_reranker_costs_only_its_own_signal() -> None:
    class Broken:
        def run(self, *args, **kwargs):
            raise RuntimeError("decode failed")

        def score(self, *args, **kwargs):
            raise RuntimeError("no vectors")

    events = []
    pipeline = DualRec(
        CATALOG, FakeLstm(PREFERENCE), ranker=Broken(), reranker=SimReranker(3), sim_weight=10.0, llm_rank_weight=1.0
    )
    result = pipeline.recommend(HISTORY, k=3, on_event=events.append)
    assert any(isinstance(e, Notice) and "decode failed" in e.message for e in events)
    assert result.stages["llm"] == "failed" and result.stages["sim"] == "scored"
    assert result.recommendations[0].index == 3  # similarity still re-orders
    assert "the LLM failed" in pipeline.describe(result)
    pipeline = DualRec(
        CATALOG, FakeLstm(PREFERENCE), ranker=ScriptedRanker([8]), reranker=Broken(), llm_rank_weight=1.0
    )
    result = pipeline.recommend(HISTORY, k=3)
    assert result.stages["sim"] == "failed" and result.recommendations[0].index == 8


def test_candidate_settings_from_fusion_json(tmp_path) -> None:
    from dualrec_tui.core.pipeline import OptionalStages, build_pipeline, write_fusion

    write_fusion(
        tmp_path,
        {"mode": "candidates", "n_candidates": 6, "llm_rank_weight": 0.5, "sim_weight": 2.0, "depth": 4, "alpha": 1.0},
    )
    reranker = SimReranker(3)
    stages = OptionalStages(ranker=ScriptedRanker([8]), reranker=reranker)
    pipeline = build_pipeline(CATALOG, FakeLstm(PREFERENCE), stages, tmp_path)
    assert pipeline.mode == "candidates" and pipeline.n_candidates == 6 and reranker.alpha == 1.0
    assert (pipeline.weights.llm, pipeline.weights.sim, pipeline.weights.depth) == (0.5, 2.0, 4)
    assert not pipeline.notes


def test_with_llm_weight_zero_the_fused_list_does_not_wait_for_the_llm() -> None:
    events: list = []

    class Watching(ScriptedRanker):
        def run(self, prompt, lines, **kwargs):
            self.fused_before = any(isinstance(e, FusedReady) for e in events)
            return super().run(prompt, lines, **kwargs)

    ranker = Watching([8])
    pipeline = DualRec(CATALOG, FakeLstm(PREFERENCE), ranker=ranker, reranker=SimReranker(3), sim_weight=10.0)
    pipeline.recommend(HISTORY, k=3, on_event=events.append)
    assert ranker.fused_before and [type(e) for e in events].count(FusedReady) == 1


def test_title_scoring_scores_labels_after_the_title_prompt_and_answers_catalog_lines() -> None:
    """llm_scoring "titles": the method's title prompt (no candidate list, so no letters or shuffle), each
    candidate's label in LSTM order, and the answer written as `Title (Year) | Genres` lines."""
    from dualrec_tui.core.prompt import movie_line

    ranker = ScriptedRanker([8])
    pipeline = DualRec(
        CATALOG, FakeLstm(PREFERENCE), ranker=ranker, n_candidates=8, llm_rank_weight=1.0, llm_scoring="titles"
    )
    result = pipeline.recommend(HISTORY, k=5)
    prompt = ranker.prompts[0]
    assert prompt == pipeline.prompt_for(HISTORY, result.candidates[0])
    assert "Candidates:" not in prompt and prompt.endswith("Recommendations:\n")
    assert ranker.lines[0] == [CATALOG[i].label for i in result.candidates]  # LSTM order, bare labels
    assert result.recommendations[0].index == 8 and "llm" in result.recommendations[0].signals
    assert result.answer.splitlines()[0] == movie_line(CATALOG[8])
    assert result.suggestions[0].movie.index == 8 and result.stages["llm"] == "wrote"


def test_title_prefix_scoring_scores_titles_without_their_year() -> None:
    """llm_scoring "title-prefix": each candidate is scored as "Title (" (the year is not decoded), and
    the written answer is still the full catalog line."""
    from dualrec_tui.core.prompt import movie_line

    ranker = ScriptedRanker([8])
    pipeline = DualRec(
        CATALOG, FakeLstm(PREFERENCE), ranker=ranker, n_candidates=8, llm_rank_weight=1.0, llm_scoring="title-prefix"
    )
    result = pipeline.recommend(HISTORY, k=5)
    assert ranker.lines[0] == [f"{CATALOG[i].title} (" for i in result.candidates]
    assert result.recommendations[0].index == 8 and result.answer.splitlines()[0] == movie_line(CATALOG[8])


def test_fusion_json_llm_scoring_picks_the_title_scorer(tmp_path) -> None:
    from dualrec_tui.core.llm_rank import LlamaCandidateRanker, LlamaTitleScorer
    from dualrec_tui.core.pipeline import OptionalStages, build_pipeline, write_fusion

    generator = object()  # the scorers only keep it until they run
    stages = OptionalStages(generator=generator, ranker=LlamaCandidateRanker(generator))
    write_fusion(tmp_path, {"mode": "candidates", "llm_scoring": "titles", "llm_rank_weight": 0.2})
    pipeline = build_pipeline(CATALOG, FakeLstm(PREFERENCE), stages, tmp_path)
    assert isinstance(pipeline.ranker, LlamaTitleScorer) and pipeline.ranker.generator is generator
    assert pipeline.llm_scoring == "titles" and not pipeline.notes
    write_fusion(tmp_path, {"mode": "candidates", "llm_scoring": "title-prefix", "llm_rank_weight": 0.2})
    pipeline = build_pipeline(CATALOG, FakeLstm(PREFERENCE), stages, tmp_path)
    assert isinstance(pipeline.ranker, LlamaTitleScorer) and pipeline.llm_scoring == "title-prefix"
    from dualrec_tui.core.llm_rank import scorer_for  # the one choice, shared by the harness and benchmarks

    assert isinstance(scorer_for("letters", generator), LlamaCandidateRanker)
    assert all(isinstance(scorer_for(s, generator), LlamaTitleScorer) for s in ("titles", "title-prefix"))
    write_fusion(tmp_path, {"mode": "candidates", "llm_rank_weight": 0.2})  # older files: the letters
    pipeline = build_pipeline(CATALOG, FakeLstm(PREFERENCE), stages, tmp_path)
    assert isinstance(pipeline.ranker, LlamaCandidateRanker) and pipeline.llm_scoring == "letters"
    write_fusion(tmp_path, {"mode": "candidates", "llm_scoring": "vibes"})
    pipeline = build_pipeline(CATALOG, FakeLstm(PREFERENCE), stages, tmp_path)
    assert any("llm_scoring" in note and "vibes" in note for note in pipeline.notes)  # never silent
