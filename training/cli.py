"""The one way a training module with an argparse subcommand (`add_command(subparsers)` setting
`func`) becomes a `main(argv) -> int`: `python -m training <name> ...` and `python -m training.<module>`
run the same parser and the same function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from dualrec_tui.core.errors import DualrecError


def run_subcommand(
    add_command: Callable[[argparse._SubParsersAction], None], name: str, argv: Sequence[str] | None
) -> int:
    """Parse `argv` as subcommand `name` of the parser `add_command` fills in, and run its `func`.

    A DualrecError (bad data, a missing model) is one line on stderr and exit status 2, not a traceback."""
    words = [name, *(sys.argv[1:] if argv is None else argv)]
    parser = argparse.ArgumentParser(prog="python -m training")
    add_command(parser.add_subparsers())
    args = parser.parse_args(words)
    args.argv = words  # what was run, for manifests
    try:
        return int(args.func(args) or 0)
    except DualrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
