"""TUI speed: cold start to an interactive screen, search per keystroke, LSTM picks visible after logging.

Targets (docs/architecture.md, issue #5): cold start < 1 s, search < 50 ms per keystroke over the
~9.7k ml-latest-small catalog, LSTM recommendations on screen < 300 ms after logging (model loaded).

    python benchmarks/bench_app.py                # all three, shipped models/ (catalog.json, lstm/)
    python benchmarks/bench_app.py --repeat 10
    python benchmarks/bench_app.py --typed        # cold starts only, a query typed at once (answered on screen)
    python benchmarks/bench_app.py --typed --existing-log   # ... on a watch log made before (a returning user)
    python benchmarks/bench_app.py --terminal     # the real `dualrec-tui` in a pseudo-terminal (see bench_terminal)
    python benchmarks/bench_app.py --terminal --existing-log --against ../main-worktree   # A/B, launch by launch
    DUALREC_MODELS_DIR=DIR python benchmarks/bench_app.py   # another models folder (benchmarks/scale_models.py)

The LSTM timing uses the shipped models/lstm when it exists; otherwise an untrained LSTM of the default
architecture over the same catalog (same shapes, so the same speed), and says so. The LLM stays off:
this measures the fast path only. Timings are wall-clock on this machine; the report prints the setup.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = ("the matrix", "star wars empire", "amelie", "godfather", "lord of the rings", "toy story 2")

CHILD = r"""
import asyncio, sys, time
from dualrec_tui import launch_gc
launch_gc.pause()  # as the entry point (dualrec_tui.__main__) does, before Textual is imported
from pathlib import Path
from dualrec_tui.app import DualrecApp
from dualrec_tui.config import Config

class App(DualrecApp):
    CSS_PATH = str(Path(sys.modules[DualrecApp.__module__].__file__).with_name(DualrecApp.CSS_PATH))

    def on_search_done(self, message):  # Textual calls DualrecApp's handler too (every class in the MRO)
        if message.query == "star wars" and message.movies is not None:
            self.call_after_refresh(self.answered.set)  # after the frame that shows the answer

async def main():
    app = App(Config(db_path=Path(sys.argv[1]), llm_enabled=False))
    app.answered = asyncio.Event()
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.focused is not None and app.focused.id == "search"
        # First frame painted, search box focused: typing is accepted. CPU seconds too (load-independent).
        print(f"READY {time.process_time():.4f}", flush=True)
        start = time.perf_counter()
        if sys.argv[2] == "typed":  # the user types at once: wait for the box's own answer from the catalog
            app.main.query_one("#search").insert_text_at_cursor("star wars")
            # Woken by the app itself, not by polling: a pilot.pause() loop would add UI-thread work
            # (~0.1 s of it before the answer) that a real launch does not have.
            await app.answered.wait()
            assert app.shown_query == "star wars"
            print(f"CATALOG {time.perf_counter() - start:.4f}", flush=True)
            while app.watchlog is None:  # logging a pick is possible from here
                await asyncio.sleep(0.005)
            print(f"SEARCH {time.perf_counter() - start:.4f}", flush=True)
            return
        while app.hub.components["catalog"].state != "ready" or app.watchlog is None:
            await pilot.pause(0.01)
        print(f"CATALOG {time.perf_counter() - start:.4f}", flush=True)
        start = time.perf_counter()
        app.hub.catalog.search("star wars", limit=20)  # the first query the box answers
        print(f"SEARCH {time.perf_counter() - start:.4f}", flush=True)

asyncio.run(main())
"""


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(samples) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms"
    )


def bench_cold_start(
    repeat: int, typed: bool = False, existing_log: bool = False
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Process launch -> main screen painted with the search box focused (headless, 100x30), and
    launch -> watch log open, catalog and search index loaded, and a first query answered (`typed`:
    a query typed into the box as soon as it shows, answered on screen by the app's own search; the
    fourth list is then launch -> watch log open). Each launch creates its watch log (a first launch),
    or with `existing_log` opens one made before the timing (a returning user's launch)."""
    samples: list[float] = []
    searchable: list[float] = []
    cpu: list[float] = []
    log_open: list[float] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            log_path = Path(tmp) / "log.db"
            if existing_log:
                from dualrec_tui.store import WatchLog

                with WatchLog.open(log_path) as log:
                    log.add("Heat", year=1995, watched_on="2020-01-01")
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(log_path), "typed" if typed else "direct"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,  # `-c` puts the working directory first on sys.path: this checkout's code runs
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            elapsed = time.perf_counter() - start
            catalog_line = proc.stdout.readline()
            search_line = proc.stdout.readline()
            proc.wait(timeout=60)
            if "READY" not in line or "CATALOG" not in catalog_line or "SEARCH" not in search_line:
                raise SystemExit(f"child failed: {proc.stderr.read() if proc.stderr else ''}")
            samples.append(elapsed)
            cpu.append(float(line.split()[1]))
            if typed:
                searchable.append(elapsed + float(catalog_line.split()[1]))
                log_open.append(elapsed + float(search_line.split()[1]))
            else:
                searchable.append(elapsed + float(catalog_line.split()[1]) + float(search_line.split()[1]))
    return samples, searchable, cpu, log_open


# Escape sequences Textual writes (CSI: colours, cursor moves; OSC: title; charset, keypad): stripped to find text.
ANSI_CODES = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
)


def bench_terminal(
    repeat: int, existing_log: bool, movie, roots: list[Path], with_llm: bool = False
) -> dict[Path, tuple[list[float], list[float]]]:
    """The user's view: `python -m dualrec_tui --no-llm` (the installed entry point; `with_llm`: without
    --no-llm) in a 100x30 pseudo-terminal.
    When its screen appears (the search box's placeholder is on the terminal), the first letters of
    `movie`'s title are typed; timed until that title is on the terminal. Returns, per checkout in
    `roots` (whose code runs), (launch -> screen, launch -> answer) per launch; several checkouts take
    turns launch by launch, in alternating order, so that a busy moment of the machine hits both.
    Settings, logs and the watch log are temporary."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    query, expected = movie.title.lower()[:9].encode(), movie.title[:12].encode()
    times: dict[Path, tuple[list[float], list[float]]] = {root: ([], []) for root in roots}
    for turn in range(repeat * len(roots)):
        root = (roots if (turn // len(roots)) % 2 == 0 else roots[::-1])[turn % len(roots)]
        with tempfile.TemporaryDirectory() as tmp:
            log_path = Path(tmp) / "log.db"
            if existing_log:
                from dualrec_tui.store import WatchLog

                with WatchLog.open(log_path) as log:
                    log.add("Heat", year=1995, watched_on="2020-01-01")
            env = {
                **os.environ,
                "PYTHONPATH": str(root),
                "TERM": "xterm-256color",
                "DUALREC_CONFIG": f"{tmp}/config.toml",
                "DUALREC_LOG_DIR": f"{tmp}/logs",
            }
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
            command = [sys.executable, "-m", "dualrec_tui", "--db", str(log_path)] + ([] if with_llm else ["--no-llm"])
            start = time.perf_counter()
            proc = subprocess.Popen(  # cwd: `-m` puts it first on sys.path, so it decides which code runs
                command, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=root, start_new_session=True
            )
            os.close(slave)
            output, typed_at, screen, answer = b"", 0, None, None
            try:
                while time.perf_counter() - start < 30 and answer is None:
                    if select.select([master], [], [], 0.2)[0]:
                        output += os.read(master, 1 << 16)
                    if screen is None and b"Search a title" in ANSI_CODES.sub(b"", output):
                        screen, typed_at = time.perf_counter() - start, len(output)
                        os.write(master, query)  # typed as soon as the screen shows
                    elif screen is not None and expected in ANSI_CODES.sub(b"", output[typed_at:]):
                        answer = time.perf_counter() - start
            finally:
                os.write(master, b"\x11")  # Ctrl+Q
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                os.close(master)
            if screen is None or answer is None:
                raise SystemExit(f"no {'screen' if screen is None else 'answer'} within 30 s: {output[-2000:]!r}")
            times[root][0].append(screen)
            times[root][1].append(answer)
    return times


def bench_search(catalog) -> list[float]:
    """catalog.search for every prefix of every query (what each keystroke runs)."""
    catalog.search("warm up")
    samples = []
    for query in queries_for(catalog):
        for end in range(1, len(query) + 1):
            start = time.perf_counter()
            catalog.search(query[:end], limit=20)
            samples.append(time.perf_counter() - start)
    return samples


def queries_for(catalog) -> list[str]:
    """QUERIES when each finds a movie (ml-latest-small), else the titles of the six most rated movies."""
    if all(catalog.search(query, limit=1) for query in QUERIES):
        return list(QUERIES)
    top = sorted(range(len(catalog)), key=lambda i: -catalog.popularity[i] if catalog.popularity else i)[:6]
    return [catalog[i].title.lower()[:24] for i in top]


async def bench_in_app(catalog, lstm, repeat: int) -> tuple[list[float], list[float]]:
    """Inside the running app: keystroke -> results list updated, and Enter (log) -> LSTM picks in the panel.

    Measured until the widget holds the new content (the next frame paints it, <= 1/60 s later)."""
    from dualrec_tui.app import DualrecApp
    from dualrec_tui.config import Config
    from dualrec_tui.services import ModelHub

    keystroke, logging = [], []
    with tempfile.TemporaryDirectory() as tmp:
        hub = ModelHub(Path(tmp), n_recommendations=10, llm_enabled=False, catalog=catalog, lstm=lstm)
        app = DualrecApp(Config(db_path=Path(tmp) / "log.db", llm_enabled=False), hub=hub)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            search = app.main.query_one("#search")
            for query in queries_for(catalog)[:repeat]:
                for char in query:
                    # The app's own path, without the test pilot's per-key idle waits (~65 ms here):
                    # insert the character as a key press would -> Input.Changed -> search worker -> list.
                    target = search.value + char  # type: ignore[attr-defined]
                    start = time.perf_counter()
                    search.insert_text_at_cursor(char)  # type: ignore[attr-defined]
                    while not _shown(app, target):  # (a synthetic catalog may have no match: 0 rows)
                        await asyncio.sleep(0.0005)
                    keystroke.append(time.perf_counter() - start)
                run = app.runs.run
                start = time.perf_counter()
                await search.action_submit()  # type: ignore[attr-defined]  # = pressing Enter
                while app.runs.run == run or app.rec_stage not in ("lstm", "final"):
                    await asyncio.sleep(0.0005)
                logging.append(time.perf_counter() - start)
                await app.workers.wait_for_complete()
                await pilot.pause()
    return keystroke, logging


def _shown(app, query: str) -> bool:
    return app.shown_query == query


def load_lstm(catalog):
    from dualrec_tui.core import lstm as lstm_module
    from dualrec_tui.core.artifacts import models_dir

    directory = models_dir() / "lstm"
    if (directory / "config.json").is_file():
        return lstm_module.LstmRecommender.load(directory, catalog), f"shipped {directory}"
    import torch

    torch.manual_seed(0)
    config = lstm_module.LstmConfig(
        n_items=len(catalog),
        catalog_fingerprint=catalog.fingerprint,
        title_vocabulary=lstm_module.build_title_vocabulary(catalog),
        genre_vocabulary=catalog.genre_vocabulary,
    )
    model = lstm_module.build_model(config, catalog)
    return lstm_module.LstmRecommender(model, catalog), "UNTRAINED LSTM, default shape (no models/lstm yet)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="cold starts to time (and queries to log in-app)")
    parser.add_argument(
        "--typed", action="store_true", help="only the cold starts, with a query typed at once (answered on screen)"
    )
    parser.add_argument(
        "--terminal",
        action="store_true",
        help="only the cold starts of the real app in a pseudo-terminal, typing when its screen shows",
    )
    parser.add_argument(
        "--with-llm",
        action="store_true",
        help="with --terminal: launch with the LLM on (it loads after the LSTM; default --no-llm)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="DIR",
        help="with --terminal: also launch another checkout's code (e.g. a worktree of main), taking turns",
    )
    parser.add_argument(
        "--existing-log", action="store_true", help="launch on a watch log made beforehand (a returning user)"
    )
    args = parser.parse_args()

    import torch

    from dualrec_tui.core.artifacts import models_dir
    from dualrec_tui.core.catalog import Catalog

    torch.set_num_threads(1)
    # Up-to-date bytecode, as `pip install` leaves it: a checkout's stale .pyc files (PYTHONDONTWRITEBYTECODE,
    # edited modules) would otherwise be recompiled by every launch timed here (~0.06 s).
    compileall.compile_dir(ROOT / "dualrec_tui", quiet=1)
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, torch threads 1")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before: {load} (wall times stretch when the CPUs are busy)")
    if args.terminal:
        catalog = Catalog.from_json(models_dir() / "catalog.json")
        top = max(range(len(catalog)), key=lambda i: catalog.popularity[i] if catalog.popularity else -i)
        roots = [ROOT] + ([args.against.resolve()] if args.against else [])
        times = bench_terminal(args.repeat, args.existing_log, catalog[top], roots, args.with_llm)
        print(f"models: {models_dir()} ({len(catalog):,} movies); typed: {catalog[top].title.lower()[:9]!r}")
        print("watch log: " + ("one made before (a returning user)" if args.existing_log else "created by each launch"))
        for root, (screens, answers) in times.items():
            print(f"{root}:")
            print(f"  real terminal, launch -> screen shown, n={len(screens)}: {stats(screens)}")
            print(f"  real terminal, launch -> the typed query's answer shown, n={len(answers)}: {stats(answers)}")
        if args.against:
            ours, theirs = (statistics.median(times[root][1]) for root in roots)
            print(f"median answer, this checkout / {args.against}: {ours / theirs:.2f}")
        return
    cold, searchable, cpu, log_open = bench_cold_start(args.repeat, args.typed, args.existing_log)
    print("watch log: " + ("one made before (a returning user)" if args.existing_log else "created by each launch"))
    print(f"cold start -> interactive (process launch to focused search box), n={len(cold)}: {stats(cold)}")
    print(f"  CPU time of that start-up (user+sys of the app process): {stats(cpu)}")
    if args.typed:
        print(f"cold start -> a query typed at once answered on screen, n={len(cold)}: {stats(searchable)}")
        print(f"cold start -> watch log open (a pick can be logged), n={len(cold)}: {stats(log_open)}")
        return
    print(f"cold start -> catalog loaded + watch log open + first query answered, n={len(cold)}: {stats(searchable)}")

    catalog = Catalog.from_json(models_dir() / "catalog.json")
    print(f"models: {models_dir()} ({len(catalog):,} movies)")
    search = bench_search(catalog)
    print(f"catalog.search per keystroke over {len(catalog)} movies, n={len(search)}: {stats(search)}")

    lstm, what = load_lstm(catalog)
    keystroke, logging = asyncio.run(bench_in_app(catalog, lstm, min(args.repeat, len(QUERIES))))
    print(f"in-app keystroke -> results on screen, n={len(keystroke)}: {stats(keystroke)}")
    print(f"in-app Enter (log) -> LSTM picks on screen [{what}], n={len(logging)}: {stats(logging)}")


if __name__ == "__main__":
    main()
