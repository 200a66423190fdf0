"""Greedy decoding under a GBNF grammar, fast on a 262k-token vocabulary (the caller holds the model's lock).

llama-cpp-python applies a grammar to the whole vocabulary at every step; this decoder checks the best
tokens first and falls back to the whole vocabulary only when they are all invalid, and can keep
excluded catalog titles out of the answer (`TitleGuard`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .llm import GenerationStats
from .prompt import END_OF_ANSWER

if TYPE_CHECKING:
    from .llm import LlamaGenerator
    from .title_grammar import TitleGuard

GUARD_MAX_TRIES = 64  # tokens tried per step before the guard gives up and ends the answer
GUARD_MASK_AFTER = 4  # refusals in one step before one whole-vocabulary grammar pass replaces per-token checks


def greedy_with_grammar(
    generator: LlamaGenerator,
    prompt: str,
    max_tokens: int,
    grammar: str,
    on_token: Callable[[str], None] | None,
    guard: TitleGuard | None = None,
) -> tuple[str, GenerationStats]:
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

    llm = generator.llama
    start = time.perf_counter()
    tokens = generator.evaluate_prompt(prompt)
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
    stats = GenerationStats(
        prompt_tokens=len(tokens),
        completion_tokens=len(generated),
        seconds=time.perf_counter() - start,
        first_token_seconds=first,
        finish_reason=finish,
    )
    return "".join(pieces), stats
