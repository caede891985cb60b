"""Excel workbooks import as they are (issue 26, item 3): `mappa import BOOK.xlsx`, a sheet
per file named like the CSV file without `.csv`. Dates stored as Excel dates, ids Excel
made numbers of, empty rows and columns around the table, a title above the header are
read as a CSV export would have them; what cannot be (not an .xlsx, an .xls, a password, a
sheet too big or too wide, formulas, merged cells) is one located error, exit 1, nothing
written. The workbooks are made with openpyxl, as Excel saves them."""

from __future__ import annotations

import csv
import datetime as dt
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from mappa_core.rules.schema import FILES
from mappa_core.storage.importer import import_directory, import_workbook
from tests.conftest import FIXTURES, GRAMPIAN
from tests.helpers import run_cli

SPECS = {s.filename: s for s in FILES}
TABLES = ("agency", "person", "individual", "meeting", "invitation", "event")


def _typed(spec, column: str, text: str):
    """A cell as Excel keeps it: dates as dates, numbers as numbers, the rest as text."""
    if text == "":
        return None
    kind = next(c.kind for c in spec.columns if c.name == column)
    if kind == "date":
        return dt.date.fromisoformat(text)
    if text.isdigit():
        return int(text)
    return text


def grampian_book(path: Path, edit=None, titles: dict | None = None) -> Path:
    """The Grampian files as one workbook, a sheet each (named as `titles` says, else like
    the file); `edit(name, sheet)` changes one."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for csv_path in sorted(GRAMPIAN.glob("*.csv")):
        spec = SPECS[csv_path.name]
        ws = wb.create_sheet((titles or {}).get(csv_path.stem, csv_path.stem))
        with csv_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            ws.append(header)
            for row in reader:
                ws.append([_typed(spec, c, v) for c, v in zip(header, row)])
        if edit:
            edit(csv_path.stem, ws)
    wb.save(path)
    return path


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(
            SQLModel.metadata.tables[t])).scalar() for t in TABLES}


def _rows(engine, table: str) -> list[tuple]:
    t = SQLModel.metadata.tables[table]
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(t)))


def test_a_workbook_imports_exactly_as_its_csv_files(engine, tmp_path, sqlite_url):
    """Dates as Excel dates, ids and levels as numbers: the same records as the CSV files
    (compared with a second database that imported the folder)."""
    from mappa_core.storage import db

    book = grampian_book(tmp_path / "grampian.xlsx")
    report = import_workbook(engine, book)
    assert report.ok, report.errors
    assert report.warnings == []
    assert [f.filename for f in report.files] == [
        "grampian.xlsx[agencies]", "grampian.xlsx[people]", "grampian.xlsx[individuals]",
        "grampian.xlsx[meetings]", "grampian.xlsx[invitations]", "grampian.xlsx[events]"]
    other = db.make_engine(f"sqlite:///{tmp_path / 'csv.db'}")
    db.ensure_schema(other)
    assert import_directory(other, GRAMPIAN).ok
    for table in TABLES:
        assert _rows(engine, table) == _rows(other, table), table
    # ...and a second import of the same workbook changes nothing.
    again = import_workbook(engine, book)
    assert {f.unchanged for f in again.files} and not any(f.created or f.updated
                                                          for f in again.files)


def test_expected_figures_from_a_workbook(grampian_cli, tmp_path, monkeypatch, capsys):
    """The Grampian worked examples give the same figures imported from a workbook."""
    from mappa_core.storage import db

    url = f"sqlite:///{tmp_path / 'book.db'}"
    monkeypatch.setenv("MAPPA_DATABASE_URL", url)
    code, out, err = run_cli(capsys, "import", str(grampian_book(tmp_path / "g.xlsx")))
    assert code == 0, err
    assert "g.xlsx[meetings]" in out
    expected = json.loads((GRAMPIAN / "expected.json").read_text())
    query = expected["queries"][0]
    code, out, err = run_cli(capsys, *query["args"])
    got = {r["id"]: r for r in json.loads(out)["indicators"]}
    for ind, fields in query["indicators"].items():
        for field in ("numerator", "denominator", "pending"):
            if field in fields:
                assert got[ind][field] == fields[field], (ind, field)
    assert db.current_revision(db.make_engine(url)) == db.SCHEMA_REVISION


def test_ids_excel_made_numbers_of_title_rows_and_empty_rows_and_columns(sqlite_engine,
                                                                        tmp_path):
    def edit(name, ws):
        # GRA-0101 exported as 00123 and typed into Excel: the number 123, in every sheet.
        for row in ws.iter_rows():
            for cell in row:
                if cell.value == "GRA-0101":
                    cell.value = 123
        if name == "individuals":
            ws["C2"].value = 1.0  # category, as a float
            ws.insert_rows(1, 2)  # two empty rows above the header
            ws.insert_cols(1)  # an empty column before the table
            ws.cell(row=ws.max_row + 3, column=2, value=" ")  # a blank row further down
        if name == "meetings":
            ws["I2"].value = dt.datetime(2026, 7, 10)  # a date with a time of 00:00
            ws["K2"].value = True  # disclosure_considered TRUE
    report = import_workbook(sqlite_engine, grampian_book(tmp_path / "b.xlsx", edit))
    assert report.ok, report.errors
    t = SQLModel.metadata.tables
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(t["individual"].c.category).where(
            t["individual"].c.ref == "123")).scalar_one() == 1
        m = conn.execute(select(t["meeting"]).where(t["meeting"].c.meeting_id == "G1")).one()
    assert (m.ref, m.minutes_issued, m.disclosure_considered) == ("123", dt.date(2026, 7, 10),
                                                                   True)


def test_errors_name_the_workbook_the_sheet_and_its_row(sqlite_engine, tmp_path):
    def edit(name, ws):
        if name == "meetings":
            ws.insert_rows(1)  # the header on row 2: rows counted as the sheet numbers them
            ws["C12"].value = "2026-02-30"
            ws["I5"].value = dt.datetime(2026, 7, 10, 14, 30)
    report = import_workbook(sqlite_engine, grampian_book(tmp_path / "book.xlsx", edit))
    assert report.errors[:2] == [
        "book.xlsx[meetings]:5: minutes_issued: '2026-07-10 14:30' is not a date (use "
        "YYYY-MM-DD or DD/MM/YYYY)",
        "book.xlsx[meetings]:12: date: '2026-02-30' is not a real date (day is out of "
        "range for month)"]
    assert set(_counts(sqlite_engine).values()) == {0}


def test_other_sheets_are_named_in_a_warning(sqlite_engine, tmp_path):
    # A sheet's letter case does not matter; a misspelt one is named.
    report = import_workbook(sqlite_engine, grampian_book(
        tmp_path / "b.xlsx", titles={"meetings": "Meetings", "events": "Evnts"}))
    assert report.ok, report.errors
    assert report.warnings == ["b.xlsx[Evnts]: not a sheet mappa reads (did you mean "
                               "events?); skipped"]
    assert "b.xlsx[Meetings]" in [f.filename for f in report.files]


# --------------------------------------------------------------------- bad input


def _refused(engine, path: Path, capsys, monkeypatch) -> str:
    """`mappa import PATH` refused: exit 1, the one error on stderr, nothing written."""
    monkeypatch.setenv("MAPPA_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    code, out, err = run_cli(capsys, "import", str(path))
    assert code == 1, (out, err)
    assert set(_counts(engine).values()) == {0}
    lines = err.strip().splitlines()
    assert lines[-1].endswith("nothing was written")
    return "\n".join(lines[:-1])


def test_a_renamed_csv_file_is_not_a_workbook(engine, tmp_path, capsys, monkeypatch):
    path = tmp_path / "agencies.xlsx"
    path.write_bytes((GRAMPIAN / "agencies.csv").read_bytes())
    assert _refused(engine, path, capsys, monkeypatch) == (
        "agencies.xlsx:1: -: not an Excel workbook (.xlsx): it is text (a CSV file renamed?); "
        "import CSV files from a folder")


def test_an_xls_workbook_is_refused(sqlite_engine, tmp_path, capsys, monkeypatch):
    path = tmp_path / "old.xls"
    # An OLE compound file, as Excel 97-2003 saves: its signature, then its sectors.
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096))
    assert _refused(sqlite_engine, path, capsys, monkeypatch) == (
        "old.xls:1: -: an Excel 97-2003 workbook (.xls) or another Office file, not an .xlsx: "
        "open it in Excel and save it as Excel Workbook (.xlsx)")


def test_a_password_protected_workbook_is_refused(engine, tmp_path, capsys, monkeypatch):
    # tests/fixtures/workbooks/password-protected.xlsx: an agencies sheet, encrypted with the
    # password "secret" as Excel does (made with msoffcrypto-tool's OOXMLFile.encrypt).
    path = FIXTURES / "workbooks" / "password-protected.xlsx"
    assert _refused(engine, path, capsys, monkeypatch) == (
        "password-protected.xlsx:1: -: password-protected: save a copy without a password "
        "(File, Info, Protect Workbook, Encrypt with Password: clear it) and import that")


def test_a_zip_that_is_no_workbook(sqlite_engine, tmp_path, capsys, monkeypatch):
    path = tmp_path / "notes.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    assert _refused(sqlite_engine, path, capsys, monkeypatch) == (
        "notes.xlsx:1: -: not an Excel workbook (.xlsx): a zip file without a workbook in it")


def test_formulas_are_refused_with_their_cell(engine, tmp_path, capsys, monkeypatch):
    def edit(name, ws):
        if name == "meetings":
            ws["C4"].value = "=DATE(2026,9,28)"
            ws["C6"].value = "=C4+1"
    err = _refused(engine, grampian_book(tmp_path / "f.xlsx", edit), capsys, monkeypatch)
    assert err == ("f.xlsx[meetings]:4: -: cell C4 (and 1 more) holds a formula: mappa reads "
                   "values, not formulas (copy the sheet and paste it as values)")


def test_merged_cells_are_refused_with_their_range(engine, tmp_path, capsys, monkeypatch):
    def edit(name, ws):
        if name == "people":
            ws.merge_cells("F3:F5")  # one area for three people, as a person would merge it
    err = _refused(engine, grampian_book(tmp_path / "m.xlsx", edit), capsys, monkeypatch)
    assert err == ("m.xlsx[people]:3: -: merged cells F3:F5: each cell must hold its own value "
                   "(the header one column name a cell, each row its own values); unmerge them")


def test_a_merged_title_above_the_header_is_refused_too(sqlite_engine, tmp_path, capsys,
                                                       monkeypatch):
    def edit(name, ws):
        if name == "agencies":
            ws.insert_rows(1)
            ws["A1"].value = "Grampian agencies"
            ws.merge_cells("A1:E1")
    err = _refused(sqlite_engine, grampian_book(tmp_path / "t.xlsx", edit), capsys, monkeypatch)
    assert err.startswith("t.xlsx[agencies]:1: -: merged cells A1:E1: ")


def test_a_sheet_of_16384_columns_is_refused(engine, tmp_path, capsys, monkeypatch):
    def edit(name, ws):
        if name == "events":
            ws["XFD1"].value = "stray"
    err = _refused(engine, grampian_book(tmp_path / "w.xlsx", edit), capsys, monkeypatch)
    assert err == ("w.xlsx[events]:1: -: has 16,384 columns (to column XFD): a cell far right "
                   "of the table; delete the columns after it (mappa's files have at most 16)")


def test_a_sheet_of_more_than_100_mb_is_refused_before_it_is_read(sqlite_engine, tmp_path,
                                                                  capsys, monkeypatch):
    """A 200 MB sheet: refused from the zip's directory, without reading it (its XML
    compresses to under a megabyte here)."""
    from mappa_core.storage.importer.read import Workbook

    book = grampian_book(tmp_path / "big.xlsx")
    part = Workbook(book).parts["meetings"]
    big = tmp_path / "bigger.xlsx"
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == part:
                head, _, tail = data.partition(b"</sheetData>")
                data = head + b"<!--" + b" " * 200 * 2**20 + b"-->" + b"</sheetData>" + tail
            out.writestr(item, data)
    err = _refused(sqlite_engine, big, capsys, monkeypatch)
    assert err.startswith("bigger.xlsx[meetings]:1: -: the sheet is 200 MB of XML, more than "
                          "the 100 MB a workbook's sheet may be: save it as CSV UTF-8")


@pytest.mark.parametrize("sheet_of", ["nothing", "unknown"])
def test_a_workbook_without_a_sheet_to_read(sqlite_engine, tmp_path, capsys, monkeypatch,
                                            sheet_of):
    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1" if sheet_of == "nothing" else "Nominals"
    path = tmp_path / "empty.xlsx"
    wb.save(path)
    err = _refused(sqlite_engine, path, capsys, monkeypatch)
    assert "empty.xlsx:1: -: none of its sheets is one mappa reads (agencies, people, " in err
