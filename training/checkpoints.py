"""LoRA training checkpoints: adapter + optimizer moments + RNG state, safetensors and JSON (no pickle).

A checkpoint belongs to one run, identified by `run_fingerprint` (settings, base, examples): a
checkpoint of another run is never resumed. Folders are written as `<name>.partial` and renamed, so a
stopped run never leaves a half-written checkpoint that looks complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .llm_data import Example, RankExample
    from .lora_loop import LoraSettings


def save_checkpoint(folder: Path, model: Any, optimizer: Any, step: int, losses: list[float], fingerprint: str) -> None:
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


def latest_checkpoint(out: Path, fingerprint: str) -> Path | None:
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


def restore_checkpoint(folder: Path, model: Any, optimizer: Any) -> tuple[int, list[float]]:
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


def run_fingerprint(
    examples: Sequence[Example] | Sequence[RankExample], settings: LoraSettings, base: dict[str, Any]
) -> str:
    """Identifies a run: a checkpoint from a different run (data, settings, base, starting adapter) is never
    resumed. `base["init"]` names the adapter the run started from, if any."""
    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode())
    digest.update(json.dumps(base.get("sha256", "")).encode())
    if base.get("init"):
        digest.update(json.dumps(base["init"], sort_keys=True).encode())
    for example in examples:
        answer = example.answer if hasattr(example, "answer") else json.dumps([example.candidates, example.target])
        digest.update((example.prompt + "\x00" + answer + "\x00").encode())
    return digest.hexdigest()[:16]


def prune_checkpoints(out: Path, keep: int) -> None:
    import shutil

    folders = sorted(
        (f for f in out.glob("checkpoint-*") if f.name.split("-")[-1].isdigit()),
        key=lambda f: int(f.name.split("-")[-1]),
    )
    for folder in folders[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)
