"""Harness rows for the candidate-grounded pipeline: `llm-rank`, `dualrec` and their variants.

    python -m training evaluate --data DIR --models lstm,lstm+markov,llm-rank,dualrec \
        --checkpoint lstm=models/lstm --paired-with lstm [--checkpoint llm-rank=models/llm]

- `llm-rank`: the LLM's own order of the LSTM's top-K candidates (one forward pass, core/llm_rank.py),
  then the rest of the catalog in LSTM order. Above `lstm` only if the LLM learned to order candidates
  rather than to copy the LSTM's order. The LLM is `--checkpoint llm-rank=PATH` (a folder with a merged
  GGUF or adapter.gguf), else `models_dir()/llm`.
- `dualrec`: the app's pipeline (core/pipeline.py, candidates mode): LSTM log-probabilities, the LLM's
  candidate log-probabilities and Sentence-BERT similarity fused (core/fusion.py). Its weights, the
  re-ranker's alpha and the re-ordered depth are chosen on *validation* targets (`--tune-users`, default
  every evaluated user) and written to `<work_dir>/fusion.json`; `--checkpoint dualrec=fusion.json`
  reuses chosen settings instead. The validation targets are each user's second-to-last item: different
  items from the test targets, but the same users (the JSON says so).

- `lstm+llm` / `lstm+sim`: ablations of `dualrec`, tuned the same way on the same validation targets with
  the other weight held at 0 (they do not write fusion.json): which signal carries the fusion.
- The Markov signal: since session 12 `dualrec` also fuses the first-order Markov log-probability of each
  candidate after the last movie (the `markov` row's model, fitted on training sequences;
  `--checkpoint markov=models/markov` reads the shipped one), its weight tuned with the others. It was
  measured as the row `dualrec+markov` (still registered: `dualrec` under that name, writing no
  fusion.json) and shipped by a rule fixed before the run (docs/preregistered/issue9-markov-in-fusion.md).
  `lstm+llm+sim` is `dualrec` without it (DUALRec as published, what shipped before); `lstm+markov+sim`
  holds the LLM at 0, so `dualrec` against it (paired) is what the LLM adds once the free signal is there.
  Neither writes fusion.json.
- `llm-rank-prefix` / `dualrec-prefix`: `llm-rank` / `dualrec` with each candidate scored by the
  likelihood of "Title (" instead of "Title (Year)" (`prompt.scored_title`): the year's digits are not
  decoded, so a recommendation costs ~60% less candidate decoding. Same LLM, same store, own tuning;
  `dualrec-prefix` writes its settings to `<work_dir>/title-prefix/fusion.json`. Titles scoring only.
- `llm-rank-pmi`: the same candidates ordered by the LLM's title likelihood *minus* the title's likelihood
  under the same prompt with no history (`prompt.prior_prompt`): how much this user's history raises the
  title, not how likely the model finds the title anyway (short, popular titles). Titles scoring only.

Every signal is computed once per (user, split) and cached, so tuning 300+ configurations costs no more
LLM time than one, and the LLM rows share their LLM passes. In titles scoring the LLM's scores are also
kept on disk (`<work_dir>/llm-scores.jsonl`, valid for one LLM file), so a rerun or an interrupted run
does not pay for them again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dualrec_tui.core.errors import DualrecError
from dualrec_tui.core.fusion import FusionWeights, fuse_candidates, fused_ranking, lstm_log_probs
from dualrec_tui.core.prompt import (
    CANDIDATE_LETTERS,
    DEFAULT_CANDIDATES,
    TITLE_SCORINGS,
    candidate_lines,
    prior_prompt,
    scored_title,
)

from . import metrics
from .evaluate import select_users
from .metrics import TUNE_K

LLM_RANK_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
SIM_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
ALPHAS = (0.0, 0.5, 1.0)
DEPTHS = (5, 10, 20)
MARKOV_FUSION_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5)  # lstm+markov chose 0.05 of (0, 0.05, ..., 1) on validation
PRIOR_CHUNK = 20  # titles per scorer pass when scoring title priors


@dataclass
class CandidateSignals:
    """Everything fusion needs for one user at one cut, candidates in LSTM order."""

    order: np.ndarray  # full LSTM ranking (watched removed)
    lstm: np.ndarray  # (K,) LSTM log-probabilities
    llm: np.ndarray | None  # (K,) LLM log-probabilities (None: no LLM)
    llm_prior: np.ndarray | None  # (K,) log p(title | prompt without history) (titles scoring; else None)
    sim_prediction: np.ndarray | None  # (K,) cosine to the LSTM's top pick
    sim_history: np.ndarray | None  # (K,) cosine to the mean of the recent history
    markov: np.ndarray | None = None  # (K,) log p_markov(candidate | last movie) (rows that tune it; else None)

    def sim(self, alpha: float) -> np.ndarray | None:
        if self.sim_prediction is None or self.sim_history is None:
            return None
        return alpha * self.sim_prediction + (1.0 - alpha) * self.sim_history

    def llm_signal(self, prior_weight: float) -> np.ndarray | None:
        """The LLM's candidate scores, less `prior_weight` x each title's likelihood without a history."""
        if self.llm is None or prior_weight == 0 or self.llm_prior is None:
            return self.llm
        return self.llm - prior_weight * self.llm_prior


def llm_identity(files: list[Path]) -> dict[str, Any]:
    """What a score store is valid for: each LLM file's absolute path, size and mtime. Absolute, so the
    same files named relatively (`--checkpoint llm-rank=models/llm`) or not (the default) are one LLM."""
    return {str(f.resolve()): [f.stat().st_size, f.stat().st_mtime_ns] if f.is_file() else None for f in files}


class ScoreStore:
    """LLM title scores on disk, one JSON line per (prompt, title): a rerun reuses them.

    The first line names the LLM file (path, size, mtime); a different LLM starts the file afresh. A title's
    score does not depend on the other titles decoded with it, so scores are stored one title at a time.
    """

    def __init__(self, path: Path, llm_identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = llm_identity
        self.scores: dict[tuple[str, str], float] = {}
        self.write_error: str | None = None  # why scores are no longer written (the run goes on without)
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
        if lines and _json_or_none(lines[0]) == {"llm": llm_identity}:
            for line in lines[1:]:
                row = _json_or_none(line)
                try:
                    self.scores[(row["p"], row["t"])] = float(row["s"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by an interrupted run
        else:  # none yet, another LLM's, or a damaged header: start afresh
            self._write(json.dumps({"llm": llm_identity}) + "\n", mode="w")

    @staticmethod
    def prompt_key(prompt: str) -> str:
        return hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:20]

    def get(self, prompt: str, titles: list[str]) -> np.ndarray | None:
        key = self.prompt_key(prompt)
        found = [self.scores.get((key, t)) for t in titles]
        return None if any(v is None for v in found) else np.asarray(found, dtype=np.float64)

    def put(self, prompt: str, titles: list[str], scores: np.ndarray) -> None:
        key = self.prompt_key(prompt)
        rows = []
        for title, score in zip(titles, scores.tolist(), strict=True):
            self.scores[(key, title)] = float(score)
            rows.append(json.dumps({"p": key, "t": title, "s": round(float(score), 6)}) + "\n")
        self._write("".join(rows), mode="a")

    def _write(self, text: str, mode: str) -> None:
        """Write to the store file; a full disk or a read-only folder stops the writing, not the run."""
        if self.write_error is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open(mode, encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            self.write_error = f"{self.path}: {exc.strerror or exc}"


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


class SignalCache:
    """Computes and remembers candidate signals per history (shared by `llm-rank` and `dualrec`)."""

    def __init__(self, ctx: Any, n_candidates: int = DEFAULT_CANDIDATES, llm_scoring: str | None = None) -> None:
        from dualrec_tui.core.pipeline import DualRec

        self.ctx = ctx
        self.n_candidates = n_candidates
        self.llm_scoring = llm_scoring or ctx.llm_scoring  # "titles", "title-prefix" or "letters"
        self.lstm = ctx.require("lstm")
        self.ranker: Any = None
        self.reranker: Any = None
        self.llm_path: str | None = None
        self.store: ScoreStore | None = None
        self.with_prior = False  # title priors too (the llm-rank-pmi row asks for them)
        self.markov: Any = None  # the fitted `markov` baseline, once a row that tunes its weight asks for it
        self._pipeline = DualRec(ctx.catalog, self.lstm, n_candidates=n_candidates)  # prompt + shuffle only
        self._cache: dict[tuple[int, ...], CandidateSignals] = {}
        self.llm_seconds = 0.0
        self.llm_calls = 0
        self.stored_calls = 0  # scorer passes answered by the store instead
        self._store_warned = False
        self._prior: dict[int, float] = {}  # catalog index -> log p(title | no history) (llm-rank-pmi)
        self.position_scores = np.zeros(len(CANDIDATE_LETTERS))  # mean LLM log-prob by prompt position
        self.position_counts = np.zeros(len(CANDIDATE_LETTERS))

    def attach_llm(self, path: Path | None) -> None:
        from dualrec_tui.core.llm import LlamaGenerator
        from dualrec_tui.core.llm_files import locate_llm
        from dualrec_tui.core.llm_rank import scorer_for

        files = locate_llm(path)
        self.llm_path = str(files.lora or files.model)
        if files.lora is not None:
            from .export import adapter_task

            task = adapter_task(files.lora)  # "titles", "rank" or "candidates" (the lettered list: letters)
            scoring = "letters" if task == "candidates" else "titles"
            if (scoring == "titles") != (self.llm_scoring in TITLE_SCORINGS):
                self.ctx.log(
                    f"[yellow]warning:[/] {files.lora} was trained for the {task!r} task, but this run scores "
                    f"candidates by {self.llm_scoring!r} (--llm-scoring): its llm-rank and dualrec rows measure "
                    f"a prompt the adapter never saw. Pass --llm-scoring {scoring} to score it as trained."
                )
        generator = LlamaGenerator(files.model, lora_path=files.lora, rebuild=files.rebuild)
        self.ranker = scorer_for(self.llm_scoring, generator)
        if self.llm_scoring in TITLE_SCORINGS:
            identity = llm_identity([f for f in (files.model, files.lora) if f is not None])
            self.store = ScoreStore(Path(self.ctx.work_dir) / "llm-scores.jsonl", identity)

    def share_models(self, other: SignalCache) -> None:
        """Use `other`'s LLM, score store and re-ranker (a second scoring of the same run: one model each)."""
        if other.llm_scoring not in TITLE_SCORINGS or self.llm_scoring not in TITLE_SCORINGS:
            raise DualrecError(f"{self.llm_scoring!r} and {other.llm_scoring!r} cannot share one LLM scorer")
        self.ranker, self.store, self.llm_path = other.ranker, other.store, other.llm_path
        if self.reranker is None and other.reranker is not None:
            self.reranker = other.reranker
            self._cache.clear()

    def attach_reranker(self) -> None:
        from dualrec_tui.core.rerank import SentenceReranker

        self.reranker = SentenceReranker(self.ctx.catalog)
        _ = self.reranker.embeddings  # encode (or load) the catalog once, before timing users
        self._cache.clear()  # signals computed before the re-ranker lacked similarity

    def signals(self, histories: list[list[int]], *, llm: bool = True) -> list[CandidateSignals]:
        todo = [h for h in histories if tuple(h) not in self._cache]
        if todo:
            scores = np.asarray(self.lstm.score(todo), dtype=np.float64)
            for history, row in zip(todo, scores, strict=True):
                self._cache[tuple(history)] = self._compute(history, row)
        out = [self._cache[tuple(h)] for h in histories]
        if self.markov is not None:
            self._add_markov(histories, out)
        if llm and self.ranker is not None:
            for history, signal in zip(histories, out, strict=True):
                if signal.llm is None:
                    signal.llm = self._llm_scores(history, signal.order[: self.n_candidates])
                if self.with_prior and signal.llm_prior is None:
                    signal.llm_prior = self._title_prior(signal.order[: self.n_candidates])
        return out

    def _add_markov(self, histories: list[list[int]], signals: list[CandidateSignals]) -> None:
        """log p_markov(candidate | last movie): the app's computation (core/markov.py), on the run's model."""
        for history, signal in zip(histories, signals, strict=True):
            if signal.markov is None:
                candidates = signal.order[: self.n_candidates]
                signal.markov = self.markov.transitions.candidate_log_probs(history, candidates)

    def _compute(self, history: list[int], row: np.ndarray) -> CandidateSignals:
        from dualrec_tui.core.pipeline import lstm_ranking

        watched = set(history)
        order = lstm_ranking(row, watched)
        candidates = order[: self.n_candidates]
        lstm = lstm_log_probs(row, sorted(watched))[candidates]
        sim_p = sim_h = None
        if self.reranker is not None and candidates.shape[0]:
            top1 = int(candidates[0])
            sim_p = np.asarray(self.reranker.score(candidates.tolist(), history, top1, alpha=1.0), dtype=np.float64)
            sim_h = np.asarray(self.reranker.score(candidates.tolist(), history, top1, alpha=0.0), dtype=np.float64)
        return CandidateSignals(order, lstm, None, None, sim_p, sim_h)

    def _llm_scores(self, history: list[int], candidates: np.ndarray) -> np.ndarray:
        n = candidates.shape[0]
        if self.llm_scoring in TITLE_SCORINGS:  # the title prompt; candidates are continuations, not listed
            prompt = self._pipeline.prompt_for(history, int(candidates[0]))
            texts = [scored_title(self.ctx.catalog[int(i)], self.llm_scoring) for i in candidates]
            return self._title_scores(prompt, texts)
        shown_order = self._pipeline.candidate_order(history, n)
        shown = candidates[shown_order]
        lines = candidate_lines([self.ctx.catalog[int(i)] for i in shown])
        prompt = self._pipeline.candidate_prompt(history, int(candidates[0]), shown.tolist())
        start = time.perf_counter()
        prompt_scores, _ = self.ranker.run(prompt, lines, n_write=0)
        self.llm_seconds += time.perf_counter() - start
        self.llm_calls += 1
        self.position_scores[:n] += prompt_scores
        self.position_counts[:n] += 1
        llm = np.empty(n, dtype=np.float64)
        llm[shown_order] = prompt_scores
        return llm

    def _title_scores(self, prompt: str, titles: list[str]) -> np.ndarray:
        """log p(title | prompt) for each title: from the store, else one scorer pass (then stored)."""
        if self.store is not None:
            stored = self.store.get(prompt, titles)
            if stored is not None:
                self.stored_calls += 1
                return stored
        start = time.perf_counter()
        scores, _ = self.ranker.run(prompt, titles, n_write=0)
        self.llm_seconds += time.perf_counter() - start
        self.llm_calls += 1
        scores = np.asarray(scores, dtype=np.float64)
        if self.store is not None:
            self.store.put(prompt, titles, scores)
            if self.store.write_error is not None and not self._store_warned:
                self._store_warned = True
                self.ctx.log(f"[yellow]warning:[/] LLM scores are not stored ({self.store.write_error})")
        return scores

    def _title_prior(self, candidates: np.ndarray) -> np.ndarray:
        """log p(title | the prompt with no history) per candidate: a property of the movie, cached."""
        missing = list(dict.fromkeys(int(i) for i in candidates if int(i) not in self._prior))
        for lo in range(0, len(missing), PRIOR_CHUNK):
            chunk = missing[lo : lo + PRIOR_CHUNK]
            scores = self._title_scores(prior_prompt(), [self.ctx.catalog[i].label for i in chunk])
            self._prior.update(zip(chunk, scores.tolist(), strict=True))
        return np.asarray([self._prior[int(i)] for i in candidates], dtype=np.float64)

    def stats(self) -> dict[str, Any]:
        counted = self.position_counts > 0
        return {
            "llm": self.llm_path,
            "llm_scoring": self.llm_scoring,
            "n_candidates": self.n_candidates,
            "llm_calls": self.llm_calls,
            "llm_calls_from_store": self.stored_calls,
            "llm_seconds_per_call": self.llm_seconds / self.llm_calls if self.llm_calls else 0.0,
            # a position-blind model scores every prompt position alike on average (shuffled candidates)
            "mean_llm_logprob_by_position": [
                round(float(v), 4) for v in (self.position_scores / np.maximum(self.position_counts, 1))[counted]
            ],
        }


def _shared_cache(ctx: Any) -> SignalCache:
    cache = ctx.models.get("_candidate_signals")
    if cache is None:
        cache = ctx.models["_candidate_signals"] = SignalCache(ctx)
    return cache


def _prefix_cache(ctx: Any, *, reranker: bool) -> SignalCache:
    """The title-prefix signals, sharing the run's LLM (and re-ranker) with the run's own title scoring."""
    if ctx.llm_scoring not in TITLE_SCORINGS:
        raise DualrecError("the -prefix rows need titles scoring (--llm-scoring titles or title-prefix)")
    ctx.require("llm-rank")  # the LLM (its --checkpoint, else models_dir()/llm), attached to the run's cache
    main = _shared_cache(ctx)
    if reranker and main.reranker is None:
        main.attach_reranker()
    if ctx.llm_scoring == "title-prefix":
        return main
    cache = ctx.models.get("_candidate_signals_title-prefix")
    if cache is None:
        cache = SignalCache(ctx, n_candidates=main.n_candidates, llm_scoring="title-prefix")
        ctx.models["_candidate_signals_title-prefix"] = cache
    cache.share_models(main)
    return cache


def target_rank(ranking_head: np.ndarray, order: np.ndarray, target: int) -> float:
    """1-based rank of `target` in (re-ordered head, then the rest of `order`); inf when absent."""
    hits = np.flatnonzero(ranking_head == target)
    if hits.size:
        return float(hits[0] + 1)
    rest = np.flatnonzero(order == target)
    return float(rest[0] + 1) if rest.size else np.inf


class LlmRankModel:
    """The LLM's own order of the LSTM's top-K candidates, then the rest in LSTM order."""

    name = "llm-rank"
    prior_weight = 0.0

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.cache: SignalCache | None = None

    def fit(self, split: Any, catalog: Any, seed: int) -> None:
        self._setup(None)

    def load(self, path: Path) -> None:
        self._setup(Path(path))

    def _setup(self, path: Path | None) -> None:
        self.cache = _shared_cache(self.ctx)
        if self.cache.ranker is None:
            self.cache.attach_llm(path)

    def rank(self, histories: list[list[int]], k: int) -> list[list[int]]:
        assert self.cache is not None
        lists = []
        for signal in self.cache.signals(histories):
            llm = signal.llm_signal(self.prior_weight)
            assert llm is not None
            weights = FusionWeights(llm=1.0, depth=llm.shape[0])
            fused = fuse_candidates(np.zeros_like(signal.lstm), weights, llm)  # the LLM alone
            lists.append(fused_ranking(signal.order, fused))
        return lists

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prior_weight": self.prior_weight}
        if self.cache is not None:
            out.update(self.cache.stats())
        return out


class LlmPrefixRankModel(LlmRankModel):
    """`llm-rank` scoring "Title (" instead of "Title (Year)" (the year not decoded)."""

    name = "llm-rank-prefix"

    def _setup(self, path: Path | None) -> None:
        if path is not None:
            raise DualrecError(
                "llm-rank-prefix scores with llm-rank's LLM: add llm-rank to --models and pass "
                "--checkpoint llm-rank=PATH instead"
            )
        self.cache = _prefix_cache(self.ctx, reranker=False)


class LlmPmiRankModel(LlmRankModel):
    """`llm-rank` with each title's likelihood without a history subtracted (titles scoring only)."""

    name = "llm-rank-pmi"
    prior_weight = 1.0

    def _setup(self, path: Path | None) -> None:
        if self.ctx.llm_scoring != "titles":
            raise DualrecError("llm-rank-pmi needs titles scoring (--llm-scoring titles)")
        self.ctx.require("llm-rank")  # the LLM (its --checkpoint, else models_dir()/llm)
        self.cache = _shared_cache(self.ctx)
        self.cache.with_prior = True


class CandidateDualRecModel:
    """The app's pipeline: LSTM + LLM + Sentence-BERT score fusion, tuned on validation targets."""

    name = "dualrec"
    llm_weights: tuple[float, ...] = LLM_RANK_WEIGHTS
    sim_weights: tuple[float, ...] = SIM_WEIGHTS
    # the Markov transition signal is tuned too (since session 12: docs/preregistered/issue9-markov-in-fusion.md)
    markov_weights: tuple[float, ...] = MARKOV_FUSION_WEIGHTS
    writes_fusion = True  # the app's settings come from this row
    # None: score as the run's --llm-scoring says, settings to <work_dir>/fusion.json; "title-prefix": score
    # "Title (" whatever the run's scoring, settings to <work_dir>/title-prefix/fusion.json (the -prefix row)
    own_scoring: str | None = None

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.cache: SignalCache | None = None
        self.weights = FusionWeights()
        self.alpha = 0.5
        self.tuning: dict[str, Any] = {}
        self.seconds = 0.0
        self.users = 0

    def _setup(self) -> None:
        if self.own_scoring == "title-prefix":
            self.cache = _prefix_cache(self.ctx, reranker=True)
        else:
            if max(self.llm_weights) > 0:
                self.ctx.require("llm-rank")  # the LLM (its --checkpoint, else models_dir()/llm)
            self.cache = _shared_cache(self.ctx)
            if self.cache.reranker is None:
                self.cache.attach_reranker()
        if max(self.markov_weights) > 0 and self.cache.markov is None:
            self.cache.markov = self.ctx.require("markov")  # the `markov` row's model (or --checkpoint markov=)

    def fit(self, split: Any, catalog: Any, seed: int) -> None:
        self._setup()
        self._tune(split)

    def load(self, path: Path) -> None:
        """`--checkpoint dualrec=fusion.json`: reuse chosen settings instead of tuning again."""
        from dualrec_tui.core.pipeline import read_fusion

        self._setup()
        assert self.cache is not None
        path = Path(path)
        settings = read_fusion(path if path.is_dir() else path.parent)
        scoring = settings.get("llm_scoring", "letters")  # files from before titles scoring: the letters
        if scoring != self.cache.llm_scoring:
            raise DualrecError(
                f"{path}: these weights were chosen for llm_scoring {scoring!r}, but {self.name} scores "
                f"{self.cache.llm_scoring!r} here; pass --llm-scoring {scoring}"
                + (" (or use the dualrec-prefix row)" if scoring == "title-prefix" else "")
            )
        self.weights = FusionWeights(
            llm=settings.get("llm_rank_weight", 0.0),
            sim=settings.get("sim_weight", 0.0),
            depth=settings.get("depth", DEFAULT_CANDIDATES),
            markov=settings.get("markov_weight", 0.0),
        )
        self.alpha = settings.get("alpha", self.alpha)
        self.tuning = {"from": str(path)}

    def _tune(self, split: Any) -> None:
        """Grid search on validation targets; on a tie the method's design wins (re-ranking on)."""
        from dualrec_tui.core.pipeline import write_fusion

        assert self.cache is not None
        users = select_users(len(split.user_ids), self.ctx.tune_users or "all", self.ctx.seed + 1)
        histories = [split.valid_input(int(u)) for u in users]
        targets = [int(split.valid_target[int(u)]) for u in users]
        self.ctx.log(f"[bold]{self.name}[/]: scoring {len(users)} validation users for tuning")
        signals = []
        for lo in range(0, len(histories), 64):
            signals.extend(self.cache.signals(histories[lo : lo + 64], llm=max(self.llm_weights) > 0))
            self.ctx.log(f"  {min(lo + 64, len(histories))}/{len(histories)} users")
        grid: dict[str, float] = {}
        best: tuple[tuple, dict[str, Any]] | None = None
        lstm_only = 0.0
        settings = itertools.product(self.markov_weights, self.llm_weights, self.sim_weights, ALPHAS, DEPTHS)
        for w_markov, w_llm, w_sim, alpha, depth in settings:
            if w_sim == 0 and alpha != ALPHAS[0]:
                continue  # alpha only matters when similarity is on
            weights = FusionWeights(llm=w_llm, sim=w_sim, depth=depth, markov=w_markov)
            ranks = np.empty(len(targets), dtype=np.float64)
            for row, (signal, target) in enumerate(zip(signals, targets, strict=True)):
                fused = fuse_candidates(signal.lstm, weights, signal.llm, signal.sim(alpha), signal.markov)
                head = signal.order[: fused.order.shape[0]][fused.order]
                ranks[row] = target_rank(head, signal.order, target)
            value = sum(metrics.ndcg(ranks, TUNE_K).tolist()) / max(1, len(targets))  # summed in user order
            name = f"w_llm={w_llm},w_sim={w_sim},alpha={alpha},depth={depth}"
            grid[name if len(self.markov_weights) == 1 else f"w_markov={w_markov},{name}"] = round(value, 6)
            if w_llm == 0 and w_sim == 0 and w_markov == 0:
                lstm_only = value
            # higher NDCG first; on a tie: both re-rankers on, then the LLM on, then similarity on, then the
            # deepest re-ordering (the method's design), then the smaller weights
            key = (round(value, 9), w_llm > 0 and w_sim > 0, w_llm > 0, w_sim > 0, depth, -w_llm - w_sim - w_markov)
            if best is None or key > best[0]:
                best = (
                    key,
                    {"llm": w_llm, "sim": w_sim, "alpha": alpha, "depth": depth, "markov": w_markov, "value": value},
                )
        assert best is not None
        chosen = best[1]
        self.weights = FusionWeights(
            llm=chosen["llm"], sim=chosen["sim"], depth=chosen["depth"], markov=chosen["markov"]
        )
        self.alpha = chosen["alpha"]
        self.tuning = {
            "tune_users": len(users),
            "tune_targets": "validation (second-to-last item) of the same users whose test items are reported",
            "tune_metric": f"NDCG@{TUNE_K} on validation targets",
            "lstm_only": lstm_only,
            "best": chosen["value"],
            "grid": grid,
        }
        if self.writes_fusion:
            write_fusion(Path(self.ctx.work_dir) / (self.own_scoring or ""), self.fusion_settings())

    def fusion_settings(self) -> dict[str, Any]:
        assert self.cache is not None
        return {
            "mode": "candidates",
            "llm_scoring": self.cache.llm_scoring,
            "n_candidates": self.cache.n_candidates,
            "llm_rank_weight": self.weights.llm,
            "sim_weight": self.weights.sim,
            "alpha": self.alpha,
            "depth": self.weights.depth,
            "n_suggestions": 3,
            "markov_weight": self.weights.markov,
        }

    def rank(self, histories: list[list[int]], k: int) -> list[list[int]]:
        assert self.cache is not None
        start = time.perf_counter()
        lists = []
        for signal in self.cache.signals(histories, llm=self.weights.llm > 0):
            fused = fuse_candidates(signal.lstm, self.weights, signal.llm, signal.sim(self.alpha), signal.markov)
            lists.append(fused_ranking(signal.order, fused))
        self.seconds += time.perf_counter() - start
        self.users += len(histories)
        return lists

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fusion": self.fusion_settings() if self.cache else {}, "tuning": self.tuning}
        if self.cache is not None:
            out.update(self.cache.stats())
        return out


class LstmLlmModel(CandidateDualRecModel):
    """Ablation of `dualrec`: LSTM + LLM only (similarity weight 0), tuned on the same validation targets."""

    name = "lstm+llm"
    sim_weights = (0.0,)
    markov_weights = (0.0,)
    writes_fusion = False


class LstmSimModel(CandidateDualRecModel):
    """Ablation of `dualrec`: LSTM + Sentence-BERT similarity only (LLM weight 0), same tuning."""

    name = "lstm+sim"
    llm_weights = (0.0,)
    markov_weights = (0.0,)
    writes_fusion = False


class PrefixDualRecModel(CandidateDualRecModel):
    """`dualrec` with the LLM scoring "Title (" (year not decoded), tuned the same way on its own scores."""

    name = "dualrec-prefix"
    own_scoring = "title-prefix"


class LstmLlmSimModel(CandidateDualRecModel):
    """DUALRec as published: `dualrec` with the Markov weight held at 0 (what shipped before session 12)."""

    name = "lstm+llm+sim"
    markov_weights = (0.0,)
    writes_fusion = False


class DualRecMarkovModel(CandidateDualRecModel):
    """The row that measured the four-signal fusion before it shipped (session 12): `dualrec` under its
    first name, so the pre-registered command still runs; it does not write fusion.json."""

    name = "dualrec+markov"
    writes_fusion = False


class LstmMarkovSimModel(CandidateDualRecModel):
    """Ablation of `dualrec`: the LLM held at 0, so the pair shows what the LLM adds over the other signals."""

    name = "lstm+markov+sim"
    llm_weights = (0.0,)
    writes_fusion = False
