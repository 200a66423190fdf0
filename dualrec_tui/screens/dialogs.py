"""Small modal dialogs: log or edit one watch-log entry (date, rating, note, tags, rewatch), and ask before
acting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static


@dataclass(frozen=True)
class EntryEdit:
    """What the dialog returns; `title` is only editable for a movie the catalog lacks."""

    title: str
    watched_on: date
    rating: float | None
    note: str | None
    rewatch: bool = False
    tags: tuple[str, ...] = ()


def parse_rating(text: str) -> float | None:
    """'' -> None; '4', '3.5', '4/5' -> float; raises ValueError with a message a person can act on."""
    text = text.strip().removesuffix("/5").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"rating {text!r} is not a number (use 0.5 to 5, in steps of 0.5)") from None
    if not 0.5 <= value <= 5.0:
        raise ValueError(f"rating {text} is out of range (use 0.5 to 5, in steps of 0.5)")
    if value * 2 != round(value * 2):
        nearest = round(value * 2) / 2
        raise ValueError(f"rating {text} is not a half step (use 0.5 to 5 in steps of 0.5, e.g. {nearest:g})")
    return value


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"date {text.strip()!r} is not YYYY-MM-DD") from None


class EntryDialog(ModalScreen[EntryEdit | None]):
    """Log or edit an entry. Enter in any field saves, Escape cancels.

    `tags` given (editing an entry): the tags and the rewatch flag are shown and editable too."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(
        self,
        heading: str,
        title: str,
        watched_on: date,
        rating: float | None = None,
        note: str | None = None,
        title_editable: bool = False,
        today: date | None = None,
        *,
        rewatch: bool = False,
        tags: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        self.heading = heading
        self.initial = EntryEdit(title, watched_on, rating, note, rewatch, tags or ())
        self.with_tags = tags is not None
        self.title_editable = title_editable
        self.today = today  # dates after the day after `today` are refused here, not after closing

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="dialog entry-dialog"):
            yield Label(self.heading, classes="dialog-title")
            if self.title_editable:
                yield Label("Title (with year, e.g. “Heat (1995)”)")
                yield Input(self.initial.title, id="title", placeholder="title", compact=True)
            else:
                yield Static(self.initial.title, id="movie", classes="dialog-movie")
            yield Label("Watched on (YYYY-MM-DD)")
            yield Input(self.initial.watched_on.isoformat(), id="date", compact=True)
            yield Label("Rating (0.5–5, optional)")
            rating = "" if self.initial.rating is None else f"{self.initial.rating:g}"
            yield Input(rating, id="rating", placeholder="e.g. 4.5", compact=True)
            yield Label("Note (optional)")
            yield Input(
                self.initial.note or "", id="note", placeholder="where, with whom, what you thought", compact=True
            )
            if self.with_tags:
                yield Label("Tags (comma-separated, optional)")
                yield Input(", ".join(self.initial.tags), id="tags", placeholder="e.g. cinema, with Sam", compact=True)
                yield Checkbox("Rewatch ↻", self.initial.rewatch, id="rewatch", compact=True)
            yield Static("", id="error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#title" if self.title_editable else "#rating", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.save()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.save()

    def save(self) -> None:
        """Check everything the watch log would refuse, so an error keeps the dialog and what was typed."""
        from ..store.values import clean_note, clean_tags, clean_title, parse_watched_on

        error = self.query_one("#error", Static)
        title = self.query_one("#title", Input).value.strip() if self.title_editable else self.initial.title
        try:
            if self.title_editable:
                title = clean_title(title)
            day = parse_watched_on(parse_day(self.query_one("#date", Input).value), self.today)
            rating = parse_rating(self.query_one("#rating", Input).value)
            note = clean_note(self.query_one("#note", Input).value)
            tags = clean_tags(self.query_one("#tags", Input).value) if self.with_tags else ()
        except ValueError as exc:
            error.update(str(exc))
            return
        rewatch = self.query_one("#rewatch", Checkbox).value if self.with_tags else False
        self.dismiss(EntryEdit(title, day, rating, note, rewatch, tags))


class ConfirmDialog(ModalScreen[str | None]):
    """A question with a few answers; returns the id of the button pressed (None = Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, heading: str, message: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.heading = heading
        self.message = message
        self.choices = choices  # (id, label); the first is the default (focused)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="dialog"):
            yield Label(self.heading, classes="dialog-title")
            yield Static(self.message, id="confirm-message")
            with Horizontal(classes="dialog-buttons"):
                for position, (choice, label) in enumerate(self.choices):
                    yield Button(label, id=choice, variant="primary" if position == 0 else "default")

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id)
