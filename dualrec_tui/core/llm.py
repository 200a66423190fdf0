"""DUALRec stage 2 at inference time: one llama.cpp model behind a lock, streamed, grammar-constrained.

Why this wrapper exists:
- One `Llama` object is not thread-safe; the app (a worker thread) and evaluation share one instance,
  so every call takes a lock.
- llama.cpp logs from native code. A terminal UI must never see that output, so a log callback that
  swallows everything is installed before a model loads (and `verbose=False` makes llama-cpp-python
  redirect fds 1/2 while the model file is read).
- A missing or broken GGUF is a user-facing problem: it raises `ModelUnavailableError` with the
  command that rebuilds it.
- Greedy decoding under a grammar has its own fast path (core/llm_decode.py); file checks live in
  core/llm_files.py and the catalog title grammar in core/title_grammar.py.

`llama_cpp` is imported lazily (inside functions) so importing this module is cheap.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelMissingError, ModelUnavailableError
from .llm_files import REBUILD_FINETUNED, WHAT, check_gguf, locate_llm
from .prompt import END_OF_ANSWER

if TYPE_CHECKING:
    from .title_grammar import TitleGuard

DEFAULT_N_CTX = 1024
# Sequences one context holds: LlamaTitleScorer decodes each candidate in a sequence of its own that shares
# the prompt's KV entries, all candidates in one llama_decode (core/llm_rank.py). A unified KV cache keeps
# the whole n_ctx for every sequence (a split cache would give each n_ctx / n_seq_max cells).
DEFAULT_N_SEQ_MAX = 32

_defaults_lock = threading.Lock()

_log_callback: Any = None  # keep a reference: ctypes callbacks must outlive the native library's use


def _silence_native_logs() -> None:
    """Route every llama.cpp/ggml log line to a callback that drops it (installed once per process)."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def _drop(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    llama_cpp.llama_log_set(_drop, ctypes.c_void_p(0))
    _log_callback = _drop


def llm_threads() -> int:
    """Half the logical cores, 1 to 8 (env DUALREC_LLM_THREADS overrides).

    Generation is memory-bound, so extra threads gain little, while llama.cpp's threads spin-wait for
    each other: when another process holds a core (the app itself, a training run) a 2-thread decode on
    2 cores was measured 3-10x slower than a 1-thread one (benchmarks/bench_pipeline.py on a shared box).
    """
    override = os.environ.get("DUALREC_LLM_THREADS")
    if override and override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@contextmanager
def _context_defaults(**fields: Any) -> Iterator[None]:
    """Start `llama_cpp.Llama`'s context from these llama_context_params fields.

    Llama takes no n_seq_max or kv_unified argument: it fills the other fields into
    `llama_context_default_params()`, so that function is wrapped while one Llama is built (under a lock)."""
    from llama_cpp import llama as llama_module

    module = llama_module.llama_cpp
    with _defaults_lock:
        original = module.llama_context_default_params

        def with_fields() -> Any:
            params = original()
            for name, value in fields.items():
                setattr(params, name, value)
            return params

        module.llama_context_default_params = with_fields
        try:
            yield
        finally:
            module.llama_context_default_params = original


@dataclass
class GenerationStats:
    """Timing of the last `generate` call (for benchmarks and the app's status line)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0  # from the KV cache length: exact, or one too many after an end-of-text token
    seconds: float = 0.0
    first_token_seconds: float = 0.0
    finish_reason: str = ""  # "stop" (end marker or end-of-text) or "length" (max_tokens reached)


class LlamaGenerator:
    """One GGUF model (merged, or base + LoRA adapter GGUF); calls are serialised by a lock."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        lora_path: str | Path | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        n_seq_max: int = DEFAULT_N_SEQ_MAX,
        rebuild: str = REBUILD_FINETUNED,
    ) -> None:
        self.model_path = check_gguf(Path(model_path), rebuild)
        self.lora_path = (
            check_gguf(Path(lora_path), rebuild, f"{WHAT} adapter", base=self.model_path) if lora_path else None
        )
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelMissingError(
                WHAT, f"llama-cpp-python is not installed ({exc})", "make install  (builds llama-cpp-python)"
            ) from exc
        _silence_native_logs()
        if n_gpu_layers is None:
            n_gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        self.n_threads = n_threads or llm_threads()
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self.fast_grammar = True  # greedy + grammar: check the grammar on the best tokens first
        self.last = GenerationStats()
        n_seq_max = max(1, min(n_seq_max, llama_cpp.llama_max_parallel_sequences()))
        try:
            with _context_defaults(n_seq_max=n_seq_max, kv_unified=True):
                self._llm = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    lora_path=str(self.lora_path) if self.lora_path else None,
                    n_ctx=n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=n_gpu_layers,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailableError(WHAT, f"llama.cpp could not load {self.model_path} ({exc})", rebuild) from exc

    @classmethod
    def load_default(cls, **kwargs: Any) -> LlamaGenerator:
        """The fine-tuned model from models_dir()/llm (merged, or base + adapter), else the untuned base."""
        files = locate_llm()
        return cls(files.model, lora_path=files.lora, rebuild=files.rebuild, **kwargs)

    @property
    def llama(self) -> Any:
        """The underlying `llama_cpp.Llama` (benchmarks compare against it; take `lock` before use)."""
        return self._llm

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def _grammar(self, text: str) -> Any:
        cached = self._grammars.get(text)
        if cached is None:
            from llama_cpp import LlamaGrammar

            cached = LlamaGrammar.from_string(text, verbose=False)
            if len(self._grammars) > 16:
                self._grammars.clear()
            self._grammars[text] = cached
        return cached

    def evaluate_prompt(self, prompt: str) -> list[int]:
        """Tokenise and evaluate `prompt` (caller holds `lock`); its last logits are then current.

        Reuses the KV cache for the longest common prefix with the previous call (like Llama.generate)."""
        llm = self._llm
        tokens = llm.tokenize(prompt.encode("utf-8"), special=True)
        if len(tokens) >= llm.n_ctx():
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit the context of {llm.n_ctx()} tokens")
        prefix = 0
        if not (getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False)):
            for cached, new in zip(llm.input_ids[: llm.n_tokens].tolist(), tokens, strict=False):
                if cached != new:
                    break
                prefix += 1
        llm.n_tokens = min(prefix, len(tokens) - 1)  # evaluate at least one token for fresh logits
        llm.eval(tokens[llm.n_tokens :])
        return tokens

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 128,
        grammar: str | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        on_token: Callable[[str], None] | None = None,
        guard: TitleGuard | None = None,
    ) -> str:
        """Complete `prompt`, streaming text pieces to `on_token`; stops at the END_OF_ANSWER marker.

        `grammar` is GBNF text (e.g. `prompt.answer_grammar(n)`); temperature 0 = greedy.
        `guard` (greedy + catalog grammar only) keeps titles it excludes out of the answer.
        The returned text excludes the end marker.
        """
        if grammar and temperature == 0 and (self.fast_grammar or guard is not None):
            from .llm_decode import greedy_with_grammar

            with self._lock:
                answer, self.last = greedy_with_grammar(self, prompt, max_tokens, grammar, on_token, guard)
                return answer
        pieces: list[str] = []
        with self._lock:
            start = time.perf_counter()
            first = 0.0
            finish = ""
            stream = self._llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
                repeat_penalty=1.0,
                stop=[END_OF_ANSWER],
                grammar=self._grammar(grammar) if grammar else None,
                stream=True,
            )
            for chunk in stream:
                choice = chunk["choices"][0]
                finish = choice.get("finish_reason") or finish
                text = choice["text"]
                if not text:
                    continue
                if not first:
                    first = time.perf_counter() - start
                pieces.append(text)
                if on_token is not None:
                    on_token(text)
            answer = "".join(pieces)
            # create_completion tokenises the prompt this way; every generated token but the last is then
            # evaluated into the KV cache, so its length tells how many tokens were generated.
            prompt_tokens = len(self._llm.tokenize(prompt.encode("utf-8"), special=True))
            self.last = GenerationStats(
                prompt_tokens=prompt_tokens,
                completion_tokens=max(0, self._llm.n_tokens - prompt_tokens + 1),
                seconds=time.perf_counter() - start,
                first_token_seconds=first,
                finish_reason=finish,
            )
        return answer

    def close(self) -> None:
        with self._lock:
            close = getattr(self._llm, "close", None)
            if callable(close):
                close()
