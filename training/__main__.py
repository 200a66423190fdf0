"""`python -m training <command>`: rebuild and evaluate every dualrec model.

Each module in COMMAND_MODULES defines `add_command(subparsers) -> None`, adding its subcommand(s)
with `set_defaults(func=...)`; `func(args)` returns an exit code (or None for 0). Modules that do not
exist yet are skipped. Modules keep heavy imports (torch, transformers, ...) inside functions, so
`--help` stays fast. A DualrecError (a user mistake: bad data, missing model) prints one red line and
exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dualrec_tui.core.errors import DualrecError

COMMAND_MODULES = [
    "training.export_catalog",
    "training.embeddings",
    "training.evaluate",
    "training.sasrec",
    "training.fit_lstm",
    "training.finetune",
    "training.export",
    "training.pipeline_all",
    "training.report",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train, export and evaluate the dualrec models (LSTM, SASRec, baselines, the LLM stage). "
        "Run `python -m training <command> --help` for a command's options.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not written yet
            raise
        add = getattr(module, "add_command", None)
        if callable(add):
            add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code = func(args)
    except DualrecError as exc:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] [red]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
