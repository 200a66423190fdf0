"""What the recommendations panel says as a run's pipeline events arrive (no Textual: a pure view model).

The app feeds each `core.pipeline` event to `RecsView.apply`; the returned `PanelUpdate` is drawn by
`MainScreen`. Every sentence is the pipeline's own account of what ran (`DualRec.describe`) or of what
is under way, so the panel never claims a stage that did not run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.pipeline import Recommendation


@dataclass(frozen=True)
class PanelUpdate:
    """What to redraw: the list (None = keep it), the state line (None = keep it), a notice to toast."""

    recs: list[Recommendation] | None = None
    state: str | None = None
    tooltip: str | None = None
    notice: str = ""
    stage: str = ""  # "lstm", "fused", "llm" or "final" once that point of the run is on screen


@dataclass
class RecsView:
    """One run's panel state. `llm_on`: stage 2 runs in this pipeline; `llm_status`: what to say about a
    missing LLM in plain words ("LLM loading…", "LLM off", ...); `describe`: the pipeline's summary."""

    popular_stage1: bool
    llm_on: bool
    llm_status: str
    describe: Callable[[Any], str]
    tokens: int = 0
    picks: list[str] = field(default_factory=list)
    result: Any = None  # the run's final result, once it came
    hidden_now: set[int] = field(default_factory=set)  # hidden by the user during this run (its exclude predates them)

    @property
    def first(self) -> str:
        return "Popular picks (LSTM unavailable, F4)" if self.popular_stage1 else "LSTM picks"

    def apply(self, event: Any) -> PanelUpdate:
        from ..core.pipeline import FinalReady, FusedReady, LlmSuggestion, LlmToken, LstmReady, Notice

        if isinstance(event, LstmReady):
            state = f"{self.first} · LLM thinking…" if self.llm_on else self.first
            return PanelUpdate(self._not_hidden(event.recommendations), state, stage="lstm")
        if isinstance(event, FusedReady):
            state = "Ranked · the LLM is writing its picks…" if self.llm_on else "Ranked"
            return PanelUpdate(self._not_hidden(event.recommendations), state, stage="fused")
        if isinstance(event, LlmToken):
            self.tokens += 1
            return PanelUpdate(
                state=f"{self.first} · LLM writing… ({self.tokens} tokens)" if self.tokens % 4 == 1 else None
            )
        if isinstance(event, LlmSuggestion):
            if event.status != "kept" or event.movie is None:
                return PanelUpdate()
            self.picks.append(event.movie.label)
            return PanelUpdate(state=f"Ranked · the LLM picks {', '.join(self.picks)}…", stage="llm")
        if isinstance(event, Notice):
            return PanelUpdate(notice=event.message)
        if isinstance(event, FinalReady):
            return self._final(event.result)
        return PanelUpdate()

    def hidden(self, index: int) -> PanelUpdate | None:
        """The list and state line once the user hid movie `index` (None before the run ended; its later
        events leave the movie out).

        The next pick of the run's reserve takes the free place, so the list keeps its length without
        another run; the line is said anew from what is now listed, so an LLM pick that is no longer on
        screen is marked "(not listed)" like one the list never showed."""
        self.hidden_now.add(index)
        if self.result is None:
            return None
        return self._final(self.result)

    def _not_hidden(self, recs: list[Recommendation]) -> list[Recommendation]:
        return [r for r in recs if r.index not in self.hidden_now]

    def _final(self, result: Any) -> PanelUpdate:
        if self.hidden_now:  # picks hidden during the run: out, and the reserve fills their places
            kept = self._not_hidden(result.recommendations)
            reserve = self._not_hidden(result.reserve)
            while len(kept) < len(result.recommendations) and reserve:
                kept.append(reserve.pop(0))
            result = replace(result, recommendations=kept, reserve=reserve)
        self.result = result
        notes = "; ".join(result.notes)
        if any(note.startswith("failed:") for note in result.notes):
            state = f"{self.first} · recommending failed (point here for why)"
        elif result.stages.get("llm") == "no history":
            state = f"Popular picks · {self.llm_status or 'log a movie and the LLM adds its suggestions'}"
        else:
            state = self.describe(result) or self.first
            if self.llm_status:
                state += f" · {self.llm_status}"
        return PanelUpdate(list(result.recommendations), state, tooltip=notes or None, stage="final")


@dataclass
class RefreshRounds:
    """Ctrl+R variety: each round sets the movies on screen aside so the next-best ones come up; after
    `limit` rounds (or when nothing is shown) it starts from the top again."""

    limit: int = 3
    rounds: int = 0
    set_aside: frozenset[int] = frozenset()

    def reset(self) -> None:
        self.rounds, self.set_aside = 0, frozenset()

    def next(self, shown: set[int]) -> frozenset[int] | None:
        """The movies to set aside for the next round, or None to go back to the top."""
        if self.rounds >= self.limit or not shown:
            self.reset()
            return None
        self.rounds += 1
        self.set_aside = self.set_aside | frozenset(shown)
        return self.set_aside


def failed_result(recs: list[Recommendation], problem: str) -> Any:
    """A final result for a run that broke: the list on screen stays, the note says why."""
    from ..core.pipeline import DualRecResult

    return DualRecResult(recommendations=list(recs), lstm=list(recs), notes=[f"failed: {problem}"])
