"""`python -m training <command> [options]`: rebuild and evaluate every dualrec model.

Each command is a module with a CLI entry point `main(argv: list[str] | None = None) -> int` that parses
its own options (so `python -m training <command> --help` is that module's help); COMMANDS maps the
command name to it and holds the one-line summary `python -m training --help` lists. Modules keep
heavy imports (torch, transformers, ...) inside functions, and a command's module is imported only when
that command runs, so `--help` stays fast. A DualrecError (a user mistake: bad data, missing model)
prints one red line and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from dualrec_tui.core.errors import DualrecError

# command -> ("module:function" taking the remaining argv and returning an exit code, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": (
        "training.export_catalog:main",
        "write the app's movie catalog (catalog.json) from a MovieLens release",
    ),
    "embeddings": (
        "training.embeddings:main",
        "encode the catalog with Sentence-BERT for the app's re-ranker (catalog-embeddings-*.npy)",
    ),
    "markov": ("training.fit_markov:main", "count the Markov transitions the app fuses (models/markov)"),
    "evaluate": ("training.evaluate:main", "evaluate models side by side (leave-one-out, full ranking)"),
    "sasrec": (
        "training.sasrec:main",
        "train SASRec (full-softmax CE, early stopping on validation NDCG@10) and save it",
    ),
    "sasrec-search": ("training.sasrec:search_main", "grid search of SASRec hyper-parameters on validation NDCG@10"),
    "lstm": ("training.fit_lstm:main", "train the LSTM next-movie model"),
    "lstm-search": ("training.fit_lstm:search_main", "validation search over LSTM hyper-parameters (docs/lstm.md)"),
    "llm": ("training.finetune:main", "fine-tune the LLM stage with LoRA (examples -> adapter checkpoints)"),
    "export": (
        "training.export:main",
        "merge a LoRA adapter, convert to GGUF, quantise; also the adapter alone as a GGUF LoRA",
    ),
    "all": (
        "training.pipeline_all:main",
        "rebuild every shipped artifact in order (catalog, LSTM, LoRA, GGUF, evaluation)",
    ),
    "report": ("training.report:main", "print evaluate JSON reports as Markdown tables"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: lists the commands; each command's own options live in its module."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train, export and evaluate the dualrec models (LSTM, SASRec, baselines, the LLM stage). "
        "Run `python -m training <command> --help` for a command's options.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>")
    for name, (_, summary) in COMMANDS.items():
        subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def entry_point(command: str) -> Callable[[list[str]], int]:
    """The `main(argv)` of a command, imported now."""
    module_name, _, function = COMMANDS[command][0].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, function)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training <command> ...`: run the command's `main` with the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        parser = build_parser()
        parser.parse_args(argv)  # --help exits 0; an unknown command exits 2 with the list of commands
        parser.print_help()
        return 2
    try:
        return int(entry_point(argv[0])(argv[1:]) or 0)
    except DualrecError as exc:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] [red]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
