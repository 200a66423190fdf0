"""Train the DUALRec LSTM (dualrec_tui/core/lstm.py) and plug it into the evaluation harness.

    python -m training lstm --data DIR --out DIR [--epochs N] [--window W] [--seed S] [--dim D] ...
        [--threads T] [--time-limit MINUTES] [--float16] [--loss full|sampled --negatives N]

In Python: `train_lstm(split, catalog, TrainConfig(...))` fits a model; `lstm_release(data, out, ...)`
is the whole command (load, train, write the folder).
    python -m training lstm-search --data DIR [--data DIR2] --set '{"lr": 0.005}' ... [--device cuda]

Training data: `split.training_sequences()` only. Each sequence is cut into chunks of `window + 1`
movies taken from its end with a step of `stride` (default window // 2); a chunk predicts every next
movie, but the loss counts each target once, in the chunk where it has the most context (the first
chunk of a sequence counts all its targets). Chunks are cut per batch from the split's flat item array
(training/sequence_training.py), so memory does not grow with their number. Loss: full-softmax
cross-entropy over the whole catalog (default), or `--loss sampled --negatives N` (N movies drawn per
batch; cheaper at 87k movies, compared on validation in docs/results.md).
Optimiser: AdamW. Early stopping on validation NDCG@10 (target `split.valid_target[u]` given
`split.valid_input(u)`, the input items removed, full ranking: docs/evaluation.md); the best epoch's
weights are kept. Deterministic for a given seed (single process, seeded torch and numpy).

Scale: the loop runs through `accelerate` like the LoRA loop. `python -m training lstm` is one process
(CPU, or one GPU with bf16 autocast); `accelerate launch -m training lstm ...` is data parallel on
several GPUs (each process takes `batch_size` rows of every global batch). Above `logits_budget`
the full softmax is computed in checkpointed chunks, so an 87k-movie catalog fits in memory.

Outputs in --out: model.safetensors + config.json (loaded by `LstmRecommender.load`), metrics.jsonl
(one line per epoch), training_curves.png, manifest.json. The hyper-parameter search behind the
defaults is in docs/lstm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.errors import DualrecError, ModelUnavailableError
from dualrec_tui.core.lstm import (
    REBUILD_COMMAND,
    LstmConfig,
    LstmRecommender,
    build_model,
    build_title_vocabulary,
    load_model,
    save_model,
)
from dualrec_tui.core.sequences import Ragged, Split

from . import metrics
from .cli import run_subcommand
from .scale import DEFAULT_LOGITS_BUDGET, LOSSES, full_softmax_loss, make_accelerator, sampled_softmax_loss
from .sequence_training import BestEpoch, Windows, cut_windows, run_epoch, set_torch_threads


@dataclass
class TrainConfig:
    """Hyper-parameters (architecture + schedule). Defaults: see docs/lstm.md for the search."""

    window: int = 30
    dim: int = 128
    hidden: int = 256
    dropout: float = 0.3
    input_dropout: float = 0.3
    tie: bool = True
    use_titles: bool = True
    use_genres: bool = True
    lr: float = 5e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 40
    patience: int = 5
    stride: int = 0  # 0 = window // 2
    min_word_count: int = 2
    eval_every: int = 1
    # most logits (counted positions x movies) computed at once; above it the full softmax runs in
    # checkpointed chunks (the same loss, memory bounded: training/scale.py)
    logits_budget: int = DEFAULT_LOGITS_BUDGET
    loss: str = "full"  # "full" softmax over the catalog, or "sampled" against `negatives` random movies
    negatives: int = 1000


EpochCallback = Callable[[dict[str, Any]], None]
BatchCallback = Callable[[int, int], None]


# ------------------------------------------------------------------------------ data
def lstm_windows(sequences: Ragged, window: int, stride: int) -> Windows:
    """Training chunks of `window + 1` movies, `stride` apart (default window // 2), right-padded.

    A target is counted in exactly one chunk: the one where it has the longest context
    (training/sequence_training.py, `cut_windows`).
    """
    if stride > window:
        raise DualrecError(
            f"stride {stride} is longer than the window {window}: some targets would never be trained on"
        )
    return cut_windows(sequences, window, stride or max(1, window // 2))


def validation_ndcg_hr(
    recommender: LstmRecommender, split: Split, k: int = 10, batch_users: int = 512
) -> tuple[float, float]:
    """Mean NDCG@k and HR@k of the validation targets (full ranking, input items removed).

    Users are scored `batch_users` at a time: all 50k users of a quarter of ml-32m at once would be a
    17 GB score matrix. Ranks are per user, so batching changes no number.
    """
    if not split.valid_target:
        return 0.0, 0.0
    ranks = []
    for lo in range(0, len(split.valid_target), batch_users):
        chunk = list(split.train[lo : lo + batch_users])  # the validation inputs
        scores = recommender.score(chunk)
        exclude = metrics.exclusion_mask(chunk, scores.shape[1])
        ranks.append(metrics.ranks_from_scores(scores, split.valid_target[lo : lo + batch_users], exclude))
    all_ranks = np.concatenate(ranks)
    return float(metrics.ndcg(all_ranks, k).mean()), float(metrics.hit_rate(all_ranks, k).mean())


# --------------------------------------------------------------------------- training
def _train_step_module(model: Any, logits_budget: int, negatives: int = 0):
    """The loss of one batch as a module's forward, so `accelerate` (DDP) sees and synchronises it.

    `negatives` 0: the full softmax (chunked above `logits_budget`); N > 0: sampled softmax, N movies.
    """
    import torch

    class TrainStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            items = self.model.item_vectors()  # (N+1, D)
            states = self.model.hidden_states(inputs, items)[mask]  # (M, H) at the counted positions
            n_items, goal = items.shape[0] - 1, targets[mask] - 1
            if not negatives:
                return full_softmax_loss(self.model.logits, states, goal, n_items, logits_budget, items)
            if self.model.config.tie:  # logit = projected state . item vector + item bias
                query = self.model.output_projection(states)
                bias = self.model.output_bias
                return sampled_softmax_loss(query, lambda i: (items[i + 1], bias[i]), goal, n_items, negatives)
            layer = self.model.output_layer
            return sampled_softmax_loss(states, lambda i: (layer.weight[i], layer.bias[i]), goal, n_items, negatives)

    return TrainStep()


def lstm_config(catalog: Catalog, config: TrainConfig, training: dict[str, Any] | None = None) -> LstmConfig:
    """The model's architecture for `catalog` from the training config (vocabularies from the catalog)."""
    return LstmConfig(
        n_items=len(catalog),
        catalog_fingerprint=catalog.fingerprint,
        title_vocabulary=build_title_vocabulary(catalog, config.min_word_count),
        genre_vocabulary=list(catalog.genre_vocabulary),
        window=config.window,
        dim=config.dim,
        hidden=config.hidden,
        dropout=config.dropout,
        input_dropout=config.input_dropout,
        tie=config.tie,
        use_titles=config.use_titles,
        use_genres=config.use_genres,
        training=training or {},
    )


def train_lstm(
    split: Split,
    catalog: Catalog,
    config: TrainConfig,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
    device: str | None = "cpu",
    time_limit: float | None = None,
):
    """Fit an LSTM on the split's training sequences; returns (model at the best epoch, epoch log).

    `device`: "cpu", or None for what accelerate finds (the GPUs of `accelerate launch`, bf16 autocast).
    With several processes each takes its slice of every global batch (`batch_size` per process) and
    gradients are averaged; one CPU process computes exactly what the plain loop did.
    `time_limit` (seconds): no new epoch starts after it has passed (the best epoch so far is kept),
    for slow machines; the config records `stopped_by_time_limit`.
    """
    import torch

    if config.loss not in LOSSES:
        raise DualrecError(f"unknown loss {config.loss!r}: choose one of {', '.join(LOSSES)}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model_config = lstm_config(catalog, config, {**asdict(config), "seed": seed})
    accelerator = make_accelerator(device)
    device = str(accelerator.device)
    model = build_model(model_config, catalog).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    negatives = config.negatives if config.loss == "sampled" else 0
    step, optimiser = accelerator.prepare(_train_step_module(model, config.logits_budget, negatives), optimiser)
    windows = lstm_windows(split.training_sequences(), config.window, config.stride)

    def make_batch(rows: np.ndarray) -> tuple[tuple[Any, ...], int]:
        batch = torch.from_numpy(windows.ids(rows)).to(device)  # (B, W + 1)
        mask = torch.from_numpy(windows.loss_mask(rows)).to(device)  # (B, W)
        width = int(mask.any(0).nonzero().max()) + 1  # drop all-padding columns at the right
        return (batch[:, :width], batch[:, 1 : width + 1], mask[:, :width]), int(mask.sum())

    log: list[dict[str, Any]] = []
    best = BestEpoch()
    started, timed_out = time.perf_counter(), False
    for epoch in range(1, config.max_epochs + 1):
        if time_limit is not None and epoch > 1 and time.perf_counter() - started > time_limit:
            timed_out = True
            break
        start = time.perf_counter()
        model.train()
        loss = run_epoch(step, optimiser, accelerator, len(windows), config.batch_size, rng, make_batch, on_batch)
        record: dict[str, Any] = {"epoch": epoch, "train_loss": loss}
        if epoch % config.eval_every == 0 or epoch == config.max_epochs:
            model.eval()  # every process validates the same synchronised weights: same decisions everywhere
            ndcg, hr = validation_ndcg_hr(LstmRecommender(model, catalog), split)
            record.update(valid_ndcg10=ndcg, valid_hr10=hr)
            best.update(ndcg, epoch, model)
        record["seconds"] = time.perf_counter() - start
        log.append(record)
        if on_epoch and accelerator.is_main_process:
            on_epoch(record)
        if best.waited >= config.patience:
            break
    best.restore(model)
    model = model.cpu()
    model.config.training.update(
        best_epoch=best.epoch, best_valid_ndcg10=best.score, epochs_run=len(log), stopped_by_time_limit=timed_out
    )
    model.config.training.update(processes=accelerator.num_processes, mixed_precision=accelerator.mixed_precision)
    model.eval()
    return model, log


# ------------------------------------------------------------------------ the harness
class LstmModel:
    """The LSTM as a harness Recommender (training/evaluate.py): fit or load, then score."""

    name = "lstm"

    def __init__(self, context: Any = None, config: TrainConfig | None = None) -> None:
        self.context = context
        self.config = config or TrainConfig()
        self.recommender: LstmRecommender | None = None
        self.log: list[dict[str, Any]] = []

    def fit(self, split: Split, catalog: Catalog, seed: int) -> None:
        model, self.log = train_lstm(split, catalog, self.config, seed)
        self.recommender = LstmRecommender(model, catalog)
        work_dir = getattr(self.context, "work_dir", None)
        if work_dir is not None:
            save_model(model, Path(work_dir) / "lstm")

    def load(self, path: Path) -> None:
        catalog = self.context.catalog
        self.recommender = LstmRecommender(load_model(Path(path), catalog), catalog)

    def score(self, histories: list[list[int]]) -> np.ndarray:
        if self.recommender is None:
            raise ModelUnavailableError("LSTM", "not fitted or loaded", REBUILD_COMMAND)
        return self.recommender.score(histories)

    def stats(self) -> dict[str, Any]:
        if self.recommender is None:
            return {}
        training = self.recommender.config.training
        return {k: training[k] for k in ("best_epoch", "best_valid_ndcg10", "epochs_run") if k in training}


# ---------------------------------------------------------------------------- the CLI
def write_curves(log: list[dict[str, Any]], path: Path) -> None:
    """Training loss and validation NDCG@10 per epoch, as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot([r["epoch"] for r in log], [r["train_loss"] for r in log], marker=".")
    left.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="training loss")
    valid = [r for r in log if "valid_ndcg10" in r]
    right.plot([r["epoch"] for r in valid], [r["valid_ndcg10"] for r in valid], marker=".", color="tab:green")
    right.set(xlabel="epoch", ylabel="NDCG@10", title="validation NDCG@10")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def lstm_release(
    data: Path,
    out: Path,
    config: TrainConfig | None = None,
    *,
    seed: int = 0,
    kcore: int | None = None,
    threads: int = 0,
    time_limit_minutes: float | None = None,
    device: str | None = None,
    float16: bool = False,
    catalog_out: Path | None = None,
    command: str | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """`python -m training lstm` as a function: train on a release and write the model folder `out`.

    Writes model.safetensors, config.json, metrics.jsonl, training_curves.png and manifest.json (and the
    catalog with popularity to `catalog_out`); returns the manifest. `device` None: the GPU(s) when
    there are. Under `accelerate launch` only the first process writes (the others return {}).
    """
    from accelerate import PartialState
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from dualrec_tui.core.artifacts import write_manifest
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    # under `accelerate launch` only the first process (RANK 0) prints and shows the progress bar
    console = console or Console(stderr=True, quiet=os.environ.get("RANK", "0") != "0")
    config = config or TrainConfig()
    set_torch_threads(threads)
    dataset = load_dataset(Path(data))
    split = leave_one_out(build_sequences(dataset, kcore))
    # The shipped catalog carries popularity over all ratings (the app's fallback); training uses none of it.
    dataset.catalog.popularity = np.bincount(dataset.items, minlength=len(dataset.catalog)).tolist()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console.print(
        f"LSTM on [bold]{dataset.name}[/]: {len(dataset.catalog)} movies, {len(split.training_sequences())} "
        f"training sequences, {len(split.valid_target)} validation users; window {config.window}, seed {seed}"
    )
    log_path = out / "metrics.jsonl"
    log_path.write_text("", encoding="utf-8")
    started = time.perf_counter()
    columns = (
        TextColumn("epoch {task.fields[epoch]}/{task.fields[max_epochs]}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}  valid NDCG@10 {task.fields[ndcg]} (best {task.fields[best]})"),
        TimeElapsedColumn(),
        TextColumn("left ≤"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(
            "lstm", total=config.max_epochs, epoch=1, max_epochs=config.max_epochs, loss="-", ndcg="-", best="-"
        )
        best = [-1.0]

        def on_batch(done: int, total: int) -> None:
            epoch = progress.tasks[0].fields["epoch"]
            progress.update(task, completed=epoch - 1 + done / total)

        def on_epoch(record: dict[str, Any]) -> None:
            with log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            ndcg = record.get("valid_ndcg10")
            if ndcg is not None:
                best[0] = max(best[0], ndcg)
            progress.update(
                task,
                completed=record["epoch"],
                epoch=min(record["epoch"] + 1, config.max_epochs),  # the next epoch, never past the last
                loss=f"{record['train_loss']:.3f}",
                ndcg="-" if ndcg is None else f"{ndcg:.4f}",
                best=f"{best[0]:.4f}",
            )

        model, log = train_lstm(
            split,
            dataset.catalog,
            config,
            seed,
            on_epoch=on_epoch,
            on_batch=on_batch,
            time_limit=time_limit_minutes * 60 if time_limit_minutes else None,
            device=device,
        )
        progress.update(task, completed=config.max_epochs)
    seconds = time.perf_counter() - started
    if not PartialState().is_main_process:
        return {}  # `accelerate launch`: one process writes the files
    model.config.training.update(data=dataset.name, data_fingerprint=dataset.fingerprint, train_seconds=seconds)
    save_model(model, out, float16=float16)
    write_curves(log, out / "training_curves.png")
    training = model.config.training
    manifest = {
        "artifact": "dualrec LSTM next-movie model",
        "data": {"name": dataset.name, "source": str(data), "fingerprint": dataset.fingerprint},
        "catalog_fingerprint": dataset.catalog.fingerprint,
        "command": command or f"python -m training lstm --data {data} --out {out} --seed {seed}",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": {
            "best_epoch": training["best_epoch"],
            "valid_ndcg10": training["best_valid_ndcg10"],
            "valid_hr10": next((r["valid_hr10"] for r in log if r["epoch"] == training["best_epoch"]), None),
            "epochs_run": len(log),
            "stopped_by_time_limit": training["stopped_by_time_limit"],
            "train_seconds": round(seconds, 1),
        },
        "hyper_parameters": {**asdict(config), "seed": seed, "kcore": kcore},
        "weights_dtype": "float16" if float16 else "float32",
        "files": ["model.safetensors", "config.json", "metrics.jsonl", "training_curves.png"],
    }
    write_manifest(out, manifest)
    if catalog_out:
        dataset.catalog.to_json(Path(catalog_out))
        console.print(f"catalog written to {catalog_out}")
    console.print(
        f"best epoch {training['best_epoch']}: valid NDCG@10 {training['best_valid_ndcg10']:.4f}; "
        f"{len(log)} epochs in {seconds:.0f} s; written to {out}"
    )
    return manifest


def _cli(args: argparse.Namespace) -> int:
    """The `lstm` subcommand: its options, passed to `lstm_release`."""
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})
    if args.epochs is not None:
        config.max_epochs = args.epochs
    lstm_release(
        Path(args.data),
        Path(args.out),
        config,
        seed=args.seed,
        kcore=args.kcore,
        threads=args.threads,
        time_limit_minutes=args.time_limit,
        device=None if args.device == "auto" else args.device,
        float16=args.float16,
        catalog_out=args.catalog_out,
        command="python -m training " + " ".join(sys.argv[1:] if args.argv is None else args.argv),
    )
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    defaults = TrainConfig()
    parser = subparsers.add_parser(
        "lstm",
        help="train the LSTM next-movie model",
        description="Train the DUALRec LSTM on a MovieLens release (leave-one-out split, early stopping on "
        "validation NDCG@10) and write model.safetensors, config.json, metrics.jsonl, training_curves.png "
        "and manifest.json to --out.",
    )
    parser.add_argument("--data", required=True, help="MovieLens release folder or .zip")
    parser.add_argument("--out", required=True, help="output folder (e.g. models/lstm)")
    parser.add_argument("--epochs", type=int, default=None, help=f"most epochs (default {defaults.max_epochs})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kcore", type=int, default=None, help="optional k-core filter (reported in the manifest)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="minutes; start no new epoch after this (keeps the best epoch)"
    )
    parser.add_argument("--float16", action="store_true", help="store the weights as float16 (half the size)")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu"),
        default="auto",
        help="auto: the GPU(s) when there are (bf16 autocast; several with `accelerate launch -m training lstm`)",
    )
    parser.add_argument("--catalog-out", default=None, help="also write the catalog (with popularity) as JSON here")
    for f in fields(TrainConfig):
        if f.name == "max_epochs":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        elif f.name == "loss":
            parser.add_argument(
                flag, choices=LOSSES, default=f.default, help="full softmax (default) or sampled (--negatives)"
            )
        else:
            kind = float if isinstance(f.default, float) else int
            parser.add_argument(flag, type=kind, default=f.default, help=f"default {f.default}")
    parser.set_defaults(func=_cli, argv=None)
    add_search_command(subparsers)


def _search_job(job: tuple[str, dict[str, Any], int, str, str]) -> dict[str, Any]:
    """One search point: train with `overrides` on top of the defaults, report validation only."""
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    data, overrides, seed, device, base = job
    set_torch_threads(1)
    dataset = load_dataset(Path(data))
    split = leave_one_out(build_sequences(dataset))
    config = TrainConfig(**{**json.loads(base), **overrides})
    started = time.perf_counter()
    model, log = train_lstm(split, dataset.catalog, config, seed, device=device)
    training = model.config.training
    return {
        "data": dataset.name,
        "overrides": overrides,
        "valid_ndcg10": round(training["best_valid_ndcg10"], 4),
        "best_epoch": training["best_epoch"],
        "epochs_run": len(log),
        "seconds": round(time.perf_counter() - started, 1),
        "curve": [round(r.get("valid_ndcg10", 0.0), 4) for r in log],
    }


def search_command(args: argparse.Namespace) -> int:
    """Validation-only hyper-parameter search: each --set is a JSON object of TrainConfig overrides."""
    import multiprocessing

    from rich.console import Console

    console = Console(stderr=True)
    grid = [json.loads(text) for text in (args.set or ["{}"])]
    for overrides in grid:
        unknown = set(overrides) - {f.name for f in fields(TrainConfig)}
        if unknown:
            raise DualrecError(f"--set names unknown hyper-parameters: {', '.join(sorted(unknown))}")
    jobs = [(data, overrides, args.seed, args.device, args.base) for overrides in grid for data in args.data]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool, out.open("a", encoding="utf-8") as handle:
        for result in pool.imap_unordered(_search_job, jobs):
            handle.write(json.dumps(result) + "\n")
            handle.flush()
            console.print(
                f"{result['data']} {json.dumps(result['overrides'])}: valid NDCG@10 {result['valid_ndcg10']:.4f} "
                f"(epoch {result['best_epoch']} of {result['epochs_run']}, {result['seconds']:.0f} s)"
            )
    return 0


def add_search_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lstm-search",
        help="validation search over LSTM hyper-parameters (docs/lstm.md)",
        description="Train one LSTM per (--set, --data) pair and append its best validation NDCG@10 to --out "
        "(JSONL). Never looks at test targets.",
    )
    parser.add_argument("--data", action="append", required=True, help="MovieLens release (repeatable)")
    parser.add_argument("--set", action="append", help="JSON overrides, e.g. '{\"lr\": 0.005}' (repeatable)")
    parser.add_argument("--base", default="{}", help="JSON overrides applied to every point first")
    parser.add_argument("--out", default="runs/lstm-search.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--workers", type=int, default=1, help="parallel trainings (one thread each)")
    parser.set_defaults(func=search_command)


def main(argv: list[str] | None = None) -> int:
    """`python -m training lstm ...` (or `python -m training.fit_lstm ...`)."""
    return run_subcommand(add_command, "lstm", argv)


def search_main(argv: list[str] | None = None) -> int:
    """`python -m training lstm-search ...`: the validation search (validation targets only)."""
    return run_subcommand(add_command, "lstm-search", argv)


if __name__ == "__main__":
    sys.exit(main())
