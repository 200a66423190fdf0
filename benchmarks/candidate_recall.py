"""How often the movie watched next is among an LSTM's top K: at training cuts and at held-out items.

The rank task (docs/llm.md) trains stage 2 on the LSTM's top K at cuts of training sequences; the app
meets the LSTM's top K at a held-out item. If the LSTM was fit on the cut sequences, the true movie is
among its candidates far more often there than at a held-out item, and stage 2 learns on an easier list
than the one it meets. This prints recall@K, and the target's mean place in the list when it is there, for:

- the LSTM at the seeded training cuts of `--task rank` (in-fold: it was fit on these sequences);
- the fold LSTMs of `--out-of-fold` at the same cuts (each scores only sequences it was not fit on);
- the LSTM at every user's validation target (held out): the case the app and the evaluation meet.

    python benchmarks/candidate_recall.py --data ../shared/data/ml-latest-small --lstm models/lstm \\
        --fold-lstms runs/llm-rank-oof/fold-lstms
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dualrec_tui.core.lstm import LstmRecommender
from dualrec_tui.core.movielens import load_dataset
from dualrec_tui.core.prompt import DEFAULT_CANDIDATES
from dualrec_tui.core.sequences import Split, build_sequences, leave_one_out
from training.llm_data import CUTS_PER_USER, Scorer, candidate_cuts


def describe(places: list[int | None]) -> str:
    found = [p for p in places if p is not None]
    mean_place = f"{np.mean(found) + 1:.2f}" if found else "-"
    share = len(found) / max(len(places), 1)
    return f"recall {share:.3f} ({len(found)} of {len(places)}), mean place when there {mean_place}"


def places_at_cuts(split: Split, score: Scorer | Sequence[Scorer], k: int, seed: int) -> list[int | None]:
    """The next movie's place in the top K at each of the rank task's cuts (same seed and cuts per sequence)."""
    sequences = split.training_sequences()
    cuts = candidate_cuts(
        split, score, np.random.default_rng(seed), n_candidates=k, missing="keep", cuts_per_user=3 * CUTS_PER_USER
    )
    places: list[int | None] = []
    for user, cut, _history, candidates in cuts:
        target = int(sequences[user][cut])
        places.append(candidates.index(target) if target in candidates else None)
    return places


def places_at_validation(split: Split, lstm: LstmRecommender, k: int) -> list[int | None]:
    """The validation target's place in the app's top K (`LstmRecommender.top_k`) for every user."""
    places: list[int | None] = []
    for u, target in enumerate(split.valid_target):
        top = [item for item, _score in lstm.top_k(split.valid_input(u), k)]
        places.append(top.index(target) if target in top else None)
    return places


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="MovieLens release folder")
    parser.add_argument("--lstm", type=Path, required=True, help="the LSTM the rank run's --lstm named")
    parser.add_argument("--fold-lstms", type=Path, help="OUT/fold-lstms of an --out-of-fold run")
    parser.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES, help="K (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="the rank run's --seed (it draws the cuts)")
    args = parser.parse_args(argv)

    dataset = load_dataset(args.data)
    catalog, split = dataset.catalog, leave_one_out(build_sequences(dataset))
    recommender = LstmRecommender.load(args.lstm, catalog)
    lstm, k = recommender.score, args.candidates
    print(f"top {k} candidates; {3 * CUTS_PER_USER} cuts per training sequence, seed {args.seed} (as --task rank)")
    print(f"  training cuts, {args.lstm} (fit on them): {describe(places_at_cuts(split, lstm, k, args.seed))}")
    if args.fold_lstms:
        folders = sorted(Path(args.fold_lstms).glob("fold-*"), key=lambda p: int(p.name.split("-")[1]))
        folds = [LstmRecommender.load(folder, catalog).score for folder in folders]
        places = places_at_cuts(split, folds, k, args.seed)
        print(f"  training cuts, {len(folds)} fold LSTMs (out-of-fold): {describe(places)}")
    print(f"  validation targets, {args.lstm} (held out): {describe(places_at_validation(split, recommender, k))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
