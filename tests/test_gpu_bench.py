"""The GPU benchmark's scripts (benchmarks/gpu/), rehearsed on the CPU with a tiny model shape.

They run on a lent GPU machine with a few minutes of device time, where a mistake costs the whole run;
these tests keep the model writer and the timing code working between such runs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

GPU_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu"
TINY = {"n_layer": 2, "n_embd": 256, "n_head": 8, "n_head_kv": 2, "n_ff": 512, "n_vocab": 1000}


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"gpu_bench_{name}", GPU_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    out = tmp_path_factory.mktemp("gpu") / "tiny-f16.gguf"
    load("make_model").write_model(out, **TINY)
    return out


def test_vocab_is_a_valid_spm_vocabulary() -> None:
    make_model = load("make_model")
    tokens, scores, types = make_model.spm_vocab(32000)
    assert len(tokens) == len(scores) == len(types) == 32000
    assert len(set(tokens)) == 32000
    assert tokens[:3] == ["<unk>", "<s>", "</s>"] and types[:3] == [2, 3, 3]
    assert tokens[3 + 0x0A] == "<0x0A>" and set(types[3:259]) == {6}
    assert set(types[259:]) == {1}


def test_model_has_mistral_layout(tiny_gguf: Path) -> None:
    import gguf

    reader = gguf.GGUFReader(str(tiny_gguf))
    shapes = {t.name: [int(d) for d in t.shape] for t in reader.tensors}
    head_dim = TINY["n_embd"] // TINY["n_head"]
    assert len(shapes) == 3 + 9 * TINY["n_layer"]
    assert shapes["token_embd.weight"] == [TINY["n_embd"], TINY["n_vocab"]]
    assert shapes["blk.1.attn_k.weight"] == [TINY["n_embd"], TINY["n_head_kv"] * head_dim]
    assert shapes["blk.1.ffn_down.weight"] == [TINY["n_ff"], TINY["n_embd"]]
    kv = reader.fields["llama.attention.head_count_kv"]
    assert int(kv.parts[kv.data[0]][0]) == TINY["n_head_kv"]


def test_quantize_and_time_with_llama_cpp(tiny_gguf: Path, tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    bench = load("bench")
    info = bench.quantize(tiny_gguf, tmp_path / "q.gguf", "Q4_K_M")
    assert info["bytes"] < tiny_gguf.stat().st_size
    llm = llama_cpp.Llama(model_path=str(tmp_path / "q.gguf"), n_ctx=128, n_threads=1, verbose=False)
    prompt = bench.random_prompt(llm.n_vocab(), 16, seed=0)
    assert prompt[0] == 1 and all(259 <= t < TINY["n_vocab"] for t in prompt[1:])
    prompt_tps, gen_tps = bench.time_generate(llm, prompt, n_gen=4)
    assert prompt_tps > 0 and gen_tps > 0
    assert bench.time_decode(llm, prompt, n_gen=4) > 0
    assert llm.detokenize(llm.tokenize(b"hello world", add_bos=False)) == b" hello world"
    llm.close()


def test_report_lists_every_run() -> None:
    bench = load("bench")
    row = {
        "quant": "Q4_0",
        "flash_attn": True,
        "n_prompt": 512,
        "n_gen": 128,
        "reps": 3,
        "n_gpu_layers": -1,
        "prompt_tps_median": 1.0,
        "gen_tps_median": 2.0,
        "decode_tps_median": 3.0,
        "gen_tps": [2.0, 2.0, 2.0],
        "load_seconds": 1.0,
    }
    text = bench.report({"environment": {"backend": "cuda"}, "speed": [row, {**row, "flash_attn": False}]})
    assert "| Q4_0 | on | 1.0 | 2.0 | 3.0 |" in text
    assert "| Q4_0 | off | 1.0 | 2.0 | 3.0 |" in text
