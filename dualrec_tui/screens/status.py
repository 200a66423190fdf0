"""Model status: each part of the recommender, its state, what went wrong and the command that fixes it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..services import Component
from ..widgets.status import LABELS, describe

WHAT = {
    "catalog": "movie titles, years and genres (search, logging by title)",
    "lstm": "stage 1: next-movie predictions from your history (instant picks)",
    "llm": "stage 2: the fine-tuned LLM scores the LSTM's top candidates and names its picks",
    "rerank": "stage 3: Sentence-BERT similarity of each candidate to the LSTM's pick and your recent movies, "
    "fused with how many MovieLens users rated it right after your last movie (models/markov)",
}


class ModelStatusScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f4", "close", "Close", id="models.close")]

    def __init__(
        self, components: dict[str, Component], models_dir: Path, log_file: Path | None = None, log_problem: str = ""
    ) -> None:
        super().__init__()
        self.components = components
        self.models_dir = models_dir
        self.log_file = log_file
        self.log_problem = log_problem  # the watch log is unusable: "logging works" would be false

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="model-status", classes="dialog"):
            yield Label("Models", classes="dialog-title")
            yield Static(f"Models folder: {self.models_dir}", classes="muted")
            log = str(self.log_file) if self.log_file else "none (only `dualrec-tui` writes one)"
            yield Static(f"Log file: {log}", id="log-file", classes="muted")
            for name, component in self.components.items():
                yield Static(describe(component), classes="model-line")
                yield Static(WHAT.get(name, LABELS.get(name, name)), classes="muted")
                if component.problem:
                    yield Static(f"problem: {component.problem}", classes="model-problem")
                if component.rebuild and (component.state not in ("ready", "off") or component.note):
                    yield Static(f"fix: {component.rebuild}", classes="model-fix")
            if self.log_problem:
                yield Static(self.log_problem, classes="model-problem")
                yield Static("Escape closes.", classes="muted")
            else:
                yield Static("Logging works whatever is missing. Escape closes.", classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
