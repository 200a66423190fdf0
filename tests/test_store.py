"""The watch log database: opening, migrations, entries, undo, not-interested, queries."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_catalog import small_catalog

from dualrec_tui.core.artifacts import watchlog_path
from dualrec_tui.store import UNSET, SchemaTooNewError, WatchLog, WatchLogError
from dualrec_tui.store.migrations import MIGRATIONS, Migration, run_sql

CATALOG = small_catalog()
TOY, JUMANJI, HEAT, MATRIX = CATALOG[0], CATALOG[1], CATALOG[2], CATALOG[3]


@pytest.fixture
def log(tmp_path: Path):
    with WatchLog.open(tmp_path / "log.db") as opened:
        yield opened


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ opening
def test_path_comes_from_argument_then_env_then_user_data_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DUALREC_DB", str(tmp_path / "from-env" / "env.db"))
    with WatchLog.open() as opened:
        assert opened.path == tmp_path / "from-env" / "env.db"
    with WatchLog.open(tmp_path / "arg.db") as opened:
        assert opened.path == tmp_path / "arg.db"
    monkeypatch.delenv("DUALREC_DB")
    assert watchlog_path().parts[-2:] == ("dualrec", "watchlog.db")


def test_new_database_uses_wal_full_sync_and_records_migrations(log: WatchLog) -> None:
    assert log.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    applied = log.conn.execute("SELECT id, name, applied_at FROM schema_migrations").fetchall()
    assert [row[0] for row in applied] == [m.id for m in MIGRATIONS]
    assert all(row[2] for row in applied)
    assert log.conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1].id


def test_reopening_upgrades_with_new_migrations_only(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with WatchLog.open(path) as first:
        first.add(TOY, dataset=CATALOG.name, watched_on="2020-01-01")
    extra = Migration(MIGRATIONS[-1].id + 1, "add a column", lambda db: db.table("entries").add_column("mood", str))
    with WatchLog.open(path, migrations=(*MIGRATIONS, extra)) as second:
        columns = [row[1] for row in second.conn.execute("PRAGMA table_info(entries)")]
        assert "mood" in columns
        assert second.counts().entries == 1
        ids = [row[0] for row in second.conn.execute("SELECT id FROM schema_migrations ORDER BY id")]
        assert ids == [*(m.id for m in MIGRATIONS), extra.id]


def test_failing_migration_leaves_the_previous_schema_intact(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with WatchLog.open(path) as first:
        first.add("Kept", watched_on="2020-01-01")
    broken = Migration(
        MIGRATIONS[-1].id + 1,
        "broken",
        lambda db: run_sql(db, "ALTER TABLE entries ADD COLUMN mood TEXT;\nTHIS IS NOT SQL;"),
    )
    with pytest.raises(WatchLogError):
        WatchLog.open(path, migrations=(*MIGRATIONS, broken))
    with WatchLog.open(path) as again:
        assert "mood" not in [row[1] for row in again.conn.execute("PRAGMA table_info(entries)")]
        assert again.conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1].id
        assert [e.title for e in again.history()] == ["Kept"]


def test_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    future = Migration(MIGRATIONS[-1].id + 1, "from the future", lambda db: db.execute("CREATE TABLE future (x)"))
    WatchLog.open(path, migrations=(*MIGRATIONS, future)).close()
    before = _digest(path)
    with pytest.raises(SchemaTooNewError, match="newer dualrec") as error:
        WatchLog.open(path)
    assert str(path) in str(error.value)
    assert _digest(path) == before


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    path.write_bytes(b"this is a text file, not sqlite\n" * 100)
    before = _digest(path)
    with pytest.raises(WatchLogError, match="DUALREC_DB"):
        WatchLog.open(path)
    assert _digest(path) == before


# ------------------------------------------------------------------ entries
def test_add_catalog_movie_keeps_a_readable_snapshot(log: WatchLog) -> None:
    entry = log.add(MATRIX, dataset=CATALOG.name, watched_on="2024-03-01", rating=4.5, note="  cinema ")
    assert (entry.title, entry.year, entry.genres) == ("The Matrix", 1999, ("Action", "Sci-Fi", "Thriller"))
    assert (entry.dataset, entry.movie_id, entry.imdb_id) == (CATALOG.name, 2571, "tt0133093")
    assert (entry.watched_on, entry.rating, entry.note, entry.in_catalog) == (date(2024, 3, 1), 4.5, "cinema", True)
    assert entry.created_at.endswith("+00:00")
    assert log.get(entry.id) == entry


def test_free_text_is_kept_but_left_out_of_model_input(log: WatchLog) -> None:
    log.add(TOY, dataset=CATALOG.name, watched_on="2020-01-01")
    free = log.add("  A Film   Not In\tThe Catalog ", year=2021, watched_on="2020-01-02")
    assert free.title == "A Film Not In The Catalog" and not free.in_catalog and free.year == 2021
    assert log.model_input(CATALOG) == [TOY.index]
    assert free in log.history()


def test_date_defaults_to_today(log: WatchLog) -> None:
    assert log.add(HEAT, dataset=CATALOG.name).watched_on == date.today()


@pytest.mark.parametrize("rating", [0, 0.25, 5.5, -1, 4.3, "abc", float("nan"), float("inf"), "10"])
def test_bad_ratings_are_refused(log: WatchLog, rating) -> None:
    with pytest.raises(ValueError, match="rating"):
        log.add(TOY, dataset=CATALOG.name, rating=rating)
    assert log.counts().entries == 0


@pytest.mark.parametrize("rating", [0.5, 1, "3.5", 5.0, None, ""])
def test_half_star_ratings_are_accepted(log: WatchLog, rating) -> None:
    expected = None if rating in (None, "") else float(rating)
    assert log.add(TOY, dataset=CATALOG.name, rating=rating).rating == expected


@pytest.mark.parametrize(
    "watched_on",
    ["2024-13-01", "01/02/2024", "yesterday", "1850-01-01", (date.today() + timedelta(days=5)).isoformat()],
)
def test_bad_dates_are_refused(log: WatchLog, watched_on: str) -> None:
    with pytest.raises(ValueError, match="date"):
        log.add(TOY, dataset=CATALOG.name, watched_on=watched_on)


@pytest.mark.parametrize("title", ["", "   ", "\x00\x01", "x" * 501, "bad \ud800 surrogate"])
def test_bad_titles_are_refused(log: WatchLog, title: str) -> None:
    with pytest.raises(ValueError, match="title"):
        log.add(title)


def test_catalog_movie_needs_its_dataset(log: WatchLog) -> None:
    with pytest.raises(ValueError, match="dataset"):
        log.add(TOY)


def test_rewatches_are_separate_entries_and_ordering_is_by_date_then_insertion(log: WatchLog) -> None:
    first = log.add(HEAT, dataset=CATALOG.name, watched_on="2023-05-01")
    early = log.add(TOY, dataset=CATALOG.name, watched_on="2021-01-01")
    same_day_a = log.add(MATRIX, dataset=CATALOG.name, watched_on="2023-05-01")
    rewatch = log.add(HEAT, dataset=CATALOG.name, watched_on="2024-01-01")
    assert [e.id for e in log.history()] == [rewatch.id, same_day_a.id, first.id, early.id]
    assert [e.id for e in log.history(limit=2, offset=1)] == [same_day_a.id, first.id]
    assert log.model_input(CATALOG) == [TOY.index, HEAT.index, MATRIX.index, HEAT.index]
    assert log.watched_indices(CATALOG) == {TOY.index, HEAT.index, MATRIX.index}
    counts = log.counts()
    assert (counts.entries, counts.in_catalog, counts.free_text, counts.distinct_movies) == (4, 4, 0, 3)


def test_model_input_maps_another_catalog_by_imdb_id(log: WatchLog) -> None:
    log.add(MATRIX, dataset="some-older-catalog", watched_on="2020-01-01")
    log.add(TOY, dataset=CATALOG.name, watched_on="2020-01-02")
    assert log.model_input(CATALOG) == [MATRIX.index, TOY.index]
    renamed = small_catalog(name="renamed")
    assert log.model_input(renamed) == [MATRIX.index, TOY.index]  # both have IMDb ids


def test_update_changes_only_given_fields(log: WatchLog) -> None:
    entry = log.add(TOY, dataset=CATALOG.name, watched_on="2020-01-01", rating=3, note="ok")
    changed = log.update(entry.id, rating=4.5)
    assert (changed.rating, changed.note, changed.watched_on) == (4.5, "ok", date(2020, 1, 1))
    cleared = log.update(entry.id, rating=None, note=None, watched_on="2020-02-02")
    assert (cleared.rating, cleared.note, cleared.watched_on) == (None, None, date(2020, 2, 2))
    moved = log.update(entry.id, movie=JUMANJI, dataset=CATALOG.name)
    assert (moved.movie_id, moved.title, moved.id, moved.created_at) == (2, "Jumanji", entry.id, entry.created_at)
    as_text = log.update(entry.id, movie="Some Other Film", year=2001)
    assert (as_text.in_catalog, as_text.title, as_text.year) == (False, "Some Other Film", 2001)
    assert log.update(entry.id, year=2002, note=UNSET).year == 2002
    with pytest.raises(ValueError, match="rating"):
        log.update(entry.id, rating=7)
    with pytest.raises(WatchLogError, match="no watch log entry"):
        log.update(entry.id + 100, rating=3)


def test_rewatch_and_tags_are_kept_edited_and_restored_by_undo(log: WatchLog) -> None:
    entry = log.add(TOY, dataset=CATALOG.name, rewatch=True, tags=" cinema ,with  Sam,, cinema")
    assert (entry.rewatch, entry.tags) == (True, ("cinema", "with Sam"))
    assert log.update(entry.id, note="ok").tags == ("cinema", "with Sam")  # UNSET keeps them
    changed = log.update(entry.id, rewatch=False, tags=["home"])
    assert (changed.rewatch, changed.tags, changed.note) == (False, ("home",), "ok")
    assert log.update(entry.id, tags=None).tags == ()
    log.update(entry.id, tags="a, b", rewatch=True)
    gone = log.delete(entry.id)
    assert log.undo_delete() == gone and (gone.rewatch, gone.tags) == (True, ("a", "b"))
    with pytest.raises(ValueError, match="longer than 100"):
        log.update(entry.id, tags="x" * 101)
    with pytest.raises(ValueError, match="more than 50 tags"):
        log.add(TOY, dataset=CATALOG.name, tags=[f"t{i}" for i in range(51)])
    with pytest.raises(sqlite3.IntegrityError):
        log.conn.execute("UPDATE entries SET rewatch = 2 WHERE id = ?", (entry.id,))


def test_a_log_from_before_rewatch_and_tags_upgrades_without_loss(tmp_path: Path) -> None:
    """Migration 3 adds the columns; entries (and an undo record) written by the previous version survive."""
    path = tmp_path / "log.db"
    old = tuple(m for m in MIGRATIONS if m.id < 3)
    with WatchLog.open(path, migrations=old) as before:
        before.conn.execute(
            "INSERT INTO entries (dataset, movie_id, imdb_id, title, year, genres, watched_on, rating, note, "
            "source, created_at) VALUES (?, 1, NULL, 'Toy Story', 1995, '[\"Animation\"]', '2020-01-01', 4.5, "
            "'old note', 'manual', '2020-01-01T00:00:00+00:00')",
            (CATALOG.name,),
        )
        gone = {"id": 2, "title": "Gone", "watched_on": "2020-01-02", "source": "manual", "created_at": "x"}
        before.conn.execute(  # what the previous version's delete left in the trash
            "INSERT INTO deleted_entries (entry_id, row_json, deleted_at) VALUES (2, ?, 'x')", (json.dumps(gone),)
        )
    with WatchLog.open(path) as after:
        assert after.conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1].id
        (kept,) = after.history()
        assert (kept.title, kept.rating, kept.note, kept.genres) == ("Toy Story", 4.5, "old note", ("Animation",))
        assert (kept.rewatch, kept.tags) == (False, ())
        restored = after.undo_delete()
        assert (restored.id, restored.title, restored.rewatch, restored.tags) == (2, "Gone", False, ())


def test_year_of_a_catalog_entry_cannot_be_edited_alone(log: WatchLog) -> None:
    entry = log.add(TOY, dataset=CATALOG.name)
    with pytest.raises(ValueError, match="catalog"):
        log.update(entry.id, year=1990)


def test_delete_and_undo_restore_the_same_row(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with WatchLog.open(path) as log:
        keep = log.add(TOY, dataset=CATALOG.name, watched_on="2020-01-01")
        gone = log.add(MATRIX, dataset=CATALOG.name, watched_on="2020-01-02", rating=5, note="best")
        assert log.delete(gone.id) == gone
        assert log.get(gone.id) is None and log.counts().deleted_undoable == 1
        newer = log.add(HEAT, dataset=CATALOG.name, watched_on="2020-01-03")
        assert newer.id != gone.id  # ids are never reused, so undo can bring the old one back
        with pytest.raises(WatchLogError):
            log.delete(gone.id)
    with WatchLog.open(path) as log:  # undo survives a restart
        assert log.undo_delete() == gone
        assert log.undo_delete() is None
        assert [e.id for e in log.history()] == [newer.id, gone.id, keep.id]


def test_undo_walks_back_through_several_deletes(log: WatchLog) -> None:
    entries = [log.add(TOY, dataset=CATALOG.name, watched_on=f"2020-01-0{day}") for day in range(1, 4)]
    for entry in entries:
        log.delete(entry.id)
    assert [log.undo_delete() for _ in entries] == list(reversed(entries))
    assert log.counts().entries == 3


def test_failed_transaction_writes_nothing(log: WatchLog) -> None:
    with pytest.raises(RuntimeError), log.transaction():
        log.add(TOY, dataset=CATALOG.name)
        log.add(HEAT, dataset=CATALOG.name)
        raise RuntimeError("boom")
    assert log.counts().entries == 0


def test_sql_constraints_back_up_the_python_checks(log: WatchLog) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        log.conn.execute(
            "INSERT INTO entries (title, watched_on, rating, created_at) VALUES ('x', '2020-01-01', 7, 'now')"
        )


def test_concurrent_adds_from_threads(log: WatchLog) -> None:
    def worker(offset: int) -> None:
        for i in range(10):
            log.add(f"Film {offset}-{i}", watched_on="2020-01-01")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.counts().entries == 40


# ----------------------------------------------------------- not interested
def test_not_interested_add_remove_list(log: WatchLog) -> None:
    log.add_not_interested(TOY, CATALOG.name)
    log.add_not_interested(TOY, CATALOG.name)  # idempotent
    log.add_not_interested(HEAT, CATALOG.name)
    assert {(m.movie_id, m.title) for m in log.not_interested()} == {(1, "Toy Story"), (6, "Heat")}
    assert log.not_interested_indices(CATALOG) == {TOY.index, HEAT.index}
    assert log.remove_not_interested(TOY.movie_id, CATALOG.name) is True
    assert log.remove_not_interested(TOY.movie_id, CATALOG.name) is False
    assert log.not_interested_indices(CATALOG) == {HEAT.index}
    assert log.counts().not_interested == 1


# --------------------------------------------------------------- property
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from(range(len(CATALOG))), st.booleans()), min_size=1, max_size=12)
)
def test_history_and_model_input_orders(tmp_path_factory, adds) -> None:
    path = tmp_path_factory.mktemp("prop") / "log.db"
    with WatchLog.open(path) as log:
        made = []
        for day, index, free in adds:
            when = date(2020, 1, 1) + timedelta(days=day)
            if free:
                made.append(log.add(f"Free {index}", watched_on=when))
            else:
                made.append(log.add(CATALOG[index], dataset=CATALOG.name, watched_on=when))
        expected = sorted(made, key=lambda e: (e.watched_on, e.id))
        assert log.chronological() == expected
        assert log.history() == list(reversed(expected))
        assert log.model_input(CATALOG) == [e.catalog_index(CATALOG) for e in expected if e.in_catalog]


def test_entries_on_a_day_are_that_days_only(tmp_path: Path) -> None:
    """The same-day check before logging reads one day through the index, not the whole log."""
    with WatchLog.open(tmp_path / "log.db") as log:
        log.add("Heat", year=1995, watched_on=date(2024, 5, 1))
        log.add("Alien", year=1979, watched_on=date(2024, 5, 2))
        log.add("Heat", year=1995, watched_on=date(2024, 5, 2))
        assert [e.title for e in log.entries_on(date(2024, 5, 2))] == ["Alien", "Heat"]
        assert log.entries_on(date(2024, 5, 3)) == []


def test_opening_and_reading_an_up_to_date_log_does_not_import_sqlite_utils(tmp_path: Path) -> None:
    """The app's launch only reads: sqlite-utils (~0.1 s of imports) waits for the first write."""
    import subprocess
    import sys

    path = tmp_path / "log.db"
    with WatchLog.open(path) as log:
        log.add("Heat", year=1995, watched_on="2020-01-01")
    code = (
        "import sys\nfrom dualrec_tui.store import WatchLog\n"
        f"log = WatchLog.open({str(path)!r})\n"
        "titles = [e.title for e in log.history(limit=5)] + [str(log.entry_count())]\n"
        "before = 'sqlite_utils' in sys.modules\n"
        "log.add('Fargo', year=1996, watched_on='2020-01-02')\n"
        "print(titles, before, 'sqlite_utils' in sys.modules, log.entry_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["['Heat',", "'1']", "False", "True", "2"]
