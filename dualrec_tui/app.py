"""The dualrec Textual app: wires the main screen to the watch log and the model hub.

Start-up paints the main screen first (the watch log is a small SQLite read), then `ModelHub.load_all`
loads the catalog, the LSTM and the LLM in a background thread, reporting each step. Screens post typed
messages; the app routes them: watch-log flows to `LogActions`, recommendation runs to a thread worker
whose `core.pipeline` events go, as they are, to the panel's view model (`RecsView`). Tests inject a
ready `ModelHub` (fake recommender) and a temp watch log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import BindingType
from textual.worker import get_current_worker

from . import launch_gc
from .bindings import APP_BINDINGS
from .commands import DualrecCommands
from .config import Config
from .core.errors import DualrecError
from .log_actions import LogActions
from .messages import ModelsChanged, Recommended, SearchDone, WatchLogOpened
from .recommending import RecommendationRuns
from .screens.main import MainScreen
from .services import FIRST_SEARCH_WAIT, ModelHub, State

if TYPE_CHECKING:
    from .core.pipeline import Recommendation
    from .screens.import_export import ImportExportScreen

LOCK_WAIT_SECONDS = 3.0  # single writes run on the UI thread: wait this long for another process's lock, then say so


class DualrecApp(App[None]):
    """Log what you watched; get LSTM picks at once and the LLM's as they come."""

    CSS_PATH = "app.tcss"
    TITLE = "dualrec"
    SUB_TITLE = "movie log + recommendations"
    COMMANDS = App.COMMANDS | {DualrecCommands}
    BINDINGS: ClassVar[list[BindingType]] = APP_BINDINGS

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
        self.hub = hub or ModelHub.from_config(self.config)
        self.today = today
        self.log_actions = LogActions(self, lambda: self.main, lambda: self.hub.catalog, self.recommend, today)
        self.log_actions.watchlog = watchlog
        self.models_loaded = threading.Event()  # set when the loader thread is done (tests wait on it)
        self._stop_loading = threading.Event()
        self._searched = threading.Event()  # the query typed while the catalog loaded is answered (or none)
        self._query = ""
        self.shown_query = ""  # the query whose results are on screen (benchmarks wait on it)
        self.runs = RecommendationRuns(self, self.hub, lambda: self.main, lambda: self.watchlog)
        self.theme = self.config.theme if self.config.theme in self.available_themes else "textual-dark"

    @property
    def watchlog(self) -> Any:
        return self.log_actions.watchlog

    def _shutting_down(self) -> bool:
        """The screens are gone: a report from the loader thread or a worker arrived during the exit
        (they are not waited for), and has nothing left to update."""
        return not self.is_screen_installed("main")

    @property
    def main(self) -> MainScreen:
        screen = self.get_screen("main")
        assert isinstance(screen, MainScreen)
        return screen

    # ------------------------------------------------------------------ start-up
    async def on_mount(self) -> None:
        self.install_screen(MainScreen(), "main")
        await self.push_screen("main")
        self.main.show_status(self.hub.components)
        self.main.show_recommendations([], "", "Log a movie to get recommendations")
        # Paint first: the watch log, the catalog and the models all load after the first frame.
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        if self.watchlog is None:
            self.log_actions.start_opening()
        self.log_actions.show_history()
        # A daemon thread, not a worker: quitting must not wait for torch or llama.cpp to finish loading.
        threading.Thread(target=self._load_models, name="dualrec-models", daemon=True).start()
        self._open_watchlog()
        self._progress_timer = self.set_interval(1.0, self._show_progress)

    @work(thread=True, group="watchlog", exit_on_error=False)
    def _open_watchlog(self) -> None:
        """Open the log off the UI thread: a log another program holds locked waits up to
        `LOCK_WAIT_SECONDS` without freezing the screen. A key that needs the log waits for it briefly.

        Opening an up-to-date log only reads; sqlite-utils (~0.1 s of imports, for writes) is imported here
        once the first query is answered, so neither the launch nor the first log pays for it."""
        if not self.log_actions.opening:
            return
        self.log_actions.open_in_background(self.config.resolved_db_path, LOCK_WAIT_SECONDS)
        if get_current_worker().is_cancelled:  # the app quit meanwhile
            self.log_actions.close()
            return
        self.post_message(WatchLogOpened())
        self._searched.wait(FIRST_SEARCH_WAIT)
        self.log_actions.prepare_writes()

    def on_watch_log_opened(self, message: WatchLogOpened) -> None:
        if self._shutting_down():
            return
        self.log_actions.adopt_opened()  # a key may have adopted it already (`LogActions.usable`)
        self.log_actions.show_history()
        if self.hub.pipeline is not None:
            self.recommend()
        elif not self.hub.components["lstm"].pending:  # the LSTM is known missing: say whether logging works
            self._show_no_lstm()

    def _load_models(self) -> None:
        try:
            self.hub.load_all(self._model_step_done, self._stop_loading, self._searched)
        finally:
            self.models_loaded.set()

    def _model_step_done(self, step: str) -> None:  # the loader thread's callback
        self.post_message(ModelsChanged(step))

    def _show_progress(self) -> None:
        """While models load, repaint the status line each second: a first-start step shows its progress."""
        progress = self.hub.progress
        self.main.show_status(self.hub.components, progress.describe() if progress is not None else None)
        if self.models_loaded.is_set():
            self._progress_timer.stop()
            self.refresh(layout=True)  # the status line may shrink: repaint the row it gave back (tmux)

    def on_models_changed(self, message: ModelsChanged) -> None:
        if self._shutting_down():
            return
        self.main.show_status(self.hub.components)
        catalog, lstm = self.hub.components["catalog"], self.hub.components["lstm"]
        if message.step == "catalog":
            self.log_actions.show_history()
            if self._query:
                self.search(self._query)  # answered from the catalog, it sets `_searched`: the LSTM loads then
            if not (self._query.strip() and catalog.ok):
                self._searched.set()  # no query for the LSTM load to wait for
                launch_gc.resume()
            if not catalog.ok:
                text = f"{catalog.problem}\nRebuild: {catalog.rebuild}\nLogging free text still works."
                self.notify(text, title="Catalog unavailable", severity="error", timeout=15)
        if message.step in ("lstm", "llm"):
            launch_gc.resume()  # at the latest: a first search that never answered must not keep it off
        if message.step in ("lstm", "llm") and self.hub.pipeline is not None:
            self.recommend()
        elif message.step == "lstm" and not lstm.pending:
            self._show_no_lstm()

    def _show_no_lstm(self) -> None:
        """Why there are no recommendations, and whether logging works (unsaid while the log is opening)."""
        lstm = self.hub.components["lstm"]
        problem = "no trained LSTM found" if lstm.state is State.MISSING else lstm.problem
        if self.log_actions.opening:
            logging = ""
        elif self.watchlog is not None:
            logging = " Logging works."
        else:
            logging = " The watch log is unavailable too."
        self.main.show_recommendations([], "", f"No recommendations: {problem}.\nF4 shows how to rebuild it.{logging}")

    # -------------------------------------------------------------------- search
    @on(MainScreen.SearchChanged)
    def _search_changed(self, message: MainScreen.SearchChanged) -> None:
        self.search(message.query)

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
            self.post_message(SearchDone(query, movies))

    def on_search_done(self, message: SearchDone) -> None:
        if self._shutting_down():
            return
        if message.query == self._query:
            self.main.show_results(message.query, message.movies, self.hub.components["catalog"].state)
            self.shown_query = message.query
        if message.movies is not None:  # answered from the catalog (None: not loaded yet)
            # Released once the answer is painted, not when it is found: the LSTM load that waits on
            # `_searched` is seconds of Python at 87k movies, and sharing the GIL with it held the
            # answer's frame back ~50 ms.
            self.call_after_refresh(self._first_answer_shown)

    def _first_answer_shown(self) -> None:
        self._searched.set()
        launch_gc.resume()

    # ------------------------------------------------------------ the watch log
    @on(MainScreen.LogMovie)
    def _log_movie(self, message: MainScreen.LogMovie) -> None:
        self.log_actions.log_catalog_movie(message.index)

    @on(MainScreen.LogFreeText)
    def action_log_free_text(self) -> None:
        self.log_actions.log_free_text()

    @on(MainScreen.EditEntry)
    def action_edit_entry(self) -> None:
        self.log_actions.edit()

    def action_delete_entry(self) -> None:
        self.log_actions.delete()

    def action_undo(self) -> None:
        self.log_actions.undo()

    def action_hidden_movies(self) -> None:
        self.log_actions.hidden_movies()

    def on_import_export_screen_show_hidden(self, message: ImportExportScreen.ShowHidden) -> None:
        """F3's "Hidden movies…" button: the same list as the palette's entry."""
        self.log_actions.hidden_movies()

    # ----------------------------------------------------------- recommendations
    @property
    def recs(self) -> list[Recommendation]:
        return self.runs.recs

    @property
    def rec_stage(self) -> str:
        return self.runs.stage

    def recommend(self) -> None:
        self.runs.start()

    def on_recommended(self, message: Recommended) -> None:
        if self._shutting_down():
            return
        self.runs.show(message)

    @on(MainScreen.LogRecommendation)
    def action_log_recommendation(self) -> None:
        if (rec := self.runs.selected()) is not None:
            self.log_actions.log_catalog_movie(rec.index)

    def action_not_interested(self) -> None:
        if (rec := self.runs.selected()) is not None and self.log_actions.hide(rec.movie):
            self.runs.drop(rec)

    def action_refresh(self) -> None:
        self.runs.refresh()

    # ----------------------------------------------------------- other screens
    def action_focus_search(self) -> None:
        self.main.query_one("#search").focus()

    def action_focus_results(self) -> None:
        results = self.main.query_one("#results")
        if results.display and results.option_count:  # type: ignore[attr-defined]
            results.focus()

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_model_status(self) -> None:
        from .logs import current_log_file
        from .screens.status import ModelStatusScreen

        log = self.log_actions.trouble()
        self.push_screen(ModelStatusScreen(self.hub.components, self.hub.models_dir, current_log_file(), log))

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
            if saved is not None:
                self.config = replace(
                    self.config, n_recommendations=saved.n_recommendations, llm_enabled=saved.llm_enabled
                )
                self.hub.n_recommendations = saved.n_recommendations
                self.notify(f"Saved to {path}. Model changes apply after a restart.", title="Settings")
                self.recommend()

        self.push_screen(SettingsScreen(replace(file_config, theme=self.theme), path), callback=done)

    def action_import_export(self) -> None:
        if not self.log_actions.usable():
            return
        from .screens.import_export import ImportExportScreen

        def done(imported: int | None) -> None:
            if imported:
                self.log_actions.show_history()
                self.recommend()

        self.push_screen(ImportExportScreen(self.watchlog, self.hub.catalog), callback=done)

    def on_unmount(self) -> None:
        self._stop_loading.set()
        self._searched.set()
        launch_gc.resume()
        if self.theme != self.config.theme:
            from .config import config_path, remember_theme

            remember_theme(self.config_file or config_path(), self.theme)
        self.log_actions.close()
