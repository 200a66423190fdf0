"""Recommendation runs for the main screen: start one (cancelling the older one), run the pipeline in a
thread worker, and draw its typed events as they arrive.

A run reads the watch log in its worker (a 100,000-entry log took seconds on the UI thread), asks the
`ModelHub` for the pipeline's events and posts each back to the UI thread, where `RecsView` turns it
into what the panel shows. Runs are numbered, so the events of a cancelled run are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.worker import get_current_worker

from .messages import Recommended
from .services import ModelHub, State
from .widgets.rec_events import RecsView, RefreshRounds, failed_result

if TYPE_CHECKING:
    from textual.app import App

    from .core.pipeline import Recommendation
    from .screens.main import MainScreen

MODEL_INPUT_LIMIT = 200  # newest catalog movies read for the models (the LSTM looks at 30, the prompt at 5)


class RecommendationRuns:
    """The recommendations panel's runs: `recs` on screen, `stage` reached ("running", "lstm", "fused",
    "llm", "final"; tests and benchmarks wait on it)."""

    def __init__(self, app: App[Any], hub: ModelHub, main: Callable[[], MainScreen], watchlog: Callable[[], Any]):
        self.app, self.hub, self.main, self.watchlog = app, hub, main, watchlog
        self.recs: list[Recommendation] = []
        self.stage = ""
        self.run = 0
        self.variety = RefreshRounds()  # Ctrl+R: "something different"
        self._view: RecsView | None = None

    def start(self, set_aside: frozenset[int] = frozenset()) -> None:
        """A new run; `set_aside`: movies shown by earlier Ctrl+R rounds, left out of this run only."""
        catalog, pipeline = self.hub.catalog, self.hub.pipeline
        if catalog is None or pipeline is None or self.watchlog() is None:
            return
        if not set_aside:
            self.variety.reset()  # any other reason to recommend (a logged movie) starts from the top again
        self.run += 1
        self.stage = "running"
        llm = self.hub.components["llm"]
        status = {State.OFF: "LLM off", State.LOADING: "LLM loading…", State.WAITING: "LLM loading…"}.get(llm.state, "")
        if not self.hub.llm_on and not status:
            status = "LLM unavailable (F4 says why)"
        self._view = RecsView(self.hub.lstm is None, self.hub.llm_on, status, pipeline.describe)
        self.main().show_recs_state("LSTM thinking…")
        work = partial(self._work, self.run, catalog, set_aside)
        self.app.run_worker(work, thread=True, exclusive=True, group="recommend", exit_on_error=False)

    def _work(self, run: int, catalog: Any, set_aside: frozenset[int]) -> None:
        from .core.pipeline import FinalReady, Notice

        worker = get_current_worker()
        log = self.watchlog()
        try:
            history = log.model_input(catalog, last=MODEL_INPUT_LIMIT)
            exclude = log.watched_indices(catalog) | log.not_interested_indices(catalog) | set_aside
            emit = lambda event: self.app.post_message(Recommended(event, run))  # noqa: E731
            self.hub.recommend(history, exclude, emit, lambda: worker.is_cancelled or run != self.run)
        except Exception as exc:  # the panel says what broke; the app keeps running
            self.app.post_message(Recommended(Notice(f"Recommendations failed: {exc}"), run))
            self.app.post_message(Recommended(FinalReady(failed_result(self.recs, str(exc))), run))

    def show(self, message: Recommended) -> None:
        """Draw one event (UI thread); events of an older run are dropped."""
        if message.run != self.run or self._view is None:
            return
        update = self._view.apply(message.event)
        main = self.main()
        if update.notice:
            self.app.notify(update.notice, title="Recommendations", severity="warning")
        if update.recs is not None:
            self.recs = update.recs
            main.show_recommendations(self.recs, update.state or "", "Nothing to recommend yet")
        if update.state is not None:
            main.show_recs_state(update.state, update.tooltip)
        self.stage = update.stage or self.stage

    def selected(self) -> Recommendation | None:
        position = self.main().selected_recommendation
        if position is None or position >= len(self.recs):
            self.app.notify("Select a recommendation first.", severity="warning")
            return None
        return self.recs[position]

    def drop(self, rec: Recommendation) -> None:
        """Take a hidden pick off the list on screen (the next run leaves it out for good); once the run
        has ended, the next movie in its order takes the free place."""
        main = self.main()
        # the line still says what ordered the list, now marking a hidden LLM pick "(not listed)"
        update = self._view.hidden(rec.index) if self._view is not None else None
        if update is not None and update.recs is not None:
            self.recs = update.recs
        else:  # the run is still going: its final list will leave the movie out
            self.recs = [r for r in self.recs if r.index != rec.index]
        main.show_recommendations(self.recs, (update.state if update else None) or main.recs_state)
        self.app.notify(f"Hidden {rec.label} · Ctrl+Z undoes · palette: hidden movies")

    def refresh(self) -> None:
        """Ctrl+R: the next-best movies, for MAX rounds; then the top again."""
        if self.hub.pipeline is None:
            component = self.hub.components["lstm"]
            self.app.notify(f"LSTM {component.state}: {component.problem or 'not loaded yet'}", severity="warning")
            return
        set_aside = self.variety.next({r.index for r in self.recs})
        self.start(set_aside or frozenset())
        if set_aside is None:
            self.app.notify("Back to your top recommendations.", title="Refresh")
        else:
            text = f"Something different: the {len(set_aside)} movies shown before are set aside "
            self.app.notify(text + "(Ctrl+R again for more; logging a movie starts over).", title="Refresh")
