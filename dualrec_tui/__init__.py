"""dualrec: a local-first movie recommender for the terminal (DUALRec: LSTM + LLM + SBERT re-ranking)."""

__version__ = "0.1.0"
