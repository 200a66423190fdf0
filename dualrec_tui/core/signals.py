"""The signals that can place a recommendation, and the words the app shows for them.

Kept apart from core/fusion.py (which needs numpy) so the screens can name signals without loading it."""

SIGNALS = ("lstm", "llm", "sim")  # what score fusion weighs
SIGNAL_WORDS = {"lstm": "LSTM", "llm": "LLM", "sim": "similar", "popular": "popular"}  # tags shown in the app
