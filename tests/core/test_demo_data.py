"""Synthetic data: deterministic for a seed, Scottish proportions, valid for the importer."""

import datetime as dt

import numpy as np
import pandas as pd

from mappa_core.synthetic_region import generate, write_demo_data
from mappa_core.storage.importer import import_directory

UNTIL = dt.date(2026, 11, 26)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = write_demo_data(tmp_path / "a", individuals=800, years=2, seed=7, until=UNTIL)
    b = write_demo_data(tmp_path / "b", individuals=800, years=2, seed=7, until=UNTIL)
    write_demo_data(tmp_path / "c", individuals=800, years=2, seed=8, until=UNTIL)
    assert a == b
    for name in ("individuals.csv", "meetings.csv", "invitations.csv", "events.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "meetings.csv").read_bytes() != (tmp_path / "c" / "meetings.csv").read_bytes()


def test_scottish_proportions():
    t = generate(individuals=20000, years=5, seed=3, until=UNTIL)
    ind = t["individuals.csv"]
    share = ind["category"].value_counts(normalize=True)
    assert 0.88 < share[1] < 0.95 and share[2] < 0.07 and share[3] < 0.06
    rso = ind[ind["category"] == 1]
    lv = rso["level"].value_counts(normalize=True)
    assert lv[1] > 0.95 and 0.01 < lv[2] < 0.04 and lv.get(3, 0) < 0.005
    assert not ((ind["category"] == 3) & (ind["level"] == 1)).any()
    m = t["meetings.csv"]
    assert set(m["level"]) <= {2, 3}
    assert len(m) > 0 and len(t["invitations.csv"]) > 2 * len(m)
    assert (pd.to_datetime(m["date"]) <= pd.Timestamp(UNTIL)).all()


def test_demo_data_imports_without_errors(sqlite_engine, tmp_path):
    write_demo_data(tmp_path, individuals=1500, years=3, seed=1, until=UNTIL)
    report = import_directory(sqlite_engine, tmp_path)
    assert report.ok, report.errors[:5]
    assert {f.filename: f.rows for f in report.files}["individuals.csv"] == 1500


def test_every_level_2_3_case_has_a_level_from_and_some_wait_too_long_for_a_first_meeting():
    t = generate(individuals=3000, years=3, seed=1, until=UNTIL)
    ind, m = t["individuals.csv"], t["meetings.csv"]
    managed = ind[ind["level"] >= 2]
    assert (managed["level_from"] != "").all()
    assert (ind.loc[ind["level"] == 1, "level_from"] == "").all()
    first = m.groupby("ref")["date"].min()
    lf = pd.to_datetime(managed.set_index("ref")["level_from"])
    interval = pd.Series(np.where(managed["level"] == 3, 42, 84), index=managed["ref"])
    first_at = pd.to_datetime(first.reindex(lf.index))
    # Overdue entries: the first meeting after level_from + one interval, or none by `until`.
    waited = (first_at.isna() & (lf + pd.to_timedelta(interval, "D") < pd.Timestamp(UNTIL))) \
        | (first_at > lf + pd.to_timedelta(interval, "D"))
    assert 3 <= int(waited.sum()) < len(managed) // 4
    # Every other case was met on its entry day.
    assert (first_at[~waited.to_numpy()].dropna() == lf[~waited.to_numpy()].reindex(
        first_at[~waited.to_numpy()].dropna().index)).all()
