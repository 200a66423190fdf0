"""A models folder for timing the app and the pipeline at another catalog size (e.g. 87,585 movies).

    python benchmarks/scale_models.py --data /tmp/scale/synthetic-quarter --out /tmp/scale/models-quarter
    DUALREC_MODELS_DIR=/tmp/scale/models-quarter python benchmarks/bench_pipeline.py --threads 2
    DUALREC_MODELS_DIR=/tmp/scale/models-quarter python benchmarks/bench_app.py --repeat 3

Writes catalog.json (with popularity) from the release, an LSTM of the default shape over that catalog
with RANDOM weights (seed 0: training one at 87k movies takes hours on a CPU, and scoring speed does
not depend on the weights), RANDOM unit vectors as the re-ranker's shipped catalog embeddings (encoding
87k titles takes many minutes once per machine; a lookup costs the same whatever the values), and a
link to the shipped LLM folder (--llm, default models/llm, fusion.json included). For timing only:
these recommendations mean nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def random_lstm(catalog: Any, seed: int = 0) -> Any:
    """An LSTM of the default training shape over `catalog`, with seeded random weights."""
    import torch

    from dualrec_tui.core.lstm import build_model
    from training.fit_lstm import TrainConfig, lstm_config

    torch.manual_seed(seed)
    config = lstm_config(catalog, TrainConfig())
    return build_model(config, catalog)


def build(data: Path, out: Path, llm: Path) -> Path:
    import numpy as np

    from dualrec_tui.core.lstm import save_model
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.rerank import write_shipped_vectors

    dataset = load_dataset(data)
    catalog = dataset.catalog
    catalog.popularity = np.bincount(dataset.items, minlength=len(catalog)).tolist()
    out.mkdir(parents=True, exist_ok=True)
    catalog.to_json(out / "catalog.json")
    model = random_lstm(catalog, seed=0)
    model.config.training["note"] = "random weights, for timing only (benchmarks/scale_models.py)"
    save_model(model.eval(), out / "lstm")
    vectors = np.random.default_rng(0).standard_normal((len(catalog), 384)).astype(np.float32)
    write_shipped_vectors(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), catalog, out)
    link = out / "llm"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(llm.resolve(), target_is_directory=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="MovieLens release (folder or zip)")
    parser.add_argument("--out", type=Path, required=True, help="models folder to write")
    parser.add_argument("--llm", type=Path, default=ROOT / "models" / "llm", help="LLM folder to link")
    args = parser.parse_args(argv)
    print(build(args.data, args.out, args.llm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
