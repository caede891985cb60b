"""CSV import (SPEC section 5): every error class, all-or-nothing, upsert by key."""

import datetime as dt
import shutil

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.cli import main
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.helpers import AGENCIES, write_files

TABLES = ("agency", "person", "individual", "meeting", "invitation", "event", "local_holiday")


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(select(func.count()).select_from(SQLModel.metadata.tables[t])).scalar()
            for t in TABLES
        }


def _copy_grampian(tmp_path):
    target = tmp_path / "g"
    shutil.copytree(GRAMPIAN, target)
    (target / "expected.json").unlink()
    return target


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_import_then_reimport_changes_nothing(engine, tmp_path):
    first = import_directory(engine, GRAMPIAN)
    assert first.ok, first.errors
    assert {f.filename: f.created for f in first.files} == {
        "agencies.csv": 7, "people.csv": 6, "individuals.csv": 10, "meetings.csv": 18,
        "invitations.csv": 30, "events.csv": 3,
    }
    before = _counts(engine)
    again = import_directory(engine, GRAMPIAN)
    assert again.ok
    assert all(f.created == 0 and f.updated == 0 and f.unchanged == f.rows for f in again.files)
    assert _counts(engine) == before


def test_changed_row_is_updated_in_place(engine, tmp_path):
    d = _copy_grampian(tmp_path)
    assert import_directory(engine, d).ok
    _edit(d / "meetings.csv", "G6,GRA-0102,2026-12-08,3,review,community,g-chair-2,3,2026-12-21,,",
          "G6,GRA-0102,2026-12-08,3,review,community,g-chair-2,3,2026-12-21,2026-12-22,")
    report = import_directory(engine, d)
    meetings = {f.filename: f for f in report.files}["meetings.csv"]
    assert (meetings.created, meetings.updated, meetings.unchanged) == (0, 1, 17)
    with engine.connect() as conn:
        m = SQLModel.metadata.tables["meeting"]
        assert conn.execute(select(m.c.rmp_ratified).where(m.c.meeting_id == "G6")).scalar() == dt.date(2026, 12, 22)


def test_awkward_text_is_stored_exactly_and_reimports_unchanged(engine, tmp_path):
    """Text with tabs, backslashes, quotes, `\\N` and non-ASCII goes in as written, and empty
    optional fields as nulls (PostgreSQL takes new rows by COPY, whose text format escapes
    these). A line break is refused (the next test)."""
    d = _copy_grampian(tmp_path)
    name = 'Police\tScotland: "North" O\'Neil \\N \\ back\\slash, Gàidhlig ✓'
    _edit(d / "agencies.csv", "police,Police Scotland,ra,police,north-mappa@police.example",
          'police,"' + name.replace('"', '""') + '",ra,police,')
    assert import_directory(engine, d).ok
    a, m = (SQLModel.metadata.tables[t] for t in ("agency", "meeting"))
    with engine.connect() as conn:
        agency = conn.execute(select(a.c.name, a.c.email).where(a.c.agency == "police")).one()
        meeting = conn.execute(select(m.c.minutes_issued, m.c.disclosure_considered,
                                      m.c.rmp_ratified, m.c.reason, m.c.level)
                               .where(m.c.meeting_id == "G6")).one()
    assert tuple(agency) == (name, None)
    assert tuple(meeting) == (dt.date(2026, 12, 21), True, None, None, 3)
    again = import_directory(engine, d)
    assert all(f.created == 0 and f.updated == 0 and f.unchanged == f.rows for f in again.files)


def test_invalid_file_set_writes_nothing_and_reports_every_error(engine, tmp_path):
    d = _copy_grampian(tmp_path)
    _edit(d / "individuals.csv", "GRA-0104,Grampian,3,2,", "GRA-0104,Grampian,3,1,")
    _edit(d / "meetings.csv", "G1,GRA-0101,2026-07-06,2,", "G1,GRA-0101,2026-07-06,1,")
    _edit(d / "invitations.csv", "G2,em-provider,", "G2,no-such-agency,")
    report = import_directory(engine, d)
    assert report.errors == [
        "individuals.csv:5: level: a Category 3 individual is managed at Level 2 or 3, never Level 1",
        "meetings.csv:2: level: '1' is not one of: 2, 3",
        "invitations.csv:4: agency: unknown agency 'no-such-agency'",
    ]
    assert set(_counts(engine).values()) == {0}


@pytest.mark.parametrize("filename, old, new, error", [
    ("individuals.csv", "2018-01-01,2026-12-14,3", "2018-01-01,2017-12-14,3",
     "individuals.csv:6: release_date: the release date is before custody_from"),
    ("meetings.csv", "2026-07-06,2,review,community,g-chair-1,2,2026-07-10",
     "2026-07-06,2,review,community,g-chair-1,2,2026-07-03",
     "meetings.csv:2: minutes_issued: minutes_issued is before the meeting date 2026-07-06"),
    ("individuals.csv", "GRA-0104,Grampian,3,2,", "GRA-0104,Grampian,3,1,",
     "individuals.csv:5: level: a Category 3 individual is managed at Level 2 or 3, never Level 1"),
    ("meetings.csv", "G1,GRA-0101,2026-07-06,2,", "G1,GRA-0101,2026-07-06,1,",
     "meetings.csv:2: level: '1' is not one of: 2, 3"),
    ("meetings.csv", "G1,GRA-0101,", "G1,GRA-9999,",
     "meetings.csv:2: ref: unknown individual 'GRA-9999'"),
    ("events.csv", "GRA-0101,2026-10-14", "GRA-9999,2026-10-14",
     "events.csv:2: ref: unknown individual 'GRA-9999'"),
    ("invitations.csv", "G2,police,", "G99,police,",
     "invitations.csv:2: meeting_id: unknown meeting 'G99'"),
    ("invitations.csv", "G2,em-provider,", "G2,no-such-agency,",
     "invitations.csv:4: agency: unknown agency 'no-such-agency'"),
    ("meetings.csv", "G2,GRA-0101,", "G1,GRA-0101,",
     "meetings.csv:3: meeting_id: duplicate key 'G1' (first on line 2)"),
    ("invitations.csv", "G2,cbsw-aberdeen,in_person", "G2,police,in_person",
     "invitations.csv:3: meeting_id,agency: duplicate key 'G2/police' (first on line 2)"),
    ("individuals.csv", "community,2024-02-01", "at_large,2024-02-01",
     "individuals.csv:2: status: 'at_large' is not one of: community, custody, hospital"),
    ("agencies.csv", "police,Police Scotland,ra,", "police,Police Scotland,rra,",
     "agencies.csv:2: kind: 'rra' is not one of: ra, dtc"),
    ("individuals.csv", "GRA-0101,Grampian,1,", "GRA-0101,Grampian,4,",
     "individuals.csv:2: category: '4' is not one of: 1, 2, 3"),
    ("meetings.csv", "G1,GRA-0101,2026-07-06", "G1,GRA-0101,2026-02-30",
     "meetings.csv:2: date: '2026-02-30' is not a real date (day is out of range for month)"),
    ("meetings.csv", "G1,GRA-0101,2026-07-06", "G1,GRA-0101,07/31/2026",
     "meetings.csv:2: date: '07/31/2026' is not a real date (month must be in 1..12)"),
    ("meetings.csv", "G1,GRA-0101,2026-07-06", "G1,GRA-0101,6 July 2026",
     "meetings.csv:2: date: '6 July 2026' is not a date (use YYYY-MM-DD or DD/MM/YYYY)"),
    ("meetings.csv", "G1,GRA-0101,2026-07-06", "G1,GRA-0101,",
     "meetings.csv:2: date: a value is required"),
    ("invitations.csv", "G2,police,in_person,yes", "G2,police,in_person,perhaps",
     "invitations.csv:2: seniority_ok: 'perhaps' is not yes or no"),
    ("people.csv", "g-chair-1,Ailsa Chair,ailsa@grampian.example,U1CHAIR1,chair,",
     "g-chair-1,Ailsa Chair,ailsa@grampian.example,U1CHAIR1,chair;boss,",
     "people.csv:2: roles: 'boss' is not one of: chair, sog_chair, coordinator, staff, agency_contact"),
    ("meetings.csv", "G1,GRA-0101,2026-07-06,2,review,community,g-chair-1,2,",
     "G1,GRA-0101,2026-07-06,2,review,community,g-chair-1,2,2026-07-10,extra,",
     "meetings.csv:2: -: has 14 fields but the header has 12"),
])
def test_each_error_class_is_reported_with_file_line_and_column(engine, tmp_path, filename, old, new, error):
    d = _copy_grampian(tmp_path)
    _edit(d / filename, old, new)
    report = import_directory(engine, d)
    assert error in report.errors
    assert set(_counts(engine).values()) == {0}


def test_a_file_repeated_wholesale_reports_every_duplicate_with_its_first_line(sqlite_engine, tmp_path):
    """Thousands of duplicates (a file pasted twice): each is named with the line of the
    row it repeats, and nothing is written."""
    d = _copy_grampian(tmp_path)
    head, *rows = (d / "agencies.csv").read_text().splitlines()
    extra = [f"agency-{i},Agency {i},dtc,housing," for i in range(3000)]
    body = rows + extra
    (d / "agencies.csv").write_text("\n".join([head, *body, *body]) + "\n")
    report = import_directory(sqlite_engine, d)
    n = len(body)
    # The first MAX_ERRORS (1,000) word for word, then a count (issue 12 finding 9).
    assert not report.ok and report.error_count == n and len(report.errors) == 1001
    assert report.errors[0] == f"agencies.csv:{n + 2}: agency: duplicate key 'police' (first on line 2)"
    assert report.errors[999] == (f"agencies.csv:{n + 1001}: agency: duplicate key 'agency-992' "
                                  "(first on line 1001)")
    assert report.errors[-1] == f"... and {n - 1000} more errors"
    assert _counts(sqlite_engine)["agency"] == 0


def test_missing_required_column_is_reported_on_the_header_line(sqlite_engine, tmp_path):
    d = write_files(tmp_path, agencies=AGENCIES)
    (d / "individuals.csv").write_text("ref,area,level,status,mappa_start\nA,X,2,community,2020-01-01\n")
    report = import_directory(sqlite_engine, d)
    assert report.errors == ["individuals.csv:1: category: required column is missing from the header"]


def test_uk_dates_bom_extra_columns_and_boolean_spellings_are_accepted(sqlite_engine, tmp_path):
    d = write_files(tmp_path, agencies=AGENCIES)
    (d / "individuals.csv").write_bytes(
        "\ufeffref,area,category,level,status,mappa_start,notes\n"
        "A,Fife,1,2,community,05/01/2020,ignored\n".encode()
    )
    (d / "meetings.csv").write_text(
        "meeting_id,ref,date,level,kind,setting,chair_id,disclosure_considered\n"
        "M1,A,2026-10-05,2,review,community,c1,Y\n"
        "M2,A,06/10/2026,2,review,community,c1,false\n"
    )
    report = import_directory(sqlite_engine, d)
    assert report.ok, report.errors
    with sqlite_engine.connect() as conn:
        t = SQLModel.metadata.tables
        assert conn.execute(select(t["individual"].c.mappa_start)).scalar() == dt.date(2020, 1, 5)
        rows = conn.execute(select(t["meeting"].c.date, t["meeting"].c.disclosure_considered)
                            .order_by(t["meeting"].c.meeting_id)).all()
        assert rows == [(dt.date(2026, 10, 5), True), (dt.date(2026, 10, 6), False)]


def test_references_to_records_already_in_the_database_are_valid(sqlite_engine, tmp_path):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    d = write_files(tmp_path / "later", meetings=[
        {"meeting_id": "G99", "ref": "GRA-0101", "date": "2027-03-01"},
    ])
    report = import_directory(sqlite_engine, d)
    assert report.ok, report.errors
    assert [(f.filename, f.created) for f in report.files] == [("meetings.csv", 1)]


def test_not_utf8_is_an_error_with_its_line(sqlite_engine, tmp_path):
    d = write_files(tmp_path, agencies=AGENCIES)
    (d / "people.csv").write_bytes(
        b"person_id,name,roles\np1,Ann,staff\np2,Bj\xf6rn,staff\n"
    )
    assert import_directory(sqlite_engine, d).errors == [
        "people.csv:3: -: not UTF-8 text (byte 0xf6)"
    ]


def test_empty_directory_and_empty_file(sqlite_engine, tmp_path):
    assert "none of the import files" in import_directory(sqlite_engine, tmp_path).errors[0]
    (tmp_path / "agencies.csv").write_text("")
    assert import_directory(sqlite_engine, tmp_path).errors == [
        "agencies.csv:1: -: the file is empty (a header row is required)"
    ]


def test_cli_import_exit_codes_dry_run_and_summary(sqlite_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    assert main(["import", str(GRAMPIAN), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "meetings.csv" in out and "dry run: nothing was written" in out
    assert main(["import", str(GRAMPIAN)]) == 0
    assert "invitations.csv            30       30        0         0" in capsys.readouterr().out
    d = _copy_grampian(tmp_path)
    _edit(d / "meetings.csv", "G1,GRA-0101,", "G1,GRA-9999,")
    assert main(["import", str(d)]) == 1
    err = capsys.readouterr().err
    assert "meetings.csv:2: ref: unknown individual 'GRA-9999'" in err
    assert "nothing was written" in err


def test_a_local_holiday_without_a_name_imports(engine, tmp_path):
    # `name` is optional in local_holidays.csv; a blank one used to hit the table's NOT NULL.
    shutil.copytree(GRAMPIAN, tmp_path / "d")
    (tmp_path / "d" / "local_holidays.csv").write_text("area,date,name\nGrampian,2027-03-01,\n")
    report = import_directory(engine, tmp_path / "d")
    assert report.ok, report.errors
    holiday = SQLModel.metadata.tables["local_holiday"]
    with engine.connect() as conn:
        assert conn.execute(select(holiday.c.area, holiday.c.date, holiday.c.name)).all() == [
            ("Grampian", dt.date(2027, 3, 1), "")]


@pytest.mark.parametrize("name", [
    "Scottish Prison Service\r\nBcc: leak@evil.example", "SPS\rBcc: x@evil.example",
    "SPS\nX-Injected: 1", "SPS\u2028line", "SPS\x1b[31m",  # (NUL has its own message)
])
def test_a_line_break_or_control_character_in_a_cell_is_refused_where_it_is(sqlite_engine, tmp_path, name):
    # It would end an email subject early or add lines (seen: a chaser's body opening with
    # "Bcc: ..."), or stop every message naming it at the SMTP library for good.
    shutil.copytree(GRAMPIAN, tmp_path / "d")
    path = tmp_path / "d" / "agencies.csv"
    lines = path.read_text().splitlines()
    header, first = lines[0], lines[1].split(",")
    first[header.split(",").index("name")] = '"' + name + '"'
    path.write_text("\n".join([header, ",".join(first), *lines[2:]]) + "\n", newline="")
    report = import_directory(sqlite_engine, tmp_path / "d")
    assert not report.ok
    assert any(e.startswith("agencies.csv:2: name: contains a line break or control character")
               for e in report.errors), report.errors
    agency = SQLModel.metadata.tables["agency"]
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(agency)).scalar() == 0


def test_a_misnamed_csv_file_is_named_on_stderr_with_the_file_it_probably_meant(
        sqlite_url, tmp_path, capsys, monkeypatch):
    """`Meetings.csv` beside agencies.csv imported the agencies only, without a word: each
    CSV file mappa does not read is named (a warning: exit 0), in the importer's report."""
    from tests.helpers import run_cli

    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(GRAMPIAN / "agencies.csv", d / "agencies.csv")
    shutil.copy(GRAMPIAN / "meetings.csv", d / "Meetings.csv")
    (d / "notes.CSV").write_text("a,b\n")
    (d / "readme.txt").write_text("not a CSV file\n")
    code, out, err = run_cli(capsys, "import", str(d))
    assert code == 0, err
    assert err.splitlines() == [
        "Meetings.csv: not a file mappa reads (did you mean meetings.csv?); skipped",
        "notes.CSV: not a file mappa reads; skipped",
    ]
    assert "agencies.csv" in out and "meetings.csv" not in out
    from mappa_core.storage import db

    report = import_directory(db.make_engine(sqlite_url), d, dry_run=True)
    assert report.ok and report.warnings == err.splitlines()
    # A directory holding only misnamed files: the error, and the warning saying why.
    (d / "agencies.csv").rename(d / "agency.csv")
    code, _out, err = run_cli(capsys, "import", str(d))
    assert code == 1
    assert "agency.csv: not a file mappa reads (did you mean agencies.csv?); skipped" in err
    assert "none of the import files is there" in err
    # The Grampian files alone: no warning.
    code, _out, err = run_cli(capsys, "import", str(GRAMPIAN))
    assert code == 0 and err == ""
