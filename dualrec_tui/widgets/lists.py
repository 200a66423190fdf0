"""The three lists of the main screen: search results, the watch history and the recommendations.

Each is an OptionList whose option ids point back at the data (catalog index, entry id, position),
with bindings that call app actions, so keys, the command palette and the help screen agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from ..core.catalog import Movie, title_label
from ..core.signals import SIGNAL_WORDS

if TYPE_CHECKING:
    from ..core.pipeline import Recommendation

SOURCE_TAGS = {
    "lstm": ("LSTM", "$primary"),
    "llm": ("LLM", "$secondary"),
    "both": ("LSTM+LLM", "$success"),
}


def recommendation_tag(rec: Recommendation) -> tuple[str, str]:
    """The tag naming what placed a pick ('LSTM+LLM+similar'), and its colour."""
    signals = tuple(s for s in rec.signals if s in SIGNAL_WORDS)
    if not signals:
        return SOURCE_TAGS.get(rec.source, (rec.source, "$accent"))
    colour = "$success" if len(signals) > 1 else ("$primary" if signals == ("lstm",) else "$secondary")
    return "+".join(SIGNAL_WORDS[s] for s in signals), colour


def movie_prompt(movie: Movie) -> Content:
    """'Title (Year)' then the genres, muted, on the same line."""
    return Content.from_markup("$title  [$text-muted]$genres[/]", title=movie.label, genres=movie.genre_text)


def stars(rating: float | None) -> str:
    if rating is None:
        return ""
    whole = int(rating)
    return "★" * whole + ("½" if rating - whole >= 0.5 else "")


NOTE_PREVIEW = 60  # characters of a note shown in the history (e edits the whole note)


def note_preview(note: str) -> str:
    """The first line of a note, cut to NOTE_PREVIEW characters: one history row stays two lines high."""
    lines = note.strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    cut = len(first) > NOTE_PREVIEW or len(lines) > 1
    return (first[: NOTE_PREVIEW - 1].rstrip() + "…") if cut else first


TAGS_PREVIEW = 30  # characters of tags shown in the history (e shows them all)
REWATCH_MARK = "↻"


def tags_preview(tags: Sequence[str]) -> str:
    """'#cinema #with-sam +2': as many tags as fit in TAGS_PREVIEW characters, then how many more."""
    shown: list[str] = []
    for position, tag in enumerate(tags):
        word = "#" + tag.replace(" ", "-")
        more = len(tags) - position
        if shown and len(" ".join([*shown, word])) > TAGS_PREVIEW:
            return " ".join([*shown, f"+{more}"])
        shown.append(word if len(word) <= TAGS_PREVIEW else word[: TAGS_PREVIEW - 1] + "…")
    return " ".join(shown)


def entry_prompt(entry: Any) -> Content:
    """A history row: date, title, ↻ for a rewatch, rating, then genres / 'not in catalog', the tags and the
    note's first line, muted."""
    title = title_label(entry.title, getattr(entry, "year", None))
    if getattr(entry, "rewatch", False):
        title = f"{title} {REWATCH_MARK}"
    genres = ", ".join(entry.genres) if entry.genres else ""
    extra = genres if entry.movie_id is not None else "not in catalog"
    tags = getattr(entry, "tags", ())
    if tags:
        extra = f"{extra} · {tags_preview(tags)}" if extra else tags_preview(tags)
    if entry.note:
        note = note_preview(entry.note)
        extra = f"{extra} — {note}" if extra else note
    return Content.from_markup(
        "[$text-muted]$date[/]  $title  [$warning]$stars[/]\n           [$text-muted]$extra[/]",
        date=str(entry.watched_on),
        title=title,
        stars=stars(entry.rating),
        extra=extra,
    )


def recommendation_prompt(position: int, rec: Recommendation) -> Content:
    """'1. Title (Year) [LSTM+LLM]' then, muted, why it is there (or its genres)."""
    tag, colour = recommendation_tag(rec)
    detail = rec.why or rec.movie.genre_text
    return Content.from_markup(
        f"[$text-muted]$n.[/] $title [{colour}]\\[$tag][/]\n    [$text-muted]$detail[/]",
        n=f"{position + 1:>2}",
        title=rec.label,
        tag=tag,
        detail=detail,
    )


class SearchInput(Input):
    """The search box: typing searches the catalog, Enter logs the highlighted result."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "down", "app.focus_results", "Results", show=False, id="search.results", tooltip="Move into the results"
        ),
        Binding(
            "ctrl+n",
            "app.log_free_text",
            "Log as typed",
            id="search.free_text",
            tooltip="Log a title the catalog lacks",
        ),
    ]


class ResultList(OptionList):
    """Live fuzzy search results; option id = catalog index."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Log it", id="results.log", tooltip="Log the highlighted movie, dated today"),
        Binding("escape", "app.focus_search", "Back to search", show=False, id="results.back"),
    ]

    def show_movies(self, movies: Sequence[Movie]) -> None:
        self.set_options(Option(movie_prompt(m), id=str(m.index)) for m in movies)
        if movies:
            self.highlighted = 0

    def show_message(self, text: str) -> None:
        self.set_options([Option(Content.from_markup("[$text-muted]$text[/]", text=text), disabled=True)])


class HistoryList(OptionList):
    """The watch log, newest first; option id = entry id."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "app.edit_entry", "Edit", id="history.edit", tooltip="Change date, rating or note (or Enter)"),
        Binding("d,delete", "app.delete_entry", "Delete", id="history.delete", tooltip="Delete (Ctrl+Z undoes)"),
    ]

    def show_entries(self, entries: Iterable[Any]) -> None:
        keep = self.highlighted
        options = [Option(entry_prompt(e), id=str(e.id)) for e in entries]
        self.set_options(options)
        if options:
            self.highlighted = min(keep or 0, len(options) - 1)

    def position_of(self, entry_id: int) -> int | None:
        """Where the entry `entry_id` is in the list (None when it is not shown)."""
        return next((i for i in range(self.option_count) if self.get_option_at_index(i).id == str(entry_id)), None)

    @property
    def selected_entry_id(self) -> int | None:
        if self.highlighted is None or self.option_count == 0:
            return None
        option = self.get_option_at_index(self.highlighted)
        return int(option.id) if option.id is not None else None


class RecommendationList(OptionList):
    """Recommendations; option id = position in the list the app holds."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "w", "app.log_recommendation", "Watched", id="recs.watched", tooltip="Log it as watched today (or Enter)"
        ),
        Binding(
            "n",
            "app.not_interested",
            "Hide",
            id="recs.not_interested",
            tooltip="Not interested: never recommend it (Ctrl+Z undoes)",
        ),
    ]

    def show_recommendations(self, recs: Sequence[Recommendation], message: str = "") -> None:
        keep = self.highlighted
        options: list[Option] = [Option(recommendation_prompt(i, r), id=str(i)) for i, r in enumerate(recs)]
        if not options and message:
            options = [Option(Content.from_markup("[$text-muted]$text[/]", text=message), disabled=True)]
        self.set_options(options)
        if recs:
            self.highlighted = min(keep or 0, len(recs) - 1)

    @property
    def selected_position(self) -> int | None:
        if self.highlighted is None or self.option_count == 0:
            return None
        option = self.get_option_at_index(self.highlighted)
        return int(option.id) if option.id is not None else None
