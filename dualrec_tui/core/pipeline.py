"""The whole DUALRec recommendation for one user: LSTM -> prompt -> LLM -> resolve -> re-rank -> fuse.

    history (catalog indices, oldest first)
      -> LSTM scores every movie; its ranking r_lstm (1-based, watched movies removed)  [LstmReady]
      -> prompt: the 5 most recent movies + the LSTM's top-1 (prompt.build_prompt)
      -> LLM, grammar-constrained, streamed                                             [LlmToken]
      -> parse_answer; every title through catalog.resolve. Dropped and counted:
         unresolved titles, duplicates, movies already watched, the LSTM's own top-1     [LlmSuggestion]
      -> Sentence-BERT re-ranks the kept suggestions against the LSTM's top-1 and the
         user's recent history (never anything held out); their order gives r_llm
      -> fusion into k recommendations                                                   [FinalReady]

Fusion rule (weighted reciprocal-rank fusion)
---------------------------------------------
Every unwatched catalog movie has an LSTM rank, so the fused score is defined for all of them:

    fused(i) = 1 / (c + r_lstm(i))  +  w * 1 / (c + r_llm(i))      (second term only for kept LLM items)

with c = `RRF_C` (10). Ties go to the better LSTM rank. w = 0 is exactly the LSTM's ranking; a larger
w lets the LLM's (re-ranked) picks climb: with c = 10, an LLM first pick that the LSTM ranks poorly
lands near the LSTM's 12th item for w = 0.5 and ties with the LSTM's first for w = 1; a pick both
models like gets both terms and rises above either list's own first item.

w (and the re-ranker's alpha) are chosen on *validation* targets by `training/llm_eval.py` from a grid
that includes w = 0, so on validation dualrec is never worse than the LSTM alone. The evaluation
writes them to `<work_dir>/fusion.json`; copied to `models/llm/fusion.json` the app uses them.

Each recommendation is tagged with its source: "lstm" (LSTM only), "llm" (an LLM pick outside the
LSTM's top k), "both" (an LLM pick the LSTM also ranks in its top k), plus a short "why".

The LLM and the re-ranker are optional: when one is missing the pipeline still returns the LSTM's
recommendations (re-ranking falls back to the LLM's own order) and says why in `notes`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .catalog import Catalog, Movie
from .prompt import DEFAULT_SUGGESTIONS, END_OF_ANSWER, Suggestion, build_prompt, parse_answer

RRF_C = 10.0
DEFAULT_LLM_WEIGHT = 1.0
TOKENS_PER_SUGGESTION = 32
FUSION_FILE = "fusion.json"


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
        guard: Any = None,  # core.llm.TitleGuard, passed only with catalog titles and greedy decoding
    ) -> str: ...


class Scorer(Protocol):
    """What the pipeline needs from stage 1: (B, n_items) scores, higher = better."""

    def score(self, histories: list[list[int]]) -> Any: ...


# ----------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Recommendation:
    movie: Movie
    score: float
    source: str  # "lstm", "llm" or "both"
    why: str

    @property
    def index(self) -> int:
        return self.movie.index


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


@dataclass(frozen=True)
class FinalReady:
    """Last event: the fused recommendations."""

    result: DualRecResult


Event = LstmReady | LlmToken | LlmSuggestion | Notice | FinalReady
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
        n_suggestions: int = DEFAULT_SUGGESTIONS,
        llm_weight: float = DEFAULT_LLM_WEIGHT,
        rrf_c: float = RRF_C,
        alpha: float | None = None,
        constrain_titles: bool = False,
        temperature: float = 0.0,
        seed: int = 0,
        notes: Sequence[str] = (),
    ) -> None:
        """`alpha` (the re-ranker's weight on the LSTM pick vs the recent history) is set on `reranker`,
        so every key of fusion.json can be passed straight in."""
        if reranker is not None and alpha is not None:
            reranker.alpha = alpha
        self.catalog = catalog
        self.lstm = lstm
        self.generator = generator
        self.reranker = reranker
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
        """k recommendations for a user whose watch history is `history` (catalog indices, oldest first)."""
        emit = on_event or (lambda event: None)
        seconds: dict[str, float] = {}
        history = [int(i) for i in history]
        watched = set(history) | {int(i) for i in exclude}
        recent = [self.catalog[i] for i in history[-5:]]

        start = time.perf_counter()
        scores = np.asarray(self.lstm.score([history]), dtype=np.float64)[0]
        order = lstm_ranking(scores, watched)
        seconds["lstm"] = time.perf_counter() - start
        lstm_recs = [
            Recommendation(self.catalog[i], float(scores[i]), "lstm", explain(self.catalog[i], recent, "lstm"))
            for i in order[:k].tolist()
        ]
        emit(LstmReady(lstm_recs))
        top1 = int(order[0]) if order.shape[0] else None

        result = DualRecResult(recommendations=lstm_recs, lstm=lstm_recs, counts=dict.fromkeys(COUNT_KEYS, 0))
        result.notes = list(self.notes)
        llm_items: list[int] = []
        if self.generator is not None:
            start = time.perf_counter()
            try:
                llm_items = self._generate(history, recent, top1, watched, result, emit)
            except Exception as exc:  # a failing LLM must not take the LSTM list with it
                message = f"LLM failed: {type(exc).__name__}: {exc}"
                result.notes.append(message)
                emit(Notice(message))
            seconds["llm"] = time.perf_counter() - start
        if llm_items and self.reranker is not None:
            start = time.perf_counter()
            try:
                llm_items = [i for i, _ in self.reranker.rerank(llm_items, history, top1)]
            except Exception as exc:  # keep the LLM's own order
                message = f"re-ranking failed, LLM order kept: {type(exc).__name__}: {exc}"
                result.notes.append(message)
                emit(Notice(message))
            seconds["rerank"] = time.perf_counter() - start

        ranking = fuse(order, llm_items, self.llm_weight, self.rrf_c) if llm_items else order.tolist()
        lstm_top = set(order[:k].tolist())
        llm_set = set(llm_items)
        final = []
        for i in ranking[:k]:
            source = ("both" if i in lstm_top else "llm") if i in llm_set else "lstm"
            movie = self.catalog[i]
            final.append(Recommendation(movie, float(scores[i]), source, explain(movie, recent, source)))
        result.recommendations = final
        result.ranking = ranking
        result.seconds = seconds
        emit(FinalReady(result))
        return result

    def prompt_for(self, history: Sequence[int], top1: int | None) -> str:
        recent = [self.catalog[i] for i in list(history)[-5:]]
        return build_prompt(recent, self.catalog[top1] if top1 is not None else None, self.n_suggestions)

    def grammar(self) -> str:
        from .llm import answer_grammar_for

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
            from .llm import TitleGuard

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


# ------------------------------------------------------------------------------ construction
@dataclass
class OptionalStages:
    """Stages 2 and 3 as found in a models folder; a missing or broken one is None and says why."""

    generator: Any = None  # core.llm.LlamaGenerator
    reranker: Any = None  # core.rerank.SentenceReranker
    llm_kind: str = ""  # "merged", "adapter" or "base" (untuned); "" when not loaded
    llm_note: str = ""  # why the LLM is not the fine-tuned one, when it is not
    llm_error: Exception | None = None
    rerank_error: Exception | None = None
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
        from .llm import LlamaGenerator, locate_llm

        files = locate_llm(Path(llm_dir))
        stages.generator = LlamaGenerator(
            files.model, lora_path=files.lora, rebuild=files.rebuild, n_threads=n_threads, n_gpu_layers=n_gpu_layers
        )
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
    return stages


def build_pipeline(catalog: Catalog, lstm: Scorer, stages: OptionalStages, llm_dir: Path, **overrides: Any) -> DualRec:
    """The DUALRec pipeline with the fusion settings chosen on validation (`llm_dir/fusion.json`).

    A fusion file with bad values costs only the settings (defaults are used and a note says so)."""
    notes = list(stages.notes)
    try:
        settings = read_fusion(llm_dir)
        if settings.get("n_suggestions", 1) < 1:
            raise ValueError(f"n_suggestions must be at least 1, not {settings['n_suggestions']}")
        return DualRec(catalog, lstm, stages.generator, stages.reranker, notes=notes, **{**settings, **overrides})
    except (TypeError, ValueError) as exc:
        notes.append(f"ignored {Path(llm_dir) / FUSION_FILE}: {exc}")
        return DualRec(catalog, lstm, stages.generator, stages.reranker, notes=notes, **overrides)


def read_fusion(directory: Path) -> dict[str, Any]:
    """Fusion settings chosen on validation (`fusion.json` beside the LLM), or the defaults."""
    path = Path(directory) / FUSION_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    allowed = {"llm_weight": float, "rrf_c": float, "alpha": float, "n_suggestions": int, "constrain_titles": bool}
    return {key: kind(data[key]) for key, kind in allowed.items() if key in data}


def write_fusion(directory: Path, settings: dict[str, Any]) -> Path:
    path = Path(directory) / FUSION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
