"""SVG snapshots of the main screens (pytest-textual-snapshot) at 100x30, 120x36 and 80x24.

Deterministic: a temp watch log with fixed dates, the small test catalog, the fake LSTM and the
fake LLM of tests/tui_support.py, notifications cleared before the picture. Update after an
intended change with `pytest tests/test_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.tui_support import make_app, settle

LOGGED = [
    ("Heat (1995)", date(2024, 4, 1), 4.0, "with Sam"),
    ("The Matrix (1999)", date(2024, 4, 12), 5.0, None),
    ("Seven (1995)", date(2024, 4, 20), None, None),
]


def seeded_app(tmp_path: Path, **options):
    """An app whose watch log already holds LOGGED (written before the app starts)."""
    from dualrec_tui.store import WatchLog

    app = make_app(tmp_path, **options)
    catalog = app.hub.catalog
    with WatchLog.open(tmp_path / "watchlog.db") as log:
        for title, day, rating, note in LOGGED:
            log.add(catalog.resolve(title).movie, dataset=catalog.name, watched_on=day, rating=rating, note=note)
        log.add("Grandma's home video", year=2019, watched_on=date(2024, 4, 25))
    return app


def steady_cursors(app) -> None:
    """A blinking cursor is on or off depending on timing: keep it on so pictures are deterministic."""
    from textual.widgets import Input

    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False


def before(*keys: str, focus: str | None = None):
    async def run(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)
        if focus:
            app.screen.query_one(focus).focus()
        app.clear_notifications()
        steady_cursors(app)
        await settle(app, pilot)

    return run


@pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])
def test_main_screen_with_history_and_recommendations(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(seeded_app(tmp_path), terminal_size=size, run_before=before(focus="#recs"))


def test_search_results(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(seeded_app(tmp_path), terminal_size=(100, 30), run_before=before(*"star wars"))


def test_missing_models(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path, lstm=False), terminal_size=(80, 24), run_before=before())


def test_edit_dialog(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(seeded_app(tmp_path), terminal_size=(80, 24), run_before=before("tab", "e"))


def test_help_screen(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), terminal_size=(100, 30), run_before=before("f1"))


# ---------------------------------------------------------------- issue #11: the first ten minutes
SIZES = [(120, 36), (80, 24)]
SIZE_IDS = ["120x36", "80x24"]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_first_use_main_screen(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(seeded_app(tmp_path), terminal_size=size, run_before=before(focus="#history"))


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_first_use_help(snap_compare, tmp_path: Path, size) -> None:
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=before("f1"))


@pytest.fixture
def same_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Paths shown on screen are the same on every machine: home, models folder, working folder."""
    monkeypatch.setenv("HOME", "/home/user")
    monkeypatch.setenv("DUALREC_MODELS_DIR", "/home/user/dualrec/models")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_first_use_settings(snap_compare, same_paths: Path, size) -> None:
    app = make_app(same_paths)
    app.config_file = Path("/home/user/.config/dualrec/config.toml")  # read (absent), never written here
    assert snap_compare(app, terminal_size=size, run_before=before("f2"))


def import_preview(path: Path):
    async def run(pilot) -> None:
        app = pilot.app
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        app.screen.query_one("#import-path").value = path.name  # relative to the working folder
        app.screen.start_preview()
        await settle(app, pilot)
        app.screen.query_one("#preview-text").scroll_visible(animate=False)
        app.clear_notifications()
        steady_cursors(app)
        await settle(app, pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_first_use_import_preview(snap_compare, same_paths: Path, size) -> None:
    tmp_path = same_paths
    source = tmp_path / "diary.csv"
    source.write_text(
        "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
        "2024-03-02,Heat,1995,https://boxd.it/a,4.5,,,2024-03-01\n"
        "2024-03-03,Jumanjii,1995,https://boxd.it/b,3,,,2024-03-02\n"
        "2024-03-04,Home Movie Night,2019,https://boxd.it/c,,,,2024-03-03\n",
        encoding="utf-8",
    )
    assert snap_compare(seeded_app(tmp_path), terminal_size=size, run_before=import_preview(source))
