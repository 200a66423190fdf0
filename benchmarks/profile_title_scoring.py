"""Where one title-scoring pass spends its time: the prompt, the candidates' decode, the logsumexp.

    python benchmarks/profile_title_scoring.py [--users 8] [--threads 2] [--llm-scoring titles|title-prefix]

For seeded ml-latest-small users (as bench_pipeline.py): the title prompt is evaluated, then the LSTM's
top 20 candidates are scored (`LlamaTitleScorer._score_texts`), timed separately, with the number of
decoded candidate positions and how many of them a trie (shared prefixes decoded once) would leave.
The first user warms up and is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    from dualrec_tui.core.prompt import TITLE_SCORINGS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm-scoring", choices=TITLE_SCORINGS, default="titles")
    args = parser.parse_args()
    os.environ["DUALREC_LLM_THREADS"] = str(args.threads)

    from bench_pipeline import load_lstm, sample_histories

    from dualrec_tui.core import llm_rank
    from dualrec_tui.core.artifacts import models_dir
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.llm import LlamaGenerator
    from dualrec_tui.core.llm_files import locate_llm
    from dualrec_tui.core.pipeline import DualRec
    from dualrec_tui.core.prompt import scored_title

    catalog = Catalog.from_json(models_dir() / "catalog.json")
    lstm, _ = load_lstm(catalog, models_dir() / "lstm")
    files = locate_llm(None)
    generator = LlamaGenerator(files.model, lora_path=files.lora, n_threads=args.threads)
    scorer = llm_rank.LlamaTitleScorer(generator)
    pipeline = DualRec(catalog, lstm)  # its prompt only
    logsumexp = llm_rank._logsumexp_rows
    spent: list[float] = []

    def timed_logsumexp(*a, **k):
        start = time.perf_counter()
        out = logsumexp(*a, **k)
        spent.append(time.perf_counter() - start)
        return out

    llm_rank._logsumexp_rows = timed_logsumexp
    rows = []
    for history in sample_histories(catalog, args.users + 1, args.seed):
        top = [i for i, _ in lstm.top_k(history, 20, exclude=history)]
        prompt = pipeline.prompt_for(history, top[0])  # the app's title prompt
        texts = [scored_title(catalog[i], args.llm_scoring) for i in top]
        encoded = [generator.llama.tokenize(t.encode(), add_bos=False, special=False) for t in texts]
        spent.clear()
        with generator.lock:
            start = time.perf_counter()
            tokens = generator.evaluate_prompt(prompt)
            middle = time.perf_counter()
            scorer._score_texts(len(tokens), texts)
            end = time.perf_counter()
        positions = sum(len(ids) - 1 for ids in encoded)
        unique = len({tuple(ids[: j + 1]) for ids in encoded for j in range(len(ids) - 1)})
        rows.append((len(tokens), middle - start, positions, unique, end - middle, sum(spent)))
    for n_prompt, prompt_s, positions, unique, candidates_s, lse_s in rows[1:]:
        print(
            f"prompt {n_prompt} tokens {prompt_s:.3f} s | candidates {positions} positions ({unique} unique "
            f"prefixes) {candidates_s:.3f} s, logsumexp {lse_s:.3f} s"
        )
    med = [statistics.median(r[i] for r in rows[1:]) for i in (1, 4, 5)]
    print(f"{args.llm_scoring}: median prompt {med[0]:.3f} s, candidates {med[1]:.3f} s (logsumexp {med[2]:.3f} s)")
    print(f"decoded positions: {sum(r[2] for r in rows[1:])}, unique prefixes {sum(r[3] for r in rows[1:])}")
    generator.close()


if __name__ == "__main__":
    main()
