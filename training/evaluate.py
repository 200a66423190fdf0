"""The evaluation harness: every model on one leave-one-out split, side by side, in one run.

    python -m training evaluate --data DIR --models mostpop,markov,sasrec --json OUT.json
        [--users all|N] [--seed S] [--checkpoint NAME=PATH ...] [--kcore K]

Protocol: docs/evaluation.md (full ranking over the whole catalog, the user's input items
removed; HR/NDCG@{1,5,10,20}, MRR, genre similarity@10, 95% bootstrap intervals; paper-HR@k as a
labelled extra). The metric code lives in training/metrics.py.

Plugging a model in (a "Recommender")
-------------------------------------
1. Add `"name": "package.module:Class"` to training/registry.py (imported only when asked for).
2. The class is constructed as `Class(ctx)` with an `EvalContext` (below): `ctx.dataset`, `ctx.catalog`,
   `ctx.split` (test targets withheld: `split.test_target` is empty), `ctx.seed`, `ctx.work_dir`
   (a folder it may create and write to, e.g. `work_dir / "sasrec"`), `ctx.checkpoints` (name -> path
   from `--checkpoint`), `ctx.console`, `ctx.threads`, and `ctx.require(name)`: another model of the
   same run, fitted or loaded once and cached (the LLM stages use it to get the LSTM).
3. Then the harness calls either `fit(split, catalog, seed)` (training sequences and validation
   targets only; `catalog.popularity` already holds training-only counts) or, when
   `--checkpoint NAME=PATH` was given, `load(path)`.
4. Evaluation calls `score(histories) -> np.ndarray (B, n_items)` (higher = better; the harness removes
   input items itself) if the class has `score`; otherwise `rank(histories, k) -> list[list[int]]`
   (ranked catalog indices, for generative stages; a target past the end of the list is "not found";
   input items and repeats in the list are dropped before ranking and reported as `in_history_rate`
   and `duplicate_rate`). `histories` are lists of catalog indices, oldest first: everything but the
   test item.
5. Optional `stats() -> dict` is merged into the model's JSON entry (e.g. `resolved_rate`,
   `hallucination_rate`).
A user whose scoring raises counts 0 on every metric; the count is printed and stored (`errors`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dualrec_tui.core.errors import DualrecError
from dualrec_tui.core.prompt import TITLE_SCORINGS

from . import metrics

if TYPE_CHECKING:
    from rich.console import Console

    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.movielens import Dataset
    from dualrec_tui.core.sequences import Split

DEFAULT_SEED = 0
DEFAULT_MODELS = "mostpop,markov,sasrec"
BATCH_SIZE = 128
RANK_K = max(metrics.KS)


class Recommender(Protocol):
    """What the harness needs from a model (see the module docstring)."""

    name: str

    def fit(self, split: Split, catalog: Catalog, seed: int) -> None: ...

    def load(self, path: Path) -> None: ...

    def score(self, histories: list[list[int]]) -> np.ndarray: ...


@dataclass
class EvalContext:
    """Everything a model may see: the data, the split without test targets, and other models."""

    dataset: Dataset
    catalog: Catalog
    split: Split  # test targets withheld
    seed: int = DEFAULT_SEED
    work_dir: Path = Path("runs/eval")
    checkpoints: dict[str, str] = field(default_factory=dict)
    console: Console | None = None
    threads: int | None = None  # torch CPU threads for models that train (None = their own default)
    tune_users: str | int | None = None  # validation users tuning rows use (None: the row's own default)
    llm_scoring: str = "titles"  # how llm-rank / dualrec score the LSTM's candidates (core.pipeline.LLM_SCORINGS)
    models: dict[str, Any] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    _nested: list[float] = field(default_factory=list, repr=False)  # time of models required inside a fit

    def require(self, name: str) -> Any:
        """Model `name` of this run, fitted (or loaded from its --checkpoint) once, then cached."""
        if name in self.models:
            return self.models[name]
        from .registry import model_class

        model = model_class(name)(self)
        if not getattr(model, "name", None):
            model.name = name
        self._nested.append(0.0)
        start = time.perf_counter()
        try:
            if name in self.checkpoints:
                if not hasattr(model, "load"):
                    raise DualrecError(f"model {name!r} cannot load a checkpoint (it has no load method)")
                self.log(f"[bold]{name}[/]: loading {self.checkpoints[name]}")
                model.load(Path(self.checkpoints[name]))
            else:
                self.log(f"[bold]{name}[/]: fitting on training sequences")
                model.fit(self.split, self.catalog, self.seed)
        finally:
            elapsed = time.perf_counter() - start
            nested = self._nested.pop()
            if self._nested:
                self._nested[-1] += elapsed
        self.train_seconds[name] = elapsed - nested  # without the models it required meanwhile
        self.log(f"[bold]{name}[/]: ready in {self.train_seconds[name]:.1f} s")
        self.models[name] = model
        return model

    def log(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message)


def withhold_test(split: Split) -> Split:
    """The split models are handed: same training data and validation targets, no test targets."""
    return dataclasses.replace(split, test_target=[])


def select_users(n_users: int, users: str | int, seed: int) -> np.ndarray:
    """All evaluated users, or a fixed seeded sample of N of them (sorted)."""
    if users == "all" or int(users) >= n_users:
        return np.arange(n_users)
    count = int(users)
    if count <= 0:
        raise DualrecError(f"--users must be 'all' or a positive number, got {users}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_users, size=count, replace=False))


@dataclass
class ModelResult:
    """Per-user arrays of one model, plus bookkeeping."""

    ranks: np.ndarray
    genre: np.ndarray
    paper: dict[int, np.ndarray]
    errors: int = 0
    first_error: str = ""
    method: str = "score"
    listed: int = 0
    in_history: int = 0
    duplicates: int = 0
    eval_seconds: float = 0.0


def _score_batch(model: Any, histories: list[list[int]], targets: list[int], n_items: int):
    """Ranks, genre top-10 lists and raw top-20 lists from a scoring model."""
    scores = np.asarray(model.score(histories))
    if scores.shape != (len(histories), n_items):
        raise ValueError(f"score() returned shape {scores.shape}, expected {(len(histories), n_items)}")
    exclude = metrics.exclusion_mask(histories, n_items)
    ranks = metrics.ranks_from_scores(scores, targets, exclude)
    filtered = metrics.top_k_from_scores(scores, metrics.GENRE_K, exclude)
    raw = metrics.top_k_from_scores(scores, RANK_K)
    return ranks, [row.tolist() for row in filtered], [row.tolist() for row in raw]


def evaluate_model(
    model: Any,
    split: Split,
    users: np.ndarray,
    genres: Sequence[frozenset[str]],
    progress: Any = None,
    batch_size: int = BATCH_SIZE,
) -> ModelResult:
    """Score one model on the given users of the (full) split; errors count 0 for that user."""
    n_items = split.n_items
    n = len(users)
    use_score = callable(getattr(model, "score", None))
    result = ModelResult(
        ranks=np.full(n, np.inf),
        genre=np.zeros(n),
        paper={k: np.zeros(n) for k in metrics.KS},
        method="score" if use_score else "rank",
    )
    task = progress.add_task(f"evaluating {getattr(model, 'name', '?')}", total=n) if progress is not None else None
    start = time.perf_counter()
    for lo in range(0, n, batch_size):
        rows = list(range(lo, min(lo + batch_size, n)))
        histories = [split.test_input(int(users[r])) for r in rows]
        targets = [split.test_target[int(users[r])] for r in rows]
        last = [[*h, t][-metrics.PAPER_LAST :] for h, t in zip(histories, targets, strict=True)]
        outcomes: list[tuple[float, list[int], list[int]] | None] = []
        try:
            outcomes = _outcomes(model, use_score, histories, targets, n_items, result)
        except Exception:  # isolate the user(s) that fail
            outcomes = []
            for h, t in zip(histories, targets, strict=True):
                try:
                    outcomes.extend(_outcomes(model, use_score, [h], [t], n_items, result))
                except Exception as exc:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                    outcomes.append(None)
        for r, outcome, target, la in zip(rows, outcomes, targets, last, strict=True):
            if outcome is None:
                continue
            rank, top, raw = outcome
            result.ranks[r] = rank
            result.genre[r] = metrics.genre_similarity(top, target, genres, metrics.GENRE_K)
            for k in metrics.KS:
                result.paper[k][r] = metrics.paper_hit(raw, la, k)
        if task is not None:
            progress.advance(task, len(rows))
    result.eval_seconds = time.perf_counter() - start
    return result


def _outcomes(model, use_score, histories, targets, n_items, result) -> list[tuple[float, list[int], list[int]]]:
    """(rank of the target, cleaned top-10 for genre similarity, raw top-20 for paper-HR) per user."""
    if use_score:
        ranks, tops, raws = _score_batch(model, histories, targets, n_items)
        return [(float(r), t, w) for r, t, w in zip(ranks, tops, raws, strict=True)]
    lists = model.rank(histories, RANK_K)
    if len(lists) != len(histories):
        raise ValueError(f"rank() returned {len(lists)} lists for {len(histories)} histories")
    out = []
    for history, target, generated in zip(histories, targets, lists, strict=True):
        generated = [int(i) for i in generated]
        cleaned = metrics.clean_list(generated, history)
        result.listed += len(generated)
        result.in_history += sum(1 for i in generated if i in set(history))
        result.duplicates += len(generated) - len(set(generated))
        out.append((metrics.rank_in_list(cleaned, target), cleaned[: metrics.GENRE_K], generated))
    return out


def result_entry(result: ModelResult, indices: np.ndarray, train_seconds: float, stats: dict | None) -> dict:
    """The JSON entry of one model: every metric by name, its interval, timings, extra stats."""
    per_user = metrics.per_user_metrics(result.ranks)
    per_user[f"genre_sim@{metrics.GENRE_K}"] = result.genre
    for k in metrics.KS:
        per_user[f"paper-HR@{k}"] = result.paper[k]
    means, intervals = metrics.summarise(per_user, indices)
    n = len(result.ranks)
    entry: dict[str, Any] = dict(means)
    entry["intervals"] = intervals
    entry["train_seconds"] = round(train_seconds, 3)
    entry["eval_seconds"] = round(result.eval_seconds, 3)
    entry["seconds_per_user"] = result.eval_seconds / n if n else 0.0
    entry["errors"] = result.errors
    if result.first_error:
        entry["first_error"] = result.first_error
    entry["method"] = result.method
    if result.method == "rank":
        entry["in_history_rate"] = result.in_history / result.listed if result.listed else 0.0
        entry["duplicate_rate"] = result.duplicates / result.listed if result.listed else 0.0
    if stats:
        entry.update(stats)
    return entry


PAIRED_METRICS = ("NDCG@10", "HR@10")
PAIRED_PROTOCOL = (
    "per-user difference (model - reference) on the same users; mean and 95% percentile interval over the "
    "same 1,000 bootstrap resamples of users for both models (a paired bootstrap); 'detectable' = the "
    "smallest true difference these users would show with 80% probability, (1.96 + 0.84) * sd / sqrt(n)"
)


def paired_entry(ranks: np.ndarray, reference: np.ndarray, indices: np.ndarray) -> dict[str, Any]:
    """Paired differences of NDCG@10 and HR@10 against `reference`, with paired bootstrap intervals.

    Both models are scored on the same users, so the per-user difference removes the between-user
    variance that makes per-model intervals overlap; an interval that excludes 0 supports a difference."""
    mine, theirs = metrics.per_user_metrics(ranks), metrics.per_user_metrics(reference)
    out: dict[str, Any] = {}
    for name in PAIRED_METRICS:
        diff = mine[name] - theirs[name]
        low, high = metrics.bootstrap_interval(diff, indices)
        base = float(np.mean(theirs[name])) if len(diff) else 0.0
        out[name] = {
            "diff": float(np.mean(diff)) if len(diff) else 0.0,
            "interval": [low, high],
            "ratio": float(np.mean(mine[name])) / base if base > 0 else None,
            "users_better": int((diff > 0).sum()),
            "users_worse": int((diff < 0).sum()),
            "detectable": metrics.detectable_difference(diff),
        }
    return out


PROTOCOL = {
    "split": "leave-one-out: test = last item, validation = second to last, input = all but the test item",
    "ranking": "full ranking over the whole catalog, the user's input items removed; ties by catalog index",
    "ks": list(metrics.KS),
    "metrics": "HR@k, NDCG@k = 1/log2(rank+1), MRR = 1/rank (0 if not found), genre_sim@10 = mean Jaccard",
    "bootstrap": {"resamples": metrics.BOOTSTRAP_RESAMPLES, "seed": metrics.BOOTSTRAP_SEED, "level": 0.95},
    "paper-HR@k": "labelled extra: hit if any of the last 5 items (test target + 4 before) is in the raw top k "
    "(input unchanged, input items not removed)",
    "errors": "a user whose scoring raises counts 0",
    "popularity": "training sequences only",
}


def run_evaluation(
    data: str | Path,
    model_names: Sequence[str],
    users: str | int = "all",
    seed: int = DEFAULT_SEED,
    checkpoints: dict[str, str] | None = None,
    kcore: int | None = None,
    work_dir: Path | None = None,
    console: Console | None = None,
    json_path: Path | None = None,
    threads: int | None = None,
    paired_with: Sequence[str] = (),
    tune_users: str | int | None = None,
    llm_scoring: str = "titles",
    save_ranks: bool = False,
) -> dict[str, Any]:
    """Load data, split, fit/load each model, evaluate them all on the same users; returns the report.

    `save_ranks`: also write each model's per-user rank of the test item (`models.<name>.ranks`, null when
    not found) and the evaluated user ids (`evaluated_users`), so two runs on the same users can be
    compared pair by pair (`python -m training report --paired-across`).

    `paired_with`: reference models; every other model's entry gets `paired.<ref>`, the per-user paired
    difference (model - ref) of NDCG@10 and HR@10 with a paired bootstrap 95% interval."""
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    start_all = time.perf_counter()
    dataset = load_dataset(data)
    sequences = build_sequences(dataset, kcore=kcore)
    split = leave_one_out(sequences)
    if not split.user_ids:
        raise DualrecError(f"{data}: no user has 3 or more interactions; nothing to evaluate")
    catalog = dataset.catalog
    catalog.popularity = split.popularity().tolist()  # the only popularity allowed in evaluation
    unknown = [name for name in model_names if not name]
    if unknown:
        raise DualrecError("empty model name in --models")
    ctx = EvalContext(
        dataset=dataset,
        catalog=catalog,
        split=withhold_test(split),
        seed=seed,
        work_dir=Path(work_dir or Path("runs") / f"eval-{dataset.name}"),
        checkpoints=dict(checkpoints or {}),
        console=console,
        threads=threads,
        tune_users=tune_users,
        llm_scoring=llm_scoring,
    )
    missing_refs = [ref for ref in paired_with if ref not in model_names]
    if missing_refs:
        raise DualrecError(f"--paired-with {', '.join(missing_refs)}: not in --models")
    chosen = select_users(len(split.user_ids), users, seed)
    ctx.log(
        f"[bold]{dataset.name}[/] ({dataset.format}): {dataset.n_ratings} ratings, {len(catalog)} movies, "
        f"{len(split.user_ids)} evaluable users; evaluating {len(chosen)} (seed {seed})"
        + (f", {kcore}-core" if kcore else "")
    )
    for name in model_names:  # fit everything first (checks every name before a long evaluation)
        ctx.require(name)
    genres = [frozenset(movie.genres) for movie in catalog.movies]
    indices = metrics.bootstrap_indices(len(chosen))
    report: dict[str, Any] = {
        "dataset": {
            "name": dataset.name,
            "format": dataset.format,
            "source": dataset.source,
            "fingerprint": dataset.fingerprint,
            "n_ratings": dataset.n_ratings,
            "n_items": len(catalog),
            "n_users_total": len(sequences),
            "n_users_evaluable": len(split.user_ids),
            "kcore": kcore,
        },
        "protocol": PROTOCOL,
        "n_users": len(chosen),
        "users": "all" if len(chosen) == len(split.user_ids) else len(chosen),
        "seed": seed,
        "models": {},
    }
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    ) as progress:
        results: dict[str, ModelResult] = {}
        for name in model_names:
            model = ctx.models[name]
            result = results[name] = evaluate_model(model, split, chosen, genres, progress)
            stats = model.stats() if callable(getattr(model, "stats", None)) else None
            report["models"][name] = result_entry(result, indices, ctx.train_seconds.get(name, 0.0), stats)
            if name in ctx.checkpoints:
                report["models"][name]["checkpoint"] = str(ctx.checkpoints[name])
            if save_ranks:
                report["models"][name]["ranks"] = [None if np.isinf(r) else int(r) for r in result.ranks]
    if save_ranks:
        report["evaluated_users"] = [int(split.user_ids[i]) for i in chosen]
    for ref in paired_with:
        for name in model_names:
            if name != ref:
                paired = paired_entry(results[name].ranks, results[ref].ranks, indices)
                report["models"][name].setdefault("paired", {})[ref] = paired
    if paired_with:
        report["protocol"] = {**PROTOCOL, "paired": PAIRED_PROTOCOL}
    report["wall_seconds"] = round(time.perf_counter() - start_all, 3)
    if json_path is not None:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def paired_across(first: dict[str, Any], model: str, second: dict[str, Any], reference: str) -> dict[str, Any]:
    """`paired_entry` for `model` in report `first` against `reference` in report `second`.

    For two runs that cannot share one process (two LLMs): both must have ranked the same users of the
    same data set in the same order, with `--save-ranks`; else the pairs would mean nothing."""
    for report, name in ((first, model), (second, reference)):
        if name not in report.get("models", {}):
            raise DualrecError(f"no model {name!r} in the report (it has {', '.join(report.get('models', {}))})")
        if "ranks" not in report["models"][name] or "evaluated_users" not in report:
            raise DualrecError(f"{name}: the report has no per-user ranks; run evaluate with --save-ranks")
    if first["dataset"] != second["dataset"] or first["evaluated_users"] != second["evaluated_users"]:
        raise DualrecError("the two reports did not evaluate the same users of the same data set")

    def ranks(report: dict[str, Any], name: str) -> np.ndarray:
        return np.array([np.inf if r is None else float(r) for r in report["models"][name]["ranks"]])

    mine, theirs = ranks(first, model), ranks(second, reference)
    return paired_entry(mine, theirs, metrics.bootstrap_indices(len(mine)))


def render_table(report: dict[str, Any]) -> Any:
    """A rich table of the report: one row per metric, one column per model (fits a narrow terminal)."""
    from rich.table import Table

    table = Table(
        title=f"{report['dataset']['name']}: leave-one-out, full ranking, "
        f"{report['n_users']} users, seed {report['seed']}",
        title_justify="left",
        caption="(lo-hi) = 95% bootstrap interval. * paper-HR@10: the seed paper's view (hit = any of the last 5 "
        "items in the raw top 10); not comparable with HR@10.",
        caption_justify="left",
    )
    table.add_column("metric", style="bold")
    names = list(report["models"])
    for name in names:
        table.add_column(name, justify="right")
    rows = ["HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR", "genre_sim@10", "paper-HR@10"]
    for row in rows:
        cells = []
        for name in names:
            entry = report["models"][name]
            lo, hi = entry["intervals"][row]
            cells.append(f"{entry[row]:.4f} [dim]({lo:.3f}-{hi:.3f})[/]")
        table.add_row(row + ("*" if row.startswith("paper") else ""), *cells)
    table.add_row("train s", *[f"{report['models'][n]['train_seconds']:.1f}" for n in names])
    table.add_row("eval s", *[f"{report['models'][n]['eval_seconds']:.1f}" for n in names])
    table.add_row("errors", *[f"[red]{e}[/]" if (e := report["models"][n].get("errors", 0)) else "0" for n in names])
    return table


def paired_rows(
    report: dict[str, Any],
) -> list[tuple[str, str, str, float | None, float, float, float, str, float | None]]:
    """(model, reference, metric, ratio, diff, low, high, verdict, detectable) per paired difference.

    The verdict reads the interval: above 0 "better", below 0 "worse", else "no difference shown".
    `detectable` (see `metrics.detectable_difference`) comes from the report, or from its saved per-user
    ranks for reports written before it was recorded; None when neither is there."""
    rows = []
    models = report.get("models", {})
    for name, entry in models.items():
        for ref, by_metric in entry.get("paired", {}).items():
            for metric, values in by_metric.items():
                low, high = values["interval"]
                verdict = "better" if low > 0 else ("worse" if high < 0 else "no difference shown")
                detectable = values.get("detectable")
                if detectable is None and "ranks" in entry and "ranks" in models.get(ref, {}):
                    detectable = _detectable_from_ranks(entry["ranks"], models[ref]["ranks"], metric)
                rows.append((name, ref, metric, values.get("ratio"), values["diff"], low, high, verdict, detectable))
    return rows


def detectable_text(detectable: float | None) -> str:
    """How the tables print it: '' unknown, '-' when both models ranked every user alike (no spread)."""
    if detectable is None:
        return ""
    return "-" if detectable == 0 else f"{detectable:.4f}"


def _detectable_from_ranks(mine: list, theirs: list, metric: str) -> float | None:
    """`metrics.detectable_difference` of one metric from two saved rank lists (None = not found)."""
    if len(mine) != len(theirs):
        return None

    def per_user(ranks: list) -> np.ndarray:
        values = np.array([np.inf if r is None else float(r) for r in ranks])
        return metrics.per_user_metrics(values)[metric]

    return metrics.detectable_difference(per_user(mine) - per_user(theirs))


def render_paired(report: dict[str, Any]) -> Any:
    """A rich table of the paired differences: the interval says whether a difference is supported."""
    from rich.table import Table

    table = Table(
        title="paired differences (model - reference), same users, paired bootstrap 95% interval",
        title_justify="left",
    )
    for column in ("model", "vs", "metric", "ratio", "diff", "95% interval", "supported?", "detectable"):
        table.add_column(column, justify="left" if column in ("model", "vs", "metric", "supported?") else "right")
    for name, ref, metric, ratio, diff, low, high, verdict, detectable in paired_rows(report):
        table.add_row(
            name,
            ref,
            metric,
            "" if ratio is None else f"{ratio:.3f}x",
            f"{diff:+.4f}",
            f"[{low:+.4f}, {high:+.4f}]",
            verdict,
            detectable_text(detectable),
        )
    return table


def _parse_checkpoints(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise DualrecError(f"--checkpoint expects NAME=PATH, got {value!r}")
        out[name.strip()] = path.strip()
    return out


def _parse_users(value: str) -> str | int:
    if value == "all":
        return "all"
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"expected 'all' or a positive whole number, got {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training evaluate",
        description="Train (or load) the listed models and evaluate them side by side on one leave-one-out split "
        "with full ranking over the catalog, following docs/evaluation.md. Prints a table; --json saves it.",
    )
    parser.add_argument("--data", required=True, type=Path, help="MovieLens release folder or .zip")
    parser.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help=f"comma-separated model names (default {DEFAULT_MODELS}); see training/registry.py",
    )
    parser.add_argument("--json", type=Path, help="write the full report (metrics, intervals, timings) here")
    parser.add_argument(
        "--users",
        type=_parse_users,
        default="all",
        help="'all' (default) or N: a fixed seeded sample of N users, for expensive models",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed for training and sampling ({DEFAULT_SEED})"
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        metavar="NAME=PATH",
        help="load model NAME from PATH instead of training it (repeatable)",
    )
    parser.add_argument("--kcore", type=int, default=None, help="apply a k-core filter first (reported)")
    parser.add_argument(
        "--paired-with",
        metavar="MODEL[,MODEL]",
        help="add each model's per-user paired difference against MODEL (NDCG@10, HR@10, paired bootstrap 95%% "
        "interval) under models.<name>.paired.<MODEL> in the JSON",
    )
    parser.add_argument(
        "--tune-users",
        type=_parse_users,
        default=None,
        help="validation users for the rows that tune on validation targets: 'all' or N (default: each row's "
        "own, dualrec: all, dualrec-titles: 64)",
    )
    parser.add_argument(
        "--llm-scoring",
        choices=(*TITLE_SCORINGS, "letters"),
        default="titles",
        help="how llm-rank and dualrec score the LSTM's candidates: 'titles' (default: the log-likelihood "
        "of each candidate's 'Title (Year)' after the title prompt), 'title-prefix' (of 'Title (' only: the "
        "year is not decoded; the rows llm-rank-prefix and dualrec-prefix score this way in any run) or "
        "'letters' (the lettered candidate list, one verbalizer pass)",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder for models (runs/eval-<data>)")
    parser.add_argument(
        "--save-ranks",
        action="store_true",
        help="write each model's per-user test ranks to the JSON, for `training report --paired-across` "
        "between two runs on the same users (e.g. two LLM adapters)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads for training (default: half the cores, at most 4)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m training evaluate ...`: run the harness, print the tables, optionally write the JSON."""
    from rich.console import Console

    args = build_parser().parse_args(argv)
    console = Console()
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    if not names:
        raise DualrecError("--models is empty; give e.g. --models mostpop,markov,sasrec")
    from .registry import model_class

    for name in names:  # fail before loading data
        model_class(name)
    checkpoints = _parse_checkpoints(args.checkpoint or [])
    paired = [name.strip() for name in (args.paired_with or "").split(",") if name.strip()]
    stray = sorted(set(checkpoints) - set(names))
    if stray:
        raise DualrecError(f"--checkpoint for {', '.join(stray)} which is not in --models")
    report = run_evaluation(
        args.data,
        names,
        users=args.users,
        seed=args.seed,
        checkpoints=checkpoints,
        kcore=args.kcore,
        work_dir=args.work_dir,
        console=console,
        json_path=args.json,
        threads=args.threads,
        paired_with=paired,
        tune_users=args.tune_users,
        llm_scoring=args.llm_scoring,
        save_ranks=args.save_ranks,
    )
    print_report(report, console)
    console.print(f"total wall time {report['wall_seconds']:.1f} s" + (f"; JSON: {args.json}" if args.json else ""))
    return 0


def print_report(report: dict[str, Any], console: Console) -> None:
    """The metric table, the paired differences (if any), and each model's errors and rates."""
    console.print(render_table(report))
    if any(entry.get("paired") for entry in report["models"].values()):
        console.print(render_paired(report))
    for name, entry in report["models"].items():
        if entry.get("errors"):
            console.print(f"[red]{name}: {entry['errors']} user(s) raised and count 0[/] ({entry['first_error']})")
        extra = {k: v for k, v in entry.items() if k.endswith("_rate")}
        if extra:
            console.print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in extra.items()))
