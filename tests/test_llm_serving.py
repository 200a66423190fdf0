"""LlamaGenerator on a real (tiny, random) GGUF: grammar-constrained output always parses, streaming, the lock,
silence on stderr, and clear errors for missing or corrupt model files."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from dualrec_tui.core.errors import ModelUnavailableError
from dualrec_tui.core.llm import LlamaGenerator
from dualrec_tui.core.llm_files import check_gguf
from dualrec_tui.core.prompt import answer_grammar, build_prompt, parse_answer
from dualrec_tui.core.title_grammar import TitleGuard, catalog_answer_grammar
from tests.tiny_llm import converter_or_skip, toy_catalog

ROOT = Path(__file__).resolve().parents[1]


def test_missing_gguf_names_the_rebuild_command(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        LlamaGenerator(tmp_path / "models" / "llm" / "model.gguf")
    message = str(info.value)
    assert "no GGUF model at" in message and "python -m training export" in message


def test_corrupt_gguf_is_refused_before_llama_cpp(tmp_path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>not a model</html>")
    with pytest.raises(ModelUnavailableError, match="not a GGUF file"):
        check_gguf(bad, "python -m training export")


def _title_regex(grammar: str) -> re.Pattern:
    """The `title` rule of a catalog grammar as a Python regex (it uses only literals, names, | and (...)?)."""
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())
    token = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z0-9-]+)|(\|)|(\()|(\)\?)|\s+')

    def convert(body: str) -> str:
        out = []
        for literal, name, bar, opening, closing in token.findall(body):
            if literal:
                out.append(re.escape(literal.encode().decode("unicode_escape") if "\\" in literal else literal))
            elif name:
                out.append(f"(?:{convert(rules[name])})")
            elif bar or opening or closing:
                out.append(bar or ("(?:" if opening else ")?"))
        return "".join(out)

    return re.compile(convert(rules["title"]))


def test_catalog_grammar_matches_exactly_the_catalog_labels() -> None:
    catalog = toy_catalog()
    grammar = catalog_answer_grammar(catalog, 3)
    assert grammar.startswith("root ::= movie{1,3}")
    title = _title_regex(grammar)
    for movie in catalog:
        assert title.fullmatch(movie.label), movie.label
    for wrong in ["Toy Story", "Toy Story 3 (2010)", "Toy Story (1995) ", "Heat (1996)", "The Matrix (1999)x"]:
        assert not title.fullmatch(wrong), wrong
    assert grammar.count("oy Story") == 1  # the shared prefix of Toy Story / Toy Story 2 is written once
    assert '"Drama"' in grammar and '"Unknown"' in grammar


def test_title_guard_allows_only_titles_that_can_still_end_unexcluded() -> None:
    catalog = toy_catalog()
    toy2 = next(m for m in catalog if m.label.startswith("Toy Story 2"))
    toy1 = next(m for m in catalog if m.label.startswith("Toy Story ("))
    guard = TitleGuard.for_catalog(catalog, [toy1.index])
    assert guard.excluded == {toy1.label.encode()}
    assert guard.allows(b"Toy Story")  # Toy Story 2 can still follow
    assert guard.allows(toy2.label.encode() + b" | Anim")
    assert not guard.allows(toy1.label.encode() + b" |")  # the finished title is excluded
    assert not guard.allows(toy1.label.encode()[:-1] + b")")  # ...and it is the only way to go on from here
    assert guard.allows(b"") and guard.allows(b"<en") and guard.allows(b"<end>")  # the end marker
    guard.exclude(toy2.label)  # named once: never again
    assert not guard.allows(b"Toy Story")
    guard.exclude("Not In The Catalog (2001)")  # unknown titles are ignored, not an error
    assert len(guard.excluded) == 2


def test_title_guard_works_on_bytes_cut_inside_a_character() -> None:
    from dualrec_tui.core.catalog import build_catalog

    rows = [("Amélie (2001)", ["Comedy", "Romance"]), ("Amadeus (1984)", ["Drama"])]
    catalog = build_catalog([(i + 1, title, genres) for i, (title, genres) in enumerate(rows)], name="accents")
    amelie = next(m for m in catalog if m.label.startswith("Amélie"))
    guard = TitleGuard.for_catalog(catalog, [])
    half = "Amé".encode()[:-1]  # a token may end inside "é"
    assert guard.allows(half)
    guard.exclude(amelie.label)
    assert not guard.allows(half) and guard.allows(b"Ama")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    converter_or_skip()
    from tests.tiny_llm import build_tiny_gguf

    return build_tiny_gguf(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="module")
def generator(tiny_gguf) -> LlamaGenerator:
    gen = LlamaGenerator(tiny_gguf, n_ctx=512, n_threads=1)
    yield gen
    gen.close()


def _prompt() -> str:
    catalog = toy_catalog()
    return build_prompt(catalog.movies[:5], catalog[5], 3)


@pytest.mark.llama
def test_grammar_forces_parseable_answers_from_a_random_model(generator) -> None:
    """Every complete line is `Title (Year) | Genres`; a finished answer parses with no leftovers."""
    grammar = answer_grammar(2)
    for seed in range(3):
        pieces: list[str] = []
        text = generator.generate(
            _prompt(), max_tokens=160, grammar=grammar, temperature=1.0, seed=seed, on_token=pieces.append
        )
        assert "".join(pieces) == text
        complete = text.split("\n")[:-1]  # the last piece may be cut by max_tokens
        finished = generator.last.finish_reason == "stop"
        assert generator.last.finish_reason in ("stop", "length")
        assert len(complete) <= 2 and (len(complete) >= 1 or not finished), text
        for line in complete:
            parsed = parse_answer(line)
            assert parsed.unparsed_lines == 0 and len(parsed.suggestions) == 1, line
            suggestion = parsed.suggestions[0]
            assert suggestion.year is not None and suggestion.genres, line
        if finished:  # stopped at the end marker
            assert text.endswith("\n") and parse_answer(text).unparsed_lines == 0, text


@pytest.mark.llama
def test_catalog_grammar_only_names_catalog_movies(generator) -> None:
    catalog = toy_catalog()
    for seed in range(3):
        text = generator.generate(
            _prompt(), max_tokens=200, grammar=catalog_answer_grammar(catalog, 3), temperature=1.0, seed=seed
        )
        parsed = parse_answer(text)
        assert parsed.suggestions, text
        for suggestion in parsed.suggestions:
            resolution = catalog.resolve(suggestion.title, year=suggestion.year)
            assert resolution.method == "exact", (suggestion, text)


@pytest.mark.llama
def test_guarded_greedy_answers_never_repeat_or_name_excluded_titles(generator) -> None:
    """With the guard, greedy catalog decoding names only unexcluded catalog movies, each once."""
    catalog = toy_catalog()
    grammar = catalog_answer_grammar(catalog, 3)
    plain = parse_answer(generator.generate(_prompt(), max_tokens=200, grammar=grammar, temperature=0.0))
    named = [catalog.resolve(s.title, year=s.year).movie.index for s in plain.suggestions]
    assert named, "the random model should name something"
    history = [m.index for m in catalog.movies[:5]] + named[:1]  # exclude what it chose unguarded
    guard = TitleGuard.for_catalog(catalog, history)
    text = generator.generate(_prompt(), max_tokens=200, grammar=grammar, temperature=0.0, guard=guard)
    parsed = parse_answer(text)
    assert parsed.suggestions and parsed.unparsed_lines == 0, text
    indices = [catalog.resolve(s.title, year=s.year).movie.index for s in parsed.suggestions]
    assert len(set(indices)) == len(indices), text
    assert not set(indices) & set(history), text


@pytest.mark.llama
def test_calls_from_two_threads_are_serialised(generator) -> None:
    grammar = answer_grammar(2)
    expected = generator.generate(_prompt(), max_tokens=80, grammar=grammar, temperature=0.0, seed=0)
    results: list[str] = []

    def work() -> None:
        results.append(generator.generate(_prompt(), max_tokens=80, grammar=grammar, temperature=0.0, seed=0))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 3


@pytest.mark.llama
def test_nothing_reaches_stderr(tiny_gguf, tmp_path) -> None:
    """Load, generate, and fail to load a truncated GGUF in a fresh process: stdout/stderr stay empty."""
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(Path(tiny_gguf).read_bytes()[:4096])
    script = textwrap.dedent(
        f"""
        from dualrec_tui.core.errors import ModelUnavailableError
        from dualrec_tui.core.llm import LlamaGenerator
        from dualrec_tui.core.prompt import answer_grammar
        gen = LlamaGenerator({str(tiny_gguf)!r}, n_ctx=256, n_threads=1)
        gen.generate("A movie fan", max_tokens=20, grammar=answer_grammar(1), temperature=0.0, seed=0)
        try:
            LlamaGenerator({str(truncated)!r}, n_ctx=256, n_threads=1)
        except ModelUnavailableError as exc:
            open({str(tmp_path / "error.txt")!r}, "w").write(str(exc))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and out.stdout == ""
    error = (tmp_path / "error.txt").read_text()
    # refused by core/model_files.py before llama.cpp reads it (llama.cpp itself may segfault on such a file)
    assert "damaged or incomplete" in error and "python -m training export" in error


@pytest.mark.llama
def test_fast_greedy_grammar_path_equals_llama_cpp_python(generator) -> None:
    """The grammar-checked-on-the-best-token-first loop gives exactly create_completion's greedy answer."""
    catalog = toy_catalog()
    for grammar in (answer_grammar(3), catalog_answer_grammar(catalog, 2)):
        for prompt in (_prompt(), build_prompt(catalog.movies[7:12], None, 2)):
            llm = generator.llama
            generator.fast_grammar = False
            slow = generator.generate(prompt, max_tokens=120, grammar=grammar, temperature=0.0, seed=0)
            slow_tokens = llm.input_ids[: llm.n_tokens].tolist()  # prompt + every generated token but the last
            generator.fast_grammar = True
            pieces: list[str] = []
            fast = generator.generate(prompt, max_tokens=120, grammar=grammar, temperature=0.0, on_token=pieces.append)
            assert llm.input_ids[: llm.n_tokens].tolist() == slow_tokens
            assert "".join(pieces) == fast
            # the random model emits stray UTF-8 bytes, which the two decoders drop slightly differently
            if fast.isascii() and slow.isascii():
                assert fast == slow
            assert generator.last.finish_reason in ("stop", "length")


def _token_by_token_log_likelihood(generator: LlamaGenerator, prompt: str, text: str) -> float:
    """The reference: evaluate prompt + text one token at a time and sum each token's log-probability."""
    import llama_cpp
    import numpy as np

    llm = generator.llama
    prompt_ids = llm.tokenize(prompt.encode(), special=True)
    ids = llm.tokenize(text.encode(), add_bos=False, special=False)
    total = 0.0
    llm.reset()
    llm.eval(prompt_ids)
    for token in ids:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
        logits = logits.astype(np.float64)
        total += logits[token] - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        llm.eval([token])
    llm.reset()
    return total


@pytest.mark.llama
def test_title_scorer_is_the_log_likelihood_of_each_label_whatever_the_order(generator) -> None:
    """LlamaTitleScorer's batched pass on the cached prompt equals the token-by-token sum, candidate order and
    earlier calls change nothing, generation afterwards is unchanged, and the answer is the most likely candidates."""
    import numpy as np

    from dualrec_tui.core.llm_rank import LlamaTitleScorer

    catalog = toy_catalog()
    prompt = _prompt()
    labels = [m.label for m in catalog.movies[6:12]]
    scorer = LlamaTitleScorer(generator)
    written_lines: list[int] = []
    scores, written = scorer.run(prompt, labels, n_write=2, on_line=written_lines.append)
    reference = np.array([_token_by_token_log_likelihood(generator, prompt, label) for label in labels])
    assert np.allclose(scores, reference, atol=1e-3 * len(labels[0]), rtol=1e-3)
    assert written == written_lines == [int(i) for i in np.argsort(-scores, kind="stable")[:2]]
    again, _ = scorer.run(prompt, labels[::-1], n_write=0)
    assert np.allclose(again[::-1], scores, atol=1e-4)
    greedy = generator.generate(prompt, max_tokens=12, temperature=0.0)
    scorer.run(prompt, labels, n_write=0)
    assert generator.generate(prompt, max_tokens=12, temperature=0.0) == greedy  # the cache is left consistent


@pytest.mark.llama
def test_title_scorer_batched_equals_one_candidate_at_a_time(tiny_gguf, generator) -> None:
    """All candidates in one llama_decode (a sequence each, sharing the prompt's KV entries) score as the
    one-sequence context does, one candidate per decode; groups split by too few sequences agree too."""
    import llama_cpp
    import numpy as np

    from dualrec_tui.core.llm_rank import LlamaTitleScorer

    catalog = toy_catalog()
    prompt = _prompt()
    labels = [m.label for m in catalog.movies] + ["", "Toy"]  # an empty text and a one-token text too
    assert len(generator.llama.tokenize(b"Toy", add_bos=False, special=False)) == 1
    assert llama_cpp.llama_n_seq_max(generator.llama.ctx) > len(labels)
    batched, _ = LlamaTitleScorer(generator).run(prompt, labels, n_write=0)
    assert batched[-2] == -np.inf and np.isfinite(np.delete(batched, -2)).all()
    for n_seq_max in (1, 4):  # one candidate per decode in sequence 0; groups of 3 sequences
        other = LlamaGenerator(tiny_gguf, n_ctx=512, n_threads=1, n_seq_max=n_seq_max)
        try:
            assert llama_cpp.llama_n_seq_max(other.llama.ctx) == n_seq_max
            scores, _ = LlamaTitleScorer(other).run(prompt, labels, n_write=0)
        finally:
            other.close()
        assert np.allclose(scores, batched, atol=1e-3, rtol=0)
