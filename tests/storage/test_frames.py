"""The rule tests' in-memory records (tests/frames.py) are what load_records gives after a
real import of the same rows: same columns, dtypes, values and order, on SQLite and on
PostgreSQL. If the loader or the models change, this fails before a rule test can pass on
frames the product never sees."""

import csv
import dataclasses

import pandas as pd
import pytest

from mappa_core.storage.importer import import_directory
from mappa_core.storage.queries import load_records
from tests.conftest import GRAMPIAN
from tests.frames import READ, records
from tests.helpers import SPECS

# Every table the rules read, every kind of cell: blanks in whole-number, date and yes/no
# columns, UK dates, yes/no in several spellings, an outcome of "exit".
EVERY_KIND = {
    "people": [
        {"person_id": "chair-1", "name": "Chair One", "email": "c1@example.org",
         "slack_user_id": "UCHAIR1", "roles": "chair;sog_chair", "area": "Testshire"},
        {"person_id": "hc", "name": "Housing Contact", "roles": "agency_contact",
         "agency": "housing"},
    ],
    "individuals": [
        {"ref": "A", "birth_year": "1980", "gender": "male", "rosh": "high",
         "level_from": "06/01/2025"},
        {"ref": "B", "category": "3", "level": "3", "status": "custody",
         "custody_from": "2025-03-01", "release_date": "2027-03-01", "release_level": "3"},
        {"ref": "C", "level": "1", "mappa_end": "2026-06-15", "area": "Elsewhere"},
    ],
    "custody": [{"ref": "B", "custody_from": "2024-01-01", "release_date": "2024-06-01"},
                {"ref": "A", "custody_from": "2023-01-01", "release_date": "2023-02-01",
                 "release_level": "2"}],
    "meetings": [
        {"meeting_id": "M1", "ref": "A", "date": "2026-10-05", "minutes_issued": "2026-10-07",
         "rmp_ratified": "07/10/2026", "disclosure_considered": "Yes", "outcome_level": "exit"},
        {"meeting_id": "M2", "ref": "B", "date": "2026-09-01", "level": "3", "kind": "initial",
         "disclosure_considered": "n", "reason": "chair_unavailable"},
        {"meeting_id": "M3", "ref": "A", "date": "2026-07-06"},
    ],
    "invitations": [
        {"meeting_id": "M1", "agency": "police", "attendance": "in_person", "seniority_ok": "y"},
        {"meeting_id": "M1", "agency": "housing", "attendance": "absent",
         "written_contribution": "FALSE", "reason": "information_late"},
        {"meeting_id": "M2", "agency": "police", "attendance": "video", "seniority_ok": "0",
         "written_contribution": "1"},
    ],
    "events": [{"ref": "A", "date": "2026-05-10", "event": "missing"},
               {"ref": "B", "date": "2026-06-01", "event": "order_granted", "order_type": "SHPO"}],
    "local_holidays": [{"area": "Testshire", "date": "2026-10-06", "name": "Local day"},
                       {"area": "Elsewhere", "date": "2026-08-03", "name": "Fair"},
                       {"area": "Testshire", "date": "2026-04-20", "name": "Spring"}],
}


def _assert_same(frames, loaded):
    for f in dataclasses.fields(frames):
        a, b = getattr(frames, f.name), getattr(loaded, f.name)
        if isinstance(a, pd.DataFrame):
            # Every column's dtype and every value, in the loader's order of rows.
            pd.testing.assert_frame_equal(a, b, check_dtype=True, obj=f.name)
        elif f.name == "local_holidays":
            # The loader reads them in no set order (SQLite walks the key's index).
            assert {k: sorted(v) for k, v in a.items()} == {k: sorted(v) for k, v in b.items()}
        else:
            assert a == b, f.name


def test_frames_equal_what_the_import_and_load_give_for_every_kind_of_cell(scenario, tmp_path):
    engine = scenario(tmp_path, **EVERY_KIND)
    _assert_same(records(**EVERY_KIND), load_records(engine, with_events=True))


def test_frames_equal_the_load_of_tables_with_no_rows(scenario, tmp_path):
    engine = scenario(tmp_path, individuals=[])
    _assert_same(records(individuals=[]), load_records(engine))


def test_frames_equal_the_load_of_the_grampian_example(engine):
    assert import_directory(engine, GRAMPIAN).ok
    tables = {}
    for name in READ:
        path = GRAMPIAN / SPECS[name].filename
        if path.exists():
            with path.open(encoding="utf-8", newline="") as fh:
                tables[name] = list(csv.DictReader(fh))
    assert {"individuals", "meetings", "invitations", "events"} <= set(tables)
    _assert_same(records(**tables), load_records(engine, with_events=True))


def test_a_row_the_import_would_refuse_is_refused():
    with pytest.raises(AssertionError, match="invitations.csv:2: agency: unknown agency 'nobody'"):
        records(individuals=[{"ref": "A"}], meetings=[{"meeting_id": "M1", "ref": "A",
                                                      "date": "2026-10-05"}],
                invitations=[{"meeting_id": "M1", "agency": "nobody", "attendance": "phone"}])
    with pytest.raises(AssertionError, match="never Level 1"):
        records(individuals=[{"ref": "A", "category": "3", "level": "1"}])
    with pytest.raises(AssertionError, match="'maybe' is not yes or no"):
        records(individuals=[{"ref": "A"}], meetings=[
            {"meeting_id": "M1", "ref": "A", "date": "2026-10-05", "disclosure_considered": "maybe"}])
    with pytest.raises(ValueError, match="not in fieldnames"):
        records(individuals=[{"ref": "A", "levle": "3"}])
    with pytest.raises(TypeError, match="no rule reads areas"):
        records(areas=[{"area": "Testshire", "population": "1"}])
