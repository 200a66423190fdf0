"""What the two sequence models (LSTM: fit_lstm.py, SASRec: sasrec.py) share in training.

- `cut_windows`: where the training windows lie in the flat sequence array. Only their bounds are
  stored (about 16 bytes a window); a batch's ids are gathered when the batch comes
  (`Windows.ids`), so memory does not grow with windows x width (the LSTM's 2M windows of the
  ml-32m shape took 5.8 GB as Python lists and int64 arrays).
- `run_epoch`: one pass over the windows in a seeded random order through `accelerate`: each process
  takes its `batch_size` rows of every global batch, and a process the last batch leaves nothing
  takes a step that adds nothing (DDP needs every process in every step).
- `BestEpoch`: early stopping on validation NDCG@10, keeping the best epoch's weights.
- `torch_threads` / `set_torch_threads`: how many CPU threads torch trains with.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dualrec_tui.core.sequences import Ragged


@dataclass
class Windows:
    """Windows of up to `width + 1` items cut from the ends of sequences (bounds only, ids on demand).

    Window c is `values[base[c] : base[c] + length[c]]`; the targets that count in the loss are those
    of steps `counted_from[c] .. length[c] - 2` (step t predicts item t + 1 of the window).
    """

    values: np.ndarray  # the flat item array the sequences view (catalog indices)
    base: np.ndarray  # (C,) int64
    length: np.ndarray  # (C,) int64, 2..width + 1
    counted_from: np.ndarray  # (C,) int64
    width: int

    def __len__(self) -> int:
        return int(self.base.shape[0])

    def ids(self, rows: np.ndarray, left_pad: bool = False) -> np.ndarray:
        """(B, width + 1) int64 item ids (index + 1) of windows `rows`, padded with 0 (right, or left)."""
        steps = np.arange(self.width + 1)  # (W + 1,)
        length = self.length[rows][:, None]  # (B, 1)
        offset = steps - (self.width + 1 - length) if left_pad else steps  # (B, W + 1) offset in the window
        real = (offset >= 0) & (offset < length)
        positions = np.where(real, self.base[rows][:, None] + offset, 0)
        return np.where(real, self.values[positions].astype(np.int64) + 1, 0)

    def loss_mask(self, rows: np.ndarray) -> np.ndarray:
        """(B, width) bool, right-padded windows: True where step t's target counts in the loss."""
        steps = np.arange(self.width)
        return (steps >= self.counted_from[rows][:, None]) & (steps < self.length[rows][:, None] - 1)


def cut_windows(sequences: Ragged, width: int, stride: int) -> Windows:
    """Windows of `width + 1` items from each sequence's end backwards, `stride` apart, the last from its start.

    A sequence of n >= 2 items gives windows ending at n, n - stride, ... until one starts at item 0.
    In window j > 0 only the targets of its last `stride` positions count (the earlier ones count in a
    later window with more context); the first window of a sequence counts all its targets, so each
    target is counted exactly once. Windows are listed sequence by sequence, from the end.
    """
    lengths = sequences.lengths()
    usable = np.flatnonzero(lengths >= 2)
    n = lengths[usable]
    per_sequence = 1 + np.maximum(0, -(-(n - width - 1) // stride))  # ceil((n - width - 1) / stride), >= 0
    sequence = np.repeat(usable, per_sequence)
    j = np.arange(int(per_sequence.sum())) - np.repeat(np.cumsum(per_sequence) - per_sequence, per_sequence)
    end = lengths[sequence] - j * stride
    start = np.maximum(0, end - width - 1)
    counted_from = np.where(start == 0, 0, np.maximum(0, end - stride - start - 1))
    return Windows(sequences.values, sequences.starts[sequence] + start, end - start, counted_from, width)


def run_epoch(
    step: Any,
    optimiser: Any,
    accelerator: Any,
    n_rows: int,
    batch_size: int,
    rng: np.random.Generator,
    make_batch: Callable[[np.ndarray], tuple[tuple[Any, ...], int]],
    on_batch: Callable[[int, int], None] | None = None,
) -> float:
    """One epoch; returns the mean loss per counted target. `make_batch(rows)` -> (step inputs, targets counted)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    order = rng.permutation(n_rows)
    global_batch = batch_size * world
    n_batches = math.ceil(n_rows / global_batch)
    total, count = 0.0, 0
    for b in range(n_batches):
        rows = order[b * global_batch : (b + 1) * global_batch][rank * batch_size :][:batch_size]
        weight = 1.0
        if rows.size == 0:  # the last global batch left this process nothing: a step that adds nothing
            rows, weight = order[:1], 0.0
        inputs, counted = make_batch(rows)
        loss = step(*inputs)
        optimiser.zero_grad(set_to_none=True)
        accelerator.backward(loss if weight == 1.0 else loss * weight)
        optimiser.step()
        total += float(loss.detach()) * counted * weight
        count += counted * int(weight)
        if on_batch and accelerator.is_main_process:
            on_batch(b + 1, n_batches)
    return total / max(count, 1)


class BestEpoch:
    """Early stopping: the best validation score so far, its epoch and a copy of the weights then."""

    def __init__(self) -> None:
        self.score, self.epoch, self.waited = -1.0, 0, 0
        self.state: dict[str, Any] | None = None

    def update(self, score: float, epoch: int, module: Any) -> bool:
        """Record an evaluation; True when it is the best so far (its weights are copied)."""
        if score > self.score:
            self.score, self.epoch, self.waited = score, epoch, 0
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            return True
        self.waited += 1
        return False

    def restore(self, module: Any) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)


def torch_threads() -> int:
    """Torch CPU threads for training: half the cores, at most 4. More threads than free cores makes
    torch *much* slower (measured: 2 threads on a busy 2-core machine ran 20x slower per step than 1)."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def set_torch_threads(threads: int | None) -> None:
    """`threads` torch CPU threads; 0 or None leaves torch's default."""
    if threads:
        import torch

        torch.set_num_threads(threads)
