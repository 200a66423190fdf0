"""Import (Letterboxd, IMDb, plain CSV, our JSON) and export of the watch log.

Planning writes nothing; applying is all or nothing; re-importing adds nothing; exports round-trip;
malformed files raise DataFormatError naming file, line and problem and leave the log untouched.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_catalog import small_catalog

from dualrec_tui.core.artifacts import default_data_dir
from dualrec_tui.core.errors import DataFormatError
from dualrec_tui.store import WatchLog, plan_import

CATALOG = small_catalog()
TOY, JUMANJI, HEAT, MATRIX = CATALOG[0], CATALOG[1], CATALOG[2], CATALOG[3]
HAMLET_1996 = CATALOG[6]

IMDB_HEADER = (
    "Const,Your Rating,Date Rated,Title,Original Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,"
    "Num Votes,Release Date,Directors"
)
IMDB = "\n".join(
    [
        IMDB_HEADER,
        # The title differs from the catalog's: the IMDb id decides.
        'tt0133093,9,2020-05-01,Matrix,Matrix,https://www.imdb.com/title/tt0133093/,Movie,8.7,136,1999,"Action, Sci-Fi"'
        ",2000000,1999-03-31,Lana Wachowski",
        "tt0903747,10,2020-05-02,Breaking Bad,Breaking Bad,https://x,TV Series,9.5,49,2008,Drama,2,2008-01-20,",
        "tt9999999,6,2020-05-03,Some Obscure Film,Obscur,https://x,Movie,6.5,90,2019,Drama,100,2019-01-01,X",
        "tt0000001,7,2020-05-04,Toy Story,Toy Story,https://x,Movie,8.3,81,1995,Animation,1,1995-11-22,J. Lasseter",
        "",
    ]
)
DIARY = (
    "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
    "2021-01-02,Heat,1995,https://boxd.it/a,4.5,,cinema,2021-01-01\n"
    '2021-02-02,Heat,1995,https://boxd.it/b,5,Yes,"cinema, with Sam",2021-02-01\n'
    "2021-02-03,Hamlet,,https://boxd.it/c,3,,,2021-02-01\n"
)
WATCHED = (
    "Date,Name,Year,Letterboxd URI\n"
    "2021-01-02,Heat,1995,https://boxd.it/x\n"
    "2020-01-01,Jumanjii,1995,https://boxd.it/y\n"
    "2019-06-01,A Film Nobody Has,2018,https://boxd.it/q\n"
)
RATINGS = (
    "Date,Name,Year,Letterboxd URI,Rating\n"
    "2020-01-01,Jumanjii,1995,https://boxd.it/y,2.5\n"
    "2019-01-01,Touching the Void,2003,https://boxd.it/z,4\n"
)
REVIEWS = (
    "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Review,Tags,Watched Date\n"
    '2021-02-02,Heat,1995,https://boxd.it/b,5,Yes,"Great, again\nand again",,2021-02-01\n'
)


@pytest.fixture
def log(tmp_path: Path):
    with WatchLog.open(tmp_path / "log.db") as opened:
        yield opened


def _zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def _letterboxd(tmp_path: Path) -> Path:
    return _zip(
        tmp_path / "letterboxd-user-2024-01-01-00-00-utc.zip",
        {
            "diary.csv": DIARY,
            "watched.csv": WATCHED,
            "ratings.csv": RATINGS,
            "reviews.csv": REVIEWS,
            "watchlist.csv": "Date,Name,Year,Letterboxd URI\n2021-01-01,Toy Story,1995,https://boxd.it/w\n",
            "deleted/diary.csv": "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
            "2021-01-02,Toy Story,1995,https://boxd.it/d,1,,,2021-01-01\n",
        },
    )


def _summary(log: WatchLog) -> list[tuple]:
    return [
        (
            e.title,
            e.year,
            e.genres,
            e.watched_on,
            e.rating,
            e.note,
            e.rewatch,
            e.tags,
            e.dataset,
            e.movie_id,
            e.imdb_id,
            e.source,
        )
        for e in log.chronological()
    ]


# ---------------------------------------------------------------- formats
def test_letterboxd_rewatch_and_tags_are_kept_on_the_entry_not_in_the_note(tmp_path: Path, log: WatchLog) -> None:
    preview = plan_import(_letterboxd(tmp_path), CATALOG, log)
    assert (preview.rewatches, preview.tagged) == (1, 2)
    log.apply_import(preview)
    heat = [(e.watched_on.isoformat(), e.rewatch, e.tags, e.note) for e in log.chronological() if e.title == "Heat"]
    assert heat == [
        ("2021-01-01", False, ("cinema",), None),
        ("2021-02-01", True, ("cinema", "with Sam"), "Great, again\nand again"),  # the review, tags not added
    ]
    assert all(not e.rewatch and not e.tags for e in log.chronological() if e.title != "Heat")
    reimport = plan_import(_letterboxd(tmp_path), CATALOG, log)
    assert (reimport.to_add, reimport.rewatches, reimport.tagged) == (0, 0, 0)


def test_bad_rewatch_or_tags_name_the_line(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "diary.csv"
    header = "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
    path.write_text(header + "2021-01-02,Heat,1995,u,4,Maybe,,2021-01-01\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="rewatch 'Maybe' is not yes/no") as caught:
        plan_import(path, CATALOG, log)
    assert caught.value.line == 2
    path.write_text(header + f"2021-01-02,Heat,1995,u,4,,{'x' * 101},2021-01-01\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="longer than 100"):
        plan_import(path, CATALOG, log)


def test_letterboxd_zip_merges_diary_watched_ratings_and_reviews(tmp_path: Path, log: WatchLog) -> None:
    preview = plan_import(_letterboxd(tmp_path), CATALOG, log)
    assert preview.format == "letterboxd"
    assert preview.counts == {
        "matched": 3,  # two Heat diary entries + Touching the Void (ratings only)
        "ambiguous": 2,  # Hamlet without a year (two Hamlets), Jumanjii (fuzzy)
        "unmatched": 1,  # kept as free text
        "duplicate": 0,
        "skipped": 0,
        "not_interested": 0,
    }
    assert log.counts().entries == 0  # planning wrote nothing
    result = log.apply_import(preview)
    assert (result.added, result.duplicates, result.free_text) == (6, 0, 1)
    rows = [(e.title, e.watched_on.isoformat(), e.rating, e.note, e.in_catalog) for e in log.chronological()]
    assert rows == [
        ("Touching the Void", "2019-01-01", 4.0, None, True),
        ("A Film Nobody Has", "2019-06-01", None, None, False),
        ("Jumanji", "2020-01-01", 2.5, None, True),
        ("Heat", "2021-01-01", 4.5, None, True),
        ("Heat", "2021-02-01", 5.0, "Great, again\nand again", True),
        ("Hamlet", "2021-02-01", 3.0, None, True),
    ]
    assert log.model_input(CATALOG) == [CATALOG[8].index, JUMANJI.index, HEAT.index, HEAT.index, HAMLET_1996.index]


def test_single_letterboxd_csv_is_accepted(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "diary.csv"
    path.write_text(DIARY, encoding="utf-8")
    preview = plan_import(path, CATALOG, log)
    assert preview.format == "letterboxd" and len(preview.rows) == 3


def test_imdb_ratings_match_by_id_halve_ratings_and_skip_tv(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(IMDB, encoding="utf-8")
    preview = plan_import(path, CATALOG, log)
    assert preview.format == "imdb"
    by_title = {row.title: row for row in preview.rows}
    assert by_title["Matrix"].movie == MATRIX and by_title["Matrix"].method == "imdb"
    assert by_title["Matrix"].rating == 4.5
    assert by_title["Toy Story"].movie == TOY and by_title["Toy Story"].method == "exact"  # unknown id: by title
    assert by_title["Some Obscure Film"].status == "unmatched"
    assert by_title["Some Obscure Film"].note is None  # IMDb's original title is not the user's note
    assert [why for _, _, why in preview.skipped] == ["Breaking Bad: TV Series is not a film"]
    log.apply_import(preview)
    obscure = next(e for e in log.history() if not e.in_catalog)
    assert (obscure.title, obscure.year, obscure.imdb_id, obscure.rating) == (
        "Some Obscure Film",
        2019,
        "tt9999999",
        3.0,
    )


def test_plain_csv_with_bom_and_windows_line_endings(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "mine.csv"
    text = "\r\n".join(
        [
            "Title,Year,Date,Rating",
            "The Matrix,1999,2022-01-01,4",
            '"Heat",,2022-01-02,',
            "Hamlet,2000,2022-01-03,2.5",
            "",
        ]
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    preview = plan_import(path, CATALOG, log)
    assert preview.format == "csv"
    assert [(row.movie, row.status, row.rating) for row in preview.rows] == [
        (MATRIX, "matched", 4.0),
        (HEAT, "matched", None),  # only one Heat: no year needed
        (CATALOG[7], "matched", 2.5),
    ]


def test_ambiguous_rows_can_be_kept_as_free_text(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("title,date\nHamlet,2022-01-01\nJumanjii,2022-01-02\n", encoding="utf-8")
    preview = plan_import(path, CATALOG, log)
    assert [row.status for row in preview.rows] == ["ambiguous", "ambiguous"]
    result = log.apply_import(preview, accept_ambiguous=False)
    assert result.free_text == 2 and log.model_input(CATALOG) == []


# ---------------------------------------------------------- idempotence
def test_reimport_adds_nothing_and_same_day_rewatches_survive(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "title,year,date\nHeat,1995,2022-01-01\nHeat,1995,2022-01-01\nNot A Catalog Film,,2022-01-02\n",
        encoding="utf-8",
    )
    assert log.apply_import(plan_import(path, CATALOG, log)).added == 3
    again = plan_import(path, CATALOG, log)
    assert again.counts["duplicate"] == 3 and again.to_add == 0
    assert log.apply_import(again).added == 0
    assert log.counts().entries == 3


def test_letterboxd_then_imdb_overlap_is_deduplicated(tmp_path: Path, log: WatchLog) -> None:
    log.add(MATRIX, dataset=CATALOG.name, watched_on="2020-05-01")
    path = tmp_path / "ratings.csv"
    path.write_text(IMDB, encoding="utf-8")
    preview = plan_import(path, CATALOG, log)
    assert [row.title for row in preview.with_status("duplicate")] == ["Matrix"]


def test_apply_is_all_or_nothing(tmp_path: Path, log: WatchLog, monkeypatch) -> None:
    preview = plan_import(_letterboxd(tmp_path), CATALOG, log)
    calls = {"n": 0}
    original = log.insert_entry

    def failing_insert(record):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full")
        return original(record)

    monkeypatch.setattr(log, "insert_entry", failing_insert)
    with pytest.raises(OSError):
        log.apply_import(preview)
    assert log.counts().entries == 0


def test_apply_rechecks_duplicates_added_after_planning(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("title,year,date\nHeat,1995,2022-01-01\nToy Story,1995,2022-01-02\n", encoding="utf-8")
    preview = plan_import(path, CATALOG, log)
    log.add(HEAT, dataset=CATALOG.name, watched_on="2022-01-01")
    assert log.apply_import(preview).added == 1
    assert log.counts().entries == 2


# ------------------------------------------------------------ round trip
def _filled_log(path: Path) -> WatchLog:
    log = WatchLog.open(path)
    log.add(MATRIX, dataset=CATALOG.name, watched_on="2020-01-01", rating=4.5, note='quotes " and, commas\r\nlines')
    log.add(HEAT, dataset=CATALOG.name, watched_on="2020-01-01")
    log.add(MATRIX, dataset=CATALOG.name, watched_on="2021-06-01", rating=5, rewatch=True, tags="home, =formula")
    log.add("Toy Story", year=1995, watched_on="2020-02-01", note="typed as free text: stays free text")
    log.add("Ünïcödé — 映画 🎬", watched_on="2020-03-01", rating=0.5, tags=["festival", "映画 night"])
    log.add(CATALOG[5], dataset=CATALOG.name, watched_on="2019-12-31", note="Amélie")
    log.add_not_interested(JUMANJI, CATALOG.name)
    return log


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_export_reimports_to_the_same_log(tmp_path: Path, kind: str) -> None:
    with _filled_log(tmp_path / "a.db") as original, WatchLog.open(tmp_path / "b.db") as copy:
        out = tmp_path / f"export.{kind}"
        assert getattr(original, f"export_{kind}")(out) == 6
        preview = plan_import(out, CATALOG, copy)
        assert preview.counts["ambiguous"] == 0
        copy.apply_import(preview)
        assert _summary(copy) == _summary(original)
        assert [e.created_at for e in copy.chronological()] == [e.created_at for e in original.chronological()]
        if kind == "json":
            assert [(m.dataset, m.movie_id) for m in copy.not_interested()] == [(CATALOG.name, JUMANJI.movie_id)]
        assert plan_import(out, CATALOG, original).counts["duplicate"] == 6


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from(range(len(CATALOG))), _text.filter(lambda t: t.strip())),
            st.dates(date(1990, 1, 1), date(2024, 12, 31)),
            st.one_of(st.none(), st.sampled_from([x / 2 for x in range(1, 11)])),
            st.one_of(st.none(), _text),
            st.booleans(),
            st.lists(_text, max_size=4),
        ),
        max_size=8,
    ),
    st.sampled_from(["csv", "json"]),
)
def test_round_trip_property(tmp_path_factory, entries, kind) -> None:
    folder = tmp_path_factory.mktemp("rt")
    with WatchLog.open(folder / "a.db") as original, WatchLog.open(folder / "b.db") as copy:
        for movie, when, rating, note, rewatch, tags in entries:
            extra = {"rating": rating, "note": note, "rewatch": rewatch, "tags": tags}
            try:
                if isinstance(movie, int):
                    original.add(CATALOG[movie], dataset=CATALOG.name, watched_on=when, **extra)
                else:
                    original.add(movie, watched_on=when, **extra)
            except ValueError:
                continue  # e.g. a title of control characters only: refused by add, not our concern here
        out = folder / f"export.{kind}"
        getattr(original, f"export_{kind}")(out)
        copy.apply_import(plan_import(out, CATALOG, copy))
        assert _summary(copy) == _summary(original)


# --------------------------------------------------------------- malformed
MALFORMED = {
    "missing_columns.csv": (b"title,year\nHeat,1995\n", 1, "missing column(s) date"),
    "imdb_missing_rating.csv": (b"Const,Date Rated,Title\ntt0133093,2020-01-01,Matrix\n", 1, "your rating"),
    "bad_date.csv": (b"title,date\nHeat,2020-01-01\nHeat,2020-13-45\n", 3, "bad date"),
    "future_date.csv": (b"title,date\nHeat,2999-01-01\n", 2, "bad date"),
    "bad_rating.csv": (b"title,date,rating\nHeat,2020-01-01,7\n", 2, "bad rating"),
    "nan_rating.csv": (b"title,date,rating\nHeat,2020-01-01,nan\n", 2, "bad rating"),
    "imdb_bad_rating.csv": (
        IMDB_HEADER.encode() + b"\ntt0133093,11,2020-05-01,M,M,u,Movie,8,1,1999,A,1,x,y\n",
        2,
        "1 to 10",
    ),
    "imdb_bad_id.csv": (
        IMDB_HEADER.encode() + b"\nnm0000001,7,2020-05-01,M,M,u,Movie,8,1,1999,A,1,x,y\n",
        2,
        "IMDb id",
    ),
    "bad_year.csv": (b"title,year,date\nHeat,95,2020-01-01\n", 2, "year"),
    "crlf_bad.csv": (b"title,date\r\nHeat,2020-01-01\r\n\r\nHeat,2020-02-30\r\n", 4, "bad date"),
    "too_many_fields.csv": (b"title,date\nHeat,2020-01-01,surprise\n", 2, "3 fields"),
    "unterminated.csv": (b'title,date\nHeat,2020-01-01\n"Heat,2020-01-02\nJumanji,2020-01-03\n', 3, "never closed"),
    "huge_field.csv": (b"title,date\n" + b"x" * 200_000 + b",2020-01-01\n", 2, "malformed CSV"),
    "long_title.csv": (b"title,date\n" + b"x" * 600 + b",2020-01-01\n", 2, "longer than 500"),
    "empty_title.csv": (b"title,date\n ,2020-01-01\n", 2, "title is empty"),
    "latin1.csv": (b"title,date\nHeat,2020-01-01\nAm\xe9lie,2020-01-02\n", 3, "not UTF-8"),
    "binary.csv": (b"title,date\n\x00\x01\x02garbage", 2, "binary data"),
    "unknown_header.csv": (b"foo,bar\n1,2\n", 1, "unrecognised file"),
    "empty.csv": (b"", None, "empty file"),
    "blank.csv": (b"\n\n  \n", None, "empty file"),
    "header_only_bom.csv": (b"\xef\xbb\xbf\xef\xbb\xbfwhat\n", 1, "unrecognised file"),
    "not_a_zip.zip": (b"this is plain text pretending to be a zip", None, "not a valid zip file"),
    "truncated.zip": (None, None, "not a valid zip file"),
    "no_members.zip": (None, None, "not a Letterboxd export"),
    "binary_member.zip": (None, 1, "binary data"),
    "bad_json.json": (b'{"format": "dualrec-watchlog",\n "version": 1,\n "entries": [,]}', 3, "invalid JSON"),
    "wrong_json.json": (b'{"hello": 1}', None, "not a dualrec export"),
    "json_bad_entry.json": (
        json.dumps(
            {"format": "dualrec-watchlog", "version": 1, "entries": [{"title": "x", "date": "2020-01-01", "rating": 9}]}
        ).encode(),
        None,
        "entry 1",
    ),
    "json_nan.json": (b'{"format": "dualrec-watchlog", "version": 1, "entries": [{"rating": NaN}]}', None, "NaN"),
    "json_types.json": (b'{"format": "dualrec-watchlog", "version": 1, "entries": [{"title": 5}]}', None, "title"),
}


def _malformed_bytes(name: str, data: bytes | None) -> bytes:
    if data is not None:
        return data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if name == "truncated.zip":
            archive.writestr("diary.csv", DIARY * 50)
        elif name == "no_members.zip":
            archive.writestr("readme.txt", "hello")
        else:
            archive.writestr("diary.csv", b"Date,Name\x00\xff\xfe")
    raw = buffer.getvalue()
    return raw[: len(raw) // 2] if name == "truncated.zip" else raw


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_name_file_line_and_problem_and_write_nothing(tmp_path: Path, log: WatchLog, name) -> None:
    data, line, problem = MALFORMED[name]
    path = tmp_path / name
    path.write_bytes(_malformed_bytes(name, data))
    log.add(TOY, dataset=CATALOG.name, watched_on="2020-01-01")
    changes = log.conn.total_changes
    with pytest.raises(DataFormatError) as error:
        plan_import(path, CATALOG, log)
    assert str(path) in error.value.path
    assert error.value.line == line
    assert problem.lower() in error.value.problem.lower() or problem.lower() in error.value.path.lower()
    assert log.conn.total_changes == changes and log.counts().entries == 1


def test_missing_file_and_folder(tmp_path: Path, log: WatchLog) -> None:
    with pytest.raises(DataFormatError, match="no such file"):
        plan_import(tmp_path / "nope.csv", CATALOG, log)
    with pytest.raises(DataFormatError, match="not a file"):
        plan_import(tmp_path, CATALOG, log)


# ------------------------------------------------------------- adversarial
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_or_write(tmp_path_factory, log_for_fuzz, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.csv"
    path.write_bytes(data)
    _plan_or_format_error(path, log_for_fuzz)


def test_corrupted_zips_never_crash_or_write(tmp_path: Path, log_for_fuzz) -> None:
    """Seeded byte flips and truncations of a real-shaped export (hypothesis rarely reaches deflate data)."""
    original = _letterboxd(tmp_path).read_bytes()
    rng = random.Random(1)
    outcomes = {"ok": 0, "error": 0}
    for attempt in range(400):
        raw = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        if rng.random() < 0.3:
            raw = raw[: rng.randint(1, len(raw))]
        path = tmp_path / f"export-{attempt}.zip"
        path.write_bytes(bytes(raw))
        outcomes["ok" if _plan_or_format_error(path, log_for_fuzz) else "error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0  # both paths were exercised


_cell = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["2020-01-01", "1999", "4.5", "tt0133093", "", '"', "\r\n", "\ufeff", "10", "-1", "nan"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(
        [
            "title,year,date,rating",
            IMDB_HEADER,
            "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date",
            "Date,Name,Year,Letterboxd URI",
        ]
    ),
    st.lists(st.lists(_cell, max_size=15), max_size=6),
    st.sampled_from(["\n", "\r\n"]),
)
def test_csv_shaped_garbage_never_crashes_or_writes(tmp_path_factory, log_for_fuzz, header, rows, newline) -> None:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header.split(","))
    writer.writerows(rows)
    path = tmp_path_factory.mktemp("fuzz") / "input.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    _plan_or_format_error(path, log_for_fuzz)


@pytest.fixture(scope="module")
def log_for_fuzz(tmp_path_factory):
    with WatchLog.open(tmp_path_factory.mktemp("fuzzlog") / "log.db") as opened:
        opened.add(HEAT, dataset=CATALOG.name, watched_on="2020-01-01")
        yield opened


def _plan_or_format_error(path: Path, log: WatchLog) -> bool:
    """Plan `path`: it must succeed or raise DataFormatError naming it, and never write. True = planned."""
    changes = log.conn.total_changes
    try:
        preview = plan_import(path, CATALOG, log)
    except DataFormatError as error:
        assert error.path.startswith(str(path))
        planned = False
    else:
        for row in preview.rows:
            assert row.status in {"matched", "ambiguous", "unmatched", "duplicate"}
            assert row.rating is None or 0.5 <= row.rating <= 5.0
        planned = True
    assert log.conn.total_changes == changes
    return planned


# ------------------------------------------------------------- real data
def test_real_catalog_imdb_and_title_matching(tmp_path: Path, log: WatchLog) -> None:
    data = default_data_dir() / "ml-latest-small"
    if not (data / "links.csv").is_file():
        pytest.skip(f"ml-latest-small not found at {data} (set DUALREC_DATA_DIR)")
    from dualrec_tui.core.movielens import load_dataset

    catalog = load_dataset(data).catalog
    path = tmp_path / "ratings.csv"
    path.write_text(IMDB, encoding="utf-8")
    preview = plan_import(path, catalog, log)
    matrix = next(row for row in preview.rows if row.title == "Matrix")
    assert matrix.method == "imdb" and matrix.movie is not None and matrix.movie.title == "The Matrix"
    toy = next(row for row in preview.rows if row.title == "Toy Story")
    assert toy.movie is not None and toy.movie.movie_id == 1
    log.apply_import(preview)
    assert log.model_input(catalog) == [matrix.movie.index, toy.movie.index]


# ------------------------------------------------- Letterboxd CSVs one at a time
def _entries(log: WatchLog) -> list[tuple]:
    return [(e.title, e.watched_on.isoformat(), e.rating, e.note, e.rewatch, e.tags) for e in log.chronological()]


@pytest.mark.parametrize("order", [("watched", "ratings", "diary"), ("diary", "watched", "ratings")])
def test_letterboxd_csvs_one_at_a_time_merge_like_the_zip(tmp_path: Path, order: tuple[str, ...]) -> None:
    """Issue #11 bug 2: watched.csv then diary.csv logged films twice; the zip's rule now holds across imports."""
    texts = {"diary": DIARY, "watched": WATCHED, "ratings": RATINGS}
    zipped = _zip(tmp_path / "export.zip", {f"{name}.csv": text for name, text in texts.items()})
    with WatchLog.open(tmp_path / "zip.db") as log:
        log.apply_import(plan_import(zipped, CATALOG, log))
        expected = _entries(log)
    with WatchLog.open(tmp_path / "csv.db") as log:
        for name in order:
            path = tmp_path / f"{name}.csv"
            path.write_text(texts[name], encoding="utf-8")
            log.apply_import(plan_import(path, CATALOG, log))
        assert _entries(log) == expected
        for name in order:  # and importing any of them again changes nothing
            again = plan_import(tmp_path / f"{name}.csv", CATALOG, log)
            assert (again.to_add, again.to_replace) == (0, 0), name


def test_diary_after_watched_says_what_it_replaces(tmp_path: Path, log: WatchLog) -> None:
    watched, diary = tmp_path / "watched.csv", tmp_path / "diary.csv"
    watched.write_text(WATCHED, encoding="utf-8")
    diary.write_text(DIARY, encoding="utf-8")
    log.apply_import(plan_import(watched, CATALOG, log))
    heat = [e for e in log.chronological() if e.title == "Heat"]
    preview = plan_import(diary, CATALOG, log)
    assert (preview.to_add, preview.to_replace) == (2, 1)
    result = log.apply_import(preview)
    assert (result.added, result.replaced) == (2, 1)
    dated = log.get(heat[0].id)  # the same entry, now with the diary's date and rating
    assert (dated.watched_on, dated.rating, dated.source) == (date(2021, 1, 1), 4.5, "letterboxd")
    assert (dated.rewatch, dated.tags) == (False, ("cinema",))  # the diary's tags come along
    assert sum(1 for e in log.chronological() if e.title == "Heat") == 2


def test_ratings_csv_rates_a_film_logged_by_date_without_a_rating(tmp_path: Path, log: WatchLog) -> None:
    """A new user's bug: Heat logged today, then ratings.csv with Heat 5 -> the rating was dropped as a
    duplicate. It now rates the latest unrated viewing; a film already rated keeps its rating."""
    log.add(HEAT, dataset=CATALOG.name, watched_on="2020-01-01")
    later = log.add(HEAT, dataset=CATALOG.name, watched_on="2024-06-01")
    rated = log.add(MATRIX, dataset=CATALOG.name, watched_on="2024-06-02", rating=2.0)
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(
        "Date,Name,Year,Letterboxd URI,Rating\n2024-02-01,Heat,1995,https://boxd.it/h,5\n"
        "2024-02-01,The Matrix,1999,https://boxd.it/m,4\n",
        encoding="utf-8",
    )
    preview = plan_import(ratings, CATALOG, log)
    assert (preview.to_add, preview.to_replace) == (0, 1)
    assert [row.title for row in preview.with_status("duplicate")] == ["The Matrix"]
    result = log.apply_import(preview)
    assert (result.added, result.replaced, result.duplicates) == (0, 1, 1)
    heat = [e for e in log.chronological() if e.title == "Heat"]
    assert [(e.watched_on, e.rating) for e in heat] == [(date(2020, 1, 1), None), (date(2024, 6, 1), 5.0)]
    assert heat[1].id == later.id and log.get(rated.id).rating == 2.0  # a rating the user gave is never replaced
    again = plan_import(ratings, CATALOG, log)
    assert (again.to_add, again.to_replace) == (0, 0)


@pytest.mark.parametrize("how", ["zip", "diary, then ratings"])
def test_a_rating_for_a_film_the_diary_never_rated_lands_on_its_latest_viewing(tmp_path: Path, how: str) -> None:
    """The zip and the CSVs one at a time agree (the zip used to drop the rating: review of session 13)."""
    diary = (
        "Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date\n"
        "2021-01-02,Heat,1995,https://boxd.it/a,,,,2021-01-01\n"
        "2021-03-02,Heat,1995,https://boxd.it/b,,Yes,,2021-03-01\n"
        "2021-04-02,Jumanji,1995,https://boxd.it/c,2,,,2021-04-01\n"
    )
    ratings = (
        "Date,Name,Year,Letterboxd URI,Rating\n2022-01-01,Heat,1995,https://boxd.it/h,4\n"
        "2022-01-01,Jumanji,1995,https://boxd.it/j,5\n"
    )
    with WatchLog.open(tmp_path / "log.db") as log:
        if how == "zip":
            log.apply_import(
                plan_import(_zip(tmp_path / "e.zip", {"diary.csv": diary, "ratings.csv": ratings}), CATALOG, log)
            )
        else:
            for name, text in (("diary.csv", diary), ("ratings.csv", ratings)):
                (tmp_path / name).write_text(text, encoding="utf-8")
                log.apply_import(plan_import(tmp_path / name, CATALOG, log))
        assert [(e.title, e.watched_on.isoformat(), e.rating) for e in log.chronological()] == [
            ("Heat", "2021-01-01", None),
            ("Heat", "2021-03-01", 4.0),  # the latest viewing
            ("Jumanji", "2021-04-01", 2.0),  # the diary's own rating stands
        ]


def test_bad_diary_reports_the_quote_line_and_every_problem(tmp_path: Path, log: WatchLog) -> None:
    """Issue #11 bug 11: the unterminated quote was put on the wrong line, and only one error was shown."""
    lines = ["Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date"]
    lines += [f"2021-01-0{d},Heat,1995,https://boxd.it/{d},9,,,2021-01-0{d}" for d in range(1, 4)]  # bad ratings
    lines += ["2021-01-05,Heat,95,https://boxd.it/y,4,,,2021-01-05"]  # bad year
    lines += ['2021-01-06,"Heat,1995,https://boxd.it/q,4,,,2021-01-06', "2021-01-07,Heat,1995,u,4,,,2021-01-07"]
    path = tmp_path / "bad-diary.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as error:
        plan_import(path, CATALOG, log)
    assert error.value.line == 2 and "bad rating" in error.value.problem
    text = error.value.problem
    assert "line 3: bad rating" in text and "line 4: bad rating" in text and "line 5: year" in text
    assert 'line 6: a quote (") opened on this line is never closed' in text
    assert "5 problems" in text and log.counts().entries == 0


def test_problems_stop_at_twenty(tmp_path: Path, log: WatchLog) -> None:
    path = tmp_path / "many.csv"
    path.write_text("title,date\n" + "".join(f"Heat,2020-13-{d:02d}\n" for d in range(1, 40)), encoding="utf-8")
    with pytest.raises(DataFormatError) as error:
        plan_import(path, CATALOG, log)
    assert error.value.problem.count("bad date") == 20 and "stopped after 20 problems" in error.value.problem


def test_letterboxd_export_folder_imports_like_the_zip(tmp_path: Path) -> None:
    """UX: an unzipped Letterboxd export folder is accepted as well as the zip."""
    folder = tmp_path / "letterboxd-user-2024"
    (folder / "deleted").mkdir(parents=True)
    for name, text in {
        "diary.csv": DIARY,
        "watched.csv": WATCHED,
        "ratings.csv": RATINGS,
        "reviews.csv": REVIEWS,
    }.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "deleted" / "diary.csv").write_text(DIARY.replace("Heat", "Toy Story"), encoding="utf-8")
    with WatchLog.open(tmp_path / "zip.db") as log:
        log.apply_import(plan_import(_letterboxd(tmp_path), CATALOG, log))
        expected = _entries(log)
    with WatchLog.open(tmp_path / "folder.db") as log:
        preview = plan_import(folder, CATALOG, log)
        assert preview.format == "letterboxd"
        log.apply_import(preview)
        assert _entries(log) == expected


def test_ambiguous_rows_can_be_decided_one_by_one(tmp_path: Path, log: WatchLog) -> None:
    """UX: the user picks among ambiguous matches row by row (or keeps a row as typed)."""
    from dualrec_tui.store.importing import candidates, choose

    path = tmp_path / "mine.csv"
    path.write_text("title,date\nHamlet,2021-02-01\nJumanjii,2021-02-02\n", encoding="utf-8")
    preview = plan_import(path, CATALOG, log)
    assert [row.status for row in preview.rows] == ["ambiguous", "ambiguous"]
    options = candidates(preview.rows[0], CATALOG)
    assert {m.label for m in options[:2]} == {"Hamlet (1996)", "Hamlet (2000)"}
    older = next(m for m in options if m.year == 2000)
    assert choose(preview, 0, older, log).status == "matched"
    assert choose(preview, 1, None, log).status == "unmatched"
    log.apply_import(preview)
    assert [(e.label, e.in_catalog) for e in log.chronological()] == [("Hamlet (2000)", True), ("Jumanjii", False)]
