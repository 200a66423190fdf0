"""Import a watch history (preview first, then commit all or abort) and export the log to CSV / JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from textual.worker import get_current_worker

from ..core.catalog import Catalog
from ..core.errors import DualrecError

EXAMPLES = 4


def count_of(n: int, singular: str, plural: str | None = None) -> str:
    """ "1 entry", "2 entries": the messages count things the user has."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def describe_preview(preview: Any) -> str:
    """Counts plus a few ambiguous / unmatched rows, so the user knows what Commit will do."""
    counts = preview.counts
    lines = [
        f"{preview.path.name} ({preview.format}): {count_of(len(preview.rows), 'row')}",
        f"  matched {counts.get('matched', 0)} · ambiguous {counts.get('ambiguous', 0)} · "
        f"unmatched {counts.get('unmatched', 0)} (kept as free text) · already logged {counts.get('duplicate', 0)}"
        f" · skipped {counts.get('skipped', 0)}",
    ]
    for status, what in (("ambiguous", "best guess"), ("unmatched", "not in catalog")):
        rows = preview.with_status(status)[:EXAMPLES]
        for row in rows:
            guess = f" → {row.movie.label}" if row.movie is not None else ""
            lines.append(f"  {status}: {row.label}{guess} ({what})")
    duplicates = preview.with_status("duplicate")
    if duplicates:
        shown = ", ".join(row.label for row in duplicates[:EXAMPLES])
        more = f" and {len(duplicates) - EXAMPLES:,} more" if len(duplicates) > EXAMPLES else ""
        lines.append(f"  already logged (left as they are): {shown}{more}")
    for file, line, why in preview.skipped[:EXAMPLES]:
        lines.append(f"  skipped {file}:{line}: {why}")
    rewatches = f"{preview.rewatches} rewatch{'es' if preview.rewatches > 1 else ''} ↻"
    kept = [
        text
        for count, text in ((preview.rewatches, rewatches), (preview.tagged, f"{preview.tagged} with tags"))
        if count
    ]
    if kept:
        lines.append(f"  kept on the entries: {', '.join(kept)}")
    replacing = getattr(preview, "to_replace", 0)
    if replacing:
        filling = [row for row in preview.rows if row.status != "duplicate" and row.replaces is not None]
        shown = ", ".join(row.label for row in filling[:EXAMPLES])
        more = f" and {len(filling) - EXAMPLES:,} more" if len(filling) > EXAMPLES else ""
        verb = "fills" if replacing == 1 else "fill"
        lines.append(
            f"  {count_of(replacing, 'row')} {verb} in a date or a rating on a film logged without one: {shown}{more}"
        )
    if counts.get("ambiguous"):
        lines.append("  Choose… picks the movie for each ambiguous row (or keeps it as typed).")
    fills = f" and fills in {count_of(replacing, 'entry', 'entries')}" if replacing else ""
    lines.append(
        f"Commit adds {count_of(preview.to_add, 'entry', 'entries')}{fills} in one step; Abort writes nothing."
    )
    return "\n".join(lines)


class ImportExportScreen(ModalScreen[int | None]):
    """Returns how many entries were imported (0 or None when nothing changed)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="import.close")]

    class ShowHidden(Message):
        """The user asked for the not-interested list (the app opens it over this screen)."""

    def __init__(self, watchlog: Any, catalog: Catalog | None) -> None:
        super().__init__()
        self.watchlog = watchlog
        self.catalog = catalog
        self.preview: Any = None
        self.imported = 0
        self.busy = ""  # "matching" or "writing" while a worker runs (Abort cancels matching)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="import-export", classes="dialog"):
            yield Label("Import a watch history", classes="dialog-title")
            yield Static(
                "Letterboxd export (.zip, its folder, or its CSVs one by one), IMDb ratings.csv, a CSV with "
                "title/year/date, or a "
                "dualrec JSON export.",
                classes="muted",
            )
            yield Input(placeholder="path to the file", id="import-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Preview", id="preview", variant="primary")
                yield Button("Commit all", id="commit", variant="success", disabled=True)
                yield Button("Choose…", id="choose", disabled=True, tooltip="Pick the movie for each ambiguous row")
                yield Button("Abort", id="abort", disabled=True)
            yield Static("", id="preview-text")
            yield Label("Export the watch log", classes="dialog-title")
            yield Input(str(Path.home() / "dualrec-watchlog.csv"), id="export-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export CSV", id="export-csv")
                yield Button("Export JSON", id="export-json")
                yield Button("Hidden movies…", id="hidden")
                yield Button("Close", id="close")
            yield Static("", id="export-text")

    def on_mount(self) -> None:
        self.query_one("#import-path", Input).focus()

    def action_close(self) -> None:
        if self.busy == "writing":
            self.notify("The import is being written; this closes when it is done.", severity="warning")
            return
        if self.busy == "matching":
            self.workers.cancel_group(self, "import")
        self.dismiss(self.imported)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "import-path":
            self.start_preview()
        elif event.input.id == "export-path":
            self.export("csv" if not event.value.lower().endswith(".json") else "json")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id
        if button == "preview":
            self.start_preview()
        elif button == "commit":
            self.commit()
        elif button == "abort":
            self.abort()
        elif button == "choose":
            self.choose_rows()
        elif button == "export-csv":
            self.export("csv")
        elif button == "export-json":
            self.export("json")
        elif button == "hidden":
            self.post_message(self.ShowHidden())
        elif button == "close":
            self.action_close()

    # ------------------------------------------------------------------ import
    def _set_preview(self, preview: Any, text: str) -> None:
        self.preview = preview
        self.query_one("#preview-text", Static).update(text)
        self.query_one("#commit", Button).disabled = preview is None
        self.query_one("#abort", Button).disabled = preview is None
        ambiguous = preview is not None and bool(preview.with_status("ambiguous"))
        self.query_one("#choose", Button).disabled = not ambiguous

    def choose_rows(self) -> None:
        """Ambiguous rows one by one (ChooseMatchScreen); the preview text is redone after."""
        if self.preview is None:
            return
        from .choose import ChooseMatchScreen

        def done(decided: int | None) -> None:
            if self.preview is not None:
                self._set_preview(self.preview, describe_preview(self.preview))

        self.app.push_screen(ChooseMatchScreen(self.preview, self.watchlog), callback=done)

    def start_preview(self) -> None:
        raw = self.query_one("#import-path", Input).value.strip()
        if not raw:
            self._set_preview(None, "Type the path of the file to import.")
            return
        if self.catalog is None:
            self._set_preview(None, "The catalog is not loaded yet (see the status line); try again in a moment.")
            return
        if self.busy:
            return
        self._set_preview(None, "Reading and matching…")
        self.busy = "matching"
        self.query_one("#abort", Button).disabled = False  # Abort cancels the matching
        self._plan(Path(raw).expanduser())

    def _progress(self, text: str) -> None:
        if self.busy:
            self.query_one("#preview-text", Static).update(text)

    def _done(self, preview: Any, text: str) -> None:
        self.busy = ""
        self._set_preview(preview, text)

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def _plan(self, path: Path) -> None:
        """Read and match off the UI thread: matching thousands of unknown titles takes seconds."""
        from ..store import plan_import

        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._progress, f"Matching titles… {done:,} of {total:,} (Abort stops)")

        try:
            preview = plan_import(
                path, self.catalog, self.watchlog, progress=progress, cancelled=lambda: worker.is_cancelled
            )
        except (DualrecError, OSError, MemoryError) as exc:
            if not worker.is_cancelled:  # after Abort the screen already says "nothing was written"
                self.app.call_from_thread(self._done, None, f"Cannot import: {exc}")
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._done, preview, describe_preview(preview))

    def commit(self) -> None:
        if self.preview is None or self.busy:
            return
        self.busy = "writing"
        self.query_one("#commit", Button).disabled = self.query_one("#abort", Button).disabled = True
        self.query_one("#preview-text", Static).update(f"Writing {count_of(self.preview.to_add, 'entry', 'entries')}…")
        self._commit(self.preview)

    @work(thread=True, exclusive=True, group="import-commit", exit_on_error=False)
    def _commit(self, preview: Any) -> None:
        """One transaction in a worker: 50,000 rows froze the screen for seconds on the UI thread."""
        try:
            result = self.watchlog.apply_import(preview)
        except (DualrecError, OSError, ValueError) as exc:
            self.app.call_from_thread(self._done, None, f"Import failed, nothing was written: {exc}")
            return
        self.imported += result.added + result.replaced
        filled = f"; {count_of(result.replaced, 'entry', 'entries')} got a date or a rating" if result.replaced else ""
        logged = "was" if result.duplicates == 1 else "were"
        self.app.call_from_thread(
            self._done,
            None,
            f"Imported {count_of(result.added, 'entry', 'entries')} ({result.free_text:,} as free text); "
            f"{result.duplicates:,} {logged} already logged{filled}.",
        )

    def abort(self) -> None:
        if self.busy == "writing":
            return  # one transaction: it commits whole or not at all, it cannot stop half-way
        if self.busy == "matching":
            self.workers.cancel_group(self, "import")
        self.busy = ""
        self._set_preview(None, "Aborted: nothing was written.")

    # ------------------------------------------------------------------ export
    def export(self, kind: str) -> None:
        raw = self.query_one("#export-path", Input).value.strip()
        if not raw:
            self.query_one("#export-text", Static).update("Type where to write the export.")
            return
        path = Path(raw).expanduser()
        if kind == "json" and path.suffix.lower() != ".json":
            path = path.with_suffix(".json")
        elif kind == "csv" and path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        if path.exists():
            from .dialogs import ConfirmDialog

            def answer(choice: str | None) -> None:
                if choice == "replace":
                    self._write_export(kind, path)
                else:
                    self.query_one("#export-text", Static).update(f"Not exported: {path} is unchanged.")

            self.app.push_screen(
                ConfirmDialog(
                    "Replace the file?",
                    f"{path} already exists. Replace it with the export?",
                    [("replace", "Replace"), ("cancel", "Cancel")],
                ),
                callback=answer,
            )
            return
        self._write_export(kind, path)

    def _write_export(self, kind: str, path: Path) -> None:
        try:
            count = self.watchlog.export_json(path) if kind == "json" else self.watchlog.export_csv(path)
        except (DualrecError, OSError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.query_one("#export-text", Static).update(f"Export failed: {message}")
            return
        self.query_one("#export-text", Static).update(f"Wrote {count_of(count, 'entry', 'entries')} to {path}")
