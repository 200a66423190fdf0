"""The LLM training path: examples, loss mask, LoRA, merge, GGUF, llama.cpp — on tiny random models.

The end-to-end tests run the real code path (peft, llama.cpp's converters, llama_model_quantize,
llama-cpp-python) on 2-layer models built by tests/tiny_llm.py, so the Gemma / Mistral-7B path is
exercised in well under two minutes on 2 CPU cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dualrec_tui.core.prompt import answer_grammar, build_prompt, format_answer, parse_answer
from dualrec_tui.core.sequences import Sequences, leave_one_out
from tests.tiny_llm import build_tiny_hf_model, converter_or_skip, toy_catalog
from training import llm_data
from training.lora_loop import LoraSettings, train_lora
from training.lora_loss import IGNORE_INDEX, answer_loss, collate, encode_example

FIXED_ANSWER_MOVIES = (0, 1)  # Toy Story, The Matrix: what the tiny model is taught to always answer


def toy_split(n_users: int = 12, length: int = 9, seed: int = 0):
    """A leave-one-out split over the toy catalog: random sequences without repeats."""
    rng = np.random.default_rng(seed)
    n_items = len(toy_catalog())
    items = [rng.permutation(n_items)[:length].tolist() for _ in range(n_users)]
    seqs = Sequences(
        user_ids=list(range(n_users)),
        items=items,
        ratings=[[4.0] * length for _ in items],
        timestamps=[list(range(length)) for _ in items],
        n_items=n_items,
    )
    return leave_one_out(seqs)


# ----------------------------------------------------------------------------------- examples
def test_examples_come_from_training_prefixes_only() -> None:
    catalog = toy_catalog()
    split = toy_split()
    examples = llm_data.build_examples(split, catalog, llm_data.popularity_predictor(split), seed=3)
    assert examples
    training = split.training_sequences()
    for example in examples:
        seq = training[example.user]
        answer = [s.title for s in parse_answer(example.answer).suggestions]
        assert answer == [catalog[i].title for i in seq[example.cut : example.cut + example.n]]
        assert example.cut + example.n <= len(seq)
        assert f"Recommend {example.n} other movies" in example.prompt
        if example.user < len(split.valid_target):
            held_out = {catalog[split.valid_target[example.user]].label, catalog[split.test_target[example.user]].label}
            # The watched movies and the answer; the predicted line may name anything the predictor picks.
            watched = [line for line in example.prompt.splitlines() if line.startswith("- ")]
            assert not any(label in "\n".join(watched) or label in example.answer for label in held_out)


def test_examples_are_seeded_and_sampled() -> None:
    catalog, split = toy_catalog(), toy_split()
    predictor = llm_data.popularity_predictor(split)
    first = llm_data.build_examples(split, catalog, predictor, max_examples=10, seed=1)
    again = llm_data.build_examples(split, catalog, predictor, max_examples=10, seed=1)
    other = llm_data.build_examples(split, catalog, predictor, max_examples=10, seed=2)
    assert len(first) == 10 and first == again and first != other


def test_examples_jsonl_round_trip(tmp_path: Path) -> None:
    catalog, split = toy_catalog(), toy_split()
    examples = llm_data.build_examples(split, catalog, llm_data.popularity_predictor(split), max_examples=5)
    sha = llm_data.write_jsonl(examples, tmp_path / "examples.jsonl")
    assert len(sha) == 64
    assert llm_data.read_jsonl(tmp_path / "examples.jsonl") == examples


def test_real_examples_never_contain_held_out_targets() -> None:
    from dualrec_tui.core.artifacts import default_data_dir
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences

    data = default_data_dir() / "ml-latest-small"
    if not data.exists():
        pytest.skip(f"MovieLens data not found at {data} (set DUALREC_DATA_DIR)")
    dataset = load_dataset(data)
    split = leave_one_out(build_sequences(dataset))
    catalog = dataset.catalog
    examples = llm_data.build_examples(split, catalog, llm_data.popularity_predictor(split), max_examples=3000)
    for example in examples:
        if example.user >= len(split.user_ids):
            continue  # a sequence too short to evaluate: it has no held-out targets
        window = split.train[example.user][: example.cut + example.n]
        held_out = (split.valid_target[example.user], split.test_target[example.user])
        assert not set(held_out) & set(window)
        assert example.cut + example.n <= len(split.train[example.user])


# ------------------------------------------------------------------------------- tokens, loss
@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny-llama") / "hf", arch="llama")


def test_loss_mask_covers_answer_tokens_only(tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    catalog = toy_catalog()
    prompt = build_prompt([catalog[2], catalog[3]], catalog[4], 2)
    answer = format_answer([catalog[5], catalog[6]])
    ids, labels = encode_example(tokenizer, prompt, answer, max_length=512)
    n_prompt = len(tokenizer(prompt)["input_ids"])
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:]
    assert tokenizer.decode(ids[n_prompt:]) == answer
    assert tokenizer.decode(ids[:n_prompt], skip_special_tokens=True) == prompt
    batch = collate([(ids, labels), (ids[:10], labels[:10])], pad_id=0)
    assert (batch["labels"][1, 10:] == IGNORE_INDEX).all() and (batch["attention_mask"][1, 10:] == 0).all()


def test_answer_loss_equals_full_loss(tiny_llama: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    catalog = toy_catalog()
    rows = [
        encode_example(tokenizer, build_prompt([catalog[i]], None, 1), format_answer([catalog[i + 1]]), 512)
        for i in range(3)
    ]
    batch = collate(rows, pad_id=0)
    with torch.no_grad():
        assert float(answer_loss(model, batch)) == pytest.approx(float(model(**batch).loss), rel=1e-5)


# ------------------------------------------------------------------------------- end to end
def fixed_answer_examples() -> list[llm_data.Example]:
    """Varied prompts, one constant answer: a tiny random model learns it in a few LoRA steps."""
    catalog = toy_catalog()
    answer = format_answer([catalog[i] for i in FIXED_ANSWER_MOVIES])
    return [
        llm_data.Example(
            build_prompt([catalog[(i + j) % 16] for j in range(5)], catalog[(i + 7) % 16], 2), answer, i, 5, 2
        )
        for i in range(16)
    ]


FAST = LoraSettings(
    rank=8,
    alpha=16,
    dropout=0.0,
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    learning_rate=2e-2,
    steps=40,
    batch_size=4,
    warmup_steps=2,
    max_length=400,
    save_every=10,
)


def _trained_export(root: Path, arch: str, steps: int, base_gguf: bool = True) -> dict[str, Path]:
    """tiny HF model -> LoRA -> export (adapter GGUF + merged F32 GGUF) [-> base GGUF for the adapter path]."""
    from training.export import convert_hf_to_gguf, export

    hf = build_tiny_hf_model(root / "hf", arch=arch)
    settings = LoraSettings(**{**FAST.__dict__, "steps": steps})
    train_lora(hf, fixed_answer_examples(), root / "train", settings, show_progress=False, threads=1)
    report = export(root / "train", str(hf), root / "export", quant="F32")
    paths = {
        "hf": hf,
        "merged": Path(report["merged_check"]["file"]),
        "adapter": Path(report["adapter_gguf"]),
        "train": root / "train",
    }
    if base_gguf:
        paths["base"] = convert_hf_to_gguf(hf, root / "base-f32.gguf", "f32")
    return paths


@pytest.fixture(scope="module")
def llama_pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    converter_or_skip()
    return _trained_export(tmp_path_factory.mktemp("tiny-pipeline"), "llama", FAST.steps)


def _generate(model: Path, lora: Path | None = None) -> str:
    from dualrec_tui.core.llm import LlamaGenerator

    generator = LlamaGenerator(model, lora_path=lora, n_ctx=512, n_threads=1)
    catalog = toy_catalog()
    prompt = build_prompt([catalog[i] for i in (8, 9, 10, 11, 12)], catalog[13], 2)
    try:
        return generator.generate(prompt, max_tokens=60, grammar=answer_grammar(2))
    finally:
        generator.close()


@pytest.mark.llama
@pytest.mark.slow
def test_tiny_pipeline_generates_catalog_movies(llama_pipeline: dict[str, Path]) -> None:
    text = _generate(llama_pipeline["merged"])
    catalog = toy_catalog()
    resolved = [catalog.resolve(s.title, s.year).movie for s in parse_answer(text).suggestions]
    assert [m.index for m in resolved if m is not None] == list(FIXED_ANSWER_MOVIES), text


@pytest.mark.llama
@pytest.mark.slow
def test_adapter_gguf_gives_the_same_text_as_merged(llama_pipeline: dict[str, Path]) -> None:
    merged = _generate(llama_pipeline["merged"])
    assert _generate(llama_pipeline["base"], llama_pipeline["adapter"]) == merged
    assert llama_pipeline["adapter"].stat().st_size < llama_pipeline["base"].stat().st_size


def _llama_cpp_logits(model: Path, ids: list[int], lora: Path | None = None) -> np.ndarray:
    from training.export import load_llama

    llama = load_llama(model, lora, n_ctx=512, threads=1, logits_all=True, f32_cache=True)
    llama.eval(ids)
    logits = np.array(llama.scores[: len(ids)], dtype=np.float64)
    llama.close()
    return logits


@pytest.mark.llama
@pytest.mark.slow
def test_llama_cpp_logits_match_transformers(llama_pipeline: dict[str, Path]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.export import load_llama

    tokenizer = AutoTokenizer.from_pretrained(str(llama_pipeline["hf"]))
    prompt = fixed_answer_examples()[3].prompt
    ids = tokenizer(prompt)["input_ids"]
    llama = load_llama(llama_pipeline["merged"], n_ctx=512, threads=1)
    assert llama.tokenize(prompt.encode(), add_bos=True) == ids  # the tokenizer survives conversion exactly
    llama.close()
    model = AutoModelForCausalLM.from_pretrained(str(llama_pipeline["hf"]))
    model = PeftModel.from_pretrained(model, str(llama_pipeline["train"] / "adapter")).eval()
    with torch.no_grad():
        reference = model(torch.tensor([ids])).logits[0].double().numpy()
    for lora in (None, llama_pipeline["adapter"]):
        path = llama_pipeline["merged"] if lora is None else llama_pipeline["base"]
        got = _llama_cpp_logits(path, ids, lora)
        assert np.abs(got - reference).max() < 1e-3 * max(1.0, np.abs(reference).max()), lora


@pytest.mark.llama
@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(llama_pipeline: dict[str, Path]) -> None:
    from safetensors.torch import load_file

    train = llama_pipeline["train"]
    assert (train / f"checkpoint-{FAST.steps}" / "trainer_state.safetensors").is_file()
    # Same run again: everything is already done, so it resumes at the last step and changes nothing.
    before = load_file(str(train / "adapter" / "adapter_model.safetensors"))
    summary = train_lora(llama_pipeline["hf"], fixed_answer_examples(), train, FAST, show_progress=False, threads=1)
    assert summary["resumed_from"] == FAST.steps
    after = load_file(str(train / "adapter" / "adapter_model.safetensors"))
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


@pytest.mark.llama
@pytest.mark.slow
def test_quantize_writes_a_loadable_smaller_gguf(llama_pipeline: dict[str, Path], tmp_path: Path) -> None:
    from training.export import quantize, smoke_test_gguf

    out = quantize(llama_pipeline["merged"], tmp_path / "q8.gguf", "Q8_0")
    assert out.stat().st_size < llama_pipeline["merged"].stat().st_size
    assert smoke_test_gguf(out)["bytes"] == out.stat().st_size


@pytest.mark.llama
@pytest.mark.slow
def test_tiny_mistral_goes_through_the_same_path(tmp_path: Path) -> None:
    """Mistral-7B-Instruct on a user's GPU runs this code; here a 2-layer random MistralForCausalLM does."""
    converter_or_skip()
    paths = _trained_export(tmp_path, "mistral", steps=FAST.steps, base_gguf=False)
    text = _generate(paths["merged"])
    catalog = toy_catalog()
    resolved = [catalog.resolve(s.title, s.year).movie for s in parse_answer(text).suggestions]
    assert [m.index for m in resolved if m is not None] == list(FIXED_ANSWER_MOVIES), text
    assert paths["adapter"].stat().st_size > 0  # the adapter-alone path is compared on the tiny Llama


def test_unknown_base_is_a_clear_error(tmp_path: Path) -> None:
    from dualrec_tui.core.errors import DualrecError
    from training.llm_base import resolve_base

    with pytest.raises(DualrecError, match="known base"):
        resolve_base(tmp_path / "nothing-here")


def test_missing_converter_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from training.export import ConverterMissingError, find_converter

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DUALREC_LLAMA_CPP_SOURCE", raising=False)
    with pytest.raises(ConverterMissingError, match="DUALREC_LLAMA_CPP_SOURCE"):
        find_converter(download=False)
    assert os.environ["DUALREC_CACHE_DIR"] == str(tmp_path)


# ---------------------------------------------------------------------------- candidate examples
class _PopularScorer:
    """LSTM stand-in for example building: the same preference for everyone (catalog order)."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def __call__(self, histories):
        return np.tile(-np.arange(self.n_items, dtype=np.float64), (len(histories), 1))


def test_candidate_examples_come_from_training_prefixes_and_spread_the_target_over_letters() -> None:
    from dualrec_tui.core.prompt import CANDIDATE_LETTERS

    catalog, split = toy_catalog(), toy_split(n_users=40, length=10)
    scorer = _PopularScorer(len(catalog))
    examples = llm_data.build_candidate_examples(split, catalog, scorer, n_candidates=8, missing="inject", seed=0)
    assert examples
    training = split.training_sequences()
    positions = []
    for example in examples:
        seq = training[example.user]
        first = example.answer.splitlines()[0]
        letter, rest = first.split(". ", 1)
        assert rest.startswith(catalog[seq[example.cut]].label)  # the next movie, from the training prefix
        assert f"\n{first}\n" in example.prompt  # ... shown under that letter among the candidates
        assert example.answer.endswith("<end>\n") and example.prompt.endswith("Answer:\n")
        positions.append(CANDIDATE_LETTERS.index(letter))
        if example.user < len(split.valid_target):
            for held_out in (split.valid_target[example.user], split.test_target[example.user]):
                assert catalog[held_out].label not in example.answer
    # shuffled: the target's letter is spread over all 8 positions, not stuck where the LSTM ranks it
    counts = np.bincount(positions, minlength=8)
    assert (counts > 0).all() and counts.max() < 0.4 * len(positions)


def test_candidate_examples_drop_or_inject_a_missing_target() -> None:
    catalog, split = toy_catalog(), toy_split(n_users=40, length=10)
    scorer = _PopularScorer(len(catalog))
    dropped = llm_data.build_candidate_examples(split, catalog, scorer, n_candidates=4, missing="drop")
    injected = llm_data.build_candidate_examples(split, catalog, scorer, n_candidates=4, missing="inject")
    assert len(injected) > len(dropped) > 0
    training = split.training_sequences()
    for example, keep_all in [(e, False) for e in dropped] + [(e, True) for e in injected]:
        history = training[example.user][: example.cut]
        top4 = [i for i in range(len(catalog)) if i not in history][:4]  # _PopularScorer's candidates
        target = training[example.user][example.cut]
        shown = [line for line in example.prompt.splitlines() if line[1:3] == ". "]
        assert len(shown) == 4 and catalog[target].label in "\n".join(shown)
        if not keep_all:
            assert target in top4  # drop: only cuts whose next movie the LSTM put among its candidates
        assert catalog[top4[0]].label in "\n".join(shown)  # inject never replaces the LSTM's top pick
    with pytest.raises(ValueError, match="missing"):
        llm_data.build_candidate_examples(split, catalog, scorer, missing="maybe")


def _fixed_candidate_examples(favourite: int = 2, n: int = 64, seed: int = 0) -> list:
    """Candidate prompts over the toy catalog whose answer is always `favourite`, under any letter."""
    from dualrec_tui.core.prompt import build_candidate_prompt, candidate_line, format_candidate_answer

    catalog = toy_catalog()
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(n):
        others = [int(j) for j in rng.permutation(len(catalog)) if j != favourite][:5]
        shown = [int(j) for j in rng.permutation([favourite, *others[:3]])]
        letter = "ABCD"[shown.index(favourite)]
        recent = [catalog[j] for j in others[3:]]
        prompt = build_candidate_prompt(recent, catalog[others[0]], [catalog[j] for j in shown])
        answer = format_candidate_answer([candidate_line(letter, catalog[favourite])])
        examples.append(llm_data.Example(prompt=prompt, answer=answer, user=i, cut=5, n=1))
    return examples


@pytest.mark.llama
@pytest.mark.slow
def test_llama_cpp_verbalizer_scores_every_candidate_in_one_pass(tmp_path: Path) -> None:
    """LoRA on candidate prompts -> GGUF -> LlamaCandidateRanker: the scores are the model's own letter
    log-probabilities after the prompt (one pass), and the lines it writes are candidate lines, best first,
    without repeats."""
    converter_or_skip()
    from dualrec_tui.core.llm import LlamaGenerator
    from dualrec_tui.core.llm_rank import LlamaCandidateRanker
    from training.export import export

    hf = build_tiny_hf_model(tmp_path / "hf")
    settings = LoraSettings(**{**FAST.__dict__, "steps": 40, "max_length": 512})
    train_lora(hf, _fixed_candidate_examples(), tmp_path / "train", settings, show_progress=False, threads=1)
    report = export(tmp_path / "train", str(hf), tmp_path / "export", quant="F32")
    ranker = LlamaCandidateRanker(LlamaGenerator(Path(report["merged_check"]["file"]), n_ctx=512, n_threads=1))
    catalog = toy_catalog()
    for example in _fixed_candidate_examples(n=4, seed=99):  # unseen shuffles
        lines = [line for line in example.prompt.splitlines() if line[:2].rstrip(".").isalpha() and line[1:3] == ". "]
        scores, written = ranker.run(example.prompt, lines, n_write=3)
        assert np.exp(scores).sum() == pytest.approx(1.0)
        assert written[0] == int(np.argmax(scores))  # the first written line is the best-scored candidate
        assert len(set(written)) == 3 and all(0 <= p < len(lines) for p in written)
        assert all(catalog.resolve(lines[p].split(". ", 1)[1].split(" |")[0]).movie is not None for p in written)
        # the same numbers from the model's logits after the prompt, computed independently
        llama = ranker.generator.llama
        ids = llama.tokenize(example.prompt.encode(), special=True)
        logits = _llama_cpp_logits(Path(report["merged_check"]["file"]), ids)[-1]
        letters = ranker.letter_tokens(len(lines))
        expected = logits[letters] - logits[letters].max()
        expected -= np.log(np.exp(expected).sum())
        assert np.allclose(scores, expected, atol=5e-3)  # the generator keeps an f16 KV cache, the check f32
