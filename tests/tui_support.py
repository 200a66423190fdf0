"""Deterministic fixtures for the TUI tests and snapshots: a small catalog, a fake LSTM, a fake LLM.

No clocks, no randomness: `TODAY` is fixed, scores depend only on the history, and the fake LLM
always streams the same answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path

import numpy as np

from dualrec_tui.app import DualrecApp
from dualrec_tui.config import Config
from dualrec_tui.core.catalog import Catalog, build_catalog
from dualrec_tui.services import ModelHub

TODAY = date(2024, 5, 1)

MOVIES = [
    (1, "Toy Story (1995)", ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]),
    (2, "Jumanji (1995)", ["Adventure", "Children", "Fantasy"]),
    (6, "Heat (1995)", ["Action", "Crime", "Thriller"]),
    (32, "Twelve Monkeys (a.k.a. 12 Monkeys) (1995)", ["Mystery", "Sci-Fi", "Thriller"]),
    (47, "Seven (a.k.a. Se7en) (1995)", ["Mystery", "Thriller"]),
    (50, "Usual Suspects, The (1995)", ["Crime", "Mystery", "Thriller"]),
    (110, "Braveheart (1995)", ["Action", "Drama", "War"]),
    (260, "Star Wars: Episode IV - A New Hope (1977)", ["Action", "Adventure", "Sci-Fi"]),
    (296, "Pulp Fiction (1994)", ["Comedy", "Crime", "Drama", "Thriller"]),
    (318, "Shawshank Redemption, The (1994)", ["Crime", "Drama"]),
    (356, "Forrest Gump (1994)", ["Comedy", "Drama", "Romance", "War"]),
    (480, "Jurassic Park (1993)", ["Action", "Adventure", "Sci-Fi", "Thriller"]),
    (527, "Schindler's List (1993)", ["Drama", "War"]),
    (589, "Terminator 2: Judgment Day (1991)", ["Action", "Sci-Fi"]),
    (593, "Silence of the Lambs, The (1991)", ["Crime", "Horror", "Thriller"]),
    (858, "Godfather, The (1972)", ["Crime", "Drama"]),
    (1196, "Star Wars: Episode V - The Empire Strikes Back (1980)", ["Action", "Adventure", "Sci-Fi"]),
    (1198, "Raiders of the Lost Ark (Indiana Jones and the Raiders of the Lost Ark) (1981)", ["Action", "Adventure"]),
    (1210, "Star Wars: Episode VI - Return of the Jedi (1983)", ["Action", "Adventure", "Sci-Fi"]),
    (1270, "Back to the Future (1985)", ["Adventure", "Comedy", "Sci-Fi"]),
    (2571, "Matrix, The (1999)", ["Action", "Sci-Fi", "Thriller"]),
    (2858, "American Beauty (1999)", ["Drama", "Romance"]),
    (2959, "Fight Club (1999)", ["Action", "Crime", "Drama", "Thriller"]),
    (4993, "Lord of the Rings: The Fellowship of the Ring, The (2001)", ["Adventure", "Fantasy"]),
    (5952, "Lord of the Rings: The Two Towers, The (2002)", ["Adventure", "Fantasy"]),
    (7153, "Lord of the Rings: The Return of the King, The (2003)", ["Action", "Adventure", "Drama", "Fantasy"]),
    (58559, "Dark Knight, The (2008)", ["Action", "Crime", "Drama", "IMAX"]),
    (79132, "Inception (2010)", ["Action", "Crime", "Drama", "Mystery", "Sci-Fi", "Thriller", "IMAX"]),
]


def small_catalog() -> Catalog:
    catalog = build_catalog(MOVIES, name="ml-latest-small")
    catalog.popularity = [100 - i for i in range(len(catalog))]
    return catalog


class FakeLstm:
    """Scores = genre overlap with the last three movies, minus a little per index (deterministic)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.n_items = len(catalog)

    def score(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for row, history in enumerate(histories):
            liked = {g for i in list(history)[-3:] for g in self.catalog[i].genres}
            for movie in self.catalog:
                overlap = len(liked & set(movie.genres))
                out[row, movie.index] = overlap - movie.index * 0.01 if history else -movie.index * 0.01
        return out

    def top_k(self, history: Sequence[int], k: int = 20, exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        scores = self.score([list(history)])[0].astype(np.float64)
        banned = set(history) | set(exclude)
        order = [i for i in np.argsort(-scores, kind="stable").tolist() if i not in banned]
        return [(i, float(scores[i])) for i in order[:k]]


class FakeGenerator:
    """Streams a fixed answer token by token (one line per suggestion), like LlamaGenerator.generate."""

    ANSWER = (
        "Inception (2010) | Action, Sci-Fi\n"
        "Fight Club (1999) | Drama\n"
        "A Film That Does Not Exist (2001) | Drama\n"
        "Back to the Future (1985) | Comedy, Sci-Fi\n"
    )

    def generate(
        self, prompt: str, *, max_tokens: int, grammar, temperature, seed, on_token: Callable | None, guard=None
    ) -> str:
        for piece in self.ANSWER.split(" "):
            if on_token is not None:
                on_token(piece + " " if not piece.endswith("\n") else piece)
        return self.ANSWER


def report_ranking(scores: np.ndarray, n_write: int, on_scores=None, on_line=None) -> tuple[np.ndarray, list[int]]:
    """What a candidate ranker's `run` does with its scores: report them, then write its best `n_write`."""
    if on_scores is not None:
        on_scores(scores)
    written = [int(i) for i in np.argsort(-scores, kind="stable")[:n_write]]
    for position in written:
        if on_line is not None:
            on_line(position)
    return scores, written


async def open_import_preview(app: DualrecApp, pilot, source: Path):
    """F3, the path of `source`, and its preview: returns the import screen once the preview is shown."""
    await pilot.press("f3")
    await settle(app, pilot)
    importer = app.screen
    importer.query_one("#import-path").value = str(source)
    importer.start_preview()
    await settle(app, pilot)
    return importer


class FakeRanker:
    """A candidate-grounded stage 2 (like core.llm_rank.LlamaCandidateRanker): prefers short titles, writes its
    top lines.

    Deterministic and blind to the letter a candidate is shown under, like a well-trained model should be."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def run(self, prompt, lines, *, n_write, on_scores=None, on_line=None):
        self.prompts.append(prompt)
        titles = [line.split(". ", 1)[1].split(" (")[0] for line in lines]
        raw = np.array([-0.2 * len(t) for t in titles], dtype=np.float64)
        scores = raw - raw.max() - np.log(np.exp(raw - raw.max()).sum())
        return report_ranking(scores, n_write, on_scores, on_line)


def make_hub(
    models_dir: Path, catalog: Catalog | None = None, lstm: bool = True, llm: bool = True, n: int = 6
) -> ModelHub:
    """A hub with everything 'loaded' from fakes (lstm=False leaves the LSTM to load from models_dir)."""
    from dualrec_tui.core.pipeline import DualRec

    catalog = catalog or small_catalog()
    fake = FakeLstm(catalog) if lstm else None
    pipeline = (
        DualRec(catalog, fake, FakeGenerator(), None, ranker=FakeRanker(), n_suggestions=3, llm_rank_weight=0.5)
        if (lstm and llm)
        else None
    )
    return ModelHub(models_dir, n_recommendations=n, llm_enabled=llm, catalog=catalog, lstm=fake, pipeline=pipeline)


def make_app(tmp_path: Path, **hub_options) -> DualrecApp:
    config = Config(db_path=tmp_path / "watchlog.db", models_dir=tmp_path / "models")
    hub = make_hub(tmp_path / "models", **hub_options)
    return DualrecApp(config, hub=hub, today=lambda: TODAY, config_file=tmp_path / "config.toml")


async def settle(app: DualrecApp, pilot, rounds: int = 400) -> None:
    """Wait until the model loader, the workers and their messages are all done."""
    from contextlib import suppress

    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        with suppress(WorkerCancelled):  # a newer recommendation run cancelled an older one: keep waiting
            await app.workers.wait_for_complete()
        await pilot.pause()
        if app.models_loaded.is_set() and not any(w.is_running for w in app.workers):
            await pilot.pause()
            if not any(w.is_running for w in app.workers):
                return
        await asyncio.sleep(0.01)
    raise AssertionError("the app did not settle")
