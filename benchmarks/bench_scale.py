"""How each step's cost grows from ml-latest-small to ml-32m: time and peak memory, one table.

    python benchmarks/bench_scale.py --work /tmp/scale                       # all three shapes
    python benchmarks/bench_scale.py --work /tmp/scale --shapes quarter --json out.json

Shapes: `ml-latest-small` (the real release from DUALREC_DATA_DIR when present, else a synthetic one of
its shape), `quarter` (a synthetic quarter of ml-32m: 87,585 movies, 8M ratings) and `ml-32m` (the
full synthetic shape, 32M ratings). Synthetic releases are written by benchmarks/make_movielens.py
into --work on first use. Each shape runs in its own process, one after the other (never two big
ones at once); a thread samples the process's resident memory every 20 ms, and each row reports the
step's wall time and the highest RSS seen during it (the whole process, inputs included).

Steps: load (`load_dataset`), split (sequences + leave-one-out), catalog (`to_json` + `from_json`,
then `from_json` again from the columns disk cache), search (per keystroke, typing 6 titles; whatever
`Catalog.search` is), grammar (catalog title grammar, cold and from the disk cache), LSTM scoring of
one user (`top_k`, untrained weights: speed does not depend on the values), evaluation of 1,000
validation users (batched full ranking), and an LSTM epoch estimated from `--batches` timed training
batches after one warm-up batch (default config; full softmax, checkpointed where needed, and sampled
softmax with 1,000 negatives) times the epoch's batch count. The split row also says how much the
step grew the process (its peak over the RSS before it) against the arrays it keeps. One LLM
recommendation is not run here (`benchmarks/bench_pipeline.py --catalog` measures it at any catalog
size), nor the app's start (`benchmarks/bench_app.py --models`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SHAPES = ("ml-latest-small", "quarter", "ml-32m")


class Sampler:
    """Peak resident memory of this process within a window, sampled from /proc every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._page = os.sysconf("SC_PAGE_SIZE")
        threading.Thread(target=self._run, daemon=True).start()

    def rss(self) -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self._page / 2**20

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)


@contextmanager
def fresh_disk_cache(module: Any, threshold: str) -> Iterator[None]:
    """An empty DUALREC_CACHE_DIR, and `module.<threshold>` at 0 so every catalog size uses the disk
    cache; both are put back afterwards."""
    saved = os.environ.get("DUALREC_CACHE_DIR"), getattr(module, threshold)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DUALREC_CACHE_DIR"] = tmp
        setattr(module, threshold, 0)
        try:
            yield
        finally:
            if saved[0] is None:
                os.environ.pop("DUALREC_CACHE_DIR", None)
            else:
                os.environ["DUALREC_CACHE_DIR"] = saved[0]
            setattr(module, threshold, saved[1])


@contextmanager
def step(rows: list[dict[str, Any]], sampler: Sampler, name: str, **extra: Any) -> Iterator[dict[str, Any]]:
    sampler.peak = sampler.rss()
    row: dict[str, Any] = {"step": name, **extra}
    started = time.perf_counter()
    yield row
    row.setdefault("seconds", time.perf_counter() - started)
    row["peak_rss_mb"] = max(sampler.peak, sampler.rss())
    row["load_average"] = os.getloadavg()[0]  # on a shared machine, wall time says as much about the neighbours
    rows.append(row)
    print(json.dumps(row), file=sys.stderr, flush=True)


def release_path(shape: str, work: Path) -> Path:
    from dualrec_tui.core.artifacts import default_data_dir

    if shape == "ml-latest-small" and (default_data_dir() / "ml-latest-small" / "ratings.csv").is_file():
        return default_data_dir() / "ml-latest-small"
    path = work / f"synthetic-{shape}"
    if not (path / "ratings.csv").is_file():
        from make_movielens import SHAPES as GENERATOR_SHAPES
        from make_movielens import make_release

        make_release(path, GENERATOR_SHAPES[shape], seed=0)
    return path


def run_shape(shape: str, work: Path, batches: int) -> list[dict[str, Any]]:
    """Every step at one shape, in this process."""
    import numpy as np
    import torch
    from scale_models import random_lstm

    from dualrec_tui.core import catalog as catalog_module
    from dualrec_tui.core import catalog_columns as columns_module
    from dualrec_tui.core import title_grammar as grammar_module
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.lstm import LstmRecommender
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out
    from training.fit_lstm import TrainConfig, _train_step_module, lstm_windows, validation_ndcg_hr

    path = release_path(shape, work)
    sampler = Sampler()
    rows: list[dict[str, Any]] = []
    with step(rows, sampler, "load") as row:
        dataset = load_dataset(path)
        row["note"] = f"{dataset.n_ratings:,} ratings, {len(dataset.catalog):,} movies"
    catalog = dataset.catalog
    catalog.popularity = np.bincount(dataset.items, minlength=len(catalog)).tolist()
    # A fresh cache: the first from_json parses the JSON (and writes the columns), the second reads them.
    with tempfile.TemporaryDirectory() as tmp, fresh_disk_cache(columns_module, "CATALOG_DISK_CACHE_MIN_BYTES"):
        with step(rows, sampler, "catalog to_json + from_json") as row:
            catalog.to_json(Path(tmp) / "catalog.json")
            started = time.perf_counter()
            catalog = Catalog.from_json(Path(tmp) / "catalog.json")
            row["note"] = f"from_json {time.perf_counter() - started:.2f} s (parse + write the columns cache)"
        with step(rows, sampler, "catalog from_json, columns from disk cache") as row:
            cached = Catalog.from_json(Path(tmp) / "catalog.json")
            row["note"] = "movies made lazily" if cached._columns is not None else "NOT from the cache"
    # A fresh cache (the first build is really cold); every shape's index goes to disk, to time reading it.
    with fresh_disk_cache(catalog_module, "SEARCH_INDEX_DISK_CACHE_MIN"):
        with step(rows, sampler, "search index (first query)"):
            catalog.search("a")
        del catalog.__dict__["_search_index"]  # a new process: only the disk cache is left
        with step(rows, sampler, "search index from disk cache (first query)"):
            catalog.search("a")
    titles = [catalog[i].title for i in np.random.default_rng(0).choice(len(catalog), 6, replace=False)]
    times = []
    with step(rows, sampler, "search per keystroke") as row:
        for title in titles:
            for end in range(1, len(title) + 1):
                started = time.perf_counter()
                catalog.search(title[:end], limit=20)
                times.append(time.perf_counter() - started)
        times.sort()
        row["seconds"] = statistics.median(times)
        row["note"] = f"median of {len(times)}; p95 {times[int(0.95 * (len(times) - 1))] * 1000:.1f} ms"
    # A fresh cache ("cold" is really cold); every shape's grammar is cached, to time the warm path too.
    with fresh_disk_cache(grammar_module, "GRAMMAR_DISK_CACHE_MIN"):
        with step(rows, sampler, "catalog grammar, cold") as row:
            grammar = grammar_module.catalog_answer_grammar(catalog, 10)
            row["note"] = f"{len(grammar) / 1e6:.1f} MB"
        grammar_module._GRAMMARS.clear()
        grammar_module._LABELS.clear()
        with step(rows, sampler, "catalog grammar, from disk cache"):
            grammar_module.catalog_answer_grammar(catalog, 10)
        with step(rows, sampler, "title guard tables"):
            grammar_module._label_bytes(catalog)

    before = sampler.rss()
    with step(rows, sampler, "split (sequences + leave-one-out)") as row:
        split = leave_one_out(build_sequences(dataset))
        bounds = (split.train.starts, split.train.ends, split.extra_train.starts, split.extra_train.ends)
        kept = (split.train.values.nbytes + sum(b.nbytes for b in bounds)) / 2**20  # one flat item array
        row["note"] = f"{len(split.valid_target):,} users; {kept:.0f} MB of arrays kept, step peak +{{grow}} MB"
    row["note"] = row["note"].format(grow=f"{row['peak_rss_mb'] - before:.0f}")
    train = TrainConfig()
    model = random_lstm(catalog, seed=0)
    recommender = LstmRecommender(model, catalog)
    history = [int(i) for i in split.test_input(0)][-30:]
    with step(rows, sampler, "LSTM top-20 for one user") as row:
        calls = []
        for _ in range(20):
            started = time.perf_counter()
            recommender.top_k(history, 20, exclude=history)
            calls.append(time.perf_counter() - started)
        row["seconds"] = statistics.median(calls)
        row["note"] = "median of 20"
    with step(rows, sampler, "evaluation per 1,000 validation users") as row:
        subset = _first_users(split, 1000)
        started = time.perf_counter()
        validation_ndcg_hr(recommender, subset)
        row["seconds"] = (time.perf_counter() - started) * 1000 / max(1, len(subset.valid_target))
        row["note"] = f"measured on {len(subset.valid_target):,} users, full ranking"
    with step(rows, sampler, "LSTM training windows (bounds; ids cut per batch)") as row:
        windows = lstm_windows(split.training_sequences(), train.window, train.stride)
        row["note"] = f"{len(windows):,} windows"
    order = np.random.default_rng(0).permutation(len(windows))
    n_batches = -(-len(windows) // train.batch_size)
    for loss, negatives in (("full", 0), ("sampled", 1000)):
        model.train()
        step_module = _train_step_module(model, train.logits_budget, negatives)
        optimiser = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        label = "full softmax" if loss == "full" else f"sampled softmax, {negatives:,} negatives"
        with step(rows, sampler, f"LSTM epoch, {label} (estimated)") as row:
            timed = min(batches, n_batches)
            started = time.perf_counter()
            for b in range(timed + 1):  # batch 0 is a warm-up, not timed
                if b == 1:
                    started = time.perf_counter()
                picked = order[b * train.batch_size : (b + 1) * train.batch_size]
                batch, bmask = torch.from_numpy(windows.ids(picked)), torch.from_numpy(windows.loss_mask(picked))
                width = int(bmask.any(0).nonzero().max()) + 1
                loss_value = step_module(batch[:, :width], batch[:, 1 : width + 1], bmask[:, :width])
                optimiser.zero_grad(set_to_none=True)
                loss_value.backward()
                optimiser.step()
            per_batch = (time.perf_counter() - started) / timed
            row["seconds"] = per_batch * n_batches
            row["note"] = f"{per_batch:.2f} s/batch x {n_batches:,} batches ({timed} timed)"
    return rows


def _first_users(split: Any, n: int) -> Any:
    from dataclasses import replace

    return replace(
        split,
        user_ids=split.user_ids[:n],
        train=split.train[:n],
        valid_target=split.valid_target[:n],
        test_target=split.test_target[:n],
    )


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: one row per step, one column per shape (time; peak RSS)."""
    shapes = list(results)
    steps: list[str] = []
    for rows in results.values():
        steps += [r["step"] for r in rows if r["step"] not in steps]
    lines = ["| step | " + " | ".join(shapes) + " |", "| --- |" + " --- |" * len(shapes)]
    for name in steps:
        cells = []
        for shape in shapes:
            row = next((r for r in results[shape] if r["step"] == name), None)
            if row is None:
                cells.append("not run")
                continue
            seconds = row["seconds"]
            shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"
            note = f" ({row['note']})" if row.get("note") else ""
            cells.append(f"{shown}, {row['peak_rss_mb'] / 1024:.2f} GB{note}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    loads = [f"{shape} {min(r['load_average'] for r in rows):.1f}-{max(r['load_average'] for r in rows):.1f}"
             for shape, rows in results.items() if rows]  # fmt: skip
    lines.append(f"\n1-minute load average during the runs: {'; '.join(loads)} ({os.cpu_count()} cores).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the synthetic releases")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated: {', '.join(SHAPES)} (or tiny)")
    parser.add_argument("--batches", type=int, default=8, help="LSTM training batches timed per shape")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one shape in this process
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.one:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(run_shape(args.one, args.work, args.batches)))
        return 0
    results: dict[str, list[dict[str, Any]]] = {}
    for shape in args.shapes.split(","):
        command = [sys.executable, __file__, "--work", str(args.work), "--one", shape, "--batches", str(args.batches)]
        command += ["--threads", str(args.threads)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            print(f"{shape}: failed with exit code {done.returncode} (see above)", file=sys.stderr)
            continue
        results[shape] = json.loads(done.stdout.strip().splitlines()[-1])
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
