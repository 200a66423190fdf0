"""`python -m training embeddings`: encode the catalog with Sentence-BERT and ship the vectors.

The app's re-ranker (core/rerank.py) compares catalog movies only, so shipping their vectors
(float16 `.npy`, ~7 MB for ml-latest-small, keyed by catalog fingerprint + model + text template in
the file name) spares every app install sentence-transformers, transformers and torch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dualrec_tui.core.catalog import Catalog


def export_embeddings(models: Path, catalog: Catalog | None = None) -> Path:
    """Encode every movie of `models/catalog.json` and write `models/catalog-embeddings-<key>.npy`."""
    import tempfile

    from dualrec_tui.core.rerank import SentenceReranker, write_shipped_vectors

    models = Path(models)
    catalog = catalog or Catalog.from_json(models / "catalog.json")
    with tempfile.TemporaryDirectory() as scratch:  # encode afresh: neither a shipped file nor a cache is reused
        reranker = SentenceReranker(catalog, cache=Path(scratch), shipped=[])
        vectors = reranker.embeddings
    for stale in models.glob("catalog-embeddings-*.npy"):
        stale.unlink()  # vectors of another catalog or template: never shipped by mistake
    return write_shipped_vectors(vectors, catalog, models, reranker.template)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training embeddings",
        description="Encode every catalog movie with all-MiniLM-L6-v2 and write the float16 vectors the app "
        "ships beside catalog.json, so the app needs no sentence-transformers.",
    )
    parser.add_argument("--models", type=Path, default=Path("models"), help="models folder holding catalog.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m training embeddings`: encode, write, say where and how long it took."""
    from rich.console import Console

    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    path = export_embeddings(args.models)
    Console().print(f"[green]wrote[/] {path} in {time.perf_counter() - start:.1f} s")
    return 0
