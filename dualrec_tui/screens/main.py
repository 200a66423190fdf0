"""The main screen: search + history on the left, recommendations on the right, model status below.

It is a view: what the user does goes up to the app as typed messages (the app owns the watch log and
the models), and the app calls small `show_*` methods with new data. It never imports the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Label, OptionList, Static

from ..core.catalog import Movie
from ..services import Component, State
from ..widgets.footer import KeyFooter
from ..widgets.lists import HistoryList, RecommendationList, ResultList, SearchInput
from ..widgets.status import ModelStatus

if TYPE_CHECKING:
    from ..core.pipeline import Recommendation


class MainScreen(Screen[None]):
    """Search, log, history and recommendations in one place."""

    AUTO_FOCUS = "#search"
    _history_shown: tuple[Any, ...] | None = None  # what show_history drew last

    class SearchChanged(Message):
        """The search box text changed."""

        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    class LogMovie(Message):
        """Log this catalog movie as watched today."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class LogFreeText(Message):
        """Log the search text as a movie the catalog lacks (after a dialog)."""

    class EditEntry(Message):
        """Edit the history entry under the cursor."""

    class LogRecommendation(Message):
        """Log the recommendation under the cursor."""

    recs_state = ""  # what the line above the recommendations says now (kept when a pick is hidden)

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
        yield KeyFooter(compact=True)  # compact: F1-F4 still fit at 80 columns

    def on_mount(self) -> None:
        self.query_one(ResultList).display = False
        self.query_one(HistoryList).border_title = None

    # ------------------------------------------------------------------ events
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.post_message(self.SearchChanged(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        results = self.query_one(ResultList)
        if results.display and results.option_count and results.highlighted is not None:
            option = results.get_option_at_index(results.highlighted)
            if option.id is not None:
                self.post_message(self.LogMovie(int(option.id)))
                return
        if event.value.strip():
            self.post_message(self.LogFreeText())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "results" and event.option.id is not None:
            self.post_message(self.LogMovie(int(event.option.id)))
        elif event.option_list.id == "history":
            self.post_message(self.EditEntry())
        elif event.option_list.id == "recs":
            self.post_message(self.LogRecommendation())

    # ------------------------------------------------------------ app -> view
    @property
    def search_text(self) -> str:
        return self.query_one(SearchInput).value.strip()

    def show_results(self, query: str, movies: Sequence[Movie] | None, catalog: State = State.READY) -> None:
        """`movies` None: no catalog to search; `catalog` says whether one is still coming."""
        results = self.query_one(ResultList)
        results.display = bool(query.strip())
        if movies is None:
            if catalog in (State.WAITING, State.LOADING):
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

    def show_history(self, entries: Sequence[Any], total: int, problem: str = "", opening: bool = False) -> None:
        """`problem`: the watch log cannot be read; say so rather than "nothing logged yet".
        `opening`: it is still being opened (moments after launch): nothing is known yet.
        The same history again redraws nothing (a launch asks three times, while the catalog loads)."""
        shown = (tuple(entries), total, problem, opening)
        if shown == self._history_shown:
            return
        self._history_shown = shown
        history = self.query_one(HistoryList)
        title = self.query_one("#history-title", Label)
        if opening or problem:
            history.set_options([])
            history.border_title = None
            opening_text = "History · opening the watch log…"
            title.update(opening_text if opening else "History · watch log unavailable (see the message; F4)")
            history.tooltip = None if opening else problem
            return
        history.tooltip = None
        history.show_entries(entries)
        title.update(f"History · {total} watched · newest first" if total else "History · nothing logged yet")

    def show_recommendations(self, recs: Sequence[Recommendation], state: str, empty: str = "") -> None:
        self.query_one(RecommendationList).show_recommendations(recs, empty)
        self.query_one("#recs-state", Static).update(state)
        self.recs_state = state

    def show_recs_state(self, state: str, tooltip: str | None = None) -> None:
        recs_state = self.query_one("#recs-state", Static)
        recs_state.update(state)
        recs_state.tooltip = tooltip
        self.recs_state = state

    def select_history_entry(self, entry_id: int) -> None:
        """Keep an entry under the cursor after the history was redrawn (it may have moved)."""
        history = self.query_one(HistoryList)
        position = history.position_of(entry_id)
        if position is not None:
            history.highlighted = position

    @property
    def selected_entry_id(self) -> int | None:
        return self.query_one(HistoryList).selected_entry_id

    @property
    def selected_recommendation(self) -> int | None:
        """The position of the highlighted recommendation."""
        return self.query_one(RecommendationList).selected_position

    def show_status(self, components: dict[str, Component], progress: str | None = None) -> None:
        # query, not query_one: the app's progress timer may tick while the screen is torn down at exit
        for status in self.query(ModelStatus):
            status.show(components, progress)
