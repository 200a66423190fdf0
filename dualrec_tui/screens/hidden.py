"""The movies marked "not interested": see them, and let one be recommended again."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Static
from textual.widgets.option_list import Option


class HiddenMoviesScreen(ModalScreen[int]):
    """Lists not-interested movies; Enter (or "Show again") lifts the mark. Returns how many were lifted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="hidden.close"),
        Binding("s", "show_again", "Show again", id="hidden.show_again", tooltip="Recommend this movie again"),
    ]

    def __init__(self, watchlog: Any) -> None:
        super().__init__()
        self.watchlog = watchlog
        self.items: list[Any] = []
        self.lifted = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="hidden", classes="dialog"):
            yield Label("Not interested", classes="dialog-title")
            yield Static("Never recommended while here. Enter or s shows one again.", classes="muted")
            yield OptionList(id="hidden-list")
            yield Static("", id="hidden-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Show again", id="show-again", variant="primary")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.reload()
        self.query_one(OptionList).focus()

    def reload(self) -> None:
        self.items = self.watchlog.not_interested()
        options = self.query_one(OptionList)
        keep = options.highlighted
        options.set_options(Option(item.label, id=str(i)) for i, item in enumerate(self.items))
        if self.items:
            options.highlighted = min(keep or 0, len(self.items) - 1)
        else:
            self.query_one("#hidden-text", Static).update("Nothing hidden: n on a recommendation hides it.")
        self.query_one("#show-again", Button).disabled = not self.items

    def action_show_again(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is None or highlighted >= len(self.items):
            return
        item = self.items[highlighted]
        self.watchlog.remove_not_interested(item.movie_id, item.dataset)
        self.lifted += 1
        label = item.label
        self.reload()
        self.query_one("#hidden-text", Static).update(f"{label} can be recommended again.")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_show_again()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "show-again":
            self.action_show_again()
        else:
            self.action_close()

    def action_close(self) -> None:
        self.dismiss(self.lifted)
