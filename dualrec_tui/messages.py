"""The messages worker threads post to the app (screens keep theirs on the screen class)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class ModelsChanged(Message):
    """A model finished loading (or failed): repaint the status line, maybe recommend."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step


class SearchDone(Message):
    """The catalog's answer to `query` (None: there is no catalog to search)."""

    def __init__(self, query: str, movies: list[Any] | None) -> None:
        super().__init__()
        self.query, self.movies = query, movies


class Recommended(Message):
    """One `core.pipeline` event of recommendation run `run`."""

    def __init__(self, event: Any, run: int) -> None:
        super().__init__()
        self.event, self.run = event, run


class WatchLogOpened(Message):
    """The watch log was opened off the UI thread (or could not be): `LogActions.adopt_opened` takes it."""
