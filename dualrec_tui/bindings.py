"""The app-wide key bindings, in one place: the app binds them and the help screen lists them (so a
screen never imports the app to read them)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

APP_BINDINGS: list[BindingType] = [
    Binding("f1", "help", "Help", id="help", tooltip="This list of keys"),
    Binding("q", "quit", "Quit", show=False, id="quit_q", tooltip="Quit (when not typing in a text box)"),
    Binding("ctrl+f", "focus_search", "Search", show=False, id="focus_search", tooltip="Jump to the search box"),
    Binding("ctrl+r", "refresh", "Refresh", id="refresh", tooltip="New picks (the ones on screen are set aside)"),
    Binding("ctrl+z", "undo", "Undo", show=False, id="undo", tooltip="Undo the last delete or 'not interested'"),
    Binding("f2", "settings", "Settings", id="settings", tooltip="Models folder, number of picks, LLM options"),
    Binding(
        "f3", "import_export", "Import", id="import_export", tooltip="Import / export: Letterboxd, IMDb, CSV, JSON"
    ),
    Binding("f4", "model_status", "Models", id="model_status", tooltip="What loaded, how to fix"),
    Binding("ctrl+q", "quit", "Quit", show=False, id="quit", priority=True, tooltip="Leave dualrec (the log is saved)"),
]
