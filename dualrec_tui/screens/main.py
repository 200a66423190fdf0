"""The main screen: search + history on the left, recommendations on the right, model status below.

It is a view: it forwards what the user does to the app (which owns the watch log and the models)
and exposes small `show_*` methods the app calls with new data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, OptionList, Static

from ..core.catalog import Movie
from ..services import Component, Recommendation
from ..widgets.lists import HistoryList, RecommendationList, ResultList, SearchInput
from ..widgets.status import ModelStatus

if TYPE_CHECKING:
    from ..app import DualrecApp


class MainScreen(Screen[None]):
    """Search, log, history and recommendations in one place."""

    AUTO_FOCUS = "#search"

    @property
    def dualrec(self) -> DualrecApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(icon="▶")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield SearchInput(placeholder="Search a title · Enter logs it", id="search")
                yield ResultList(id="results")
                yield Label("History · newest first", id="history-title", classes="panel-title")
                yield HistoryList(id="history")
            with Vertical(id="right"):
                yield Label("Recommendations", id="recs-title", classes="panel-title")
                yield Static("", id="recs-state")
                yield RecommendationList(id="recs")
        yield ModelStatus(id="status")
        yield Footer(compact=True)  # compact: F1-F4 still fit at 80 columns

    def on_mount(self) -> None:
        self.query_one(ResultList).display = False
        self.query_one(HistoryList).border_title = None

    # ------------------------------------------------------------------ events
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.dualrec.search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        results = self.query_one(ResultList)
        if results.display and results.option_count and results.highlighted is not None:
            option = results.get_option_at_index(results.highlighted)
            if option.id is not None:
                self.dualrec.log_catalog_movie(int(option.id))
                return
        if event.value.strip():
            self.dualrec.action_log_free_text()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "results" and event.option.id is not None:
            self.dualrec.log_catalog_movie(int(event.option.id))
        elif event.option_list.id == "history":
            self.dualrec.action_edit_entry()
        elif event.option_list.id == "recs":
            self.dualrec.action_log_recommendation()

    # ------------------------------------------------------------ app -> view
    def show_results(self, query: str, movies: Sequence[Movie] | None) -> None:
        results = self.query_one(ResultList)
        results.display = bool(query.strip())
        if movies is None:
            state = self.dualrec.hub.components["catalog"].state
            if state in ("waiting", "loading"):
                results.show_message("Catalog not loaded yet: Ctrl+N logs the text as typed")
            else:
                results.show_message("No catalog (F4 says how to rebuild it): Ctrl+N logs the text as typed")
        elif not movies:
            results.show_message("No match in the catalog: Ctrl+N logs it as typed (not in catalog)")
        else:
            results.show_movies(movies)

    def clear_search(self) -> None:
        self.query_one(SearchInput).value = ""
        self.show_results("", [])

    def show_history(self, entries: Sequence[Any], total: int, problem: str = "") -> None:
        """`problem`: the watch log cannot be read; say so rather than "nothing logged yet"."""
        history = self.query_one(HistoryList)
        title = self.query_one("#history-title", Label)
        if problem:
            history.set_options([])
            history.border_title = None
            title.update("History · watch log unavailable (see the message; F4)")
            history.tooltip = problem
            return
        history.tooltip = None
        history.show_entries(entries)
        title.update(f"History · {total} watched · newest first" if total else "History · nothing logged yet")

    def show_recommendations(self, recs: Sequence[Recommendation], state: str, empty: str = "") -> None:
        self.query_one(RecommendationList).show_recommendations(recs, empty)
        self.query_one("#recs-state", Static).update(state)

    def show_recs_state(self, state: str) -> None:
        self.query_one("#recs-state", Static).update(state)

    def show_status(self, components: dict[str, Component], progress: str | None = None) -> None:
        self.query_one(ModelStatus).show(components, progress)
