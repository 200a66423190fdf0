"""Tiny randomly initialised causal LMs for tests of the real LLM path (fine-tune, merge, GGUF, llama.cpp).

    from tests.tiny_llm import build_tiny_hf_model, build_tiny_gguf, toy_catalog

A 2-layer Llama (or Mistral) with a sentencepiece tokenizer trained here on text in the shape of our
prompts and answers. Sentencepiece tokenizers survive llama.cpp's converter exactly (toolchain.md),
so llama.cpp and transformers tokenise and score alike. `build_tiny_gguf` needs the llama.cpp
converter (training.export.find_converter); tests should skip when `converter_or_skip()` says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dualrec_tui.core.catalog import Catalog, build_catalog
from dualrec_tui.core.prompt import (
    build_candidate_prompt,
    build_prompt,
    candidate_line,
    format_answer,
    format_candidate_answer,
)

TOY_MOVIES = [
    (1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
    (2, "Matrix, The (1999)", ["Action", "Sci-Fi", "Thriller"]),
    (3, "Heat (1995)", ["Action", "Crime", "Thriller"]),
    (4, "Fargo (1996)", ["Comedy", "Crime", "Drama"]),
    (5, "Alien (1979)", ["Horror", "Sci-Fi"]),
    (6, "Casablanca (1942)", ["Drama", "Romance", "War"]),
    (7, "Godfather, The (1972)", ["Crime", "Drama"]),
    (8, "Jaws (1975)", ["Action", "Horror"]),
    (9, "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", ["Comedy", "Romance"]),
    (10, "Star Wars: Episode IV - A New Hope (1977)", ["Action", "Adventure", "Sci-Fi"]),
    (11, "Pulp Fiction (1994)", ["Comedy", "Crime", "Drama", "Thriller"]),
    (12, "Shrek (2001)", ["Adventure", "Animation", "Children", "Comedy", "Fantasy", "Romance"]),
    (13, "Titanic (1997)", ["Drama", "Romance"]),
    (14, "Memento (2000)", ["Mystery", "Thriller"]),
    (15, "Toy Story 2 (1999)", ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]),
    (16, "Blade Runner (1982)", ["Action", "Sci-Fi", "Thriller"]),
]


def toy_catalog() -> Catalog:
    """16 real-looking movies (articles moved, alternative titles, sequels) for tiny end-to-end tests."""
    return build_catalog(TOY_MOVIES, name="toy")


def toy_corpus(catalog: Catalog | None = None) -> list[str]:
    """Prompt/answer text over the toy catalog: what the tokenizer must cover."""
    catalog = catalog or toy_catalog()
    movies = list(catalog)
    texts = []
    for start in range(len(movies)):
        recent = [movies[(start + i) % len(movies)] for i in range(5)]
        future = [movies[(start + 7 + i) % len(movies)] for i in range(3)]
        texts.append(build_prompt(recent, movies[(start + 5) % len(movies)], 3) + format_answer(future))
        for step in (3, 5, 7):  # candidate prompts, so every letter line is common enough to become a token
            candidates = [movies[(start + step * i) % len(movies)] for i in range(len(movies))]
            lines = [candidate_line(chr(ord("A") + i), m) for i, m in enumerate(candidates)]
            texts.append(
                build_candidate_prompt(recent, movies[(start + 5) % len(movies)], candidates)
                + format_candidate_answer(lines[start % 4 :: 5])
            )
    return texts


def train_sentencepiece(directory: Path, texts: list[str], vocab_size: int = 600) -> Path:
    """A Llama-style sentencepiece BPE model (byte fallback, so any text encodes) -> directory/tokenizer.model."""
    import sentencepiece as spm

    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(line for text in texts for line in text.splitlines()) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(directory / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        character_coverage=1.0,
        bos_id=1,
        eos_id=2,
        unk_id=0,
        pad_id=-1,
        split_digits=True,
        num_threads=1,
        minloglevel=2,
    )
    corpus.unlink()
    (directory / "tokenizer.vocab").unlink(missing_ok=True)
    return directory / "tokenizer.model"


def build_tiny_hf_model(directory: str | Path, arch: str = "llama", seed: int = 0) -> Path:
    """A random 2-layer LlamaForCausalLM / MistralForCausalLM + sentencepiece tokenizer saved as an HF folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    directory = Path(directory)
    train_sentencepiece(directory, toy_corpus())
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "add_bos_token": True,
                "add_eos_token": False,
                "legacy": False,
            }
        ),
        encoding="utf-8",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        rms_norm_eps=1e-5,
    )
    torch.manual_seed(seed)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "mistral":
        model = MistralForCausalLM(MistralConfig(**common, sliding_window=None))
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}")
    with torch.no_grad():  # larger than default init so that logits differ clearly between tokens
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.2)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_tiny_gguf(directory: str | Path, arch: str = "llama", outtype: str = "f32") -> Path:
    """The tiny HF model (in directory/hf) converted by llama.cpp's converter -> directory/tiny-<arch>.gguf."""
    from training.export import convert_hf_to_gguf

    directory = Path(directory)
    hf = build_tiny_hf_model(directory / "hf", arch=arch)
    return convert_hf_to_gguf(hf, directory / f"tiny-{arch}.gguf", outtype=outtype)


def converter_or_skip() -> None:
    """pytest.skip with the fix when llama-cpp-python or its converter scripts are not available here."""
    import importlib.util

    import pytest

    from training.export import ConverterMissingError, find_converter

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install llama-cpp-python)")
    try:
        find_converter(download=False)
    except ConverterMissingError as exc:
        pytest.skip(str(exc))
