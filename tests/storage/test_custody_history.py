"""custody.csv and the custody history the importer keeps (SPEC sections 3 and 5): past
quarters keep their answers when a later export carries a new custody period; a
correction gives the corrected answer. Real CSV files, real SQLite and PostgreSQL (the
rule alone, on in-memory frames, where no earlier import is involved)."""

import datetime as dt

from sqlalchemy import select, text
from sqlmodel import SQLModel

from mappa_core.storage import db
from mappa_core.storage.importer import import_directory
from tests.frames import records
from tests.helpers import AGENCIES, indicators, write_files

A = {"ref": "A", "level": "2", "status": "community"}
MEETINGS = [{"meeting_id": "M1", "ref": "A", "date": "2025-01-06"},
            {"meeting_id": "M2", "ref": "A", "date": "2025-07-20"}]
QUARTERS = ("2024-25-Q4", "2025-26-Q1", "2025-26-Q2")


def _import(engine, directory, **tables):
    report = import_directory(engine, write_files(directory, agencies=AGENCIES, **tables))
    assert report.ok, report.errors
    return report


def _l2(engine, quarter, as_of="2025-09-30"):
    res = indicators(engine, quarter, as_of)["l2-reviews"]
    return res["numerator"], res["denominator"], res["pending"]


def _past_periods(engine):
    table = SQLModel.metadata.tables["custody_period"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.ref, table.c.custody_from))]


def test_later_export_with_a_new_custody_period_keeps_a_reported_quarters_answer(engine, tmp_path):
    # Export 1: in custody 2025-03-01 .. 2025-05-01. M1 2025-01-06: due 03-31 falls in
    # custody and falls away; next 05-01 + 84 = 07-24, met by M2 (07-20, after release).
    _import(engine, tmp_path / "1", individuals=[{**A, "custody_from": "2025-03-01",
             "release_date": "2025-05-01", "release_level": "2"}], meetings=MEETINGS)
    reported = {q: _l2(engine, q) for q in QUARTERS}
    assert reported == {"2024-25-Q4": (0, 0, 0), "2025-26-Q1": (0, 0, 0),
                        "2025-26-Q2": (1, 1, 0)}
    # Export 2 carries only the new current period (from 2025-11-01, after the stored
    # release): the stored one is kept as a past period, so the answers stay.
    later = {**A, "status": "custody", "custody_from": "2025-11-01",
             "release_date": "2026-02-01", "release_level": "2"}
    _import(engine, tmp_path / "2", individuals=[later], meetings=MEETINGS)
    assert _past_periods(engine) == [("A", dt.date(2025, 3, 1), dt.date(2025, 5, 1), 2)]
    assert {q: _l2(engine, q) for q in QUARTERS} == reported
    # Re-importing the same export changes nothing.
    _import(engine, tmp_path / "3", individuals=[later], meetings=MEETINGS)
    assert _past_periods(engine) == [("A", dt.date(2025, 3, 1), dt.date(2025, 5, 1), 2)]
    assert {q: _l2(engine, q) for q in QUARTERS} == reported


def test_correction_of_a_custody_period_gives_the_corrected_answer(engine, tmp_path):
    _import(engine, tmp_path / "1", individuals=[{**A, "custody_from": "2025-03-01",
             "release_date": "2025-05-01", "release_level": "2"}], meetings=MEETINGS)
    assert _l2(engine, "2024-25-Q4") == (0, 0, 0)
    # Corrected: custody began 2025-04-05 (before the stored release: a correction, which
    # replaces the period). Due 03-31 is now before custody: late (2024-25 Q4); 06-23 is
    # after release: late (Q1); M2 (07-20) restarts the chain: 10-12 pending.
    _import(engine, tmp_path / "2", individuals=[{**A, "custody_from": "2025-04-05",
             "release_date": "2025-05-01", "release_level": "2"}], meetings=MEETINGS)
    assert _past_periods(engine) == []
    assert {q: _l2(engine, q) for q in QUARTERS} == {
        "2024-25-Q4": (0, 1, 0), "2025-26-Q1": (0, 1, 0), "2025-26-Q2": (0, 0, 0)}


def test_custody_initial_l3_counts_every_release_against_its_own_custody_from():
    # Past period 2025-01-01 .. 2025-06-30 at Level 3 (custody.csv): deadline 2025-06-02,
    # met by the initial Level 3 community meeting of 2025-05-20. Current period
    # 2026-01-05 .. 2026-09-30 at Level 3: deadline 2026-09-02; the 2025 meeting is before
    # this period began, so it does not count: not met.
    init = {"level": "3", "kind": "initial", "setting": "community"}
    rec = records(
        individuals=[{"ref": "A", "level": "3", "status": "custody",
                      "custody_from": "2026-01-05", "release_date": "2026-09-30",
                      "release_level": "3"}],
        custody=[{"ref": "A", "custody_from": "2025-01-01", "release_date": "2025-06-30",
                  "release_level": "3"}],
        meetings=[{"meeting_id": "I1", "ref": "A", "date": "2025-05-20", **init}])
    past = indicators(rec, "2025-26", "2026-10-31")["custody-initial-l3"]
    assert (past["numerator"], past["denominator"]) == (1, 1)
    now = indicators(rec, "2026-27", "2026-10-31")["custody-initial-l3"]
    assert (now["numerator"], now["denominator"]) == (0, 1)
    assert [(e["ref"], e["due"], e["done"]) for e in now["exceptions"]] == [("A", "2026-09-02", None)]
    # The pre-release deadline is pending on its own day and missed from the next.
    on_day = indicators(rec, "2026-27", "2026-09-02")["custody-initial-l3"]
    assert (on_day["denominator"], on_day["pending"]) == (0, 1)
    after = indicators(rec, "2026-27", "2026-09-03")["custody-initial-l3"]
    assert (after["denominator"], after["pending"]) == (1, 0)


def test_custody_csv_errors_name_their_line_and_nothing_is_written(engine, tmp_path):
    directory = write_files(
        tmp_path / "bad", agencies=AGENCIES,
        individuals=[{**A, "status": "custody", "custody_from": "2025-06-01"}],
        custody=[
            {"ref": "A", "custody_from": "2024-01-01", "release_date": "2024-06-01"},
            {"ref": "A", "custody_from": "2024-05-01", "release_date": "2024-09-01"},  # overlaps line 2
            {"ref": "A", "custody_from": "2025-05-01", "release_date": "2025-07-01"},  # overlaps current
            {"ref": "A", "custody_from": "2023-05-01", "release_date": "2023-04-01"},  # release first
            {"ref": "Z", "custody_from": "2023-05-01", "release_date": "2023-06-01"},  # unknown ref
        ])
    report = import_directory(engine, directory)
    assert report.errors == [
        "custody.csv:5: release_date: the release date is before custody_from",
        "custody.csv:6: ref: unknown individual 'Z'",
        "custody.csv:3: custody_from: the period from 2024-05-01 overlaps the one from "
        "2024-01-01 to 2024-06-01 (line 2)",
        "custody.csv:4: custody_from: the period from 2025-05-01 to 2025-07-01 overlaps the "
        "current custody period from 2025-06-01 (no release date) in individuals.csv",
    ]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM individual")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM custody_period")).scalar() == 0


def test_current_period_overlapping_a_stored_past_one_is_an_error(engine, tmp_path):
    _import(engine, tmp_path / "1", individuals=[A],
            custody=[{"ref": "A", "custody_from": "2024-01-01", "release_date": "2024-06-01"}])
    directory = write_files(tmp_path / "2", individuals=[{**A, "custody_from": "2024-05-01"}])
    report = import_directory(engine, directory)
    assert report.errors == [
        "individuals.csv:2: custody_from: the current custody period from 2024-05-01 overlaps "
        "a past one from 2024-01-01 to 2024-06-01"]


def test_upgrade_from_0006_carries_an_existing_database_forward(sqlite_url):
    from alembic import command

    engine = db.make_engine(sqlite_url)
    command.upgrade(db._alembic_config(engine), "0006")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO individual (ref, area, category, level, status, mappa_start) "
            "VALUES ('A', 'X', 1, 2, 'community', '2020-01-01')"))
    db.upgrade(engine)
    assert db.current_revision(engine) == db.SCHEMA_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT ref, level_from FROM individual")).all() == [("A", None)]
        assert conn.execute(text("SELECT count(*) FROM custody_period")).scalar() == 0
