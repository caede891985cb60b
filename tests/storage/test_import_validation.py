"""Import validation, round two (issue 12 findings 2, 4 and 9): one email address per cell,
Slack user ids that are user ids and belong to one person, NUL bytes, a capped error list
read in bounded memory, and an expected file name that is not a file."""

from __future__ import annotations

import shutil
import tracemalloc

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.cli import main
from mappa_core.storage.importer import MAX_ERRORS, import_directory
from tests.conftest import GRAMPIAN

TABLES = ("agency", "person", "individual", "meeting", "invitation", "event")


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(SQLModel.metadata.tables[t])).scalar()
                for t in TABLES}


def _copy(tmp_path):
    target = tmp_path / "g"
    shutil.copytree(GRAMPIAN, target)
    (target / "expected.json").unlink()
    return target


def _edit(path, old, new):
    data = path.read_bytes()
    assert old.encode() in data
    path.write_bytes(data.replace(old.encode(), new.encode(), 1))


CHAIR1 = "g-chair-1,Ailsa Chair,ailsa@grampian.example,U1CHAIR1,chair,Grampian,"


@pytest.mark.parametrize("filename, old, new, error", [
    ("people.csv", CHAIR1,
     'g-chair-1,Ailsa Chair,"ailsa@grampian.example\r\nBcc: leak@evil.example",U1CHAIR1,chair,Grampian,',
     "people.csv:2: email: 'ailsa@grampian.example\\r\\nBcc: leak@evil.e...' contains a "
     "control character (a line break or tab); one address per cell"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,ailsa@grampian.\texample,U1CHAIR1,chair,Grampian,",
     "people.csv:2: email: 'ailsa@grampian.\\texample' contains a control character "
     "(a line break or tab); one address per cell"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,ailsa@grampian.example;x@y.example,U1CHAIR1,chair,Grampian,",
     "people.csv:2: email: 'ailsa@grampian.example;x@y.example' holds more than one address; "
     "one address per cell"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,Ailsa <ailsa@grampian.example>,U1CHAIR1,chair,Grampian,",
     "people.csv:2: email: 'Ailsa <ailsa@grampian.example>' holds more than one address; "
     "one address per cell"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,ailsa.grampian.example,U1CHAIR1,chair,Grampian,",
     "people.csv:2: email: 'ailsa.grampian.example' is not an email address (name@domain)"),
    ("agencies.csv", "rmt@sps.example", '"rmt@sps.example, spy@evil.example"',
     "agencies.csv:5: email: 'rmt@sps.example, spy@evil.example' holds more than one address; "
     "one address per cell"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,ailsa@grampian.example,C0GENERAL,chair,Grampian,",
     "people.csv:2: slack_user_id: 'C0GENERAL' is a Slack channel or conversation id, "
     "not a user id (U... or W...)"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,ailsa@grampian.example,u1chair1,chair,Grampian,",
     "people.csv:2: slack_user_id: 'u1chair1' is not a Slack user id (U or W, then upper-case "
     "letters and digits)"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,ailsa@grampian.example,<@U1CHAIR1>,chair,Grampian,",
     "people.csv:2: slack_user_id: '<@U1CHAIR1>' is not a Slack user id (U or W, then upper-case "
     "letters and digits)"),
    ("people.csv", CHAIR1, "g-chair-1,Ailsa Chair,ailsa@grampian.example,U1STAFF1,chair,Grampian,",
     "people.csv:6: slack_user_id: 'U1STAFF1' is also person 'g-chair-1''s (line 2); "
     "each Slack user is one person"),
])
def test_addresses_and_slack_ids_are_checked_on_import(engine, tmp_path, filename, old, new, error):
    d = _copy(tmp_path)
    _edit(d / filename, old, new)
    report = import_directory(engine, d)
    assert report.errors[0] == error  # (agencies.csv: invitations to that agency follow)
    assert set(_counts(engine).values()) == {0}


def test_a_slack_id_already_held_by_another_person_in_the_database(sqlite_engine, tmp_path):
    """A second person with a staff member's Slack id and the co-ordinator role, added by a
    later import of people.csv alone: refused, so the staff member gains no case access."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    d = tmp_path / "later"
    d.mkdir()
    (d / "people.csv").write_text("person_id,name,email,slack_user_id,roles,area,agency\n"
                                  "g-new,New Coordinator,new@grampian.example,U1STAFF1,coordinator,Grampian,\n"
                                  "g-w,Enterprise User,w@grampian.example,W012ABC,staff,Grampian,\n")
    report = import_directory(sqlite_engine, d)
    assert report.errors == ["people.csv:2: slack_user_id: 'U1STAFF1' is also person "
                             "'g-staff''s (already in the database); each Slack user is one person"]
    # The same id on the same person (a re-import) is fine, and W... ids are user ids.
    (d / "people.csv").write_text("person_id,name,email,slack_user_id,roles,area,agency\n"
                                  "g-staff,Shona Staff,shona@grampian.example,U1STAFF1,staff,Grampian,\n"
                                  "g-w,Enterprise User,w@grampian.example,W012ABC,staff,Grampian,\n")
    assert import_directory(sqlite_engine, d).ok


@pytest.mark.parametrize("filename, old, new, column", [
    ("agencies.csv", "Police Scotland", "Police\x00Scotland", "name"),
    ("people.csv", "Ailsa Chair", "Ailsa\x00Chair", "name"),
    ("individuals.csv", "White Scottish", "White\x00Scottish", "ethnicity"),
    ("meetings.csv", "G1,GRA-0101", "G1\x00,GRA-0101", "meeting_id"),
    ("invitations.csv", "G2,police", "G2,pol\x00ice", "agency"),
    ("events.csv", "GRA-0101,2026-10-14", "GRA-0101\x00,2026-10-14", "ref"),
])
def test_a_nul_byte_in_a_text_column_is_an_error_with_its_line(engine, tmp_path, filename, old, new, column):
    """PostgreSQL cannot store NUL: it was a psycopg.DataError traceback, and --dry-run
    called the same files fine."""
    d = _copy(tmp_path)
    _edit(d / filename, old, new)
    for dry_run in (True, False):
        report = import_directory(engine, d, dry_run=dry_run)
        assert any(e.startswith(f"{filename}:2: {column}: ") and e.endswith("contains a NUL byte")
                   for e in report.errors), report.errors
    assert set(_counts(engine).values()) == {0}


def test_a_utf16_file_and_a_huge_cell_say_what_they_are_and_write_nothing(sqlite_engine,
                                                                        tmp_path):
    """A spreadsheet saved as "Unicode text" and a cell of megabytes (an unclosed quote):
    the errors named a byte and Python's csv module's wording."""
    d = _copy(tmp_path)
    text = (d / "agencies.csv").read_text(encoding="utf-8")
    (d / "agencies.csv").write_bytes(text.encode("utf-16"))
    meetings = (d / "meetings.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    meetings[2] = meetings[2].replace(",", ',"' + "x" * 200_000, 1)
    (d / "meetings.csv").write_text("".join(meetings), encoding="utf-8")
    report = import_directory(sqlite_engine, d)
    assert "agencies.csv:1: -: UTF-16 text: save it as CSV UTF-8" in report.errors
    assert any(e.startswith("meetings.csv:") and "a cell longer than 131,072 characters" in e
               for e in report.errors), report.errors
    assert set(_counts(sqlite_engine).values()) == {0}


@pytest.mark.slow
def test_a_huge_all_invalid_file_gives_a_capped_list_in_bounded_memory(sqlite_engine, tmp_path):
    rows = 300_000
    d = tmp_path / "big"
    d.mkdir()
    with (d / "people.csv").open("w") as fh:
        fh.write("person_id,name,email,slack_user_id,roles,area,agency\n")
        for i in range(rows):
            fh.write(f"p{i},Person {i},not-an-address-{i},,staff,Area,\n")
    size = (d / "people.csv").stat().st_size
    tracemalloc.start()
    try:
        report = import_directory(sqlite_engine, d)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.error_count == rows and len(report.errors) == MAX_ERRORS + 1
    assert report.errors[0] == "people.csv:2: email: 'not-an-address-0' is not an email address (name@domain)"
    assert report.errors[MAX_ERRORS - 1].startswith(f"people.csv:{MAX_ERRORS + 1}: email: ")
    assert report.errors[-1] == f"... and {rows - MAX_ERRORS} more errors"
    # The file is about 16 MB; reading it whole (bytes and text) took twice that, and
    # the full error list as much again. Streamed, with the list capped: a few MB (most
    # of it SQLAlchemy's first use and interned ids).
    assert size > 15_000_000 and peak < 10_000_000, (size, peak)


def test_the_cli_counts_every_error(sqlite_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    d = tmp_path / "big"
    d.mkdir()
    (d / "agencies.csv").write_text("agency,name,kind,role,email\n" + "".join(
        f"a{i},A,ra,police,bad-{i}\n" for i in range(1500)))
    assert main(["import", str(d)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == MAX_ERRORS + 2
    assert err[-2] == "... and 500 more errors"
    assert err[-1] == "mappa import: 1500 error(s); nothing was written"


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_expected_file_name_that_is_a_directory_is_an_error(sqlite_engine, tmp_path, dry_run):
    d = _copy(tmp_path)
    (d / "events.csv").unlink()
    (d / "events.csv").mkdir()
    report = import_directory(sqlite_engine, d, dry_run=dry_run)
    assert report.errors == ["events.csv:1: -: is a directory, not a CSV file"]
    assert set(_counts(sqlite_engine).values()) == {0}
    only = tmp_path / "only"
    (only / "meetings.csv").mkdir(parents=True)
    assert import_directory(sqlite_engine, only).errors == [
        "meetings.csv:1: -: is a directory, not a CSV file"]
