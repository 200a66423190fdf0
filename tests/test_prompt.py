"""The answer parser and title resolver against garbage, truncated, repeated and adversarial LLM output."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualrec_tui.core.catalog import build_catalog
from dualrec_tui.core.prompt import (
    END_OF_ANSWER,
    answer_grammar,
    build_prompt,
    format_answer,
    movie_line,
    parse_answer,
    scored_title,
)

CATALOG = build_catalog(
    [
        (1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
        (2, "Toy Story 2 (1999)", ["Animation", "Children's", "Comedy"]),
        (3, "Matrix, The (1999)", ["Action", "Sci-Fi", "Thriller"]),
        (4, "Heat (1995)", ["Action", "Crime", "Thriller"]),
        (5, "City of Lost Children, The (Cité des enfants perdus, La) (1995)", ["Adventure", "Sci-Fi"]),
    ]
)

line_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=300, deadline=None)
@given(st.lists(line_text, max_size=12), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_parse_answer_never_raises_and_every_suggestion_has_a_title(lines: list[str], sep: str) -> None:
    parsed = parse_answer(sep.join(lines))
    assert parsed.unparsed_lines >= 0
    for suggestion in parsed.suggestions:
        assert suggestion.title.strip()
        assert re.search(r"[^\W_]", suggestion.title)
        assert "\n" not in suggestion.title
        assert suggestion.year is None or 1000 <= suggestion.year <= 9999
        assert all(g and g == g.strip() for g in suggestion.genres)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(CATALOG.movies), min_size=1, max_size=5))
def test_format_then_parse_round_trips_catalog_movies(movies) -> None:
    parsed = parse_answer(format_answer(movies))
    assert parsed.unparsed_lines == 0
    assert [(s.title, s.year, s.genres) for s in parsed.suggestions] == [(m.title, m.year, m.genres) for m in movies]
    resolved = [CATALOG.resolve(s.title, year=s.year).movie for s in parsed.suggestions]
    assert resolved == list(movies)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(CATALOG.movies), min_size=1, max_size=5), st.integers(1, 4))
def test_limit_and_truncation(movies, limit: int) -> None:
    text = format_answer(movies)
    assert len(parse_answer(text, limit=limit).suggestions) == min(limit, len(movies))
    truncated = text[: len(text) // 2]  # max_tokens cut a line in half
    parsed = parse_answer(truncated)
    assert len(parsed.suggestions) <= len(movies)


def test_adversarial_lines_are_counted_not_raised() -> None:
    text = "\n".join(
        [
            "1. The Matrix (1999) | Action, Sci-Fi",  # numbered
            "- Heat (1995)",  # bullet, no genres
            "|||||",  # separators only
            "()",  # brackets only
            "Sure! Here are some movies you might like:",  # chatter: parses as a title, resolves to nothing
            "Toy Story (1995) | Animation <end> Toy Story 2 (1999)",  # marker mid-line
            "x" * 400,  # absurdly long
            END_OF_ANSWER,
            "Heat (1995) | Action",  # after the end marker: ignored
        ]
    )
    parsed = parse_answer(text)
    titles = [s.title for s in parsed.suggestions]
    assert titles[:2] == ["The Matrix", "Heat"]
    assert "Heat" not in titles[2:]  # nothing after the end marker
    assert parsed.unparsed_lines >= 3
    resolved = [CATALOG.resolve(s.title, year=s.year).movie for s in parsed.suggestions]
    assert resolved[0] is CATALOG[2] and resolved[1] is CATALOG[3]
    assert CATALOG.resolve("Sure! Here are some movies you might like:").movie is None


def test_resolver_never_confuses_sequels_and_handles_articles() -> None:
    assert CATALOG.resolve("Toy Story 2", year=1999).movie is CATALOG[1]
    assert CATALOG.resolve("Toy Story 3", year=2010).movie is None
    assert CATALOG.resolve("Matrix, The", year=1999).movie is CATALOG[2]
    assert CATALOG.resolve("the matrix").movie is CATALOG[2]
    assert CATALOG.resolve("Cité des enfants perdus, La (1995)").movie is CATALOG[4]


def test_a_title_prefix_is_how_the_answer_line_starts_and_ends_the_title() -> None:
    """ "Title (" is the start of the answer line the model was tuned to write, and ends the title, so "Toy
    Story" is not also counting "Toy Story 2"; a movie without a year ends its title with " |"."""
    no_year = build_catalog([(99, "Untitled Project", ["Drama"])])[0]
    for movie in (*CATALOG.movies, no_year):
        assert movie_line(movie).startswith(scored_title(movie, "title-prefix"))
        assert scored_title(movie, "titles") == movie.label
    assert scored_title(CATALOG[0], "title-prefix") == "Toy Story ("
    assert scored_title(no_year, "title-prefix") == "Untitled Project |"
    with pytest.raises(ValueError, match="title scoring"):
        scored_title(CATALOG[0], "letters")


def test_prompt_uses_last_five_and_the_prediction() -> None:
    history = [*CATALOG.movies, CATALOG[0]]
    prompt = build_prompt(history, CATALOG[1], n=4)
    assert prompt.count("\n- ") == 5
    assert "Heat (1995)" in prompt and "predicts they will watch next: Toy Story 2 (1999)" in prompt
    assert "Recommend 4 other movies" in prompt
    assert "root ::= movie{1,4}" in answer_grammar(4)
