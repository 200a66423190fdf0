"""Out-of-fold LSTMs: candidates for stage-2 training that look like the candidates of held-out users.

The rank task (`--task rank`) trains the LLM to find the movie watched next among the LSTM's top K at cuts
of *training* sequences. The shipped LSTM was fit on those very sequences, so there it ranks the true movie
higher and more confidently than it does at a held-out validation or test item, and the LLM learns to rank
an easier list than the one it meets. With n folds, fold LSTM f is fit on every training sequence but
fold f's (`Split.without_fold`), with the shipped LSTM's hyper-parameters and `epochs` epochs, and scores
only fold f's cuts (`llm_data.candidate_cuts`). Each fold model is saved under `work_dir/fold-f` and
reused when it was built by the same recipe, so an interrupted run does not train it again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from dualrec_tui.core.catalog import Catalog
from dualrec_tui.core.errors import DualrecError
from dualrec_tui.core.sequences import Split

from .llm_data import Scorer

RECIPE_FILE = "fold.json"


def lstm_settings(lstm: Path, catalog: Catalog, epochs: int) -> Any:
    """The TrainConfig of the LSTM at `lstm` (its config.json `training` record), capped at `epochs`."""
    from dualrec_tui.core.lstm import read_config

    from .fit_lstm import TrainConfig

    training = read_config(Path(lstm), catalog).training
    known = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in training.items() if k in known})
    config.max_epochs = epochs
    return config


def _sequences_digest(split: Split) -> str:
    """Which training sequences the folds were cut from: a rerun on other data must not reuse them."""
    sequences = split.training_sequences()
    digest = hashlib.sha256(sequences.flat().astype(np.int32).tobytes())
    digest.update(sequences.lengths().astype(np.int64).tobytes())
    return digest.hexdigest()


def _recorded(path: Path) -> Any:
    """The recipe a finished fold wrote, or None (none yet, or a file cut short: then the fold is refit)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def fold_scorers(
    split: Split,
    catalog: Catalog,
    lstm: Path,
    *,
    n_folds: int,
    epochs: int,
    work_dir: Path,
    seed: int = 0,
    say: Any = print,
) -> list[Scorer]:
    """One scorer per fold, fold f's fit without fold f's sequences; trained, or read back from work_dir."""
    from dualrec_tui.core.lstm import LstmRecommender, load_model, save_model

    from .fit_lstm import train_lstm

    if n_folds < 2:
        raise DualrecError(f"--out-of-fold needs at least 2 folds, not {n_folds}")
    if epochs < 1:
        raise DualrecError(f"--fold-epochs must be at least 1, not {epochs}")
    config = lstm_settings(lstm, catalog, epochs)
    sequences_sha256 = _sequences_digest(split)
    scorers: list[Scorer] = []
    for fold in range(n_folds):
        folder = Path(work_dir) / f"fold-{fold}"
        recipe = {
            "fold": fold,
            "n_folds": n_folds,
            "seed": seed,
            "config": asdict(config),
            "catalog_fingerprint": catalog.fingerprint,
            "training_sequences_sha256": sequences_sha256,
        }
        recipe_path = folder / RECIPE_FILE
        if _recorded(recipe_path) == recipe:
            say(f"fold {fold + 1}/{n_folds}: LSTM read back from {folder}")
            model = load_model(folder, catalog)
        else:
            part = split.without_fold(fold, n_folds)
            say(
                f"fold {fold + 1}/{n_folds}: fitting an LSTM on {len(part.training_sequences())} of "
                f"{len(split.training_sequences())} training sequences, {epochs} epochs"
            )

            def report(record: dict[str, Any], fold: int = fold) -> None:
                ndcg = record.get("valid_ndcg10")
                said = "-" if ndcg is None else f"{ndcg:.4f}"
                say(f"  fold {fold + 1} epoch {record['epoch']}: loss {record['train_loss']:.3f}, valid NDCG@10 {said}")

            model, _ = train_lstm(part, catalog, config, seed + fold, on_epoch=report)
            save_model(model, folder)
            recipe_path.write_text(json.dumps(recipe, indent=1), encoding="utf-8")  # last: marks it complete
        scorers.append(LstmRecommender(model, catalog).score)
    return scorers
