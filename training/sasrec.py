"""SASRec (Kang & McAuley 2018) with full-softmax cross-entropy, as a strong sequential baseline.

    python -m training sasrec --data DIR --out DIR          # train with the defaults below and save
    python -m training sasrec-search --data DIR --grid ...  # the validation search (see docs/baselines.md)

In Python: `train_sasrec(split, n_items, SasrecConfig(...))` fits a model; `sasrec_release(data, out)`
is the whole `sasrec` command.

Model: item embedding (catalog index + 1, 0 = padding) scaled by sqrt(d) + learned positions (sequences
are left-padded, so the newest item always sits in the last slot) -> N pre-LayerNorm causal
self-attention blocks (multi-head attention + position-wise feed-forward, residuals, dropout) ->
final LayerNorm -> logits = hidden @ item_embedding^T (tied output layer) over the whole catalog.

Training: every training sequence is cut into windows of max_len + 1 items from its end backwards;
each window gives max_len next-item targets, and the loss is cross-entropy over the *whole catalog*
at every non-padding position (no sampled negatives by default; Klenitskiy & Vasilev 2023 show that
this is what makes SASRec strong; `--loss sampled --negatives N` is there for big catalogs). Windows
are cut per batch (training/sequence_training.py). Adam, fixed seed, validation NDCG@10 (full ranking,
input items removed, exactly the test protocol on the validation target) after every epoch; early stopping keeps the
best epoch. Only training sequences are used; the validation target only picks the epoch.

Saved as `model.safetensors` + `config.json` (hyper-parameters, catalog fingerprint, best epoch and
its validation NDCG@10): no pickle anywhere.

Defaults (DEFAULTS, PRESETS below) come from the validation search written down in docs/baselines.md.
Training uses one torch thread per two cores (`sequence_training.torch_threads()`): on a busy machine
more threads were 20x slower per step. Measured on ML-100K (2 shared cores, 1 thread): 18 epochs, 127 s of CPU
time, validation NDCG@10 0.127, test HR@10 0.217 / NDCG@10 0.110 (docs/baselines.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dualrec_tui.core.errors import DualrecError, ModelUnavailableError
from dualrec_tui.core.sequences import Ragged

from . import metrics
from .cli import run_subcommand
from .scale import LOSSES, full_softmax_loss, make_accelerator, sampled_softmax_loss
from .sequence_training import BestEpoch, Windows, cut_windows, run_epoch, set_torch_threads, torch_threads

SEED = 0


@dataclass
class SasrecConfig:
    """Hyper-parameters; the defaults are the best ML-100K point of the validation search (docs/baselines.md)."""

    max_len: int = 20
    hidden: int = 128
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.35
    lr: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 40
    patience: int = 6  # epochs without a better validation NDCG@10 before stopping
    min_epochs: int = 0
    # most logits (positions x movies) at once, then checkpointed chunks (training/scale.py); above the
    # ml-latest-small preset's 200 x 64 x 9.7k, so its results stay bit-for-bit the same
    logits_budget: int = 160_000_000
    loss: str = "full"  # "full" softmax over the catalog, or "sampled" against `negatives` random movies
    negatives: int = 1000

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SasrecConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


DEFAULTS = SasrecConfig()
# Per-release settings from the same search (docs/baselines.md); other releases use DEFAULTS.
PRESETS: dict[str, SasrecConfig] = {
    "ml-latest-small": SasrecConfig(max_len=200, hidden=128, dropout=0.2, lr=3e-3),
}


def config_for(dataset_name: str) -> SasrecConfig:
    return PRESETS.get(dataset_name, DEFAULTS)


def build_module(n_items: int, config: SasrecConfig):
    """The nn.Module (torch imported here, so importing this file stays cheap)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        """Pre-LN transformer block: x + MHA(LN(x)), then x + FFN(LN(x))."""

        def __init__(self, d: int, heads: int, dropout: float) -> None:
            super().__init__()
            self.heads = heads
            self.norm1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.out = nn.Linear(d, d)
            self.norm2 = nn.LayerNorm(d)
            self.ffn = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, d))
            self.dropout = nn.Dropout(dropout)
            self.attn_dropout = dropout

        def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
            # x (B, L, d); allowed (B, 1, L, L) bool, True = query may attend to key
            b, length, d = x.shape
            q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)  # each (B, L, d)
            q, k, v = (
                t.view(b, length, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v)
            )  # (B, h, L, d/h)
            a = F.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, dropout_p=self.attn_dropout if self.training else 0.0
            )  # (B, h, L, d/h)
            x = x + self.dropout(self.out(a.transpose(1, 2).reshape(b, length, d)))  # (B, L, d)
            return x + self.dropout(self.ffn(self.norm2(x)))  # (B, L, d)

    class SASRec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = config.hidden
            self.d = d
            self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)  # (n_items + 1, d), row 0 = padding
            self.pos_emb = nn.Embedding(config.max_len, d)  # (L, d)
            self.emb_dropout = nn.Dropout(config.dropout)
            self.blocks = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.blocks))
            self.norm = nn.LayerNorm(d)
            nn.init.normal_(self.item_emb.weight, std=d**-0.5)
            with torch.no_grad():
                self.item_emb.weight[0].zero_()

        def forward(self, seq: torch.Tensor) -> torch.Tensor:
            # seq (B, L) int64: catalog index + 1, left-padded with 0
            length = seq.shape[1]
            keep = (seq > 0).unsqueeze(-1)  # (B, L, 1)
            positions = torch.arange(length, device=seq.device)  # (L,)
            x = self.item_emb(seq) * math.sqrt(self.d) + self.pos_emb(positions)  # (B, L, d)
            x = self.emb_dropout(x) * keep
            causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()  # (L, L)
            allowed = causal & (seq > 0).unsqueeze(1)  # (B, L, L): no padding keys
            allowed = allowed | torch.eye(length, dtype=torch.bool, device=seq.device)  # never an empty row
            allowed = allowed.unsqueeze(1)  # (B, 1, L, L)
            for block in self.blocks:
                x = block(x, allowed) * keep  # (B, L, d)
            return self.norm(x)  # (B, L, d)

        def logits(self, hidden: torch.Tensor) -> torch.Tensor:
            # hidden (..., d) -> (..., n_items): scores of catalog indices 0..n_items-1
            return hidden @ self.item_emb.weight[1:].T

    return SASRec()


def sasrec_windows(sequences: Ragged, max_len: int) -> Windows:
    """Windows of max_len + 1 items from each sequence's end backwards, left-padded; consecutive
    windows overlap by one item, so every transition is a target exactly once."""
    return cut_windows(sequences, max_len, max_len)


def _inputs(histories: list[list[int]], max_len: int) -> np.ndarray:
    """(B, max_len) int64: the last max_len items of each history as ids (index + 1), left-padded."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, history in enumerate(histories):
        tail = np.asarray(history[-max_len:], dtype=np.int64) + 1
        if len(tail):
            out[row, max_len - len(tail) :] = tail
    return out


def scores_for(module: Any, histories: list[list[int]], max_len: int, device: str = "cpu") -> np.ndarray:
    """(B, n_items) next-item logits after each history."""
    import torch

    module.eval()
    with torch.no_grad():
        seq = torch.from_numpy(_inputs(histories, max_len)).to(device)
        hidden = module(seq)[:, -1, :]  # (B, d): the newest slot
        return module.logits(hidden).float().cpu().numpy()  # (B, n_items)


def _train_step(module: Any, budget: int, negatives: int = 0) -> Any:
    """One batch's loss as a module's forward, so `accelerate` (DDP) synchronises it; memory-bounded softmax
    (`negatives` > 0: sampled softmax against that many movies)."""
    import torch

    class TrainStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            hidden = self.module(inputs)  # (B, L, d)
            live = inputs > 0  # (B, L): positions with an input item (their target is never padding)
            weights = self.module.item_emb.weight  # (n_items + 1, d), row 0 = padding
            n_items, goal = weights.shape[0] - 1, targets[live] - 1
            if negatives:
                return sampled_softmax_loss(hidden[live], lambda i: (weights[i + 1], None), goal, n_items, negatives)
            return full_softmax_loss(self.module.logits, hidden[live], goal, n_items, budget)

    return TrainStep()


def train_sasrec(
    split: Any,
    n_items: int,
    config: SasrecConfig,
    seed: int = SEED,
    device: str = "cpu",
    progress: Any = None,
    log: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit on the training sequences; keep the epoch with the best validation NDCG@10."""
    import torch

    if config.loss not in LOSSES:
        raise DualrecError(f"unknown loss {config.loss!r}: choose one of {', '.join(LOSSES)}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    accelerator = make_accelerator(device)
    device = str(accelerator.device)
    module = build_module(n_items, config).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    negatives = config.negatives if config.loss == "sampled" else 0
    step, optimizer = accelerator.prepare(_train_step(module, config.logits_budget, negatives), optimizer)
    windows = sasrec_windows(split.training_sequences(), config.max_len)

    def make_batch(rows: np.ndarray) -> tuple[tuple[Any, ...], int]:
        batch = torch.from_numpy(windows.ids(rows, left_pad=True)).to(device)  # (B, L + 1)
        inputs, targets = batch[:, :-1], batch[:, 1:]  # (B, L) each
        return (inputs, targets), int((inputs > 0).sum())

    best = BestEpoch()
    history: list[dict[str, float]] = []
    main = accelerator.is_main_process
    task = progress.add_task("SASRec", total=config.epochs) if progress is not None and main else None
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        module.train()
        loss = run_epoch(step, optimizer, accelerator, len(windows), config.batch_size, rng, make_batch)
        ndcg = metrics.validation_ndcg(
            lambda h: scores_for(module, h, config.max_len, device), split.train, list(split.valid_target), n_items
        )
        history.append({"epoch": epoch, "loss": loss, "valid_NDCG@10": ndcg})
        best.update(ndcg, epoch, module)
        if task is not None:  # the description says how far; the bar's columns say the time left
            progress.update(
                task,
                advance=1,
                description=f"SASRec epoch {epoch} loss {loss:.3f} "
                f"val NDCG@10 {ndcg:.4f} (best {best.score:.4f} @ {best.epoch})",
            )
        if log is not None and main:
            log(epoch, loss, ndcg)
        if best.waited >= config.patience and epoch >= config.min_epochs:
            break
    best.restore(module)
    info = {
        "best_epoch": best.epoch,
        "valid_NDCG@10": best.score,
        "epochs_run": len(history),
        "train_seconds": time.perf_counter() - start,
        "history": history,
        "processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision,
    }
    return module, info


def save(module: Any, config: SasrecConfig, info: dict[str, Any], catalog: Any, out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(out / "model.safetensors")
    )
    payload = {
        "model": "sasrec",
        "config": asdict(config),
        "n_items": len(catalog),
        "catalog_name": catalog.name,
        "catalog_fingerprint": catalog.fingerprint,
        **{k: v for k, v in info.items() if k != "history"},
        "history": info.get("history", []),
    }
    (out / "config.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def load(path: Path, catalog: Any) -> tuple[Any, SasrecConfig, dict[str, Any]]:
    """Load a saved SASRec; refuses a different catalog."""
    from safetensors.torch import load_file

    path = Path(path)
    rebuild = f"python -m training sasrec --data <release> --out {path}"
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelUnavailableError("SASRec", f"{path} needs config.json and model.safetensors", rebuild)
    payload = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if payload.get("catalog_fingerprint") != catalog.fingerprint or payload.get("n_items") != len(catalog):
        raise ModelUnavailableError(
            "SASRec", f"{path} was trained on another catalog ({payload.get('catalog_name')})", rebuild
        )
    config = SasrecConfig.from_dict(payload["config"])
    module = build_module(len(catalog), config)
    module.load_state_dict(load_file(str(path / "model.safetensors")))
    module.eval()
    return module, config, payload


class SasrecModel:
    """The harness wrapper (training/evaluate.py protocol)."""

    name = "sasrec"

    def __init__(self, ctx: Any = None, config: SasrecConfig | None = None) -> None:
        self.ctx = ctx
        dataset = getattr(ctx, "dataset", None)
        self.config = config or config_for(getattr(dataset, "name", ""))
        self.module: Any = None
        self.info: dict[str, Any] = {}

    def fit(self, split, catalog, seed: int) -> None:
        from rich.progress import Progress

        set_torch_threads(getattr(self.ctx, "threads", None) or torch_threads())

        console = getattr(self.ctx, "console", None)
        with Progress(console=console, disable=console is None, transient=False) as progress:
            self.module, self.info = train_sasrec(split, split.n_items, self.config, seed=seed, progress=progress)
        work = getattr(self.ctx, "work_dir", None)
        if work is not None:
            save(self.module, self.config, self.info, catalog, Path(work) / "sasrec")

    def load(self, path: Path) -> None:
        self.module, self.config, self.info = load(path, self.ctx.catalog)

    def score(self, histories: list[list[int]]) -> np.ndarray:
        return scores_for(self.module, histories, self.config.max_len)

    def stats(self) -> dict[str, Any]:
        keep = ("best_epoch", "valid_NDCG@10", "epochs_run")
        return {"config": asdict(self.config), **{k: self.info[k] for k in keep if k in self.info}}


# ---------------------------------------------------------------------------------------------- CLI
def _config_args(parser: argparse.ArgumentParser) -> None:
    for field, value in asdict(DEFAULTS).items():
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            type=type(value),
            default=None,
            choices=LOSSES if field == "loss" else None,
            help=f"(default {value}, or the release preset)",
        )


def _load_split(data: Path, kcore: int | None):
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    dataset = load_dataset(data)
    split = leave_one_out(build_sequences(dataset, kcore=kcore))
    if not split.user_ids:
        raise DualrecError(f"{data}: no user has 3 or more interactions; nothing to validate on")
    dataset.catalog.popularity = split.popularity().tolist()
    return dataset, split


def sasrec_release(
    data: Path,
    out: Path,
    overrides: dict[str, Any] | None = None,
    *,
    seed: int = SEED,
    kcore: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    console: Any = None,
) -> dict[str, Any]:
    """`python -m training sasrec` as a function: train on a release (its preset, then `overrides`) and
    save model.safetensors + config.json to `out`; returns the training info ({} on a non-first
    process under `accelerate launch`)."""
    from accelerate import PartialState
    from rich.console import Console
    from rich.progress import Progress

    set_torch_threads(torch_threads() if threads is None else threads)
    console = console or Console()
    dataset, split = _load_split(data, kcore)
    config = SasrecConfig(**{**asdict(config_for(dataset.name)), **(overrides or {})})
    console.print(f"SASRec on {dataset.name}: {len(split.user_ids)} users, {split.n_items} items, {config}")
    with Progress(console=console) as progress:
        module, info = train_sasrec(split, split.n_items, config, seed=seed, device=device, progress=progress)
    if not PartialState().is_main_process:
        return {}  # `accelerate launch`: one process writes the files
    save(module.cpu(), config, info, dataset.catalog, out)
    console.print(
        f"best epoch {info['best_epoch']} of {info['epochs_run']}, validation NDCG@10 {info['valid_NDCG@10']:.4f}, "
        f"{info['train_seconds']:.1f} s; saved to {out}"
    )
    return info


def _cli(args: argparse.Namespace) -> int:
    """The `sasrec` subcommand: options given on the command line override the release preset."""
    overrides = {f: getattr(args, f) for f in asdict(DEFAULTS) if getattr(args, f) is not None}
    sasrec_release(
        args.data, args.out, overrides, seed=args.seed, kcore=args.kcore, threads=args.threads, device=args.device
    )
    return 0


def search_command(args: argparse.Namespace) -> int:
    """Train one model per grid point and print/save validation NDCG@10 (test targets never used)."""
    import itertools

    from rich.console import Console

    set_torch_threads(args.threads)
    console = Console()
    _, split = _load_split(args.data, args.kcore)
    grid: dict[str, list[Any]] = {}
    for item in args.grid:
        key, _, values = item.partition("=")
        kind = type(getattr(DEFAULTS, key.replace("-", "_")))
        grid[key.replace("-", "_")] = [kind(v) for v in values.split(",")]
    results = []
    for point in itertools.product(*grid.values()):
        overrides = dict(zip(grid, point, strict=True))
        config = SasrecConfig(**{**asdict(DEFAULTS), **overrides, "epochs": args.epochs, "patience": args.patience})
        _, info = train_sasrec(split, split.n_items, config, seed=args.seed, device=args.device)
        row = {**overrides, **{k: v for k, v in info.items() if k != "history"}}
        results.append(row)
        console.print(json.dumps(row))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sasrec",
        help="train SASRec (full-softmax CE, early stopping on validation NDCG@10) and save it",
        description="Train SASRec on the training sequences of the leave-one-out split, keep the epoch with "
        "the best validation NDCG@10, and save model.safetensors + config.json to --out.",
    )
    parser.add_argument("--data", required=True, type=Path, help="MovieLens release folder or .zip")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--kcore", type=int, default=None)
    parser.add_argument("--threads", type=int, default=torch_threads(), help="torch CPU threads (default %(default)s)")
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda (several GPUs: accelerate launch -m training sasrec --device cuda)"
    )
    _config_args(parser)
    parser.set_defaults(func=_cli)

    search = subparsers.add_parser(
        "sasrec-search",
        help="grid search of SASRec hyper-parameters on validation NDCG@10",
        description="Train one SASRec per grid point (e.g. --grid hidden=32,64 --grid dropout=0.2,0.5) and report "
        "the best validation NDCG@10 of each. Test targets are never used.",
    )
    search.add_argument("--data", required=True, type=Path)
    search.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2", help="repeatable")
    search.add_argument("--epochs", type=int, default=300)
    search.add_argument("--patience", type=int, default=15)
    search.add_argument("--seed", type=int, default=SEED)
    search.add_argument("--kcore", type=int, default=None)
    search.add_argument("--threads", type=int, default=torch_threads())
    search.add_argument("--device", default="cpu")
    search.add_argument("--json", type=Path, default=None)
    search.set_defaults(func=search_command)


def main(argv: list[str] | None = None) -> int:
    """`python -m training sasrec ...` (or `python -m training.sasrec ...`)."""
    return run_subcommand(add_command, "sasrec", argv)


def search_main(argv: list[str] | None = None) -> int:
    """`python -m training sasrec-search ...`: the validation search (validation targets only)."""
    return run_subcommand(add_command, "sasrec-search", argv)


if __name__ == "__main__":
    sys.exit(main())
