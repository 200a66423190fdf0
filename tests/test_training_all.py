"""`python -m training all` end to end on a tiny synthetic release and a tiny LLM, then the app's loading on it.

catalog -> LSTM -> LoRA -> adapter GGUF + merged GGUF -> evaluation -> the models/ layout, which the app's
`ModelHub` then loads (catalog, LSTM, LLM + re-ranker) and recommends from. The tiny model is random, so
the test checks that every artifact is real and loadable, not that its suggestions are good.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tiny_llm import build_tiny_hf_model, converter_or_skip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from make_movielens import Shape, make_release

pytest.importorskip("llama_cpp")
torch = pytest.importorskip("torch")


@pytest.mark.llama
@pytest.mark.slow
def test_training_all_builds_what_the_app_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    converter_or_skip()
    from training.pipeline_all import STEPS, run_all

    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = make_release(tmp_path / "ml-synth", Shape(users=40, movies=60, ratings=900), seed=2, as_zip=True)
        base = build_tiny_hf_model(tmp_path / "hf")
        out = tmp_path / "models"
        rows = run_all(
            data,
            out,
            base=str(base),
            llm_steps=4,
            llm_examples=16,
            lstm_epochs=1,
            eval_models="mostpop,lstm,llm,dualrec",
            eval_users=8,
        )
    finally:
        torch.set_num_threads(before)

    assert [r["step"] for r in rows] == list(STEPS) and all(r["result"] != "skipped" for r in rows)
    assert json.loads((out / "pipeline.json").read_text()) == rows
    shipped = (
        "catalog.json",
        "lstm/model.safetensors",
        "lstm/manifest.json",
        "markov/transitions.safetensors",
        "markov/manifest.json",
        "llm/adapter.gguf",
        "llm/manifest.json",
    )
    for path in shipped:
        assert (out / path).is_file(), path
    assert list((out / "llm").glob("model-*.gguf")), "no merged GGUF"
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["models"]) >= {"mostpop", "lstm", "llm", "dualrec"}
    assert all(isinstance(report["models"][m]["NDCG@10"], float) for m in ("mostpop", "lstm"))
    # the settings dualrec chose on validation ship, scored the way the shipped models are (title-prefix)
    assert json.loads((out / "llm" / "fusion.json").read_text())["llm_scoring"] == "title-prefix"

    # the app's model loading, on exactly these files
    from dualrec_tui.services import ModelHub

    hub = ModelHub(models_dir=out, n_recommendations=5, threads=1)
    catalog = hub.load_catalog()
    assert catalog is not None and len(catalog) == 60
    assert hub.load_lstm() is not None, hub.components["lstm"].problem
    pipeline = hub.load_llm()
    assert pipeline is not None and pipeline.llm_scoring == "title-prefix"
    assert pipeline.markov is not None, hub.pipeline.notes  # the Markov signal loads from markov/
    assert {name: hub.components[name].state for name in ("catalog", "lstm", "llm", "rerank")} == dict.fromkeys(
        ("catalog", "lstm", "llm", "rerank"), "ready"
    ), {name: hub.components[name].problem for name in hub.components}
    events = []
    hub.recommend([0, 1, 2], [0, 1, 2], events.append, lambda: False)
    first, final = events[0].recommendations, events[-1].result.recommendations
    assert len(first) == 5 and all(r.index not in (0, 1, 2) for r in first)  # stage 1's list, shown at once
    assert type(events[-1]).__name__ == "FinalReady" and len(final) == 5
