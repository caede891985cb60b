"""A unit's own names through a mapping file (issue 26, item 4): `mappa import DIR|BOOK.xlsx
--mapping FILE.toml` reads the unit's export as it is (its file and sheet names, column
headings and spellings), errors name the unit's file and column beside ours, a mapping
naming what we do not have is refused (exit 2) before anything is read, `--dry-run` shows
what maps to what, and `mappa import --template DIR` writes the files to start from."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from tests.conftest import GRAMPIAN
from tests.helpers import run_cli

TABLES = ("agency", "person", "individual", "meeting", "invitation", "event")
MAPPING = """
[individuals]
file = "Nominals.csv"
[individuals.columns]
ref = "ViSOR Reference"
status = "Location"
[individuals.values.status]
"In Community" = "community"
"In Custody" = "custody"
"In Hospital" = "hospital"

[meetings.columns]
ref = "ViSOR Reference"

[invitations]
file = "Attendance.csv"
[invitations.columns]
written_contribution = "Written Report Received"
[invitations.values.written_contribution]
Y = "yes"
N = "no"
"Not known" = ""
"""
SPELL = {"community": "In Community", "custody": "In Custody", "hospital": "In Hospital",
         "yes": "Y", "no": "N"}


def _rewrite(src: Path, dst: Path, headings: dict[str, str], spell: str | None = None,
             extra: dict[str, str] | None = None) -> None:
    """One Grampian file as the unit exports it: its headings, one column's spellings, an
    extra column the unit has and mappa does not read."""
    with src.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with dst.open("w", newline="", encoding="utf-8") as fh:
        columns = [headings.get(c, c) for c in rows[0]] + list(extra or {})
        w = csv.writer(fh)
        w.writerow(columns)
        for row in rows:
            out = [SPELL.get(v, v) if c == spell else v for c, v in row.items()]
            w.writerow(out + list((extra or {}).values()))


def unit_export(directory: Path) -> Path:
    """The Grampian records in the unit's own names."""
    directory.mkdir(parents=True)
    for path in GRAMPIAN.glob("*.csv"):
        if path.name == "individuals.csv":
            _rewrite(path, directory / "Nominals.csv",
                     {"ref": "ViSOR Reference", "status": "Location"}, "status",
                     {"Officer": "DC Smith"})
        elif path.name == "meetings.csv":
            _rewrite(path, directory / "meetings.csv", {"ref": "ViSOR Reference"})
        elif path.name == "invitations.csv":
            _rewrite(path, directory / "Attendance.csv",
                     {"written_contribution": "Written Report Received"},
                     "written_contribution")
        else:
            (directory / path.name).write_bytes(path.read_bytes())
    return directory


def _mapping(tmp_path, text: str = MAPPING) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _rows(engine, table: str) -> list[tuple]:
    t = SQLModel.metadata.tables[table]
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(t)))


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(
            SQLModel.metadata.tables[t])).scalar() for t in TABLES}


@pytest.fixture
def cli_db(engine, monkeypatch):
    monkeypatch.setenv("MAPPA_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return engine


def _reference(tmp_path):
    from mappa_core.storage import db
    from mappa_core.storage.importer import import_directory

    other = db.make_engine(f"sqlite:///{tmp_path / 'ours.db'}")
    db.ensure_schema(other)
    assert import_directory(other, GRAMPIAN).ok
    return other


def test_a_units_own_export_imports_through_its_mapping(cli_db, tmp_path, capsys):
    export = unit_export(tmp_path / "export")
    code, out, err = run_cli(capsys, "import", str(export), "--mapping",
                             str(_mapping(tmp_path)))
    assert code == 0, err
    assert err == ""  # Nominals.csv and Attendance.csv are read, not named as strays
    assert "Nominals.csv (individuals.csv)" in out and "Attendance.csv (invitations.csv)" in out
    ours = _reference(tmp_path)
    for table in TABLES:
        assert _rows(cli_db, table) == _rows(ours, table), table


def test_a_workbook_in_the_units_names(cli_db, tmp_path, capsys):
    export = unit_export(tmp_path / "export")
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for path in sorted(export.glob("*.csv")):
        ws = wb.create_sheet(path.stem)
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                ws.append(row)
    book = tmp_path / "Export.xlsx"
    wb.save(book)
    mapping = MAPPING.replace('"Nominals.csv"', '"Nominals"').replace('"Attendance.csv"',
                                                                     '"Attendance"')
    code, out, err = run_cli(capsys, "import", str(book), "--mapping",
                             str(_mapping(tmp_path, mapping)))
    assert code == 0, err
    assert "Export.xlsx[Nominals] (individuals.csv)" in out
    ours = _reference(tmp_path)
    for table in TABLES:
        assert _rows(cli_db, table) == _rows(ours, table), table


def test_dry_run_shows_what_maps_to_what_and_counts(cli_db, tmp_path, capsys):
    export = unit_export(tmp_path / "export")
    code, out, err = run_cli(capsys, "import", str(export), "--mapping",
                             str(_mapping(tmp_path)), "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    start = lines.index("individuals.csv <- Nominals.csv (individuals.csv)")
    assert lines[start + 1] == "  columns: ref <- 'ViSOR Reference'; status <- 'Location'"
    assert lines[start + 2].startswith("  by our own name: area, category, level, mappa_start")
    assert "  not read: 'Officer'" in lines[start + 3:start + 6]
    assert "  status values: 'In Community' -> community: 7; 'In Custody' -> custody: 1; " \
           "'In Hospital' -> hospital: 2" in lines
    assert "  written_contribution values: 'Y' -> yes: 4; 'N' -> no: 3; 'Not known' -> " \
           "(blank): 0" in lines
    assert "Nominals.csv (individuals.csv)           10       10        0         0" in lines
    assert "agencies.csv <- agencies.csv" in lines  # read by our names, said so
    assert "dry run: nothing was written" in out
    assert set(_counts(cli_db).values()) == {0}


def test_errors_name_the_units_file_and_column_beside_ours(cli_db, tmp_path, capsys):
    export = unit_export(tmp_path / "export")
    nominals = export / "Nominals.csv"
    nominals.write_text(nominals.read_text().replace("In Community", "At Home", 1))
    code, out, err = run_cli(capsys, "import", str(export), "--mapping",
                             str(_mapping(tmp_path)))
    assert code == 1
    assert err.splitlines()[0] == (
        "Nominals.csv (individuals.csv):2: status (Location): 'At Home' is not one of: "
        "community, custody, hospital")
    assert set(_counts(cli_db).values()) == {0}


@pytest.mark.parametrize("text, problem", [
    ("[individuals\nfile = 'x'", "mapping.toml: not TOML (Expected ']' at the end of a table "
                                 "declaration (at line 1, column 13))"),
    ("[nominals]\nfile = 'Nominals.csv'",
     "mapping.toml: [nominals]: not a file mappa reads (one of agencies, people, individuals, "
     "custody, meetings, invitations, events, local_holidays, areas)"),
    ("[individuals.columns]\nrefs = 'ViSOR Reference'",
     "mapping.toml: [individuals.columns] refs: not a column of individuals.csv (did you mean "
     "ref?)"),
    ("[individuals.columns]\nref = 'ViSOR Reference'\nchair_id = 'visor reference'",
     "mapping.toml: [individuals.columns]: ref and chair_id both map to 'visor reference'; each "
     "of the unit's columns is one of ours"),
    ("[individuals.values.status]\n'In Community' = 'comunity'",
     "mapping.toml: [individuals.values.status] 'In Community' = 'comunity': individuals.csv's "
     "status refuses it ('comunity' is not one of: community, custody, hospital)"),
    ("[individuals.values.location]\n'In Community' = 'community'",
     "mapping.toml: [individuals.values.location]: not a column of individuals.csv"),
    ("[invitations.values.written_contribution]\nY = 'maybe'",
     "mapping.toml: [invitations.values.written_contribution] 'Y' = 'maybe': invitations.csv's "
     "written_contribution refuses it ('maybe' is not yes or no)"),
    ("[individuals]\nfile = 'Export.csv'\n[meetings]\nfile = 'export.csv'",
     "mapping.toml: [meetings] file = 'export.csv': also the file of [individuals]; each of the "
     "unit's files is one of ours"),
    ("[individuals]\nsheet = 'Nominals'",
     "mapping.toml: [individuals] sheet: not a setting of a file (file, columns, values)"),
])
def test_a_mapping_naming_what_we_do_not_have_is_refused_before_anything_is_read(
        cli_db, tmp_path, capsys, text, problem):
    export = unit_export(tmp_path / "export")
    code, out, err = run_cli(capsys, "import", str(export), "--mapping",
                             str(_mapping(tmp_path, text)))
    assert code == 2
    assert err.splitlines() == [problem, "mappa import: 1 problem(s) in the mapping file; "
                                         "nothing was read or written"]
    assert set(_counts(cli_db).values()) == {0}


def test_a_mapped_file_that_is_not_there_is_named(cli_db, tmp_path, capsys):
    export = unit_export(tmp_path / "export")
    (export / "Attendance.csv").unlink()
    code, out, err = run_cli(capsys, "import", str(export), "--mapping",
                             str(_mapping(tmp_path)))
    assert code == 0, err
    assert "mapping.toml: [invitations] file = 'Attendance.csv' is not in " in err
    assert "nothing of invitations.csv is imported" in err


def test_the_template_writes_the_files_to_start_from(cli_db, tmp_path, capsys):
    from mappa_core.rules.schema import FILES

    target = tmp_path / "start"
    code, out, err = run_cli(capsys, "import", "--template", str(target))
    assert code == 0, err
    for spec in FILES:
        assert (target / spec.filename).read_text() == ",".join(spec.column_names) + "\n"
    text = (target / "mapping.toml").read_text()
    assert "# [individuals.columns]" in text and '# ref = "ref"' in text
    # As written it imports (nothing), and its mapping (all commented) is accepted.
    code, out, err = run_cli(capsys, "import", str(target), "--mapping",
                             str(target / "mapping.toml"))
    assert code == 0, err
    # A second time it writes nothing over the first.
    (target / "people.csv").write_text("kept")
    code, out, err = run_cli(capsys, "import", "--template", str(target))
    assert code == 2 and "already holds agencies.csv" in err
    assert (target / "people.csv").read_text() == "kept"
