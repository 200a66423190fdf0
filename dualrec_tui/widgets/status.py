"""The model status line: what is loaded, what is loading, and how to rebuild what is missing."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from ..services import Component

LABELS = {"catalog": "catalog", "lstm": "LSTM", "llm": "LLM", "rerank": "re-ranking"}
# Component notes in plain words for the status line; F4 shows the technical detail.
PLAIN_NOTES = {"untuned base": "not trained on movies yet"}


def describe(component: Component) -> Content:
    """One component as styled text, e.g. 'LSTM ✓' or 'LLM ✗ missing (F4)'; F4 has the problem and the fix."""
    label = LABELS.get(component.name, component.name)
    state = component.state
    if state == "ready" and component.note:
        note = PLAIN_NOTES.get(component.note, component.note)
        return Content.from_markup("$label [$success]✓[/] [$warning]($note)[/]", label=label, note=note)
    if state == "ready":
        return Content.from_markup("$label [$success]✓[/]", label=label)
    if state == "loading":
        return Content.from_markup("$label [$warning]loading…[/]", label=label)
    if state == "waiting":
        return Content.from_markup("$label [$text-muted]waiting[/]", label=label)
    if state == "blocked":
        return Content.from_markup("$label [$text-muted]needs $what[/]", label=label, what=component.problem)
    if state == "off":
        return Content.from_markup("$label [$text-muted]off[/]", label=label)
    return Content.from_markup("$label [$error]✗ $state[/] [$text-muted](F4)[/]", label=label, state=state)


class ModelStatus(Static):
    """A one-line summary of the catalog, LSTM and LLM; the full problem goes into its tooltip."""

    _shown: tuple[str, Any] | None = None

    def show(self, components: dict[str, Component], progress: str | None = None) -> None:
        """`progress` (a slow first-start step) replaces the parts still loading."""
        parts = [describe(c) for c in components.values() if not (progress and c.state == "loading")]
        if progress:
            parts.append(Content.from_markup("[$warning]$progress[/]", progress=progress))
        line = Content("  ·  ").join(parts)
        if (line.plain, line.spans) != self._shown:  # the same line again: no relayout (launch asks often)
            self._shown = (line.plain, line.spans)
            self.update(line)
        problems = [
            f"{LABELS.get(c.name, c.name)}: {c.problem}" + (f"\n  rebuild: {c.rebuild}" if c.rebuild else "")
            for c in components.values()
            if c.problem
        ]
        self.tooltip = "\n".join(problems) or None
