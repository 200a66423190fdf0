"""Start a LoRA run from an existing adapter: a peft folder, or a GGUF LoRA such as the shipped one.

    python -m training llm --task rank --init-adapter models/llm/adapter.gguf ...

The shipped adapter is kept only as GGUF (`models/llm/adapter.gguf`; its peft weights are not shipped), so
continuing its training needs the GGUF tensors back in peft's layout. llama.cpp's LoRA converter writes
`blk.N.attn_q.weight.lora_a` (r, in) and `.lora_b` (out, r) in f32, which are peft's `lora_A` / `lora_B`
weights of `layers.N.self_attn.q_proj`. Architectures whose converter permutes the query and key rows
(llama, mistral) are refused rather than loaded wrong. The file is read by the pure-Python `gguf` reader,
never by native code, and every tensor is checked against the model it goes into.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualrec_tui.core.errors import DualrecError

# GGUF block tensor -> Hugging Face module under `layers.N.`
GGUF_MODULES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
# architectures whose LoRA converter leaves every tensor as peft wrote it (no q/k row permutation)
UNPERMUTED_ARCHITECTURES = ("gemma3",)


@dataclass(frozen=True)
class AdapterWeights:
    """LoRA weights keyed `layers.N.<module>.lora_A|lora_B`, with the rank and alpha they were trained at."""

    tensors: dict[str, Any]
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    source: str


def read_adapter(path: Path) -> AdapterWeights:
    """The weights of a peft adapter folder or a GGUF LoRA file, as torch tensors."""
    path = Path(path)
    if path.is_dir():
        return _read_peft(path)
    if path.suffix == ".gguf":
        return _read_gguf(path)
    raise DualrecError(f"{path}: --init-adapter takes a peft adapter folder or a GGUF LoRA file (.gguf)")


def _read_peft(folder: Path) -> AdapterWeights:
    import json

    from safetensors.torch import load_file

    weights, config = folder / "adapter_model.safetensors", folder / "adapter_config.json"
    if not weights.is_file() or not config.is_file():
        raise DualrecError(f"{folder}: not a peft adapter (adapter_model.safetensors and adapter_config.json)")
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
        raw = load_file(str(weights))
    except (OSError, ValueError) as exc:
        raise DualrecError(f"{folder}: cannot read the adapter ({exc})") from None
    tensors = {}
    for name, tensor in raw.items():
        # base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight -> layers.3.self_attn.q_proj.lora_A
        at = name.find("layers.")
        if at < 0 or not name.endswith(".weight"):
            continue
        tensors[name[at : -len(".weight")]] = tensor
    modules = tuple(sorted({key.split(".")[-2] for key in tensors}))
    return AdapterWeights(tensors, int(settings["r"]), float(settings["lora_alpha"]), modules, str(folder))


def _read_gguf(path: Path) -> AdapterWeights:
    import gguf
    import torch

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DualrecError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc})") from None

    def field(key: str) -> Any:
        found = reader.fields.get(key)
        return None if found is None else found.contents()

    if field("general.type") != "adapter" or field("adapter.type") != "lora":
        raise DualrecError(f"{path}: a GGUF model, not a LoRA adapter")
    architecture = field("general.architecture")
    if architecture not in UNPERMUTED_ARCHITECTURES:
        raise DualrecError(
            f"{path}: a {architecture} LoRA; only {', '.join(UNPERMUTED_ARCHITECTURES)} adapters can be read back "
            "from GGUF (the converter permutes other architectures' query/key rows); pass the peft folder instead"
        )
    tensors: dict[str, Any] = {}
    ranks = set()
    for tensor in reader.tensors:
        parts = tensor.name.split(".")  # blk, N, attn_q, weight, lora_a
        if len(parts) != 5 or parts[0] != "blk" or parts[2] not in GGUF_MODULES or parts[4] not in ("lora_a", "lora_b"):
            raise DualrecError(f"{path}: unexpected tensor {tensor.name!r} in a LoRA adapter")
        if tensor.tensor_type != gguf.GGMLQuantizationType.F32:
            raise DualrecError(f"{path}: tensor {tensor.name} is {tensor.tensor_type.name}, expected F32")
        data = torch.from_numpy(tensor.data.copy()).float()
        ranks.add(data.shape[0] if parts[4] == "lora_a" else data.shape[1])
        side = "lora_A" if parts[4] == "lora_a" else "lora_B"
        tensors[f"layers.{int(parts[1])}.{GGUF_MODULES[parts[2]]}.{side}"] = data
    if len(ranks) != 1 or not tensors:
        raise DualrecError(f"{path}: LoRA tensors of mixed or missing rank ({sorted(ranks)})")
    alpha = field("adapter.lora.alpha")
    if alpha is None:
        raise DualrecError(f"{path}: no adapter.lora.alpha in the file")
    modules = tuple(sorted({key.split(".")[-2] for key in tensors}))
    return AdapterWeights(tensors, ranks.pop(), float(alpha), modules, str(path))


def load_into(model: Any, weights: AdapterWeights) -> int:
    """Copy `weights` into a peft model built with the same rank and modules; returns tensors copied.

    Every LoRA tensor of the model must be in `weights` with the same shape, and every tensor of
    `weights` must find its place: a partial or mismatched start is an error, not a silent mix."""
    import torch

    targets = {}
    for name, parameter in model.named_parameters():
        if ".lora_A." not in name and ".lora_B." not in name:
            continue
        at = name.find("layers.")
        key = name[at:].replace(".default.weight", "").replace(".weight", "")
        targets[key] = parameter
    missing = sorted(set(targets) - set(weights.tensors))
    extra = sorted(set(weights.tensors) - set(targets))
    if missing or extra:
        raise DualrecError(
            f"{weights.source} does not fit the model: "
            + (f"{len(missing)} LoRA tensors missing (e.g. {missing[0]})" if missing else "")
            + ("; " if missing and extra else "")
            + (f"{len(extra)} with no place in the model (e.g. {extra[0]})" if extra else "")
        )
    with torch.no_grad():
        for key, parameter in targets.items():
            source = weights.tensors[key]
            if tuple(source.shape) != tuple(parameter.shape):
                raise DualrecError(
                    f"{weights.source}: {key} has shape {tuple(source.shape)}, the model {tuple(parameter.shape)}"
                )
            parameter.copy_(source.to(parameter.dtype))
    return len(targets)
