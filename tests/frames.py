"""A `Records` built from a few in-memory rows, as `load_records` gives it after an import.

The rule tests build their records here rather than through tests/helpers.load_scenario:
no CSV file, no database, one run instead of one per database. The rows are written as in
a CSV file (strings; individuals and meetings take helpers.INDIVIDUAL and MEETING's
defaults) and each cell is read by the importer's own parser, so "yes", "2" and
"01/02/2026" mean what they mean in an import, and a row the import would refuse (a bad
value, a missing required one, a reference to no such meeting) is refused here too.
Each frame then takes the loader's shape: the model's columns in its order, dates as
datetime64[s] (`queries.DATE_COLUMNS`), yes/no columns as pandas "boolean"
(`queries.BOOL_COLUMNS`). tests/storage/test_frames.py proves the frames equal load_records's for
the same rows, on SQLite and on PostgreSQL.

It is load_records(engine) with no `area` and no `since`; the events are loaded (as with
`with_events=True`) when `events=` is given. Left to the import: the checks that need
what a database already holds (custody periods that overlap a stored one, the history the
importer keeps from an earlier import). Tests of those stay on the import.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
from sqlmodel import SQLModel

from mappa_core.rules.records import Records
from mappa_core.storage import importer, queries
from mappa_core.rules.schema import FILES
from tests.helpers import AGENCIES, SPECS, with_defaults

# The files whose tables the rules read (areas.csv is the reports' population only).
READ = ("agencies", "people", "individuals", "custody", "meetings", "invitations", "events",
        "local_holidays")


def records(agencies: list[dict] | None = None, **tables: list[dict]) -> Records:
    """records(individuals=[...], meetings=[...], ...): exactly these records, as loaded.

    The keywords are the SPEC file names, as for helpers.load_scenario; the agencies are
    helpers.AGENCIES unless given.
    """
    tables = {"agencies": AGENCIES if agencies is None else agencies, **tables}
    unread = sorted(set(tables) - set(READ))
    if unread:
        raise TypeError(f"no rule reads {', '.join(unread)}: test those through the import")
    errors = importer._Errors()
    parsed = {name: _parse(name, rows, errors) for name, rows in tables.items()}
    _references(parsed, errors)
    assert not errors.count, errors.report()

    def frame(name: str) -> pd.DataFrame:
        return _frame(SPECS[name].table, parsed.get(name, []))

    holidays: dict = {}
    for row in parsed.get("local_holidays", []):
        holidays.setdefault(row["area"], []).append(row["date"])
    return Records(
        frame("individuals"), frame("meetings"), frame("invitations"), frame("agencies"),
        frame("people"), frame("events") if "events" in tables else pd.DataFrame(), holidays,
        None, frame("custody"), pd.DataFrame(columns=queries.REVIEW_NOTE_COLUMNS),
    )


def _parse(name: str, rows: list[dict], errors) -> list[dict]:
    """The rows as the importer reads them from a CSV file: typed values, or errors."""
    spec = SPECS[name]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=spec.column_names)  # a misspelt column: ValueError
    writer.writeheader()
    writer.writerows(with_defaults(name, rows))
    text.seek(0)
    parsed = importer._parse_rows(csv.reader(text), spec, errors)
    if parsed is None:
        return []
    importer._row_rules(parsed, errors)
    return [dict(zip(spec.column_names, values)) for values in parsed.rows]


def _references(parsed: dict[str, list[dict]], errors) -> None:
    """A reference to a row none of these files holds (the import's reference rule)."""
    keys = {s.table: s.key[0] for s in FILES}
    held = {SPECS[name].table: {row[keys[SPECS[name].table]] for row in rows}
            for name, rows in parsed.items()}
    for name, rows in parsed.items():
        for column, table in SPECS[name].references.items():
            for n, row in enumerate(rows, start=2):  # line 1 is the header
                if row[column] is not None and row[column] not in held.get(table, set()):
                    errors.add(SPECS[name].filename, n, column, f"unknown {table} {row[column]!r}")


def _frame(table_name: str, rows: list[dict]) -> pd.DataFrame:
    """One table's frame as the loader makes it from what the database returns: dates as
    ISO text, the rest as Python values, then the loader's date and yes/no dtypes."""
    columns = [c.name for c in SQLModel.metadata.tables[table_name].c]
    dates = queries.DATE_COLUMNS.get(table_name, ())
    values = [tuple(_cell(row.get(c), c in dates) for c in columns) for row in rows]
    df = pd.DataFrame.from_records(values, columns=columns)
    for col in dates:
        df[col] = pd.to_datetime(df[col], format="%Y-%m-%d").astype("datetime64[s]")
    for col in queries.BOOL_COLUMNS.get(table_name, ()):
        df[col] = pd.array(df[col].astype("float64"), dtype="boolean")
    return df


def _cell(value, is_date: bool):
    return value.isoformat() if is_date and value is not None else value
