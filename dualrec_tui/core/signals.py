"""The signals that can place a recommendation, and the words the app shows for them.

Kept apart from core/fusion.py (which needs numpy) so the screens can name signals without loading it."""

SIGNALS = ("lstm", "llm", "sim", "markov")  # what score fusion weighs
# tags shown in the app ("next": MovieLens users rated it right after the user's last movie: the Markov signal)
SIGNAL_WORDS = {"lstm": "LSTM", "llm": "LLM", "sim": "similar", "markov": "next", "popular": "popular"}
