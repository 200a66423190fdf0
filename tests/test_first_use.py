"""Pilot tests for issue #11, "the first ten minutes": one test per bug a new user hit."""

from __future__ import annotations

import asyncio
import functools
from datetime import date
from pathlib import Path

from dualrec_tui.config import Config
from dualrec_tui.screens.dialogs import ConfirmDialog, EntryDialog
from dualrec_tui.screens.hidden import HiddenMoviesScreen
from dualrec_tui.screens.settings import SettingsScreen
from dualrec_tui.services import ModelHub, rebuild_commands
from dualrec_tui.widgets.lists import HistoryList, RecommendationList, ResultList
from tests.tui_support import TODAY, make_app, open_import_preview, settle

SIZE = (100, 30)


def run_async(test):
    @functools.wraps(test)
    def wrapper(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[c if c != " " else "space" for c in text])


async def log_movie(app, pilot, query: str) -> None:
    search = app.main.query_one("#search")
    search.value = ""
    search.focus()
    await type_text(pilot, query)
    await settle(app, pilot)
    await pilot.press("enter")
    await settle(app, pilot)


@run_async
async def test_one_word_typo_is_found_and_logged(tmp_path: Path) -> None:
    """Bug 1: "shawshenk" and "se7en" found nothing."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for query, title in (("shawshenk", "The Shawshank Redemption"), ("se7en", "Seven")):
            await type_text(pilot, query)
            await settle(app, pilot)
            first = app.main.query_one(ResultList).get_option_at_index(0)
            assert app.hub.catalog[int(first.id)].title == title, query
            await pilot.press("enter")
            await settle(app, pilot)
        assert [e.title for e in app.watchlog.history()] == ["Seven", "The Shawshank Redemption"]


@run_async
async def test_future_date_keeps_the_dialog_and_what_was_typed(tmp_path: Path) -> None:
    """Bug 3: a future date closed the dialog with a toast and lost the rating and note."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await log_movie(app, pilot, "heat")
        app.main.query_one(HistoryList).focus()
        await pilot.press("e")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, EntryDialog)
        dialog.query_one("#date").value = "2030-01-01"
        dialog.query_one("#rating").value = "4.5"
        dialog.query_one("#note").value = "with Sam"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is dialog  # still open, with the error in it
        assert "2030-01-01" in str(dialog.query_one("#error").render())
        assert (dialog.query_one("#rating").value, dialog.query_one("#note").value) == ("4.5", "with Sam")
        dialog.query_one("#date").value = "2024-04-01"
        await pilot.press("enter")
        await settle(app, pilot)
        entry = app.watchlog.history()[0]
        assert (entry.watched_on, entry.rating, entry.note) == (date(2024, 4, 1), 4.5, "with Sam")


@run_async
async def test_edit_that_resorts_keeps_the_edited_entry_selected(tmp_path: Path) -> None:
    """Bug 4: after an edit moved an entry, the highlight stayed on the row number (another film)."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for query in ("heat", "jumanji", "braveheart"):
            await log_movie(app, pilot, query)
        history = app.main.query_one(HistoryList)
        history.focus()
        history.highlighted = 0  # Braveheart, the newest
        edited = history.selected_entry_id
        await pilot.press("e")
        await settle(app, pilot)
        app.screen.query_one("#date").value = "2024-01-01"  # now the oldest: moves to the bottom
        await pilot.press("enter")
        await settle(app, pilot)
        assert history.selected_entry_id == edited
        assert app.watchlog.get(edited).title == "Braveheart" and history.highlighted == 2


@run_async
async def test_not_interested_undo_and_show_again(tmp_path: Path) -> None:
    """Bug 5: "not interested" could not be seen or undone."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await log_movie(app, pilot, "heat")
        recs = app.main.query_one(RecommendationList)
        recs.focus()
        first, second = app.recs[0], app.recs[1]
        shown = len(app.recs)
        await pilot.press("n")
        await settle(app, pilot)
        assert first.index in app.watchlog.not_interested_indices(app.hub.catalog)
        # the next movie in the run's order takes the free place: as many picks as before, without a new run
        assert len(app.recs) == shown and first.index not in [r.index for r in app.recs]
        assert recs.option_count >= shown
        await pilot.press("ctrl+z")
        await settle(app, pilot)
        assert app.watchlog.not_interested() == []
        assert first.index in [r.index for r in app.recs]  # recommended again
        # hide two, then bring one back from the hidden list (the palette / F3 open it)
        for rec in (first, second):
            recs.highlighted = [r.index for r in app.recs].index(rec.index)
            await pilot.press("n")
            await settle(app, pilot)
        await pilot.press("f3")  # F3's "Hidden movies…" button (it did nothing: an un-awaited run_action)
        await settle(app, pilot)
        await pilot.click("#hidden")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, HiddenMoviesScreen) and len(screen.items) == 2
        await pilot.press("enter")  # the most recently hidden is first
        await settle(app, pilot)
        assert [i.movie_id for i in app.watchlog.not_interested()] == [app.hub.catalog[first.index].movie_id]
        await pilot.press("escape")
        await settle(app, pilot)
        assert second.index not in app.watchlog.not_interested_indices(app.hub.catalog)


@run_async
async def test_empty_log_state_does_not_stay_at_llm_loading(tmp_path: Path) -> None:
    """Bug 6: "LSTM picks · LLM loading…" stayed on an empty log after the LLM loaded."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        from dualrec_tui.messages import ModelsChanged

        app.post_message(ModelsChanged("llm"))  # the loader's last message, as after a real load
        await settle(app, pilot)
        state = str(app.main.query_one("#recs-state").render())
        assert "loading" not in state.lower() and "LLM" in state


@run_async
async def test_ctrl_n_on_a_catalog_title_offers_the_catalog_movie(tmp_path: Path) -> None:
    """Bug 7: Ctrl+N on "Heat (1995)" logged it as not in catalog, never model input."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "Heat (1995)")
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        await pilot.press("enter")  # the free-text dialog
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#catalog")
        await settle(app, pilot)
        entry = app.watchlog.history()[0]
        assert entry.in_catalog and entry.label == "Heat (1995)"


@run_async
async def test_free_text_entry_can_be_linked_to_the_catalog(tmp_path: Path) -> None:
    """Bug 7: a free-text entry can be linked to a catalog movie later, from edit."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.watchlog.add("heat", year=1995, watched_on=TODAY)
        app.log_actions.show_history()
        app.main.query_one(HistoryList).focus()
        await pilot.press("e")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#link")
        await settle(app, pilot)
        entry = app.watchlog.history()[0]
        assert entry.in_catalog and entry.label == "Heat (1995)"
        heat = app.hub.catalog.resolve("Heat (1995)").movie.index
        assert app.watchlog.model_input(app.hub.catalog) == [heat]


@run_async
async def test_same_film_twice_on_one_day_asks_first(tmp_path: Path) -> None:
    """Bug 8: logging a film again on the same day added a silent duplicate."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await log_movie(app, pilot, "heat")
        await log_movie(app, pilot, "heat")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#cancel")
        await settle(app, pilot)
        assert len(app.watchlog.history()) == 1
        await log_movie(app, pilot, "heat")
        await pilot.click("#again")
        await settle(app, pilot)
        assert len(app.watchlog.history()) == 2


@run_async
async def test_settings_refuse_a_models_folder_without_a_catalog(tmp_path: Path) -> None:
    """Bug 9: the Models-folder setting accepted "5"; the dialog had no field focused."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen) and app.focused is screen.query_one("#models_dir")
        assert "Saved to" not in " ".join(str(w.render()) for w in screen.query(".muted"))
        screen.query_one("#models_dir").value = "5"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is screen and "not a folder" in str(screen.query_one("#error").render())
        assert not (tmp_path / "config.toml").exists()  # nothing saved
        models = tmp_path / "mine"
        models.mkdir()
        screen.query_one("#models_dir").value = str(models)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "no catalog.json" in str(screen.query_one("#error").render())
        (models / "catalog.json").write_text("{}", encoding="utf-8")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert Config.load(tmp_path / "config.toml", apply_env=False).models_dir == models


def test_rebuild_hints_write_to_the_configured_folder(tmp_path: Path) -> None:
    """Bug 10: hints wrote to ./models, and the LLM hint lacked the export step."""
    folder = tmp_path / "my models"
    commands = rebuild_commands(folder)
    assert f"--out {folder}/catalog.json" in commands["catalog"] and f"--out {folder}/lstm" in commands["lstm"]
    assert "training export" in commands["llm"] and f"--out {folder}/llm" in commands["llm"]
    hub = ModelHub(folder)
    assert hub.load_catalog() is None
    assert hub.components["catalog"].rebuild == commands["catalog"]


@run_async
async def test_missing_catalog_is_not_called_not_loaded_yet(tmp_path: Path) -> None:
    """Bug 10: "Catalog not loaded yet" showed when the catalog was missing for good."""
    from dualrec_tui.app import DualrecApp

    app = DualrecApp(Config(db_path=tmp_path / "log.db", models_dir=tmp_path / "empty"), today=lambda: TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "heat")
        await settle(app, pilot)
        text = str(app.main.query_one(ResultList).get_option_at_index(0).prompt)
        assert "not loaded yet" not in text and "F4" in text


@run_async
async def test_export_asks_before_replacing_a_file(tmp_path: Path) -> None:
    """Bug 12: export overwrote an existing file without asking."""
    app = make_app(tmp_path)
    target = tmp_path / "mine.csv"
    target.write_text("precious\n", encoding="utf-8")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await log_movie(app, pilot, "heat")
        await pilot.press("f3")
        await settle(app, pilot)
        app.screen.query_one("#export-path").value = str(target)
        await pilot.click("#export-csv")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#cancel")
        await settle(app, pilot)
        assert target.read_text(encoding="utf-8") == "precious\n"
        await pilot.click("#export-csv")
        await settle(app, pilot)
        await pilot.click("#replace")
        await settle(app, pilot)
        assert "Heat" in target.read_text(encoding="utf-8")


def test_failed_export_names_the_file_not_its_temporary(tmp_path: Path) -> None:
    """Bug 12: a failed export named its temporary file."""
    import pytest

    from dualrec_tui.store import WatchLog

    with WatchLog.open(tmp_path / "log.db") as log:
        target = tmp_path / "a-folder"
        target.mkdir()
        with pytest.raises(OSError) as info:
            log.export_csv(target)
        assert str(target) in str(info.value) and ".a-folder." not in str(info.value)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_first_start_progress_says_stage_amount_and_time_left() -> None:
    from dualrec_tui.services import Progress

    step = Progress("embedding movie titles for re-ranking", started=100.0, done=3000, total=9000)
    assert step.describe(now=130.0) == (
        "First start only: embedding movie titles for re-ranking 3,000 of 9,000 · about 1 min 00 s left"
    )
    assembling = Progress("assembling the language model from its package", started=0.0)
    assert assembling.describe(now=75.0).endswith("· 1 min 15 s so far")


def test_status_line_uses_plain_words() -> None:
    from dualrec_tui.services import Component
    from dualrec_tui.widgets.status import describe

    line = " ".join(
        str(describe(c))
        for c in (
            Component("llm", "ready", note="untuned base"),
            Component("rerank", "ready"),
            Component("lstm", "missing", "no model", "python -m training lstm"),
        )
    )
    assert "SBERT" not in line and "untuned" not in line and "python -m" not in line
    assert "re-ranking ✓" in line and "LSTM ✗ missing (F4)" in line


@run_async
async def test_ctrl_r_offers_something_different_then_starts_over(tmp_path: Path) -> None:
    """UX: Ctrl+R gave the identical list; now it sets the shown movies aside for a few rounds."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await log_movie(app, pilot, "heat")
        first = {r.index for r in app.recs}
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        second = {r.index for r in app.recs}
        assert second and not (first & second)
        for _ in range(3):  # the rounds run out: back to the top list
            await pilot.press("ctrl+r")
            await settle(app, pilot)
        assert {r.index for r in app.recs} == first


@run_async
async def test_q_quits_outside_text_boxes_only(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "q")  # in the search box: a letter
        await settle(app, pilot)
        assert app.is_running and app.main.query_one("#search").value == "q"
        app.main.query_one(HistoryList).focus()
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


def test_history_shows_one_line_of_a_long_note() -> None:
    from dualrec_tui.widgets.lists import NOTE_PREVIEW, note_preview

    long = "word " * 600 + "\nsecond line"
    preview = note_preview(long)
    assert len(preview) == NOTE_PREVIEW and preview.endswith("…") and "\n" not in preview
    assert note_preview("short\nand more") == "short…" and note_preview("fine") == "fine"


@run_async
async def test_import_choose_ambiguous_rows_row_by_row(tmp_path: Path) -> None:
    """UX: choose among ambiguous matches row by row before committing."""
    from dualrec_tui.screens.choose import ChooseMatchScreen

    source = tmp_path / "mine.csv"
    source.write_text("title,date\nJumanjii,2024-03-02\nTwelve Monkys,2024-03-03\n", encoding="utf-8")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        importer = await open_import_preview(app, pilot, source)
        await pilot.click("#choose")
        await settle(app, pilot)
        assert isinstance(app.screen, ChooseMatchScreen)
        await pilot.press("enter")  # row 1: the best guess (Jumanji)
        await settle(app, pilot)
        await pilot.press("end", "enter")  # row 2: keep as typed
        await settle(app, pilot)
        assert app.screen is importer
        await pilot.click("#commit")
        await settle(app, pilot)
        assert [(e.label, e.in_catalog) for e in app.watchlog.chronological()] == [
            ("Jumanji (1995)", True),
            ("Twelve Monkys", False),
        ]


@run_async
async def test_letterboxd_rewatch_and_tags_import_show_and_edit(tmp_path: Path) -> None:
    """UX: Letterboxd's Rewatch and Tags are kept on the entry (not in the note), shown in the history,
    and editable in the edit dialog."""
    from textual.widgets import Checkbox

    from dualrec_tui.widgets.lists import entry_prompt

    source = tmp_path / "diary.csv"
    source.write_text(
        "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
        "2024-03-02,Heat,1995,https://boxd.it/a,4.5,,cinema,2024-03-01\n"
        '2024-03-03,Heat,1995,https://boxd.it/b,5,Yes,"cinema, with Sam",2024-03-02\n',
        encoding="utf-8",
    )
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        importer = await open_import_preview(app, pilot, source)
        assert "kept on the entries: 1 rewatch ↻, 2 with tags" in str(importer.query_one("#preview-text").render())
        await pilot.click("#commit")
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        newest, first = app.watchlog.history()
        assert (newest.rewatch, newest.tags, newest.note) == (True, ("cinema", "with Sam"), None)
        assert (first.rewatch, first.tags) == (False, ("cinema",))
        history = app.main.query_one(HistoryList)
        shown = str(history.get_option_at_index(0).prompt)
        assert "Heat (1995) ↻" in shown and "#cinema #with-Sam" in shown
        assert "↻" not in str(entry_prompt(first))
        history.focus()
        history.highlighted = 0
        await pilot.press("e")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, EntryDialog)
        assert dialog.query_one("#tags").value == "cinema, with Sam"
        assert dialog.query_one("#rewatch", Checkbox).value is True
        dialog.query_one("#rewatch", Checkbox).value = False
        dialog.query_one("#tags").value = "home,  festival , home"
        dialog.query_one("#note").focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, EntryDialog)
        edited = app.watchlog.get(newest.id)
        assert (edited.rewatch, edited.tags, edited.rating) == (False, ("home", "festival"), 5.0)
        assert "#home #festival" in str(history.get_option_at_index(history.highlighted).prompt)


def test_history_tags_stay_compact() -> None:
    from dualrec_tui.widgets.lists import TAGS_PREVIEW, tags_preview

    assert tags_preview(["a", "b c"]) == "#a #b-c"
    many = tags_preview([f"tag{i}" for i in range(20)])
    assert many.endswith("+15") and len(many) <= TAGS_PREVIEW + 4
    assert tags_preview(["x" * 80]).endswith("…") and len(tags_preview(["x" * 80])) == TAGS_PREVIEW
