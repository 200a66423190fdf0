"""Harness rows for the title-writing stages: `llm-base`, `llm`, `dualrec-titles` (and catalog-title variants).

These measure DUALRec as first built (the LLM writes titles from the whole catalog, core/pipeline.py's
titles mode); the candidate-grounded rows `llm-rank` and `dualrec` are in training/candidate_eval.py.

    python -m training evaluate --data DIR --models lstm,llm-base,llm,dualrec-titles --users 200 \
        [--checkpoint llm=models/llm/model.gguf] [--checkpoint lstm=models/lstm]

- `llm-base`: the untuned Gemma 3 270M base GGUF; `llm`: the fine-tuned GGUF (`--checkpoint llm=PATH`,
  default `models_dir()/llm/model.gguf`). Both get the DUALREC prompt (5 most recent movies + the
  LSTM's top-1, from `ctx.require("lstm")`), decode greedily under `prompt.answer_grammar`, and rank
  the suggestions that resolve to catalog movies, in the order generated. A list of n suggestions can
  only hit within n, so HR@k for k > n measures the same thing as HR@n.
- `dualrec-titles`: the titles-mode pipeline (core/pipeline.py) with the fine-tuned LLM (the base one when none was
  built; `llm_stage` in the stats says which), Sentence-BERT re-ranking and fusion with the LSTM.
  Its list is the whole fused ranking, so full-ranking metrics are defined. The fusion weight w and
  the re-ranker's alpha are chosen on *validation* targets of a seeded sample of users (`--tune-users`,
  default 64; the grid includes w = 0, the LSTM alone), and written to `<work_dir>/fusion.json`.
- `llm-catalog` / `llm-base-catalog`: the same rows with titles constrained to catalog labels by a
  grammar, to measure whether constraining helps or hurts (register them in training/registry.py).

stats(): resolved_rate (share of generated titles that resolve to a catalog movie), hallucination_rate
(1 - resolved_rate), duplicate_rate and in_history_rate (shares of generated titles naming a movie
already named / already watched), lstm_pick_rate (naming the LSTM's own top-1) and new_rate (what is
left for fusion), all over generated titles; they replace the harness's list-level rates of the same
name. Also generation seconds per call, completion tokens per call and pipeline seconds per user.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from dualrec_tui.core.errors import ModelUnavailableError
from dualrec_tui.core.prompt import DEFAULT_SUGGESTIONS

from . import metrics
from .evaluate import select_users
from .metrics import TUNE_K

TUNE_USERS = 64  # validation users the `dualrec-titles` row tunes on unless --tune-users says otherwise
LLM_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


class MemoGenerator:
    """Remembers answers by (prompt, grammar, settings): greedy decoding is deterministic, so the `llm` and
    `dualrec` rows (and the harness's per-user retry after a failing batch) never generate twice."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self.answers: dict[tuple, str] = {}
        self.seconds = 0.0
        self.calls = 0
        self.completion_tokens = 0

    def generate(self, prompt: str, **options: Any) -> str:
        """The arguments of core.pipeline.Generator.generate; a repeated greedy call is answered from memory."""
        guard, on_token = options.get("guard"), options.get("on_token")
        excluded = tuple(sorted(guard.excluded)) if guard is not None else ()
        settings = tuple(options.get(name) for name in ("grammar", "max_tokens", "temperature", "seed"))
        key = (prompt, *settings, excluded)
        answer = self.answers.get(key)
        if answer is None:
            start = time.perf_counter()
            call = {name: value for name, value in options.items() if name != "guard" or value is not None}
            answer = self.generator.generate(prompt, **{**call, "on_token": None})
            self.seconds += time.perf_counter() - start
            self.calls += 1
            last = getattr(self.generator, "last", None)
            self.completion_tokens += int(getattr(last, "completion_tokens", 0))
            if options.get("temperature") == 0:
                self.answers[key] = answer
        if on_token is not None and answer:
            on_token(answer)
        return answer


def _shared_generator(ctx: Any, path: Path, rebuild: str, lora: Path | None = None) -> MemoGenerator:
    """One LlamaGenerator per (GGUF, adapter) per run, shared by every row that uses it."""
    from dualrec_tui.core.llm import LlamaGenerator

    cache = ctx.models.setdefault("_llm_generators", {})
    key = (str(Path(path).resolve()), str(Path(lora).resolve()) if lora else "")
    if key not in cache:
        cache[key] = MemoGenerator(LlamaGenerator(path, lora_path=lora, rebuild=rebuild))
    return cache[key]


class _GenerationCounts:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.users = 0
        self.seconds = 0.0

    def add(self, counts: dict[str, int], seconds: float) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.users += 1
        self.seconds += seconds

    def stats(self) -> dict[str, float]:
        generated = self.counts.get("generated", 0)
        resolved = generated - self.counts.get("unresolved", 0)
        rate = (lambda n: n / generated) if generated else (lambda n: 0.0)
        return {
            "generated_titles": generated,
            "unparsed_lines": self.counts.get("unparsed", 0),
            "resolved_rate": rate(resolved),
            "hallucination_rate": 1.0 - rate(resolved) if generated else 0.0,
            "duplicate_rate": rate(self.counts.get("duplicate", 0)),
            "in_history_rate": rate(self.counts.get("watched", 0)),
            "lstm_pick_rate": rate(self.counts.get("lstm-pick", 0)),
            "new_rate": rate(self.counts.get("kept", 0)),  # resolved, unwatched, unique, not the LSTM's top-1
            "pipeline_seconds_per_user": self.seconds / self.users if self.users else 0.0,
        }


class LlmBaseModel:
    """The untuned base GGUF under the DUALREC prompt: what fine-tuning has to beat."""

    name = "llm-base"
    constrain_titles = False
    n_suggestions = DEFAULT_SUGGESTIONS

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.generator: MemoGenerator | None = None
        self.gguf: Path | None = None
        self.lora: Path | None = None
        self.lstm: Any = None
        self.tally = _GenerationCounts()

    # -- loading
    def _default_files(self) -> Any:
        from dualrec_tui.core.llm_files import REBUILD_BASE, LlmFiles, base_gguf_path

        return LlmFiles(base_gguf_path(), None, "base", REBUILD_BASE)

    def fit(self, split: Any, catalog: Any, seed: int) -> None:
        self._setup(self._default_files())

    def load(self, path: Path) -> None:
        """`--checkpoint llm=PATH`: a folder (merged model, or adapter.gguf on the base), or a .gguf file."""
        from dualrec_tui.core.llm_files import locate_llm

        self._setup(locate_llm(Path(path)))

    def _setup(self, files: Any) -> None:
        self.lstm = self.ctx.require("lstm")
        self.gguf = Path(files.model)
        self.lora = files.lora
        self.generator = _shared_generator(self.ctx, self.gguf, files.rebuild, files.lora)

    def pipeline(self, reranker: Any = None, llm_weight: float = 0.0) -> Any:
        from dualrec_tui.core.pipeline import DualRec

        return DualRec(
            self.ctx.catalog,
            self.lstm,
            self.generator,
            reranker,
            mode="titles",
            n_suggestions=self.n_suggestions,
            llm_weight=llm_weight,
            constrain_titles=self.constrain_titles,
        )

    # -- evaluation
    def rank(self, histories: list[list[int]], k: int) -> list[list[int]]:
        """Resolved suggestions in the order generated (duplicates and watched ones left in: the harness
        drops them before ranking)."""
        pipeline = self.pipeline()
        lists = []
        for history in histories:
            start = time.perf_counter()
            result = pipeline.recommend(history, k=1)
            self.tally.add(result.counts, time.perf_counter() - start)
            lists.append([s.movie.index for s in result.suggestions if s.movie is not None])
        return lists

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.tally.stats())
        out["gguf"] = str(self.gguf)
        out["lora"] = str(self.lora) if self.lora else None
        out["n_suggestions"] = self.n_suggestions
        out["constrain_titles"] = self.constrain_titles
        if self.generator is not None and self.generator.calls:
            out["generation_seconds_per_call"] = self.generator.seconds / self.generator.calls
            out["completion_tokens_per_call"] = self.generator.completion_tokens / self.generator.calls
        return out


class LlmModel(LlmBaseModel):
    """The fine-tuned LLM (`--checkpoint llm=PATH`, else models_dir()/llm: merged GGUF or base + adapter.gguf)."""

    name = "llm"

    def _default_files(self) -> Any:
        from dualrec_tui.core.llm_files import locate_llm

        files = locate_llm()
        if files.kind == "base":
            raise ModelUnavailableError(
                "fine-tuned LLM",
                f"no fine-tuned model in {files.model.parent}; pass --checkpoint llm=PATH",
                files.rebuild,
            )
        return files


class LlmBaseCatalogModel(LlmBaseModel):
    name = "llm-base-catalog"
    constrain_titles = True


class LlmCatalogModel(LlmModel):
    """The fine-tuned LLM with catalog titles only (and the title guard: nothing watched, nothing twice).

    Without a checkpoint of its own it loads the `llm` row's (`--checkpoint llm=PATH`): same model."""

    name = "llm-catalog"
    constrain_titles = True

    def fit(self, split: Any, catalog: Any, seed: int) -> None:
        if "llm" in self.ctx.checkpoints:
            self.load(Path(self.ctx.checkpoints["llm"]))
        else:
            super().fit(split, catalog, seed)


class DualRecModel:
    """The full pipeline; fusion weight and re-ranking alpha tuned on validation targets."""

    name = "dualrec-titles"

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.stage: LlmBaseModel | None = None
        self.stages: dict[str, LlmBaseModel] = {}
        self.stage_name = ""
        self.reranker: Any = None
        self.llm_weight = 0.0
        self.alpha = 0.5
        self.tuning: dict[str, Any] = {}
        self.tally = _GenerationCounts()

    def fit(self, split: Any, catalog: Any, seed: int) -> None:
        self._setup()
        self._tune(split, seed)

    def load(self, path: Path) -> None:
        """`--checkpoint dualrec-titles=fusion.json`: reuse tuned settings instead of tuning again."""
        from dualrec_tui.core.pipeline import read_fusion

        self._setup()
        path = Path(path)
        settings = read_fusion(path if path.is_dir() else path.parent)
        self.llm_weight = float(settings.get("llm_weight", self.llm_weight))
        self.alpha = float(settings.get("alpha", self.alpha))
        self.reranker.alpha = self.alpha
        self.stage_name = list(self.stages)[1 if settings.get("constrain_titles") else 0]
        self.stage = self.stages[self.stage_name]

    def _setup(self) -> None:
        from dualrec_tui.core.rerank import SentenceReranker

        try:
            self.ctx.require("llm")
            names = ("llm", "llm-catalog")
        except ModelUnavailableError as exc:
            self.ctx.log(f"[yellow]dualrec: {exc}; using the untuned base LLM[/]")
            names = ("llm-base", "llm-base-catalog")
        self.stages = {name: self.ctx.require(name) for name in names}  # free titles, catalog titles
        self.stage_name = names[0]
        self.stage = self.stages[self.stage_name]
        self.reranker = SentenceReranker(self.ctx.catalog)
        _ = self.reranker.embeddings  # encode (or load) the catalog once, before timing users

    def _tune(self, split: Any, seed: int) -> None:
        """Generate once per sampled validation user and title mode, then grid-search (titles, w, alpha)
        without generating again."""
        from dualrec_tui.core.pipeline import fuse, write_fusion

        assert self.stage is not None
        users = select_users(len(split.user_ids), self.ctx.tune_users or TUNE_USERS, seed + 1)
        grid: dict[str, float] = {}
        best = (-1.0, 0.0, self.alpha, self.stage_name)
        lstm_only = 0.0
        usable: dict[str, float] = {}  # per title mode: share of generated titles that are new catalog movies
        for name, stage in self.stages.items():
            pipeline = stage.pipeline(reranker=None, llm_weight=0.0)
            cases = []
            generated = new = 0
            for u in users:
                history = split.valid_input(int(u))
                result = pipeline.recommend(history, k=1)
                kept = [s.movie.index for s in result.suggestions if s.status == "kept" and s.movie is not None]
                generated += result.counts.get("generated", 0)
                new += len(kept)
                order = np.asarray(result.ranking, dtype=np.int64)
                top1 = int(order[0]) if order.shape[0] else None
                cases.append((history, int(split.valid_target[int(u)]), order, kept, top1))
            usable[name] = new / generated if generated else 0.0
            for alpha in ALPHAS:
                self.reranker.alpha = alpha
                reranked = [[i for i, _ in self.reranker.rerank(c[3], c[0], c[4])] if c[3] else [] for c in cases]
                for weight in LLM_WEIGHTS:
                    ranks = np.array(
                        [
                            metrics.rank_in_list((fuse(c[2], items, weight) if items else c[2])[:TUNE_K], c[1])
                            for c, items in zip(cases, reranked, strict=True)
                        ],
                        dtype=np.float64,
                    )
                    value = float(np.mean(metrics.ndcg(ranks, TUNE_K))) if len(ranks) else 0.0
                    grid[f"{name}:w={weight},alpha={alpha}"] = value
                    if weight == 0.0:
                        lstm_only = value
                    if value > best[0] + 1e-12:  # strict: ties keep the smaller weight (w = 0 first)
                        best = (value, weight, alpha, name)
                    elif (
                        value > best[0] - 1e-12
                        and (weight, alpha) == best[1:3]
                        and usable[name] > usable.get(best[3], 0.0) + 1e-12
                    ):
                        # the same ranking quality: keep the title mode whose suggestions are more often
                        # usable (the app shows them even when fusion leaves them out of the list)
                        best = (value, weight, alpha, name)
        _, self.llm_weight, self.alpha, self.stage_name = best
        self.stage = self.stages[self.stage_name]
        self.reranker.alpha = self.alpha
        self.tuning = {
            "tune_users": len(users),
            "tune_metric": f"NDCG@{TUNE_K} on validation targets",
            "lstm_only": lstm_only,
            "best": best[0],
            "usable_rate": usable,
            "grid": grid,
        }
        write_fusion(
            self.ctx.work_dir,
            {
                "llm_weight": self.llm_weight,
                "alpha": self.alpha,
                "n_suggestions": self.stage.n_suggestions,
                "constrain_titles": bool(self.stage.constrain_titles),
                "mode": "titles",
            },
        )

    def rank(self, histories: list[list[int]], k: int) -> list[list[int]]:
        assert self.stage is not None
        pipeline = self.stage.pipeline(reranker=self.reranker, llm_weight=self.llm_weight)
        lists = []
        for history in histories:
            start = time.perf_counter()
            result = pipeline.recommend(history, k=k)
            self.tally.add(result.counts, time.perf_counter() - start)
            lists.append(result.ranking)
        return lists

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.tally.stats())
        out.update({"llm_stage": self.stage_name, "llm_weight": self.llm_weight, "alpha": self.alpha})
        out["constrain_titles"] = bool(self.stage is not None and self.stage.constrain_titles)
        if self.stage is not None:
            out["gguf"] = str(self.stage.gguf)
        out["tuning"] = self.tuning
        return out
