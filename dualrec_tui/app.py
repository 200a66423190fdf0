"""The dualrec Textual app: owns the watch log and the model hub, runs blocking work in thread workers.

Start-up paints the main screen first (the watch log is a small SQLite read), then loads the catalog,
the LSTM and the LLM in a background thread, reporting each step in the status line. Logging works
whatever fails to load. Tests inject a ready `ModelHub` (fake recommender) and a temp watch log.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.worker import get_current_worker

from .commands import DualrecCommands
from .config import Config
from .core.catalog import parse_title
from .core.errors import DualrecError
from .screens.main import MainScreen
from .services import ModelHub, Recommendation, RecStage

HISTORY_LIMIT = 500
LOCK_WAIT_SECONDS = 3.0  # single writes run on the UI thread: wait this long for another process's lock, then say so
MODEL_INPUT_LIMIT = 200  # newest catalog movies read for the models (the LSTM looks at 30, the prompt at 5)
MAX_REFRESH_ROUNDS = 3  # Ctrl+R rounds of "something different" before the list starts from the top again


class DualrecApp(App[None]):
    """Log what you watched; get LSTM picks at once and LLM suggestions as they stream."""

    CSS_PATH = "app.tcss"
    TITLE = "dualrec"
    SUB_TITLE = "movie log + recommendations"
    COMMANDS = App.COMMANDS | {DualrecCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", id="help", tooltip="This list of keys"),
        Binding("q", "quit", "Quit", show=False, id="quit_q", tooltip="Quit (when not typing in a text box)"),
        Binding("ctrl+f", "focus_search", "Search", show=False, id="focus_search", tooltip="Jump to the search box"),
        Binding("ctrl+r", "refresh", "Refresh", id="refresh", tooltip="New recommendations (varied when run again)"),
        Binding("ctrl+z", "undo", "Undo", show=False, id="undo", tooltip="Undo the last delete or 'not interested'"),
        Binding("f2", "settings", "Settings", id="settings", tooltip="Models folder, number of picks, LLM options"),
        Binding(
            "f3", "import_export", "Import", id="import_export", tooltip="Import / export: Letterboxd, IMDb, CSV, JSON"
        ),
        Binding("f4", "model_status", "Models", id="model_status", tooltip="What loaded, how to fix"),
        Binding(
            "ctrl+q", "quit", "Quit", show=False, id="quit", priority=True, tooltip="Leave dualrec (the log is saved)"
        ),
    ]

    class ModelsChanged(Message):
        """A model finished loading (or failed): repaint the status line, maybe recommend."""

        def __init__(self, step: str) -> None:
            super().__init__()
            self.step = step

    class SearchDone(Message):
        def __init__(self, query: str, movies: list[Any] | None) -> None:
            super().__init__()
            self.query = query
            self.movies = movies

    class RecsUpdated(Message):
        def __init__(self, stage: RecStage, run: int) -> None:
            super().__init__()
            self.stage = stage
            self.run = run

    def __init__(
        self,
        config: Config | None = None,
        *,
        hub: ModelHub | None = None,
        watchlog: Any = None,
        today: Callable[[], date] = date.today,
        config_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config or Config()
        self.config_file = config_file
        self.hub = hub or ModelHub(
            self.config.resolved_models_dir,
            n_recommendations=self.config.n_recommendations,
            llm_enabled=self.config.llm_enabled,
            gpu_layers=self.config.gpu_layers,
            threads=self.config.threads,
        )
        self.watchlog = watchlog
        self.log_problem = ""  # why the watch log cannot be used ("" = it can); shown instead of "nothing logged"
        self.today = today
        self.recs: list[Recommendation] = []
        self._lstm_recs: list[Recommendation] = []
        self._rec_run = 0
        self.models_loaded = threading.Event()  # set when the loader thread is done (tests wait on it)
        self._stop_loading = threading.Event()
        self.rec_stage = ""  # the last stage shown: "", "lstm", "llm", "final" (tests and benchmarks wait on it)
        self._tokens = 0
        self._query = ""
        self._undo: list[tuple[str, Any]] = []
        self._set_aside: set[int] = set()  # shown by earlier Ctrl+R rounds: "something different"
        self._refresh_rounds = 0  # ("delete", None) or ("hide", (movie_id, dataset, label))
        self.shown_query = ""  # the query whose results are on screen (benchmarks wait on it)
        self.theme = self.config.theme if self.config.theme in self.available_themes else "textual-dark"

    # ------------------------------------------------------------------ start-up
    @property
    def main(self) -> MainScreen:
        screen = self.get_screen("main")
        assert isinstance(screen, MainScreen)
        return screen

    async def on_mount(self) -> None:
        self.install_screen(MainScreen(), "main")
        await self.push_screen("main")
        self.main.show_status(self.hub.components)
        self.main.show_recommendations([], "", "Log a movie to get recommendations")
        # Paint first: opening the watch log imports sqlite-utils (~0.3 s) and the models take seconds.
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.open_watchlog()
        self.refresh_history()
        self.load_models()
        self._progress_timer = self.set_interval(1.0, self._show_progress)

    def _show_progress(self) -> None:
        """While models load, repaint the status line each second: a first-start step shows its progress."""
        progress = self.hub.progress
        self.main.show_status(self.hub.components, progress.describe() if progress is not None else None)
        if self.models_loaded.is_set():
            self._progress_timer.stop()
            # The status line may shrink from two lines to one: repaint everything, or the row it
            # gave back can keep its old text in some terminals (seen in tmux).
            self.refresh(layout=True)

    def open_watchlog(self) -> None:
        if self.watchlog is not None:
            return
        from .store import WatchLog

        try:
            self.watchlog = WatchLog.open(self.config.resolved_db_path, timeout=LOCK_WAIT_SECONDS)
        except DualrecError as exc:
            self.log_problem = str(exc)
            self.notify(f"{exc}", title="Watch log unavailable", severity="error", timeout=30)
            return
        read_only = getattr(self.watchlog, "read_only", "")
        if read_only:
            self.notify(
                f"{self.watchlog.path}: {read_only}. The history shows, but nothing can be logged or changed.",
                title="Watch log is read-only",
                severity="warning",
                timeout=30,
            )

    def _log_failed(self, exc: Exception, title: str) -> None:
        """A watch log operation failed: say why; the app and the log stay as they were."""
        self.notify(str(exc), title=title, severity="error", timeout=20)

    def load_models(self) -> None:
        """Load in a daemon thread, not a worker: quitting must not wait for torch or llama.cpp to finish
        loading (asyncio waits for its executor threads at exit)."""
        threading.Thread(target=self._load_models, name="dualrec-models", daemon=True).start()

    def _load_models(self) -> None:
        """Catalog, then LSTM, then LLM + re-ranker, each reported as soon as it is ready."""
        try:
            self._load_models_steps()
        except Exception as exc:  # a bug here must show in the status line, not print over the screen
            for component in self.hub.components.values():
                if component.state in ("waiting", "loading"):
                    component.state, component.problem = "error", f"{type(exc).__name__}: {exc}"
            self.post_message(self.ModelsChanged("llm"))
        finally:
            self.models_loaded.set()

    def _load_models_steps(self) -> None:
        hub = self.hub

        def start(*names: str) -> None:
            for name in names:
                if hub.components[name].state == "waiting":
                    hub.components[name].state = "loading"
            self.post_message(self.ModelsChanged("start"))

        if hub.catalog is None:
            start("catalog")
            hub.load_catalog()
        self.post_message(self.ModelsChanged("catalog"))
        if self._stop_loading.is_set():
            return
        if hub.lstm is None and hub.catalog is not None:
            start("lstm")
        hub.load_lstm()
        self.post_message(self.ModelsChanged("lstm"))
        if self._stop_loading.is_set():
            return
        if hub.pipeline is None:
            if hub.lstm is not None and hub.llm_enabled:
                start("llm", "rerank")
            hub.load_llm()
        self.post_message(self.ModelsChanged("llm"))

    def on_dualrec_app_models_changed(self, message: ModelsChanged) -> None:
        self.main.show_status(self.hub.components)
        if message.step == "catalog":
            self.refresh_history()
            if self._query:
                self.search(self._query)
            component = self.hub.components["catalog"]
            if not component.ok:
                self.notify(
                    f"{component.problem}\nRebuild: {component.rebuild}\nLogging free text still works.",
                    title="Catalog unavailable",
                    severity="error",
                    timeout=15,
                )
        elif message.step == "lstm":
            component = self.hub.components["lstm"]
            if component.ok:
                self.recommend()
            elif component.state not in ("waiting", "loading"):
                problem = "no trained LSTM found" if component.state == "missing" else component.problem
                logging = "Logging works." if self.watchlog is not None else "The watch log is unavailable too."
                self.main.show_recommendations(
                    [], "", f"No recommendations: {problem}.\nF4 shows how to rebuild it. {logging}"
                )
        elif message.step == "llm" and self.hub.pipeline is not None and self._history_size() > 0:
            self.recommend()
        elif message.step == "llm" and self.hub.lstm is not None and self._history_size() == 0:
            # Nothing logged: the LSTM's popular picks stay; say what the LLM will do, not "loading".
            llm = self.hub.components["llm"]
            if llm.state == "off":
                state = "Popular picks · LLM off"
            elif llm.ok:
                state = "Popular picks · log a movie and the LLM adds its suggestions"
            else:
                state = "Popular picks · LLM unavailable (F4 says why)"
            self.main.show_recs_state(state)

    # -------------------------------------------------------------------- search
    def search(self, query: str) -> None:
        self._query = query
        if not query.strip():
            self.main.show_results("", [])
            return
        self._search_worker(query)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search_worker(self, query: str) -> None:
        catalog = self.hub.catalog
        movies = catalog.search(query, limit=20) if catalog is not None else None
        if not get_current_worker().is_cancelled:
            self.post_message(self.SearchDone(query, movies))

    def on_dualrec_app_search_done(self, message: SearchDone) -> None:
        if message.query == self._query:
            self.main.show_results(message.query, message.movies)
            self.shown_query = message.query

    # ------------------------------------------------------------------- logging
    def _need_log(self, write: bool = True) -> bool:
        if self.watchlog is None:
            problem = self.log_problem or "it could not be opened"
            self.notify(f"The watch log is unavailable: {problem}", title="Watch log", severity="error", timeout=20)
            return False
        read_only = getattr(self.watchlog, "read_only", "")
        if write and read_only:
            self.notify(f"The watch log is read-only: {read_only}.", title="Not saved", severity="error")
            return False
        return True

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
        catalog = self.hub.catalog
        if catalog is None or not self._need_log():
            return
        movie = catalog[index]
        day = watched_on or self.today()
        if not confirmed and self._logged_on(index, day):
            from .screens.dialogs import ConfirmDialog

            def answer(choice: str | None) -> None:
                if choice == "again":
                    self.log_catalog_movie(index, rating, note, day, confirmed=True)

            self.push_screen(
                ConfirmDialog(
                    "Already logged that day",
                    f"{movie.label} is already in your log on {day.isoformat()}. Log another viewing?",
                    [("again", "Log again"), ("cancel", "Cancel")],
                ),
                callback=answer,
            )
            return
        try:
            entry = self.watchlog.add(movie, dataset=catalog.name, watched_on=day, rating=rating, note=note)
        except (ValueError, DualrecError) as exc:
            self.notify(str(exc), title="Not logged", severity="error")
            return
        self.main.clear_search()
        self.refresh_history(select_id=entry.id)
        self.notify(f"Logged {movie.label}. In the history, e adds a rating or note.", title="Watched")
        self.recommend()

    def _logged_on(self, index: int, day: date) -> bool:
        catalog = self.hub.catalog
        if catalog is None or self.watchlog is None:
            return False
        return any(e.watched_on == day and e.catalog_index(catalog) == index for e in self.watchlog.chronological())

    def action_log_free_text(self) -> None:
        """Log a title the catalog lacks: kept in the log, marked 'not in catalog', never model input."""
        if not self._need_log():
            return
        from .screens.dialogs import EntryDialog

        text = self.main.query_one("#search").value.strip()  # type: ignore[attr-defined]

        def done(result: Any) -> None:
            if result is None:
                return
            match = self._catalog_match(result.title)
            if match is not None:
                self._offer_catalog_match(match, result)
                return
            self._log_free_text(result)

        self.push_screen(
            EntryDialog("Log a movie not in the catalog", text, self.today(), title_editable=True, today=self.today()),
            callback=done,
        )

    def _catalog_match(self, title: str) -> Any:
        """The catalog movie a typed title names exactly (title + year, or a title only one movie has)."""
        catalog = self.hub.catalog
        if catalog is None or not title.strip():
            return None
        resolution = catalog.resolve(title, threshold=101.0)  # no fuzzy guesses: exact or same title only
        return resolution.movie if resolution.method in ("exact", "title") else None

    def _offer_catalog_match(self, movie: Any, result: Any) -> None:
        from .screens.dialogs import ConfirmDialog

        def answer(choice: str | None) -> None:
            if choice == "catalog":
                self.log_catalog_movie(movie.index, result.rating, result.note, result.watched_on)
            elif choice == "free":
                self._log_free_text(result)

        self.push_screen(
            ConfirmDialog(
                "This movie is in the catalog",
                f"“{result.title}” is {movie.label} ({movie.genre_text}) in the catalog. Logged as the catalog "
                "movie it counts for recommendations; logged as typed it does not.",
                [("catalog", f"Log {movie.label}"), ("free", "Log as typed"), ("cancel", "Cancel")],
            ),
            callback=answer,
        )

    def _log_free_text(self, result: Any) -> None:
        """Log a title as typed: kept, marked "not in catalog", never model input."""
        parsed = parse_title(result.title)
        try:
            entry = self.watchlog.add(
                parsed.title, year=parsed.year, watched_on=result.watched_on, rating=result.rating, note=result.note
            )
        except (ValueError, DualrecError) as exc:
            self.notify(str(exc), title="Not logged", severity="error")
            return
        self.main.clear_search()
        self.refresh_history(select_id=entry.id)
        self.notify(f"Logged {entry.label} (not in catalog).", title="Watched")

    def action_edit_entry(self) -> None:
        from .screens.dialogs import EntryDialog
        from .widgets.lists import HistoryList

        if not self._need_log():
            return
        entry_id = self.main.query_one(HistoryList).selected_entry_id
        try:
            entry = self.watchlog.get(entry_id) if entry_id is not None else None
        except DualrecError as exc:
            self._log_failed(exc, "Cannot edit")
            return
        if entry is None:
            self.notify("Select an entry in the history first.", severity="warning")
            return

        def save(result: Any, link: Any = None) -> None:
            fields: dict[str, Any] = {"watched_on": result.watched_on, "rating": result.rating, "note": result.note}
            fields.update(rewatch=result.rewatch, tags=result.tags)
            catalog = self.hub.catalog
            if link is not None and catalog is not None:
                fields.update(movie=link, dataset=catalog.name)
            elif not entry.in_catalog:
                parsed = parse_title(result.title)
                fields.update(movie=parsed.title, year=parsed.year)
            try:
                self.watchlog.update(entry.id, **fields)
            except (ValueError, DualrecError) as exc:
                self.notify(str(exc), title="Not saved", severity="error")
                return
            self.refresh_history(select_id=entry.id)  # the edited entry stays selected wherever it moved
            if link is not None:
                self.notify(f"{entry.label} is now {link.label}: it counts for recommendations.", title="Linked")
            if link is not None or result.watched_on != entry.watched_on:
                self.recommend()  # the model input changed

        def done(result: Any) -> None:
            if result is None:
                return
            match = None if entry.in_catalog else self._catalog_match(result.title)
            if match is None:
                save(result)
                return
            from .screens.dialogs import ConfirmDialog

            def answer(choice: str | None) -> None:
                if choice == "link":
                    save(result, match)
                elif choice == "keep":
                    save(result)

            self.push_screen(
                ConfirmDialog(
                    "Link to the catalog movie?",
                    f"“{result.title}” is {match.label} ({match.genre_text}) in the catalog. Linked, it counts for "
                    "recommendations.",
                    [("link", f"Link to {match.label}"), ("keep", "Keep as typed"), ("cancel", "Cancel")],
                ),
                callback=answer,
            )

        heading = "Edit entry" if entry.in_catalog else "Edit entry (not in catalog: a catalog title links it)"
        self.push_screen(
            EntryDialog(
                heading,
                entry.label,
                entry.watched_on,
                entry.rating,
                entry.note,
                title_editable=not entry.in_catalog,
                today=self.today(),
                rewatch=entry.rewatch,
                tags=entry.tags,
            ),
            callback=done,
        )

    def action_delete_entry(self) -> None:
        from .widgets.lists import HistoryList

        if not self._need_log():
            return
        entry_id = self.main.query_one(HistoryList).selected_entry_id
        if entry_id is None:
            self.notify("Select an entry in the history first.", severity="warning")
            return
        try:
            entry = self.watchlog.delete(entry_id)
        except DualrecError as exc:
            self._log_failed(exc, "Not deleted")
            return
        self._undo.append(("delete", None))
        self.refresh_history()
        self.notify(f"Deleted {entry.label}. Ctrl+Z brings it back.", title="Deleted")
        self.recommend()

    def action_undo(self) -> None:
        """Undo this session's last delete or "not interested"; with neither, the last delete on record."""
        if not self._need_log():
            return
        kind, payload = self._undo.pop() if self._undo else ("delete", None)
        if kind == "hide":
            movie_id, dataset, label = payload
            try:
                self.watchlog.remove_not_interested(movie_id, dataset)
            except DualrecError as exc:
                self._undo.append((kind, payload))
                self._log_failed(exc, "Not undone")
                return
            self.notify(f"{label} can be recommended again.", title="Undone")
            self.recommend()
            return
        try:
            entry = self.watchlog.undo_delete()
        except DualrecError as exc:
            self._log_failed(exc, "Not undone")
            return
        if entry is None:
            self.notify("Nothing to undo.", severity="warning")
            return
        self.refresh_history(select_id=entry.id)
        self.notify(f"Restored {entry.label}.", title="Undone")
        self.recommend()

    def refresh_history(self, select_first: bool = False, select_id: int | None = None) -> None:
        if self.watchlog is None:
            self.main.show_history([], 0, problem=self.log_problem or "the watch log is not open")
            return
        try:
            entries = self.watchlog.history(limit=HISTORY_LIMIT)
            total = self.watchlog.entry_count()
        except DualrecError as exc:
            self.main.show_history([], 0, problem=str(exc))
            return
        self.main.show_history(entries, total)
        from .widgets.lists import HistoryList

        history = self.main.query_one(HistoryList)
        if select_id is not None:
            position = next((i for i, e in enumerate(entries) if e.id == select_id), None)
            if position is not None:
                history.highlighted = position
        elif select_first and entries:
            history.highlighted = 0

    def _history_size(self) -> int:
        try:
            return self.watchlog.entry_count() if self.watchlog is not None else 0
        except DualrecError:
            return 0

    # ----------------------------------------------------------- recommendations
    def recommend(self, set_aside: frozenset[int] = frozenset()) -> None:
        """Start a new recommendation run (cancelling an older one).

        `set_aside`: movies shown by earlier Ctrl+R rounds, left out of this run only (any other
        reason to recommend, such as logging a movie, starts from the top again).
        """
        catalog = self.hub.catalog
        if catalog is None or self.hub.scorer is None or self.watchlog is None:
            return
        self._set_aside = set(set_aside)
        if not set_aside:
            self._refresh_rounds = 0
        self._rec_run += 1
        self._tokens = 0
        self.rec_stage = "running"
        self.main.show_recs_state("LSTM thinking…")
        self._recommend_worker(self._rec_run, catalog, frozenset(self._set_aside))

    @work(thread=True, exclusive=True, group="recommend", exit_on_error=False)
    def _recommend_worker(self, run: int, catalog: Any, set_aside: frozenset[int] = frozenset()) -> None:
        """Reads the model input here, not on the UI thread (a 100,000-entry log took seconds)."""
        worker = get_current_worker()

        def emit(stage: RecStage) -> None:
            self.post_message(self.RecsUpdated(stage, run))

        try:
            history = self.watchlog.model_input(catalog, last=MODEL_INPUT_LIMIT)
            exclude = self.watchlog.watched_indices(catalog) | self.watchlog.not_interested_indices(catalog)
            exclude |= set_aside  # Ctrl+R: movies shown by earlier rounds sit this one out
        except DualrecError as exc:
            emit(RecStage("final", (), note=f"cannot read the watch log: {exc}"))
            return
        try:
            self.hub.recommend(history, exclude, emit, lambda: worker.is_cancelled or run != self._rec_run)
        except Exception as exc:  # the panel says what broke; the app keeps running
            self.post_message(self.RecsUpdated(RecStage("final", tuple(self._lstm_recs), note=f"failed: {exc}"), run))

    def on_dualrec_app_recs_updated(self, message: RecsUpdated) -> None:
        if message.run != self._rec_run:
            return  # a newer run is under way
        stage = message.stage
        if stage.stage in ("lstm", "fused", "llm", "final"):
            self.rec_stage = stage.stage
        pipeline = self.hub.pipeline
        llm_on = pipeline is not None and (
            getattr(pipeline, "ranker", None) is not None or getattr(pipeline, "generator", None) is not None
        )
        candidates_mode = getattr(pipeline, "mode", "") == "candidates"
        first = "LSTM picks" if self.hub.lstm is not None else "Popular picks (LSTM unavailable, F4)"
        if stage.stage == "lstm":
            self._lstm_recs = list(stage.items)
            self.recs = list(stage.items)
            state = f"{first} · LLM thinking…" if llm_on else first
            self.main.show_recommendations(self.recs, state, "Nothing to recommend yet")
        elif stage.stage == "fused":
            self.recs = list(stage.items)
            state = "Ranked · the LLM is writing its picks…" if llm_on else "Ranked"
            self.main.show_recommendations(self.recs, state, "Nothing to recommend yet")
        elif stage.stage == "token":
            self._tokens += 1
            if self._tokens % 4 == 1:
                self.main.show_recs_state(f"{first} · LLM writing… ({self._tokens} tokens)")
        elif stage.stage == "llm":
            if candidates_mode:  # the list is already in its fused order: only say what the LLM picked
                picks = ", ".join(r.title for r in stage.items)
                self.main.show_recs_state(f"Ranked · the LLM picks {picks}…")
            else:
                seen = {r.index for r in self._lstm_recs}
                streamed = [r for r in stage.items if r.index not in seen]
                self.recs = self._lstm_recs + streamed
                self.main.show_recommendations(self.recs, f"{first} + {len(stage.items)} LLM suggestions…")
        elif stage.stage == "notice":
            self.notify(stage.note, title="Recommendations", severity="warning")
        elif stage.stage == "final":
            self.recs = list(stage.items)
            # what actually produced the order (the pipeline's own words); a missing LLM adds its note
            state = stage.summary or first
            if self.hub.lstm is None:  # popularity stood in for the LSTM: say so, never "LSTM"
                state = state.replace("LSTM order", "Popularity order")
            if stage.note and not llm_on:
                state += f" · {stage.note}"
            self.main.show_recommendations(self.recs, state, "Nothing to recommend yet")
            self.main.query_one("#recs-state").tooltip = stage.note or None

    def _selected_recommendation(self) -> Recommendation | None:
        from .widgets.lists import RecommendationList

        position = self.main.query_one(RecommendationList).selected_position
        if position is None or position >= len(self.recs):
            self.notify("Select a recommendation first.", severity="warning")
            return None
        return self.recs[position]

    def action_log_recommendation(self) -> None:
        rec = self._selected_recommendation()
        if rec is not None and rec.index is not None:
            self.log_catalog_movie(rec.index)

    def action_not_interested(self) -> None:
        rec = self._selected_recommendation()
        catalog = self.hub.catalog
        if rec is None or rec.index is None or catalog is None or not self._need_log():
            return
        movie = catalog[rec.index]
        try:
            self.watchlog.add_not_interested(movie, catalog.name)
        except DualrecError as exc:
            self._log_failed(exc, "Not hidden")
            return
        self._undo.append(("hide", (movie.movie_id, catalog.name, movie.label)))
        self.recs = [r for r in self.recs if r.index != rec.index]
        self._lstm_recs = [r for r in self._lstm_recs if r.index != rec.index]
        self.main.show_recommendations(self.recs, f"Hidden {rec.title} · Ctrl+Z undoes · palette: hidden movies")

    def action_hidden_movies(self) -> None:
        """The not-interested list, where a movie can be shown again."""
        if not self._need_log():
            return
        from .screens.hidden import HiddenMoviesScreen

        def done(lifted: int | None) -> None:
            if lifted:
                self.recommend()

        self.push_screen(HiddenMoviesScreen(self.watchlog), callback=done)

    def action_refresh(self) -> None:
        if self.hub.scorer is None:
            component = self.hub.components["lstm"]
            self.notify(f"LSTM {component.state}: {component.problem or 'not loaded yet'}", severity="warning")
            return
        # Variety: each Ctrl+R sets the movies on screen aside, so the next-best ones come up. After
        # MAX_REFRESH_ROUNDS (or when nothing is left) it starts from the top again.
        shown = {r.index for r in self.recs if r.index is not None}
        rounds = self._refresh_rounds
        if rounds >= MAX_REFRESH_ROUNDS or not shown:
            self._refresh_rounds = 0
            self.recommend()
            self.notify("Back to your top recommendations.", title="Refresh")
            return
        self._refresh_rounds = rounds + 1
        self.recommend(frozenset(self._set_aside | shown))
        self.notify(
            f"Something different: the {len(self._set_aside)} movies shown before are set aside "
            "(Ctrl+R again for more; logging a movie starts over).",
            title="Refresh",
        )

    # ----------------------------------------------------------- other screens
    def action_focus_search(self) -> None:
        self.main.query_one("#search").focus()

    def action_focus_results(self) -> None:
        from .widgets.lists import ResultList

        results = self.main.query_one(ResultList)
        if results.display and results.option_count:
            results.focus()

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_model_status(self) -> None:
        from .logs import current_log_file
        from .screens.status import ModelStatusScreen

        read_only = getattr(self.watchlog, "read_only", "")
        log = f"The watch log is read-only: {read_only}. Nothing can be logged." if read_only else ""
        log = log if self.watchlog is not None else f"The watch log is unavailable: {self.log_problem}"
        self.push_screen(
            ModelStatusScreen(self.hub.components, self.hub.models_dir, current_log_file(), log_problem=log)
        )

    def action_settings(self) -> None:
        from .config import config_path
        from .screens.settings import SettingsScreen

        path = self.config_file or config_path()
        try:
            file_config = Config.load(path, apply_env=False)
        except DualrecError as exc:
            self.notify(str(exc), title="Settings file", severity="error")
            file_config = Config()

        def done(saved: Config | None) -> None:
            if saved is None:
                return
            self.config = replace(
                self.config, n_recommendations=saved.n_recommendations, llm_enabled=saved.llm_enabled, theme=self.theme
            )
            self.hub.n_recommendations = saved.n_recommendations
            self.notify(f"Saved to {path}. Model changes apply after a restart.", title="Settings")
            self.recommend()

        self.push_screen(SettingsScreen(replace(file_config, theme=self.theme), path), callback=done)

    def _remember_theme(self) -> None:
        """A theme picked in the palette (Ctrl+P, "Change theme") is kept for the next start."""
        if self.theme == self.config.theme:
            return
        from .config import config_path

        path = self.config_file or config_path()
        with contextlib.suppress(DualrecError, OSError):  # a read-only config folder must not break quitting
            replace(Config.load(path, apply_env=False), theme=self.theme).save(path)

    def action_import_export(self) -> None:
        if not self._need_log():
            return
        from .screens.import_export import ImportExportScreen

        def done(imported: int | None) -> None:
            if imported:
                self.refresh_history()
                self.recommend()

        self.push_screen(ImportExportScreen(self.watchlog, self.hub.catalog), callback=done)

    def on_unmount(self) -> None:
        self._stop_loading.set()
        self._remember_theme()
        if self.watchlog is not None and hasattr(self.watchlog, "close"):
            self.watchlog.close()
