"""`python -m training catalog`: write the catalog the app ships (models/catalog.json).

The app needs titles, years, genres, IMDb/TMDb ids (for importing Letterboxd/IMDb exports) and a
popularity count per movie (search ranking, empty-history fallback). Only ml-latest-small may be
shipped; for it, popularity over all ratings is fine because the app never evaluates anything.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from dualrec_tui.core.artifacts import default_data_dir
from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.movielens import load_dataset


def export_catalog(data: Path, out: Path) -> Catalog:
    """Load a release, count ratings per movie, write `out` (JSON) and the release's license beside it."""
    dataset = load_dataset(data)
    catalog = dataset.catalog
    catalog.popularity = np.bincount(dataset.items, minlength=len(catalog)).tolist()
    out.parent.mkdir(parents=True, exist_ok=True)
    catalog.to_json(out)
    license_file = Path(data) / "README.txt"
    if license_file.is_file():
        target = out.parent / "LICENSE-movielens.txt"
        target.unlink(missing_ok=True)
        shutil.copyfile(license_file, target)
    return catalog


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training catalog",
        description="Write catalog.json (titles, years, genres, IMDb/TMDb ids, popularity) for the app.",
    )
    parser.add_argument(
        "--data", type=Path, default=default_data_dir() / "ml-latest-small", help="release folder or .zip"
    )
    parser.add_argument("--out", type=Path, default=Path("models/catalog.json"), help="output JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m training catalog`: write the catalog and say where."""
    from rich.console import Console

    args = build_parser().parse_args(argv)
    catalog = export_catalog(args.data, args.out)
    Console().print(f"[green]wrote[/] {args.out}: {len(catalog)} movies, fingerprint {catalog.fingerprint}")
    return 0
