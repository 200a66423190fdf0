"""The prompt templates and answer formats, used identically by fine-tuning, evaluation and the app.

Two prompts, both with DUALRec's content (the user's 5 most recent movies plus the LSTM's top prediction):

- the *title* prompt (`build_prompt`) asks for `n` more movies from the whole catalog. Answer: one movie
  per line, `Title (Year) | Genre, Genre`, enforced by a GBNF grammar at decoding time and read back by
  `parse_answer` (tolerantly: garbage lines are skipped and counted, never raised);
- the *candidate* prompt (`build_candidate_prompt`) also lists the LSTM's top-K candidates, each behind a
  letter, in a shuffled order. Answer: `C. Title (Year)` lines, best first. The first token of
  the answer is the letter, so one forward pass over the prompt scores every candidate (a verbalizer:
  the log-probabilities of the K letter tokens), and the rest of each line is the candidate's own label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .catalog import Movie

RECENT_MOVIES = 5
DEFAULT_SUGGESTIONS = 3
END_OF_ANSWER = "<end>"
CANDIDATE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # at most 26 candidates; one verbalizer token each
DEFAULT_CANDIDATES = 20


def movie_line(movie: Movie) -> str:
    """A movie as prompts and answers write it: `Title (Year) | Genre, Genre`."""
    return f"{movie.label} | {', '.join(movie.genres) if movie.genres else 'Unknown'}"


def recent_movies(catalog: Sequence[Movie], history: Sequence[int]) -> list[Movie]:
    """The movies the prompt shows: the last RECENT_MOVIES of `history` (catalog indices, oldest first)."""
    return [catalog[i] for i in list(history)[-RECENT_MOVIES:]]


def _context_lines(recent: Sequence[Movie], predicted: Movie | None) -> list[str]:
    """DUALRec's context, shared by both prompts: the recent movies and the sequential model's pick."""
    lines = ["A movie fan recently watched, oldest first:"]
    lines += [f"- {movie_line(m)}" for m in list(recent)[-RECENT_MOVIES:]] or ["- (nothing yet)"]
    if predicted is not None:
        lines.append(f"A sequential model predicts they will watch next: {movie_line(predicted)}")
    return lines


def build_prompt(recent: Sequence[Movie], predicted: Movie | None, n: int = DEFAULT_SUGGESTIONS) -> str:
    """The natural-language prompt of the method. `recent` is oldest first; only the last 5 are used."""
    lines = _context_lines(recent, predicted)
    lines.append(f"Recommend {n} other movies they would enjoy next, one per line, as Title (Year) | Genres.")
    lines.append("Recommendations:")
    return "\n".join(lines) + "\n"


def prior_prompt(n: int = DEFAULT_SUGGESTIONS) -> str:
    """The title prompt with no history and no prediction: what a title scores before any taste is known.

    Subtracting a title's likelihood here from its likelihood after a user's prompt removes what the model
    favours for every user (short, popular titles) and keeps what the user's history adds. Measured by the
    harness row `llm-rank-pmi` (it did not help, docs/results.md), so the app does not use it.
    """
    return build_prompt([], None, n)


# How the title likelihood scores a candidate (fusion.json's "llm_scoring"; "letters" is the lettered list).
TITLE_SCORINGS = ("titles", "title-prefix")


def scored_title(movie: Movie, scoring: str = "titles") -> str:
    """The text whose likelihood after the title prompt is a candidate's LLM score.

    "titles": the whole label, `Title (Year)`. "title-prefix": the title and the mark that ends it,
    `Title (` (` |` when the year is unknown, as `movie_line` writes it): the probability that the answer
    starts with this title, whatever year follows. The 4 year digits and ")" are not decoded, which is
    about 60% of the candidates' decoding time; the closing mark keeps "Toy Story" from also counting
    "Toy Story 2". The two are different scores: each has its own weights chosen on validation."""
    if scoring == "titles":
        return movie.label
    if scoring == "title-prefix":
        return f"{movie.title} (" if movie.year else f"{movie.title} |"
    raise ValueError(f"title scoring must be one of {', '.join(TITLE_SCORINGS)}, not {scoring!r}")


def candidate_line(letter: str, movie: Movie) -> str:
    """One candidate as the prompt lists it and the answer names it: `C. Title (Year)`.

    No genres here (they are in the catalog, and the history lines carry the user's taste): 20 candidates
    with genres made a 520-token prompt, which a laptop CPU cannot fine-tune on in useful time; without,
    it is about 330 tokens, and every recommendation's one forward pass is that much cheaper too."""
    return f"{letter}. {movie.label}"


def candidate_lines(candidates: Sequence[Movie]) -> list[str]:
    """The candidates as lettered lines, in the order given (A for the first)."""
    if len(candidates) > len(CANDIDATE_LETTERS):
        raise ValueError(f"at most {len(CANDIDATE_LETTERS)} candidates, got {len(candidates)}")
    return [candidate_line(letter, movie) for letter, movie in zip(CANDIDATE_LETTERS, candidates, strict=False)]


def build_candidate_prompt(recent: Sequence[Movie], predicted: Movie | None, candidates: Sequence[Movie]) -> str:
    """The candidate-grounded prompt: DUALRec's content plus the candidates, lettered in the given order.

    The caller shuffles `candidates` (a seeded, history-dependent order), so a letter's position never
    tells the model the LSTM's rank."""
    lettered = candidate_lines(candidates)
    lines = _context_lines(recent, predicted)
    lines.append("Candidates:")
    lines += lettered
    lines.append("Which candidates will they watch next? Answer with candidate lines, best first.")
    lines.append("Answer:")
    return "\n".join(lines) + "\n"


def format_candidate_answer(lines: Sequence[str]) -> str:
    """The training target for a candidate prompt: the chosen candidate line(s), then the end marker."""
    return "".join(f"{line}\n" for line in lines) + END_OF_ANSWER + "\n"


def format_answer(movies: Sequence[Movie]) -> str:
    """The training target for a prompt: the movies the user really watched next, then the end marker."""
    return "".join(f"{movie_line(m)}\n" for m in movies) + END_OF_ANSWER + "\n"


def answer_grammar(n: int = DEFAULT_SUGGESTIONS) -> str:
    """A GBNF grammar that forces 1..n lines of `Title (Year) | Genres`, then the end marker."""
    return "\n".join(
        [
            f'root ::= movie{{1,{max(1, n)}}} "{END_OF_ANSWER}"',
            'movie ::= title " (" year ") | " genres "\\n"',
            "title ::= [^\\n(|<] [^\\n(|]{0,80}",
            "year ::= [12] [0-9] [0-9] [0-9]",
            "genres ::= [A-Za-z' -]{1,20} (\", \" [A-Za-z' -]{1,20}){0,5}",
        ]
    )


@dataclass(frozen=True)
class Suggestion:
    """One parsed line of an LLM answer (not yet resolved to a catalog movie)."""

    title: str
    year: int | None
    genres: tuple[str, ...]
    raw: str


@dataclass
class ParsedAnswer:
    suggestions: list[Suggestion]
    unparsed_lines: int  # non-empty lines that were not a movie


_LINE = re.compile(
    r"""^\s*(?:[-*\u2022]|\d{1,2}[.)])?\s*      # optional bullet or number
        (?P<title>[^|\n]*?[^\s|])\s*              # title (may contain its own brackets)
        (?:\((?P<year>\d{4})\))?\s*               # optional (Year)
        (?:\|\s*(?P<genres>[^\n]*))?\s*$          # optional | Genres
    """,
    re.VERBOSE,
)


def parse_answer(text: str, limit: int | None = None) -> ParsedAnswer:
    """Read an LLM answer back into suggestions. Never raises: bad lines are counted instead."""
    suggestions: list[Suggestion] = []
    unparsed = 0
    for raw_line in text.split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith(END_OF_ANSWER):
            break
        line = line.replace(END_OF_ANSWER, "")
        match = _LINE.match(line)
        title = match.group("title").strip().strip("\"'") if match else ""
        if not match or not re.search(r"[^\W_]", title) or len(title) > 150:
            unparsed += 1
            continue
        year = int(match.group("year")) if match.group("year") else None
        if year is None:  # "Title (1999) extra" or a year inside the title group
            inner = re.search(r"\((\d{4})\)\s*$", title)
            if inner:
                year = int(inner.group(1))
                title = title[: inner.start()].strip()
        genres = tuple(g.strip() for g in (match.group("genres") or "").split(",") if g.strip())
        suggestions.append(Suggestion(title=title, year=year, genres=genres, raw=raw_line))
        if limit is not None and len(suggestions) >= limit:
            break
    return ParsedAnswer(suggestions, unparsed)
