"""The model status line: what is loaded, what is loading, and how to rebuild what is missing."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from ..services import Component

LABELS = {"catalog": "catalog", "lstm": "LSTM", "llm": "LLM", "rerank": "SBERT"}


def describe(component: Component) -> Content:
    """One component as styled text, e.g. 'LSTM ✓' or 'LLM ✗ missing: python -m training llm'."""
    label = LABELS.get(component.name, component.name)
    state = component.state
    if state == "ready" and component.note:
        return Content.from_markup("$label [$success]✓[/] [$warning]($note)[/]", label=label, note=component.note)
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
    fix = f": {component.rebuild}" if component.rebuild else ""
    return Content.from_markup("$label [$error]✗ $state[/][$text-muted]$fix[/]", label=label, state=state, fix=fix)


class ModelStatus(Static):
    """A one-line summary of the catalog, LSTM and LLM; the full problem goes into its tooltip."""

    def show(self, components: dict[str, Component]) -> None:
        parts = [describe(c) for c in components.values()]
        self.update(Content("  ·  ").join(parts))
        problems = [
            f"{LABELS.get(c.name, c.name)}: {c.problem}" + (f"\n  rebuild: {c.rebuild}" if c.rebuild else "")
            for c in components.values()
            if c.problem
        ]
        self.tooltip = "\n".join(problems) or None
