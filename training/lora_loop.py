"""The LoRA training loop (peft + accelerate): `train_lora(hf_dir, examples, out, settings)`.

The loop runs through `accelerate`: in one process on a CPU or one GPU, or under `accelerate launch` on
several GPUs (data parallel, each process takes its slice of every global batch). Same seed, same data,
same device -> same adapter, also after a resume (training/checkpoints.py).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualrec_tui.core.errors import DualrecError

from .checkpoints import latest_checkpoint, prune_checkpoints, restore_checkpoint, run_fingerprint, save_checkpoint
from .llm_base import load_tokenizer
from .lora_loss import AnswerObjective, RankObjective

if TYPE_CHECKING:
    from .adapter_init import AdapterWeights
    from .llm_data import Example, RankExample

LOG_EVERY = 10  # steps between plain progress lines when output goes to a file


@dataclass
class LoraSettings:
    """Hyper-parameters of one fine-tuning run (all recorded in the manifest).

    Defaults: see docs/llm.md for how they were chosen (a short validation comparison on
    ml-latest-small within a CPU budget of a few hundred steps).
    """

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    learning_rate: float = 5e-4
    steps: int = 400
    batch_size: int = 4
    warmup_steps: int = 10
    max_length: int = 640
    weight_decay: float = 0.0
    seed: int = 0
    save_every: int = 50


def _lr_at(step: int, settings: LoraSettings) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    return settings.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _batch_indices(step: int, n_examples: int, global_batch: int, seed: int) -> list[int]:
    """The examples of global step `step`: a seeded permutation per epoch (so a resume sees the same order)."""
    import numpy as np

    start = step * global_batch
    indices: list[int] = []
    while len(indices) < global_batch:
        position = start + len(indices)
        epoch, offset = divmod(position, n_examples)
        order = np.random.default_rng([seed, epoch]).permutation(n_examples)
        take = min(global_batch - len(indices), n_examples - offset)
        indices.extend(int(i) for i in order[offset : offset + take])
    return indices


def train_lora(
    hf_dir: Path,
    examples: Sequence[Example] | Sequence[RankExample],
    out: Path,
    settings: LoraSettings,
    *,
    resume: bool = True,
    show_progress: bool = True,
    base_info: dict[str, Any] | None = None,
    threads: int | None = None,
    init: AdapterWeights | None = None,
) -> dict[str, Any]:
    """Fine-tune LoRA on `examples`; checkpoints in out/checkpoint-N, the final adapter in out/adapter.

    `Example`s train the answer (tasks titles, candidates); `RankExample`s the listwise ranking of their
    candidates (task rank). `init`: start from these LoRA weights (training/adapter_init.py) instead of
    peft's initialisation; they set the rank, alpha and modules.

    `threads`: torch CPU threads. On a busy machine 1 thread is many times faster than 2 (measured
    0.2 s vs 1.2-3.5 s per tiny step at load 11 on 2 cores): waiting OpenMP threads spin.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    if threads:
        torch.set_num_threads(threads)

    if not examples:
        raise DualrecError("no fine-tuning examples: the training sequences are too short")
    torch.manual_seed(settings.seed)
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if bf16 else "no")
    tokenizer = load_tokenizer(hf_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    lora = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
        bias="none",
    )
    model = get_peft_model(model, lora)
    if init is not None:
        from .adapter_init import load_into

        load_into(model, init)
    objective = RankObjective() if hasattr(examples[0], "candidates") else AnswerObjective()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    fingerprint = run_fingerprint(examples, settings, base_info or {})
    out.mkdir(parents=True, exist_ok=True)
    start_step, losses = 0, []
    checkpoint = latest_checkpoint(out, fingerprint) if resume else None
    if checkpoint is not None:
        start_step, losses = restore_checkpoint(checkpoint, model, optimizer)
    model, optimizer = accelerator.prepare(model, optimizer)
    encoded = objective.encode(tokenizer, examples, settings.max_length)
    dropped = len(examples) - len(encoded)
    if not encoded:
        raise DualrecError(f"every example is longer than --max-length {settings.max_length} tokens; raise it")
    world, rank = accelerator.num_processes, accelerator.process_index
    if world > 1 and isinstance(objective, RankObjective):
        raise DualrecError("--task rank runs in one process: start it without `accelerate launch`")
    global_batch = settings.batch_size * world
    model.train()
    started = time.perf_counter()
    progress = _progress(show_progress and accelerator.is_main_process)
    log_lines = show_progress and accelerator.is_main_process and not progress.console.is_terminal
    with progress:
        task = progress.add_task("LoRA", total=settings.steps, completed=start_step, loss=float("nan"))
        for step in range(start_step, settings.steps):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, settings)
            indices = _batch_indices(step, len(encoded), global_batch, settings.seed)
            mine = indices[rank * settings.batch_size : (rank + 1) * settings.batch_size]
            loss = objective.loss(model, [encoded[i] for i in mine], pad_id, accelerator.device, world > 1)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(accelerator.reduce(loss.detach(), reduction="mean"))
            losses.append(round(value, 5))
            progress.update(task, advance=1, loss=sum(losses[-10:]) / len(losses[-10:]))
            done = step + 1
            if log_lines and (done % LOG_EVERY == 0 or done == settings.steps):  # a log file gets no live bar
                elapsed = time.perf_counter() - started
                progress.console.print(
                    f"LoRA step {done}/{settings.steps}  loss {sum(losses[-10:]) / len(losses[-10:]):.3f}"
                    f"  {elapsed / (done - start_step):.1f} s/step  elapsed {elapsed / 60:.1f} min"
                )
            if accelerator.is_main_process and (done % settings.save_every == 0 or done == settings.steps):
                save_checkpoint(
                    out / f"checkpoint-{done}", accelerator.unwrap_model(model), optimizer, done, losses, fingerprint
                )
                prune_checkpoints(out, keep=2)
    accelerator.wait_for_everyone()
    summary = {
        "steps": settings.steps,
        "resumed_from": start_step,
        "seconds": round(time.perf_counter() - started, 1),
        "final_loss": round(sum(losses[-10:]) / max(1, len(losses[-10:])), 4),
        "first_loss": losses[0] if losses else None,
        "fingerprint": fingerprint,
        "examples_too_long": dropped,
    }
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(out / "adapter")
        tokenizer.save_pretrained(out / "adapter")
        (out / "adapter" / "loss.json").write_text(json.dumps(losses) + "\n", encoding="utf-8")
    return summary


def _progress(enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        disable=not enabled,
    )
