"""Fine-tuning examples as token ids, padded batches, and the loss on answer tokens only.

Prompt tokens are labelled -100 (IGNORE_INDEX). Prompt and answer are tokenised separately and
concatenated, which is exactly what the model sees at inference (the prompt tokenised alone, the answer
generated token by token).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

IGNORE_INDEX = -100


def encode_example(tokenizer: Any, prompt: str, answer: str, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels: the prompt (with the tokenizer's BOS, if any) masked -100, the answer learnt."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + answer_ids)[:max_length]
    return ids, labels


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch: ids (B, T), attention mask (B, T), labels (B, T) with -100 on padding."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for row, (row_ids, row_labels) in enumerate(rows):
        ids[row, : len(row_ids)] = torch.tensor(row_ids)
        mask[row, : len(row_ids)] = 1
        labels[row, : len(row_labels)] = torch.tensor(row_labels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean next-token cross-entropy over answer tokens, computing the LM head only where it is needed.

    Same value as `model(**batch).loss` (a test checks it), but the vocabulary projection runs on the
    ~50-150 answer positions instead of every position: with Gemma's 262k-token vocabulary that is
    most of the step time on a CPU.
    """
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    targets = batch["labels"][:, 1:]  # token t+1 is predicted from position t
    keep = targets != IGNORE_INDEX
    logits = base.get_output_embeddings()(hidden[:, :-1][keep])  # (N answer tokens, vocab)
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = (logits / cap).tanh() * cap
    return F.cross_entropy(logits.float(), targets[keep])


def candidate_logprobs(
    model: Any, prompt_ids: Sequence[int], candidates: Sequence[Sequence[int]], device: Any = None
) -> Any:
    """(K,) sum of log p(candidate tokens | prompt) for every candidate, with gradients.

    What the app's `LlamaTitleScorer` computes, in torch: the prompt is run once, its KV cache is repeated
    for the K candidates, and the candidates run as one right-padded batch on top of it. The vocabulary
    projection runs only where a candidate token is predicted: the prompt's last position (every
    candidate's first token) and each candidate's own positions but its last.
    """
    import torch
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder, head = base.get_decoder(), base.get_output_embeddings()
    cap = getattr(base.config, "final_logit_softcapping", None)

    def log_softmax(hidden: Any) -> Any:
        logits = head(hidden)
        if cap:
            logits = (logits / cap).tanh() * cap
        return F.log_softmax(logits.float(), dim=-1)

    k = len(candidates)
    prompt = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)  # (1, P)
    out = decoder(input_ids=prompt, use_cache=True)
    first = log_softmax(out[0][:, -1])[0]  # (V,): the prompt's last position predicts each first token
    scores = torch.stack([first[ids[0]] for ids in candidates])  # (K,)
    width = max(len(ids) for ids in candidates) - 1
    if width <= 0:
        return scores
    cache = out.past_key_values
    cache.batch_repeat_interleave(k)
    ids = torch.zeros((k, width), dtype=torch.long, device=device)  # (K, W): each candidate's tokens but its last
    mask = torch.zeros((k, prompt.shape[1] + width), dtype=torch.long, device=device)
    mask[:, : prompt.shape[1]] = 1
    targets, rows, cols = [], [], []
    for row, tokens in enumerate(candidates):
        inputs = list(tokens[:-1])
        ids[row, : len(inputs)] = torch.tensor(inputs, dtype=torch.long)
        mask[row, prompt.shape[1] : prompt.shape[1] + len(inputs)] = 1
        for col, target in enumerate(tokens[1:]):
            rows.append(row)
            cols.append(col)
            targets.append(target)
    # transformers 5 names the argument `cache` (`past_key_values` is deprecated there), 4.x the other
    name = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
    hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=True, **{name: cache})[0]  # (K, W, H)
    picked = log_softmax(hidden[rows, cols])  # (N, V): only the scored positions
    token_scores = picked[torch.arange(len(targets), device=device), torch.tensor(targets, device=device)]
    return scores.index_add(0, torch.tensor(rows, device=device), token_scores)


def listwise_loss(scores: Any, target: int, temperature: float = 1.0) -> Any:
    """Cross-entropy of the true candidate under softmax(scores / T) over the K candidates.

    The loss of ranking: it rises when any other candidate's title outscores the movie watched next,
    which is exactly what the fused ranking reads; the answer loss only asks for a likely true title."""
    import torch.nn.functional as F

    return F.cross_entropy((scores / temperature)[None], scores.new_tensor([target]).long())


class AnswerObjective:
    """Tasks "titles" and "candidates": next-token cross-entropy on the answer tokens."""

    name = "answer"

    def encode(self, tokenizer: Any, examples: Sequence[Any], max_length: int) -> list[Any]:
        rows = [encode_example(tokenizer, e.prompt, e.answer, max_length) for e in examples]
        # An example whose prompt alone fills max_length teaches nothing (no answer token left): drop it.
        return [row for row in rows if any(label != IGNORE_INDEX for label in row[1])]

    def loss(self, model: Any, rows: Sequence[Any], pad_id: int, device: Any, distributed: bool) -> Any:
        batch = {k: v.to(device) for k, v in collate(rows, pad_id).items()}
        # Several processes: the wrapped model's own forward, so DDP synchronises gradients.
        return model(**batch).loss if distributed else answer_loss(model, batch)


class RankObjective:
    """Task "rank": listwise cross-entropy over the LSTM's candidates, scored as the app scores them."""

    name = "rank"

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def encode(self, tokenizer: Any, examples: Sequence[Any], max_length: int) -> list[Any]:
        rows = []
        for e in examples:
            prompt = tokenizer(e.prompt, add_special_tokens=True)["input_ids"]
            candidates = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in e.candidates]
            if len(prompt) + max(len(c) for c in candidates) <= max_length and all(candidates):
                rows.append((prompt, candidates, e.target))
        return rows

    def loss(self, model: Any, rows: Sequence[Any], pad_id: int, device: Any, distributed: bool) -> Any:
        if distributed:
            raise ValueError("the rank task runs in one process (its two forward passes do not fit DDP)")
        losses = [
            listwise_loss(candidate_logprobs(model, prompt, candidates, device), target, self.temperature)
            for prompt, candidates, target in rows
        ]
        return sum(losses) / len(losses)
