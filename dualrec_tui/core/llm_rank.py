"""Stage 2 grounded in the LSTM's candidates: one forward pass scores all K, then the LLM writes its answer.

The candidate prompt (`prompt.build_candidate_prompt`) lists K candidates as `C. Title (Year)`
and ends with "Answer:\\n". The fine-tuned model answers with candidate lines, best first, so:

1. **Scoring (a verbalizer, LlamaRec-style).** After evaluating the prompt once, the logits of the K
   letter tokens at the answer's first position are the LLM's preference over every candidate:
   log-softmax over those K logits. One forward pass, whatever K is.
2. **Writing (DUALRec's answer for the app).** From the same KV cache the model chooses a letter (only
   letters of candidates not yet written are allowed: a grammar restricted to the candidates), then the
   rest of that line is the candidate's own label, which the restriction leaves no choice about, so it is
   evaluated in one batch instead of token by token. Repeat for n lines.

`LlamaCandidateRanker` wraps a `core.llm.LlamaGenerator` (sharing its lock and model); tests use a fake
with the same `run` method.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from .prompt import CANDIDATE_LETTERS, TITLE_SCORINGS


@dataclass
class RankStats:
    """Timing of the last `run` (benchmarks and the app's status line)."""

    prompt_tokens: int = 0
    score_seconds: float = 0.0
    write_seconds: float = 0.0
    lines_written: int = 0


class LlamaCandidateRanker:
    """Verbalizer scoring + candidate-restricted writing on one llama.cpp model."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator  # core.llm.LlamaGenerator
        self.last = RankStats()
        self._letter_tokens: dict[str, int] = {}

    def letter_tokens(self, k: int) -> list[int]:
        """The token id of each of the first k letters as the first token of an answer line ("C. Title ...").

        The verbalizer needs each letter to be one token of its own; a tokenizer that splits a letter
        (or merges it with what follows) is refused with a clear error instead of scoring garbage."""
        llm = self.generator.llama
        tokens = []
        for letter in CANDIDATE_LETTERS[:k]:
            if letter not in self._letter_tokens:
                ids = llm.tokenize(f"{letter}. x".encode(), add_bos=False, special=False)
                alone = llm.tokenize(letter.encode(), add_bos=False, special=False)
                if not ids or len(alone) != 1 or ids[0] != alone[0]:
                    raise ValueError(f"the tokenizer does not give candidate letter {letter!r} a token of its own")
                self._letter_tokens[letter] = int(ids[0])
            tokens.append(self._letter_tokens[letter])
        if len(set(tokens)) != len(tokens):
            raise ValueError("two candidate letters share a token")
        return tokens

    def run(
        self,
        prompt: str,
        lines: Sequence[str],
        *,
        n_write: int,
        on_scores: Callable[[np.ndarray], None] | None = None,
        on_line: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[int]]:
        """(K,) log-probabilities over the candidates, and the candidate positions written, in order.

        `lines[i]` is candidate i's answer line (`prompt.candidate_line`). `on_scores` is called as soon as
        the scores exist (the pipeline fuses and shows the list before the answer is written); `on_line`
        after each written line. n_write = 0 scores only.
        """
        import llama_cpp

        k = len(lines)
        if not 1 <= k <= len(CANDIDATE_LETTERS):
            raise ValueError(f"1 to {len(CANDIDATE_LETTERS)} candidates, got {k}")
        letters = np.asarray(self.letter_tokens(k), dtype=np.int64)
        with self.generator.lock:
            llm = self.generator.llama
            start = time.perf_counter()
            tokens = self.generator.evaluate_prompt(prompt)  # shares the KV-cache prefix reuse of generate()
            n_vocab = llm.n_vocab()

            def letter_logits() -> np.ndarray:
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
                return np.asarray(logits[letters], dtype=np.float64)

            first = letter_logits()
            scores = first - first.max()
            scores = scores - np.log(np.exp(scores).sum())
            score_seconds = time.perf_counter() - start
            if on_scores is not None:
                on_scores(scores)
            written: list[int] = []
            logits = first
            start = time.perf_counter()
            budget = llm.n_ctx() - len(tokens)
            for _ in range(min(n_write, k)):
                masked = logits.copy()
                masked[written] = -np.inf
                choice = int(np.argmax(masked))
                line = llm.tokenize(f"{lines[choice]}\n".encode(), add_bos=False, special=False)
                if len(line) >= budget:
                    break
                budget -= len(line)
                llm.eval(line)
                written.append(choice)
                if on_line is not None:
                    on_line(choice)
                logits = letter_logits()
            self.last = RankStats(
                prompt_tokens=len(tokens),
                score_seconds=score_seconds,
                write_seconds=time.perf_counter() - start,
                lines_written=len(written),
            )
        return scores, written


class LlamaTitleScorer:
    """Stage 2 as a likelihood: log p(candidate's text | DUALRec's title prompt) for every candidate.

    The text is what `prompt.scored_title` gives: "Title (" (title-prefix, shipped) or "Title (Year)".

    The title prompt (`prompt.build_prompt`: 5 recent movies + the LSTM's pick, "Recommendations:") is
    evaluated once; then every candidate's text is evaluated on top of that KV-cache prefix, each in a
    sequence of its own, all in one llama_decode, with logits at every position, and its tokens'
    log-probabilities are summed. No candidate is listed in the prompt, so
    there is no letter or position for the model to prefer, and it ranks with what fine-tuning on
    "what did they watch next" taught it (the v3 titles adapter), not with a new skill it must learn.

    Writing DUALRec's answer: the candidates the model finds most likely, best first: an exact search
    under a grammar restricted to the candidates (every candidate's whole text is scored, not a greedy
    first token). Same `run` interface as `LlamaCandidateRanker`.
    """

    def __init__(self, generator: Any) -> None:
        self.generator = generator  # core.llm.LlamaGenerator
        self.last = RankStats()

    def run(
        self,
        prompt: str,
        lines: Sequence[str],
        *,
        n_write: int,
        on_scores: Callable[[np.ndarray], None] | None = None,
        on_line: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, list[int]]:
        """(K,) log-likelihood of each candidate text `lines[i]` after `prompt`; the top n_write, best first."""
        if not lines:
            raise ValueError("no candidates to score")
        start = time.perf_counter()
        with self.generator.lock:
            tokens = self.generator.evaluate_prompt(prompt)
            scores = self._score_texts(len(tokens), lines)
        score_seconds = time.perf_counter() - start
        if on_scores is not None:
            on_scores(scores)
        start = time.perf_counter()
        written = [int(p) for p in np.lexsort((np.arange(len(lines)), -scores))[: max(0, n_write)]]
        for position in written:
            if on_line is not None:
                on_line(position)
        self.last = RankStats(
            prompt_tokens=len(tokens),
            score_seconds=score_seconds,
            write_seconds=time.perf_counter() - start,
            lines_written=len(written),
        )
        return scores, written

    def _score_texts(self, n_prompt: int, texts: Sequence[str]) -> np.ndarray:
        """Sum of token log-probabilities of each text continuing the evaluated prompt (caller holds lock).

        Each text is decoded in a sequence of its own that shares the prompt's KV entries (copied from
        sequence 0, nothing recomputed), as many texts per `llama_decode` as the context's sequences, batch
        and free cells allow: one call for the usual 20 candidates instead of one call each. A text's last
        token is not evaluated: it predicts nothing that is scored. A context of one sequence decodes the
        texts one at a time in sequence 0.
        """
        import llama_cpp

        llm = self.generator.llama
        ctx = llm.ctx
        n_vocab = llm.n_vocab()
        memory = llama_cpp.llama_get_memory(ctx)
        first = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(1, n_vocab))
        first_norm = float(_logsumexp_rows(first)[0])  # the prompt's last position predicts each first token
        encoded = [llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) for text in texts]
        scores = np.array([float(first[0, ids[0]]) - first_norm if ids else -np.inf for ids in encoded])
        room = min(llama_cpp.llama_n_batch(ctx), llm.n_ctx() - n_prompt)  # tokens one decode can take
        if any(len(ids) - 1 > room for ids in encoded):
            raise ValueError(f"prompt and candidate do not fit the context of {llm.n_ctx()} tokens")
        n_seq = llama_cpp.llama_n_seq_max(ctx)
        seq_ids = list(range(1, n_seq)) if n_seq > 1 else [0]
        groups: list[list[int]] = []
        used = room
        for row, ids in enumerate(encoded):
            if len(ids) < 2:
                continue
            if used + len(ids) - 1 > room or len(groups[-1]) == len(seq_ids):
                groups.append([])
                used = 0
            groups[-1].append(row)
            used += len(ids) - 1
        batch = llama_cpp.llama_batch_init(max(1, room), 0, 1)
        try:
            for group in groups:
                owners: list[int] = []
                targets: list[int] = []
                for seq, row in zip(seq_ids, group, strict=False):
                    if seq != 0:
                        llama_cpp.llama_memory_seq_cp(memory, 0, seq, 0, n_prompt)
                    ids = encoded[row]
                    for j, token in enumerate(ids[:-1]):
                        i = len(targets)
                        batch.token[i] = token
                        batch.pos[i] = n_prompt + j
                        batch.n_seq_id[i] = 1
                        batch.seq_id[i][0] = seq
                        batch.logits[i] = True
                        targets.append(ids[j + 1])
                        owners.append(row)
                batch.n_tokens = len(targets)
                if llama_cpp.llama_decode(ctx, batch) != 0:
                    raise RuntimeError("llama.cpp could not evaluate the candidates")
                logits = _output_logits(llama_cpp, ctx, len(targets), n_vocab)
                chosen = logits[np.arange(len(targets)), targets]
                np.add.at(scores, owners, chosen - _logsumexp_rows(logits, workers=self.generator.n_threads))
                for seq in seq_ids[: len(group)]:
                    llama_cpp.llama_memory_seq_rm(memory, seq, n_prompt if seq == 0 else -1, -1)
        finally:
            llama_cpp.llama_batch_free(batch)
            # Forget the whole cache: llama-cpp-python's own prefix reuse (create_completion) was seen to
            # generate differently after candidate tokens were evaluated past the prompt, even with those
            # positions removed. The next call then evaluates its prompt afresh (a prompt changes with
            # every logged movie anyway). tests/test_llm_serving.py checks generation is unchanged.
            llama_cpp.llama_memory_seq_rm(memory, -1, 0, -1)
            llm.n_tokens = 0
        return scores


def scorer_for(llm_scoring: str, generator: Any) -> LlamaTitleScorer | LlamaCandidateRanker:
    """Stage 2's scorer for fusion.json's `llm_scoring`: title likelihood for the title scorings (which text
    is scored is the pipeline's choice, `prompt.scored_title`), else the letter verbalizer."""
    return LlamaTitleScorer(generator) if llm_scoring in TITLE_SCORINGS else LlamaCandidateRanker(generator)


def _output_logits(llama_cpp: Any, ctx: Any, n_outputs: int, n_vocab: int) -> np.ndarray:
    """(n_outputs, n_vocab) logits of the last decode, in batch order: a view when llama.cpp keeps them in
    one block (it does), else copied row by row."""
    pointers = [llama_cpp.llama_get_logits_ith(ctx, i) for i in range(n_outputs)]
    first = ctypes.addressof(pointers[0].contents)
    row_bytes = n_vocab * ctypes.sizeof(ctypes.c_float)
    if all(ctypes.addressof(p.contents) == first + i * row_bytes for i, p in enumerate(pointers)):
        return np.ctypeslib.as_array(pointers[0], shape=(n_outputs, n_vocab))
    return np.stack([np.ctypeslib.as_array(p, shape=(n_vocab,)) for p in pointers])


def _logsumexp_rows(logits: np.ndarray, *, workers: int = 1, rows_per_pass: int = 8) -> np.ndarray:
    """log(sum(exp(row))) of each row: what a log-softmax subtracts, without a (rows, vocab) result array.

    A few rows per pass through one reused buffer (a 262,144-token vocabulary is 1 MiB a row); with
    workers > 1 the rows are split between threads (numpy releases the GIL), as the LLM's threads are idle."""
    result = np.empty(len(logits), dtype=np.float64)

    def part(start: int, stop: int) -> None:
        work = np.empty((min(rows_per_pass, stop - start), logits.shape[1]), dtype=np.float32)
        for first in range(start, stop, rows_per_pass):
            rows = logits[first : min(stop, first + rows_per_pass)]
            buffer = work[: len(rows)]
            top = rows.max(axis=1)
            np.subtract(rows, top[:, None], out=buffer)
            np.exp(buffer, out=buffer)
            result[first : first + len(rows)] = top + np.log(buffer.sum(axis=1, dtype=np.float64))

    bounds = np.linspace(0, len(logits), max(1, min(workers, len(logits) // rows_per_pass)) + 1).astype(int)
    if len(bounds) == 2:
        part(0, len(logits))
        return result
    with ThreadPoolExecutor(len(bounds) - 2) as pool:
        futures = [pool.submit(part, int(a), int(b)) for a, b in pairwise(bounds[1:])]
        part(0, int(bounds[1]))
        for future in futures:
            future.result()
    return result
