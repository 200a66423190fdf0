"""Ambiguous import rows, one at a time: pick the catalog movie a row means, or keep it as typed."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

KEEP = "keep-as-typed"


class ChooseMatchScreen(ModalScreen[int]):
    """Walks the preview's ambiguous rows; Enter picks, Escape stops (rows left keep their best guess).

    Returns how many rows were decided. Nothing is written: Commit in the import screen does that."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "done", "Done", id="choose.done")]

    def __init__(self, preview: Any, watchlog: Any) -> None:
        super().__init__()
        self.preview = preview
        self.watchlog = watchlog
        self.positions = [i for i, row in enumerate(preview.rows) if row.status == "ambiguous"]
        self.step = 0
        self.decided = 0
        self.options: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="choose", classes="dialog"):
            yield Label("Which movie is it?", classes="dialog-title")
            yield Static("", id="choose-row")
            yield OptionList(id="choose-list")
            yield Static("Enter picks · Escape stops here (the rest keep their best guess)", classes="muted")

    def on_mount(self) -> None:
        self.show_row()

    def show_row(self) -> None:
        if self.step >= len(self.positions):
            self.dismiss(self.decided)
            return
        from ..store.importing import candidates

        row = self.preview.rows[self.positions[self.step]]
        rating = f", rated {row.rating:g}" if row.rating is not None else ""
        self.query_one("#choose-row", Static).update(
            f"Row {self.step + 1} of {len(self.positions)}: “{row.label}”, watched {row.watched_on}{rating} "
            f"({row.source}, line {row.line})"
        )
        self.options = candidates(row, self.preview.catalog)
        listing = self.query_one(OptionList)
        listing.set_options(
            [
                *(Option(f"{m.label}  ·  {m.genre_text}", id=str(i)) for i, m in enumerate(self.options)),
                Option(f"Keep “{row.label}” as typed (not in catalog)", id=KEEP),
            ]
        )
        listing.highlighted = 0
        listing.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        from ..store.importing import choose

        movie = None if event.option.id == KEEP else self.options[int(event.option.id or 0)]
        choose(self.preview, self.positions[self.step], movie, self.watchlog)
        self.decided += 1
        self.step += 1
        self.show_row()

    def action_done(self) -> None:
        self.dismiss(self.decided)
