"""The whole DUALRec recommendation for one user.

Two modes (fusion.json `mode`, chosen when the models are built):

**candidates** (the product; issue: ground the LLM in the LSTM's candidates)

    history (catalog indices, oldest first)
      -> LSTM scores every movie; its ranking (watched movies removed)                      [LstmReady]
      -> the LSTM's top K are the candidates; Sentence-BERT scores each against the LSTM's
         top pick and the recent history (stage 3, core/rerank.py)
      -> stage 2 scores all K (core/llm_rank.py), as fusion.json's `llm_scoring` says:
         "title-prefix" (shipped) / "titles": the title prompt (5 most recent movies + the LSTM's
           top pick) is evaluated once, then each candidate's "Title (" (its year not decoded) or
           "Title (Year)" on top of it; the score is its log-likelihood (LlamaTitleScorer,
           prompt.scored_title);
         "letters": the candidate prompt lists the K candidates in a seeded, history-dependent
           shuffled order and one forward pass scores their letters (LlamaCandidateRanker)
      -> score fusion (core/fusion.py) re-orders the head of the LSTM ranking                [FusedReady]
      -> the LLM's answer: its n most likely candidates, best first                          [LlmSuggestion]
      -> the final list (the fused ranking) and what ran                                     [FinalReady]

**titles** (DUALRec as first built, kept measurable: the `llm` / `llm-catalog` evaluation rows)

    prompt (5 recent + LSTM top pick) -> LLM writes titles under a grammar [LlmToken] -> each resolved
    to a catalog movie [LlmSuggestion] -> Sentence-BERT re-ranks them -> weighted reciprocal-rank fusion
    with the LSTM ranking:  fused(i) = 1/(c + r_lstm(i)) + w/(c + r_llm(i)), c = `RRF_C`.

In both modes every weight is chosen on *validation* targets by `training/llm_eval.py` from a grid that
includes 0 (the LSTM alone) and written to `fusion.json`. Each recommendation says which signals placed
it (`signals`), and `DualRecResult.stages` says what actually ran, so the app never claims a re-ranking
that did not happen. The LLM and the re-ranker are optional: when one is missing or fails, the others
still run and `notes` says why.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .artifacts import FUSION_FILE
from .catalog import Catalog, Movie
from .fusion import FusedCandidates, FusionWeights, fuse_candidates, fused_ranking, lstm_log_probs
from .fusion import placed_by as fusion_placed_by
from .prompt import (
    DEFAULT_CANDIDATES,
    DEFAULT_SUGGESTIONS,
    END_OF_ANSWER,
    TITLE_SCORINGS,
    Suggestion,
    build_candidate_prompt,
    build_prompt,
    candidate_lines,
    movie_line,
    parse_answer,
    recent_movies,
    scored_title,
)

RRF_C = 10.0
DEFAULT_LLM_WEIGHT = 1.0
TOKENS_PER_SUGGESTION = 32
MODES = ("candidates", "titles")
LLM_SCORINGS = (*TITLE_SCORINGS, "letters")  # candidates mode: how stage 2 scores the LSTM's candidates
SIGNAL_REASONS = {"llm": "the LLM rates it highly", "sim": "close to your recent movies"}  # markov: with its count


class Generator(Protocol):
    """What the pipeline needs from stage 2 (LlamaGenerator, or a fake in tests)."""

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        grammar: str | None,
        temperature: float,
        seed: int,
        on_token: Callable[[str], None] | None,
        guard: Any = None,  # core.title_grammar.TitleGuard, passed only with catalog titles and greedy decoding
    ) -> str: ...


class Scorer(Protocol):
    """What the pipeline needs from stage 1: (B, n_items) scores, higher = better."""

    def score(self, histories: list[list[int]]) -> Any: ...


# ----------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Recommendation:
    """One recommended movie, as the app shows it and the evaluation ranks it."""

    movie: Movie
    score: float
    source: str  # "lstm", "llm", "both", or "popular" (popularity stood in for the LSTM)
    why: str
    signals: tuple[str, ...] = ("lstm",)  # what placed it: "lstm", "llm", "sim", "markov", "popular" (SIGNALS)

    @property
    def index(self) -> int:
        return self.movie.index

    @property
    def label(self) -> str:
        return self.movie.label

    def as_popular(self, why: str) -> Recommendation:
        """The same pick, credited to popularity: stage 1 was the popularity stand-in, not the LSTM."""
        source = "popular" if self.source == "lstm" else ("popular+LLM" if self.source == "both" else self.source)
        signals = tuple("popular" if s == "lstm" else s for s in self.signals)
        return Recommendation(self.movie, self.score, source, why if self.source == "lstm" else self.why, signals)


@dataclass(frozen=True)
class LstmReady:
    """First event: the LSTM's own top k (shown at once while the LLM works)."""

    recommendations: list[Recommendation]


@dataclass(frozen=True)
class LlmToken:
    """A piece of LLM text as it streams."""

    text: str


@dataclass(frozen=True)
class LlmSuggestion:
    """One parsed LLM line. status: "kept", "unresolved", "duplicate", "watched" or "lstm-pick"."""

    suggestion: Suggestion
    movie: Movie | None
    status: str


@dataclass(frozen=True)
class Notice:
    """A stage was skipped or failed; the message says why."""

    message: str


@dataclass(frozen=True)
class FusedReady:
    """Candidates mode: the fused list, as soon as the LLM has scored the candidates (before it writes)."""

    recommendations: list[Recommendation]


@dataclass
class DualRecResult:
    recommendations: list[Recommendation]
    lstm: list[Recommendation]
    suggestions: list[LlmSuggestion] = field(default_factory=list)
    answer: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    ranking: list[int] = field(default_factory=list)  # the full fused ranking (evaluation uses it)
    stages: dict[str, Any] = field(default_factory=dict)  # what actually ran (see DualRec.recommend)
    candidates: list[int] = field(default_factory=list)  # candidates mode: the LSTM's top K
    llm_scores: np.ndarray | None = None  # (K,) LLM log-probabilities per candidate (LSTM order)
    sim_scores: np.ndarray | None = None  # (K,) Sentence-BERT similarity per candidate (LSTM order)
    markov_scores: np.ndarray | None = None  # (K,) log p(candidate | last movie), Markov transitions (LSTM order)
    markov_counts: np.ndarray | None = None  # (K,) how many MovieLens users rated it right after the last movie
    # the next RESERVE picks after the k shown, same order, tags and reasons: the app fills a hidden pick's
    # place from here without another run
    reserve: list[Recommendation] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    """One `DualRec.recommend` call, as both modes see it: the user, stage 1's scores and order, the
    result being filled in and where events go."""

    history: list[int]
    recent: list[Movie]
    scores: np.ndarray  # (n_items,) stage 1's scores
    order: np.ndarray  # catalog indices by stage 1's score, watched movies removed
    watched: set[int]
    k: int
    result: DualRecResult
    emit: Callable[[Event], None]


@dataclass(frozen=True)
class FinalReady:
    """Last event: the fused recommendations."""

    result: DualRecResult


Event = LstmReady | LlmToken | LlmSuggestion | Notice | FusedReady | FinalReady
RESERVE = 5  # picks kept behind the k shown (DualRecResult.reserve)
COUNT_KEYS = ("generated", "unparsed", "kept", "unresolved", "duplicate", "watched", "lstm-pick")


# ------------------------------------------------------------------------------------------- why
def explain(movie: Movie, recent: Sequence[Movie], source: str) -> str:
    """A short reason: the recent movie sharing most genres with `movie`, else the latest movie."""
    genres = set(movie.genres)
    best: tuple[float, Movie] | None = None
    for seen in reversed(list(recent)):  # most recent first wins ties
        other = set(seen.genres)
        union = genres | other
        jaccard = len(genres & other) / len(union) if union else 0.0
        if jaccard > 0 and (best is None or jaccard > best[0]):
            best = (jaccard, seen)
    if best is not None:
        shared = [g for g in movie.genres if g in best[1].genres][:2]
        return f"{', '.join(shared)}, like {best[1].title}"
    if recent:
        verb = "often watched after" if source == "lstm" else "suggested after"
        return f"{verb} {recent[-1].title}"
    return "popular pick"


# ---------------------------------------------------------------------------------------- fusion
def lstm_ranking(scores: np.ndarray, exclude: set[int]) -> np.ndarray:
    """Catalog indices by descending score, ties by index, excluded items removed."""
    order = np.lexsort((np.arange(scores.shape[0]), -scores))
    if exclude:
        keep = ~np.isin(order, np.fromiter(exclude, dtype=np.int64))
        order = order[keep]
    return order


def fuse(lstm_order: Sequence[int], llm_items: Sequence[int], weight: float, c: float = RRF_C) -> list[int]:
    """Weighted reciprocal-rank fusion (module docstring); returns the full fused ranking."""
    lstm_order = np.asarray(lstm_order, dtype=np.int64)
    fused = 1.0 / (c + np.arange(1, lstm_order.shape[0] + 1, dtype=np.float64))
    if weight > 0 and len(llm_items):
        position = {int(item): p for p, item in enumerate(lstm_order.tolist())}
        for llm_rank, item in enumerate(llm_items, start=1):
            p = position.get(int(item))
            if p is not None:
                fused[p] += weight / (c + llm_rank)
    order = np.lexsort((np.arange(fused.shape[0]), -fused))  # ties: better LSTM rank first
    return lstm_order[order].tolist()


# -------------------------------------------------------------------------------------- pipeline
class DualRec:
    """The recommender the app and the `dualrec` evaluation row use."""

    def __init__(
        self,
        catalog: Catalog,
        lstm: Scorer,
        generator: Generator | None = None,
        reranker: Any = None,
        *,
        ranker: Any = None,
        markov: Any = None,
        mode: str = "candidates",
        llm_scoring: str = "letters",
        n_candidates: int = DEFAULT_CANDIDATES,
        weights: FusionWeights | None = None,
        llm_rank_weight: float | None = None,
        sim_weight: float | None = None,
        depth: int | None = None,
        markov_weight: float | None = None,
        n_suggestions: int = DEFAULT_SUGGESTIONS,
        llm_weight: float = DEFAULT_LLM_WEIGHT,
        rrf_c: float = RRF_C,
        alpha: float | None = None,
        constrain_titles: bool = False,
        temperature: float = 0.0,
        seed: int = 0,
        notes: Sequence[str] = (),
    ) -> None:
        """`ranker` (core.llm_rank.LlamaCandidateRanker, or anything with its `run`) is stage 2 in candidates
        mode, `generator` in titles mode; `markov` (core.markov.MarkovTransitions) the fourth fused signal.

        `alpha` (the re-ranker's weight on the LSTM pick vs the recent history) is set on `reranker`, and
        `llm_rank_weight` / `sim_weight` / `depth` build `weights`, so every key of fusion.json can be
        passed straight in."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if llm_scoring not in LLM_SCORINGS:
            raise ValueError(f"llm_scoring must be one of {', '.join(LLM_SCORINGS)}, not {llm_scoring!r}")
        if reranker is not None and alpha is not None:
            reranker.alpha = alpha
        base = weights or FusionWeights(depth=n_candidates)
        self.weights = FusionWeights(
            llm=base.llm if llm_rank_weight is None else float(llm_rank_weight),
            sim=base.sim if sim_weight is None else float(sim_weight),
            depth=base.depth if depth is None else int(depth),
            markov=base.markov if markov_weight is None else float(markov_weight),
        )
        named = (("llm_rank_weight", self.weights.llm), ("sim_weight", self.weights.sim))
        for name, value in (*named, ("markov_weight", self.weights.markov)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, not {value}")
        if not 1 <= n_candidates <= 26:
            raise ValueError(f"n_candidates must be 1 to 26, not {n_candidates}")
        self.catalog = catalog
        self.lstm = lstm
        self.generator = generator
        self.ranker = ranker
        self.reranker = reranker
        self.markov = markov
        self.mode = mode
        self.llm_scoring = llm_scoring
        self.n_candidates = n_candidates
        self.n_suggestions = n_suggestions
        self.llm_weight = llm_weight
        self.rrf_c = rrf_c
        self.constrain_titles = constrain_titles
        self.temperature = temperature
        self.seed = seed
        self.notes = list(notes)  # why a stage is missing (shown by the app)

    @classmethod
    def load(cls, directory: Path | None = None, catalog: Catalog | None = None, **kwargs: Any) -> DualRec:
        """Everything shipped in `models_dir()`; the LSTM is required, the LLM and re-ranker optional."""
        from .artifacts import models_dir
        from .lstm import LstmRecommender  # type: ignore[import-not-found]

        directory = Path(directory or models_dir())
        if catalog is None:
            catalog = Catalog.from_json(directory / "catalog.json")
        lstm = LstmRecommender.load(directory / "lstm", catalog)
        stages = load_optional_stages(directory / "llm", catalog)
        return build_pipeline(catalog, lstm, stages, directory / "llm", **kwargs)

    def recommend(
        self,
        history: Sequence[int],
        k: int = 10,
        *,
        exclude: Sequence[int] = (),
        on_event: Callable[[Event], None] | None = None,
    ) -> DualRecResult:
        """k recommendations for a user whose watch history is `history` (catalog indices, oldest first).

        `result.stages` says what ran: "llm" ("scored", "wrote", "generated", "failed" or "off"),
        "sim" ("scored", "failed" or "off") and "reordered" (True when the fused order differs from the
        LSTM's own top k)."""
        history = [int(i) for i in history]
        watched = set(history) | {int(i) for i in exclude}
        recent = recent_movies(self.catalog, history)
        popular = self.popularity_why(history)
        if popular:  # every pick stage 1 placed is credited to popularity, in every event
            sink = on_event or (lambda event: None)

            def emit(event: Event) -> None:
                if isinstance(event, (LstmReady, FusedReady)):
                    event = type(event)([r.as_popular(popular) for r in event.recommendations])
                sink(event)
        else:
            emit = on_event or (lambda event: None)

        start = time.perf_counter()
        scores = np.asarray(self.lstm.score([history]), dtype=np.float64)[0]
        order = lstm_ranking(scores, watched)
        lstm_seconds = time.perf_counter() - start
        lstm_recs = [
            Recommendation(self.catalog[i], float(scores[i]), "lstm", explain(self.catalog[i], recent, "lstm"))
            for i in order[:k].tolist()
        ]
        emit(LstmReady(lstm_recs))
        result = DualRecResult(recommendations=lstm_recs, lstm=lstm_recs, counts=dict.fromkeys(COUNT_KEYS, 0))
        result.notes = list(self.notes)
        result.seconds["lstm"] = lstm_seconds
        if not history:  # nothing to ground the LLM or the similarity in: popular picks only
            result.stages.update(llm="no history", sim="no history")
            result.ranking = order.tolist()
            result.reserve = [
                Recommendation(self.catalog[i], float(scores[i]), "lstm", explain(self.catalog[i], recent, "lstm"))
                for i in order[k : k + RESERVE].tolist()
            ]
        elif self.mode == "candidates":
            self._recommend_candidates(_Run(history, recent, scores, order, watched, k, result, emit))
        else:
            self._recommend_titles(_Run(history, recent, scores, order, watched, k, result, emit))
        result.stages["reordered"] = [r.index for r in result.recommendations] != [r.index for r in lstm_recs]
        if popular:
            result.stages["stage1"] = "popular"
            result.recommendations = [r.as_popular(popular) for r in result.recommendations]
            result.reserve = [r.as_popular(popular) for r in result.reserve]
            result.lstm = [r.as_popular(popular) for r in result.lstm]
        emit(FinalReady(result))
        return result

    def popularity_why(self, history: Sequence[int]) -> str:
        """Why popularity, not the LSTM, ranks stage 1 for this history ("" when the LSTM does)."""
        if getattr(self.lstm, "stand_in", False):
            return "popular pick (the LSTM is unavailable)"
        if not history:
            return "popular pick (log a movie to personalise)"
        return ""

    # ------------------------------------------------------------------------ candidates mode
    def describe(self, result: DualRecResult) -> str:
        """What actually produced the final list, in plain words (the app's status line). Popularity, when
        it stood in for the LSTM, is named as such: the text never says "LSTM" for it."""
        stages = result.stages
        if stages.get("llm") == "no history":
            return "Popular picks · log a movie and they become yours"
        base = "Popularity order" if stages.get("stage1") == "popular" else "LSTM order"
        if self.mode == "titles":
            return _summary_titles(base, result.counts, bool(stages.get("reordered")))
        used = []
        if stages.get("llm") in ("scored", "wrote") and self.weights.llm > 0:
            used.append("the LLM")
        if stages.get("sim") == "scored" and self.weights.sim > 0:
            used.append("similarity")
        if stages.get("markov") == "scored" and self.weights.markov > 0:
            used.append("what MovieLens users rated next")
        elif stages.get("markov") == "prior only" and self.weights.markov > 0:
            used.append("popularity")  # no candidate was ever rated right after the last movie: only the prior
        said = " and ".join(used) if len(used) < 3 else f"{', '.join(used[:-1])} and {used[-1]}"
        if used and stages.get("reordered"):
            text = f"{base}, re-ordered by {said}"
        elif used:
            text = f"{base} ({said} agreed with it)"
        elif stages.get("llm") in ("scored", "wrote") or stages.get("sim") == "scored":
            text = f"{base} (the LLM and similarity did not improve it on validation, so they are not weighed)"
        else:
            text = base
        # the LLM's written picks, in its order; one the fused list does not show is marked, so the line
        # never seems to point at a pick the user cannot find below it
        listed = {r.index for r in result.recommendations}
        picks = [s.movie for s in result.suggestions if s.movie is not None]
        if picks:
            names = [m.title if m.index in listed else f"{m.title} (not listed)" for m in picks]
            text += f" · LLM's picks: {', '.join(names)}"
        elif stages.get("llm") == "failed":
            text += " · the LLM failed"
        return text

    def candidate_order(self, history: Sequence[int], n: int) -> np.ndarray:
        """The shuffled order the candidates are shown in: seeded by the history, never by LSTM rank."""
        key = zlib.crc32(np.asarray(list(history), dtype=np.int64).tobytes()) ^ (self.seed * 0x9E3779B1)
        return np.random.default_rng(key & 0xFFFFFFFF).permutation(n)

    def candidate_prompt(self, history: Sequence[int], top1: int | None, shown: Sequence[int]) -> str:
        recent = recent_movies(self.catalog, history)
        predicted = self.catalog[top1] if top1 is not None else None
        return build_candidate_prompt(recent, predicted, [self.catalog[i] for i in shown])

    def _recommend_candidates(self, run: _Run) -> None:
        history, recent, scores, order, watched = run.history, run.recent, run.scores, run.order, run.watched
        k, result, emit = run.k, run.result, run.emit
        candidates = order[: self.n_candidates]
        result.candidates = candidates.tolist()
        n = candidates.shape[0]
        stages = result.stages
        stages["llm"] = "off" if self.ranker is None else "failed"
        stages["sim"] = "off" if self.reranker is None else "failed"
        stages["markov"] = "off" if self.markov is None else "failed"
        if n == 0:
            result.recommendations, result.ranking = [], []
            return
        top1 = int(candidates[0])
        lstm_lp = lstm_log_probs(scores, sorted(watched))[candidates]
        if self.reranker is not None:
            start = time.perf_counter()
            try:
                sim = self.reranker.score(candidates.tolist(), history, top1)
                result.sim_scores = np.asarray(sim, dtype=np.float64)
                stages["sim"] = "scored"
            except Exception as exc:  # similarity is one signal of three: the others go on
                message = f"similarity scoring failed: {type(exc).__name__}: {exc}"
                result.notes.append(message)
                emit(Notice(message))
            result.seconds["rerank"] = time.perf_counter() - start
        if self.markov is not None:
            try:
                result.markov_scores = np.asarray(self.markov.candidate_log_probs(history, candidates))
                result.markov_counts = np.asarray(self.markov.counts_after(history[-1], candidates))
                stages["markov"] = "scored" if result.markov_counts.any() else "prior only"
            except Exception as exc:  # one signal of four: the others go on
                message = f"the rated-next counts failed: {type(exc).__name__}: {exc}"
                result.notes.append(message)
                emit(Notice(message))

        def publish(llm_scores: np.ndarray | None) -> None:
            fused = fuse_candidates(lstm_lp, self.weights, llm_scores, result.sim_scores, result.markov_scores)
            result.ranking = [*fused_ranking(candidates, fused), *order[n:].tolist()]
            result.recommendations, result.reserve = self._split_reserve(
                self._fused_recommendations(
                    history, result.ranking[: k + RESERVE], candidates, fused, scores, recent, result.markov_counts
                ),
                k,
            )

        if self.ranker is not None and self.weights.llm == 0:
            publish(None)  # the LLM's scores cannot move the order: show the fused list now, not after the LLM
            emit(FusedReady(result.recommendations))
        if self.ranker is not None:
            titles = self.llm_scoring in TITLE_SCORINGS
            # letters: prompt position j shows candidate shown_order[j]; titles: no list in the prompt
            shown_order = np.arange(n) if titles else self.candidate_order(history, n)
            shown = candidates[shown_order]
            movies = [self.catalog[int(i)] for i in shown]
            lines = [scored_title(m, self.llm_scoring) for m in movies] if titles else candidate_lines(movies)
            answers = [movie_line(m) for m in movies] if titles else lines
            start = time.perf_counter()

            def on_scores(prompt_scores: np.ndarray) -> None:
                llm = np.empty(n, dtype=np.float64)
                llm[shown_order] = np.asarray(prompt_scores, dtype=np.float64)  # back to LSTM order
                result.llm_scores = llm
                stages["llm"] = "scored"
                result.seconds["llm_score"] = time.perf_counter() - start
                if self.weights.llm > 0:
                    publish(llm)
                    emit(FusedReady(result.recommendations))

            def on_line(position: int) -> None:
                movie = self.catalog[int(shown[position])]
                line = answers[position]
                suggestion = Suggestion(movie.title, movie.year, tuple(movie.genres), line)
                event = LlmSuggestion(suggestion, movie, "kept")
                result.suggestions.append(event)
                result.counts["generated"] += 1
                result.counts["kept"] += 1
                emit(event)

            try:
                if titles:
                    prompt = self.prompt_for(history, top1)
                else:
                    prompt = self.candidate_prompt(history, top1, shown.tolist())
                _, written = self.ranker.run(
                    prompt, lines, n_write=self.n_suggestions, on_scores=on_scores, on_line=on_line
                )
                if written:
                    stages["llm"] = "wrote"
                    result.answer = "".join(answers[p] + "\n" for p in written)
            except Exception as exc:  # a failing LLM must not take the LSTM list with it
                message = f"LLM failed: {type(exc).__name__}: {exc}"
                result.notes.append(message)
                emit(Notice(message))
            result.seconds["llm"] = time.perf_counter() - start
        if self.ranker is None or (result.llm_scores is None and self.weights.llm > 0):
            publish(None)
            emit(FusedReady(result.recommendations))

    def _fused_recommendations(
        self,
        history: Sequence[int],
        items: Sequence[int],
        candidates: np.ndarray,
        fused: FusedCandidates,
        scores: np.ndarray,
        recent: list[Movie],
        markov_counts: np.ndarray | None = None,
    ) -> list[Recommendation]:
        position = {int(item): p for p, item in enumerate(candidates[: fused.order.shape[0]].tolist())}
        reasons = self._reasons(history, items)
        out = []
        for item in items:
            p = position.get(int(item))
            signals = fusion_placed_by(fused, self.weights, p) if p is not None else ("lstm",)
            rated_after = int(markov_counts[p]) if markov_counts is not None and p is not None else 0
            if "markov" in signals and not rated_after:
                # lifted by the Markov term's popularity prior alone: nobody rated it right after the last movie
                signals = tuple(s for s in signals if s != "markov") or ("popular",)
            source = "both" if {"lstm", "llm"} <= set(signals) else ("llm" if "llm" in signals else "lstm")
            movie = self.catalog[int(item)]
            score = float(fused.fused[p]) if p is not None else float(scores[item])
            why = reasons.get(int(item)) or explain(movie, recent, source)
            lifted = [SIGNAL_REASONS[s] for s in signals if s in SIGNAL_REASONS]
            if "markov" in signals:  # the count, and the movie it follows
                users = f"{rated_after} MovieLens user{'s' if rated_after != 1 else ''}"
                lifted.append(f"{users} rated it right after {self.catalog[int(history[-1])].title}")
            if lifted:
                said = lifted[0] if len(lifted) == 1 else f"{', '.join(lifted[:-1])} and {lifted[-1]}"
                why = f"{said}; {why}"
            out.append(Recommendation(movie, score, source, why, signals))
        return out

    @staticmethod
    def _split_reserve(picks: list[Recommendation], k: int) -> tuple[list[Recommendation], list[Recommendation]]:
        """(the k shown, the reserve behind them)."""
        return picks[:k], picks[k:]

    def _reasons(self, history: Sequence[int], items: Sequence[int]) -> dict[int, str]:
        """True reasons from the LSTM: the history movie nearest each pick in its item space (core/reasons.py)."""
        from .reasons import closest_in_history, item_embeddings

        try:
            vectors = item_embeddings(self.lstm)
            if vectors is None or vectors.shape[0] != len(self.catalog):
                return {}
            return closest_in_history(vectors, history, [int(i) for i in items], self.catalog)
        except Exception:  # a reason is a nicety: never let it cost the list
            return {}

    # ---------------------------------------------------------------------------- titles mode
    def _recommend_titles(self, run: _Run) -> None:
        history, recent, scores, order, watched = run.history, run.recent, run.scores, run.order, run.watched
        k, result, emit = run.k, run.result, run.emit
        top1 = int(order[0]) if order.shape[0] else None
        stages = result.stages
        stages["llm"] = "off" if self.generator is None else "failed"
        stages["sim"] = "off" if self.reranker is None else "not needed"
        llm_items: list[int] = []
        if self.generator is not None:
            start = time.perf_counter()
            try:
                llm_items = self._generate(history, recent, top1, watched, result, emit)
                stages["llm"] = "generated"
            except Exception as exc:  # a failing LLM must not take the LSTM list with it
                message = f"LLM failed: {type(exc).__name__}: {exc}"
                result.notes.append(message)
                emit(Notice(message))
            result.seconds["llm"] = time.perf_counter() - start
        if llm_items and self.reranker is not None:
            start = time.perf_counter()
            try:
                llm_items = [i for i, _ in self.reranker.rerank(llm_items, history, top1)]
                stages["sim"] = "scored"
            except Exception as exc:  # keep the LLM's own order
                stages["sim"] = "failed"
                message = f"re-ranking failed, LLM order kept: {type(exc).__name__}: {exc}"
                result.notes.append(message)
                emit(Notice(message))
            result.seconds["rerank"] = time.perf_counter() - start

        ranking = fuse(order, llm_items, self.llm_weight, self.rrf_c) if llm_items else order.tolist()
        lstm_top = set(order[:k].tolist())
        llm_set = set(llm_items) if self.llm_weight > 0 else set()
        final = []
        for i in ranking[: k + RESERVE]:
            source = ("both" if i in lstm_top else "llm") if i in llm_set else "lstm"
            signals = ("lstm", "llm") if source == "both" else ((source,) if source == "llm" else ("lstm",))
            movie = self.catalog[i]
            final.append(Recommendation(movie, float(scores[i]), source, explain(movie, recent, source), signals))
        result.recommendations, result.reserve = self._split_reserve(final, k)
        result.ranking = ranking

    def prompt_for(self, history: Sequence[int], top1: int | None) -> str:
        recent = recent_movies(self.catalog, history)
        return build_prompt(recent, self.catalog[top1] if top1 is not None else None, self.n_suggestions)

    def grammar(self) -> str:
        from .title_grammar import answer_grammar_for

        return answer_grammar_for(self.catalog, self.n_suggestions, self.constrain_titles)

    def _generate(
        self,
        history: list[int],
        recent: list[Movie],
        top1: int | None,
        watched: set[int],
        result: DualRecResult,
        emit: Callable[[Event], None],
    ) -> list[int]:
        """Run the LLM, resolving each line as soon as it is complete; returns the kept catalog indices."""
        assert self.generator is not None
        kept: list[int] = []
        seen: set[int] = set()
        buffer = [""]
        counts = result.counts

        def handle(line: str) -> None:
            parsed = parse_answer(line)
            counts["unparsed"] += parsed.unparsed_lines
            for suggestion in parsed.suggestions:
                counts["generated"] += 1
                movie = self.catalog.resolve(suggestion.title, year=suggestion.year).movie
                if movie is None:
                    status = "unresolved"
                elif movie.index in seen:
                    status = "duplicate"
                elif movie.index in watched:
                    status = "watched"
                elif movie.index == top1:
                    status = "lstm-pick"
                else:
                    status = "kept"
                    kept.append(movie.index)
                if movie is not None:
                    seen.add(movie.index)
                counts[status] += 1
                event = LlmSuggestion(suggestion, movie, status)
                result.suggestions.append(event)
                emit(event)

        def on_token(text: str) -> None:
            emit(LlmToken(text))
            buffer[0] += text
            while "\n" in buffer[0]:
                line, buffer[0] = buffer[0].split("\n", 1)
                if counts["generated"] < 4 * self.n_suggestions:  # an unconstrained model may ramble
                    handle(line)

        options: dict[str, Any] = {}
        if self.constrain_titles and self.temperature == 0:
            from .title_grammar import TitleGuard

            # catalog titles only, so the guard can also keep watched ones and repeats out of the answer
            options["guard"] = TitleGuard.for_catalog(self.catalog, watched | ({top1} if top1 is not None else set()))
        answer = self.generator.generate(
            self.prompt_for(history, top1),
            max_tokens=TOKENS_PER_SUGGESTION * self.n_suggestions + 8,
            grammar=self.grammar(),
            temperature=self.temperature,
            seed=self.seed,
            on_token=on_token,
            **options,
        )
        tail = buffer[0].split(END_OF_ANSWER, 1)[0]
        if tail.strip():
            handle(tail)  # a last line without newline (truncated by max_tokens)
        result.answer = answer
        return kept


def _summary_titles(base: str, counts: dict[str, int], reordered: bool) -> str:
    """'<base> · LLM: 5 titles, 2 new; 2 unknown, 1 watched' from the titles mode's counts."""
    if not counts.get("generated"):
        return f"{base} · the LLM named no titles" if counts else base
    dropped = [
        f"{counts[key]} {label}"
        for key, label in (
            ("unresolved", "not in the catalog"),
            ("watched", "already watched"),
            ("duplicate", "repeated"),
            ("lstm-pick", "the LSTM's own top pick"),
        )
        if counts.get(key)
    ]
    text = (f"{base} with LLM picks merged in" if reordered else base) + " · "
    text += f"LLM: {counts['generated']} titles, {counts.get('kept', 0)} new"
    return text + (f"; {', '.join(dropped)}" if dropped else "")


# ------------------------------------------------------------------------------ construction
@dataclass
class OptionalStages:
    """Stages 2 and 3 as found in a models folder; a missing or broken one is None and says why."""

    generator: Any = None  # core.llm.LlamaGenerator
    ranker: Any = None  # core.llm_rank.LlamaCandidateRanker around the same model
    reranker: Any = None  # core.rerank.SentenceReranker
    markov: Any = None  # core.markov.MarkovTransitions (models/markov, beside llm/)
    llm_kind: str = ""  # "merged", "adapter" or "base" (untuned); "" when not loaded
    llm_note: str = ""  # why the LLM is not the fine-tuned one, when it is not
    llm_error: Exception | None = None
    rerank_error: Exception | None = None
    markov_error: Exception | None = None
    notes: list[str] = field(default_factory=list)


def load_optional_stages(
    llm_dir: Path,
    catalog: Catalog,
    *,
    llm: bool = True,
    n_threads: int | None = None,
    n_gpu_layers: int | None = None,
    warm: bool = False,
) -> OptionalStages:
    """Load the LLM (`llm_dir`: merged GGUF, or base + adapter.gguf, else the untuned base) and the re-ranker.

    The one place both the app (services.ModelHub) and `DualRec.load` build stages 2 and 3, so they can
    never differ. Any failure is caught and kept (a broken native library included): the LSTM list must
    survive without them. `warm` computes (or reads the cached) catalog embeddings now, not on first use.
    """
    stages = OptionalStages()
    if not llm:
        return stages
    try:
        from .llm import LlamaGenerator
        from .llm_files import locate_llm
        from .llm_rank import LlamaCandidateRanker

        files = locate_llm(Path(llm_dir))
        stages.generator = LlamaGenerator(
            files.model, lora_path=files.lora, rebuild=files.rebuild, n_threads=n_threads, n_gpu_layers=n_gpu_layers
        )
        stages.ranker = LlamaCandidateRanker(stages.generator)
        stages.llm_kind = files.kind
        if files.kind == "base":
            stages.llm_note = f"LLM: no fine-tuned model in {llm_dir}, using the untuned base model"
            stages.notes.append(stages.llm_note)
    except Exception as exc:  # ModelUnavailableError, or a broken native library
        stages.llm_error = exc
        stages.notes.append(f"LLM unavailable: {exc}")
    try:
        from .rerank import SentenceReranker

        stages.reranker = SentenceReranker(catalog, shipped=[Path(llm_dir).parent])  # shipped catalog vectors
        if warm:
            vectors = stages.reranker.embeddings
            if callable(vectors):
                vectors()
    except Exception as exc:
        stages.reranker = None
        stages.rerank_error = exc
        stages.notes.append(f"re-ranking unavailable: {exc}")
    load_markov(stages, Path(llm_dir).parent / "markov", catalog)
    return stages


MARKOV_NOTE = "the rated-next counts are unavailable"


def load_markov(stages: OptionalStages, directory: Path, catalog: Catalog) -> None:
    """The Markov transitions (`models/markov`) into `stages`; a missing or damaged file is a note, not a crash."""
    try:
        from .markov import MarkovTransitions

        stages.markov = MarkovTransitions.load(directory, len(catalog), catalog.fingerprint)
    except Exception as exc:  # ModelUnavailableError, or anything a damaged file raises
        stages.markov, stages.markov_error = None, exc
        stages.notes.append(f"{MARKOV_NOTE}: {exc}")


def build_pipeline(catalog: Catalog, lstm: Scorer, stages: OptionalStages, llm_dir: Path, **overrides: Any) -> DualRec:
    """The DUALRec pipeline with the fusion settings chosen on validation (`llm_dir/fusion.json`).

    A fusion file with bad values costs only the settings (defaults are used and a note says so)."""
    notes = list(stages.notes)
    parts = {"generator": stages.generator, "ranker": stages.ranker, "reranker": stages.reranker}
    parts["markov"] = stages.markov
    try:
        settings = read_fusion(llm_dir)
        if settings.get("llm_scoring") in TITLE_SCORINGS and stages.generator is not None:
            from .llm_rank import scorer_for

            parts["ranker"] = scorer_for(settings["llm_scoring"], stages.generator)
        if settings.get("n_suggestions", 1) < 1:
            raise ValueError(f"n_suggestions must be at least 1, not {settings['n_suggestions']}")
        if not settings.get("markov_weight"):  # the settings do not weigh the counts: their absence is no news
            notes = [n for n in notes if not n.startswith(MARKOV_NOTE)]
        return DualRec(catalog, lstm, notes=notes, **parts, **{**settings, **overrides})
    except (TypeError, ValueError) as exc:
        notes.append(f"ignored {Path(llm_dir) / FUSION_FILE}: {exc} (defaults used)")
        return DualRec(catalog, lstm, notes=notes, **parts, **overrides)


FUSION_KEYS: dict[str, type] = {
    "mode": str,
    "llm_scoring": str,
    "n_candidates": int,
    "llm_rank_weight": float,
    "sim_weight": float,
    "depth": int,
    "markov_weight": float,
    "alpha": float,
    "n_suggestions": int,
    "llm_weight": float,
    "rrf_c": float,
    "constrain_titles": bool,
}


def read_fusion(directory: Path) -> dict[str, Any]:
    """Fusion settings chosen on validation (`fusion.json` beside the LLM); {} when there is none.

    Raises ValueError for a file that is there but unusable (the caller says so: never silently). A file
    from before the candidates mode (no "mode" key) describes the titles mode."""
    path = Path(directory) / FUSION_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    settings: dict[str, Any] = {}
    for key, kind in FUSION_KEYS.items():
        if key not in data:
            continue
        value = data[key]
        if kind is bool and not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, not {value!r}")
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{key} must be a number, not {value!r}")
        if kind is str and not isinstance(value, str):
            raise ValueError(f"{key} must be text, not {value!r}")
        settings[key] = kind(value)
    settings.setdefault("mode", "titles")
    return settings


def write_fusion(directory: Path, settings: dict[str, Any]) -> Path:
    path = Path(directory) / FUSION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
