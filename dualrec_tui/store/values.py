"""The values a watch-log entry may hold, checked once for every way in (add, edit dialog, import).

Each function returns the clean value or raises ValueError with a message a person can act on; the
importers add the file and line, the dialogs show it next to the field.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from dualrec_tui.core.catalog import YEAR_MAX, YEAR_MIN, plausible_year

MAX_TITLE = 500
MAX_NOTE = 10_000
MAX_TAG = 100
MAX_TAGS = 50
EARLIEST_DATE = date(YEAR_MIN, 1, 1)  # no film was watched before films existed


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave this field as it is" in `WatchLog.update`


def parse_rating(value: float | int | str | None) -> float | None:
    """A half-star rating 0.5..5.0 (None / '' = unrated); ValueError says what is wrong."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"rating {value!r} is not a number (expected 0.5 to 5.0 in half stars)") from None
    if not math.isfinite(number) or not 0.5 <= number <= 5.0 or number * 2 != round(number * 2):
        raise ValueError(f"rating {value!r} is not 0.5 to 5.0 in half stars")
    return number


def parse_watched_on(value: date | str | None, today: date | None = None) -> date:
    """An ISO date (YYYY-MM-DD; None = today). Refuses dates before YEAR_MIN or after tomorrow."""
    today = today or date.today()
    if value is None:
        return today
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"date {value!r} is not an ISO date (YYYY-MM-DD)") from None
        if len(text) > 10 and text[10] not in "T ":
            raise ValueError(f"date {value!r} is not an ISO date (YYYY-MM-DD)")
        value = parsed
    elif not isinstance(value, date):
        raise ValueError(f"date {value!r} is not a date")
    if hasattr(value, "date") and callable(value.date):  # a datetime: keep the day
        value = value.date()
    if value < EARLIEST_DATE or value > today + timedelta(days=1):
        raise ValueError(f"date {value.isoformat()} is not between {EARLIEST_DATE.isoformat()} and today")
    return value


def _valid_text(text: str, what: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"the {what} is not valid text (unpaired surrogate)") from None
    return text


def _one_line(text: str) -> str:
    """Control characters dropped and whitespace (line breaks too) collapsed to single spaces."""
    return " ".join("".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc").split())


def clean_title(title: str) -> str:
    """Whitespace collapsed, control characters dropped, 1..500 characters; ValueError otherwise."""
    if not isinstance(title, str):
        raise ValueError("the title is not text")
    text = _one_line(title)
    if not text:
        raise ValueError("the title is empty")
    if len(text) > MAX_TITLE:
        raise ValueError(f"the title is longer than {MAX_TITLE} characters")
    return _valid_text(text, "title")


def clean_note(note: str | None) -> str | None:
    """Trimmed, control characters other than tab / line breaks dropped, at most 10,000 characters."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise ValueError("the note is not text")
    text = "".join(ch for ch in note if ch in "\t\n\r" or unicodedata.category(ch) != "Cc").strip()
    if len(text) > MAX_NOTE:
        raise ValueError(f"the note is longer than {MAX_NOTE} characters")
    return _valid_text(text, "note") or None


def clean_tags(tags: str | Iterable[str] | None) -> tuple[str, ...]:
    """Tags in the order given, each trimmed with whitespace collapsed; empty and repeated ones dropped.

    A string is split on commas (Letterboxd's `Tags` column, the edit dialog), so a tag never holds a
    comma and "a, b" reads back as the same tags."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError("a tag is not text")
        text = _one_line(tag.replace(",", " "))
        if len(text) > MAX_TAG:
            raise ValueError(f"the tag {text[:20]!r}… is longer than {MAX_TAG} characters")
        if text and text not in cleaned:
            cleaned.append(_valid_text(text, "tag"))
    if len(cleaned) > MAX_TAGS:
        raise ValueError(f"more than {MAX_TAGS} tags")
    return tuple(cleaned)


def check_year(year: Any) -> int | None:
    """A film's release year (None = unknown) within core.catalog's YEAR_MIN..YEAR_MAX."""
    if year is None or year == "":
        return None
    if isinstance(year, bool) or not isinstance(year, (int, str)):
        raise ValueError(f"year {year!r} is not a year")
    text = str(year).strip()
    if not text.isascii() or not text.isdigit() or not plausible_year(int(text)):
        raise ValueError(f"year {year!r} is not a year between {YEAR_MIN} and {YEAR_MAX}")
    return int(text)
