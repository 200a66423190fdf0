"""What lets the sequence models (LSTM, SASRec) train on big releases: accelerate, and a bounded softmax.

- `make_accelerator`: one process on the CPU or a GPU, or several under `accelerate launch` (data
  parallel), with bf16 autocast where the GPU has it. The same choice as the LoRA loop, because
  accelerate's state is global to a process and `python -m training all` runs both.
- `full_softmax_loss`: cross-entropy over the whole catalog at every counted position. The logits are
  an (M, N) matrix: at 87k movies and a batch of 128 x 30 positions that is 1.3 GB per copy, with
  several copies alive in backward. Above `budget` elements the rows are split into chunks whose
  logits are recomputed in backward (activation checkpointing): the same loss and gradients, summed in
  another order, with one chunk's logits in memory at a time. Below it nothing changes, so results on
  small releases stay bit-for-bit what they were.
- `sampled_softmax_loss` (`--loss sampled --negatives N`): cross-entropy of each target against N
  movies drawn uniformly per batch and shared by all its positions (a drawn movie that is the row's
  own target is masked out). (M, N + 1) logits instead of (M, n_items): cheaper, but an estimate of
  the full loss; docs/results.md compares the two on validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOSSES = ("full", "sampled")
DEFAULT_LOGITS_BUDGET = 64_000_000  # elements; ml-latest-small (9.7k movies, 3,840 rows) stays below it


def make_accelerator(device: str | None) -> Any:
    """`device` "cpu" forces the CPU; None or "cuda" takes the GPU(s) accelerate finds."""
    import torch
    from accelerate import Accelerator

    cuda = device != "cpu" and torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return Accelerator(cpu=not cuda, mixed_precision="bf16" if bf16 else "no")


def full_softmax_loss(
    logits_of: Callable[..., Any], states: Any, targets: Any, n_items: int, budget: int, *extra: Any
) -> Any:
    """Mean cross-entropy of `logits_of(states, *extra)` (M, n_items) against `targets` (M,), memory-bounded."""
    import torch
    from torch.nn import functional as F
    from torch.utils.checkpoint import checkpoint

    n_rows = states.shape[0]
    if n_rows * n_items <= budget:
        return F.cross_entropy(logits_of(states, *extra), targets)

    def chunk_loss(chunk: torch.Tensor, goal: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits_of(chunk, *args), goal, reduction="sum")

    rows = max(1, budget // n_items)
    total = sum(
        checkpoint(chunk_loss, states[lo : lo + rows], targets[lo : lo + rows], *extra, use_reentrant=False)
        for lo in range(0, n_rows, rows)
    )
    return total / n_rows


ItemSide = Callable[[Any], tuple[Any, Any]]  # item indices (K,) -> (vectors (K, D), biases (K,) or None)


def sampled_softmax_loss(query: Any, item_side: ItemSide, targets: Any, n_items: int, negatives: int) -> Any:
    """Mean cross-entropy of each row's target against `negatives` uniformly drawn movies.

    `query` (M, D) is scored against item vectors by a dot product plus the item's bias: logit =
    query . vector + bias, which is how both models score (the LSTM's tied output, SASRec's embedding).
    """
    import torch
    from torch.nn import functional as F

    drawn = torch.randint(n_items, (negatives,), device=query.device)  # (N,), shared by the batch
    target_vectors, target_bias = item_side(targets)  # (M, D), (M,)
    drawn_vectors, drawn_bias = item_side(drawn)  # (N, D), (N,)
    positive = (query * target_vectors).sum(-1, keepdim=True)  # (M, 1)
    negative = query @ drawn_vectors.T  # (M, N)
    if target_bias is not None:
        positive = positive + target_bias.unsqueeze(1)
        negative = negative + drawn_bias
    negative = negative.masked_fill(drawn.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))  # own target
    logits = torch.cat([positive, negative], dim=1)  # (M, N + 1): the target in column 0
    return F.cross_entropy(logits, torch.zeros(targets.shape[0], dtype=torch.long, device=query.device))
