"""The app runs on the shipped models without torch or sentence-transformers (they belong to `[train]`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING_ONLY = ("torch", "sentence_transformers", "transformers", "peft", "accelerate")

# What the app does from start to a full recommendation: load catalog, LSTM, LLM + re-ranker, recommend.
APP_RUN = """
import json, sys
from dualrec_tui.core.artifacts import models_dir
from dualrec_tui.services import ModelHub

hub = ModelHub(models_dir=models_dir(), n_recommendations=5, llm_enabled=LLM)
assert hub.load_catalog() is not None and hub.load_lstm() is not None, hub.components
hub.load_llm()
history = [hub.catalog.resolve(t).movie.index for t in ("Toy Story (1995)", "Aladdin (1992)", "Lion King, The (1994)")]
stages = []
hub.recommend(history, set(), stages.append, lambda: False)
reranker = getattr(hub.pipeline, "reranker", None)
print(json.dumps({
    "states": {name: c.state for name, c in hub.components.items()},
    "final": [len(s.result.recommendations) for s in stages if type(s).__name__ == "FinalReady"],
    "rerank_from": str(getattr(reranker, "shipped_path", None)),
    "rerank_computed": getattr(reranker, "computed", None),
    "loaded": sorted(m for m in TRAINING_ONLY if m in sys.modules),
}))
"""


def run_app(llm: bool) -> dict:
    code = f"TRAINING_ONLY = {TRAINING_ONLY!r}; LLM = {llm!r}\n" + APP_RUN
    env = {key: value for key, value in os.environ.items() if key != "DUALREC_MODELS_DIR"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_lstm_recommendation_imports_no_training_library() -> None:
    result = run_app(llm=False)
    assert result["states"]["lstm"] == "ready"
    assert result["final"] and result["final"][-1] == 5
    assert result["loaded"] == []


@pytest.mark.llama
def test_full_recommendation_with_llm_and_reranker_imports_no_training_library() -> None:
    pytest.importorskip("llama_cpp")
    result = run_app(llm=True)
    assert result["states"] == {"catalog": "ready", "lstm": "ready", "llm": "ready", "rerank": "ready"}
    assert result["final"] and result["final"][-1] >= 5
    # The re-ranker read the shipped float16 catalog vectors instead of encoding the catalog.
    assert Path(result["rerank_from"]).name.startswith("catalog-embeddings-") and result["rerank_computed"] is False
    assert result["loaded"] == []
