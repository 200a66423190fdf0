"""The settings screen: edits config.toml (models folder, number of recommendations, LLM options)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, Switch

from ..config import Config, config_path
from ..core.errors import DataFormatError


class SettingsScreen(ModalScreen[Config | None]):
    """Returns the new Config (already saved to the config file), or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="settings.cancel"),
        Binding("ctrl+s", "save", "Save", id="settings.save"),
    ]

    def __init__(self, config: Config, path: Path | None = None) -> None:
        super().__init__()
        self.config = config
        self.path = path or config_path()

    def compose(self) -> ComposeResult:
        c = self.config
        with VerticalScroll(id="settings", classes="dialog"):
            yield Label("Settings", classes="dialog-title")
            yield Static(f"Settings file: {self.path}", classes="muted")
            yield Label("Models folder (catalog.json, lstm/, llm/; empty = default)")
            yield Input(str(c.models_dir or ""), id="models_dir", placeholder=str(c.resolved_models_dir), compact=True)
            yield Label("Number of recommendations (1–50)")
            yield Input(str(c.n_recommendations), id="n_recommendations", type="integer", compact=True)
            with Horizontal(classes="switch-row"):
                yield Switch(c.llm_enabled, id="llm_enabled")
                yield Label("Use the LLM (off = LSTM only, faster)")
            yield Label("GPU layers for the LLM (0 = CPU, -1 = all)")
            yield Input(str(c.gpu_layers), id="gpu_layers", type="integer", compact=True)
            yield Label("Threads (0 = automatic)")
            yield Input(str(c.threads), id="threads", type="integer", compact=True)
            yield Static("Model changes apply after a restart.", classes="muted")
            yield Static("", id="error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#models_dir", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def _int(self, field: str) -> int:
        text = self.query_one(f"#{field}", Input).value.strip()
        try:
            return int(text)
        except ValueError:
            raise DataFormatError("settings", None, f"{field.replace('_', ' ')} must be a whole number") from None

    @staticmethod
    def check_models_dir(text: str) -> Path | None:
        """An empty field is the default; anything else must be a folder holding catalog.json."""
        if not text:
            return None
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise DataFormatError("settings", None, f"models folder {text!r} is not a folder")
        if not (folder / "catalog.json").is_file():
            raise DataFormatError(
                "settings", None, f"models folder {text!r} has no catalog.json (it holds catalog.json, lstm/, llm/)"
            )
        return folder

    def action_save(self) -> None:
        error = self.query_one("#error", Static)
        models = self.query_one("#models_dir", Input).value.strip()
        try:
            config = replace(
                self.config,
                models_dir=self.check_models_dir(models),
                n_recommendations=self._int("n_recommendations"),
                llm_enabled=self.query_one("#llm_enabled", Switch).value,
                gpu_layers=self._int("gpu_layers"),
                threads=self._int("threads"),
            ).validated()
            config.save(self.path)
        except (DataFormatError, OSError) as exc:
            error.update(str(exc))
            error.scroll_visible(animate=False)  # at 80x24 the fields scroll; the message must be seen
            return
        self.dismiss(config)
