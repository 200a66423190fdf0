"""First-order Markov transitions: how often movie j was watched right after movie i, smoothed toward popularity.

    p(j | last = i) = (count(i, j) + k * prior(j)) / (row_total(i) + k)        (prior sums to 1, so rows do too)

The `markov` baseline of the harness and the fourth signal of the shipped fusion (core/fusion.py: w_markov x
log p(candidate | last movie)) are this one class: fitted on training sequences only
(training/baselines.py), k chosen on validation, saved as safetensors (no pickle) with the catalog's
fingerprint, and checked before use. Counts are stored sparse (CSR: one row per previous movie), so a
catalog of 87k movies costs megabytes, not a dense 87k x 87k matrix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifacts import rebuild_command
from .errors import ModelMissingError, ModelUnavailableError
from .model_files import expected_digest, file_sha256

TRANSITIONS_FILE = "transitions.safetensors"
FORMAT_VERSION = 2  # 2: the metadata is one sorted JSON string, so a rebuild is byte-identical
METADATA_KEY = "dualrec"
TINY = 1e-12  # log(0) guard, as the harness's `lstm+markov` row uses
PRIOR_FLOOR = 1e-3  # added to every popularity count: a movie nobody rated still has a (tiny) prior


@dataclass(frozen=True)
class MarkovTransitions:
    """Sparse transition counts with their smoothing; `probs` / `candidate_log_probs` are the model."""

    indptr: np.ndarray  # (N + 1,) int64: row i's entries are columns[indptr[i]:indptr[i + 1]]
    columns: np.ndarray  # (E,) int32 next movie of each observed transition, sorted within a row
    counts: np.ndarray  # (E,) float32 how often it was observed
    row_totals: np.ndarray  # (N,) float32 transitions out of each movie
    prior: np.ndarray  # (N,) float64 popularity distribution the smoothing backs off to
    smoothing: float  # k
    catalog_fingerprint: str = ""

    @classmethod
    def fit(
        cls,
        sequences: Iterable[Sequence[int]],
        popularity: np.ndarray,
        smoothing: float = 1.0,
        catalog_fingerprint: str = "",
    ) -> MarkovTransitions:
        """Count consecutive pairs in `sequences` (catalog indices, oldest first)."""
        popularity = np.asarray(popularity, dtype=np.float64)
        n = popularity.shape[0]
        sources, targets = [], []
        for seq in sequences:
            if len(seq) > 1:
                seq = np.asarray(seq, dtype=np.int64)
                sources.append(seq[:-1])
                targets.append(seq[1:])
        src = np.concatenate(sources) if sources else np.zeros(0, dtype=np.int64)
        dst = np.concatenate(targets) if targets else np.zeros(0, dtype=np.int64)
        pairs, counts = np.unique(src * n + dst, return_counts=True)  # sorted by (source, target)
        prior = (popularity + PRIOR_FLOOR) / (popularity + PRIOR_FLOOR).sum()
        return cls(
            indptr=np.searchsorted(pairs // n, np.arange(n + 1)).astype(np.int64),
            columns=(pairs % n).astype(np.int32),
            counts=counts.astype(np.float32),
            row_totals=np.bincount(src, minlength=n).astype(np.float32),
            prior=prior,
            smoothing=float(smoothing),
            catalog_fingerprint=catalog_fingerprint,
        )

    def with_smoothing(self, smoothing: float) -> MarkovTransitions:
        return MarkovTransitions(
            self.indptr, self.columns, self.counts, self.row_totals, self.prior, float(smoothing),
            self.catalog_fingerprint,
        )  # fmt: skip

    def probs(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """(B, N) p(next | each history's last movie); an empty history gets the prior."""
        k = self.smoothing
        out = np.tile(self.prior, (len(histories), 1))
        for row, history in enumerate(histories):
            if not len(history):
                continue
            last = int(history[-1])
            lo, hi = self.indptr[last], self.indptr[last + 1]
            out[row] *= k
            out[row, self.columns[lo:hi]] += self.counts[lo:hi]
            out[row] /= float(self.row_totals[last]) + k
        return out

    def counts_after(self, last: int, movies: Sequence[int]) -> np.ndarray:
        """(K,) how many times each movie came right after `last` in the sequences counted (0: never)."""
        movies = np.asarray(movies, dtype=np.int64)
        lo, hi = int(self.indptr[int(last)]), int(self.indptr[int(last) + 1])
        row = self.columns[lo:hi]  # sorted (checked on load)
        out = np.zeros(movies.shape[0], dtype=np.float64)
        if row.size:
            at = np.minimum(np.searchsorted(row, movies), row.size - 1)
            found = row[at] == movies
            out[found] = self.counts[lo + at[found]]
        return out

    def candidate_log_probs(self, history: Sequence[int], candidates: Sequence[int]) -> np.ndarray:
        """(K,) log p(candidate | the history's last movie), without building the whole row."""
        candidates = np.asarray(candidates, dtype=np.int64)
        values = self.prior[candidates].copy()
        if len(history):
            last = int(history[-1])
            observed = self.counts_after(last, candidates)
            values = (observed + self.smoothing * values) / (float(self.row_totals[last]) + self.smoothing)
        return np.log(values + TINY)

    def save(self, directory: Path) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / TRANSITIONS_FILE
        tensors = {
            "indptr": self.indptr,
            "columns": self.columns,
            "counts": self.counts,
            "row_totals": self.row_totals,
            "prior": self.prior,
        }
        save_file(tensors, str(path), metadata=file_metadata(self.smoothing, self.catalog_fingerprint))
        return path

    @classmethod
    def load(
        cls, directory: Path, n_items: int, catalog_fingerprint: str, rebuild: str | None = None
    ) -> MarkovTransitions:
        """Read `directory/transitions.safetensors` for a catalog, every array checked before it is used."""
        from safetensors import SafetensorError, safe_open

        directory = Path(directory)
        path = directory / TRANSITIONS_FILE
        what = f"Markov transitions in {directory}"
        rebuild = rebuild or rebuild_command("markov", directory.parent)
        if not path.is_file():
            raise ModelMissingError(what, f"{TRANSITIONS_FILE} is missing", rebuild)
        sha, size = expected_digest(path, what)  # the manifest vouches for the file: check before parsing it
        if size is not None and path.stat().st_size != size:
            raise ModelUnavailableError(what, f"{TRANSITIONS_FILE} is {path.stat().st_size} bytes, not {size}", rebuild)
        if sha is not None and file_sha256(path) != sha:
            raise ModelUnavailableError(what, f"{TRANSITIONS_FILE} does not match its manifest's sha256", rebuild)
        try:
            with safe_open(str(path), framework="numpy") as handle:
                metadata = _read_metadata(handle.metadata() or {})
                slices = {name: handle.get_slice(name) for name in handle.keys()}  # noqa: SIM118
                layout = {name: (part.get_dtype(), tuple(part.get_shape())) for name, part in slices.items()}
                problems = _layout_problems(layout, n_items)  # types and shapes, before any data is read
                arrays = {} if problems else {name: handle.get_tensor(name) for name in layout}
        except (OSError, SafetensorError, ValueError) as exc:
            raise ModelUnavailableError(what, f"broken file {TRANSITIONS_FILE}: {exc}", rebuild) from exc
        if problems:
            raise ModelUnavailableError(what, f"broken file {TRANSITIONS_FILE}: {'; '.join(problems)}", rebuild)
        if metadata.get("format_version") != FORMAT_VERSION:
            version = metadata.get("format_version")
            raise ModelUnavailableError(what, f"format version {version} is not supported", rebuild)
        if metadata.get("catalog_fingerprint") != catalog_fingerprint:
            raise ModelUnavailableError(
                what,
                f"it was counted for another catalog (fingerprint {metadata.get('catalog_fingerprint')}; "
                f"this catalog is {catalog_fingerprint})",
                rebuild,
            )
        smoothing = metadata.get("smoothing")
        smoothing = float(smoothing) if isinstance(smoothing, (int, float)) else float("nan")
        problems = _problems(arrays, n_items, smoothing)
        if problems:
            raise ModelUnavailableError(what, f"broken file {TRANSITIONS_FILE}: {'; '.join(problems)}", rebuild)
        return cls(
            indptr=arrays["indptr"].astype(np.int64),
            columns=arrays["columns"].astype(np.int32),
            counts=arrays["counts"].astype(np.float32),
            row_totals=arrays["row_totals"].astype(np.float32),
            prior=arrays["prior"].astype(np.float64),
            smoothing=smoothing,
            catalog_fingerprint=catalog_fingerprint,
        )


def file_metadata(smoothing: float, catalog_fingerprint: str) -> dict[str, str]:
    """The file's metadata as one JSON string: safetensors stores a map whose key order varies per run."""
    values = {"catalog_fingerprint": catalog_fingerprint, "format_version": FORMAT_VERSION, "smoothing": smoothing}
    return {METADATA_KEY: json.dumps(values, sort_keys=True)}


def _read_metadata(raw: dict[str, str]) -> dict:
    try:
        values = json.loads(raw.get(METADATA_KEY, "{}"))
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


ARRAY_TYPES = {  # name -> (allowed safetensors dtypes, shape given the catalog size n; None = any length)
    "indptr": (("I64",), lambda n: (n + 1,)),
    "columns": (("I32", "I64"), lambda n: None),
    "counts": (("F32", "F64"), lambda n: None),
    "row_totals": (("F32", "F64"), lambda n: (n,)),
    "prior": (("F64", "F32"), lambda n: (n,)),
}


def _layout_problems(layout: dict[str, tuple[str, tuple[int, ...]]], n: int) -> list[str]:
    """Names, types and shapes, read from the header alone: a wrong file is refused before its data is."""
    problems = [f"unexpected tensor {name!r}" for name in layout if name not in ARRAY_TYPES]
    for name, (dtypes, shape_for) in ARRAY_TYPES.items():
        if name not in layout:
            problems.append(f"{name} is missing")
            continue
        dtype, shape = layout[name]
        expected = shape_for(n)
        if dtype not in dtypes:
            problems.append(f"{name} is {dtype}, expected {' or '.join(dtypes)}")
        if (expected is not None and shape != expected) or len(shape) != 1:
            problems.append(f"{name}: shape {shape}, expected {expected or '(entries,)'}")
    if not problems and layout["columns"][1] != layout["counts"][1]:
        problems.append(f"columns {layout['columns'][1]} and counts {layout['counts'][1]} differ")
    return problems


def _problems(arrays: dict[str, np.ndarray], n: int, smoothing: float) -> list[str]:
    """What makes these arrays unsafe or wrong to index with (empty when they are fine)."""
    indptr, columns, counts = arrays["indptr"], arrays["columns"], arrays["counts"]
    problems = []
    if indptr[0] != 0 or indptr[-1] != columns.shape[0] or np.any(np.diff(indptr) < 0):
        problems.append("indptr does not index the entries in order")
    if columns.size and (columns.min() < 0 or columns.max() >= n):
        problems.append(f"a column is outside the catalog's {n} movies")
    if problems:
        return problems
    same_row = np.repeat(np.arange(n), np.diff(indptr))  # (E,) the row of each entry
    if np.any((np.diff(columns) <= 0) & (same_row[1:] == same_row[:-1])):
        problems.append("columns are not sorted and unique within a row")
    for name in ("counts", "row_totals", "prior"):
        values = arrays[name]
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            problems.append(f"{name} holds negative or non-finite values")
    if problems:
        return problems
    row_sums = np.add.reduceat(np.append(counts.astype(np.float64), 0.0), indptr[:-1]) * (np.diff(indptr) > 0)
    if not np.allclose(row_sums, arrays["row_totals"], rtol=1e-6, atol=1e-3):
        problems.append("row_totals are not the sums of their rows' counts")
    prior = arrays["prior"]
    if np.any(prior <= 0) or not np.isclose(prior.sum(), 1.0, rtol=1e-4):
        problems.append("prior is not a positive distribution")
    if not (np.isfinite(smoothing) and smoothing > 0):
        problems.append(f"smoothing must be a positive number, not {smoothing}")
    return problems
