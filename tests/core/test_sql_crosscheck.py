"""The review chain computed two independent ways agree: the engine (pandas/numpy) and the
benchmark's hand-written recursive SQL (bench/baseline.py), on SQLite and PostgreSQL."""

import datetime as dt

import pandas as pd
import pytest

from bench.baseline import l2_reviews_sql
from mappa_core.synthetic_region import write_demo_data
from mappa_core.storage.importer import import_directory
from mappa_core.answers import status


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("region")
    write_demo_data(path, individuals=3000, years=4, seed=5, until=dt.date(2026, 11, 26))
    # Past custody periods (custody.csv) for every fifth Level 2 case with no current one:
    # one or two spells of 40-200 days between 2024 and 2026, so chains pause in them.
    ind = pd.read_csv(path / "individuals.csv", dtype=str, keep_default_na=False)
    demo_history = pd.read_csv(path / "custody.csv", dtype=str, keep_default_na=False)
    rows = demo_history.to_dict("records")
    free = (ind["level"] == "2") & (ind["custody_from"] == "") & ~ind["ref"].isin(demo_history["ref"])
    for k, ref in enumerate(ind.loc[free, "ref"]):
        if k % 5:
            continue
        start = dt.date(2024, 1, 1) + dt.timedelta(days=(k * 37) % 500)
        for _spell in range(1 + k % 2):
            release = start + dt.timedelta(days=40 + (k * 13) % 160)
            rows.append({"ref": ref, "custody_from": start.isoformat(),
                         "release_date": release.isoformat(), "release_level": "2"})
            start = release + dt.timedelta(days=30 + k % 90)
    pd.DataFrame(rows).to_csv(path / "custody.csv", index=False)
    assert len(rows) > len(demo_history) + 30
    return path


@pytest.mark.parametrize("as_of", ["2026-11-26", "2026-06-30", "2025-12-31", "2025-04-15"])
def test_engine_and_sql_agree_on_l2_reviews(engine, csv_dir, as_of):
    assert import_directory(engine, csv_dir).ok
    day = dt.date.fromisoformat(as_of)
    ind = status(engine, day, "level2")["indicators"][0]
    assert (ind["numerator"], ind["denominator"]) == l2_reviews_sql(engine, day)
    assert ind["denominator"] > 20
