"""Catalog-constrained titles for stage 2's written answer.

`catalog_answer_grammar` restricts titles to catalog labels (a radix tree written as GBNF, cached on
disk: 2 s to build at 87k movies), so evaluation can measure whether constraining titles helps, and
`TitleGuard` keeps titles the user has watched (or already got) out of a greedy answer.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .artifacts import cache_dir, hash_code, write_atomically
from .catalog import Catalog, paused_gc
from .prompt import END_OF_ANSWER, answer_grammar


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def _radix_rules(labels: Iterable[str], prefix: str = "t") -> tuple[str, list[str]]:
    """A GBNF expression matching exactly the given strings, as a radix tree (shared prefixes once).

    A plain alternation of thousands of titles makes llama.cpp track thousands of grammar stacks per
    token; the tree keeps it to the distinct next characters at each point.
    """
    trie: dict[str, Any] = {}
    for label in labels:
        if not label:
            continue
        node = trie
        for ch in label:
            node = node.setdefault(ch, {})
        node[""] = {}  # end-of-string marker
    rules: list[str] = []
    counter = [0]

    def expression(node: dict[str, Any]) -> str:
        """GBNF for the set of suffixes stored below `node`."""
        alternatives = []
        optional = "" in node
        for ch in sorted(k for k in node if k):
            text, child = ch, node[ch]
            while len(child) == 1 and "" not in child:  # compress a chain into one literal
                ((next_ch, next_child),) = child.items()
                text, child = text + next_ch, next_child
            if set(child) == {""}:
                alternatives.append(_gbnf_literal(text))
            else:
                counter[0] += 1
                name = f"{prefix}{counter[0]}"
                rules.append(f"{name} ::= {expression(child)}")
                alternatives.append(f"{_gbnf_literal(text)} {name}")
        body = " | ".join(alternatives)
        if optional:
            return f"({body})?"
        return body

    return expression(trie), rules


def _catalog_grammar(labels: tuple[str, ...], genres: tuple[str, ...], n: int) -> str:
    root_expression, rules = _radix_rules(labels)
    genre_choice = " | ".join(_gbnf_literal(g) for g in genres)
    head = [
        f'root ::= movie{{1,{max(1, n)}}} "{END_OF_ANSWER}"',
        'movie ::= title " | " genres "\\n"',
        f"title ::= {root_expression}",
        f"genre ::= {genre_choice}",
        'genres ::= genre (", " genre){0,5}',
    ]
    return "\n".join(head + rules)


def catalog_answer_grammar(catalog: Catalog, n: int) -> str:
    """Like `prompt.answer_grammar(n)`, but every title must be a catalog label and genres the vocabulary.

    Built once per catalog and process (the app asks for it on every recommendation). A big catalog's
    grammar (87k movies: ~2 s to build, 2.3 MB) is also kept in `cache_dir()`, so only the first run
    on a machine pays for it; the file name hashes everything the text depends on, code included.
    """
    key = (catalog.fingerprint, n)
    grammar = _GRAMMARS.get(key)
    if grammar is None:
        disk = _grammar_cache_path(catalog, n) if len(catalog) >= GRAMMAR_DISK_CACHE_MIN else None
        grammar = _read_grammar(disk) if disk is not None else None
        if grammar is None:
            genres = tuple([*catalog.genre_vocabulary, "Unknown"])
            with paused_gc():  # the radix tree is ~2.5M small dicts
                grammar = _catalog_grammar(_catalog_labels(catalog), genres, n)
            if disk is not None:
                _write_grammar(disk, grammar)
        _GRAMMARS[key] = grammar
    return grammar


_GRAMMARS: dict[tuple[str, int], str] = {}
GRAMMAR_DISK_CACHE_MIN = 20_000  # movies; smaller catalogs build in well under a second


def _grammar_cache_path(catalog: Catalog, n: int) -> Path | None:
    """Where this catalog's grammar is cached: keyed by catalog, n, and the code that writes grammars."""
    digest = hashlib.sha256(f"{catalog.fingerprint}|{n}|{END_OF_ANSWER}|".encode())
    for function in (_catalog_grammar, _radix_rules, _gbnf_literal):
        hash_code(digest, function.__code__)  # a changed grammar writer never reads an old file
    try:
        return cache_dir() / "grammars" / f"catalog-{digest.hexdigest()[:24]}.gbnf"
    except OSError:
        return None


def _read_grammar(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.startswith("root ::= ") else None


def _write_grammar(path: Path, grammar: str) -> None:
    write_atomically(path, lambda partial: partial.write_text(grammar, encoding="utf-8"))


def _catalog_labels(catalog: Catalog) -> tuple[str, ...]:
    """The titles the catalog grammar allows, sorted and unique (once per catalog fingerprint)."""
    labels = _LABELS.get(catalog.fingerprint)
    if labels is None:
        labels = _LABELS[catalog.fingerprint] = tuple(
            sorted({movie.label for movie in catalog.movies if "\n" not in movie.label})
        )
    return labels


_LABELS: dict[str, tuple[str, ...]] = {}
_LABEL_BYTES: dict[str, tuple[tuple[bytes, ...], frozenset[bytes]]] = {}


def _label_bytes(catalog: Catalog) -> tuple[tuple[bytes, ...], frozenset[bytes]]:
    """The catalog labels as sorted UTF-8 bytes, computed once per catalog fingerprint."""
    cached = _LABEL_BYTES.get(catalog.fingerprint)
    if cached is None:
        encoded = tuple(sorted(label.encode("utf-8") for label in _catalog_labels(catalog)))
        cached = _LABEL_BYTES[catalog.fingerprint] = (encoded, frozenset(encoded))
    return cached


def _count_prefixed(sorted_items: Sequence[bytes], prefix: bytes) -> int:
    """How many of `sorted_items` start with `prefix` (UTF-8 byte order is code point order)."""
    return bisect_left(sorted_items, prefix + b"\xff") - bisect_left(sorted_items, prefix)


class TitleGuard:
    """Keeps catalog-constrained decoding off titles the user has watched or the answer already named.

    The catalog grammar makes every title a catalog label but happily repeats one (42% of titles on
    20 ml-latest-small users) or names a watched movie. Checking, per token, that the title text so far
    can still end as an allowed label (a prefix count in two sorted lists) removes both at no measurable
    cost, so every suggestion is usable. Only the user's own history is excluded: never held-out data.
    """

    def __init__(self, labels: Sequence[bytes], label_set: frozenset[bytes], excluded: Iterable[str | bytes]) -> None:
        self._labels = labels
        self._label_set = label_set
        self._excluded: list[bytes] = []
        self._excluded_set: set[bytes] = set()
        self._end = END_OF_ANSWER.encode("utf-8")
        for title in excluded:
            self.exclude(title)

    @classmethod
    def for_catalog(cls, catalog: Catalog, excluded_indices: Iterable[int]) -> TitleGuard:
        labels, label_set = _label_bytes(catalog)
        return cls(labels, label_set, (catalog[i].label for i in excluded_indices))

    @property
    def excluded(self) -> frozenset[bytes]:
        return frozenset(self._excluded_set)

    def exclude(self, title: str | bytes) -> None:
        key = title.encode("utf-8") if isinstance(title, str) else title
        if key in self._label_set and key not in self._excluded_set:
            self._excluded_set.add(key)
            insort(self._excluded, key)

    def allows(self, line: bytes) -> bool:
        """May the answer line read `line` so far? (title, then " | genres"; or the end marker)."""
        if self._end.startswith(line) or line.startswith(self._end):
            return True
        cut = line.find(b" |")
        if cut >= 0:  # the title is finished
            return line[:cut] not in self._excluded_set
        if _count_prefixed(self._labels, line) > _count_prefixed(self._excluded, line):
            return True
        # "Title (1999) " may be a finished label followed by the start of " | "
        return line.endswith(b" ") and line[:-1] in self._label_set and line[:-1] not in self._excluded_set


def answer_grammar_for(catalog: Catalog | None, n: int, constrain_titles: bool) -> str:
    """The grammar the pipeline uses: free titles (default) or catalog titles only."""
    if constrain_titles and catalog is not None:
        return catalog_answer_grammar(catalog, n)
    return answer_grammar(n)
