"""Fine-tuning stage 2 to rank the LSTM's candidates (`--task rank`), and starting from an existing adapter.

The rank task trains the score the app fuses: log p(candidate's `scored_title` text | the title prompt),
computed in torch the way `LlamaTitleScorer` computes it in llama.cpp, under a listwise loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dualrec_tui.core.errors import DualrecError
from dualrec_tui.core.prompt import DEFAULT_SUGGESTIONS, build_prompt, recent_movies, scored_title
from tests.test_llm_training import FAST, toy_split
from tests.tiny_llm import build_tiny_hf_model, toy_catalog
from training import llm_data
from training.adapter_init import load_into, read_adapter
from training.lora_loop import LoraSettings, train_lora
from training.lora_loss import candidate_logprobs, listwise_loss


class _PopularScorer:
    """An 'LSTM' that ranks movies by index: its candidates are the first unwatched ones."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def __call__(self, histories):
        return np.tile(-np.arange(self.n_items, dtype=np.float64), (len(histories), 1))


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny-llama-rank") / "hf", arch="llama")


# ----------------------------------------------------------------------------------- examples
def test_rank_examples_score_the_apps_text_from_training_prefixes() -> None:
    catalog, split = toy_catalog(), toy_split(n_users=40, length=10)
    examples = llm_data.build_rank_examples(split, catalog, _PopularScorer(len(catalog)), n_candidates=6)
    assert examples
    training = split.training_sequences()
    positions = []
    for example in examples:
        seq = training[example.user]
        history = seq[: example.cut]
        top = [i for i in range(len(catalog)) if i not in history][:6]  # _PopularScorer's candidates
        target = seq[example.cut]
        assert target in top  # missing="drop": only cuts whose next movie is a candidate
        # the app's prompt (its LSTM pick is the top candidate) and the app's scored texts
        assert example.prompt == build_prompt(recent_movies(catalog, history), catalog[top[0]], DEFAULT_SUGGESTIONS)
        assert sorted(example.candidates) == sorted(scored_title(catalog[i], "title-prefix") for i in top)
        assert example.candidates[example.target] == scored_title(catalog[target], "title-prefix")
        positions.append(example.target)
        if example.user < len(split.valid_target):
            held_out = {split.valid_target[example.user], split.test_target[example.user]}
            assert target not in held_out
    # shuffled: where the target sits says nothing about the LSTM's rank
    counts = np.bincount(positions, minlength=6)
    assert (counts > 0).all() and counts.max() < 0.4 * len(positions)


def test_rank_examples_take_the_scoring_and_are_seeded(tmp_path: Path) -> None:
    catalog, split = toy_catalog(), toy_split(n_users=40, length=10)
    scorer = _PopularScorer(len(catalog))
    titles = llm_data.build_rank_examples(split, catalog, scorer, n_candidates=4, scoring="titles", seed=1)
    assert all(text.endswith(")") for e in titles for text in e.candidates)  # "Title (Year)"
    assert titles == llm_data.build_rank_examples(split, catalog, scorer, n_candidates=4, scoring="titles", seed=1)
    assert len(llm_data.write_jsonl(titles, tmp_path / "examples.jsonl")) == 64
    with pytest.raises(ValueError, match="title scoring"):
        llm_data.build_rank_examples(split, catalog, scorer, scoring="letters")


# ------------------------------------------------------------------------------- the score
def test_candidate_logprobs_equal_whole_sequence_scores_in_any_order(tiny_llama: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama)).eval()
    catalog = toy_catalog()
    prompt = tokenizer(build_prompt([catalog[i] for i in range(5)], catalog[5], 3))["input_ids"]
    texts = [scored_title(catalog[i], "title-prefix") for i in (6, 9, 14, 0)]  # of different lengths
    candidates = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert len({len(c) for c in candidates}) > 1
    with torch.no_grad():
        scores = candidate_logprobs(model, prompt, candidates).numpy()
        reversed_scores = candidate_logprobs(model, prompt, candidates[::-1]).numpy()
        for score, ids in zip(scores, candidates, strict=True):
            logp = torch.log_softmax(model(torch.tensor([prompt + ids])).logits[0].double(), -1)
            whole = sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(ids))
            assert score == pytest.approx(whole, abs=1e-3)
    # each candidate is scored on its own: its place in the list cannot change its score
    np.testing.assert_allclose(reversed_scores, scores[::-1], atol=1e-4)


def test_listwise_loss_is_the_cross_entropy_of_the_target() -> None:
    import torch

    scores = torch.tensor([-3.0, -1.0, -2.0])
    expected = -float(torch.log_softmax(scores, 0)[2])
    assert float(listwise_loss(scores, 2)) == pytest.approx(expected)
    assert float(listwise_loss(scores, 1)) < float(listwise_loss(scores, 0))


def _favourite_examples(favourite: int = 3, n: int = 24) -> list[llm_data.RankExample]:
    """Varied prompts whose next movie is always the same one, placed anywhere among 4 candidates."""
    catalog = toy_catalog()
    rng = np.random.default_rng(0)
    examples = []
    for i in range(n):
        others = [int(j) for j in rng.permutation(len(catalog)) if j != favourite]
        shown = [int(j) for j in rng.permutation([favourite, *others[:3]])]
        prompt = build_prompt([catalog[j] for j in others[3:8]], catalog[others[0]], DEFAULT_SUGGESTIONS)
        texts = [scored_title(catalog[j], "title-prefix") for j in shown]
        examples.append(llm_data.RankExample(prompt, texts, shown.index(favourite), user=i, cut=5))
    return examples


def _mean_loss(hf: Path, adapter: Path | None, examples: list[llm_data.RankExample]) -> float:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf))
    model = AutoModelForCausalLM.from_pretrained(str(hf))
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    losses = []
    with torch.no_grad():
        for e in examples:
            prompt = tokenizer(e.prompt)["input_ids"]
            candidates = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in e.candidates]
            losses.append(float(listwise_loss(candidate_logprobs(model, prompt, candidates), e.target)))
    return float(np.mean(losses))


@pytest.mark.slow
def test_rank_training_lowers_the_listwise_loss_and_resumes(tiny_llama: Path, tmp_path: Path) -> None:
    examples = _favourite_examples()
    settings = LoraSettings(**{**FAST.__dict__, "steps": 12, "batch_size": 2, "learning_rate": 1e-2})
    summary = train_lora(tiny_llama, examples, tmp_path / "rank", settings, show_progress=False, threads=1)
    before = _mean_loss(tiny_llama, None, examples)
    after = _mean_loss(tiny_llama, tmp_path / "rank" / "adapter", examples)
    assert after < 0.5 * before, (before, after)
    assert summary["final_loss"] < summary["first_loss"]
    again = train_lora(tiny_llama, examples, tmp_path / "rank", settings, show_progress=False, threads=1)
    assert again["resumed_from"] == settings.steps  # a finished run is not trained again


# ------------------------------------------------------------------------- --init-adapter
def _peft_model(hf: Path, rank: int, alpha: float, modules: list[str]):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf))
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=modules, task_type="CAUSAL_LM", lora_dropout=0.0)
    return get_peft_model(model, config)


def _lora_state(model) -> dict[str, np.ndarray]:
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters() if "lora_" in n}


def _write_gguf_lora(path: Path, weights, architecture: str = "gemma3", alpha: float | None = None) -> None:
    """A GGUF LoRA laid out as llama.cpp's converter writes one (f32, blk.N.<tensor>.weight.lora_a|b)."""
    import gguf

    from training.adapter_init import GGUF_MODULES

    to_gguf = {module: name for name, module in GGUF_MODULES.items()}
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", weights.alpha if alpha is None else alpha)
    for key, tensor in weights.tensors.items():
        _, layer, group, module, side = key.split(".")  # layers.0.self_attn.q_proj.lora_A
        name = f"blk.{layer}.{to_gguf[f'{group}.{module}']}.weight.{side.lower()}"
        writer.add_tensor(name, tensor.numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def trained_adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("init") / "train"
    settings = LoraSettings(**{**FAST.__dict__, "steps": 2, "save_every": 2})
    train_lora(tiny_llama, _favourite_examples(n=4), out, settings, show_progress=False, threads=1)
    return out / "adapter"


def test_init_adapter_reads_a_peft_folder_and_a_gguf_lora_alike(
    tiny_llama: Path, trained_adapter: Path, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    reference = _lora_state(
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_llama)), str(trained_adapter))
    )
    folder = read_adapter(trained_adapter)
    assert (folder.rank, folder.alpha) == (FAST.rank, FAST.alpha)
    assert set(folder.target_modules) == set(FAST.target_modules)
    _write_gguf_lora(tmp_path / "adapter.gguf", folder)
    from_gguf = read_adapter(tmp_path / "adapter.gguf")
    assert (from_gguf.rank, from_gguf.alpha, from_gguf.target_modules) == (
        folder.rank,
        folder.alpha,
        folder.target_modules,
    )
    for weights in (folder, from_gguf):
        model = _peft_model(tiny_llama, weights.rank, weights.alpha, list(weights.target_modules))
        assert load_into(model, weights) == len(reference)
        state = _lora_state(model)
        assert state.keys() == reference.keys()
        assert all(np.array_equal(state[k], reference[k]) for k in reference)


def test_init_adapter_refuses_what_would_load_wrong(tiny_llama: Path, trained_adapter: Path, tmp_path: Path) -> None:
    weights = read_adapter(trained_adapter)
    _write_gguf_lora(tmp_path / "llama.gguf", weights, architecture="llama")
    with pytest.raises(DualrecError, match="permutes"):  # llama's converter reorders query/key rows
        read_adapter(tmp_path / "llama.gguf")
    model = _peft_model(tiny_llama, weights.rank * 2, weights.alpha, list(weights.target_modules))
    with pytest.raises(DualrecError, match="shape"):
        load_into(model, weights)
    model = _peft_model(tiny_llama, weights.rank, weights.alpha, ["q_proj", "v_proj"])
    with pytest.raises(DualrecError, match="no place in the model"):
        load_into(model, weights)
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + b"\x00" * 20)
    with pytest.raises(DualrecError, match=r"broken\.gguf"):
        read_adapter(tmp_path / "broken.gguf")
    with pytest.raises(DualrecError, match="peft adapter folder or a GGUF"):
        read_adapter(tmp_path / "weights.bin")


@pytest.mark.slow
@pytest.mark.llama
def test_the_shipped_gguf_adapter_imports_to_the_scores_llama_cpp_gives() -> None:
    """--init-adapter models/llm/adapter.gguf: transformers with the imported LoRA scores candidates as
    llama.cpp does with the file (base Q4_K_M there, dequantised here), far from the base without it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from dualrec_tui.core.artifacts import models_dir
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.llm import LlamaGenerator
    from dualrec_tui.core.llm_rank import LlamaTitleScorer
    from training.llm_base import base_gguf, hf_base_dir, load_tokenizer

    adapter = models_dir() / "llm" / "adapter.gguf"
    weights = read_adapter(adapter)
    hf = hf_base_dir("gemma3-270m")
    tokenizer = load_tokenizer(hf)
    model = AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32)
    config = LoraConfig(r=weights.rank, lora_alpha=weights.alpha, target_modules=list(weights.target_modules))
    model = get_peft_model(model, config)
    assert load_into(model, weights) == 252
    catalog = Catalog.from_json(models_dir() / "catalog.json")
    watched = [
        catalog.resolve(title, year).movie for title, year in [("Toy Story", 1995), ("Heat", 1995), ("Casino", 1995)]
    ]
    prompt = build_prompt(watched, catalog.resolve("GoldenEye", 1995).movie, DEFAULT_SUGGESTIONS)
    titles = [("Braveheart", 1995), ("Apollo 13", 1995), ("Pulp Fiction", 1994), ("Clueless", 1995)]
    texts = [scored_title(catalog.resolve(t, y).movie, "title-prefix") for t, y in titles]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    with torch.no_grad():
        imported = candidate_logprobs(model.eval(), tokenizer(prompt)["input_ids"], ids).numpy()
    with_lora = LlamaGenerator(base_gguf("gemma3-270m"), lora_path=adapter, n_threads=2)
    base_only = LlamaGenerator(base_gguf("gemma3-270m"), n_threads=2)
    try:
        expected, _ = LlamaTitleScorer(with_lora).run(prompt, texts, n_write=0)
        base, _ = LlamaTitleScorer(base_only).run(prompt, texts, n_write=0)
    finally:
        with_lora.close()
        base_only.close()
    assert np.abs(imported - expected).max() < 1.0, (imported, expected)
    assert np.abs(base - expected).max() > 3.0  # the adapter matters: a wrong import would not match it
