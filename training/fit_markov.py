"""`python -m training markov`: count the Markov transitions the app fuses and write `models/markov`.

    python -m training markov --data ../shared/data/ml-latest-small --out models/markov

The same model the harness's `markov` row fits: training sequences only (each user's last two movies are
held out, as for the LSTM), smoothing chosen on the validation targets. So `evaluate --checkpoint
markov=models/markov` measures the shipped file and no test item was counted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .cli import run_subcommand

COMMAND = "python -m training markov --data {data} --out {out}"


def markov_release(data: Path, out: Path, *, kcore: int | None = None, console: Any = None) -> dict[str, Any]:
    """Fit on `data`'s training sequences, tune the smoothing on validation, write `out`; returns the manifest."""
    from rich.console import Console

    from dualrec_tui.core.artifacts import write_manifest
    from dualrec_tui.core.markov import TRANSITIONS_FILE
    from dualrec_tui.core.model_files import file_sha256
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    from .baselines import MarkovModel

    console = console or Console(stderr=True)
    start = time.perf_counter()
    dataset = load_dataset(Path(data))
    split = leave_one_out(build_sequences(dataset, kcore=kcore))
    model = MarkovModel()
    with console.status(f"counting transitions in {len(split.training_sequences())} training sequences"):
        model.fit(split, dataset.catalog, seed=0)
    assert model.transitions is not None
    out = Path(out)
    path = model.transitions.save(out)
    manifest = {
        "artifact": "dualrec Markov transitions (stage-1 companion signal)",
        "catalog_fingerprint": dataset.catalog.fingerprint,
        "command": COMMAND.format(data=data, out=out),
        "data": {"name": dataset.name, "source": str(data)},
        "files": [TRANSITIONS_FILE],
        "fitted_on": "training sequences only (each user's last two movies held out)",
        "smoothing_k": model.smoothing,
        "valid_NDCG@10_by_k": model.validation,
        "transitions": int(model.transitions.columns.shape[0]),
        "verify": {TRANSITIONS_FILE: {"bytes": path.stat().st_size, "sha256": file_sha256(path)}},
    }
    write_manifest(out, manifest)
    console.print(
        f"[green]wrote[/] {path}: {manifest['transitions']:,} transitions, smoothing k {model.smoothing:g} "
        f"(validation NDCG@10 {model.validation[str(model.smoothing)]:.4f}), {time.perf_counter() - start:.1f} s"
    )
    return manifest


def add_command(subparsers: argparse._SubParsersAction) -> None:
    from dualrec_tui.core.artifacts import default_data_dir

    parser = subparsers.add_parser(
        "markov",
        help="count the Markov transitions the app fuses (models/markov)",
        description="Count which movie follows which in the training sequences (each user's last two movies "
        "held out), choose the smoothing on validation, and write transitions.safetensors + manifest.json.",
    )
    parser.add_argument(
        "--data", type=Path, default=default_data_dir() / "ml-latest-small", help="MovieLens release folder"
    )
    parser.add_argument("--out", type=Path, default=Path("models/markov"), help="folder to write")
    parser.add_argument("--kcore", type=int, default=None, help="keep users and movies with at least K ratings")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    markov_release(args.data, args.out, kcore=args.kcore)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(add_command, "markov", argv)
