"""The help screen: every key binding, generated from the widgets' own BINDINGS (so it cannot drift)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

INTRO = (
    "Type a title in the search box and press Enter to log it as watched today; the LSTM picks appear "
    "at once, then the LLM scores the LSTM's top candidates, the list is re-ordered by the signals that "
    "helped on validation, and the LLM names its own picks. Each pick's tag says what placed it there. "
    "Ctrl+P opens the command palette with every action. Move between the search box, the history and the "
    "recommendations with Tab / Shift+Tab (or click); Ctrl+F jumps back to the search box. "
    "q quits when you are not typing in a text box."
)


def binding_rows() -> list[tuple[str, str, str]]:
    """(where, keys, what) for every binding the user can press."""
    from ..bindings import APP_BINDINGS
    from ..widgets.lists import HistoryList, RecommendationList, ResultList, SearchInput

    sources: list[tuple[str, list]] = [
        ("anywhere", APP_BINDINGS),
        ("search box", SearchInput.BINDINGS),
        ("search results", ResultList.BINDINGS),
        ("history", HistoryList.BINDINGS),
        ("recommendations", RecommendationList.BINDINGS),
    ]
    rows = [
        ("anywhere", "tab, shift+tab", "Move to the next / previous pane (search, history, recommendations)"),
        ("anywhere", "ctrl+p", "Command palette: every action by name"),
    ]
    for where, bindings in sources:
        for binding in bindings:
            if isinstance(binding, Binding):
                keys = ", ".join(k.strip() for k in binding.key.split(","))
                rows.append((where, keys, binding.tooltip or binding.description or binding.action))
    rows.append(("search box", "enter", "Log the highlighted result as watched today"))
    rows.append(("dialogs", "escape", "Cancel"))
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists the bindings; Escape, q or F1 closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1", "close", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Label("dualrec — keys", classes="dialog-title")
            yield Static(INTRO, id="help-intro")
            table: DataTable = DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            table.add_column("Where", width=15)
            table.add_column("Keys", width=14)
            table.add_column("What", width=self.what_width())  # longer text wraps (height=None)
            for row in binding_rows():
                table.add_row(*row, height=None)
            yield table
            yield Static("Escape closes this screen.", classes="muted")

    def what_width(self) -> int:
        """The "What" column: 31 cells fit an 80-column terminal; a wider one gives the dialog (#help:
        90 cells, at most 95% of the screen) more room, and this column takes all of it."""
        dialog = min(90, int(self.app.size.width * 0.95))
        return 31 + max(0, dialog - int(80 * 0.95))

    def action_close(self) -> None:
        self.dismiss(None)
