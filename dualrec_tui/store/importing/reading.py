"""Reading a file a user hands us, safely: size and line limits, strict UTF-8, CSV with every bad row
reported (up to MAX_PROBLEMS) as `DataFormatError(file, line, problem)`, and field parsers that say
which value on which line is wrong. Nothing here knows a format; letterboxd / imdb / ours do.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from dualrec_tui.core.errors import DataFormatError

from ..values import check_year, clean_note, clean_tags, clean_title, parse_rating, parse_watched_on

MAX_FILE_BYTES = 64 * 1024 * 1024  # a decade of ratings is a few MB; more is not an export
MAX_ROWS = 500_000
MAX_LINE_BYTES = 256 * 1024  # a 10,000-character note is ~40 KB; a longer line is not a watch history
_IMDB_ID = re.compile(r"^tt\d{7,10}$")
T = TypeVar("T")

MAX_PROBLEMS = 20  # bad rows reported at once, so a user can fix a file in one go


class Problems:
    """Bad rows of one import, collected so the user sees up to MAX_PROBLEMS at once, not only the first."""

    def __init__(self) -> None:
        self.errors: list[DataFormatError] = []

    @contextmanager
    def row(self) -> Iterator[None]:
        """Run one row's parsing; a DataFormatError is recorded and the next row is read."""
        try:
            yield
        except DataFormatError as exc:
            self.add(exc)

    def add(self, exc: DataFormatError) -> None:
        self.errors.append(exc)
        if len(self.errors) >= MAX_PROBLEMS:
            self.check(stopped=True)

    def check(self, stopped: bool = False) -> None:
        """Raise one DataFormatError for everything recorded: the first problem, then a line for each other."""
        if not self.errors:
            return
        errors = sorted(self.errors, key=lambda e: (e.path, e.line or 0))
        first = errors[0]
        if len(errors) == 1 and not stopped:
            raise first
        lines = [first.problem]
        for other in errors[1:]:
            where = f"line {other.line}" if other.line is not None else "file"
            where = where if other.path == first.path else f"{other.path}:{other.line}"
            lines.append(f"  {where}: {other.problem}")
        more = f"stopped after {MAX_PROBLEMS} problems" if stopped else f"{len(errors)} problems"
        lines.append(f"  ({more}; nothing was imported)")
        raise DataFormatError(first.path, first.line, "\n".join(lines))


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataFormatError(path, None, "no such file")
    if not path.is_file():
        raise DataFormatError(path, None, "not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataFormatError(path, None, f"file is {size} bytes, more than the {MAX_FILE_BYTES} an export can be")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, None, f"cannot read the file ({exc.strerror or exc})") from exc


def _long_line(data: bytes) -> int | None:
    """The number of the first line longer than MAX_LINE_BYTES, or None (a 60 MB one-line header took
    2.7 GB in the CSV parser)."""
    start, line = 0, 1
    while True:
        end = data.find(b"\n", start)
        stop = len(data) if end < 0 else end
        if stop - start > MAX_LINE_BYTES:
            return line
        if end < 0:
            return None
        start, line = end + 1, line + 1


def read_text(data: bytes, display: str) -> str:
    """Strict UTF-8 (a BOM is fine); binary data is refused with the line it starts on."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataFormatError(display, data.count(b"\n", 0, nul) + 1, "binary data (NUL byte), not a text file")
    long_line = _long_line(data)
    if long_line is not None and data.lstrip()[:1] not in (b"{", b"["):  # JSON may sit on one line
        raise DataFormatError(
            display, long_line, f"line longer than {MAX_LINE_BYTES // 1024} KB: not a watch history export"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(display, line, "not UTF-8 text; save the file as UTF-8 and retry") from exc
    if text.startswith("\ufeff"):  # a second BOM (some tools add one per concatenation)
        text = text[1:]
    return text


def _csv_problem(exc: csv.Error, display: str, start: int, line: int) -> DataFormatError:
    """Python's csv messages in plain words, at the line where the trouble starts."""
    message = str(exc)
    if "unexpected end of data" in message:
        return DataFormatError(
            display, start, 'a quote (") opened on this line is never closed, so the rest of the file is one field'
        )
    if "expected after" in message:
        return DataFormatError(
            display, line, 'a quote (") ends in the middle of a field: quote the whole field and double quotes inside'
        )
    if "field larger than field limit" in message:
        return DataFormatError(
            display, line, f"malformed CSV: a field is longer than {csv.field_size_limit()} characters"
        )
    return DataFormatError(display, line, f"malformed CSV ({message})")


def csv_records(
    text: str,
    display: str,
    aliases: dict[str, tuple[str, ...]],
    required: tuple[str, ...],
    problems: Problems | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, {field: value}) for each data row; header names are matched case-insensitively.

    `aliases` maps our field name to the header spellings that mean it; `required` fields must exist.
    With `problems`, a bad row is recorded and skipped (the caller raises them all at the end).
    """
    problems = problems or Problems()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    rows = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problem = _csv_problem(exc, display, start, reader.line_num or start)
            if header is None or "never closed" in problem.problem:
                problems.add(problem)
                problems.check()  # nothing sensible can be read after this
            problems.add(problem)
            continue
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lstrip("\ufeff").lower() for cell in row]
            for name, spellings in aliases.items():
                for spelling in spellings:
                    if spelling in header:
                        columns[name] = header.index(spelling)
                        break
            missing = [name for name in required if name not in columns]
            if missing:
                wanted = ", ".join(aliases[name][0] for name in missing)
                found = ", ".join(row)
                found = found if len(found) <= 200 else found[:200] + "..."
                raise DataFormatError(display, start, f"missing column(s) {wanted} (header has: {found})")
            continue
        if (len(row) > len(header) and any(cell.strip() for cell in row[len(header) :])) or (
            len(row) < len(header) and any(index >= len(row) for name, index in columns.items() if name in required)
        ):
            problems.add(DataFormatError(display, start, f"{len(row)} fields but the header has {len(header)}"))
            continue
        rows += 1
        if rows > MAX_ROWS:
            raise DataFormatError(display, start, f"more than {MAX_ROWS} rows")
        yield start, {name: (row[index].strip() if index < len(row) else "") for name, index in columns.items()}
    if header is None:
        raise DataFormatError(display, None, "empty file: no header row")


def header_of(text: str) -> list[str]:
    """The lower-cased first non-empty CSV row, to recognise the format."""
    try:
        for row in csv.reader(io.StringIO(text[:65536], newline="")):
            if any(cell.strip() for cell in row):
                return [cell.strip().lower() for cell in row]
    except csv.Error:
        return []
    return []


class Fields:
    """Field parsers for one row: a bad value raises DataFormatError(file, line, problem).

    The checks themselves are store.values' (one rule for a typed entry and an imported one)."""

    def __init__(self, display: str, line: int | None) -> None:
        self.display = display
        self.line = line

    def fail(self, problem: str) -> DataFormatError:
        return DataFormatError(self.display, self.line, problem)

    def _checked(self, check: Callable[[Any], T], value: Any, prefix: str = "") -> T:
        try:
            return check(value)
        except ValueError as exc:
            raise self.fail(f"{prefix}{exc}") from None

    def title(self, value: Any, what: str = "title") -> str:
        try:
            return clean_title(value)
        except ValueError as exc:
            raise self.fail(str(exc).replace("the title", f"the {what}")) from None

    def year(self, value: Any) -> int | None:
        return self._checked(check_year, value)

    def date(self, value: Any, what: str = "date") -> date:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"missing {what}")
        return self._checked(parse_watched_on, value, f"bad {what}: ")

    def rating(self, value: Any) -> float | None:
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float, str))):
            raise self.fail(f"bad rating {value!r}")
        return self._checked(parse_rating, value, "bad rating: ")

    def imdb_rating(self, value: str) -> float | None:
        if not value:
            return None
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 10:
            raise self.fail(f"bad rating {value!r}: IMDb ratings are whole numbers 1 to 10")
        return int(value) / 2

    def note(self, value: Any) -> str | None:
        return self._checked(clean_note, value)

    def tags(self, value: Any) -> tuple[str, ...]:
        if value is not None and not isinstance(value, (str, list)):
            raise self.fail("tags is not a list of names")
        return self._checked(clean_tags, value or None, "bad tags: ")

    def flag(self, value: Any, what: str) -> bool:
        """Yes / true / 1 (Letterboxd writes "Yes" or nothing); empty = no."""
        if value is None or isinstance(value, bool):
            return bool(value)
        text = value.strip().lower() if isinstance(value, str) else None
        if text in {"", "no", "false", "0"}:
            return False
        if text in {"yes", "true", "1"}:
            return True
        raise self.fail(f"{what} {value!r} is not yes/no")

    def imdb_id(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _IMDB_ID.match(value.strip()):
            raise self.fail(f"bad IMDb id {value!r} (expected tt followed by digits)")
        return value.strip()

    def integer(self, value: Any, what: str) -> int | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.fail(f"{what} {value!r} is not a whole number")
        text = str(value).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise self.fail(f"{what} {value!r} is not a whole number")
        return int(text)
