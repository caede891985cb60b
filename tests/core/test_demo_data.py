"""Synthetic data: deterministic for its arguments, Scotland's shape (ten areas of their real
sizes, levels in their real proportions, meetings on working days, levels that change),
valid for the importer."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mappa_core.rules.calendar import scottish_bank_holidays
from mappa_core.rules.indicators import compute_deadlines
from mappa_core.storage.importer import import_directory
from mappa_core.storage.queries import load_records
from mappa_core.synthetic_region import (
    AREAS, CASES_PER_CHAIR, generate, select_areas, write_demo_data,
)
from tests.helpers import run_cli

UNTIL = dt.date(2026, 11, 26)


@pytest.fixture(scope="module")
def scotland():
    """`mappa demo-data`'s default: 7,000 individuals, five years."""
    return generate(individuals=7000, years=5, seed=1, until=UNTIL)


def test_same_arguments_same_files_other_seed_other_files(tmp_path):
    a = write_demo_data(tmp_path / "a", individuals=800, years=2, seed=7, until=UNTIL)
    b = write_demo_data(tmp_path / "b", individuals=800, years=2, seed=7, until=UNTIL)
    write_demo_data(tmp_path / "c", individuals=800, years=2, seed=8, until=UNTIL)
    assert a == b
    for name in ("individuals.csv", "meetings.csv", "invitations.csv", "events.csv",
                 "custody.csv", "people.csv", "areas.csv", "local_holidays.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "meetings.csv").read_bytes() != (tmp_path / "c" / "meetings.csv").read_bytes()


def test_ten_areas_of_their_real_sizes_with_their_populations(scotland):
    ind, areas = scotland["individuals.csv"], scotland["areas.csv"]
    assert list(areas["area"]) == list(AREAS) and len(areas) == 10
    assert (areas["population"] > 0).all() and 5_300_000 < areas["population"].sum() < 5_600_000
    # Each area's share of the caseload is its share of the population (to the person).
    counts = ind["area"].value_counts()
    expected = areas.set_index("area")["population"] / areas["population"].sum() * len(ind)
    assert (abs(counts.reindex(expected.index) - expected) <= 1).all()
    assert counts["Lothian and Borders"] > counts["Glasgow"] > counts["Highland and Islands"]


def test_levels_and_categories_in_scotlands_proportions(scotland):
    ind = scotland["individuals.csv"]
    live = ind[ind["mappa_end"] == ""]
    level = live["level"].value_counts()
    assert 200 <= level[2] <= 450, level          # Level 2 in the low hundreds nationally
    assert 3 <= level[3] <= 25, level             # Level 3 a handful
    rso = live[live["category"] == 1]
    assert (rso["level"] == 1).mean() > 0.95 and (rso["level"] == 3).sum() <= 6
    assert 0.2 < (rso["status"] == "custody").mean() < 0.32   # about a quarter in prison
    rp = live[live["category"] == 2]
    assert (rp["level"] == 1).mean() > 0.75 and (rp["status"] == "hospital").mean() > 0.6
    assert not ((ind["category"] == 3) & (ind["level"] == 1)).any()
    assert 0.88 < (ind["category"] == 1).mean() < 0.96


def test_chairs_in_proportion_to_each_areas_level_2_3_caseload(scotland):
    ind, people = scotland["individuals.csv"], scotland["people.csv"]
    caseload = ind[(ind["mappa_end"] == "") & (ind["level"] >= 2)]["area"].value_counts()
    chairs = people[people["roles"] == "chair"]["area"].value_counts()
    for area in AREAS:
        assert chairs[area] == max(2, -(-caseload[area] // CASES_PER_CHAIR)), area
    assert chairs["Lothian and Borders"] > chairs["Highland and Islands"]
    # Every case's chair is one of its own area's chairs.
    managed = ind[ind["chair_id"] != ""]
    home = people.set_index("person_id")["area"]
    assert (home.reindex(managed["chair_id"]).to_numpy() == managed["area"].to_numpy()).all()


def test_meetings_on_working_days_but_a_very_few_urgent_level_3(scotland):
    m = scotland["meetings.csv"]
    local = scotland["local_holidays.csv"]
    assert set(local["area"]) == set(AREAS) and len(local) >= 10 * 2 * 5
    day = pd.to_datetime(m["date"]).dt.date
    bank = set(scottish_bank_holidays())
    own = set(zip(local["area"], pd.to_datetime(local["date"]).dt.date))
    off = np.array([d.weekday() >= 5 or d in bank or (a, d) in own for a, d in zip(m["area"], day)])
    assert off.sum() <= 0.002 * len(m), off.sum()
    assert (m.loc[off, "level"] == 3).all()
    # Minutes and RMPs are issued on working days too (there is no one to issue them else).
    minutes = pd.to_datetime(m["minutes_issued"][m["minutes_issued"] != ""]).dt.date
    assert not any(d.weekday() >= 5 for d in minutes)


def test_meetings_a_year_are_a_real_units_and_some_reviews_change_the_level(scotland):
    m = scotland["meetings.csv"]
    last_year = pd.to_datetime(m["date"]) > pd.Timestamp(UNTIL) - pd.Timedelta(days=365)
    assert 1200 < last_year.sum() < 2600, last_year.sum()
    assert 40 < (last_year & (m["level"] == 3)).sum() < 200
    change = m[m["outcome_level"] != m["level"].astype(str)]
    moves = set(zip(change["level"], change["outcome_level"]))
    assert {(2, "3"), (3, "2"), (2, "1"), (2, "exit")} <= moves, moves
    assert len(change) < 0.2 * len(m)
    # A case closed at an `exit` meeting is archived on that day.
    ind = scotland["individuals.csv"].set_index("ref")
    exits = change[change["outcome_level"] == "exit"]
    assert (ind.loc[exits["ref"], "mappa_end"].to_numpy() == exits["date"].to_numpy()).all()
    # The case's level is its last meeting's outcome.
    last = m.drop_duplicates("ref", keep="last").set_index("ref")
    open_ = last[last["outcome_level"].isin(["2", "3"])]
    assert (ind.loc[open_.index, "level"].astype(str) == open_["outcome_level"]).all()


def test_habits_differ_by_agency_and_area_and_drift_over_the_years(scotland):
    m, inv = scotland["meetings.csv"], scotland["invitations.csv"]
    agencies = scotland["agencies.csv"].set_index("agency")
    x = inv.merge(m[["meeting_id", "date", "area"]], on="meeting_id")
    x["absent"] = x["attendance"] == "absent"
    x["role"] = agencies.loc[x["agency"], "role"].to_numpy()
    by_role = x.groupby("role")["absent"].mean()
    assert by_role["police"] < 0.08 < by_role["social_security"]
    by_area = x[x["role"] == "police"].groupby("area")["absent"].mean()
    assert by_area.max() > 1.5 * by_area.min()
    year = pd.to_datetime(x["date"]).dt.year
    first, last = x[year == year.min() + 1]["absent"].mean(), x[year == year.max()]["absent"].mean()
    assert abs(first - last) > 0.01, (first, last)


def test_custody_releases_and_events_at_realistic_rates(scotland):
    ind, m, ev = scotland["individuals.csv"], scotland["meetings.csv"], scotland["events.csv"]
    custody = scotland["custody.csv"]
    released = (ind["release_date"] != "") & (ind["status"] == "community")
    assert released.sum() + len(custody) > 100
    # Pre-release meetings: initial Level 3 meetings in the community before a release.
    assert ((m["kind"] == "initial") & (m["level"] == 3)).sum() > 3
    assert (m["setting"] == "custody").any()
    kinds = ev["event"].value_counts()
    for event in ("notification_breach", "wanted", "missing", "located", "order_applied",
                  "order_granted", "order_on_conviction", "further_sexual_offence"):
        assert kinds.get(event, 0) > 0, event
    per_year = kinds["notification_breach"] / 5
    assert 200 < per_year < 600     # about 400 a year among Scotland's 6,900 RSOs


def test_a_smaller_set_of_areas(tmp_path):
    t = generate(individuals=700, years=2, seed=2, until=UNTIL, areas=["grampian"])
    assert set(t["individuals.csv"]["area"]) == {"Grampian"}
    assert list(t["areas.csv"]["area"]) == ["Grampian"]
    assert set(t["local_holidays.csv"]["area"]) == {"Grampian"}
    assert set(t["people.csv"]["area"]) == {"Grampian"}
    assert select_areas(["Fife", "lothian"]) == ("Fife", "Lothian and Borders")
    with pytest.raises(ValueError, match="unknown area 'Grampain': the ten areas are Ayrshire, Fife"):
        select_areas(["Grampain"])
    with pytest.raises(ValueError, match="area 'l' could be Lanarkshire or Lothian and Borders"):
        select_areas(["l"])


def test_demo_data_imports_without_errors(sqlite_engine, tmp_path):
    write_demo_data(tmp_path, individuals=1500, years=3, seed=1, until=UNTIL)
    report = import_directory(sqlite_engine, tmp_path)
    assert report.ok, report.errors[:5]
    rows = {f.filename: f.rows for f in report.files}
    assert rows["individuals.csv"] == 1500 and rows["areas.csv"] == 10
    assert rows["local_holidays.csv"] >= 10 * 2 * 3


def test_the_review_chain_follows_each_change_of_level(sqlite_engine, tmp_path):
    write_demo_data(tmp_path, individuals=7000, years=3, seed=1, until=UNTIL)
    assert import_directory(sqlite_engine, tmp_path).ok
    m = pd.read_csv(tmp_path / "meetings.csv", dtype=str, keep_default_na=False)
    reviews = compute_deadlines(load_records(sqlite_engine), UNTIL).reviews
    # Stepped down to Level 1: no review is due after that meeting (but the one it met).
    out = m[(m["outcome_level"] == "1")].drop_duplicates("ref", keep="last")
    assert len(out) > 20
    later = reviews.merge(out.assign(day=pd.to_datetime(out["date"]))[["ref", "day"]], on="ref")
    later = later[later["due"] > later["day"]]
    assert (later["done"] == later["day"]).all(), later
    # Stepped up to Level 3 (out of prison: custody moves due dates): the next review is
    # due six weeks after, at Level 3.
    ind = pd.read_csv(tmp_path / "individuals.csv", dtype=str, keep_default_na=False)
    custody = pd.read_csv(tmp_path / "custody.csv", dtype=str, keep_default_na=False)
    jailed = set(ind.loc[ind["custody_from"] != "", "ref"]) | set(custody["ref"])
    up = m[(m["level"] == "2") & (m["outcome_level"] == "3") & ~m["ref"].isin(jailed)]
    checked = 0
    for ref, day in zip(up["ref"], pd.to_datetime(up["date"])):
        after = reviews[(reviews["ref"] == ref) & (reviews["due"] > day)
                        & (reviews["done"] != day)].sort_values("due")
        if not after.empty:
            assert after.iloc[0]["due"] == day + pd.Timedelta(days=42)
            assert str(after.iloc[0]["level"]) == "3"
            checked += 1
    assert checked >= 1


def test_every_level_2_3_case_has_a_level_from_and_some_wait_too_long_for_a_first_meeting():
    t = generate(individuals=7000, years=3, seed=1, until=UNTIL)
    ind, m = t["individuals.csv"], t["meetings.csv"]
    managed = ind[(ind["level"] >= 2) & (ind["mappa_end"] == "")]
    assert (managed["level_from"] != "").all()
    assert (ind.loc[ind["level"] == 1, "level_from"] == "").all()
    lf = pd.to_datetime(managed.set_index("ref")["level_from"])
    interval = pd.Series(np.where(managed["level"] == 3, 42, 84), index=managed["ref"])
    dates = m.assign(date=pd.to_datetime(m["date"]))
    since = dates.merge(lf.rename("lf"), left_on="ref", right_index=True)
    first_at = since[since["date"] >= since["lf"]].groupby("ref")["date"].min().reindex(lf.index)
    # Overdue entries: the first meeting after level_from + one interval, or none by `until`.
    limit = lf + pd.to_timedelta(interval, "D")
    waited = (first_at.isna() & (limit < pd.Timestamp(UNTIL))) | (first_at > limit)
    assert 3 <= int(waited.sum()) < len(managed) // 4
    # Every other case was met on its entry day (or, entered before the history began, at
    # a review within the interval).
    met = first_at[~waited].dropna()
    assert (met <= limit[met.index]).all()
    assert (met == lf[met.index]).mean() > 0.3


def test_the_command_keeps_the_areas_named_and_refuses_an_unknown_one(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "demo-data", str(tmp_path / "d"), "--individuals", "300",
                           "--years", "2", "--until", "2026-11-26", "--areas", "grampian,Fife")
    assert code == 0 and "wrote synthetic data for Fife, Grampian to" in out
    areas = pd.read_csv(tmp_path / "d" / "areas.csv")
    assert list(areas["area"]) == ["Fife", "Grampian"]
    code, _, err = run_cli(capsys, "demo-data", str(tmp_path / "e"), "--areas", "Grampain")
    assert code == 2 and "--areas: unknown area 'Grampain': the ten areas are" in err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("n", [1, 30])
def test_a_tiny_demo_still_writes_files_that_import(sqlite_engine, tmp_path, n):
    counts = write_demo_data(tmp_path, individuals=n, years=1, seed=1, until=UNTIL)
    assert counts["individuals"] == n
    report = import_directory(sqlite_engine, tmp_path)
    assert report.ok, report.errors[:5]
