"""The key footer, rebuilt only when the keys it shows change.

Textual's `Footer` rebuilds its ~15 key widgets after every binding change it hears of. A launch
publishes five of them (screen push and resume, auto-focus, ...), and the rebuilds they schedule ran
after the first frame, while the catalog loaded: ~50 ms of the UI thread, which shares the GIL with
the loader, for the same keys each time (bench: `benchmarks/bench_app.py --typed`). Here a burst of
changes costs one look at the keys, and a rebuild only when what the footer would show differs.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """`Footer` that skips rebuilds which would show the same keys (same look otherwise)."""

    _check_pending = False
    _shown: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Screen) -> None:
        # Footer.bindings_changed, except that one check covers every change made before the next frame.
        self._bindings_ready = True
        if not screen.app.app_focus or not (self.is_attached and screen is self.screen):
            return
        if not self._check_pending:
            self._check_pending = True
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        self._check_pending = False  # a change from now on needs another check
        shown = self._keys(self.screen)
        if shown != self._shown:
            self._shown = shown
            await self.recompose()

    def _keys(self, screen: Screen) -> tuple[Any, ...]:
        """What `Footer.compose` draws from: the shown bindings, each with its state and key label."""
        shown = [(binding, enabled, tooltip) for _, binding, enabled, tooltip in screen.active_bindings.values()]
        return tuple(
            (binding, enabled, tooltip, self.app.get_key_display(binding)) for binding, enabled, tooltip in shown
        )
