"""Cold start of the app's models in a fresh process: imports, catalog, LSTM, first picks, re-ranker vectors.

    python benchmarks/bench_cold_start.py [--python PYTHON] [--models DIR] [--repeat 5]

Runs a child process per repeat (so every import is paid again; the OS file cache stays warm) with
`--python` (default: this interpreter), from a temporary directory, and prints the median of each
phase and the training libraries the child ended up importing. Works with any dualrec version whose
`LstmRecommender.load` / `SentenceReranker(catalog).embeddings` exist (used to compare before/after the
numpy LSTM and the shipped vectors). The re-ranker's phase reads vectors from the shipped file or, for
versions without one, from the cache (DUALREC_CACHE_DIR), so it never encodes here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from dualrec_tui.core.artifacts import models_dir
from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.lstm import LstmRecommender
t1 = time.perf_counter()
folder = models_dir()
catalog = Catalog.from_json(folder / "catalog.json")
toy_story = next(m.index for m in catalog.movies if m.title == "Toy Story" and m.year == 1995)
t2 = time.perf_counter()
lstm = LstmRecommender.load(folder / "lstm", catalog)
t3 = time.perf_counter()
picks = lstm.top_k([toy_story], 10)
t4 = time.perf_counter()
from dualrec_tui.core.rerank import SentenceReranker
vectors = SentenceReranker(catalog).embeddings
t5 = time.perf_counter()
assert len(picks) == 10 and vectors.shape[0] == len(catalog)
print(json.dumps({
    "import_s": t1 - t0, "catalog_s": t2 - t1, "lstm_load_s": t3 - t2, "first_picks_s": t4 - t3,
    "rerank_vectors_s": t5 - t4, "to_first_picks_s": t4 - t0, "total_s": t5 - t0,
    "training_libraries": sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the environment to measure")
    parser.add_argument("--models", type=Path, help="models folder (default: the environment's own)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if args.models:
        env["DUALREC_MODELS_DIR"] = str(args.models.resolve())
    runs = []
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(args.repeat):
            out = subprocess.run([args.python, "-c", CHILD], capture_output=True, text=True, cwd=cwd, env=env)
            if out.returncode != 0:
                sys.exit(out.stderr[-2000:])
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    report = {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0] if key.endswith("_s")}
    report |= {"training_libraries": runs[0]["training_libraries"], "repeat": args.repeat, "python": args.python}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
