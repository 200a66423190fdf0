"""Logging for the app: one rotating file under the platform log folder, and Textual's handler while it runs.

Library warnings (llama.cpp's Python side, numpy, `warnings.warn`) would otherwise vanish behind the
full-screen app. `setup_file_logging` is called once by `dualrec-tui` before the app starts; the F4
screen shows `current_log_file()`. The TextualHandler never prints to stderr or stdout (a message from a
thread outside the app's context would draw over the screen); `textual console` shows its records.
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .core.artifacts import log_dir

LOG_FILE_NAME = "dualrec.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 1_000_000
BACKUPS = 3


class _DualrecFileHandler(logging.handlers.RotatingFileHandler):
    """Marks the handler this module added, so it can be found (F4) and never added twice."""


def setup_file_logging(level: int = logging.INFO) -> Path | None:
    """Send log records (and `warnings`) to `<log dir>/dualrec.log`; None if that file cannot be written."""
    root = logging.getLogger()
    existing = current_log_file()
    if existing is not None:
        return existing
    path = log_dir() / LOG_FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _DualrecFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError:
        return None  # a read-only home must not stop the app; F4 says there is no log file
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.WARNING, level))
    logging.captureWarnings(True)
    return path


def current_log_file() -> Path | None:
    """The file this process logs to, if `setup_file_logging` succeeded."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _DualrecFileHandler):
            return Path(handler.baseFilename)
    return None


@contextmanager
def textual_logging(level: int = logging.INFO) -> Iterator[None]:
    """While the app runs, log records also go to Textual's log (`textual console`)."""
    from textual.logging import TextualHandler

    handler = TextualHandler(stderr=False, stdout=False)
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
