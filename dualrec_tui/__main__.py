"""`dualrec-tui`: the command-line entry point (flags, env overrides, then the Textual app)."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from . import __version__

logger = logging.getLogger("dualrec")

DESCRIPTION = """\
dualrec: log the movies you watch and get recommendations, all on this computer.

Type a title in the search box and press Enter to log it; LSTM picks appear at once, then the
list ordered by the signals that helped on validation (LLM, Sentence-BERT similarity), with the
fine-tuned LLM's own picks named in the status line.
F1 lists the keys, Ctrl+P opens the command palette.
"""

EPILOG = """\
environment:
  DUALREC_CONFIG      settings file (default: {config})
  DUALREC_DB          watch log database (default: {db})
  DUALREC_MODELS_DIR  folder with catalog.json, lstm/ and llm/ (default: {models})
  DUALREC_CACHE_DIR   caches (re-ranker embeddings, assembled base model)
  DUALREC_LOG_DIR     log folder (default: {logs}); F4 in the app shows the log file

settings file keys (TOML): db_path, models_dir, n_recommendations (1-50), llm_enabled (true/false),
  gpu_layers (-1 = all, 0 = CPU), threads (0 = auto), theme (e.g. "textual-ansi" = your terminal's colours)

missing models: `python -m training catalog|lstm|llm` rebuilds them (F4 in the app says which;
  needs `pip install "dualrec[train]"`).
"""


def build_parser() -> argparse.ArgumentParser:
    from .config import config_path, default_models_dir
    from .core.artifacts import log_dir, watchlog_path

    parser = argparse.ArgumentParser(
        prog="dualrec-tui",
        description=DESCRIPTION,
        epilog=EPILOG.format(config=config_path(), db=watchlog_path(), models=default_models_dir(), logs=log_dir()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", type=Path, metavar="PATH", help="watch log database file (created if missing)")
    parser.add_argument("--models", type=Path, metavar="DIR", help="models folder (catalog.json, lstm/, llm/)")
    parser.add_argument("--config", type=Path, metavar="PATH", help="settings file (TOML)")
    parser.add_argument("--no-llm", action="store_true", help="LSTM recommendations only (skip loading the LLM)")
    parser.add_argument("--version", action="version", version=f"dualrec-tui {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags, read settings, run the app. Returns the exit status."""
    from . import launch_gc

    launch_gc.pause()  # the app resumes it at its first answer (see launch_gc); every other way out here too
    try:
        return _run(argv)
    finally:
        launch_gc.resume()


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from .config import Config
    from .core.errors import DualrecError

    try:
        config = Config.load(args.config.expanduser() if args.config else None)
    except DualrecError as exc:
        print(f"dualrec-tui: {exc}\n  fix the file, or move it aside to start with the defaults", file=sys.stderr)
        return 2
    if args.db:
        config = replace(config, db_path=args.db.expanduser())
    if args.models:
        config = replace(config, models_dir=args.models.expanduser())
    if args.no_llm:
        config = replace(config, llm_enabled=False)

    from .app import DualrecApp
    from .logs import setup_file_logging, textual_logging

    log_file = setup_file_logging()
    where = f"; log: {log_file}" if log_file else ""
    logger.info(
        "dualrec-tui %s starting (db %s, models %s)", __version__, config.resolved_db_path, config.resolved_models_dir
    )
    app = DualrecApp(config, config_file=args.config)
    try:
        with textual_logging():
            app.run()
    except Exception as exc:  # the terminal or Textual failed before the app could handle it
        logger.exception("dualrec-tui could not run")
        print(f"dualrec-tui: {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        return 1
    code = app.return_code or 0
    if code:
        error = getattr(app, "_exception", None)  # what Textual's fatal-error handler caught, if anything
        info = (type(error), error, error.__traceback__) if isinstance(error, BaseException) else None
        logger.error("dualrec-tui stopped after a fatal error (exit status %d)", code, exc_info=info)
        print(f"dualrec-tui: stopped after a fatal error (exit status {code}){where}", file=sys.stderr)
    else:
        logger.info("dualrec-tui exited normally")
    return code


if __name__ == "__main__":
    sys.exit(main())
