"""LoRA fine-tuning of the LLM stage: `finetune_llm(...)`, and its CLI `python -m training llm`.

    python -m training llm --data DIR [--lstm DIR] --base {gemma3-270m,smollm2-135m,PATH} --out DIR

Pipeline: training sequences -> prompt/answer examples (training/llm_data.py) -> LoRA (peft) on a
Hugging Face causal LM (training/llm_base.py, training/lora_loop.py) -> adapter checkpoints
(training/checkpoints.py: safetensors, resumable) -> `out/adapter/` + manifest.

Several GPUs: `accelerate launch -m training llm ...` (data parallel, see training/lora_loop.py).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from dualrec_tui.core.errors import DualrecError
from dualrec_tui.core.prompt import DEFAULT_CANDIDATES, TITLE_SCORINGS

from .llm_base import DEFAULT_BASE, KNOWN_BASES, base_identity, hf_base_dir, resolve_base
from .lora_loop import LoraSettings, train_lora

TASKS = ("candidates", "titles", "rank")


def settings_from_args(args: argparse.Namespace) -> LoraSettings:
    """LoraSettings from the parsed flags: a flag left out keeps the dataclass default."""
    values = {}
    for item in fields(LoraSettings):
        value = getattr(args, item.name, None)
        if value is not None:
            values[item.name] = value.split(",") if item.name == "target_modules" else value
    return LoraSettings(**values)


def finetune_llm(
    data: Path,
    out: Path,
    base: str,
    lstm: Path | None = None,
    settings: LoraSettings | None = None,
    *,
    max_examples: int | None = None,
    kcore: int | None = None,
    resume: bool = True,
    console: Any = None,
    command: str | None = None,
    threads: int | None = None,
    task: str = "titles",
    n_candidates: int | None = None,
    missing: str = "drop",
    init_adapter: Path | None = None,
    scoring: str = "title-prefix",
    out_of_fold: int = 0,
    fold_epochs: int = 16,
) -> dict[str, Any]:
    """Examples from `data`'s training sequences -> LoRA on `base` -> out/adapter + out/manifest.json.

    task "titles" (what ships): the method's prompt, answered with the movies the user watched next, so the
    model learns p(next title | history), which the app's title-likelihood scoring reads; "candidates":
    pick among the LSTM's top-K lettered candidates (needs `lstm`; the `--llm-scoring letters` rows);
    "rank": the title prompt and the LSTM's top-K candidates, trained with a listwise loss on the
    likelihood of each candidate's `scoring` text (needs `lstm`), which is the score the app fuses.
    `init_adapter`: start from this adapter (a peft folder or a GGUF LoRA, training/adapter_init.py),
    e.g. continue the shipped titles adapter on the rank task. `out_of_fold` >= 2 (rank task): the
    candidates come from that many fold LSTMs, each fit without the sequences it scores
    (training/out_of_fold.py), instead of from `lstm` itself, which was fit on them."""
    from dualrec_tui.core.artifacts import write_manifest
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    from . import llm_data

    settings = settings or LoraSettings()
    say = console.print if console is not None else (lambda *a, **k: None)
    dataset = load_dataset(data)
    split = leave_one_out(build_sequences(dataset, kcore))
    catalog = dataset.catalog
    if task not in TASKS:
        raise DualrecError(f"--task must be one of {', '.join(TASKS)}, not {task!r}")
    n_candidates = n_candidates or DEFAULT_CANDIDATES
    if task == "rank" and scoring not in TITLE_SCORINGS:
        raise DualrecError(f"--scoring must be one of {', '.join(TITLE_SCORINGS)}, not {scoring!r}")
    init = None
    if init_adapter is not None:
        from .adapter_init import read_adapter

        init = read_adapter(Path(init_adapter))
        settings.rank, settings.alpha, settings.target_modules = init.rank, int(init.alpha), list(init.target_modules)
        say(f"starting from {init_adapter} (rank {init.rank}, alpha {init.alpha:g}, {len(init.tensors)} tensors)")
    if task in ("candidates", "rank") and lstm is None:
        raise DualrecError(f"--task {task} needs --lstm DIR: the candidates are the LSTM's top K")
    if out_of_fold and task != "rank":
        raise DualrecError("--out-of-fold applies to --task rank only")
    if task == "rank":
        from dualrec_tui.core.lstm import LstmRecommender

        if out_of_fold:
            from .out_of_fold import fold_scorers

            scores = fold_scorers(
                split,
                catalog,
                Path(lstm),
                n_folds=out_of_fold,
                epochs=fold_epochs,
                work_dir=Path(out) / "fold-lstms",
                seed=settings.seed,
                say=say,
            )
            predicted_by = f"lstm out-of-fold: {out_of_fold} folds, {fold_epochs} epochs, settings of {lstm}"
        else:
            scores = [LstmRecommender.load(Path(lstm), catalog).score]
            predicted_by = f"lstm:{lstm}"
        examples = llm_data.build_rank_examples(
            split,
            catalog,
            scores,
            scoring=scoring,
            n_candidates=n_candidates,
            missing=missing,
            max_examples=max_examples or llm_data.DEFAULT_EXAMPLES,
            seed=settings.seed,
        )
    elif task == "candidates":
        from dualrec_tui.core.lstm import LstmRecommender

        scorer = LstmRecommender.load(Path(lstm), catalog)
        predicted_by = f"lstm:{lstm}"
        examples = llm_data.build_candidate_examples(
            split,
            catalog,
            scorer.score,
            n_candidates=n_candidates,
            missing=missing,
            max_examples=max_examples or llm_data.DEFAULT_EXAMPLES,
            seed=settings.seed,
        )
    else:
        if lstm is not None:
            predictor = llm_data.lstm_predictor(lstm, catalog)
            predicted_by = f"lstm:{lstm}"
        else:
            say("[yellow]no --lstm given: prompts use the most popular unseen movie as the 'prediction'[/]")
            predictor = llm_data.popularity_predictor(split)
            predicted_by = "popularity (no LSTM given)"
        examples = llm_data.build_examples(
            split, catalog, predictor, max_examples=max_examples or llm_data.DEFAULT_EXAMPLES, seed=settings.seed
        )
    data_sha = llm_data.write_jsonl(examples, out / "examples.jsonl")
    say(f"{len(examples)} fine-tuning examples -> {out / 'examples.jsonl'}")
    base_path = resolve_base(base)
    identity = base_identity(base_path)
    say(f"base {base}: {base_path}")
    hf_dir = hf_base_dir(base)
    manifest = {
        "kind": "lora-adapter",
        "base": {"name": str(base), **identity, "hf_folder": str(hf_dir)},
        "data": {
            "path": str(data),
            "catalog_fingerprint": catalog.fingerprint,
            "examples": len(examples),
            "examples_sha256": data_sha,
            "prompts_predicted_by": predicted_by,
            "task": task,
            **({"n_candidates": n_candidates, "missing": missing} if task in ("candidates", "rank") else {}),
            **({"scoring": scoring} if task == "rank" else {}),
            **({"out_of_fold": {"folds": out_of_fold, "epochs": fold_epochs}} if out_of_fold else {}),
            "kcore": kcore,
            "source": "training sequences only (leave-one-out: validation and test targets excluded)",
        },
        "settings": asdict(settings),
        **({"init_adapter": {"path": str(init_adapter), "sha256": _sha256(Path(init_adapter))}} if init else {}),
        "training": {"status": "running (an interrupted run resumes from its last checkpoint-N)"},
        "command": command or shlex.join(["python", "-m", "training", *sys.argv[1:]]),
    }
    write_manifest(out, manifest)  # written first, so a stopped run's checkpoints are documented too
    base_info = {**identity, **({"init": manifest["init_adapter"]} if init else {})}
    summary = train_lora(
        hf_dir, examples, out, settings, resume=resume, base_info=base_info, threads=threads, init=init
    )
    manifest["training"] = summary
    write_manifest(out, manifest)
    say(f"[green]adapter[/] {out / 'adapter'}  ({summary['steps']} steps, loss {summary['final_loss']})")
    return manifest


def _sha256(path: Path) -> str:
    """A file's sha256, or a folder's files' in name order (a peft adapter folder)."""
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            digest.update(file.read_bytes())
    return digest.hexdigest()


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = LoraSettings()
    group = parser.add_argument_group("LoRA hyper-parameters")
    group.add_argument("--rank", type=int, help=f"LoRA rank (default {defaults.rank})")
    group.add_argument("--alpha", type=int, help=f"LoRA alpha (default {defaults.alpha})")
    group.add_argument("--dropout", type=float, help=f"LoRA dropout (default {defaults.dropout})")
    group.add_argument("--target-modules", help=f"comma-separated (default {','.join(defaults.target_modules)})")
    group.add_argument(
        "--learning-rate", "--lr", type=float, help=f"peak learning rate (default {defaults.learning_rate})"
    )
    group.add_argument("--steps", type=int, help=f"optimizer steps (default {defaults.steps})")
    group.add_argument("--batch-size", type=int, help=f"examples per step per process (default {defaults.batch_size})")
    group.add_argument("--max-length", type=int, help=f"tokens per example (default {defaults.max_length})")
    group.add_argument("--warmup-steps", type=int, help=f"(default {defaults.warmup_steps})")
    group.add_argument("--seed", type=int, help=f"(default {defaults.seed})")
    group.add_argument("--save-every", type=int, help=f"checkpoint every N steps (default {defaults.save_every})")


def build_parser() -> argparse.ArgumentParser:
    from dualrec_tui.core.artifacts import default_data_dir

    parser = argparse.ArgumentParser(
        prog="python -m training llm",
        description="Build prompt/answer examples from training sequences and fine-tune a LoRA adapter. "
        "Several GPUs: `accelerate launch -m training llm ...`.",
    )
    parser.add_argument("--data", type=Path, default=default_data_dir() / "ml-latest-small", help="MovieLens release")
    parser.add_argument("--lstm", type=Path, help="trained LSTM folder for the prompts' prediction (else popularity)")
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"{', '.join(KNOWN_BASES)}, an HF folder or a .gguf file")
    parser.add_argument("--out", type=Path, required=True, help="output folder (adapter/, checkpoints, manifest)")
    parser.add_argument("--examples", type=int, help="how many examples to sample (default 4000)")
    parser.add_argument("--kcore", type=int, help="k-core filter before splitting (default: none)")
    parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="titles",
        help="titles (default): the method's prompt answered with the movies watched next; the app scores "
        "the LSTM's candidates by their title likelihood under it. rank: the same prompt, trained with a "
        "listwise loss over the likelihoods of the LSTM's top-K candidates (needs --lstm; best started from "
        "a titles adapter with --init-adapter). candidates: pick among the LSTM's lettered top-K (needs "
        "--lstm; evaluate with --llm-scoring letters)",
    )
    parser.add_argument(
        "--init-adapter",
        type=Path,
        help="start from this adapter: a peft folder or a GGUF LoRA (e.g. models/llm/adapter.gguf); it sets "
        "--rank, --alpha and --target-modules",
    )
    parser.add_argument(
        "--scoring",
        choices=TITLE_SCORINGS,
        default="title-prefix",
        help="--task rank: the text of a candidate whose likelihood is ranked (default title-prefix, what ships)",
    )
    parser.add_argument(
        "--candidates", type=int, default=DEFAULT_CANDIDATES, help=f"K, candidates per prompt ({DEFAULT_CANDIDATES})"
    )
    parser.add_argument(
        "--missing",
        choices=("drop", "inject"),
        default="drop",
        help="a cut whose next movie is not a candidate: drop it (default) or inject the movie",
    )
    parser.add_argument(
        "--out-of-fold",
        type=int,
        default=0,
        metavar="N",
        help="--task rank: take the candidates from N fold LSTMs (N >= 2), each fit with --lstm's settings "
        "on the training sequences of the other folds, so they rank a sequence they have not seen, as the "
        "app's LSTM does for a user; saved in OUT/fold-lstms (default 0: --lstm itself)",
    )
    parser.add_argument(
        "--fold-epochs",
        type=int,
        default=16,
        help="--out-of-fold: most epochs per fold LSTM; the best on its validation users is kept (default 16)",
    )
    add_settings_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m training llm ...`: parse the flags and call `finetune_llm`."""
    from rich.console import Console

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    finetune_llm(
        args.data,
        args.out,
        args.base,
        args.lstm,
        settings_from_args(args),
        max_examples=args.examples,
        kcore=args.kcore,
        resume=not args.no_resume,
        console=Console(),
        command=shlex.join(["python", "-m", "training", "llm", *argv]),
        threads=args.threads or None,
        task=args.task,
        n_candidates=args.candidates,
        missing=args.missing,
        init_adapter=args.init_adapter,
        scoring=args.scoring,
        out_of_fold=args.out_of_fold,
        fold_epochs=args.fold_epochs,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
