"""Errors that reach the user: each says what is wrong, where, and (when known) how to fix it."""

from __future__ import annotations

from pathlib import Path


class DualrecError(Exception):
    """Base class for errors with a message meant for a person, not a traceback."""


class DataFormatError(DualrecError, ValueError):
    """A data file is malformed. The message names the file and, where known, the line."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ModelUnavailableError(DualrecError):
    """A model file is missing, broken or does not fit the catalog; says how to rebuild it."""

    def __init__(self, what: str, problem: str, rebuild: str | None = None) -> None:
        self.what = what
        self.problem = problem
        self.rebuild = rebuild
        message = f"{what}: {problem}"
        if rebuild:
            message += f"\n  rebuild it with: {rebuild}"
        super().__init__(message)


class ModelMissingError(ModelUnavailableError):
    """The model file or package is not there at all (as opposed to present but damaged or mismatched):
    the app shows it as "missing" rather than "error", and the fix is to build or install it."""
