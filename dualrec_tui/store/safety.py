"""Know whose file it is before writing to it, and say plainly what went wrong when SQLite fails.

Why: `--db` pointed at another program's SQLite file used to convert it to WAL and add our tables,
and a newer dualrec's log in rollback-journal mode was switched to WAL while the message said it was
not modified. `identify` looks at the file through a read-only connection first and refuses anything
that is not ours (or is newer, or damaged) before a single byte changes. `explain` turns SQLite's
error codes (disk full, read-only, locked, damaged) into a message a person can act on.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .migrations import Migration, SchemaTooNewError, WatchLogError

SQLITE_HEADER = b"SQLite format 3\x00"
APPLICATION_ID = 0x64524543  # "dREC" in the database header (PRAGMA application_id) marks a dualrec watch log
OUR_TABLES = frozenset({"schema_migrations", "entries"})


class ForeignDatabaseError(WatchLogError):
    """The file is not a dualrec watch log (another program's database, or not SQLite at all)."""


class DamagedDatabaseError(WatchLogError):
    """The watch log fails SQLite's integrity check; it is left as it is so it can be recovered."""


def recover_hint(path: Path) -> str:
    return (
        f"Recover what is readable with: sqlite3 {path} .recover | sqlite3 {path}.recovered.db  and start with "
        f"--db {path}.recovered.db, or restore a backup of {path.name}"
    )


def explain(path: Path, exc: sqlite3.Error, doing: str) -> WatchLogError:
    """A `WatchLogError` for a SQLite failure: what happened, that nothing was changed, what to do."""
    name = (getattr(exc, "sqlite_errorname", "") or "").upper()
    text = str(exc)
    lower = text.lower()
    if "FULL" in name or "is full" in lower:
        problem = "the disk is full; free some space and try again"
    elif "READONLY" in name or "readonly" in lower:
        problem = "the file is read-only (file permissions or a read-only disk)"
    elif "BUSY" in name or "LOCKED" in name or "locked" in lower:
        problem = "another program holds its lock (another dualrec window importing?); try again in a moment"
    elif "CORRUPT" in name or "NOTADB" in name or "malformed" in lower:
        return DamagedDatabaseError(f"{path}: {doing}: the file is damaged ({text}). {recover_hint(path)}.")
    elif "IOERR" in name or "disk i/o" in lower:
        problem = "the disk reported an input/output error"
    elif "CANTOPEN" in name or "unable to open" in lower:
        problem = f"SQLite cannot open or create files in {path.parent} (does it exist, is it writable?)"
    else:
        problem = text
    return WatchLogError(f"{path}: {doing}: {problem}. Nothing was changed. ({text})")


def connect_read_only(path: Path, timeout: float = 10.0) -> sqlite3.Connection | None:
    """A read-only connection, or None when SQLite cannot read the file without writing beside it.

    A WAL log in a folder we may not write cannot be opened with mode=ro (SQLite must create its
    -shm file); when no -wal file holds unmerged commits, `immutable=1` reads the file exactly."""
    base = f"file:{quote(str(Path(path).resolve()))}"
    options = ["mode=ro"]
    wal = Path(f"{path}-wal")
    if not wal.exists() or wal.stat().st_size == 0:
        options.append("immutable=1")
    for option in options:
        conn = None
        try:
            conn = sqlite3.connect(
                f"{base}?{option}", uri=True, isolation_level=None, timeout=timeout, check_same_thread=False
            )
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            if conn is not None:
                conn.close()
    return None


def why_read_only(path: Path, exc: sqlite3.Error) -> str:
    """Why an existing log can only be read ("" when the failure is something else)."""
    try:
        if Path(path).stat().st_size == 0:
            return ""
    except OSError:
        return ""
    name = (getattr(exc, "sqlite_errorname", "") or "").upper()
    lower = str(exc).lower()
    if "READONLY" in name or "readonly" in lower:
        return "the file, its folder or the disk is read-only"
    if "CANTOPEN" in name or "unable to open" in lower:
        return f"SQLite cannot create files in {Path(path).parent} (the folder is read-only)"
    return ""


def identify(path: Path, migrations: Sequence[Migration], timeout: float = 10.0) -> None:
    """Refuse, without writing anything, a file that is not a dualrec watch log this version may change.

    Ours: the header's application_id is dualrec's, or it is 0 and the file has our tables (logs made
    before the id was set), or the database is empty. Also refused: a newer schema, a damaged file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return  # a new (or empty) file: ours to create
        with path.open("rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise WatchLogError(f"{path}: cannot read it ({exc}); check its permissions") from exc
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        raise ForeignDatabaseError(
            f"{path} is not a SQLite database, so not a dualrec watch log. It was not changed: move it aside, "
            "or point --db / DUALREC_DB at another file."
        )
    conn = connect_read_only(path, timeout)
    if conn is None:
        raise WatchLogError(
            f"{path}: cannot read it: the folder {path.parent} is read-only and SQLite must create the log's "
            "-shm file beside it. Make the folder writable, or copy the log elsewhere and point --db at the copy. "
            "Nothing was changed."
        )
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        }
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        applied = (
            [row[0] for row in conn.execute("SELECT id FROM schema_migrations")]
            if "schema_migrations" in tables
            else []
        )
        check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise explain(path, exc, "cannot open the watch log") from exc
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables and not tables >= OUR_TABLES):
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise ForeignDatabaseError(
            f"{path} is another program's SQLite database (tables: {shown or 'none'}; application id {app_id}), "
            "not a dualrec watch log. It was not changed: point --db / DUALREC_DB at another file."
        )
    known = {m.id for m in migrations}
    newest = max([version, *applied, 0])
    if newest > max(known, default=0) or set(applied) - known:
        raise SchemaTooNewError.for_file(path, newest, max(known, default=0))
    if check != "ok":
        raise DamagedDatabaseError(f"{path}: the watch log is damaged ({check}). {recover_hint(path)}.")


# ----------------------------------------------------------------- CSV formula cells
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP "CSV injection": a spreadsheet runs these as formulas


def _needs_escape(value: str) -> bool:
    return value.startswith(FORMULA_START) or (value.startswith("'") and _needs_escape(value[1:]))


def escape_cell(value: str) -> str:
    """A text cell a spreadsheet will show as text: a leading `'` before `= + - @` (OWASP). A value that
    already starts with `'` before one of those gets one more, so `unescape_cell` restores every value."""
    return "'" + value if _needs_escape(value) else value


def unescape_cell(value: str) -> str:
    """The inverse of `escape_cell` (for re-importing our own CSV export)."""
    return value[1:] if value.startswith("'") and _needs_escape(value[1:]) else value
