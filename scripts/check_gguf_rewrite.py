"""Check a metadata rewrite of a LoRA GGUF changed nothing that matters (tensors, generated text).

    python scripts/check_gguf_rewrite.py BEFORE.gguf models/llm/adapter.gguf

Compares every tensor byte for byte, prints the new general.* keys, then loads the base model with each
adapter in llama.cpp and compares greedy answers to one DUALRec prompt. Exit status 0 = identical.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gguf import GGUFReader
from llama_cpp import Llama

from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.llm_files import locate_llm
from dualrec_tui.core.prompt import build_prompt


def main(before: Path, after: Path, models: Path = Path("models")) -> int:
    old, new = GGUFReader(before), GGUFReader(after)
    assert [t.name for t in old.tensors] == [t.name for t in new.tensors], "tensor lists differ"
    for a, b in zip(old.tensors, new.tensors, strict=True):
        assert a.tensor_type == b.tensor_type and a.data.tobytes() == b.data.tobytes(), a.name
    print(f"tensors byte-identical: {len(new.tensors)}")
    for name, field in new.fields.items():
        if name.startswith("general."):
            print(f"  {name} = {field.contents()}")
    catalog = Catalog.from_json(models / "catalog.json")
    titles = ("Toy Story (1995)", "Aladdin (1992)", "Lion King, The (1994)", "Matrix, The (1999)", "Alien (1979)")
    prompt = build_prompt([catalog.resolve(t).movie for t in titles], catalog.resolve("Shrek (2001)").movie)
    base = locate_llm(models / "llm").model
    texts = []
    for lora in (before, after):
        llm = Llama(model_path=str(base), lora_path=str(lora), n_ctx=1024, n_threads=2, verbose=False, seed=0)
        texts.append(llm(prompt, max_tokens=80, temperature=0.0, top_k=1)["choices"][0]["text"])
        del llm
    print("same greedy text:", texts[0] == texts[1])
    print(texts[1])
    return 0 if texts[0] == texts[1] else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
