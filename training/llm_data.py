"""Fine-tuning examples for the LLM stage, from training sequences only.

Three tasks, each with the prompt of dualrec_tui.core.prompt that the app and the evaluation send:

- *titles* (`build_examples`): at a few cut points per training sequence the prompt is
  `build_prompt(the last RECENT_MOVIES movies before the cut, the LSTM's top prediction at the cut, n)` and the answer
  `format_answer(the next n movies the user really watched)`.
- *candidates* (`build_candidate_examples`): the prompt also lists the LSTM's top-K candidates at the cut,
  in a seeded random order (so a letter's position says nothing about the LSTM's rank; a test checks
  the target's position is spread over all letters). The answer is the next movie's candidate line,
  then up to two later movies of the same user that are also candidates. A cut whose next movie is not
  among the candidates is dropped (`missing="drop"`, the default: it matches what the model sees in use)
  or the next movie replaces a random non-top candidate (`missing="inject"`).
- *rank* (`build_rank_examples`): the title prompt of *titles* and the LSTM's top-K candidates at the cut as
  the texts the app scores (`prompt.scored_title`), with the position of the movie watched next; trained
  with a listwise loss on their likelihoods (training/lora_loss.py). Cuts as for *candidates*.

Validation and test targets never appear: `Split.training_sequences()` excludes them by construction
(a test checks it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dualrec_tui.core.prompt import (
    CANDIDATE_LETTERS,
    DEFAULT_CANDIDATES,
    DEFAULT_SUGGESTIONS,
    RECENT_MOVIES,
    build_candidate_prompt,
    build_prompt,
    candidate_line,
    format_answer,
    format_candidate_answer,
    recent_movies,
    scored_title,
)

if TYPE_CHECKING:
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.sequences import Split

# Several answer lengths, so the model follows the `n` of the prompt instead of always writing one length.
ANSWER_SIZES = (3, 5, 10)
CUTS_PER_USER = 4
DEFAULT_EXAMPLES = 4000

Predictor = Callable[[Sequence[int]], "int | None"]


@dataclass(frozen=True)
class Example:
    """One fine-tuning pair. `user` is the position in `split.training_sequences()`, `cut` the history length."""

    prompt: str
    answer: str
    user: int
    cut: int
    n: int


def popularity_predictor(split: Split) -> Predictor:
    """The fallback 'sequential model' when no LSTM is given: the most popular movie not yet seen."""
    order = np.argsort(-split.popularity(), kind="stable")

    def predict(history: Sequence[int]) -> int | None:
        seen = set(history)
        for item in order:
            if int(item) not in seen:
                return int(item)
        return None

    return predict


def lstm_predictor(lstm_dir: Path, catalog: Catalog) -> Predictor:
    """The LSTM's top prediction, excluding what the user has already watched."""
    from dualrec_tui.core.lstm import LstmRecommender

    model = LstmRecommender.load(Path(lstm_dir), catalog)

    def predict(history: Sequence[int]) -> int | None:
        top = model.top_k(list(history), 1)  # (catalog index, score) pairs; never a watched movie
        return int(top[0][0]) if top else None

    return predict


def prompt_for(history: Sequence[int], predictor: Predictor | None, catalog: Catalog, n: int) -> str:
    """The prompt for a user whose history (catalog indices, oldest first) is `history`."""
    predicted = predictor(history) if predictor is not None and history else None
    return build_prompt(recent_movies(catalog, history), catalog[predicted] if predicted is not None else None, n)


def build_examples(
    split: Split,
    catalog: Catalog,
    predictor: Predictor,
    *,
    max_examples: int = DEFAULT_EXAMPLES,
    cuts_per_user: int = CUTS_PER_USER,
    answer_sizes: Sequence[int] = ANSWER_SIZES,
    seed: int = 0,
) -> list[Example]:
    """Seeded examples from training sequences only: up to `cuts_per_user` cuts per user, then a sample."""
    rng = np.random.default_rng(seed)
    candidates: list[tuple[int, int, int]] = []  # (user, cut, n)
    for user, seq in enumerate(split.training_sequences()):
        if len(seq) < 2:
            continue
        # A cut leaves >= 1 movie before it and n after it; prefer full RECENT_MOVIES contexts when possible.
        # The prompt always asks for exactly as many movies as the answer holds.
        low = min(RECENT_MOVIES, len(seq) - 1)
        for _ in range(cuts_per_user):
            fitting = [n for n in answer_sizes if low + n <= len(seq)] or [len(seq) - low]
            n = int(rng.choice(fitting))
            cut = int(rng.integers(low, len(seq) - n + 1))
            candidates.append((user, cut, n))
    candidates = list(dict.fromkeys(candidates))  # short sequences may repeat a cut
    if len(candidates) > max_examples:
        keep = np.sort(rng.choice(len(candidates), size=max_examples, replace=False))
        candidates = [candidates[i] for i in keep]
    sequences = split.training_sequences()
    examples = []
    for user, cut, n in candidates:
        seq = sequences[user]
        history, future = seq[:cut], seq[cut : cut + n]
        examples.append(
            Example(
                prompt=prompt_for(history, predictor, catalog, n),
                answer=format_answer([catalog[i] for i in future]),
                user=user,
                cut=cut,
                n=n,
            )
        )
    return examples


MISSING_RULES = ("drop", "inject", "keep")  # "keep": the plain top K, for measuring recall only
EXAMPLE_RULES = ("drop", "inject")  # an example needs its next movie among the candidates


def _check_example_rule(missing: str) -> None:
    if missing not in EXAMPLE_RULES:
        raise ValueError(f"missing must be one of {', '.join(EXAMPLE_RULES)} for examples, not {missing!r}")


CANDIDATE_LINES = 3  # the answer: the next movie, then up to two later ones that are candidates too
LOOKAHEAD = 10  # how far after the cut a later movie may be


@dataclass(frozen=True)
class RankExample:
    """One listwise ranking example (task "rank"): the title prompt, the LSTM's candidates as the texts the
    app scores (`prompt.scored_title`), and which of them the user watched next."""

    prompt: str
    candidates: list[str]
    target: int
    user: int
    cut: int


Scorer = Callable[[list[list[int]]], np.ndarray]


def candidate_cuts(
    split: Split,
    score: Scorer | Sequence[Scorer],
    rng: np.random.Generator,
    *,
    n_candidates: int,
    missing: str,
    cuts_per_user: int,
    batch_size: int = 512,
) -> Iterator[tuple[int, int, list[int], list[int]]]:
    """(user, cut, history, candidates) at seeded cuts of the training sequences, in a seeded order.

    The candidates are the LSTM's top `n_candidates` unwatched movies at the cut, best first. A cut whose
    next movie is not among them is skipped (`missing="drop"`) or the movie replaces a random candidate
    other than the top one (`"inject"`), or yielded as it is (`"keep"`, to measure how often the LSTM's
    top K holds the next movie: benchmarks/candidate_recall.py). The cuts drawn do not depend on the rule.
    `rng` is the caller's, so what it draws next stays seeded too.

    `score` may be one scorer per fold (out-of-fold candidates): training sequence r is scored by
    `score[r % len(score)]`, which must not have been fit on it (`Split.without_fold`)."""
    if missing not in MISSING_RULES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_RULES)}, not {missing!r}")
    scorers = list(score) if isinstance(score, Sequence) else [score]
    sequences = split.training_sequences()
    cuts: list[tuple[int, int]] = []
    for user, seq in enumerate(sequences):
        if len(seq) < 2:
            continue
        points = np.arange(1, len(seq))  # history seq[:cut] (>= 1 movie), next movie seq[cut]
        take = min(cuts_per_user, points.shape[0])
        cuts.extend((user, int(c)) for c in np.sort(rng.choice(points, size=take, replace=False)))
    rng.shuffle(cuts)
    for lo in range(0, len(cuts), batch_size):
        chunk = cuts[lo : lo + batch_size]
        histories = [list(sequences[u][:c]) for u, c in chunk]
        scores = _fold_scores(scorers, [u for u, _ in chunk], histories)
        for (user, cut), history, row in zip(chunk, histories, scores, strict=True):
            row[np.asarray(history, dtype=np.int64)] = -np.inf
            candidates = [int(i) for i in np.lexsort((np.arange(row.shape[0]), -row))[:n_candidates]]
            target = int(sequences[user][cut])
            if target not in candidates:
                if missing == "drop":
                    continue
                if missing == "keep":
                    yield user, cut, history, candidates
                    continue
                candidates[int(rng.integers(1, len(candidates)))] = target  # the LSTM's top pick stays
            yield user, cut, history, candidates


def build_candidate_examples(
    split: Split,
    catalog: Catalog,
    score: Scorer,
    *,
    n_candidates: int = DEFAULT_CANDIDATES,
    missing: str = "drop",
    max_examples: int = DEFAULT_EXAMPLES,
    cuts_per_user: int = 3 * CUTS_PER_USER,
    seed: int = 0,
    batch_size: int = 512,
) -> list[Example]:
    """Candidate-ranking examples from training sequences; `score` is the LSTM's (B, n_items) scorer."""
    if not 2 <= n_candidates <= len(CANDIDATE_LETTERS):
        raise ValueError(f"n_candidates must be 2 to {len(CANDIDATE_LETTERS)}, not {n_candidates}")
    _check_example_rule(missing)
    rng = np.random.default_rng(seed)
    sequences = split.training_sequences()
    examples: list[Example] = []
    cuts = candidate_cuts(
        split,
        score,
        rng,
        n_candidates=n_candidates,
        missing=missing,
        cuts_per_user=cuts_per_user,
        batch_size=batch_size,
    )
    for user, cut, history, candidates in cuts:
        seq = sequences[user]
        target = int(seq[cut])
        shown = [candidates[i] for i in rng.permutation(len(candidates))]
        letter = {item: CANDIDATE_LETTERS[p] for p, item in enumerate(shown)}
        chosen = [target]
        for later in seq[cut + 1 : cut + 1 + LOOKAHEAD]:
            if len(chosen) == CANDIDATE_LINES:
                break
            if int(later) in letter and int(later) not in chosen:
                chosen.append(int(later))
        recent = recent_movies(catalog, history)
        prompt = build_candidate_prompt(recent, catalog[candidates[0]], [catalog[i] for i in shown])
        answer = format_candidate_answer([candidate_line(letter[i], catalog[i]) for i in chosen])
        examples.append(Example(prompt=prompt, answer=answer, user=user, cut=cut, n=len(chosen)))
        if len(examples) >= max_examples:
            break
    return examples


def _fold_scores(scorers: list[Scorer], users: list[int], histories: list[list[int]]) -> np.ndarray:
    """Each history scored by its user's fold's scorer (the one scorer when there are no folds)."""
    if len(scorers) == 1:
        return np.asarray(scorers[0](histories), dtype=np.float64)
    folds = np.asarray(users) % len(scorers)
    scores: np.ndarray | None = None
    for fold, scorer in enumerate(scorers):
        rows = np.flatnonzero(folds == fold)
        if rows.size == 0:
            continue
        part = np.asarray(scorer([histories[r] for r in rows.tolist()]), dtype=np.float64)
        if scores is None:
            scores = np.empty((len(histories), part.shape[1]), dtype=np.float64)
        scores[rows] = part
    assert scores is not None
    return scores


def build_rank_examples(
    split: Split,
    catalog: Catalog,
    score: Scorer | Sequence[Scorer],
    *,
    scoring: str = "title-prefix",
    n_candidates: int = DEFAULT_CANDIDATES,
    missing: str = "drop",
    max_examples: int = DEFAULT_EXAMPLES,
    cuts_per_user: int = 3 * CUTS_PER_USER,
    seed: int = 0,
    batch_size: int = 512,
) -> list[RankExample]:
    """Listwise examples from training sequences: the app's title prompt (5 recent movies and the LSTM's
    top pick, `build_prompt(..., DEFAULT_SUGGESTIONS)`) and the LSTM's top-K candidates as `scored_title`
    texts, exactly what the app's `LlamaTitleScorer` scores. Each text is scored on its own, so the
    candidates' order cannot leak the LSTM's rank; they are shuffled all the same."""
    if n_candidates < 2:
        raise ValueError(f"n_candidates must be at least 2, not {n_candidates}")
    _check_example_rule(missing)
    rng = np.random.default_rng(seed)
    sequences = split.training_sequences()
    examples: list[RankExample] = []
    cuts = candidate_cuts(
        split,
        score,
        rng,
        n_candidates=n_candidates,
        missing=missing,
        cuts_per_user=cuts_per_user,
        batch_size=batch_size,
    )
    for user, cut, history, candidates in cuts:
        shown = [candidates[i] for i in rng.permutation(len(candidates))]
        prompt = build_prompt(recent_movies(catalog, history), catalog[candidates[0]], DEFAULT_SUGGESTIONS)
        examples.append(
            RankExample(
                prompt=prompt,
                candidates=[scored_title(catalog[i], scoring) for i in shown],
                target=shown.index(int(sequences[user][cut])),
                user=user,
                cut=cut,
            )
        )
        if len(examples) >= max_examples:
            break
    return examples


def write_jsonl(examples: Sequence[Example] | Sequence[RankExample], path: Path) -> str:
    """Write examples one JSON object per line; returns the sha256 of the file (the data fingerprint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in examples)
    path.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_jsonl(path: Path) -> list[Example]:
    from dualrec_tui.core.errors import DataFormatError

    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(Example(**{k: row[k] for k in ("prompt", "answer", "user", "cut", "n")}))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(path, number, f"not a fine-tuning example ({exc})") from None
    return examples
