"""One user's full DUALRec recommendation, end to end, as the app runs it.

    python benchmarks/bench_pipeline.py [--threads 2] [--users 5] [--gguf PATH] [--mode candidates|titles]
        [--constrain-titles] [--llm-scoring titles|title-prefix] [--against-scoring titles|title-prefix]

candidates mode (the app's default): LSTM + Sentence-BERT similarity of the top K + one LLM scoring pass
+ fusion (the list is on screen: "fused") + the LLM's written picks. Targets: <= 2.0 s median per user,
the fused list before the written answer ends, LSTM picks < 300 ms. titles mode: the LLM writes titles
(DUALRec as first built). Fusion settings come from models_dir()/llm/fusion.json, as in the app;
--llm-scoring overrides how the LLM scores the candidates, and --against-scoring times a second scoring on
the same users in the same run (each user right after under the baseline; swap the two flags' values to
reverse the order), with the ratio of the medians. Both are for candidates mode.

Models: the catalog from models_dir(); the trained LSTM from models_dir()/lstm (a random-weight LSTM
of the default shape when none is built: its speed does not depend on its weights); the fine-tuned
GGUF if built, else the Gemma 3 270M base GGUF; all-MiniLM-L6-v2 with cached catalog embeddings.
Histories: the last 30 movies of seeded random users of ml-latest-small (random catalog movies when
the data folder is absent). Cold start (loading every model) is reported separately; then each user
is timed warm, as in the app after start-up. Target: < 3 s per user on 2 CPU cores. Process CPU time
and the load average are printed too: on a shared machine wall time says more about the neighbours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's code, not whichever one the environment installed


def load_lstm(catalog, directory: Path):
    from dualrec_tui.core.lstm import LstmConfig, LstmRecommender, build_model, build_title_vocabulary

    if (directory / "config.json").is_file():
        lstm = LstmRecommender.load(directory, catalog)
        note = lstm.config.training.get("note")  # benchmarks/scale_models.py: random weights, for timing
        return lstm, f"{note or 'trained'} ({directory})"
    config = LstmConfig(len(catalog), catalog.fingerprint, build_title_vocabulary(catalog), catalog.genre_vocabulary)
    return LstmRecommender(build_model(config, catalog), catalog), "random weights (no trained LSTM found)"


def sample_histories(catalog, n: int, seed: int) -> list[list[int]]:
    from dualrec_tui.core.artifacts import default_data_dir

    rng = np.random.default_rng(seed)
    data = default_data_dir() / "ml-latest-small"
    if data.is_dir():
        from dualrec_tui.core.movielens import load_dataset
        from dualrec_tui.core.sequences import build_sequences

        dataset = load_dataset(data)
        if dataset.catalog.fingerprint == catalog.fingerprint:
            seqs = build_sequences(dataset).items
            users = rng.choice(len(seqs), size=min(n, len(seqs)), replace=False)
            return [seqs[int(u)][-30:] for u in users]
    return [rng.choice(len(catalog), size=30, replace=False).tolist() for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gguf", type=Path, help="a .gguf file or an LLM folder (default: models_dir()/llm)")
    parser.add_argument("--n-suggestions", type=int, default=3)
    parser.add_argument("--constrain-titles", action="store_true", help="titles mode: catalog titles only")
    parser.add_argument("--mode", choices=("candidates", "titles"), default="candidates")
    from dualrec_tui.core.prompt import TITLE_SCORINGS

    parser.add_argument("--llm-scoring", choices=TITLE_SCORINGS, help="default: fusion.json's")
    parser.add_argument("--against-scoring", choices=TITLE_SCORINGS, help="a baseline scoring, same users, same run")
    args = parser.parse_args()
    if args.mode != "candidates" and (args.llm_scoring or args.against_scoring):
        parser.error("--llm-scoring and --against-scoring score candidates: they need --mode candidates")
    os.environ["DUALREC_LLM_THREADS"] = str(args.threads)

    import torch

    torch.set_num_threads(args.threads)
    from dualrec_tui.core.artifacts import models_dir
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.llm import LlamaGenerator
    from dualrec_tui.core.llm_files import locate_llm
    from dualrec_tui.core.llm_rank import scorer_for
    from dualrec_tui.core.pipeline import DualRec, FusedReady, LlmToken, LstmReady, read_fusion
    from dualrec_tui.core.rerank import SentenceReranker

    cold: dict[str, float] = {}
    t = time.perf_counter()
    catalog = Catalog.from_json(models_dir() / "catalog.json")
    cold["catalog"] = time.perf_counter() - t
    t = time.perf_counter()
    lstm, lstm_kind = load_lstm(catalog, models_dir() / "lstm")
    cold["lstm"] = time.perf_counter() - t
    t = time.perf_counter()
    files = locate_llm(args.gguf)  # what the app loads: merged model, or base + shipped adapter.gguf
    gguf = f"{files.model}" + (f" + LoRA {files.lora}" if files.lora else "") + f" ({files.kind})"
    generator = LlamaGenerator(files.model, lora_path=files.lora, n_threads=args.threads)
    cold["llm"] = time.perf_counter() - t
    t = time.perf_counter()
    reranker = SentenceReranker(catalog)
    _ = reranker.embeddings
    cold["sbert" + (" (encoded catalog)" if reranker.computed else " (cached embeddings)")] = time.perf_counter() - t
    t = time.perf_counter()
    reranker.encode(["warm-up"])
    cold["sbert model"] = time.perf_counter() - t

    settings = read_fusion(models_dir() / "llm") if args.mode == "candidates" else {}
    settings = {k: v for k, v in settings.items() if k not in ("mode", "n_suggestions", "constrain_titles")}
    if args.llm_scoring:
        settings["llm_scoring"] = args.llm_scoring

    def build(scoring: str | None) -> DualRec:
        chosen = {**settings, **({"llm_scoring": scoring} if scoring else {})}
        return DualRec(
            catalog,
            lstm,
            generator,
            reranker,
            ranker=scorer_for(chosen.get("llm_scoring", "letters"), generator),
            mode=args.mode,
            n_suggestions=args.n_suggestions,
            constrain_titles=args.constrain_titles,
            **chosen,
        )

    histories = sample_histories(catalog, args.users + 1, args.seed)
    pipeline = build(None)
    pipeline.recommend(histories[0], k=10)  # warm-up user (grammar compile, first decode)
    baseline = build(args.against_scoring) if args.against_scoring else None
    baseline_totals: list[float] = []
    totals, cpus, tokens, first_tokens = [], [], [], []
    lstm_shown, fused_shown = [], []
    stages: dict[str, list[float]] = {"lstm": [], "llm": [], "rerank": []}
    if args.mode == "candidates":
        stages["llm_score"] = []
    counts: dict[str, int] = {}
    for history in histories[1:]:
        first: list[float] = []
        marks: dict[str, float] = {}
        start, cpu = time.perf_counter(), time.process_time()

        def on_event(event, start=start, first=first, marks=marks) -> None:
            if isinstance(event, LlmToken) and not first:
                first.append(time.perf_counter() - start)
            elif isinstance(event, LstmReady):
                marks["lstm"] = time.perf_counter() - start
            elif isinstance(event, FusedReady):
                marks["fused"] = time.perf_counter() - start

        result = pipeline.recommend(history, k=10, on_event=on_event)
        totals.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        tokens.append(generator.last.completion_tokens if args.mode == "titles" else pipeline.ranker.last.prompt_tokens)
        first_tokens.append(first[0] if first else float("nan"))
        lstm_shown.append(marks.get("lstm", float("nan")))
        fused_shown.append(marks.get("fused", float("nan")))
        for stage in stages:
            stages[stage].append(result.seconds.get(stage, 0.0))
        for key, value in result.counts.items():
            counts[key] = counts.get(key, 0) + value
        if baseline is not None:  # the same user under the baseline scoring, right after (same machine state)
            mark = time.perf_counter()
            baseline.recommend(history, k=10)
            baseline_totals.append(time.perf_counter() - mark)
    print(f"catalog {catalog.name} ({len(catalog)} movies); LSTM: {lstm_kind}; LLM: {gguf}")
    print(
        f"mode {args.mode}, threads {args.threads}, users {len(totals)}, written picks {args.n_suggestions}, "
        + (f"constrain titles {args.constrain_titles}" if args.mode == "titles" else f"fusion {settings}")
    )
    print("cold start: " + ", ".join(f"{k} {v:.2f} s" for k, v in cold.items()))
    target = "2.0 s" if args.mode == "candidates" else "3 s"
    print(f"per user (warm): median {statistics.median(totals):.2f} s, max {max(totals):.2f} s  (target <= {target})")
    if baseline_totals:
        base = statistics.median(baseline_totals)
        print(
            f"  baseline llm_scoring {args.against_scoring!r}, same users: median {base:.2f} s, "
            f"max {max(baseline_totals):.2f} s; this / baseline = {statistics.median(totals) / base:.2f}"
        )
    print(f"  LSTM picks shown after {statistics.median(lstm_shown) * 1000:.0f} ms (median; target < 300 ms)")
    if args.mode == "candidates":
        print(f"  fused list shown after {statistics.median(fused_shown):.2f} s (median), before the written picks")
    else:
        print(f"  first LLM token after {statistics.median(first_tokens):.2f} s (median)")
    print("  stages (median): " + ", ".join(f"{k} {statistics.median(v):.3f} s" for k, v in stages.items()))
    print(f"  process CPU time per user: median {statistics.median(cpus):.2f} s (all threads together)")
    what = "prompt tokens" if args.mode == "candidates" else "generated tokens"
    print(f"  {what} per user: median {statistics.median(tokens):.0f}")
    print("  LLM titles: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"  load average while running: {os.getloadavg()[0]:.1f} (a shared machine inflates wall time)")
    generator.close()


if __name__ == "__main__":
    main()
