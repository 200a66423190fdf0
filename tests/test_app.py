"""Pilot tests of the dualrec TUI: search -> log -> recommend, edit, delete/undo, import, missing models."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest

from dualrec_tui.app import DualrecApp
from dualrec_tui.commands import ACTIONS
from dualrec_tui.config import Config
from dualrec_tui.core.artifacts import models_dir
from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.errors import DataFormatError
from dualrec_tui.services import ModelHub
from dualrec_tui.widgets.lists import HistoryList, RecommendationList, ResultList
from tests.tui_support import TODAY, FakeLstm, make_app, make_hub, settle, small_catalog

SIZE = (100, 30)


def run_async(test):
    """Run an async test with asyncio.run (no pytest async plugin needed); fixtures still apply."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[c if c != " " else "space" for c in text])


async def wait_for_results(app, pilot, query: str, seconds: float = 2.0) -> None:
    """Wait (up to `seconds`) until the result list shows the answer to `query`; a slow machine needs longer."""
    for _ in range(int(seconds / 0.01)):
        if app.shown_query == query:
            return
        await pilot.pause(0.01)


@run_async
async def test_search_log_recommend_streams_lstm_then_llm(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.focused is not None and app.focused.id == "search"
        await type_text(pilot, "matrx")  # typo on purpose: fuzzy search
        await settle(app, pilot)
        results = app.main.query_one(ResultList)
        assert results.display
        first = results.get_option_at_index(0)
        assert app.hub.catalog[int(first.id)].title == "The Matrix"
        await pilot.press("enter")
        await settle(app, pilot)
        entries = app.watchlog.history()
        assert [(e.title, e.year, e.watched_on) for e in entries] == [("The Matrix", 1999, TODAY)]
        assert app.rec_stage == "final"
        titles = [r.label for r in app.recs]
        assert "The Matrix (1999)" not in titles  # never recommend what was watched
        assert len(app.recs) == app.hub.n_recommendations
        # the fake LLM prefers short titles: with its fusion weight they climb, and their tags say so
        result = app.hub.pipeline.recommend(app.watchlog.model_input(app.hub.catalog), app.hub.n_recommendations)
        assert [r.label for r in app.recs] == [r.movie.label for r in result.recommendations]  # fused order
        assert result.stages["reordered"] and any("llm" in r.signals for r in app.recs)
        for rec in app.recs:
            assert rec.signals and set(rec.signals) <= {"lstm", "llm", "sim"}
        assert all(r.why for r in app.recs)
        assert app.main.query_one(RecommendationList).option_count == len(app.recs)
        state = str(app.main.query_one("#recs-state").render())
        assert "re-ordered by the LLM" in state and "re-ranked" not in state


def test_hub_emits_lstm_then_the_fused_list_then_the_llm_picks(tmp_path: Path) -> None:
    from dualrec_tui.core.pipeline import FinalReady, FusedReady, LlmSuggestion, LstmReady

    hub = make_hub(tmp_path)
    events = []
    matrix = hub.catalog.resolve("The Matrix (1999)").movie.index
    hub.recommend([matrix], {matrix}, events.append, lambda: False)
    kinds = [type(e).__name__ for e in events]
    assert isinstance(events[0], LstmReady) and isinstance(events[1], FusedReady) and isinstance(events[-1], FinalReady)
    first_pick = kinds.index("LlmSuggestion")
    assert kinds.index("FusedReady") < first_pick < kinds.index("FinalReady")  # list on screen before it writes
    picks = [e for e in events if isinstance(e, LlmSuggestion)]
    assert len(picks) == 3 and all(p.status == "kept" for p in picks)  # the written picks, one at a time
    fused, final = events[1], events[-1]
    assert [r.index for r in final.result.recommendations] == [r.index for r in fused.recommendations]
    assert "LLM's picks:" in hub.pipeline.describe(final.result)


def test_hub_stops_a_cancelled_run(tmp_path: Path) -> None:
    hub = make_hub(tmp_path)
    events = []
    hub.recommend([0], set(), events.append, lambda: bool(events))
    assert [type(e).__name__ for e in events] == ["LstmReady"]
    assert not hub._lock.locked()


@run_async
async def test_delete_and_undo(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for query in ("heat", "jumanji"):
            await type_text(pilot, query)
            await settle(app, pilot)
            await pilot.press("enter")
            await settle(app, pilot)
        assert [e.title for e in app.watchlog.history()] == ["Jumanji", "Heat"]  # same day: newest first
        app.main.query_one(HistoryList).focus()
        await pilot.press("d")
        await settle(app, pilot)
        assert [e.title for e in app.watchlog.history()] == ["Heat"]
        jumanji = app.hub.catalog.resolve("Jumanji (1995)").movie.index
        assert jumanji not in app.watchlog.model_input(app.hub.catalog)
        await pilot.press("ctrl+z")
        await settle(app, pilot)
        assert [e.title for e in app.watchlog.history()] == ["Jumanji", "Heat"]
        assert app.main.query_one(HistoryList).option_count == 2
        await pilot.press("ctrl+z")  # nothing left to undo: a warning, no change
        await settle(app, pilot)
        assert len(app.watchlog.history()) == 2


@run_async
async def test_edit_rating_note_and_date(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "heat")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        app.main.query_one(HistoryList).focus()
        await pilot.press("e")
        await settle(app, pilot)
        await type_text(pilot, "9")  # rating field is focused: an invalid rating first
        await pilot.press("enter")
        await settle(app, pilot)
        assert "out of range" in str(app.screen.query_one("#error").render())
        await pilot.press("backspace")
        await type_text(pilot, "4.5")
        app.screen.query_one("#date").value = "2024-04-20"
        app.screen.query_one("#note").value = "cinema"
        await pilot.press("enter")
        await settle(app, pilot)
        entry = app.watchlog.history()[0]
        assert (entry.rating, entry.note, entry.watched_on) == (4.5, "cinema", date(2024, 4, 20))


@run_async
async def test_free_text_entry_is_kept_and_marked(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "Grandma home video (2019)")
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        entry = app.watchlog.history()[0]
        assert (entry.title, entry.year, entry.in_catalog) == ("Grandma home video", 2019, False)
        prompt = str(app.main.query_one(HistoryList).get_option_at_index(0).prompt)
        assert "not in catalog" in prompt


@run_async
async def test_not_interested_is_remembered(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        first = app.recs[0]
        state = str(app.main.query_one("#recs-state").render())
        app.main.query_one(RecommendationList).focus()
        await pilot.press("n")
        await settle(app, pilot)
        assert first.index in app.watchlog.not_interested_indices(app.hub.catalog)
        assert first.index not in [r.index for r in app.recs]
        # the line above the list still says what ordered it; the hide (and its undo key) is a notification
        assert str(app.main.query_one("#recs-state").render()) == state
        assert any(f"Hidden {first.label}" in str(n.message) for n in app._notifications)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert app.rec_stage == "final" and first.index not in [r.index for r in app.recs]
        await pilot.press("w")  # log the highlighted recommendation as watched
        await settle(app, pilot)
        assert len(app.watchlog.history()) == 1


def test_rating_messages_say_what_is_wrong() -> None:
    from dualrec_tui.screens.dialogs import parse_rating

    assert [parse_rating(t) for t in ("", "4", "3.5", "4/5", " 0.5 ")] == [None, 4.0, 3.5, 4.0, 0.5]
    with pytest.raises(ValueError, match=r"4\.7 is not a half step .*e\.g\. 4\.5"):
        parse_rating("4.7")
    with pytest.raises(ValueError, match="out of range"):
        parse_rating("9")
    with pytest.raises(ValueError, match="not a number"):
        parse_rating("A")


@run_async
async def test_import_preview_commit_and_abort(tmp_path: Path) -> None:
    source = tmp_path / "mine.csv"
    source.write_text(
        "title,year,date,rating\nHeat,1995,2023-01-02,4\nThe Matrix,1999,2023-02-03,5\nNo Such Film,2001,2023-03-04,\n",
        encoding="utf-8",
    )
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#import-path").value = str(source)
        await pilot.click("#preview")
        await settle(app, pilot)
        text = str(screen.query_one("#preview-text").render())
        assert "matched 2" in text and "unmatched 1" in text
        await pilot.click("#abort")
        await settle(app, pilot)
        assert app.watchlog.history() == []
        await pilot.click("#preview")
        await settle(app, pilot)
        await pilot.click("#commit")
        await settle(app, pilot)
        assert "Imported 3 entries (1 as free text); 0 were already logged." in str(
            screen.query_one("#preview-text").render()
        )
        export = tmp_path / "out.json"
        screen.query_one("#export-path").value = str(export)
        await pilot.click("#export-json")
        await settle(app, pilot)
        assert len(json.loads(export.read_text(encoding="utf-8"))["entries"]) == 3
        screen.start_preview()  # the same file again: the preview names what is already logged
        await settle(app, pilot)
        text = str(screen.query_one("#preview-text").render())
        assert "already logged (left as they are): Heat (1995), The Matrix (1999), No Such Film (2001)" in text
        assert "Commit adds 0 entries" in text
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.main.query_one(HistoryList).option_count == 3
        assert app.rec_stage == "final"


@run_async
async def test_missing_lstm_shows_rebuild_command_and_logging_works(tmp_path: Path) -> None:
    app = make_app(tmp_path, lstm=False)  # the hub must load models/lstm from an empty folder
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        lstm = app.hub.components["lstm"]
        assert lstm.state in ("missing", "error") and "training lstm" in (lstm.rebuild or "")
        status = str(app.main.query_one("#status").render())
        assert "LSTM ✗" in status and "F4" in status  # the command is in F4, the status line stays short
        await type_text(pilot, "heat")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert [e.title for e in app.watchlog.history()] == ["Heat"]
        await pilot.press("f4")
        await settle(app, pilot)
        assert "fix: python -m training lstm" in " ".join(str(w.render()) for w in app.screen.query(".model-fix"))


@run_async
async def test_search_and_log_on_a_catalog_read_from_its_disk_cache(tmp_path: Path, monkeypatch) -> None:
    """A big catalog's later launches read its columns and search index from cache_dir() and make movies
    lazily (issue #13): a query typed at once is answered when the catalog loads, and Enter logs the movie."""
    from dualrec_tui.core import catalog as catalog_module
    from dualrec_tui.core import catalog_columns

    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(catalog_columns, "CATALOG_DISK_CACHE_MIN_BYTES", 0)  # every catalog counts as big
    monkeypatch.setattr(catalog_module, "SEARCH_INDEX_DISK_CACHE_MIN", 0)
    (tmp_path / "models").mkdir()
    small_catalog().to_json(tmp_path / "models" / "catalog.json")
    _ = Catalog.from_json(tmp_path / "models" / "catalog.json")._search_index  # the first launch writes both
    assert len(list((tmp_path / "cache").glob("*/*.npz"))) == 2
    config = Config(db_path=tmp_path / "log.db", models_dir=tmp_path / "models", llm_enabled=False)
    app = DualrecApp(config, today=lambda: TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "matrx")  # typed right away: maybe before the catalog or the watch log is ready
        await settle(app, pilot)
        catalog = app.hub.catalog
        assert catalog is not None and catalog._columns is not None  # read from the cache, not parsed
        results = app.main.query_one(ResultList)
        assert results.display and app.shown_query == "matrx"
        assert catalog[int(results.get_option_at_index(0).id)].label == "The Matrix (1999)"
        await pilot.press("enter")
        await settle(app, pilot)
        entries = app.watchlog.history()
        assert [(e.title, e.year, e.movie_id, e.genres) for e in entries] == [
            ("The Matrix", 1999, 2571, ("Action", "Sci-Fi", "Thriller"))
        ]


class _SlowCatalogHub(ModelHub):
    """The catalog loads when the test says so; the LSTM step notes whether the first search was answered."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.lstm_began: list[bool] = []
        self.app: DualrecApp | None = None
        self.broken_search = False

    def load_catalog(self):
        self.release.wait(30)
        catalog = super().load_catalog()
        if catalog is not None and self.broken_search:
            catalog.search = _broken_search  # type: ignore[method-assign]
        return catalog

    def load_lstm(self):
        assert self.app is not None
        self.lstm_began.append(self.app._searched.is_set())  # set only by a search answered from the catalog
        return super().load_lstm()


def _broken_search(query: str, limit: int = 20) -> list:
    raise RuntimeError("search index broken")


def _slow_app(tmp_path: Path) -> tuple[DualrecApp, _SlowCatalogHub]:
    (tmp_path / "models").mkdir()
    small_catalog().to_json(tmp_path / "models" / "catalog.json")
    hub = _SlowCatalogHub(tmp_path / "models", n_recommendations=5, llm_enabled=False)
    config = Config(db_path=tmp_path / "log.db", models_dir=tmp_path / "models", llm_enabled=False)
    hub.app = DualrecApp(config, hub=hub, today=lambda: TODAY)
    return hub.app, hub


@run_async
async def test_lstm_load_waits_for_the_query_typed_while_the_catalog_loaded(tmp_path: Path) -> None:
    """At 87k movies the LSTM load is seconds of Python under one GIL: it starts once the first query is
    answered on screen, so that answer is not slowed down (issue #13)."""
    app, hub = _slow_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "matrx")  # before the catalog: the box says it is not loaded yet
        await pilot.pause(0.1)
        assert not app._searched.is_set()
        hub.release.set()
        await settle(app, pilot)
        assert hub.lstm_began == [True]  # the answer was on screen before the LSTM load began
        results = app.main.query_one(ResultList)
        assert results.display and app.hub.catalog[int(results.get_option_at_index(0).id)].title == "The Matrix"
        assert app.hub.components["lstm"].state == "missing"


@run_async
async def test_lstm_load_does_not_wait_without_a_query(tmp_path: Path) -> None:
    app, hub = _slow_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        hub.release.set()
        await settle(app, pilot)
        assert hub.lstm_began == [True]


@run_async
async def test_lstm_still_loads_when_the_first_search_fails(tmp_path: Path, monkeypatch) -> None:
    import gc

    from dualrec_tui import launch_gc, services

    monkeypatch.setattr(services, "FIRST_SEARCH_WAIT", 0.05)
    app, hub = _slow_app(tmp_path)
    hub.broken_search = True
    launch_gc.pause()  # as the entry point does
    try:
        async with app.run_test(size=SIZE) as pilot:
            await type_text(pilot, "matrx")
            hub.release.set()
            await settle(app, pilot)
            assert hub.lstm_began == [False]  # no answer came: the LSTM loaded after the short wait
            assert app.hub.components["lstm"].state == "missing" and app.models_loaded.is_set()
            assert gc.isenabled()  # no first answer either: the collector is back on once the LSTM step ends
    finally:
        gc.enable()
        gc.unfreeze()


def _slow_watchlog(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """`WatchLog.open` blocks (like a log another program holds locked) until the test releases it."""
    from dualrec_tui.store import db

    began, release = threading.Event(), threading.Event()
    real_open = db.WatchLog.open.__func__

    def slow_open(cls, *args, **kwargs):
        began.set()
        release.wait(30)
        return real_open(cls, *args, **kwargs)

    monkeypatch.setattr(db.WatchLog, "open", classmethod(slow_open))
    return began, release


def _history_title(app: DualrecApp) -> str:
    return str(app.main.query_one("#history-title").render())


@run_async
async def test_a_slow_watch_log_does_not_hold_up_search_and_a_quick_enter_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log opens in a thread worker: while it waits (a lock, a slow disk) the screen searches; a result
    picked before it is open is logged once it is, not refused."""
    app, hub = _slow_app(tmp_path)
    began, release = _slow_watchlog(monkeypatch)
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "matrx")
        assert "opening the watch log" in _history_title(app)
        hub.release.set()  # the catalog loads and answers "matrx" while the log is still opening
        await wait_for_results(app, pilot, "matrx")
        assert app.shown_query == "matrx" and began.is_set() and app.watchlog is None
        threading.Timer(0.3, release.set).start()  # the log opens while Enter waits for it
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert [(e.title, e.year) for e in app.watchlog.history()] == [("The Matrix", 1999)]
        assert "1 watched" in _history_title(app)


@pytest.mark.parametrize("failure", ["foreign", "unforeseen"])
@run_async
async def test_a_key_that_waits_for_a_log_that_fails_to_open_is_told_why_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """Enter waits for the opening log; the open fails meanwhile: one notice with the reason, not two.
    An exception nobody foresaw is reported the same way (the log never stays "opening" for good)."""
    from dualrec_tui.store import db
    from dualrec_tui.store.migrations import WatchLogError

    app, hub = _slow_app(tmp_path)
    key_waits = threading.Event()

    class SaysWhenAKeyWaits(threading.Event):
        def wait(self, timeout=None):
            key_waits.set()
            return super().wait(timeout)

    app.log_actions._open_done = SaysWhenAKeyWaits()  # only a key (LogActions.usable) waits on it

    def failing_open(cls, *args, **kwargs):
        key_waits.wait(30)  # fail while Enter waits for the log, however slow the machine
        if failure == "foreign":
            raise WatchLogError("log.db: another program's SQLite database (tables: photos). It was not changed")
        raise OSError(5, "Input/output error: photos")

    monkeypatch.setattr(db.WatchLog, "open", classmethod(failing_open))
    hub.release.set()
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "matrx")
        await wait_for_results(app, pilot, "matrx")
        await pilot.press("down", "enter")
        await settle(app, pilot)
        about_log = [str(n.message) for n in app._notifications if "photos" in str(n.message)]
        assert len(about_log) == 1 and app.watchlog is None and not app.log_actions.opening
        assert "unavailable" in _history_title(app)


@run_async
async def test_a_watch_log_that_stays_locked_refuses_a_log_with_a_reason_then_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dualrec_tui import log_actions

    monkeypatch.setattr(log_actions, "OPENING_WAIT_SECONDS", 0.05)
    app, hub = _slow_app(tmp_path)
    _, release = _slow_watchlog(monkeypatch)
    hub.release.set()
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "matrx")
        await wait_for_results(app, pilot, "matrx")
        await pilot.press("down", "enter")
        await pilot.pause()
        assert any("still opening" in str(n.message) for n in app._notifications)
        assert app.watchlog is None and "opening the watch log" in _history_title(app)
        release.set()
        await settle(app, pilot)
        assert app.watchlog is not None and app.watchlog.history() == []  # nothing was logged behind the user
        assert "nothing logged yet" in _history_title(app)


@run_async
async def test_missing_catalog_still_logs_free_text(tmp_path: Path) -> None:
    config = Config(db_path=tmp_path / "log.db", models_dir=tmp_path / "empty")
    app = DualrecApp(config, today=lambda: TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.hub.components["catalog"].state == "missing"
        assert "catalog ✗" in str(app.main.query_one("#status").render())
        assert "python -m training catalog" in (app.hub.components["catalog"].rebuild or "")
        await type_text(pilot, "heat 1995")
        await settle(app, pilot)
        await pilot.press("enter")  # no catalog: Enter opens the free-text dialog
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert [(e.title, e.year, e.in_catalog) for e in app.watchlog.history()] == [("heat", 1995, False)]


@run_async
async def test_help_palette_and_settings(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for _, action, _ in ACTIONS:  # every palette entry is a real action
            assert callable(getattr(app, f"action_{action}", None)), action
        await pilot.press("f1")
        await settle(app, pilot)
        table = app.screen.query_one("#help-table")
        keys = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        assert {"f1", "ctrl+r", "ctrl+z", "e", "d, delete", "n", "w", "ctrl+n"} <= keys
        await pilot.press("escape")
        runs = app.runs.run
        await pilot.press("ctrl+p")  # the command palette runs actions by name
        await type_text(pilot, "refresh recommendations")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.runs.run == runs + 1 and app.rec_stage == "final"
        await pilot.press("f2")
        await settle(app, pilot)
        app.screen.query_one("#n_recommendations").value = "3"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert Config.load(tmp_path / "config.toml", apply_env=False).n_recommendations == 3
        assert len(app.recs) == 3


@run_async
@pytest.mark.skipif(
    not (models_dir() / "lstm" / "config.json").is_file(), reason="no shipped LSTM in models/lstm (not built yet)"
)
async def test_real_lstm_recommends_after_logging(tmp_path: Path) -> None:
    catalog = Catalog.from_json(models_dir() / "catalog.json")
    hub = ModelHub(models_dir(), n_recommendations=5, llm_enabled=False, catalog=catalog)
    assert hub.load_lstm() is not None, hub.components["lstm"]
    app = DualrecApp(Config(db_path=tmp_path / "log.db", llm_enabled=False), hub=hub, today=lambda: TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "toy story")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.rec_stage == "final" and len(app.recs) == 5
        assert all(r.source == "lstm" and r.index is not None for r in app.recs)
        assert "Toy Story (1995)" not in [r.label for r in app.recs]


# ------------------------------------------------------------------ config and command line
def test_config_round_trip_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    Config(n_recommendations=7, llm_enabled=False, models_dir=tmp_path / "m").save(path)
    monkeypatch.delenv("DUALREC_DB", raising=False)
    monkeypatch.delenv("DUALREC_MODELS_DIR", raising=False)
    loaded = Config.load(path)
    assert (loaded.n_recommendations, loaded.llm_enabled, loaded.models_dir) == (7, False, tmp_path / "m")
    monkeypatch.setenv("DUALREC_MODELS_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("DUALREC_DB", str(tmp_path / "env.db"))
    loaded = Config.load(path)
    assert loaded.models_dir == tmp_path / "env" and loaded.resolved_db_path == tmp_path / "env.db"
    path.write_text("n_recommendations = 0\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"n_recommendations must be 1\.\.50"):
        Config.load(path)
    path.write_text("colour = 'red'\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="unknown setting"):
        Config.load(path)


def test_cli_help_and_version() -> None:
    env = {**os.environ, "DUALREC_CONFIG": "/nonexistent/config.toml"}
    run = subprocess.run(
        [sys.executable, "-m", "dualrec_tui", "--help"], capture_output=True, text=True, env=env, check=True
    )
    for text in ("--db PATH", "--models DIR", "DUALREC_DB", "DUALREC_MODELS_DIR", "DUALREC_CONFIG", "F1"):
        assert text in run.stdout
    run = subprocess.run([sys.executable, "-m", "dualrec_tui", "--version"], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("dualrec-tui ")


def test_app_module_imports_no_heavy_library() -> None:
    heavy = "{'torch', 'llama_cpp', 'transformers', 'sentence_transformers', 'sqlite_utils'}"
    code = f"import sys, dualrec_tui.app, dualrec_tui.__main__; print(sorted({heavy} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_fake_lstm_is_deterministic() -> None:
    catalog = small_catalog()
    lstm = FakeLstm(catalog)
    assert lstm.top_k([0, 1], 5) == lstm.top_k([0, 1], 5)


@run_async
async def test_a_progress_tick_while_the_screen_is_torn_down_is_harmless(tmp_path: Path) -> None:
    """The once-a-second progress timer can fire after the status line left the DOM (at exit): no crash."""
    from dualrec_tui.widgets.status import ModelStatus

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await app.main.query_one(ModelStatus).remove()
        app._show_progress()  # what the timer calls
        app.main.show_status(app.hub.components, "loading")
        assert not list(app.main.query(ModelStatus))


@run_async
async def test_footer_shows_the_focused_widgets_keys_and_skips_rebuilds_that_change_nothing(tmp_path: Path) -> None:
    """KeyFooter: the keys follow focus as Textual's Footer's do, but a burst of binding changes that
    leaves the keys as they are rebuilds nothing (a launch sent five, each rebuilding ~15 widgets)."""
    from textual.widgets._footer import FooterKey

    from dualrec_tui.widgets.footer import KeyFooter

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        footer = app.main.query_one(KeyFooter)

        def shown() -> set[str]:
            return {key.description for key in footer.query(FooterKey)}

        assert {"Help", "Log as typed"} <= shown() and "Edit" not in shown()
        rebuilds = []
        original = footer.recompose

        async def counted() -> None:
            rebuilds.append(1)
            await original()

        footer.recompose = counted  # type: ignore[method-assign]

        async def frames_until(done) -> None:
            for _ in range(200):  # a busy machine may need many frames
                await pilot.pause(0.01)
                if done():
                    return

        for _ in range(5):
            app.main.refresh_bindings()
        await frames_until(lambda: not footer._check_pending)
        assert rebuilds == [] and not footer._check_pending  # checked, same keys: nothing rebuilt
        app.main.query_one(HistoryList).focus()
        await frames_until(lambda: "Edit" in shown())
        assert len(rebuilds) == 1 and {"Edit", "Delete", "Help"} <= shown() and "Log as typed" not in shown()
        app.main.query_one("#search").focus()
        await frames_until(lambda: "Log as typed" in shown())
        assert len(rebuilds) == 2 and "Log as typed" in shown() and "Edit" not in shown()


def test_launch_gc_pauses_until_resumed_and_resume_alone_changes_nothing() -> None:
    import gc

    from dualrec_tui import launch_gc

    assert gc.isenabled()
    try:
        launch_gc.resume()  # nothing paused: a no-op (no freeze either)
        assert gc.isenabled() and gc.get_freeze_count() == 0
        launch_gc.pause()
        assert not gc.isenabled()
        launch_gc.resume()
        assert gc.isenabled() and gc.get_freeze_count() > 0  # what the launch built is out of later passes
    finally:
        gc.enable()
        gc.unfreeze()


@run_async
async def test_the_app_turns_the_collector_back_on_once_the_catalog_is_up(tmp_path: Path) -> None:
    """The entry point pauses the collector (launch_gc); the app resumes it at its first answer, or when
    the catalog is up and no query waits."""
    import gc

    from dualrec_tui import launch_gc

    app = make_app(tmp_path)
    launch_gc.pause()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_quitting_while_the_catalog_loads_is_clean(tmp_path: Path) -> None:
    """The loader thread is not waited for at exit: its report may land while the screens are torn down.
    Nothing may crash then (a KeyError for the gone main screen did, about 1 exit in 6 in this race)."""

    async def quit_as_it_loads(folder: Path, delay: float) -> DualrecApp:
        folder.mkdir()
        app, hub = _slow_app(folder)
        async with app.run_test(size=SIZE) as pilot:  # re-raises what the app raised on the way out
            await pilot.pause()
            threading.Timer(delay, hub.release.set).start()  # the catalog arrives about as the app exits
        app.models_loaded.wait(10)
        return app

    for attempt in range(12):
        app = asyncio.run(quit_as_it_loads(tmp_path / str(attempt), 0.002 * attempt))
        assert app.models_loaded.is_set() and app.return_code in (None, 0) and app._exception is None
