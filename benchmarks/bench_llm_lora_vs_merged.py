"""Load time and generation speed: base GGUF + LoRA adapter GGUF (what the app runs) vs a merged GGUF.

    python benchmarks/bench_llm_lora_vs_merged.py --merged artifacts/ml-latest-small/llm-export/model-Q4_K_M.gguf \
        [--adapter models/llm/adapter.gguf] [--data ../shared/data/ml-latest-small] [--prompts 5] [--n 5]

Both go through the app's LlamaGenerator, greedy, under the answer grammar, on prompts built from
ml-latest-small training prefixes (popularity fallback for the predicted movie). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dualrec_tui.core.artifacts import default_data_dir, models_dir
from dualrec_tui.core.llm import LlamaGenerator
from dualrec_tui.core.llm_files import base_gguf_path
from dualrec_tui.core.movielens import load_dataset
from dualrec_tui.core.prompt import answer_grammar
from dualrec_tui.core.sequences import build_sequences, leave_one_out
from training import llm_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merged", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, default=models_dir() / "llm" / "adapter.gguf")
    parser.add_argument("--data", type=Path, default=default_data_dir() / "ml-latest-small")
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    split = leave_one_out(build_sequences(dataset))
    predictor = llm_data.popularity_predictor(split)
    users = range(0, 10 * args.prompts, 10)
    prompts = [llm_data.prompt_for(split.train[u], predictor, dataset.catalog, args.n) for u in users]
    modes = {
        "base+adapter.gguf": (base_gguf_path(), args.adapter),
        "merged": (args.merged, None),
        "base+adapter.gguf again": (base_gguf_path(), args.adapter),
    }
    rows = {}
    for name, (model, lora) in modes.items():
        start = time.perf_counter()
        generator = LlamaGenerator(model, lora_path=lora, n_threads=args.threads)
        load = time.perf_counter() - start
        tokens, seconds, first = 0, 0.0, ""
        for prompt in prompts:
            text = generator.generate(prompt, max_tokens=24 * args.n, grammar=answer_grammar(args.n))
            first = first or text
            tokens += generator.last.completion_tokens
            seconds += generator.last.seconds
        generator.close()
        rows[name] = {"load_s": round(load, 2), "tokens_per_s": round(tokens / seconds, 1), "tokens": tokens}
        print(name, rows[name], repr(first[:80]), flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
