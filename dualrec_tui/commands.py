"""The command palette provider: every app action by name (Ctrl+P), from one table."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (palette name, app action, help text). The help screen lists keys; this lists everything by name.
ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("Search the catalog", "focus_search", "Jump to the search box"),
    ("Log a movie not in the catalog", "log_free_text", "Log the search text (or any title) as free text"),
    ("Edit the selected history entry", "edit_entry", "Change its date, rating or note"),
    ("Delete the selected history entry", "delete_entry", "Remove it from the watch log (undo brings it back)"),
    ("Undo the last delete or 'not interested'", "undo", "Restore the deleted entry, or show the hidden movie again"),
    ("Log the selected recommendation as watched", "log_recommendation", "Add it to the watch log, dated today"),
    ("Not interested in the selected recommendation", "not_interested", "Never recommend this movie again"),
    ("Refresh recommendations", "refresh", "New recommendations: the movies on screen are set aside"),
    ("Hidden movies (not interested)", "hidden_movies", "See the movies you hid and show one again"),
    ("Import / export the watch log", "import_export", "Letterboxd, IMDb, CSV or JSON in; CSV or JSON out"),
    ("Settings", "settings", "Models folder, number of recommendations, LLM on/off, GPU layers, threads"),
    ("Model status", "model_status", "What is loaded, what is missing, and how to rebuild it"),
    ("Help: keys", "help", "Every key binding"),
    ("Quit", "quit", "Leave dualrec"),
)


class DualrecCommands(Provider):
    """Offers ACTIONS in the palette; choosing one runs the app action."""

    async def discover(self) -> Hits:
        for name, action, help_text in ACTIONS:
            yield DiscoveryHit(name, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in ACTIONS:
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(name), partial(self.app.run_action, action), text=name, help=help_text
                )
