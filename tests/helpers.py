"""Build small hand-made scenarios as real CSV files, imported into a real database
(tests/frames.py builds the same rows as in-memory frames, for the rule tests)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from sqlmodel import SQLModel

from mappa_core.storage.importer import import_directory
from mappa_core.rules.indicators import compute_deadlines, compute_indicators
from mappa_core.rules.periods import parse_period
from mappa_core.rules.records import Records
from mappa_core.storage.queries import load_records
from mappa_core.rules.schema import FILES

TABLES = {s.table for s in FILES}
AREA = "Testshire"
AGENCIES = [
    {"agency": "police", "name": "Police Scotland", "kind": "ra", "role": "police"},
    {"agency": "cbsw-a", "name": "Social Work A", "kind": "ra", "role": "social_work"},
    {"agency": "cbsw-b", "name": "Social Work B", "kind": "ra", "role": "social_work"},
    {"agency": "sps", "name": "Scottish Prison Service", "kind": "ra", "role": "sps"},
    {"agency": "nhs", "name": "NHS Testshire", "kind": "dtc", "role": "health",
     "email": "nhs@example.org"},
    {"agency": "nhs-ra", "name": "NHS marked RA", "kind": "ra", "role": "health"},
    {"agency": "housing", "name": "Housing", "kind": "dtc", "role": "housing",
     "email": "housing@example.org"},
    {"agency": "scra", "name": "SCRA", "kind": "dtc", "role": "scra"},
]
INDIVIDUAL = {
    "area": AREA, "category": "1", "level": "2", "status": "community",
    "mappa_start": "2020-01-01", "chair_id": "chair-1",
}
MEETING = {"level": "2", "kind": "review", "setting": "community", "chair_id": "chair-1"}


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({c: row.get(c, "") for c in columns})


SPECS = {s.filename.removesuffix(".csv"): s for s in FILES}


def with_defaults(name: str, rows: list[dict]) -> list[dict]:
    """Individuals and meetings take their defaults from INDIVIDUAL and MEETING."""
    base = {"individuals": INDIVIDUAL, "meetings": MEETING}.get(name, {})
    return [{**base, **r} for r in rows]


def write_files(directory: Path, **tables: list[dict]) -> Path:
    """Write CSVs named after SPEC files: individuals=[...], meetings=[...], ...

    Individuals and meetings take their defaults from INDIVIDUAL and MEETING.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        write_csv(directory / f"{name}.csv", with_defaults(name, rows), SPECS[name].column_names)
    return directory


def load_scenario(engine, directory: Path, agencies=None, **tables):
    """Empty the database, then import exactly these records through the real importer."""
    write_files(directory, agencies=agencies or AGENCIES, **tables)
    with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name in TABLES:
                conn.execute(table.delete())
    report = import_directory(engine, directory)
    assert report.ok, report.errors
    return engine


def _records(source, area: str | None = None) -> Records:
    """`source` itself when it is a Records (tests/frames.py), else loaded from it (an engine)."""
    if isinstance(source, Records):
        if area is not None:
            raise ValueError("only the loader filters by area: load from a database")
        return source
    return load_records(source, area)


def indicators(source, period: str, as_of: str, area: str | None = None) -> dict[str, dict]:
    """The indicators as their JSON dicts, by id; `source` a Records or an engine."""
    computed = compute_deadlines(_records(source, area), dt.date.fromisoformat(as_of))
    return {r.id: r.to_dict() for r in compute_indicators(computed, parse_period(period))}


def reviews(source, as_of: str):
    """The review chain items (deadlines.review_items) as (level, due, status) tuples."""
    computed = compute_deadlines(_records(source), dt.date.fromisoformat(as_of))
    r = computed.reviews
    return [
        (int(lv), d.date().isoformat(), s)
        for lv, d, s in zip(r["level"], r["due"], r["status"])
    ]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """`mappa ARGS` in-process: (exit status, stdout, stderr), whether it returns or exits."""
    from bot.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
