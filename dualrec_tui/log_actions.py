"""What the user does to the watch log from the main screen: log, edit, delete, undo, hide.

Each action is a small dialog flow around one `WatchLog` call. Errors become messages in a toast or in
the dialog; the log is never left half-changed (the store writes each change in one transaction).
The app binds the keys and tells this object what happened; this object tells the app back through
`recommend()` when the model input changed; it redraws the history itself (`show_history`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.catalog import Catalog, Movie, parse_title
from .core.errors import DualrecError

HISTORY_LIMIT = 500  # newest entries drawn in the history
OPENING_WAIT_SECONDS = 1.0  # a key pressed while the watch log opens waits this long for it, then is refused

logger = logging.getLogger("dualrec")

if TYPE_CHECKING:
    from textual.app import App

    from .screens.main import MainScreen


class LogActions:
    """The watch log's dialog flows, with this session's undo stack (deletes and 'not interested')."""

    def __init__(
        self,
        app: App[Any],
        main: Callable[[], MainScreen],
        catalog: Callable[[], Catalog | None],
        recommend: Callable[[], None],
        today: Callable[[], date],
    ) -> None:
        self.app = app
        self.main = main
        self.catalog = catalog
        self.recommend = recommend
        self.today = today
        self.watchlog: Any = None
        self.problem = ""  # why the watch log cannot be used ("" = it can)
        self.opening = False  # a worker is opening the log (`open_in_background`); not yet adopted
        self._opened: tuple[Any, str] | None = None  # the worker's (log, problem), until adopted
        self._open_done = threading.Event()
        self.undo_stack: list[tuple[str, Any]] = []  # ("delete", None) or ("hide", (movie_id, dataset, label))

    # ------------------------------------------------------------------ checks
    def start_opening(self) -> None:
        """The log is about to be opened off the UI thread: say "opening", and let keys wait for it."""
        self.opening = True
        self._open_done.clear()

    def open_in_background(self, path: Path, timeout: float) -> None:
        """Open the log (any thread): importing sqlite-utils and waiting for a lock stay off the UI thread.

        Nothing here touches the screen; `adopt_opened` (UI thread) takes the result."""
        from .store import WatchLog

        try:
            self._opened = (WatchLog.open(path, timeout=timeout), "")
        except DualrecError as exc:
            self._opened = (None, str(exc))
        except Exception as exc:  # a bug or an OS error nobody foresaw: say so, never stay "opening" forever
            logger.exception("could not open the watch log %s", path)
            self._opened = (None, f"{path}: could not be opened ({type(exc).__name__}: {exc}); F4 shows the log file")
        finally:
            self._open_done.set()

    def adopt_opened(self) -> bool:
        """Take the opened log (UI thread) and say what is wrong with it; False when there was nothing new."""
        if self._opened is None:
            return False
        self.watchlog, self.problem = self._opened
        self._opened, self.opening = None, False
        if self.watchlog is None:
            self.app.notify(self.problem, title="Watch log unavailable", severity="error", timeout=30)
        elif read_only := getattr(self.watchlog, "read_only", ""):
            text = f"{self.watchlog.path}: {read_only}. The history shows, but nothing can be logged or changed."
            self.app.notify(text, title="Watch log is read-only", severity="warning", timeout=30)
        return True

    def prepare_writes(self) -> None:
        """Import what writing needs (sqlite-utils) now, off the UI thread, not on the first Enter."""
        opened = self._opened  # one read: the UI thread may adopt it meanwhile
        log = self.watchlog or (opened[0] if opened else None)
        _ = getattr(log, "db", None)  # the property imports sqlite-utils (a test's fake log may have none)

    def close(self) -> None:
        """Close the log, adopted or still waiting to be (the app is quitting)."""
        pending, self._opened = self._opened, None
        for log in (self.watchlog, pending[0] if pending else None):
            if log is not None and hasattr(log, "close"):
                log.close()

    def trouble(self) -> str:
        """What is wrong with the watch log, for the model-status screen ("" when nothing is)."""
        if self.watchlog is None and self.opening:
            return "The watch log is still opening (another program may be holding its lock)."
        if self.watchlog is None:
            return f"The watch log is unavailable: {self.problem}"
        read_only = getattr(self.watchlog, "read_only", "")
        return f"The watch log is read-only: {read_only}. Nothing can be logged." if read_only else ""

    def usable(self, write: bool = True) -> bool:
        """Whether the log can be read (and, with `write`, changed); says why not.

        A key pressed in the moment the log is still opening waits for it (briefly) instead of failing."""
        waited = self.watchlog is None and self.opening and self._open_done.wait(OPENING_WAIT_SECONDS)
        adopted = bool(waited) and self.adopt_opened()  # which says what is wrong with the log, if anything
        if adopted:
            self.show_history()
        if self.watchlog is None and self.opening:
            text = "The watch log is still opening (another program may be holding its lock). Try again in a moment."
            self.app.notify(text, title="Watch log", severity="warning")
            return False
        if self.watchlog is None:
            problem = self.problem or "it could not be opened"
            if not adopted:  # adopt_opened has just said it: once is enough
                text = f"The watch log is unavailable: {problem}"
                self.app.notify(text, title="Watch log", severity="error", timeout=20)
            return False
        read_only = getattr(self.watchlog, "read_only", "")
        if write and read_only:
            if not adopted:
                self.app.notify(f"The watch log is read-only: {read_only}.", title="Not saved", severity="error")
            return False
        return True

    def show_history(self, select_id: int | None = None) -> None:
        """Redraw the history (newest first); `select_id` stays under the cursor wherever it moved."""
        main = self.main()
        if self.watchlog is None:
            main.show_history([], 0, problem=self.problem or "the watch log is not open", opening=self.opening)
            return
        try:
            entries, total = self.watchlog.history(limit=HISTORY_LIMIT), self.watchlog.entry_count()
        except DualrecError as exc:
            main.show_history([], 0, problem=str(exc))
            return
        main.show_history(entries, total)
        if select_id is not None:
            main.select_history_entry(select_id)

    def _failed(self, exc: Exception, title: str) -> None:
        self.app.notify(str(exc), title=title, severity="error", timeout=20)

    def _confirm(self, heading: str, text: str, choices: list[tuple[str, str, Callable[[], Any] | None]]) -> None:
        """Ask with one button per choice (id, label, what it does; None = cancel); the first is the default."""
        from .screens.dialogs import ConfirmDialog

        actions = {choice: action for choice, _, action in choices}
        buttons = [(choice, label) for choice, label, _ in choices]

        def answer(choice: str | None) -> None:
            action = actions.get(choice or "")
            if action is not None:
                action()

        self.app.push_screen(ConfirmDialog(heading, text, buttons), callback=answer)

    # ------------------------------------------------------------------ logging
    def log_catalog_movie(
        self,
        index: int,
        rating: float | None = None,
        note: str | None = None,
        watched_on: date | None = None,
        *,
        confirmed: bool = False,
    ) -> None:
        """Log a catalog movie; a second viewing on the same day is asked about first (import skips those)."""
        catalog = self.catalog()
        if catalog is None or not self.usable():
            return
        movie = catalog[index]
        day = watched_on or self.today()
        if not confirmed and self._logged_on(catalog, index, day):
            self._confirm(
                "Already logged that day",
                f"{movie.label} is already in your log on {day.isoformat()}. Log another viewing?",
                [
                    ("again", "Log again", lambda: self.log_catalog_movie(index, rating, note, day, confirmed=True)),
                    ("cancel", "Cancel", None),
                ],
            )
            return
        try:
            entry = self.watchlog.add(movie, dataset=catalog.name, watched_on=day, rating=rating, note=note)
        except (ValueError, DualrecError) as exc:
            self.app.notify(str(exc), title="Not logged", severity="error")
            return
        self.main().clear_search()
        self.show_history(entry.id)
        self.app.notify(f"Logged {movie.label}. In the history, e adds a rating or note.", title="Watched")
        self.recommend()

    def _logged_on(self, catalog: Catalog, index: int, day: date) -> bool:
        return any(e.catalog_index(catalog) == index for e in self.watchlog.entries_on(day))

    def log_free_text(self) -> None:
        """Log a title the catalog lacks: kept in the log, marked 'not in catalog', never model input."""
        if not self.usable():
            return
        from .screens.dialogs import EntryDialog

        def done(result: Any) -> None:
            if result is None:
                return
            match = self._catalog_match(result.title)
            if match is None:
                self._log_as_typed(result)
                return
            self._confirm(
                "This movie is in the catalog",
                f"“{result.title}” is {match.label} ({match.genre_text}) in the catalog. Logged as the catalog "
                "movie it counts for recommendations; logged as typed it does not.",
                [
                    (
                        "catalog",
                        f"Log {match.label}",
                        lambda: self.log_catalog_movie(match.index, result.rating, result.note, result.watched_on),
                    ),
                    ("free", "Log as typed", lambda: self._log_as_typed(result)),
                    ("cancel", "Cancel", None),
                ],
            )

        today = self.today()
        text = self.main().search_text
        dialog = EntryDialog("Log a movie not in the catalog", text, today, title_editable=True, today=today)
        self.app.push_screen(dialog, callback=done)

    def _catalog_match(self, title: str) -> Movie | None:
        """The catalog movie a typed title names exactly (title + year, or a title only one movie has)."""
        catalog = self.catalog()
        if catalog is None or not title.strip():
            return None
        resolution = catalog.resolve(title, threshold=101.0)  # no fuzzy guesses: exact or same title only
        return resolution.movie if resolution.method in ("exact", "title") else None

    def _log_as_typed(self, result: Any) -> None:
        parsed = parse_title(result.title)
        try:
            entry = self.watchlog.add(
                parsed.title, year=parsed.year, watched_on=result.watched_on, rating=result.rating, note=result.note
            )
        except (ValueError, DualrecError) as exc:
            self.app.notify(str(exc), title="Not logged", severity="error")
            return
        self.main().clear_search()
        self.show_history(entry.id)
        self.app.notify(f"Logged {entry.label} (not in catalog).", title="Watched")

    # ------------------------------------------------------------------ editing
    def edit(self) -> None:
        """Edit the selected entry; a free-text entry whose new title names a catalog movie can be linked."""
        from .screens.dialogs import EntryDialog

        if not self.usable():
            return
        entry_id = self.main().selected_entry_id
        try:
            entry = self.watchlog.get(entry_id) if entry_id is not None else None
        except DualrecError as exc:
            self._failed(exc, "Cannot edit")
            return
        if entry is None:
            self.app.notify("Select an entry in the history first.", severity="warning")
            return

        def save(result: Any, link: Movie | None = None) -> None:
            fields: dict[str, Any] = {"watched_on": result.watched_on, "rating": result.rating, "note": result.note}
            fields.update(rewatch=result.rewatch, tags=result.tags)
            catalog = self.catalog()
            if link is not None and catalog is not None:
                fields.update(movie=link, dataset=catalog.name)
            elif not entry.in_catalog:
                parsed = parse_title(result.title)
                fields.update(movie=parsed.title, year=parsed.year)
            try:
                self.watchlog.update(entry.id, **fields)
            except (ValueError, DualrecError) as exc:
                self.app.notify(str(exc), title="Not saved", severity="error")
                return
            self.show_history(entry.id)  # the edited entry stays selected wherever it moved
            if link is not None:
                self.app.notify(f"{entry.label} is now {link.label}: it counts for recommendations.", title="Linked")
            if link is not None or result.watched_on != entry.watched_on:
                self.recommend()  # the model input changed

        def done(result: Any) -> None:
            if result is None:
                return
            match = None if entry.in_catalog else self._catalog_match(result.title)
            if match is None:
                save(result)
                return
            self._confirm(
                "Link to the catalog movie?",
                f"“{result.title}” is {match.label} ({match.genre_text}) in the catalog. Linked, it counts for "
                "recommendations.",
                [
                    ("link", f"Link to {match.label}", lambda: save(result, match)),
                    ("keep", "Keep as typed", lambda: save(result)),
                    ("cancel", "Cancel", None),
                ],
            )

        heading = "Edit entry" if entry.in_catalog else "Edit entry (not in catalog: a catalog title links it)"
        dialog = EntryDialog(
            heading,
            entry.label,
            entry.watched_on,
            entry.rating,
            entry.note,
            rewatch=entry.rewatch,
            tags=entry.tags,
            title_editable=not entry.in_catalog,
            today=self.today(),
        )
        self.app.push_screen(dialog, callback=done)

    def delete(self) -> None:
        if not self.usable():
            return
        entry_id = self.main().selected_entry_id
        if entry_id is None:
            self.app.notify("Select an entry in the history first.", severity="warning")
            return
        try:
            entry = self.watchlog.delete(entry_id)
        except DualrecError as exc:
            self._failed(exc, "Not deleted")
            return
        self.undo_stack.append(("delete", None))
        self.show_history(None)
        self.app.notify(f"Deleted {entry.label}. Ctrl+Z brings it back.", title="Deleted")
        self.recommend()

    def undo(self) -> None:
        """Undo this session's last delete or "not interested"; with neither, the last delete on record."""
        if not self.usable():
            return
        kind, payload = self.undo_stack.pop() if self.undo_stack else ("delete", None)
        if kind == "hide":
            movie_id, dataset, label = payload
            try:
                self.watchlog.remove_not_interested(movie_id, dataset)
            except DualrecError as exc:
                self.undo_stack.append((kind, payload))
                self._failed(exc, "Not undone")
                return
            self.app.notify(f"{label} can be recommended again.", title="Undone")
            self.recommend()
            return
        try:
            entry = self.watchlog.undo_delete()
        except DualrecError as exc:
            self._failed(exc, "Not undone")
            return
        if entry is None:
            self.app.notify("Nothing to undo.", severity="warning")
            return
        self.show_history(entry.id)
        self.app.notify(f"Restored {entry.label}.", title="Undone")
        self.recommend()

    def hide(self, movie: Movie) -> bool:
        """'Not interested': never recommend `movie` again (Ctrl+Z undoes). True when it was hidden."""
        catalog = self.catalog()
        if catalog is None or not self.usable():
            return False
        try:
            self.watchlog.add_not_interested(movie, catalog.name)
        except DualrecError as exc:
            self._failed(exc, "Not hidden")
            return False
        self.undo_stack.append(("hide", (movie.movie_id, catalog.name, movie.label)))
        return True

    def hidden_movies(self) -> None:
        """The not-interested list, where a movie can be shown again."""
        if not self.usable():
            return
        from .screens.hidden import HiddenMoviesScreen

        self.app.push_screen(HiddenMoviesScreen(self.watchlog), callback=lambda lifted: lifted and self.recommend())
